// Sizing: when the browser window changes size, xterm refits and the pane follows, so a
// program in the pane sees the terminal's new width.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createSession, openUi, terminalInfo, typeLine, uniqueName, useGatewayAndBrowser, waitForText,
} from './harness.mjs';

/** How long the pane may lag behind the page's terminal size. */
const FOLLOW_TIMEOUT_MS = 10_000;

const fixture = useGatewayAndBrowser();

test('the pane follows the page terminal through two window sizes', async (t) => {
  const page = await openUi(fixture.browser, `${fixture.gateway.url}/`, { viewport: { width: 1000, height: 700 } });
  const sessionId = await createSession(page, uniqueName('resize'));
  const seen = [];
  for (const viewport of [{ width: 1600, height: 950 }, { width: 720, height: 520 }]) {
    const before = await terminalInfo(page, sessionId);
    await page.setViewportSize(viewport);
    await page.waitForFunction(({ id, cols }) => {
      const t = window.tmuxgate.terminals().find((x) => x.sessionId === id);
      return t.term.cols !== cols;
    }, { id: sessionId, cols: before.cols }, { timeout: FOLLOW_TIMEOUT_MS });
    const size = await paneSizeMatching(page, sessionId, seen.length);
    seen.push(size);
    t.diagnostic(`viewport ${viewport.width}x${viewport.height}: pane and xterm ${size.cols}x${size.rows}`);
  }
  assert.ok(seen[0].cols > seen[1].cols, `wider window, more columns: ${JSON.stringify(seen)}`);
  assert.ok(seen[0].rows > seen[1].rows, `taller window, more rows: ${JSON.stringify(seen)}`);
});

/**
 * Asks the shell for its size (`stty size`) until it equals xterm's (`term.rows`/`term.cols`
 * read from the page at the same moment): the resize request and the keystrokes travel
 * separately, so the first answer may predate the resize. Fails if they never agree.
 */
async function paneSizeMatching(page, sessionId, round) {
  const deadline = Date.now() + FOLLOW_TIMEOUT_MS;
  for (let attempt = 0; ; attempt += 1) {
    const tag = `size-${round}-${attempt}`;
    await typeLine(page, sessionId, `echo "${tag}: $(stty size)"`);
    const text = await waitForText(page, sessionId, new RegExp(`^${tag}: \\d+ \\d+$`, 'm'));
    const [, rows, cols] = text.match(new RegExp(`^${tag}: (\\d+) (\\d+)$`, 'm')).map(Number);
    const info = await terminalInfo(page, sessionId);
    const pane = { cols, rows };
    if ((cols === info.cols && rows === info.rows) || Date.now() > deadline) {
      assert.deepEqual(pane, { cols: info.cols, rows: info.rows },
        `stty size in the pane equals the page terminal's size (attempt ${attempt})`);
      return pane;
    }
  }
}
