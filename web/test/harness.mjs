// End-to-end harness: a real tmuxgate gateway (own tmux sockets, free ports), headless
// Chromium through playwright-core, a TCP proxy that can cut every connection, and helpers
// that drive the UI through its test contract (ids, data attributes, window.tmuxgate).
// Everything waits on events or page conditions, never on fixed sleeps.

import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

/** The repository root (web/test/ is two levels below it). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** How long the gateway may take to print its listening line. */
const GATEWAY_START_TIMEOUT_MS = 20_000;
/** How long the gateway may take to exit after SIGTERM before it is killed. */
const GATEWAY_STOP_TIMEOUT_MS = 10_000;
/** How long `tmux kill-server` may take (it can hang on a server whose clients are gone). */
const KILL_SERVER_TIMEOUT_MS = 3_000;
/** Default wait for a page condition. */
export const WAIT_TIMEOUT_MS = 20_000;

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// ---------------------------------------------------------------- gateway

/** Gateways still running in this process: stopped by the exit hook if a test forgot. */
const running = new Set();

/**
 * Starts `tmuxgate start` on 127.0.0.1 with free ports and a private tmux socket
 * directory; resolves once it logged `tmuxgate listening`.
 * @param {{bin?: string, env?: Record<string,string>}} [options]
 */
export async function startGateway({ bin, env = {} } = {}) {
  bin ??= process.env.TMUXGATE_BIN || path.join(REPO, 'target/debug/tmuxgate');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tmuxgate-e2e-'));
  const socketDir = path.join(dir, 'tmux');
  const childEnv = {
    ...process.env,
    PROXY_HOST: '127.0.0.1',
    PROXY_PORT: '0',
    HEALTH_PORT: '0',
    TMUX_SOCKET_PATH: socketDir,
    DATA_DIR: path.join(dir, 'state'),
    // Most page tests exercise terminals, not identity; those that do pass ENABLE_AUTH.
    ENABLE_AUTH: 'false',
    DEFAULT_COMMAND: 'exec bash --norc --noprofile',
    LOG_FORMAT: 'json',
    RUST_LOG: 'warn,tmuxgate::cli=info',
    ...env,
  };
  delete childEnv.TMUX;
  delete childEnv.TMUX_PANE;
  const child = spawn(bin, ['start'], { env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  const gateway = new Gateway(child, dir, socketDir);
  running.add(gateway);
  try {
    gateway.addr = await gateway.listening();
  } catch (error) {
    await gateway.stop();
    throw error;
  }
  return gateway;
}

class Gateway {
  constructor(child, dir, socketDir) {
    this.child = child;
    this.dir = dir;
    this.socketDir = socketDir;
    /** Every stderr line, for diagnostics. */
    this.logLines = [];
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    this.spawnError = new Promise((resolve) => child.once('error', resolve));
    this.lines = createInterface({ input: child.stderr });
    this.lines.on('line', (line) => this.logLines.push(line));
  }

  /** `http://127.0.0.1:PORT` */
  get url() { return `http://${this.addr}`; }

  /** The log so far, one line per entry. */
  log() { return this.logLines.join('\n'); }

  /** The proxy address from the listening line; rejects on exit, spawn error or timeout. */
  listening() {
    return new Promise((resolve, reject) => {
      const fail = (why) => {
        clearTimeout(timer);
        reject(new Error(`tmuxgate did not start: ${why}\n--- gateway log ---\n${this.log()}`));
      };
      const timer = setTimeout(() => fail(`no listening line in ${GATEWAY_START_TIMEOUT_MS} ms`),
        GATEWAY_START_TIMEOUT_MS);
      this.lines.on('line', (line) => {
        const addr = listeningAddress(line);
        if (addr) {
          clearTimeout(timer);
          resolve(addr);
        }
      });
      this.exited.then(({ code, signal }) => fail(`exited (code ${code}, signal ${signal})`));
      this.spawnError.then((error) => fail(`spawn failed: ${error.message}`));
    });
  }

  /** SIGTERM, wait for the exit, kill its tmux servers, remove the directory. Idempotent. */
  async stop() {
    if (!running.delete(this)) return;
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), GATEWAY_STOP_TIMEOUT_MS);
      await Promise.race([this.exited, this.spawnError]);
      clearTimeout(timer);
    }
    await Promise.all(tmuxSockets(this.socketDir).map(killServer));
    killStragglers(this.socketDir);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** The synchronous last resort of the exit hook. */
  stopNow() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    for (const socket of tmuxSockets(this.socketDir)) {
      spawnSync('tmux', ['-S', socket, 'kill-server'], { stdio: 'ignore', timeout: KILL_SERVER_TIMEOUT_MS });
    }
    killStragglers(this.socketDir);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** `fields.proxy` of a JSON `tmuxgate listening` log line, else null. */
function listeningAddress(line) {
  try {
    const entry = JSON.parse(line);
    return entry?.fields?.message === 'tmuxgate listening' ? entry.fields.proxy : null;
  } catch {
    return null;
  }
}

function tmuxSockets(socketDir) {
  let entries;
  try {
    entries = fs.readdirSync(socketDir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.filter((e) => e.isSocket()).map((e) => path.join(socketDir, e.name));
}

function killServer(socket) {
  return new Promise((resolve) => {
    const kill = spawn('tmux', ['-S', socket, 'kill-server'], { stdio: 'ignore' });
    const timer = setTimeout(() => kill.kill('SIGKILL'), KILL_SERVER_TIMEOUT_MS);
    kill.once('exit', () => { clearTimeout(timer); resolve(); });
    kill.once('error', () => { clearTimeout(timer); resolve(); });
  });
}

/**
 * SIGKILLs the tmux servers that survived `kill-server` (it hangs on tmux 3.3a while a control
 * client is unread): processes whose command line names our private socket directory.
 */
function killStragglers(socketDir) {
  for (const pid of fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let cmdline;
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline.includes(socketDir)) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ }
    }
  }
}

process.on('exit', () => {
  for (const gateway of running) gateway.stopNow();
});

// ---------------------------------------------------------------- TCP proxy

/**
 * A TCP proxy in front of `target` (`host:port`). `dropAll()` destroys every proxied
 * connection on both sides at once, as a network failure would; `block()` refuses new
 * connections (an outage) until `unblock()`.
 */
export async function startProxy(target) {
  const [host, port] = splitAddr(target);
  const pairs = new Set();
  let blocked = false;
  const server = net.createServer((client) => {
    if (blocked) {
      client.resetAndDestroy?.() ?? client.destroy();
      return;
    }
    const upstream = net.connect({ host, port });
    const pair = { client, upstream };
    pairs.add(pair);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: ownPort } = server.address();
  return {
    addr: `127.0.0.1:${ownPort}`,
    url: `http://127.0.0.1:${ownPort}`,
    /** Destroys every open connection; returns how many there were. */
    dropAll() {
      const count = pairs.size;
      for (const { client, upstream } of [...pairs]) {
        client.resetAndDestroy?.() ?? client.destroy();
        upstream.destroy();
      }
      pairs.clear();
      return count;
    },
    /** Cuts every connection and refuses new ones until `unblock()`; returns how many were cut. */
    block() {
      blocked = true;
      return this.dropAll();
    },
    unblock() {
      blocked = false;
    },
    async close() {
      this.dropAll();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function splitAddr(addr) {
  const colon = addr.lastIndexOf(':');
  return [addr.slice(0, colon), Number(addr.slice(colon + 1))];
}

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
 * A new browser context and page on the UI at `url`, once `#status` is `open`. Page errors
 * and console errors are collected in `page.problems` for assertion messages. `beforeLoad`
 * gets the page before it loads (to watch its WebSocket from the start).
 */
export async function openUi(browser, url, { viewport = { width: 1280, height: 800 }, colorScheme, beforeLoad } = {}) {
  const context = await browser.newContext({ viewport, colorScheme });
  const page = await context.newPage();
  await beforeLoad?.(page);
  page.problems = [];
  page.on('pageerror', (error) => page.problems.push(`pageerror: ${error.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.problems.push(`console: ${msg.text()}`);
  });
  page.on('dialog', (dialog) => dialog.accept());
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
