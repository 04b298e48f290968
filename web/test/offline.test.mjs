// What changes while a page is offline: its connection goes through a TCP proxy that cuts
// it and refuses new ones for a while, as a network outage would, while another page (on
// the gateway directly) acts on the session. After the outage the page must show the
// session as it is now: destroyed, or at the size a writer gave it meanwhile.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createSession, openFromList, openUi, terminalInfo, uniqueName, useGatewayAndBrowser, view,
  WAIT_TIMEOUT_MS, waitForLive, waitForStatus, waitForViewState,
} from './harness.mjs';

const fixture = useGatewayAndBrowser({ proxy: true });

/** Cuts the page's connection and keeps it down; resolves once the page noticed. */
async function goOffline(page) {
  assert.ok(fixture.proxy.block() >= 1, 'the page had a connection through the proxy');
  await waitForStatus(page, 'reconnecting');
}

/** Lets connections through again and has the page retry now rather than after its backoff. */
async function goOnline(page) {
  fixture.proxy.unblock();
  await page.waitForFunction(() => {
    window.tmuxgate.client.reconnectNow(); // what the browser's `online` event does
    return window.tmuxgate.client.state === 'open';
  }, null, { timeout: WAIT_TIMEOUT_MS, polling: 100 });
}

/** Polls `read` until it returns a value deep-equal to `wanted` (or the time is up); returns the last value. */
async function eventually(read, wanted, timeoutMs = WAIT_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (JSON.stringify(value) === JSON.stringify(wanted) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('a session destroyed while the page was offline shows as ended after the reconnect', async () => {
  const page = await openUi(fixture.browser, `${fixture.proxy.url}/`);
  const name = uniqueName('offline');
  const sessionId = await createSession(page, name);
  const other = await openUi(fixture.browser, `${fixture.gateway.url}/`);

  await goOffline(page);
  await other.locator(`#sessions li[data-session-id="${sessionId}"] button.destroy`).click();
  await other.locator(`#sessions li[data-session-id="${sessionId}"]`)
    .waitFor({ state: 'detached', timeout: WAIT_TIMEOUT_MS });
  await goOnline(page);

  await waitForViewState(page, sessionId, 'closed');
  const overlay = view(page, sessionId).locator('.overlay');
  assert.ok(await overlay.isVisible(), 'the ended overlay shows');
  assert.equal(await overlay.locator('.overlay-title').textContent(), 'Session not found');
  await page.locator(`#sessions li[data-session-id="${sessionId}"]`)
    .waitFor({ state: 'detached', timeout: WAIT_TIMEOUT_MS });
  assert.deepEqual(page.problems.filter((p) => !/WebSocket|ERR_CONNECTION/.test(p)), []);
  await Promise.all([page.context().close(), other.context().close()]);
});

test('a read-only page takes the size a writer gave the session while it was offline', async (t) => {
  const writer = await openUi(fixture.browser, `${fixture.gateway.url}/`, { viewport: { width: 1000, height: 700 } });
  const name = uniqueName('offline-size');
  const sessionId = await createSession(writer, name);
  const reader = await openUi(fixture.browser, `${fixture.proxy.url}/`);
  await openFromList(reader, name, { readonly: true });
  const size = async (page) => {
    const { cols, rows } = await terminalInfo(page, sessionId);
    return { cols, rows };
  };
  const before = await size(writer);
  assert.deepEqual(await eventually(() => size(reader), before), before, 'the reader starts at the session size');

  await goOffline(reader);
  await writer.setViewportSize({ width: 1400, height: 900 });
  const after = await writer.waitForFunction(({ id, cols }) => {
    const term = window.tmuxgate.terminals().find((x) => x.sessionId === id).term;
    return term.cols !== cols && { cols: term.cols, rows: term.rows };
  }, { id: sessionId, cols: before.cols }, { timeout: WAIT_TIMEOUT_MS }).then((handle) => handle.jsonValue());
  const listed = () => writer.evaluate(async (id) => {
    const { sessions } = await window.tmuxgate.client.request('session-list');
    const session = sessions.find((s) => s.sessionId === id);
    return { cols: session.cols, rows: session.rows };
  }, sessionId);
  assert.deepEqual(await eventually(listed, after), after, 'the session took the writer\'s new size');
  t.diagnostic(`session resized from ${before.cols}x${before.rows} to ${after.cols}x${after.rows} while the reader was offline`);

  await goOnline(reader);
  await waitForLive(reader, sessionId);
  assert.deepEqual(await eventually(() => size(reader), after), after, 'the reader follows after the reconnect');
  await Promise.all([writer.context().close(), reader.context().close()]);
});
