// The live stream: GET /api/v1/stream read through fetch, because EventSource cannot send
// a token. Each page opens the stream it needs and closes it when it goes; a dropped stream
// is opened again after a growing pause, and onOpen runs after every (re)connect so that a
// page rereads what it may have missed meanwhile (the stream is best effort).

import { fetchAPI, query } from './api.js';
import { useEffect, useRef } from '../vendor/htm-preact.js';

export function openStream(params, { onEvent, onOpen, onState }) {
  const abort = new AbortController();
  let closed = false;
  (async () => {
    let pause = 500;
    while (!closed) {
      try {
        const resp = await fetchAPI(`/stream${query(params)}`, { signal: abort.signal, headers: { Accept: 'text/event-stream' } });
        if (!resp.ok) throw new Error(`stream answered ${resp.status}`);
        pause = 500;
        onState?.('live');
        onOpen?.();
        await readEvents(resp.body, (name, data) => {
          if (name === 'error') throw new Error(data?.error?.message || 'stream ended');
          onEvent(name, data);
        });
      } catch (err) {
        if (closed) return;
        if (err?.status === 401) return;
      }
      if (closed) return;
      onState?.('reconnecting');
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 10000);
    }
  })();
  return () => {
    closed = true;
    abort.abort();
  };
}

// readEvents parses text/event-stream until the body ends.
async function readEvents(body, emit) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let name = 'message';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') {
        if (data.length) emit(name, JSON.parse(data.join('\n')));
        name = 'message';
        data = [];
      } else if (line.startsWith('event:')) {
        name = line.slice(6).trim();
      } else if (line.startsWith('data:')) {
        data.push(line.slice(5).replace(/^ /, ''));
      }
    }
  }
}

// useStream keeps a stream open with params while the component is shown; handlers may
// change on every render without reopening it.
export function useStream(params, handlers) {
  const ref = useRef(handlers);
  ref.current = handlers;
  const key = JSON.stringify(params);
  useEffect(() => {
    if (params === null) return undefined;
    return openStream(params, {
      onEvent: (n, d) => ref.current.onEvent?.(n, d),
      onOpen: () => ref.current.onOpen?.(),
      onState: (s) => ref.current.onState?.(s),
    });
  }, [key]);
}
