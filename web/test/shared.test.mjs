// Two people on one session: two browser contexts (separate WebSockets) see the same pane
// live, count each other as viewers, and a destroy in one closes the other's terminal.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createSession, openFromList, openUi, outputLines, typeLine, uniqueName, useGatewayAndBrowser,
  view, WAIT_TIMEOUT_MS, waitForText, waitForViewState,
} from './harness.mjs';

const fixture = useGatewayAndBrowser();

/** Waits until the session's `.viewers` reads `count`. */
async function waitForViewers(page, sessionId, count) {
  await page.waitForFunction(({ id, count }) => {
    const node = document.querySelector(`.terminal-view[data-session-id="${id}"] .viewers`);
    return node?.textContent.trim() === String(count);
  }, { id: sessionId, count }, { timeout: WAIT_TIMEOUT_MS });
}

test('a second page opens the session from its list and sees the first page typing', async () => {
  const first = await openUi(fixture.browser, `${fixture.gateway.url}/`);
  const name = uniqueName('shared');
  const sessionId = await createSession(first, name);
  await waitForViewers(first, sessionId, 1);

  const second = await openUi(fixture.browser, `${fixture.gateway.url}/`);
  assert.equal(await openFromList(second, name), sessionId);
  await waitForViewers(second, sessionId, 2);
  await waitForViewers(first, sessionId, 2);

  await typeLine(first, sessionId, 'echo shared-$((6*7))');
  const seen = await waitForText(second, sessionId, /^shared-42$/m);
  assert.ok(seen.includes('echo shared-$((6*7))'), `the command line is mirrored too:\n${seen}`);
  assert.equal(outputLines(seen, 'shared-42').length, 1);

  await second.context().close();
  await waitForViewers(first, sessionId, 1);
  assert.deepEqual(first.problems, []);
  await first.context().close();
});

test('destroying a session closes it for a read-only viewer on another page', async () => {
  const owner = await openUi(fixture.browser, `${fixture.gateway.url}/`);
  const name = uniqueName('doomed');
  const sessionId = await createSession(owner, name);

  const watcher = await openUi(fixture.browser, `${fixture.gateway.url}/`);
  await openFromList(watcher, name, { readonly: true });
  const watched = view(watcher, sessionId);
  assert.equal(await watched.getAttribute('data-mode'), 'read');
  assert.ok(await watched.locator('.badge-readonly').isVisible(), 'the read-only badge shows');
  assert.equal(await view(owner, sessionId).locator('.badge-readonly').isVisible(), false,
    'no read-only badge on the writer');
  await typeLine(owner, sessionId, 'echo before-$((1+1))');
  await waitForText(watcher, sessionId, /^before-2$/m);

  await owner.locator(`#sessions li[data-session-id="${sessionId}"] button.destroy`).click();
  await waitForViewState(watcher, sessionId, 'closed');
  await watcher.locator(`#sessions li[data-session-id="${sessionId}"]`)
    .waitFor({ state: 'detached', timeout: WAIT_TIMEOUT_MS });
  await owner.locator(`#sessions li[data-session-id="${sessionId}"]`)
    .waitFor({ state: 'detached', timeout: WAIT_TIMEOUT_MS });
  assert.deepEqual(watcher.problems, []);
  await Promise.all([owner.context().close(), watcher.context().close()]);
});
