// The gateway's sign-in endpoints (`api/me`, `api/login`, `api/logout`, beside the page)
// and the old `?token=` link form. The token itself only ever lives in the gateway's
// HttpOnly cookie: nothing here keeps it, stores it or logs it, and the WebSocket
// carries the cookie by itself.

/** The query parameter of a sign-in link (the seed's form); removed from the address bar. */
const TOKEN_PARAMETER = 'token';

/** A failed sign-in call: `status` is the HTTP status (0: no answer), `message` is for people. */
export class AuthError extends Error {
  /**
   * @param {string} message
   * @param {number} status
   */
  constructor(message, status) {
    super(message);
    this.name = 'AuthError';
    this.status = status;
  }
}

/**
 * @typedef {object} Identity who this page is signed in as
 * @property {boolean} auth whether the gateway authenticates at all
 * @property {string} [user]
 * @property {string} [role] `admin`, `operator`, `viewer` or one from the gateway's roles file
 * @property {number} [expiresAt] when the sign-in ends, ms since the epoch
 * @property {string[]} [permissions] what the role allows (`session.create`, ...); absent
 *   from older gateways
 */

/**
 * Takes a `?token=` off the address bar at once (`history.replaceState`, so it stays
 * out of the history too) and returns it, or null when the page has none.
 * @returns {string | null}
 */
export function takeUrlToken() {
  const url = new URL(location.href);
  if (!url.searchParams.has(TOKEN_PARAMETER)) return null;
  const token = url.searchParams.get(TOKEN_PARAMETER);
  url.searchParams.delete(TOKEN_PARAMETER);
  history.replaceState(history.state, '', url.href);
  return token || null;
}

/**
 * Who the page's cookie signs in: `{auth: false}` when the gateway runs without
 * authentication (also a gateway that does not serve `api/me`: 404), the identity when
 * the cookie holds a valid token, null when it does not (401).
 * @returns {Promise<Identity | null>}
 */
export async function fetchIdentity() {
  const response = await call('api/me', { method: 'GET', cache: 'no-store' });
  if (response.status === 404) return { auth: false };
  if (response.status === 401) return null;
  const body = await readBody(response);
  if (!response.ok) throw failure(response, body);
  return body.auth === false ? { auth: false } : identityFrom(body);
}

/**
 * Signs in with `{username, password}` or `{token}`; the gateway answers with the cookie.
 * @param {{username: string, password: string} | {token: string}} credentials
 * @returns {Promise<Identity>}
 */
export async function signIn(credentials) {
  const response = await call('api/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(credentials),
  });
  const body = await readBody(response);
  if (!response.ok) throw failure(response, body);
  return identityFrom(body);
}

/**
 * @param {any} body an `api/me` or `api/login` answer
 * @returns {Identity}
 */
function identityFrom(body) {
  const { user, role, expiresAt, permissions } = body;
  const identity = { auth: true, user, role, expiresAt };
  if (Array.isArray(permissions)) identity.permissions = permissions;
  return identity;
}

/**
 * Whether the signed-in role may `permission`. Unknown (no sign-in, no authentication, an
 * older gateway): yes, and the gateway decides.
 * @param {Identity | null} identity
 * @param {string} permission
 */
export function allows(identity, permission) {
  if (!identity?.auth || !identity.permissions) return true;
  return identity.permissions.includes(permission);
}

/** Revokes the cookie's token and clears the cookie. Failures are the caller's to show. */
export async function signOut() {
  const response = await call('api/logout', { method: 'POST' });
  if (!response.ok) throw failure(response, await readBody(response));
}

/** `fetch` relative to the page (a reverse-proxy prefix stays in front), same-origin cookies only. */
async function call(path, init) {
  try {
    return await fetch(new URL(path, location.href), { ...init, credentials: 'same-origin', redirect: 'error' });
  } catch {
    throw new AuthError('The gateway could not be reached.', 0);
  }
}

/** The JSON body, or `{}` when there is none or it is not JSON. */
async function readBody(response) {
  try {
    const body = await response.json();
    return body && typeof body === 'object' ? body : {};
  } catch {
    return {};
  }
}

function failure(response, body) {
  const fallback = response.status === 401 ? 'Invalid user name or password.' : `The gateway answered ${response.status}.`;
  const message = typeof body.message === 'string' && body.message ? sentence(body.message) : fallback;
  return new AuthError(message, response.status);
}

/** "invalid user name or password" → "Invalid user name or password." */
function sentence(text) {
  const capital = `${text[0].toUpperCase()}${text.slice(1)}`;
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}
