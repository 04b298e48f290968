// Pasting cannot run commands. The pane's bash has bracketed paste on (readline's default
// since bash 5.1), so xterm wraps a paste in ESC[200~ … ESC[201~ and bash inserts it as
// text. A paste that itself holds ESC[201~ would end the bracket early and have the rest
// typed, Enter included: the UI strips control characters from pastes so it cannot.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createSession, focusTerminal, openUi, outputLines, typeLine, uniqueName, useGatewayAndBrowser,
  waitForPrompt, waitForText,
} from './harness.mjs';

const fixture = useGatewayAndBrowser();

/** Copied from a web page: looks like one command, holds a bracket end and a second one. */
const POISONED = 'echo pasted-$((2+3))\x1b[201~\recho injected-$((6*7))\r';

test('a paste holding ESC[201~ stays text: the command after it does not run', async () => {
  const page = await openUi(fixture.browser, `${fixture.gateway.url}/`);
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: fixture.gateway.url });
  const sessionId = await createSession(page, uniqueName('paste'));
  await typeLine(page, sessionId, 'bind -v | grep enable-bracketed-paste');
  await waitForText(page, sessionId, /^set enable-bracketed-paste on$/m);
  await waitForPrompt(page, sessionId);
  assert.equal(await page.evaluate((id) => window.tmuxgate.terminals().find((t) => t.sessionId === id)
    .term.modes.bracketedPasteMode, sessionId), true, 'bash asked xterm for bracketed paste');

  await page.evaluate((text) => navigator.clipboard.writeText(text), POISONED);
  await focusTerminal(page, sessionId);
  await page.keyboard.press('Control+Shift+V');
  // Typed after the paste, so it shows once bash has read all of the paste.
  await page.keyboard.type('#typed-after');
  // Safe: the whole paste sits on the command line as text, the ESC gone. Unsafe: it ran.
  const landed = await waitForText(page, sessionId, /#typed-after$/m);
  assert.deepEqual(outputLines(landed, 'injected-42'), [], `the command after ESC[201~ ran:\n${landed}`);
  assert.match(landed, /echo pasted-\$\(\(2\+3\)\)\[201~$/m, 'the paste is on the command line');
  // Discard the whole edit buffer (readline's unix-line-discard). Not Ctrl+C: a signal can
  // overtake keys still on their way and split what bash reads.
  await page.keyboard.press('Control+U');
  await typeLine(page, sessionId, 'echo after-paste-$((1+1))');
  const text = await waitForText(page, sessionId, /^after-paste-2$/m);
  assert.deepEqual(outputLines(text, 'injected-42'), [], `the command after ESC[201~ did not run:\n${text}`);
  assert.deepEqual(outputLines(text, 'pasted-5'), [], `nor the pasted line itself:\n${text}`);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
