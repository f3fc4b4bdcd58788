// Execution statuses, in one place: their lifecycle order, which are final, what may still be
// cancelled, and which of two sightings of one execution's status to show, so that no screen
// shows a status moving backwards. The ranks are the database's (store.ExecutionStatusRank),
// which refuses a move to a lower one.

export const statuses = ['requested', 'scheduling', 'scheduled', 'running', 'pausing', 'paused', 'canceling',
  'completed', 'failed', 'cancelled', 'timeout', 'abandoned'];

const finalStatuses = new Set(['completed', 'failed', 'cancelled', 'timeout', 'abandoned']);

export function ended(status) {
  return finalStatuses.has(status);
}

// cancellable tells whether POST /executions/{id}/cancel has something to do: an execution
// not ended (a canceling one is asked again), or one ended with its next attempt planned.
export function cancellable(exec) {
  return !ended(exec.status) || !!exec.retry_at;
}

// rank orders statuses as an execution moves through them; a workflow moves to and fro among
// running, pausing and paused, so those share a rank.
function rank(status) {
  if (ended(status)) return 5;
  return { requested: 0, scheduling: 1, scheduled: 2, running: 3, pausing: 3, paused: 3, canceling: 4 }[status] ?? 0;
}

// sighting is what a read tells of an execution's status: the status and when it changed.
export function sighting(exec) {
  return exec ? { status: exec.status, at: exec.updated } : null;
}

const time = (at) => (at ? new Date(at).getTime() : NaN);

// furthest answers whichever of two sightings of one execution's status ({status, at}: a
// read's status and updated, or a stream event's status and at) is the further on: the higher
// rank, or a late result replacing abandoned; between running, pausing and paused, the later
// change; else the first. So a late answer or event never moves a shown status backwards, and
// a change missed while the stream reconnected is taken from the next read.
export function furthest(a, b) {
  if (!a?.status) return b?.status ? b : a;
  if (!b?.status) return a;
  // The same status seen twice: the later sighting, whose time decides against a third.
  if (b.status === a.status) return time(b.at) > time(a.at) ? b : a;
  if ((a.status === 'abandoned' && ended(b.status)) || rank(b.status) > rank(a.status)) return b;
  if (rank(a.status) === 3 && rank(b.status) === 3 && time(b.at) > time(a.at)) return b;
  return a;
}
