// Helpers for the tests of a gateway with authentication: the login page, the sign-in
// cookie, and a WebSocket opened by hand to see whether the gateway still accepts it.

import { newPage, WAIT_TIMEOUT_MS, waitForStatus } from './harness.mjs';

/** The cookie `POST /api/login` sets. */
export const COOKIE_NAME = 'tmuxgate_token';
/** How long a hand-made WebSocket may stay open before it counts as accepted. */
const ACCEPTED_AFTER_MS = 3_000;

/**
 * Chromium reports every HTTP error status as a console error ("Failed to load resource"):
 * the 401 of `api/me` while signed out and of a refused sign-in are expected here.
 */
export function unexpectedProblems(page) {
  return page.problems.filter((problem) => !/Failed to load resource: .* 401/.test(problem));
}

/** A new page on `url`, once the login form shows. */
export async function openLoginPage(browser, url, options = {}) {
  const page = await newPage(browser, options);
  await page.goto(url);
  await waitForLoginPage(page);
  return page;
}

/** Waits until `form#login` is visible. */
export async function waitForLoginPage(page) {
  await page.locator('form#login').waitFor({ state: 'visible', timeout: WAIT_TIMEOUT_MS });
}

/** Fills `form#login` and submits it (does not wait for the outcome). */
export async function submitLogin(page, username, password) {
  const form = page.locator('form#login');
  await form.locator('input[name="username"]').fill(username);
  await form.locator('input[name="password"]').fill(password);
  await form.locator('[type="submit"]').click();
}

/** Signs in through the form and waits for the workspace to be connected. */
export async function signIn(page, username, password) {
  await submitLogin(page, username, password);
  await waitForStatus(page, 'open');
}

/** A new page on `url`, signed in as `user` (`{name, password}`). */
export async function openSignedIn(browser, url, user, options = {}) {
  const page = await openLoginPage(browser, url, options);
  await signIn(page, user.name, user.password);
  return page;
}

/** The page's sign-in cookie as Playwright sees it (HttpOnly included), or null. */
export async function tokenCookie(page) {
  const cookies = await page.context().cookies();
  return cookies.find((cookie) => cookie.name === COOKIE_NAME) ?? null;
}

/**
 * Opens a WebSocket to the gateway from the page (so with its cookies and origin) and
 * reports how it ended: `{code}` of its close, or `{code: null, open: true}` when the
 * gateway kept it open.
 */
export function probeWebSocket(page) {
  return page.evaluate((acceptedAfterMs) => new Promise((resolve) => {
    const url = new URL('ws', location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url.href);
    let opened = false;
    const timer = setTimeout(() => {
      socket.onclose = null;
      socket.close();
      resolve({ code: null, open: opened });
    }, acceptedAfterMs);
    socket.onopen = () => (opened = true);
    socket.onclose = (event) => {
      clearTimeout(timer);
      resolve({ code: event.code, reason: event.reason });
    };
  }), ACCEPTED_AFTER_MS);
}

/**
 * Records, from now on, every URL the page's main frame shows (`framenavigated`, also the
 * same-document changes of `history.replaceState`), every WebSocket URL and every request
 * URL, for checking that a token never appears in one.
 */
export function recordUrls(page) {
  const urls = { frames: [], sockets: [], requests: [] };
  page.on('framenavigated', (frame) => frame === page.mainFrame() && urls.frames.push(frame.url()));
  page.on('websocket', (socket) => urls.sockets.push(socket.url()));
  page.on('request', (request) => urls.requests.push(request.url()));
  return urls;
}
