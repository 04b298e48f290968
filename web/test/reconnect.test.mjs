// Reconnecting: the page reaches the gateway through a TCP proxy that cuts every connection
// while the pane prints numbered lines; the UI must reconnect and resume from its offset, so
// every line shows exactly once, in order. The page's WebSockets are watched to check that
// each re-attach asked for `resumeFrom` and got the exact resume (`snapshot: false`).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createSession, openUi, terminalInfo, typeLine, uniqueName,
  useGatewayAndBrowser, waitForStatus, waitForText, waitForViewState, watchAttaches,
} from './harness.mjs';

/** Lines printed; fewer when the UI's scrollback cannot hold them all. */
const WANTED_LINES = 3000;
/** Lines beyond the numbered ones that the buffer must also hold (command, prompt, screen). */
const SPARE_LINES = 100;
/** Cuts, each once the pane has printed past the given fraction of the lines. */
const CUT_AT = [0.2, 0.55];
const RUN_TIMEOUT_MS = 60_000;

const fixture = useGatewayAndBrowser({ proxy: true });

test('connections cut while output flows: every line arrives once, in order', async (t) => {
  let sockets;
  const page = await openUi(fixture.browser, `${fixture.proxy.url}/`, { beforeLoad: (p) => { sockets = watchAttaches(p); } });
  const sessionId = await createSession(page, uniqueName('reconnect'));
  const { scrollback, rows } = await terminalInfo(page, sessionId);
  const lines = Math.min(WANTED_LINES, scrollback + rows - SPARE_LINES);
  t.diagnostic(`scrollback ${scrollback}, rows ${rows}: printing ${lines} lines`);
  assert.ok(lines >= 1000, `the UI keeps at least ${1000 + SPARE_LINES} lines (scrollback ${scrollback})`);

  await recordStates(page);
  await typeLine(page, sessionId,
    `for i in $(seq 1 ${lines}); do echo line-$i; sleep 0.002; done; echo done-marker`);
  for (const fraction of CUT_AT) {
    const mark = Math.round(lines * fraction);
    await waitForText(page, sessionId, new RegExp(`^line-${mark}$`, 'm'), RUN_TIMEOUT_MS);
    const cut = fixture.proxy.dropAll();
    t.diagnostic(`cut ${cut} connection(s) after line-${mark}`);
    assert.ok(cut >= 1, 'the page had a connection through the proxy');
    await page.waitForFunction(() => window.__stateLog.some((e) => e.id === 'status' && e.state === 'reconnecting'));
    await waitForStatus(page, 'open');
    await waitForViewState(page, sessionId, 'live');
    assert.ok((await recordedStates(page, `view:${sessionId}`)).includes('reconnecting'),
      'the terminal view showed reconnecting too');
    await page.evaluate(() => { window.__stateLog.length = 0; });
  }
  const text = await waitForText(page, sessionId, /^done-marker$/m, RUN_TIMEOUT_MS);

  const numbers = text.split('\n').flatMap((l) => {
    const m = /^line-(\d+)$/.exec(l.trimEnd());
    return m ? [Number(m[1])] : [];
  });
  const firstBreak = numbers.findIndex((n, i) => n !== i + 1);
  assert.equal(firstBreak, -1,
    `line-N in order, once each; first break at index ${firstBreak}: ` +
    `${JSON.stringify(numbers.slice(Math.max(0, firstBreak - 3), firstBreak + 3))}`);
  assert.equal(numbers.length, lines);
  assert.deepEqual(await recordedStates(page, 'status'), [], 'no further state changes after the last reconnect');

  assert.equal(sockets.length, 1 + CUT_AT.length, 'one WebSocket per connection');
  assert.equal(sockets[0].length, 1, 'one attach on the first connection');
  assert.equal(sockets[0][0].response?.data?.snapshot, true, 'the first attach starts from a snapshot');
  sockets.slice(1).forEach((attaches, cut) => {
    assert.equal(attaches.length, 1, `one re-attach after cut ${cut + 1}: ${JSON.stringify(attaches)}`);
    const [{ request, response }] = attaches;
    assert.equal(typeof request.data.resumeFrom, 'number', `the re-attach after cut ${cut + 1} resumes`);
    assert.equal(request.data.target, sockets[0][0].response.data.pane, 'on the same pane');
    assert.equal(response?.success, true, `the re-attach after cut ${cut + 1} succeeded`);
    assert.equal(response.data.snapshot, false, `an exact resume after cut ${cut + 1}, not a snapshot`);
    assert.equal(response.data.offset, request.data.resumeFrom);
  });
  assert.deepEqual(page.problems.filter((p) => !/WebSocket|ERR_CONNECTION/.test(p)), []);
});

/**
 * Records every `data-state` value `#status` and the terminal views take, from now on, in
 * `window.__stateLog` (a MutationObserver: short-lived states are not missed by polling).
 */
async function recordStates(page) {
  await page.evaluate(() => {
    window.__stateLog = [];
    const note = (node) => window.__stateLog.push({
      id: node.classList.contains('terminal-view') ? `view:${node.dataset.sessionId}` : node.id,
      state: node.dataset.state, at: performance.now(),
    });
    new MutationObserver((records) => records.forEach((r) => note(r.target)))
      .observe(document.body, { subtree: true, attributes: true, attributeFilter: ['data-state'] });
  });
}

/** The states recorded by `recordStates` for `id` (`status` or `view:SESSIONID`). */
function recordedStates(page, id) {
  return page.evaluate((id) => window.__stateLog.filter((e) => e.id === id).map((e) => e.state), id);
}
