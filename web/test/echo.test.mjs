// The page and its first keystrokes: the UI loads from the gateway with the right HTTP
// headers, connects, creates a session and shows a command's output typed through xterm.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createSession, openUi, outputLines, terminalInfo, typeLine, uniqueName, useGatewayAndBrowser,
  waitForText,
} from './harness.mjs';

const fixture = useGatewayAndBrowser();

test('typed command runs in a new session and its output is read from the buffer', async () => {
  const page = await openUi(fixture.browser, `${fixture.gateway.url}/`);
  const name = uniqueName('echo');
  const sessionId = await createSession(page, name);
  const info = await terminalInfo(page, sessionId);
  assert.equal(info.name, name);
  assert.equal(info.mode, 'write');
  assert.equal(await page.locator(`.terminal-view[data-session-id="${sessionId}"]`).getAttribute('data-mode'), 'write');

  await typeLine(page, sessionId, 'echo ui-$((40+2))');
  const text = await waitForText(page, sessionId, /^ui-42$/m);
  assert.ok(text.includes('echo ui-$((40+2))'), `the typed command is echoed:\n${text}`);
  assert.equal(outputLines(text, 'ui-42').length, 1, `one answer line:\n${text}`);
  await page.waitForFunction(() => /^\s*\d+(\.\d+)?\s*ms\s*$/.test(document.querySelector('#status #rtt')?.textContent),
    null, { timeout: 10_000 });
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test('the page and its assets carry CSP, caching, gzip and ETag revalidation', async () => {
  const index = await fetch(`${fixture.gateway.url}/`, { headers: { 'accept-encoding': 'identity' } });
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-type'), /^text\/html/);
  const csp = index.headers.get('content-security-policy');
  assert.ok(csp, 'Content-Security-Policy on the page');
  assert.match(csp, /script-src 'self'/);
  assert.equal(index.headers.get('cache-control'), 'no-cache');
  assert.equal(index.headers.get('content-encoding'), null);
  const etag = index.headers.get('etag');
  assert.ok(etag, 'an ETag on the page');
  const html = await index.text();

  const assets = [...html.matchAll(/(?:src|href)="\/?(assets\/[^"]+)"/g)].map((m) => `/${m[1]}`);
  const script = assets.find((a) => a.endsWith('.js'));
  assert.ok(script, `the page loads a hashed script under /assets/: ${assets}`);
  const js = await fetch(`${fixture.gateway.url}${script}`, { headers: { 'accept-encoding': 'identity' } });
  assert.equal(js.status, 200);
  assert.match(js.headers.get('cache-control'), /immutable/);
  assert.match(js.headers.get('content-type'), /javascript/);
  const plainScript = await js.text();

  const packed = await fetch(`${fixture.gateway.url}${script}`, { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(packed.headers.get('content-encoding'), 'gzip');
  assert.equal(await packed.text(), plainScript, 'the gzip copy decodes to the same script');

  // The ETag names one representation: revalidate the identity one fetched above.
  const revalidated = await fetch(`${fixture.gateway.url}/`,
    { headers: { 'accept-encoding': 'identity', 'if-none-match': etag } });
  assert.equal(revalidated.status, 304);
  assert.equal(revalidated.headers.get('etag'), etag);
  const stale = await fetch(`${fixture.gateway.url}/`, { headers: { 'if-none-match': '"stale"' } });
  assert.equal(stale.status, 200);
});
