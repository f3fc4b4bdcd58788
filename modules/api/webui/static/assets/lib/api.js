// The API client. The tokens live in localStorage so that a reload, or another tab, stays
// logged in; an expired access token is renewed once with the refresh token. Only a refresh
// the server refuses (400, 401) logs out: a server that is restarting or a proxy's 5xx is
// an error to show and retry, with the tokens kept.

const storageKey = 'attune.tokens';

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let tokens = readTokens();
const logoutListeners = new Set();
const tokenListeners = new Set();

function readTokens() {
  try {
    return JSON.parse(localStorage.getItem(storageKey) || 'null');
  } catch {
    return null;
  }
}

function saveTokens(t) {
  tokens = t;
  if (t) localStorage.setItem(storageKey, JSON.stringify(t));
  else localStorage.removeItem(storageKey);
}

// Another tab logging in or out changes this one's tokens too; a login there (perhaps as
// someone else) is told to onTokens' listeners, which ask again who is logged in.
window.addEventListener('storage', (e) => {
  if (e.key !== storageKey && e.key !== null) return;
  const before = tokens;
  tokens = readTokens();
  if (!tokens) logoutListeners.forEach((fn) => fn());
  else if (tokens.access_token !== before?.access_token) tokenListeners.forEach((fn) => fn());
});

// subjectOf is who an access token speaks for (its JWT's sub), or undefined.
function subjectOf(t) {
  try {
    return JSON.parse(atob(t.access_token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).sub;
  } catch {
    return undefined;
  }
}

// sameIdentity answers whether the stored tokens still speak for whoever sent was for: a
// request refused with sent's token is tried again with them only then, never as another
// identity a login in another tab put in their place.
function sameIdentity(sent, now) {
  return Boolean(sent && now) && subjectOf(sent) === subjectOf(now);
}

export function onLogout(fn) {
  logoutListeners.add(fn);
  return () => logoutListeners.delete(fn);
}

// onTokens calls fn when another tab stored other tokens: a login, or a refresh.
export function onTokens(fn) {
  tokenListeners.add(fn);
  return () => tokenListeners.delete(fn);
}

export async function login(name, password) {
  const resp = await fetch('/auth/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ login: name, password }),
  });
  if (!resp.ok) throw await errorOf(resp);
  saveTokens(await resp.json());
}

export function logout() {
  saveTokens(null);
  logoutListeners.forEach((fn) => fn());
}

let refreshing = null;

// refresh buys a new pair once for every request that found the access token expired, and
// answers whether there is one to retry with. A refused refresh token logs out; any other
// failure throws and keeps the tokens.
function refresh() {
  refreshing ??= (async () => {
    const sent = tokens;
    try {
      const resp = await fetch('/auth/refresh', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: sent.refresh_token }),
      });
      // Another tab may have logged out, or in as someone else, while this one waited: what
      // it stored stands, and a pair bought with the old refresh token is dropped.
      const stored = readTokens();
      if (stored?.refresh_token !== sent.refresh_token) {
        tokens = stored;
        return sameIdentity(sent, stored);
      }
      if (resp.status === 400 || resp.status === 401) {
        logout();
        return false;
      }
      if (!resp.ok) throw await errorOf(resp);
      saveTokens(await resp.json());
      return true;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

async function errorOf(resp) {
  let code = 'error';
  let message = `${resp.status} ${resp.statusText}`;
  let field;
  try {
    const body = await resp.json();
    if (body?.error) ({ code, message, field } = body.error);
  } catch {
    // Not the API's error shape (a proxy's page, say): the status says enough.
  }
  const err = new ApiError(resp.status, code, message);
  // The body's field at fault, when the API names one (a rule's action_params.count).
  if (field) err.field = field;
  return err;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

// sessionChanged is the refusal of a request whose identity another tab's login replaced:
// nothing is sent as the new one on this screen's behalf, and the session is read again
// (onTokens).
function sessionChanged() {
  tokenListeners.forEach((fn) => fn());
  return new ApiError(401, 'session_changed', 'Another login took this session over in another tab; nothing was sent. Look again before you retry.');
}

// fetchAPI sends a request to /api/v1 with the access token, renewing it once when expired,
// and answers the Response; the caller reads the body. A refused token logs out.
export async function fetchAPI(path, init = {}) {
  let renewed = false;
  for (let attempt = 0; ; attempt++) {
    const headers = new Headers(init.headers);
    const sent = tokens;
    if (sent) headers.set('Authorization', `Bearer ${sent.access_token}`);
    const resp = await fetch(`/api/v1${path}`, { ...init, headers });
    if (resp.status !== 401) return resp;
    if (sent && tokens && !sameIdentity(sent, tokens)) throw sessionChanged();
    // Another tab renewed the tokens meanwhile: try those first.
    if (attempt < 2 && tokens && tokens.access_token !== sent?.access_token) continue;
    if (!renewed && tokens?.refresh_token) {
      renewed = true;
      if (await refresh()) continue;
      // The refresh found another tab's login, or its logout, in the tokens' place: that
      // stands, and this tab must not undo it by logging out.
      if (sent && tokens && !sameIdentity(sent, tokens)) throw sessionChanged();
      if (!tokens) throw await errorOf(resp);
    }
    const err = await errorOf(resp);
    logout();
    throw err;
  }
}

// request sends body as JSON and answers the decoded answer: {data, pagination} for a list,
// the object itself for one ({data: x} is unwrapped), null for an empty answer.
// A read waits at most readTimeout: a reading screen waits on its read before it reads again,
// so one answer that never comes (a proxy holding it, a half-open connection) must not hold
// the screen for ever. A write is left to finish: giving up on it would not undo it.
const readTimeout = 30000;

// withTimeout is signal (if any) that also aborts, as a TimeoutError, after ms; by hand
// rather than AbortSignal.any, which browsers of 2023 and before lack.
function withTimeout(signal, ms) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new DOMException('the read timed out', 'TimeoutError')), ms);
  const follow = () => ctl.abort(signal.reason);
  if (signal?.aborted) follow();
  else signal?.addEventListener('abort', follow, { once: true });
  ctl.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  return ctl.signal;
}

async function request(method, path, { params, body, signal } = {}) {
  if (method === 'GET') signal = withTimeout(signal, readTimeout);
  const init = { method, signal, headers: {} };
  if (body instanceof FormData || body instanceof Blob) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  let text;
  try {
    resp = await fetchAPI(path + query(params), init);
    if (!resp.ok) throw await errorOf(resp);
    if (resp.status === 204) return null;
    text = await resp.text();
  } catch (err) {
    if (err?.name === 'TimeoutError') throw new Error(`The server did not answer within ${readTimeout / 1000} seconds; it is read again at the next change.`);
    throw err;
  }
  if (!text) return null;
  const out = JSON.parse(text);
  if (out && typeof out === 'object' && 'data' in out && !('pagination' in out)) return out.data;
  return out;
}

export const api = {
  get: (path, params, opts) => request('GET', path, { ...opts, params }),
  post: (path, body, opts) => request('POST', path, { ...opts, body }),
  put: (path, body, opts) => request('PUT', path, { ...opts, body }),
  del: (path, opts) => request('DELETE', path, opts),
};
