#!/usr/bin/env node
// Browser echo latency: keydown in headless Chromium -> the echoed character rendered by xterm.
//
// Starts its own gateway (release binary by default; DEFAULT_COMMAND='exec cat', so the pane's
// cooked tty echoes each key), opens the UI, creates a session through the page and presses
// one key at a time with real key events (page.keyboard.press), waiting for each echo before
// the next key.
//
// What is measured, inside the page:
//   start   a capture-phase `keydown` listener on the document: the event's `timeStamp`
//           (when the browser created the event; the listener's own performance.now() is kept
//           too, as `listener`)
//   parsed  the first `term.onWriteParsed` after it whose buffer cell just left of the cursor
//           holds the key (the echo reached xterm and was parsed)
//   end     the first `term.onRender` after `parsed`: xterm has drawn the rows holding the echo
//           (its renderer runs in an animation frame, so this includes the wait for a frame)
// Latency = end - start. The breakdown printed beside it: start -> listener (the browser
// delivering the key event), listener -> parsed (xterm's key handling, the UI's INPUT frame,
// WebSocket, gateway, tmux, tty echo, OUTPUT frame, xterm's parse) and parsed -> end (waiting
// for the animation frame and rendering). Timers are the page's performance.now(), 100 µs resolution in Chromium for a
// page that is not cross-origin isolated.
//
//   node web/bench/echo-latency.mjs [--gateway-bin PATH] [--samples 500] [--warmup 50]
//                                   [--json]   (only the JSON line on stdout)
//
// Prints p50/p95/p99/max in ms and one JSON line {"scenario":"browser-echo",...} (µs).

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

const { values: flags } = parseArgs({
  options: {
    'gateway-bin': { type: 'string', default: path.join(REPO, 'target/release/tmuxgate') },
    samples: { type: 'string', default: '500' },
    warmup: { type: 'string', default: '50' },
    json: { type: 'boolean', default: false },
  },
});
const samples = positive('samples');
const warmup = Number(flags.warmup);
const note = flags.json ? (...a) => console.error(...a) : (...a) => console.log(...a);

const gateway = await startGateway({ bin: flags['gateway-bin'], env: { DEFAULT_COMMAND: 'exec cat' } });
const browser = await launchBrowser();
try {
  const page = await openUi(browser, `${gateway.url}/`);
  const sessionId = await createSession(page, uniqueName('bench-echo'), { prompt: false });
  await instrument(page, sessionId);
  await focusTerminal(page, sessionId);
  const measured = await measure(page, sessionId, warmup, samples);
  report(measured, { renderer: await rendererName(page), chromium: browser.version() });
} finally {
  await browser.close();
  await gateway.stop();
}

function positive(name) {
  const n = Number(flags[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

/** Installs the keydown / write-parsed / render probes in the page (see the header). */
async function instrument(page, sessionId) {
  await page.evaluate((id) => {
    const { term } = window.tmuxgate.terminals().find((t) => t.sessionId === id);
    const probe = { pending: null, done: [], waiters: [] };
    window.__echoProbe = probe;
    const cursorCell = () => {
      const buffer = term.buffer.active;
      const line = buffer.getLine(buffer.baseY + buffer.cursorY);
      return { x: buffer.cursorX, y: buffer.baseY + buffer.cursorY, char: line?.getCell(buffer.cursorX - 1)?.getChars() };
    };
    document.addEventListener('keydown', (event) => {
      if (event.key.length !== 1) return;
      probe.pending = { key: event.key, start: event.timeStamp, listener: performance.now(), at: cursorCell() };
    }, { capture: true });
    term.onWriteParsed(() => {
      const p = probe.pending;
      if (!p || p.parsed !== undefined) return;
      const cell = cursorCell();
      const moved = cell.x !== p.at.x || cell.y !== p.at.y;
      if (moved && cell.char === p.key) p.parsed = performance.now();
    });
    term.onRender(() => {
      const p = probe.pending;
      if (!p || p.parsed === undefined) return;
      p.end = performance.now();
      probe.pending = null;
      probe.done.push(p);
      probe.waiters.splice(0).forEach((wake) => wake());
    });
    probe.waitFor = (count, timeoutMs) => new Promise((resolve, reject) => {
      if (probe.done.length >= count) return resolve();
      const timer = setTimeout(() => reject(new Error(`no echo of key ${count} in ${timeoutMs} ms`)), timeoutMs);
      const wake = () => {
        if (probe.done.length < count) return probe.waiters.push(wake);
        clearTimeout(timer);
        resolve();
      };
      probe.waiters.push(wake);
    });
  }, sessionId);
}

/** Presses `warmup + samples` keys one at a time; returns the measured (non-warm-up) probes. */
async function measure(page, sessionId, warmup, samples) {
  const total = warmup + samples;
  for (let i = 1; i <= total; i += 1) {
    await page.keyboard.press(KEYS[i % KEYS.length]);
    await page.evaluate(({ i, timeout }) => window.__echoProbe.waitFor(i, timeout), { i, timeout: ECHO_TIMEOUT_MS });
    if (i % KEYS_PER_LINE === 0) await newLine(page, sessionId);
  }
  const probes = await page.evaluate(() => window.__echoProbe.done);
  return probes.slice(warmup);
}

/** Enter, then wait until `cat` printed the line back: the cursor is at column 0 below both copies. */
async function newLine(page, sessionId) {
  const start = await page.evaluate((id) => {
    const { term } = window.tmuxgate.terminals().find((t) => t.sessionId === id);
    const b = term.buffer.active;
    return { y: b.baseY + b.cursorY };
  }, sessionId);
  await page.keyboard.press('Enter');
  await page.waitForFunction(({ id, y, keys }) => {
    const { term } = window.tmuxgate.terminals().find((t) => t.sessionId === id);
    const b = term.buffer.active;
    return b.cursorX === 0 && b.baseY + b.cursorY >= y + 1 + Math.ceil(keys / term.cols);
  }, { id: sessionId, y: start.y, keys: KEYS_PER_LINE }, { timeout: ECHO_TIMEOUT_MS });
}

/** Which xterm renderer drew: webgl (a canvas with a webgl context) or dom. */
function rendererName(page) {
  return page.evaluate(() => (document.querySelector('.xterm-screen canvas') ? 'webgl/canvas' : 'dom'));
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

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
  const total = summary(probes.map((p) => p.end - p.start));
  const dispatch = summary(probes.map((p) => p.listener - p.start));
  const roundTrip = summary(probes.map((p) => p.parsed - p.listener));
  const render = summary(probes.map((p) => p.end - p.parsed));
  const fromListener = summary(probes.map((p) => p.end - p.listener));
  const ms = (us) => (us / 1000).toFixed(2).padStart(7);
  const row = (label, s) => note(`${label.padEnd(38)}${ms(s.p50_us)}${ms(s.p95_us)}${ms(s.p99_us)}${ms(s.max_us)}`);
  note(`browser echo: ${total.n} samples after ${warmup} warm-up; Chromium ${context.chromium}, renderer ${context.renderer}`);
  note(`${''.padEnd(38)}${'p50'.padStart(7)}${'p95'.padStart(7)}${'p99'.padStart(7)}${'max'.padStart(7)}  (ms)`);
  row('keydown timeStamp -> echo rendered', total);
  row('  timeStamp -> keydown listener', dispatch);
  row('  listener -> echo parsed by xterm', roundTrip);
  row('  echo parsed -> rendered', render);
  row('keydown listener -> echo rendered', fromListener);
  console.log(JSON.stringify({
    scenario: 'browser-echo',
    ...total,
    warmup,
    detect: 'keydown event.timeStamp (capture listener) -> term.onRender after term.onWriteParsed saw the key left of the cursor',
    dispatch,
    round_trip: roundTrip,
    render,
    from_listener: fromListener,
    renderer: context.renderer,
    chromium: context.chromium,
    gateway_bin: flags['gateway-bin'],
  }));
}
