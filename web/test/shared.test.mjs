// Two people on one session: two browser contexts (separate WebSockets) see the same pane
// live, count each other as viewers, a page joining late starts from a snapshot of the
// screen, and a destroy in one closes the other's terminal.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createSession, openFromList, openUi, outputLines, screenRows, terminalInfo, typeLine, uniqueName,
  useGatewayAndBrowser, view, WAIT_TIMEOUT_MS, waitForPrompt, waitForText, waitForViewState,
  watchAttaches,
} from './harness.mjs';

const SNAPSHOT = 0x03;

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

test('a page attaching after output starts from a snapshot that reproduces the screen', async () => {
  const first = await openUi(fixture.browser, `${fixture.gateway.url}/`);
  const name = uniqueName('snapshot');
  const sessionId = await createSession(first, name);
  // Colours, a cleared line and a cursor move: the snapshot must reproduce the screen, not the log.
  await typeLine(first, sessionId,
    "for i in $(seq 1 12); do printf '\\e[1;3%dmsnap-%d\\e[0m\\n' $((i % 7)) $i; done; " +
    "printf 'scratch\\r\\e[Kkept\\e[3Dnew\\n'");
  await waitForText(first, sessionId, /^snap-12\nknew$/m);
  await waitForPrompt(first, sessionId);

  let sockets;
  let snapshotFrames = 0;
  const second = await openUi(fixture.browser, `${fixture.gateway.url}/`, {
    beforeLoad: (page) => {
      sockets = watchAttaches(page);
      page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
        if (typeof payload !== 'string' && payload[0] === SNAPSHOT) snapshotFrames += 1;
      }));
    },
  });
  await openFromList(second, name, { readonly: true });
  await waitForText(second, sessionId, /^snap-12\nknew$/m);
  assert.equal(sockets[0][0].response?.data?.snapshot, true, 'the attach announced a snapshot');
  assert.ok(snapshotFrames >= 1, 'a SNAPSHOT frame arrived');

  // The read-only page takes the session's size; then both screens hold the same rows.
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  let rows;
  for (;;) {
    rows = await Promise.all([screenRows(first, sessionId), screenRows(second, sessionId)]);
    if (JSON.stringify(rows[0]) === JSON.stringify(rows[1]) || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const [a, b] = await Promise.all([terminalInfo(first, sessionId), terminalInfo(second, sessionId)]);
  assert.deepEqual([b.cols, b.rows], [a.cols, a.rows], 'the read-only page has the session size');
  assert.deepEqual(rows[1], rows[0], 'the snapshot reproduces the writer\'s screen');
  assert.ok(rows[1].includes('snap-12') && rows[1].includes('knew'), `the printed lines are on screen:\n${rows[1].join('\n')}`);
  assert.deepEqual(second.problems, []);
  await Promise.all([first.context().close(), second.context().close()]);
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
  const overlay = watched.locator('.overlay');
  assert.ok(await overlay.isVisible(), 'the closed overlay shows');
  assert.equal(await overlay.locator('.overlay-title').textContent(), 'Session destroyed');
  assert.match(await overlay.locator('.overlay-text').textContent(), /destroyed/);
  assert.equal(await overlay.locator('button.reattach').isVisible(), false, 'nothing to re-attach to');
  await watcher.locator(`#sessions li[data-session-id="${sessionId}"]`)
    .waitFor({ state: 'detached', timeout: WAIT_TIMEOUT_MS });
  await owner.locator(`#sessions li[data-session-id="${sessionId}"]`)
    .waitFor({ state: 'detached', timeout: WAIT_TIMEOUT_MS });
  assert.deepEqual(watcher.problems, []);
  await Promise.all([owner.context().close(), watcher.context().close()]);
});
