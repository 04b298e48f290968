// Output is not trusted. A program in a pane can print any bytes, and some are written to
// attack the terminal that shows them: OSC 52 writes (and reads) the clipboard, OSC 0/2 set
// the window title, title reports (CSI 20t/21t) and other queries make the terminal type an
// answer into the shell (a title report types a title the program chose: a command), HTML
// hopes to be parsed, OSC 8 links carry `javascript:` URIs, and resets, huge moves and
// repeats, mode switches, endless lines and broken UTF-8 try to wedge or wreck the page.
//
// The outcome (docs/security.md, "a program in a pane"): output is only bytes for xterm.js,
// never HTML; no clipboard addon, so OSC 52 is ignored; no `windowOptions`, so no title is
// reported back; the terminal types nothing into the pane of its own (tmux is the pane's
// terminal and answers its queries); the page's title is the UI's own; links open only for
// http(s), after a confirm, without an opener; and whatever the bytes, the page keeps
// answering, the tab stays `live` and the next command runs without a `reset`.
//
// The pane prints each payload with `cat` from a file this process wrote (the pane's shell
// runs as the same user on the same machine), then a marker that says the cat is done.
// Everything the terminal emits as input (`term.onData`) is recorded, so an answer shows
// as what it is, before it can do anything in the shell.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  createSession, openUi, outputLines, paneSizeMatching, typeLine, uniqueName, useGatewayAndBrowser, view,
  waitForText, WAIT_TIMEOUT_MS,
} from './harness.mjs';

const fixture = useGatewayAndBrowser();

const payloadDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tmuxgate-hostile-'));
after(() => fs.rmSync(payloadDir, { recursive: true, force: true }));

const ESC = '\x1b';
const BEL = '\x07';
const ST = `${ESC}\\`;

/** What the page's clipboard holds before the pane tries to write it. */
const KNOWN_CLIPBOARD = 'known-clipboard-value-17';
const OSC52_TEXT = 'pwned-by-osc52';
/**
 * The longest the page's main thread may be busy with one task while it shows hostile
 * output: far above what parsing and drawing these payloads takes on a loaded machine
 * (about 200 ms for the largest), far below a wedged page.
 */
const RESPONSIVE_MS = 5_000;
/** How long a payload that may stall the page gets before the test looks at why. */
const STALL_TIMEOUT_MS = 180_000;

test('OSC 52 neither writes nor reads the clipboard', async (t) => {
  const { page, sessionId } = await openSession(t, 'osc52');
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: fixture.gateway.url });
  await page.evaluate((text) => navigator.clipboard.writeText(text), KNOWN_CLIPBOARD);
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), KNOWN_CLIPBOARD);

  const encoded = Buffer.from(OSC52_TEXT).toString('base64');
  const { text, answered } = await catPayload(page, sessionId,
    `${ESC}]52;c;${encoded}${BEL}` + // write, BEL-terminated
    `${ESC}]52;c;${encoded}${ST}` + // write, ST-terminated
    `${ESC}]52;cp;${encoded}${ST}` + // clipboard and primary selection
    `${ESC}]52;c;?${BEL}` + // read: a clipboard addon would type the clipboard into the pane
    'osc52-printed\n');
  assert.match(text, /^osc52-printed$/m, 'the text after the sequences printed');
  assert.equal(answered, '', 'the terminal answered OSC 52 into the pane');
  // One more round trip through the shell: a clipboard write the sequences started has landed.
  await typeLine(page, sessionId, 'echo after-$((1+1))');
  const later = await waitForText(page, sessionId, /^after-2$/m);

  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), KNOWN_CLIPBOARD,
    'OSC 52 wrote the clipboard');
  assert.ok(!later.includes(Buffer.from(KNOWN_CLIPBOARD).toString('base64')) && !later.includes(KNOWN_CLIPBOARD),
    `the clipboard reached the pane:\n${later}`);
  assert.ok(!later.includes(OSC52_TEXT) && !later.includes(encoded), `the sequences leaked as text:\n${later}`);
  assert.deepEqual(page.problems, []);
});

test('OSC 0 and OSC 2 do not change the page title', async (t) => {
  const { page, name, sessionId } = await openSession(t, 'title');
  assert.equal(await page.title(), `${name} · tmuxgate`);
  const { text, answered } = await catPayload(page, sessionId,
    `${ESC}]0;evil-title-0${BEL}${ESC}]2;evil-title-2${BEL}${ESC}]2;evil-title-st${ST}${ESC}]1;evil-icon${BEL}` +
    'title-printed\n');
  assert.match(text, /^title-printed$/m);
  assert.equal(await page.title(), `${name} · tmuxgate`, 'the pane set the page title');
  assert.ok(!text.includes('evil-'), `the titles leaked as text:\n${text}`);
  assert.equal(answered, '');
  assert.deepEqual(page.problems, []);
});

test('title reports type nothing into the shell: a title set to a command never runs', async (t) => {
  const { page, sessionId } = await openSession(t, 'title-report');
  // The title is a command ending in `; `: typed back by a report, it would run with the
  // next line the user enters, and print INJECTED-42 as a line of its own.
  const command = 'echo INJECTED-$((6*7)); ';
  const { text, answered } = await catPayload(page, sessionId,
    `${ESC}]2;${command}${BEL}${ESC}]1;${command}${BEL}` +
    `${ESC}[21t${ESC}[20t` + // report the window title, the icon label
    'reports-printed\n');
  assert.match(text, /^reports-printed$/m);
  assert.equal(answered, '', 'the terminal reported the title into the pane');

  await typeLine(page, sessionId, 'echo after-$((1+1))');
  const later = await waitForText(page, sessionId, /^after-2$/m);
  assert.deepEqual(outputLines(later, 'INJECTED-42'), [], `a title report ran as a command:\n${later}`);
  assert.ok(!later.includes('INJECTED-42'), `a title report was typed:\n${later}`);
  assert.ok(!/command not found/.test(later), `a report was typed as a command:\n${later}`);
  assert.equal(outputLines(later, 'after-2').length, 1, `the next line ran alone:\n${later}`);
  assert.deepEqual(page.problems, []);
});

test('queries type nothing into the shell: the browser leaves the answers to tmux', async (t) => {
  const { page, sessionId } = await openSession(t, 'queries');
  // tmux is the pane's terminal: it answers what it knows (DA, DSR, ...) itself, as any
  // terminal would. The browser's terminal sees the same bytes; an answer of its own would
  // reach the pane as typed input, after the program that asked had its answer, and land
  // on the shell's command line. First, queries tmux 3.3a leaves unanswered: anything on
  // the command line after them could only come from the browser.
  let { text, answered } = await catPayload(page, sessionId,
    `${ESC}P$qm${ST}` + // DECRQSS: the SGR state (its answer starts a readline history search)
    `${ESC}P$q"q${ST}` + // DECRQSS: DECSCA
    'unanswered-printed\n');
  assert.match(text, /^unanswered-printed$/m);
  assert.equal(answered, '', `the terminal typed answers into the pane: ${JSON.stringify(answered)}`);
  await typeLine(page, sessionId, 'echo after-$((1+1))');
  const later = await waitForText(page, sessionId, /^after-2$/m);
  assert.ok(!/command not found/.test(later), `an answer was typed as a command:\n${later}`);
  assert.equal(outputLines(later, 'after-2').length, 1, `the next line ran alone:\n${later}`);

  // Then queries tmux answers (its answers reach the pane, as from any terminal): the
  // browser adds none of its own.
  ({ text, answered } = await catPayload(page, sessionId,
    `${ESC}[c${ESC}[>c${ESC}[=c` + // DA1, DA2, DA3
    `${ESC}[5n${ESC}[6n${ESC}[?6n` + // DSR: status, cursor position
    `${ESC}[?2004$p${ESC}[4$p` + // DECRQM: a private mode, an ANSI mode
    `${ESC}[>0q` + // XTVERSION
    `${ESC}P+q544e${ST}` + // XTGETTCAP: TN
    `${ESC}]10;?${BEL}${ESC}]11;?${ST}${ESC}]4;1;?${BEL}` + // colour queries
    'answered-printed\n'));
  assert.match(text, /^answered-printed$/m);
  assert.equal(answered, '', `the terminal typed answers into the pane: ${JSON.stringify(answered)}`);
  assert.deepEqual(page.problems, []);
});

test('focus reports stay off: focusing the page types nothing into the pane', async (t) => {
  const { page, sessionId } = await openSession(t, 'focus');
  // A program turning focus reports on: tmux, the pane's terminal, sends them (when its
  // clients' focus changes); the browser's terminal would type ESC [ I / ESC [ O.
  const { text, answered } = await catPayload(page, sessionId, `${ESC}[?1004h` + 'focus-printed\n');
  assert.match(text, /^focus-printed$/m);
  assert.equal(answered, '');
  const emitted = await page.evaluate((id) => {
    const { term } = window.tmuxgate.terminals().find((x) => x.sessionId === id);
    window.__emitted.length = 0;
    term.blur();
    term.focus();
    return { mode: term.modes.sendFocusMode, data: window.__emitted.join('') };
  }, sessionId);
  assert.deepEqual(emitted, { mode: false, data: '' });
  assert.deepEqual(page.problems, []);
});

test('HTML in the output is text: nothing is parsed or run', async (t) => {
  const { page, sessionId } = await openSession(t, 'html');
  const img = '<img src=x onerror="window.__pwned=1">';
  const script = '<script>window.__pwned=2</script>';
  const { text, answered } = await catPayload(page, sessionId, `${img}\n${script}\n`);
  assert.equal(outputLines(text, img).length, 1, `the <img> tag shows literally:\n${text}`);
  assert.equal(outputLines(text, script).length, 1, `the <script> tag shows literally:\n${text}`);

  const dom = await page.evaluate(() => ({
    pwned: window.__pwned,
    images: [...document.querySelectorAll('img')].filter((i) => i.getAttribute('src') === 'x').length,
    scripts: [...document.querySelectorAll('script')].filter((s) => s.textContent.includes('__pwned')).length,
    handlers: document.querySelectorAll('[onerror]').length,
  }));
  assert.deepEqual(dom, { pwned: undefined, images: 0, scripts: 0, handlers: 0 });
  assert.equal(answered, '');
  assert.deepEqual(page.problems, []);
});

test('OSC 8 links: javascript: is no link, http opens after a confirm without an opener', async (t) => {
  const { page, sessionId } = await openSession(t, 'osc8');
  const dialogs = [];
  page.on('dialog', (dialog) => dialogs.push({ type: dialog.type(), message: dialog.message() }));
  const opened = [];
  page.context().on('page', (p) => opened.push(p));

  const target = `${fixture.gateway.url}/osc8-target`;
  await catPayload(page, sessionId,
    `${ESC}]8;;javascript:window.__pwned=3${ST}click-me-js${ESC}]8;;${ST}\n` +
    `${ESC}]8;;${target}${ST}click-me-http${ESC}]8;;${ST}\n`);
  const js = await cellCentre(page, sessionId, 'click-me-js');
  const http = await cellCentre(page, sessionId, 'click-me-http');

  // Hovering the http link makes it one (xterm's pointer cursor): the positions are right.
  await page.mouse.move(http.x, http.y);
  await waitForPointer(page, sessionId, true);
  // The javascript: link is none: over it, the pointer goes. Had xterm taken it for a link,
  // the pointer would stay, and the click below would ask to open it.
  await page.mouse.move(js.x, js.y);
  await waitForPointer(page, sessionId, false);
  await page.mouse.click(js.x, js.y);

  // Clicked after the javascript: link: whatever that click did happened before this dialog.
  const popupOpened = page.context().waitForEvent('page', { timeout: WAIT_TIMEOUT_MS });
  await page.mouse.move(http.x, http.y);
  await waitForPointer(page, sessionId, true);
  await page.mouse.click(http.x, http.y);
  const popup = await popupOpened;
  await popup.waitForURL(target, { timeout: WAIT_TIMEOUT_MS });

  assert.deepEqual(dialogs.map((d) => d.type), ['confirm'], `one dialog, the http link's: ${JSON.stringify(dialogs)}`);
  assert.ok(dialogs[0].message.includes(target), `the confirm names the URL: ${dialogs[0].message}`);
  assert.deepEqual(opened.map((p) => p.url()), [target], 'one page opened, the http link\'s');
  assert.equal(await popup.evaluate(() => window.opener), null, 'the opened page has no opener');
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.equal(new URL(page.url()).pathname, '/', 'the UI page did not navigate');
  assert.deepEqual(page.problems, []);
});

test('resets, huge moves, mode switches, a 100 KiB line and broken UTF-8 leave the tab working', async (t) => {
  const { page, sessionId } = await openSession(t, 'wreck');
  await watchLongTasks(page);
  const payload = Buffer.concat([
    Buffer.from(
      'before-reset\n' +
      `${ESC}c` + // RIS
      `${ESC}[99999;99999H*${ESC}[99999A${ESC}[99999D${ESC}[99999;99999r${ESC}[99999@${ESC}[99999L` + // huge moves, margins, inserts
      `${ESC}[?1000h${ESC}[?1002h${ESC}[?1003h${ESC}[?1006h` + // mouse tracking, SGR reports
      `${'A'.repeat(100 * 1024)}`, // 100 KiB without a newline
      'latin1'),
    Buffer.from([0xff, 0xfe, 0x80, 0x80, 0xbf, 0xc3, 0x28, 0xe2, 0x82, 0xf0, 0x9f, 0x98, 0x0a]), // invalid UTF-8
    Buffer.from(`${ESC}[?1049h` + 'wrecked\n', 'latin1'), // the alternate screen, never left
  ]);
  const { text, answered } = await catPayload(page, sessionId, payload, STALL_TIMEOUT_MS);
  assert.match(text, /^wrecked$/m, 'the line after the payload printed');
  assert.equal(answered, '');

  // Leave the alternate screen and the mouse modes the way a program would, not with `reset`.
  await expectAlive(page, sessionId, "printf '\\033[?1049l\\033[?1000l\\033[?1002l\\033[?1003l\\033[?1006l'; ");
  const longest = await longestTask(page);
  t.diagnostic(`longest task: ${Math.round(longest)} ms`);
  assert.ok(longest < RESPONSIVE_MS, `the page's main thread was busy ${Math.round(longest)} ms at once`);
});

test('huge counts (REP, IL, DL, SU, SD, CHT, CBT) do not stall the page', async (t) => {
  const { page, sessionId } = await openSession(t, 'repeat');
  await watchLongTasks(page);
  // 13 bytes asking to repeat the R 999,999,999 times. tmux, the pane's terminal, repeats
  // it to the end of the row at most; a terminal that does all the repeats is busy for as
  // long as printing a gigabyte takes. The same count of lines inserted, deleted or
  // scrolled, or of tab stops moved, is one step of a loop each in xterm.js.
  const huge = ['b', 'L', 'M', 'S', 'T', 'I', 'Z'].map((final) => `${ESC}[999999999${final}`).join('');
  const { text, answered } = await catPayload(page, sessionId, `R${huge}\nrepeated\n`, STALL_TIMEOUT_MS);
  assert.match(text, /^repeated$/m, 'the line after the repeat printed');
  assert.equal(answered, '');

  await expectAlive(page, sessionId);
  const longest = await longestTask(page);
  t.diagnostic(`longest task: ${Math.round(longest)} ms`);
  assert.ok(longest < RESPONSIVE_MS, `one REP kept the page's main thread busy ${Math.round(longest)} ms at once`);
});

// ---------------------------------------------------------------- helpers

let payloads = 0;

/** A page on the UI (closed when the test ends) with a new session at its prompt. */
async function openSession(t, prefix) {
  const page = await openUi(fixture.browser, `${fixture.gateway.url}/`);
  t.after(() => page.context().close());
  const name = uniqueName(prefix);
  const sessionId = await createSession(page, name);
  // The shell lays out what it echoes for the pane's size: the tests read the page's screen.
  await paneSizeMatching(page, sessionId);
  return { page, name, sessionId };
}

/**
 * Writes `bytes` (a Buffer, or a string taken as latin1: a byte a char) to a file, has the
 * session's shell `cat` it, and waits until the shell says the cat is done. Returns the
 * buffer then (`text`), and what the terminal emitted as input besides the typed line
 * (`answered`): answers to queries in the payload, which would reach the pane.
 */
async function catPayload(page, sessionId, bytes, timeout = WAIT_TIMEOUT_MS) {
  const n = ++payloads;
  const file = path.join(payloadDir, `payload-${n}`);
  fs.writeFileSync(file, typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  const line = `cat ${file}; echo cat-done-$((20+22))-${n}`;
  await page.evaluate((id) => {
    if (!window.__emitted) {
      window.__emitted = [];
      window.tmuxgate.terminals().find((t) => t.sessionId === id).term.onData((data) => window.__emitted.push(data));
    }
    window.__emitted.length = 0;
  }, sessionId);
  await typeLine(page, sessionId, line);
  // Not anchored at the line's start: the tty echoes whatever reaches the pane while cat runs.
  const text = await waitForText(page, sessionId, new RegExp(`cat-done-42-${n}$`, 'm'), timeout);
  const emitted = await page.evaluate(() => window.__emitted.join(''));
  assert.ok(emitted.startsWith(`${line}\r`), `the terminal emitted the typed line first: ${JSON.stringify(emitted)}`);
  return { text, answered: emitted.slice(line.length + 1) };
}

/**
 * Without a `reset`: runs `before` (if given) and a command, and checks the command ran, the
 * page answers, shows the normal buffer without mouse reports, and the tab is still live.
 */
async function expectAlive(page, sessionId, before = '') {
  await typeLine(page, sessionId, `${before}echo alive-$((1+1))`);
  const alive = await waitForText(page, sessionId, /^alive-2$/m);
  assert.equal(outputLines(alive, 'alive-2').length, 1, `the command ran once:\n${alive.slice(-2000)}`);
  const state = await page.evaluate((id) => {
    const terminal = window.tmuxgate.terminals().find((t) => t.sessionId === id);
    return { state: terminal.state, buffer: terminal.term.buffer.active.type, mouse: terminal.term.modes.mouseTrackingMode };
  }, sessionId);
  assert.deepEqual(state, { state: 'live', buffer: 'normal', mouse: 'none' });
  assert.equal(await view(page, sessionId).getAttribute('data-state'), 'live');
  assert.equal(await page.locator('#status').getAttribute('data-state'), 'open');
  assert.deepEqual(page.problems, []);
}

/** Records the page's long tasks (main thread busy over 50 ms) from now on. */
async function watchLongTasks(page) {
  await page.evaluate(() => {
    window.__longestTask = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.__longestTask = Math.max(window.__longestTask, entry.duration);
    }).observe({ type: 'longtask' });
  });
}

/** The longest task seen since `watchLongTasks`, in milliseconds. */
function longestTask(page) {
  return page.evaluate(() => window.__longestTask);
}

/** Waits until the session's screen shows (or stops showing) xterm's link pointer. */
async function waitForPointer(page, sessionId, shown) {
  await page.waitForFunction(({ id, shown }) => document
    .querySelector(`.terminal-view[data-session-id="${id}"] .xterm-screen`)
    .classList.contains('xterm-cursor-pointer') === shown, { id: sessionId, shown }, { timeout: WAIT_TIMEOUT_MS });
}

/**
 * The page coordinates of the middle of the second cell of `word` on the session's screen,
 * from `.xterm-screen`'s box divided into the terminal's cells.
 */
async function cellCentre(page, sessionId, word) {
  const cell = await page.evaluate(({ id, word }) => {
    const { term } = window.tmuxgate.terminals().find((t) => t.sessionId === id);
    const buffer = term.buffer.active;
    let row = -1;
    let col = -1;
    for (let y = buffer.length - 1; y >= 0 && row < 0; y--) {
      const at = buffer.getLine(y)?.translateToString(true).indexOf(word) ?? -1;
      if (at >= 0) [row, col] = [y, at];
    }
    const box = document.querySelector(`.terminal-view[data-session-id="${id}"] .xterm-screen`).getBoundingClientRect();
    return {
      row, col, viewportY: buffer.viewportY, cols: term.cols, rows: term.rows,
      left: box.left, top: box.top, width: box.width, height: box.height,
    };
  }, { id: sessionId, word });
  assert.ok(cell.row >= 0, `${word} is in the buffer`);
  const screenRow = cell.row - cell.viewportY;
  assert.ok(screenRow >= 0 && screenRow < cell.rows, `${word} is on the screen: ${JSON.stringify(cell)}`);
  return {
    x: cell.left + (cell.col + 1.5) * (cell.width / cell.cols),
    y: cell.top + (screenRow + 0.5) * (cell.height / cell.rows),
  };
}
