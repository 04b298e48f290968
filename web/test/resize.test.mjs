// Sizing: when the browser window changes size, xterm refits and the pane follows, so a
// program in the pane sees the terminal's new width.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FOLLOW_TIMEOUT_MS, createSession, openUi, paneSizeMatching, terminalInfo, uniqueName, useGatewayAndBrowser,
} from './harness.mjs';

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
    const size = await paneSizeMatching(page, sessionId);
    seen.push(size);
    t.diagnostic(`viewport ${viewport.width}x${viewport.height}: pane and xterm ${size.cols}x${size.rows}`);
  }
  assert.ok(seen[0].cols > seen[1].cols, `wider window, more columns: ${JSON.stringify(seen)}`);
  assert.ok(seen[0].rows > seen[1].rows, `taller window, more rows: ${JSON.stringify(seen)}`);
});
