// End-to-end harness: a real tmuxgate gateway (gateway.mjs: own tmux sockets, free ports),
// headless Chromium through playwright-core, a TCP proxy that can cut every connection
// (proxy.mjs), and helpers that drive the UI through its test contract (ids, data
// attributes, window.tmuxgate). Everything waits on events or page conditions, never on
// fixed sleeps.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';
import { startGateway } from './gateway.mjs';
import { startProxy } from './proxy.mjs';

export { REPO, startGateway } from './gateway.mjs';
export { startProxy } from './proxy.mjs';

/** Default wait for a page condition. */
export const WAIT_TIMEOUT_MS = 20_000;

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// ---------------------------------------------------------------- per-file fixture

/**
 * Registers `before`/`after` hooks giving the test file its own gateway and browser (and a
 * proxy in front of the gateway when `proxy` is set), stopped at the end even when starting
 * one of them failed. Returns the object the hooks fill: `{ gateway, browser, proxy }`.
 */
export function useGatewayAndBrowser({ gateway: gatewayOptions, proxy = false } = {}) {
  const fixture = {};
  before(async () => {
    const [gateway, browser] = await Promise.allSettled([startGateway(gatewayOptions), launchBrowser()]);
    fixture.gateway = gateway.value;
    fixture.browser = browser.value;
    const failed = [gateway, browser].find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (proxy) fixture.proxy = await startProxy(fixture.gateway.addr);
  });
  after(async () => {
    await fixture.browser?.close();
    await fixture.proxy?.close();
    await fixture.gateway?.stop();
  });
  return fixture;
}

// ---------------------------------------------------------------- browser

/** Headless Debian Chromium (never a downloaded browser), with `args` added to ours. */
export function launchBrowser({ args = [] } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    args: [...CHROMIUM_ARGS, ...args],
  });
}

/**
 * A new browser context and page, not yet loaded. Page errors and console errors are
 * collected in `page.problems` for assertion messages. `beforeLoad` gets the page before
 * it loads (to watch its WebSocket from the start).
 */
export async function newPage(browser, { viewport = { width: 1280, height: 800 }, colorScheme, beforeLoad } = {}) {
  const context = await browser.newContext({ viewport, colorScheme });
  const page = await context.newPage();
  await beforeLoad?.(page);
  page.problems = [];
  page.on('pageerror', (error) => page.problems.push(`pageerror: ${error.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.problems.push(`console: ${msg.text()}`);
  });
  page.on('dialog', (dialog) => dialog.accept());
  return page;
}

/** A page (as `newPage` makes it) on the UI at `url`, once `#status` is `open`. */
export async function openUi(browser, url, options = {}) {
  const page = await newPage(browser, options);
  await page.goto(url);
  await waitForStatus(page, 'open');
  return page;
}

/** Waits until `#status` has `data-state=state`. */
export async function waitForStatus(page, state, timeout = WAIT_TIMEOUT_MS) {
  await page.locator(`#status[data-state="${state}"]`).waitFor({ state: 'attached', timeout });
}

/** A session name unique to this run: `prefix-<base36 time>-<random>`. */
export function uniqueName(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * Creates a session through `form#create-session` and waits until it is listed, open in the
 * active tab and its terminal is live (with a shell prompt, unless `prompt: false`). Returns
 * its session id.
 */
export async function createSession(page, name, { prompt = true } = {}) {
  const form = page.locator('form#create-session');
  await form.locator('input[name="name"]').fill(name);
  await form.locator('[type="submit"]').click();
  const entry = page.locator(`#sessions li[data-session-name="${name}"]`);
  await entry.waitFor({ timeout: WAIT_TIMEOUT_MS });
  const sessionId = await entry.getAttribute('data-session-id');
  await page.locator(`#tabs [role="tab"][data-session-id="${sessionId}"][aria-selected="true"]`)
    .waitFor({ timeout: WAIT_TIMEOUT_MS });
  await waitForLive(page, sessionId);
  if (prompt) await waitForPrompt(page, sessionId);
  return sessionId;
}

/** Clicks `button.open` (or `button.open-readonly`) of a listed session and waits for it live. */
export async function openFromList(page, name, { readonly = false } = {}) {
  const entry = page.locator(`#sessions li[data-session-name="${name}"]`);
  await entry.waitFor({ timeout: WAIT_TIMEOUT_MS });
  const sessionId = await entry.getAttribute('data-session-id');
  await entry.locator(readonly ? 'button.open-readonly' : 'button.open').click();
  await waitForLive(page, sessionId);
  return sessionId;
}

/** The `.terminal-view` of a session. */
export function view(page, sessionId) {
  return page.locator(`.terminal-view[data-session-id="${sessionId}"]`);
}

/** Waits until the session's terminal view has `data-state=state`. */
export async function waitForViewState(page, sessionId, state, timeout = WAIT_TIMEOUT_MS) {
  await page.locator(`.terminal-view[data-session-id="${sessionId}"][data-state="${state}"]`)
    .waitFor({ state: 'attached', timeout });
}

/** Waits until the session's terminal is live and registered in `window.tmuxgate`. */
export async function waitForLive(page, sessionId) {
  await waitForViewState(page, sessionId, 'live');
  await page.waitForFunction(
    (id) => window.tmuxgate?.terminals().some((t) => t.sessionId === id && t.state === 'live'),
    sessionId, { timeout: WAIT_TIMEOUT_MS });
}

/** Waits until the buffer's last non-blank line is a shell prompt (`$` or `#`). */
export async function waitForPrompt(page, sessionId) {
  await waitForText(page, sessionId, /[$#]\s*$/);
}

/** The session's terminal buffer (scrollback + screen) as `text()` gives it. */
export function terminalText(page, sessionId) {
  return page.evaluate(
    (id) => window.tmuxgate.terminals().find((t) => t.sessionId === id)?.text() ?? null,
    sessionId);
}

/**
 * Waits until the session's buffer matches `pattern` (a RegExp); returns the buffer. On
 * timeout the error carries the buffer's tail.
 */
export async function waitForText(page, sessionId, pattern, timeout = WAIT_TIMEOUT_MS) {
  try {
    await page.waitForFunction(({ id, source, flags }) => {
      const terminal = window.tmuxgate?.terminals().find((t) => t.sessionId === id);
      return terminal ? new RegExp(source, flags).test(terminal.text()) : false;
    }, { id: sessionId, source: pattern.source, flags: pattern.flags }, { timeout, polling: 50 });
  } catch (error) {
    const text = await terminalText(page, sessionId).catch(() => null);
    const tail = text === null ? '(no such terminal)' : text.trimEnd().split('\n').slice(-15).join('\n');
    error.message = `buffer never matched ${pattern}: ${error.message}\n--- buffer tail ---\n${tail}` +
      `\n--- page problems ---\n${(page.problems ?? []).join('\n')}`;
    throw error;
  }
  return terminalText(page, sessionId);
}

/** Focuses the session's xterm (so real key events reach it) and checks it holds the focus. */
export async function focusTerminal(page, sessionId) {
  const focused = await page.evaluate((id) => {
    const terminal = window.tmuxgate.terminals().find((t) => t.sessionId === id);
    terminal.term.focus();
    const node = document.querySelector(`.terminal-view[data-session-id="${id}"]`);
    return node.contains(document.activeElement);
  }, sessionId);
  if (!focused) throw new Error(`the terminal of ${sessionId} did not take the focus`);
}

/** Types `line` with real key events into the session's terminal, then Enter. */
export async function typeLine(page, sessionId, line) {
  await focusTerminal(page, sessionId);
  await page.keyboard.type(line);
  await page.keyboard.press('Enter');
}

/** How long the pane may lag behind the page's terminal size. */
export const FOLLOW_TIMEOUT_MS = 10_000;

let sizeQueries = 0;

/**
 * Asks the shell for its size (`stty size`) until it equals xterm's (`term.rows`/`term.cols`
 * read from the page at the same moment): the resize request and the keystrokes travel
 * separately, so the first answer may predate the resize. Fails if they never agree.
 * Until they agree, what the shell draws is laid out for another width than the page's.
 */
export async function paneSizeMatching(page, sessionId) {
  const deadline = Date.now() + FOLLOW_TIMEOUT_MS;
  for (let attempt = 0; ; attempt += 1) {
    const tag = `size-${(sizeQueries += 1)}`;
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

/** The session's terminal object, as plain data: its fields plus xterm's size and scrollback. */
export function terminalInfo(page, sessionId) {
  return page.evaluate((id) => {
    const t = window.tmuxgate.terminals().find((x) => x.sessionId === id);
    if (!t) return null;
    const { sessionId, name, channel, pane, mode, state, offset } = t;
    return {
      sessionId, name, channel, pane, mode, state, offset,
      cols: t.term.cols, rows: t.term.rows, scrollback: t.term.options.scrollback,
    };
  }, sessionId);
}

/**
 * Records the page's `session-attach` requests and their responses, per WebSocket, from now
 * on (call it from `openUi`'s `beforeLoad`): returns an array of sockets, each an array of
 * `{ request, response }` (`response` null until it arrives), in the order they were sent.
 */
export function watchAttaches(page) {
  const sockets = [];
  page.on('websocket', (ws) => {
    const attaches = [];
    sockets.push(attaches);
    ws.on('framesent', ({ payload }) => {
      const message = parseJson(payload);
      if (message?.type === 'session-attach') attaches.push({ request: message, response: null });
    });
    ws.on('framereceived', ({ payload }) => {
      const message = parseJson(payload);
      const entry = message?.type === 'response' && attaches.find((a) => a.request.id === message.id);
      if (entry) entry.response = message;
    });
  });
  return sockets;
}

function parseJson(payload) {
  if (typeof payload !== 'string') return null;
  try {
    return JSON.parse(payload);
  } catch {
    return null;
  }
}

/** The session's visible screen (not the scrollback): one string per row, trailing blanks trimmed. */
export function screenRows(page, sessionId) {
  return page.evaluate((id) => {
    const { term } = window.tmuxgate.terminals().find((t) => t.sessionId === id);
    const buffer = term.buffer.active;
    const rows = [];
    for (let y = buffer.baseY; y < buffer.baseY + term.rows; y++) {
      rows.push(buffer.getLine(y)?.translateToString(true) ?? '');
    }
    return rows;
  }, sessionId);
}

/** Lines of `text` that are exactly the output `line` (not the command that printed it). */
export function outputLines(text, line) {
  return text.split('\n').filter((l) => l.trimEnd() === line);
}
