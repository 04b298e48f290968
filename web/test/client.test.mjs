// TerminalWebSocketClient against a scripted fake WebSocket (no gateway, no browser): the
// recovery paths a real gateway rarely takes on cue — late and failing attach answers,
// close codes, gaps, throwing callbacks, flow-control pauses, failover between the URLs of
// a fleet (also over real sockets, with `ws`) — and the paste filter.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { TerminalWebSocketClient } from '../src/client.js';
import { sanitizePaste } from '../src/paste.js';

const OUTPUT = 0x01;
const SNAPSHOT = 0x03;

/** A WebSocket whose server side the test plays; every socket made is in `FakeSocket.made`. */
class FakeSocket {
  static made = [];

  constructor(url) {
    this.url = url;
    this.sent = [];
    this.answered = new Set();
    this.closed = null;
    FakeSocket.made.push(this);
  }

  send(data) {
    this.sent.push(typeof data === 'string' ? JSON.parse(data) : data);
  }

  close(code, reason) {
    this.closed = { code, reason };
  }

  // --- the server's side

  open() {
    this.onopen?.();
  }

  /** The JSON requests sent so far of `type`. */
  requests(type) {
    return this.sent.filter((m) => m.type === type);
  }

  respond(request, data) {
    this.answered.add(request.id);
    this.onmessage?.({ data: JSON.stringify({ type: 'response', id: request.id, success: true, data }) });
  }

  fail(request, errorCode) {
    this.answered.add(request.id);
    this.onmessage?.({ data: JSON.stringify({ type: 'response', id: request.id, success: false, error: errorCode, errorCode }) });
  }

  frame(kind, channel, offset, text) {
    const bytes = new TextEncoder().encode(text);
    const buffer = new ArrayBuffer(13 + bytes.length);
    const view = new DataView(buffer);
    view.setUint8(0, kind);
    view.setUint32(1, channel);
    view.setUint32(5, Math.floor(offset / 2 ** 32));
    view.setUint32(9, offset % 2 ** 32);
    new Uint8Array(buffer, 13).set(bytes);
    this.onmessage?.({ data: buffer });
  }

  /** The server closes the connection. */
  drop(code = 1006, reason = '') {
    this.onclose?.({ code, reason });
  }
}

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every few ms; fails after `timeoutMs`. */
async function until(condition, what, timeoutMs = 3000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await tick(2);
  }
}

/** A client on a fresh fake socket, connected; `options` override the defaults. */
async function connected(options = {}) {
  FakeSocket.made = [];
  const client = new TerminalWebSocketClient({
    url: 'ws://gateway.test/ws',
    WebSocket: FakeSocket,
    heartbeatIntervalMs: 60_000,
    reconnectBaseMs: 1,
    reconnectCapMs: 5,
    ...options,
  });
  const opened = client.connect();
  FakeSocket.made[0].open();
  await opened;
  return client;
}

const latest = () => FakeSocket.made[FakeSocket.made.length - 1];

/** Answers the first unanswered `session-attach` on `socket` (waiting for one); returns it. */
async function answerAttach(socket, { channel = 1, offset = 100, snapshot = true, cols = 80, rows = 24 } = {}) {
  const unanswered = () => socket.requests('session-attach').find((r) => !socket.answered.has(r.id));
  await until(unanswered, 'an attach request');
  const request = unanswered();
  socket.respond(request, {
    sessionId: request.data.sessionId, channel, pane: '%0', mode: request.data.mode ?? 'write',
    offset, snapshot, cols, rows,
  });
  return request;
}

/** Attaches `s1` and feeds it a snapshot at 100 and output up to 105; returns what was seen. */
async function liveAttachment(client, callbacks = {}) {
  const seen = { data: '', snapshots: 0, states: [], resizes: [], closes: [] };
  const attaching = client.attach('s1', {
    cols: 80, rows: 24,
    onData: (bytes) => { seen.data += new TextDecoder().decode(bytes); },
    onSnapshot: () => { seen.snapshots += 1; },
    onState: (state) => seen.states.push(state),
    onResize: (cols, rows) => seen.resizes.push(`${cols}x${rows}`),
    onClose: (reason) => seen.closes.push(reason),
    ...callbacks,
  });
  await answerAttach(latest());
  const attachment = await attaching;
  latest().frame(SNAPSHOT, 1, 100, 'screen');
  latest().frame(OUTPUT, 1, 100, 'hello');
  return { attachment, seen };
}

test('a late answer to a timed-out attach is detached', async () => {
  const client = await connected({ requestTimeoutMs: 20 });
  const attaching = client.attach('s1', {});
  await until(() => latest().requests('session-attach').length === 1, 'the attach request');
  await assert.rejects(attaching, { code: 'timeout' });
  await answerAttach(latest(), { channel: 7 });
  assert.deepEqual(latest().requests('session-detach').map((r) => r.data), [{ channel: 7 }]);
  client.close();
});

test('a throwing callback neither hangs the attach nor stops the stream', async () => {
  const reported = [];
  const realQueueMicrotask = globalThis.queueMicrotask;
  globalThis.queueMicrotask = (fn) => realQueueMicrotask(() => {
    try { fn(); } catch (error) { reported.push(error.message); }
  });
  try {
    const client = await connected();
    const { attachment, seen } = await liveAttachment(client, {
      onState: () => { throw new Error('onState'); },
      onSnapshot: () => { throw new Error('onSnapshot'); },
    });
    assert.equal(attachment.state, 'live');
    latest().frame(OUTPUT, 1, 105, ' world');
    assert.equal(seen.data, 'hello world');
    await tick();
    assert.ok(reported.includes('onState') && reported.includes('onSnapshot'), `reported: ${reported}`);
    client.close();
  } finally {
    globalThis.queueMicrotask = realQueueMicrotask;
  }
});

test('an attach waits out a drop and goes through on the next connection', async () => {
  const client = await connected();
  const attaching = client.attach('s1', {});
  await until(() => latest().requests('session-attach').length === 1, 'the first try');
  latest().drop();
  await until(() => FakeSocket.made.length === 2, 'a new socket');
  latest().open();
  await answerAttach(latest(), { channel: 3 });
  const attachment = await attaching;
  assert.equal(attachment.channel, 3);
  assert.equal(attachment.state, 'live');
  client.close();
});

test('a re-attach resumes, reports a size that changed meanwhile, and retries transient errors', async () => {
  const client = await connected();
  const { attachment, seen } = await liveAttachment(client);
  latest().drop();
  await until(() => FakeSocket.made.length === 2, 'a new socket');
  latest().open();
  await until(() => latest().requests('session-attach').length === 1, 'the re-attach');
  const first = latest().requests('session-attach')[0];
  assert.equal(first.data.resumeFrom, 105);
  assert.equal(first.data.target, '%0');
  latest().fail(first, 'unavailable');
  await until(() => latest().requests('session-attach').length === 2, 'a second try', 3000);
  const second = latest().requests('session-attach')[1];
  assert.equal(second.data.resumeFrom, 105);
  latest().respond(second, { sessionId: 's1', channel: 2, pane: '%0', mode: 'write', offset: 105, snapshot: false, cols: 120, rows: 40 });
  assert.equal(attachment.state, 'live');
  assert.deepEqual(seen.resizes, ['80x24', '120x40']);
  latest().frame(OUTPUT, 2, 105, '!');
  assert.equal(seen.data, 'hello!');
  assert.deepEqual(seen.closes, []);
  client.close();
});

test('a re-attach whose pane is gone takes the active pane afresh', async () => {
  const client = await connected();
  const { attachment } = await liveAttachment(client);
  latest().drop();
  await until(() => FakeSocket.made.length === 2, 'a new socket');
  latest().open();
  await until(() => latest().requests('session-attach').length === 1, 'the re-attach');
  latest().fail(latest().requests('session-attach')[0], 'not_found');
  await until(() => latest().requests('session-attach').length === 2, 'the fresh attach');
  const fresh = latest().requests('session-attach')[1];
  assert.equal(fresh.data.target, undefined);
  assert.equal(fresh.data.resumeFrom, undefined);
  latest().fail(fresh, 'not_found');
  await until(() => attachment.state === 'closed', 'the end');
  assert.equal(attachment.closeReason, 'reattach-failed');
  client.close();
});

test('gaps are repaired from the offset, and afresh when they keep coming', async () => {
  const client = await connected();
  await liveAttachment(client);
  const resumes = [];
  for (let gap = 1; gap <= 3; gap += 1) {
    latest().frame(OUTPUT, gap, 1000 * gap, 'beyond the end');
    const request = await answerAttach(latest(), { channel: gap + 1, offset: 105, snapshot: false });
    resumes.push(request.data.resumeFrom);
  }
  assert.deepEqual(resumes, [105, 105, undefined]);
  client.close();
});

test('pause detaches and keeps the offset; a drop leaves it paused; resume picks up there', async () => {
  const client = await connected();
  const { attachment, seen } = await liveAttachment(client);
  assert.equal(attachment.pause(), true);
  assert.equal(attachment.state, 'paused');
  assert.deepEqual(latest().requests('session-detach').map((r) => r.data), [{ channel: 1 }]);
  latest().frame(OUTPUT, 1, 105, 'after the pause'); // in flight: dropped
  assert.equal(attachment.offset, 105);
  latest().drop();
  await until(() => FakeSocket.made.length === 2, 'a new socket');
  latest().open();
  await tick(10);
  assert.equal(latest().requests('session-attach').length, 0, 'no re-attach while paused');
  attachment.resume();
  const request = await answerAttach(latest(), { channel: 5, offset: 105, snapshot: false });
  assert.equal(request.data.resumeFrom, 105);
  latest().frame(OUTPUT, 5, 105, ' again');
  assert.equal(seen.data, 'hello again');
  assert.equal(attachment.state, 'live');
  client.close();
});

test('close 4401 signs out: no reconnect, attachments end with unauthorized', async () => {
  const client = await connected();
  const { attachment, seen } = await liveAttachment(client);
  const events = [];
  client.on('unauthorized', (info) => events.push(info));
  latest().drop(4401, 'unauthorized');
  assert.equal(client.state, 'closed');
  assert.deepEqual(events, [{ code: 4401, reason: 'unauthorized' }]);
  assert.deepEqual(seen.closes, ['unauthorized']);
  assert.equal(attachment.state, 'closed');
  await assert.rejects(client.attach('s1', {}), { code: 'unauthorized' });
  await tick(30);
  assert.equal(FakeSocket.made.length, 1, 'no new socket');
});

test('after a protocol-violation close the backoff keeps growing', async () => {
  const warnings = [];
  const realWarn = console.warn;
  console.warn = (message) => warnings.push(message);
  const realRandom = Math.random;
  Math.random = () => 0.999;
  try {
    const client = await connected({ reconnectBaseMs: 10, reconnectCapMs: 10_000, stableAfterMs: 5 });
    const gapsMs = [];
    for (let round = 0; round < 4; round += 1) {
      await tick(15); // past stableAfterMs: a normal close would reset the backoff
      const droppedAt = Date.now();
      const count = FakeSocket.made.length;
      latest().drop(4009, 'message too large');
      await until(() => FakeSocket.made.length > count, 'the next socket');
      gapsMs.push(Date.now() - droppedAt);
      latest().open();
    }
    assert.ok(gapsMs[3] >= 70, `backoff grows: ${gapsMs} ms`);
    assert.equal(warnings.length, 4);
    assert.match(warnings[0], /4009 message too large/);
    client.close();
  } finally {
    console.warn = realWarn;
    Math.random = realRandom;
  }
});

test('pastes lose every control character but tab and line breaks', () => {
  assert.equal(sanitizePaste('echo safe\x1b[201~\recho injected\n'), 'echo safe[201~\recho injected\n');
  assert.equal(sanitizePaste('a\tb\x00c\x07d\x7fe\u009bf\u00e9g'), 'a\tbcdef\u00e9g');
  assert.equal(sanitizePaste('中文 😀'), '中文 😀');
});

test('access-changed turns a write attachment read-only, and a re-attach asks for read', async () => {
  const client = await connected();
  const modes = [];
  const { attachment } = await liveAttachment(client, { onMode: (mode) => modes.push(mode) });
  assert.equal(attachment.mode, 'write');
  const event = { type: 'event', event: 'access-changed', data: { sessionId: 's1', channel: 1, mode: 'read' } };
  latest().onmessage?.({ data: JSON.stringify(event) });
  assert.deepEqual(modes, ['read']);
  assert.equal(attachment.mode, 'read');
  const sockets = FakeSocket.made.length;
  latest().drop();
  await until(() => FakeSocket.made.length === sockets + 1, 'a new socket');
  latest().open();
  await until(() => latest().requests('session-attach').length === 1, 'the re-attach');
  assert.equal(latest().requests('session-attach')[0].data.mode, 'read');
  client.close();
});

test('with urls, a drop retries the same URL and every failed attempt moves on to the next, round robin', async () => {
  FakeSocket.made = [];
  const urls = ['ws://a.test/ws', 'ws://b.test/ws', 'ws://c.test/ws'];
  const client = new TerminalWebSocketClient({
    urls, WebSocket: FakeSocket, heartbeatIntervalMs: 60_000, reconnectBaseMs: 1, reconnectCapMs: 5,
  });
  assert.equal(client.url, urls[0]);
  const opened = client.connect();
  FakeSocket.made[0].drop(1006); // a refused first attempt
  await until(() => FakeSocket.made.length === 2, 'a second attempt');
  assert.equal(latest().url, urls[1]);
  assert.equal(client.url, urls[1]);
  latest().open();
  await opened;
  assert.equal(client.state, 'open');
  const { attachment } = await liveAttachment(client);
  latest().drop(1006); // the open connection drops
  await until(() => FakeSocket.made.length === 3, 'a third attempt');
  assert.equal(latest().url, urls[1], 'the same gateway first: an exact resume if it is there');
  latest().drop(1006); // refused: that gateway died
  await until(() => FakeSocket.made.length === 4, 'a fourth attempt');
  assert.equal(latest().url, urls[2]);
  latest().drop(1006);
  await until(() => FakeSocket.made.length === 5, 'a fifth attempt');
  assert.equal(latest().url, urls[0], 'after the last URL, the first again');
  assert.equal(client.url, urls[0]);
  latest().open();
  await until(() => latest().requests('session-attach').length === 1, 'the re-attach');
  assert.equal(latest().requests('session-attach')[0].data.resumeFrom, 105);
  assert.equal(attachment.state, 'attaching');
  client.close();
});

test('the attach response\'s logId goes back as resumeLogId with resumeFrom', async () => {
  const client = await connected();
  const attaching = client.attach('s1', {});
  await until(() => latest().requests('session-attach').length === 1, 'the attach');
  const [first] = latest().requests('session-attach');
  assert.equal(first.data.resumeLogId, undefined, 'nothing to resume yet');
  latest().respond(first, {
    sessionId: 's1', channel: 1, pane: '%0', mode: 'write', offset: 100, logId: '00000000000000a1', snapshot: true, cols: 80, rows: 24,
  });
  const attachment = await attaching;
  assert.equal(attachment.logId, '00000000000000a1');
  latest().frame(SNAPSHOT, 1, 100, 'screen');
  latest().drop();
  await until(() => FakeSocket.made.length === 2, 'a new socket');
  latest().open();
  const again = await answerAttach(latest(), { channel: 2, offset: 100, snapshot: true }); // an older gateway: no logId
  assert.deepEqual([again.data.resumeFrom, again.data.resumeLogId], [100, '00000000000000a1']);
  assert.equal(attachment.logId, null);
  latest().frame(SNAPSHOT, 2, 100, 'screen');
  latest().drop();
  await until(() => FakeSocket.made.length === 3, 'a third socket');
  latest().open();
  const third = await answerAttach(latest(), { channel: 3, offset: 100, snapshot: false });
  assert.equal(third.data.resumeFrom, 100);
  assert.equal('resumeLogId' in third.data, false, 'no logId known: resumeFrom alone');
  client.close();
});

test('over real sockets, with urls [dead, live] the client ends up open on the live one', async () => {
  const dead = await new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(`ws://127.0.0.1:${port}/ws`));
    });
  });
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => server.once('listening', resolve));
  const live = `ws://127.0.0.1:${server.address().port}/ws`;
  const accepted = [];
  server.on('connection', (socket, request) => accepted.push(request.url));
  const client = new TerminalWebSocketClient({
    urls: [dead, live], WebSocket, heartbeatIntervalMs: 60_000, reconnectBaseMs: 1, reconnectCapMs: 5,
  });
  const states = [];
  client.on('state', (state) => states.push(state));
  try {
    await client.connect();
    assert.deepEqual(states, ['connecting', 'reconnecting', 'open'], 'the dead one was tried first');
    assert.equal(client.url, live);
    assert.deepEqual(accepted, ['/ws']);
  } finally {
    client.close();
    for (const socket of server.clients) socket.terminate();
    await new Promise((resolve) => server.close(resolve));
  }
});
