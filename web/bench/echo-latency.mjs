#!/usr/bin/env node
// Browser echo latency: keydown in headless Chromium -> the echoed character rendered by xterm.
//
// Starts its own gateway (release binary by default; DEFAULT_COMMAND='exec cat', so the pane's
// cooked tty echoes each key), opens the UI in Debian's headless Chromium, creates a session
// through the page and presses one key at a time with real key events (page.keyboard.press),
// waiting for each echo to be rendered before the next key.
//
// Measured inside the page, on its performance.now() clock (100 µs resolution: the page is not
// cross-origin isolated):
//   start     a capture-phase `keydown` listener on the document: the event's `timeStamp`,
//             when the browser created the event (`listener` = the listener's own now())
//   sent      the first binary WebSocket.send after it (the INPUT frame)
//   received  the first binary `message` event after that (the OUTPUT frame with the echo)
//   parsed    the first `term.onWriteParsed` after it whose buffer cell just left of the
//             cursor holds the key, the cursor having moved
//   end       the first `term.onRender` after `parsed`: xterm drew the rows holding the echo.
//             Its renderer runs in an animation frame, so this includes the wait for a frame
//             (the detection is "onRender after onWriteParsed", not a requestAnimationFrame)
// Latency = end - start, broken down into dispatch (start -> listener), input (listener ->
// sent: xterm's key handling, the UI's INPUT frame), network (sent -> received: Chromium's
// network service, the gateway, tmux, the tty echo, and Chromium delivering the message to
// the page), parse (received -> parsed) and render (parsed -> end). `sent` and `received` come
// from a wrapper around the page's WebSocket installed before the UI loads (one `now()` call
// per frame). Reading it: after a key event Chromium runs other tasks (timers, WebSocket
// messages) only once the next frame is done, so `network` includes the wait for that frame
// though the echo through the gateway takes a millisecond or less, and `render` then waits for
// the frame after it (xterm draws in requestAnimationFrame).
//
//   node web/bench/echo-latency.mjs [--gateway-bin PATH] [--samples 500] [--warmup 50]
//                                   [--chromium-arg ARG]...  (added to the harness's flags)
//                                   [--force-webgl]  (the UI's WebGL renderer on software WebGL,
//                                                     which it avoids by itself)
//                                   [--json]   (only the JSON line on stdout)
//
// Prints p50/p95/p99/max in ms and one JSON line {"scenario":"browser-echo",...} in µs.

import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  createSession, focusTerminal, launchBrowser, openUi, REPO, startGateway, uniqueName,
} from '../test/harness.mjs';

/** Keys typed, in turn (never the same key twice in a row). */
const KEYS = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** Enter after this many keys: keeps the tty's line (at most 4096 bytes) short. */
const KEYS_PER_LINE = 500;
const ECHO_TIMEOUT_MS = 5_000;
/** Stages of one sample, in order, and the breakdown between consecutive ones. */
const STAGES = ['start', 'listener', 'sent', 'received', 'parsed', 'end'];
const PARTS = ['dispatch', 'input', 'network', 'parse', 'render'];

const { values: flags } = parseArgs({
  options: {
    'gateway-bin': { type: 'string', default: path.join(REPO, 'target/release/tmuxgate') },
    samples: { type: 'string', default: '500' },
    warmup: { type: 'string', default: '50' },
    json: { type: 'boolean', default: false },
    'chromium-arg': { type: 'string', multiple: true, default: [] },
    'force-webgl': { type: 'boolean', default: false },
  },
});
const samples = count('samples', 1);
const warmup = count('warmup', 0);
const note = flags.json ? (...a) => console.error(...a) : (...a) => console.log(...a);

const gateway = await startGateway({ bin: flags['gateway-bin'], env: { DEFAULT_COMMAND: 'exec cat' } });
let browser;
try {
  browser = await launchBrowser({ args: flags['chromium-arg'] });
  const page = await openUi(browser, `${gateway.url}/`, {
    beforeLoad: async (p) => {
      await p.addInitScript(probeSockets);
      if (flags['force-webgl']) await p.addInitScript(passSoftwareWebglAsHardware);
    },
  });
  const sessionId = await createSession(page, uniqueName('bench-echo'), { prompt: false });
  await page.evaluate(probeTerminal, sessionId);
  await focusTerminal(page, sessionId);
  const measured = await measure(page, sessionId);
  report(measured, { renderer: await rendererName(page), chromium: browser.version() });
} finally {
  await browser?.close();
  await gateway.stop();
}

function count(name, least) {
  const n = Number(flags[name]);
  if (!Number.isInteger(n) || n < least) throw new Error(`--${name} must be an integer >= ${least}`);
  return n;
}

/** In the page, before the UI loads: the probe object and the WebSocket send/receive stamps. */
function probeSockets() {
  const probe = { pending: null, done: [], waiters: [] };
  window.__echoProbe = probe;
  document.addEventListener('keydown', (event) => {
    if (event.key.length !== 1) return;
    probe.pending = { key: event.key, start: event.timeStamp, listener: performance.now() };
  }, { capture: true });
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function stampedSend(data) {
    const p = probe.pending;
    if (p && p.sent === undefined && typeof data !== 'string') p.sent = performance.now();
    return send.call(this, data);
  };
  const Native = WebSocket;
  window.WebSocket = class StampedWebSocket extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        const p = probe.pending;
        if (p?.sent !== undefined && p.received === undefined && typeof event.data !== 'string') {
          p.received = performance.now();
        }
      });
    }
  };
}

/**
 * In the page, before the UI loads: WebGL2 contexts ignore `failIfMajorPerformanceCaveat` and
 * name their renderer "bench GPU", so the UI picks its WebGL renderer on SwiftShader too.
 */
function passSoftwareWebglAsHardware() {
  const getContext = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function anyWebgl(kind, options) {
    const relaxed = kind === 'webgl2' && options ? { ...options, failIfMajorPerformanceCaveat: false } : options;
    return getContext.call(this, kind, relaxed);
  };
  const getParameter = WebGL2RenderingContext.prototype.getParameter;
  WebGL2RenderingContext.prototype.getParameter = function namedGpu(name) {
    const value = getParameter.call(this, name);
    return typeof value === 'string' && /swiftshader|software/i.test(value) ? 'bench GPU' : value;
  };
}

/** In the page, once the terminal exists: the parsed and rendered stamps, and `waitFor`. */
function probeTerminal(sessionId) {
  const probe = window.__echoProbe;
  const { term } = window.tmuxgate.terminals().find((t) => t.sessionId === sessionId);
  const cursor = () => {
    const buffer = term.buffer.active;
    const y = buffer.baseY + buffer.cursorY;
    return { x: buffer.cursorX, y, char: buffer.getLine(y)?.getCell(buffer.cursorX - 1)?.getChars() };
  };
  document.addEventListener('keydown', () => {
    if (probe.pending && probe.pending.at === undefined) probe.pending.at = cursor();
  }, { capture: true });
  term.onWriteParsed(() => {
    const p = probe.pending;
    if (!p?.at || p.parsed !== undefined) return;
    const now = cursor();
    if ((now.x !== p.at.x || now.y !== p.at.y) && now.char === p.key) p.parsed = performance.now();
  });
  term.onRender(() => {
    const p = probe.pending;
    if (p?.parsed === undefined) return;
    p.end = performance.now();
    probe.pending = null;
    probe.done.push(p);
    probe.waiters.splice(0).forEach((wake) => wake());
  });
  probe.waitFor = (n, timeoutMs) => new Promise((resolve, reject) => {
    if (probe.done.length >= n) return resolve();
    const timer = setTimeout(() => reject(new Error(`no echo of key ${n} in ${timeoutMs} ms`)), timeoutMs);
    const wake = () => {
      if (probe.done.length < n) return probe.waiters.push(wake);
      clearTimeout(timer);
      resolve();
    };
    probe.waiters.push(wake);
  });
}

/** Presses `warmup + samples` keys one at a time; returns the measured (non-warm-up) probes. */
async function measure(page, sessionId) {
  for (let i = 1; i <= warmup + samples; i += 1) {
    await page.keyboard.press(KEYS[i % KEYS.length]);
    await page.evaluate(({ i, timeout }) => window.__echoProbe.waitFor(i, timeout), { i, timeout: ECHO_TIMEOUT_MS });
    if (i % KEYS_PER_LINE === 0) await newLine(page, sessionId);
  }
  const probes = await page.evaluate(() => window.__echoProbe.done);
  return probes.slice(warmup);
}

/** Enter, then wait until `cat` printed the line back: the cursor is at column 0 below both copies. */
async function newLine(page, sessionId) {
  const y = await page.evaluate((id) => {
    const b = window.tmuxgate.terminals().find((t) => t.sessionId === id).term.buffer.active;
    return b.baseY + b.cursorY;
  }, sessionId);
  await page.keyboard.press('Enter');
  await page.waitForFunction(({ id, y, keys }) => {
    const { term } = window.tmuxgate.terminals().find((t) => t.sessionId === id);
    const b = term.buffer.active;
    return b.cursorX === 0 && b.baseY + b.cursorY >= y + 1 + Math.ceil(keys / term.cols);
  }, { id: sessionId, y, keys: KEYS_PER_LINE }, { timeout: ECHO_TIMEOUT_MS });
}

/** Which xterm renderer drew: `dom` (rows as DOM elements) or `webgl` (a canvas). */
function rendererName(page) {
  return page.evaluate(() => (document.querySelector('.terminal-view .xterm-rows') ? 'dom' : 'webgl'));
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

/** `n`, `p50_us`, `p95_us`, `p99_us`, `max_us`, `mean_us` of durations in ms (as tmuxgate-bench). */
function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const us = (ms) => Math.round(ms * 10_000) / 10;
  return {
    n: sorted.length,
    p50_us: us(quantile(sorted, 0.5)),
    p95_us: us(quantile(sorted, 0.95)),
    p99_us: us(quantile(sorted, 0.99)),
    max_us: us(sorted[sorted.length - 1]),
    mean_us: us(sorted.reduce((a, b) => a + b, 0) / sorted.length),
  };
}

function report(probes, context) {
  const complete = probes.filter((p) => STAGES.every((s) => p[s] !== undefined));
  if (complete.length !== probes.length) {
    note(`note: ${probes.length - complete.length} samples missed a send or receive stamp; the breakdown omits them`);
  }
  const total = summary(probes.map((p) => p.end - p.start));
  const parts = Object.fromEntries(PARTS.map((part, i) =>
    [part, summary(complete.map((p) => p[STAGES[i + 1]] - p[STAGES[i]]))]));
  const ms = (us) => (us / 1000).toFixed(2).padStart(8);
  const row = (label, s) => note(`${label.padEnd(44)}${ms(s.p50_us)}${ms(s.p95_us)}${ms(s.p99_us)}${ms(s.max_us)}`);
  note(`browser echo: ${total.n} samples after ${warmup} warm-up; Chromium ${context.chromium} headless, ` +
    `xterm renderer ${context.renderer}; gateway ${flags['gateway-bin']}` +
    (flags['chromium-arg'].length ? `; extra Chromium flags ${flags['chromium-arg'].join(' ')}` : ''));
  note(`${''.padEnd(44)}${['p50', 'p95', 'p99', 'max'].map((h) => h.padStart(8)).join('')}  (ms)`);
  row('keydown -> echo rendered (onRender)', total);
  row('  dispatch: keydown timeStamp -> listener', parts.dispatch);
  row('  input:    listener -> INPUT frame sent', parts.input);
  row('  network:  sent -> OUTPUT frame received', parts.network);
  row('  parse:    received -> parsed by xterm', parts.parse);
  row('  render:   parsed -> rendered', parts.render);
  console.log(JSON.stringify({
    scenario: 'browser-echo',
    ...total,
    warmup,
    detect: 'keydown event.timeStamp -> term.onRender after term.onWriteParsed showed the key left of the cursor',
    ...parts,
    renderer: context.renderer,
    chromium: context.chromium,
    gateway_bin: flags['gateway-bin'],
    chromium_args: flags['chromium-arg'],
  }));
}
