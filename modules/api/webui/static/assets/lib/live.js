// The one wiring of a live screen to the stream: read again on every (re)connect (the stream
// is best effort, so what happened while it was away is read), and after the events that
// change what the screen shows, throttled so that a burst of events costs one read.

import { html, useState } from '../vendor/htm-preact.js';
import { useStream } from './stream.js';
import { useThrottled } from './ui.js';

// useLive follows the stream with params (null: none) and calls reload on every (re)connect
// and, at most once per wait ms, after the events named in events (or those events answers
// true for, when it is a function). onEvent sees every event first, and onOpen every
// (re)connect, for screens that take more from the stream than a reason to read again. It
// answers the stream's state: connecting, live, reconnecting or hidden.
export function useLive(reload, { params = {}, events = ['execution'], wait = 1000, onEvent, onOpen } = {}) {
  const [state, setState] = useState('connecting');
  const later = useThrottled(reload, wait);
  const wanted = typeof events === 'function' ? events : (name) => events.includes(name);
  useStream(params, {
    onOpen: () => {
      onOpen?.();
      reload();
    },
    onState: setState,
    onEvent: (name, data) => {
      onEvent?.(name, data);
      if (wanted(name, data)) later();
    },
  });
  return state;
}

const labels = { live: 'Live', connecting: 'Connecting…', hidden: 'Paused while hidden' };

// LiveState tells whether the screen follows the stream.
export function LiveState({ state }) {
  return html`<span class=${`live-state${state === 'live' ? ' on' : ''}`} role="status">${labels[state] || 'Reconnecting…'}</span>`;
}
