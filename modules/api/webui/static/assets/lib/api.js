// The API client. The tokens live in localStorage so that a reload, or another tab, stays
// logged in; an expired access token is renewed once with the refresh token, and a refused
// refresh logs out.

const storageKey = 'attune.tokens';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let tokens = readTokens();
const logoutListeners = new Set();

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

// Another tab logging in or out changes this one's tokens too.
window.addEventListener('storage', (e) => {
  if (e.key !== storageKey) return;
  tokens = readTokens();
  if (!tokens) logoutListeners.forEach((fn) => fn());
});

export function onLogout(fn) {
  logoutListeners.add(fn);
  return () => logoutListeners.delete(fn);
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

// refresh buys a new pair once for every request that found the access token expired.
function refresh() {
  refreshing ??= (async () => {
    try {
      const resp = await fetch('/auth/refresh', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: tokens?.refresh_token }),
      });
      if (!resp.ok) return false;
      saveTokens(await resp.json());
      return true;
    } catch {
      return false;
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

// fetchAPI sends a request to /api/v1 with the access token, renewing it once when expired,
// and answers the Response; the caller reads the body. A refused token logs out.
export async function fetchAPI(path, init = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = new Headers(init.headers);
    if (tokens) headers.set('Authorization', `Bearer ${tokens.access_token}`);
    const resp = await fetch(`/api/v1${path}`, { ...init, headers });
    if (resp.status !== 401) return resp;
    if (attempt === 0 && tokens?.refresh_token && (await refresh())) continue;
    const err = await errorOf(resp);
    logout();
    throw err;
  }
}

// request sends body as JSON and answers the decoded answer: {data, pagination} for a list,
// the object itself for one ({data: x} is unwrapped), null for an empty answer.
export async function request(method, path, { params, body, signal } = {}) {
  const init = { method, signal, headers: {} };
  if (body instanceof FormData || body instanceof Blob) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetchAPI(path + query(params), init);
  if (!resp.ok) throw await errorOf(resp);
  if (resp.status === 204) return null;
  const text = await resp.text();
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
