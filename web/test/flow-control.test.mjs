// Flow control's policy against a fake terminal (no browser): output pauses the stream past
// the watermark (a lower one while the page is hidden) and resumes it once the terminal has
// parsed its backlog and the page is visible.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HIDDEN_WATERMARK_BYTES, HIGH_WATERMARK_BYTES, LOW_WATERMARK_BYTES, WriteFlow,
} from '../src/flow-control.js';

/** A terminal that parses only when told: `parse(n)` runs the callbacks of the next n writes. */
class SlowTerminal {
  callbacks = [];

  write(data, callback) {
    this.callbacks.push(callback);
  }

  parse(count = this.callbacks.length) {
    for (const callback of this.callbacks.splice(0, count)) callback?.();
  }
}

function setup() {
  globalThis.document = Object.assign(new EventTarget(), { hidden: false });
  const term = new SlowTerminal();
  const calls = [];
  const flow = new WriteFlow(term, { onPause: () => calls.push('pause'), onResume: () => calls.push('resume') });
  return { term, calls, flow };
}

const chunk = (bytes) => new Uint8Array(bytes);

test('a backlog past the watermark pauses; parsing it down resumes', () => {
  const { term, calls, flow } = setup();
  const piece = 512 * 1024;
  for (let written = 0; written <= HIGH_WATERMARK_BYTES; written += piece) flow.write(chunk(piece));
  assert.deepEqual(calls, ['pause']);
  assert.ok(flow.pending > HIGH_WATERMARK_BYTES);
  term.parse(term.callbacks.length - Math.floor(LOW_WATERMARK_BYTES / piece) - 1);
  assert.deepEqual(calls, ['pause'], 'not yet: still above the low watermark');
  term.parse(1);
  assert.deepEqual(calls, ['pause', 'resume']);
  term.parse();
  assert.equal(flow.pending, 0);
  assert.deepEqual(calls, ['pause', 'resume'], 'resumed once');
  flow.dispose();
});

test('a hidden page pauses early and resumes only when shown again', () => {
  const { term, calls, flow } = setup();
  document.hidden = true;
  flow.write(chunk(HIDDEN_WATERMARK_BYTES + 1));
  assert.deepEqual(calls, ['pause']);
  term.parse();
  assert.deepEqual(calls, ['pause'], 'drained, but still hidden');
  document.hidden = false;
  document.dispatchEvent(new Event('visibilitychange'));
  assert.deepEqual(calls, ['pause', 'resume']);
  flow.dispose();
});

test('output the terminal keeps up with never pauses', () => {
  const { term, calls, flow } = setup();
  for (let i = 0; i < 100; i += 1) {
    flow.write(chunk(64 * 1024));
    term.parse();
  }
  assert.deepEqual(calls, []);
  assert.equal(flow.pending, 0);
  flow.dispose();
});
