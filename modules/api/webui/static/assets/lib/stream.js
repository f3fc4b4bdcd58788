// The live stream: GET /api/v1/stream read through fetch, because EventSource cannot send
// a token. Each page opens the stream it needs and closes it when it goes; a dropped stream
// is opened again after a growing pause, and onOpen runs after every (re)connect so that a
// page rereads what it may have missed meanwhile (the stream is best effort).
// A stream holds one of the browser's six connections to the server over HTTP/1.1 for as long
// as it is open, so a hidden tab closes its stream and opens it again (and rereads) when it is
// shown: six tabs left open would otherwise leave no connection for anything else.

import { fetchAPI, query } from './api.js';
import { useEffect, useRef } from '../vendor/htm-preact.js';

// A stream that stayed up this long, or delivered an event, was not refused at once: the
// next reconnect starts from the shortest pause again.
const firstPause = 500;
const maxPause = 10000;
const stayedUp = 5000;

// openStream follows the stream until the answered function is called; onState hears
// connecting, live, reconnecting and hidden.
function openStream(params, { onEvent, onOpen, onState }) {
  let closed = false;
  let abort = null;
  let wake = null; // ends the pause before a reconnect
  let pause = firstPause;
  const hidden = () => document.visibilityState === 'hidden';

  const follow = async () => {
    while (!closed && !hidden()) {
      abort = new AbortController();
      const opened = Date.now();
      let delivered = false;
      try {
        const resp = await fetchAPI(`/stream${query(params)}`, { signal: abort.signal, headers: { Accept: 'text/event-stream' } });
        if (!resp.ok) throw new Error(`stream answered ${resp.status}`);
        onState?.('live');
        onOpen?.();
        await readEvents(resp.body, (name, data) => {
          if (name === 'error') throw new Error(data?.error?.message || 'stream ended');
          delivered = true;
          onEvent(name, data);
        });
      } catch (err) {
        // Logged out: nothing to follow any more. (A session another tab's login took over
        // is followed again, with the new tokens, after the pause.)
        if (err?.status === 401 && err.code !== 'session_changed') {
          closed = true;
          return;
        }
      } finally {
        abort.abort();
      }
      if (closed || hidden()) return;
      if (delivered || Date.now() - opened >= stayedUp) pause = firstPause;
      onState?.('reconnecting');
      await new Promise((r) => {
        wake = r;
        setTimeout(r, pause);
      });
      wake = null;
      pause = Math.min(pause * 2, maxPause);
    }
  };

  let running = null;
  const start = () => {
    if (running || closed) return;
    running = follow().finally(() => {
      running = null;
      if (!closed && !hidden()) start(); // shown again while the last stream was closing
    });
  };
  const onVisibility = () => {
    if (hidden()) {
      abort?.abort();
      wake?.();
      onState?.('hidden');
    } else {
      pause = firstPause;
      onState?.('connecting');
      start();
    }
  };
  document.addEventListener('visibilitychange', onVisibility);
  if (hidden()) onState?.('hidden');
  else start();
  return () => {
    closed = true;
    document.removeEventListener('visibilitychange', onVisibility);
    abort?.abort();
    wake?.();
  };
}

// readEvents parses text/event-stream until the body ends; the reader is released however it
// ends (an emit that throws, a malformed event), so that no response is left open.
async function readEvents(body, emit) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let name = 'message';
  let data = [];
  try {
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
  } finally {
    reader.cancel().catch(() => {});
  }
}

// useStream keeps a stream open with params while the component is shown; handlers may
// change on every render without reopening it. params null opens none.
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
