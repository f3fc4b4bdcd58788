// Screens that show figures the stream does not carry (counts, queues) read them again when
// the stream says an execution changed: on every (re)connect, and throttled in bursts.

import { html, useState } from '../vendor/htm-preact.js';
import { useStream } from './stream.js';
import { useThrottled } from './ui.js';

// useLive calls reload on every (re)connect of the stream and, at most once per wait ms,
// after execution events; it answers the stream's state: connecting, live or reconnecting.
export function useLive(reload, wait = 1000) {
  const [state, setState] = useState('connecting');
  const later = useThrottled(reload, wait);
  useStream({}, {
    onOpen: reload,
    onState: setState,
    onEvent: (name) => {
      if (name === 'execution') later();
    },
  });
  return state;
}

// LiveState tells whether the screen follows the stream.
export function LiveState({ state }) {
  const text = { live: 'Live', connecting: 'Connecting…' }[state] || 'Reconnecting…';
  return html`<span class=${`live-state${state === 'live' ? ' on' : ''}`} role="status">${text}</span>`;
}
