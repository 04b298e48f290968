// Command execution watched from a browser (issue 7): a program sends `command-execute`
// over its own WebSocket while the UI shows the same session, and the person watching sees
// the canonical line typed and its output, on the same attachment (no re-attach, no
// snapshot). A line the person is half-way through typing is never appended to: the
// command answers `conflict` until the line is cleared.
//
// Sessions run the gateway's integrated bash (DEFAULT_COMMAND unset) under the built-in
// policy; authentication is off, so the program acts as `admin`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import {
  createSession, focusTerminal, openUi, outputLines, terminalInfo, uniqueName, useGatewayAndBrowser,
  waitForText, watchAttaches, WAIT_TIMEOUT_MS,
} from './harness.mjs';

const fixture = useGatewayAndBrowser({ gateway: { env: { DEFAULT_COMMAND: null } } });

/** The SNAPSHOT frame kind (first byte of a binary frame, see src/frames.js). */
const SNAPSHOT = 0x03;
/** A cursor row holding only the prompt (`user@host:dir$ `). */
const AT_PROMPT = /[$#] ?$/;
/** How long a command may take, as the program asks the gateway. */
const COMMAND_TIMEOUT_MS = 10_000;
/** How long the program waits for any answer (the command's own timeout, and then some). */
const ANSWER_TIMEOUT_MS = COMMAND_TIMEOUT_MS + 5_000;

test('a command run by a program shows in the browser watching the session', async (t) => {
  const program = await connectProgram(fixture.gateway.addr);
  t.after(() => program.close());
  const { page, name, sessionId, frames } = await openWatchedSession('exec-watch');
  const attached = await terminalInfo(page, sessionId);

  const seen = await program.request('command-execute',
    { sessionId, command: "echo 'exec-seen-42'", timeoutMs: COMMAND_TIMEOUT_MS });
  assert.equal(seen.success, true, `echo ran: ${JSON.stringify(seen)}`);
  assert.equal(seen.data.output, 'exec-seen-42\n');
  assert.equal(seen.data.exitCode, 0);
  assert.equal(seen.data.timedOut, false);
  assert.equal(seen.data.truncated, false);
  // The typed line is the canonical one (absolute program path, every word quoted).
  let text = await waitForText(page, sessionId, /^exec-seen-42$/m);
  assert.match(text, /echo' 'exec-seen-42'/, `the canonical line was typed:\n${text}`);
  assert.equal(outputLines(text, 'exec-seen-42').length, 1, `one output line:\n${text}`);

  // The built-in policy allows printf only without backslashes: refused, nothing typed.
  const refused = await program.request('command-execute',
    { sessionId, command: "printf '%s\\n' 'ünïcödé ✓'", timeoutMs: COMMAND_TIMEOUT_MS });
  assert.equal(refused.success, false);
  assert.equal(refused.errorCode, 'forbidden', JSON.stringify(refused));

  const unicode = await program.request('command-execute',
    { sessionId, command: "echo 'ünïcödé ✓'", timeoutMs: COMMAND_TIMEOUT_MS });
  assert.equal(unicode.success, true, `echo ran: ${JSON.stringify(unicode)}`);
  assert.equal(unicode.data.output, 'ünïcödé ✓\n');
  assert.equal(unicode.data.exitCode, 0);
  text = await waitForText(page, sessionId, /^ünïcödé ✓$/m);
  assert.match(text, /echo' 'ünïcödé ✓'/, `the canonical line was typed:\n${text}`);
  assert.ok(!text.includes('printf'), `the refused command was never typed:\n${text}`);
  assertNoMarkResidue(text);
  // The shell titles its pane with the mark nonce (OSC 2): the tab's title stays ours.
  assert.equal(await page.title(), `${name} · tmuxgate`);

  // The same attachment all along: one attach, one snapshot (the first), same channel.
  const later = await terminalInfo(page, sessionId);
  assert.equal(later.state, 'live');
  assert.equal(later.channel, attached.channel, 'no re-attach');
  assertStayedAttached(frames, sessionId);
  assert.equal(await page.locator('#status').getAttribute('data-state'), 'open');
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test('a half-typed line in the browser answers conflict until the user clears it', async (t) => {
  const program = await connectProgram(fixture.gateway.addr);
  t.after(() => program.close());
  const { page, sessionId, frames } = await openWatchedSession('exec-typing');
  const prompt = await currentLine(page, sessionId);
  assert.match(prompt, AT_PROMPT, `at the prompt: ${JSON.stringify(prompt)}`);

  // Typed but not entered: the gateway must not append its line to it.
  await focusTerminal(page, sessionId);
  await page.keyboard.type('echo half');
  await waitForCurrentLine(page, sessionId, /echo half$/);
  const busy = await program.request('command-execute',
    { sessionId, command: "echo 'not-typed-1'", timeoutMs: COMMAND_TIMEOUT_MS });
  assert.equal(busy.success, false, `refused while the user types: ${JSON.stringify(busy)}`);
  assert.equal(busy.errorCode, 'conflict', JSON.stringify(busy));
  // The user finishes the line: the shell runs exactly what the user typed.
  await page.keyboard.type('-done');
  await page.keyboard.press('Enter');
  let text = await waitForText(page, sessionId, /^half-done$/m);
  assert.equal(outputLines(text, 'half-done').length, 1, `the user's line ran as typed:\n${text}`);

  // Again, then Ctrl-U clears the line and the command runs.
  assert.equal(await waitForCurrentLine(page, sessionId, AT_PROMPT), prompt);
  await page.keyboard.type('echo again');
  await waitForCurrentLine(page, sessionId, /echo again$/);
  const stillBusy = await program.request('command-execute',
    { sessionId, command: "echo 'not-typed-2'", timeoutMs: COMMAND_TIMEOUT_MS });
  assert.equal(stillBusy.errorCode, 'conflict', JSON.stringify(stillBusy));
  await page.keyboard.press('Control+U');
  assert.equal(await waitForCurrentLine(page, sessionId, AT_PROMPT), prompt, 'Ctrl-U emptied the line');
  const ran = await program.request('command-execute',
    { sessionId, command: "echo 'exec-after-clear'", timeoutMs: COMMAND_TIMEOUT_MS });
  assert.equal(ran.success, true, `runs once the line is clear: ${JSON.stringify(ran)}`);
  assert.equal(ran.data.output, 'exec-after-clear\n');
  assert.equal(ran.data.exitCode, 0);
  text = await waitForText(page, sessionId, /^exec-after-clear$/m);
  assert.match(text, /[$#] '[^']*echo' 'exec-after-clear'$/m, `typed on a clean prompt line:\n${text}`);
  assert.equal(outputLines(text, 'again').length, 0, `the cleared line never ran:\n${text}`);
  assert.ok(!text.includes('not-typed'), `refused commands were never typed:\n${text}`);
  assertNoMarkResidue(text);

  assertStayedAttached(frames, sessionId);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

// ---------------------------------------------------------------- helpers

/**
 * A new page with a new session open in its active tab, at the shell's prompt. `frames`
 * has the page's WebSockets (each the list of its `session-attach` requests) and the count
 * of SNAPSHOT frames it received.
 */
async function openWatchedSession(prefix) {
  const frames = { sockets: null, snapshots: 0 };
  const page = await openUi(fixture.browser, `${fixture.gateway.url}/`, {
    beforeLoad: (p) => {
      frames.sockets = watchAttaches(p);
      p.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
        if (typeof payload !== 'string' && payload[0] === SNAPSHOT) frames.snapshots += 1;
      }));
    },
  });
  const name = uniqueName(prefix);
  const sessionId = await createSession(page, name);
  return { page, name, sessionId, frames };
}

/** One WebSocket, one `session-attach` (of `sessionId`), one SNAPSHOT (the attach's). */
function assertStayedAttached(frames, sessionId) {
  assert.equal(frames.sockets.length, 1, 'one WebSocket: no reconnect');
  assert.deepEqual(frames.sockets[0].map((a) => a.request.data.sessionId), [sessionId], 'one session-attach');
  assert.equal(frames.snapshots, 1, 'no snapshot after the first');
}

/** The screen row holding the cursor (the line being edited), trailing blanks trimmed. */
function currentLine(page, sessionId) {
  return page.evaluate((id) => {
    const buffer = window.tmuxgate.terminals().find((t) => t.sessionId === id).term.buffer.active;
    return buffer.getLine(buffer.baseY + buffer.cursorY)?.translateToString(true) ?? '';
  }, sessionId);
}

/** Waits until the cursor's row matches `pattern` and returns it; a timeout shows the row. */
async function waitForCurrentLine(page, sessionId, pattern) {
  try {
    await page.waitForFunction(({ id, source, flags }) => {
      const buffer = window.tmuxgate?.terminals().find((t) => t.sessionId === id)?.term.buffer.active;
      const line = buffer?.getLine(buffer.baseY + buffer.cursorY)?.translateToString(true);
      return line !== undefined && new RegExp(source, flags).test(line);
    }, { id: sessionId, source: pattern.source, flags: pattern.flags }, { timeout: WAIT_TIMEOUT_MS, polling: 50 });
  } catch (error) {
    error.message = `the cursor's row never matched ${pattern}: ` +
      `${JSON.stringify(await currentLine(page, sessionId))}\n${error.message}`;
    throw error;
  }
  return currentLine(page, sessionId);
}

/** The shell-integration marks (OSC 133) and pane titles (OSC 2) leave no visible text. */
function assertNoMarkResidue(text) {
  assert.ok(!/133;|tg=|tmuxgate:(ready|busy)/.test(text), `no escape residue in the buffer:\n${text}`);
}

/**
 * Opens a WebSocket to the gateway as a program would (no cookie, no Origin) and resolves
 * with `{request(type, data) → Promise<response>, close()}`: `response` is the whole
 * envelope (`success`, `data`, `errorCode`), matched by id.
 */
function connectProgram(addr) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://${addr}/ws`);
    const pending = new Map();
    let nextId = 1;
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      const message = JSON.parse(data.toString('utf8'));
      if (message.type !== 'response') return;
      pending.get(message.id)?.(message);
      pending.delete(message.id);
    });
    socket.once('error', reject);
    socket.once('close', (code) => {
      for (const [id, answer] of pending) answer({ success: false, errorCode: 'closed', id, code });
      pending.clear();
    });
    socket.once('open', () => resolve({
      request(type, data) {
        const id = nextId++;
        const answered = new Promise((answer, fail) => {
          const timer = setTimeout(() => {
            pending.delete(id);
            fail(new Error(`no answer to ${type} #${id} in ${ANSWER_TIMEOUT_MS} ms`));
          }, ANSWER_TIMEOUT_MS);
          pending.set(id, (response) => { clearTimeout(timer); answer(response); });
        });
        socket.send(JSON.stringify({ type, id, data }));
        return answered;
      },
      close: () => socket.close(),
    }));
  });
}
