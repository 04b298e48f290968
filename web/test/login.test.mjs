// Signing in to a gateway with authentication (ENABLE_AUTH=true): through the login form,
// with a wrong password, and with an old-style `?token=` link. The token lives only in the
// HttpOnly cookie: never in a page URL, a WebSocket URL, script-visible cookies, storage
// or the console; signing out revokes it at the gateway.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  createSession, newPage, typeLine, uniqueName, useGatewayAndBrowser, WAIT_TIMEOUT_MS, waitForStatus,
  waitForText,
} from './harness.mjs';
import {
  openLoginPage, probeWebSocket, recordUrls, signIn, submitLogin, tokenCookie, unexpectedProblems,
  waitForLoginPage,
} from './auth.mjs';

const ALICE = { name: 'alice', role: 'operator', password: `alice-${randomBytes(9).toString('hex')}` };
const CLOSE_UNAUTHORIZED = 4401;

const fixture = useGatewayAndBrowser({ gateway: { auth: { users: [ALICE] } } });

/** Everything the page's scripts can read back: cookies and both storages. */
function scriptVisibleState(page) {
  return page.evaluate(() => JSON.stringify({
    cookie: document.cookie,
    local: { ...localStorage },
    session: { ...sessionStorage },
  }));
}

test('signing in through the form, a terminal, and signing out revokes the token', async () => {
  let urls;
  const consoleText = [];
  const page = await newPage(fixture.browser, {
    beforeLoad: (p) => {
      urls = recordUrls(p);
      p.on('console', (message) => consoleText.push(message.text()));
    },
  });
  await page.goto(`${fixture.gateway.url}/`);
  await waitForLoginPage(page);
  assert.equal(urls.sockets.length, 0, 'no WebSocket before signing in');
  assert.equal(await page.locator('#app').isVisible(), false, 'the workspace is hidden');
  const password = page.locator('form#login input[name="password"]');
  assert.equal(await password.getAttribute('type'), 'password');
  assert.equal(await password.getAttribute('autocomplete'), 'current-password');
  assert.equal(await page.locator('form#login input[name="username"]').getAttribute('autocomplete'), 'username');

  await signIn(page, ALICE.name, ALICE.password);
  assert.equal(await password.inputValue(), '', 'the password field is emptied');
  const whoami = await page.locator('#whoami').textContent();
  assert.match(whoami, /alice/);
  assert.match(whoami, /operator/);
  assert.ok(await page.locator('button#logout').isVisible());

  const sessionId = await createSession(page, uniqueName('login'));
  await typeLine(page, sessionId, 'echo ui-$((40+2))');
  await waitForText(page, sessionId, /^ui-42$/m);

  const cookie = await tokenCookie(page);
  assert.ok(cookie, 'the gateway set the sign-in cookie');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  const token = cookie.value;
  assert.ok(token.length > 20, 'a token');
  const visible = await scriptVisibleState(page);
  assert.ok(!visible.includes(token), `scripts cannot read the token: ${visible}`);
  assert.ok(!visible.includes(ALICE.password), 'nor the password');
  for (const url of [...urls.frames, ...urls.sockets, ...urls.requests, page.url()]) {
    assert.ok(!url.includes(token), `no token in ${url}`);
  }
  assert.ok(urls.sockets.length >= 1, 'the workspace connected');

  await page.locator('button#logout').click();
  await waitForLoginPage(page);
  assert.match(await page.locator('#login-notice').textContent(), /signed out/i);
  await waitForStatus(page, 'closed');
  assert.equal(await page.locator('#tabs [role="tab"]').count(), 0, 'the terminals are gone');
  assert.equal(await page.evaluate(() => window.tmuxgate.terminals().length), 0);
  assert.equal(await page.locator('#sessions li').count(), 0, 'the session list is emptied');
  await waitForCookieGone(page);

  // The old cookie put back: the gateway refuses it, so logout revoked the token.
  await page.context().addCookies([cookie]);
  const probe = await probeWebSocket(page);
  assert.equal(probe.code, CLOSE_UNAUTHORIZED, `the revoked token is refused: ${JSON.stringify(probe)}`);

  for (const text of consoleText) {
    assert.ok(!text.includes(ALICE.password) && !text.includes(token), `nothing secret logged: ${text}`);
  }
  assert.deepEqual(unexpectedProblems(page), []);
  await page.context().close();
});

test('a wrong password shows #login-error and opens no WebSocket', async () => {
  let urls;
  const page = await openLoginPage(fixture.browser, `${fixture.gateway.url}/`, {
    beforeLoad: (p) => (urls = recordUrls(p)),
  });
  await submitLogin(page, ALICE.name, 'not-the-password');
  const error = page.locator('#login-error');
  await error.waitFor({ state: 'visible', timeout: WAIT_TIMEOUT_MS });
  assert.equal(await error.getAttribute('role'), 'alert');
  assert.match(await error.textContent(), /invalid|password/i);
  assert.equal(await page.locator('form#login input[name="password"]').inputValue(), '');
  assert.equal(urls.sockets.length, 0);
  assert.equal(await tokenCookie(page), null);

  // The same form then signs in.
  await signIn(page, ALICE.name, ALICE.password);
  assert.equal(await page.locator('#login-error').isVisible(), false);
  assert.deepEqual(unexpectedProblems(page), []);
  await page.context().close();
});

test('a ?token= link leaves the address bar at once and signs in through the cookie', async () => {
  const token = (await fixture.gateway.cli(['user', 'token', ALICE.name])).trim().split('\n').pop().trim();
  assert.ok(token.length > 20, `a token from tmuxgate user token: ${token}`);
  let urls;
  const apiRequestPages = [];
  const page = await newPage(fixture.browser, {
    beforeLoad: (p) => {
      urls = recordUrls(p);
      p.on('request', (request) => {
        if (request.url().includes('/api/')) apiRequestPages.push(p.url());
      });
    },
  });
  await page.goto(`${fixture.gateway.url}/?token=${encodeURIComponent(token)}#keep`);
  await waitForStatus(page, 'open');
  assert.equal(page.url(), `${fixture.gateway.url}/#keep`, 'the token left the address bar, the rest stayed');
  assert.ok(urls.frames.length >= 2, `the page replaced its URL: ${urls.frames}`);
  assert.ok(urls.frames.slice(1).every((url) => !url.includes(token)), `only the first URL had the token: ${urls.frames}`);
  assert.ok(apiRequestPages.length > 0 && apiRequestPages.every((url) => !url.includes(token)),
    `the token left before the first request: ${apiRequestPages}`);
  assert.ok(urls.sockets.every((url) => !url.includes('token')), `no token in ${urls.sockets}`);
  assert.ok(urls.requests.slice(1).every((url) => !url.includes(token)), 'nor in a request URL after the page itself');
  assert.match(await page.locator('#whoami').textContent(), /alice/);
  assert.ok(await tokenCookie(page), 'the cookie took over');

  const sessionId = await createSession(page, uniqueName('link'));
  await typeLine(page, sessionId, 'echo link-$((40+2))');
  await waitForText(page, sessionId, /^link-42$/m);
  assert.deepEqual(unexpectedProblems(page), []);
  await page.context().close();
});

test('a token revoked elsewhere brings the login page back (4401) with a notice', async () => {
  const page = await openLoginPage(fixture.browser, `${fixture.gateway.url}/`);
  await signIn(page, ALICE.name, ALICE.password);
  const sessionId = await createSession(page, uniqueName('revoked'));
  const cookie = await tokenCookie(page);

  // Another browser holding the same cookie signs out: the gateway revokes the token.
  const other = await fixture.browser.newContext();
  await other.addCookies([cookie]);
  const response = await other.request.post(`${fixture.gateway.url}/api/logout`);
  assert.equal(response.status(), 204);
  await other.close();

  await waitForLoginPage(page);
  assert.match(await page.locator('#login-notice').textContent(), /signed out|expired/i);
  assert.equal(await page.locator(`.terminal-view[data-session-id="${sessionId}"]`).count(), 0, 'the terminal is gone');
  assert.equal(await page.locator('#app').isVisible(), false);
  await signIn(page, ALICE.name, ALICE.password);
  await page.locator(`#sessions li[data-session-id="${sessionId}"]`).waitFor({ timeout: WAIT_TIMEOUT_MS });
  assert.deepEqual(unexpectedProblems(page), []);
  await page.context().close();
});

/** Waits until the logout's answer cleared the sign-in cookie. */
async function waitForCookieGone(page) {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  while (await tokenCookie(page)) {
    if (Date.now() > deadline) throw new Error('the sign-in cookie was not cleared');
    await page.waitForTimeout(50);
  }
}
