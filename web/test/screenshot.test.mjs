// The README's picture: the whole page at 1280x800 with two sessions open, the active one
// showing a coloured prompt, a directory listing and a colour table. Every run takes it (into
// a temporary file, so a test run leaves the checkout clean); with UPDATE_SCREENSHOT=1 it is
// written to docs/screenshot.png, the committed copy: `UPDATE_SCREENSHOT=1 scripts/test`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  createSession, openUi, REPO, typeLine, useGatewayAndBrowser, waitForText,
} from './harness.mjs';

const SCREENSHOT = process.env.UPDATE_SCREENSHOT === '1'
  ? path.join(REPO, 'docs/screenshot.png')
  : path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tmuxgate-screenshot-')), 'screenshot.png');
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const fixture = useGatewayAndBrowser();

/** `you@host:~/tmuxgate$ ` in green and blue, the same wherever the checkout lives. */
const PROMPT = String.raw`PS1='\[\e[1;32m\]you@host\[\e[0m\]:\[\e[1;34m\]~/tmuxgate\[\e[0m\]$ '`;

test('screenshot of two open sessions at 1280x800', async () => {
  const page = await openUi(fixture.browser, `${fixture.gateway.url}/`, { viewport: { width: 1280, height: 800 }, colorScheme: 'dark' });
  const logs = await createSession(page, 'logs');
  await typeLine(page, logs, 'echo tail of the build log && seq 1 5');
  await waitForText(page, logs, /^5$/m);

  const main = await createSession(page, 'main');
  await typeLine(page, main, `cd ${shellQuote(REPO)} && ${PROMPT} && clear`);
  await waitForText(page, main, /you@host/);
  await typeLine(page, main, 'ls --color=always -F && ls --color=always -F crates');
  await waitForText(page, main, /tmux-control\/\s/);
  await typeLine(page, main,
    'for c in 31 32 33 34 35 36; do printf "\\e[1;${c}m colour-$c \\e[0m"; done; echo');
  await waitForText(page, main, /colour-36\s*$/m);
  await page.evaluate(() => document.activeElement?.blur());

  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  const png = await page.screenshot({ path: SCREENSHOT, fullPage: true });
  assert.ok(png.subarray(0, 8).equals(PNG_SIGNATURE), 'a PNG was written');
  assert.equal(png.readUInt32BE(16), 1280, 'PNG width');
  assert.ok(png.readUInt32BE(20) >= 800, 'PNG height');
  assert.equal(await page.locator('#tabs [role="tab"]').count(), 2, 'two tabs open');
  await page.context().close();
  if (process.env.UPDATE_SCREENSHOT !== '1') fs.rmSync(path.dirname(SCREENSHOT), { recursive: true });
});

function shellQuote(text) {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
