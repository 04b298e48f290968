// UTF-8 both ways: CJK and emoji printed by the pane, typed through the page, and a long
// multi-byte run whose OUTPUT frames split characters must still decode without U+FFFD.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createSession, focusTerminal, openUi, outputLines, typeLine, uniqueName,
  useGatewayAndBrowser, waitForText,
} from './harness.mjs';

/** `中😀😀`: 3 + 4 + 4 = 11 bytes, repeated into a run of 35 KB (more than one 32 KiB frame). */
const UNIT = String.raw`\xe4\xb8\xad\xf0\x9f\x98\x80\xf0\x9f\x98\x80`;
const REPEATS = 3200;
/**
 * The pane prints the run twice: first in blocks of this many bytes with a pause after each,
 * so every block leaves as its own OUTPUT frame ending inside a character (1000 is not a
 * multiple of 11); then at once, so the gateway cuts it into frames where it likes.
 */
const BLOCK_BYTES = 1000;
const BLOCKS = Math.ceil((REPEATS * 11) / BLOCK_BYTES);
/** Frames that must end inside a character (about 30 do on an idle machine, 20 on a loaded one). */
const MIN_SPLIT_FRAMES = 5;
const BULK_TIMEOUT_MS = 60_000;
const OUTPUT = 0x01;
const FRAME_HEADER_BYTES = 13;

const fixture = useGatewayAndBrowser();

test('CJK and emoji printed by the pane and typed on the page arrive intact', async () => {
  const page = await openUi(fixture.browser, `${fixture.gateway.url}/`);
  const sessionId = await createSession(page, uniqueName('utf8'));
  await typeLine(page, sessionId,
    "printf '\\xe4\\xb8\\xad\\xe6\\x96\\x87 \\xf0\\x9f\\x98\\x80 \\xe3\\x83\\x86\\xe3\\x82\\xb9\\xe3\\x83\\x88\\n'");
  const printed = await waitForText(page, sessionId, /^中文 😀 テスト$/m);
  assert.equal(outputLines(printed, '中文 😀 テスト').length, 1);

  await focusTerminal(page, sessionId);
  await page.keyboard.type('echo "typed:');
  await page.keyboard.insertText('中文 😀 テスト');
  await page.keyboard.type('"');
  await page.keyboard.press('Enter');
  const typed = await waitForText(page, sessionId, /^typed:中文 😀 テスト$/m);
  assert.ok(typed.includes('echo "typed:中文 😀 テスト"'), `the typed line is echoed intact:\n${typed}`);
  assert.ok(!typed.includes('\ufffd'), 'no replacement character');
  await page.context().close();
});

test('a multi-byte run split across OUTPUT frames decodes without U+FFFD', async (t) => {
  let frames;
  const page = await openUi(fixture.browser, `${fixture.gateway.url}/`, { beforeLoad: (p) => { frames = watchOutputFrames(p); } });
  const sessionId = await createSession(page, uniqueName('utf8-bulk'));
  await typeLine(page, sessionId,
    `f=$(mktemp); printf '${UNIT}%.0s' $(seq 1 ${REPEATS}) > $f; for i in $(seq 0 ${BLOCKS - 1}); ` +
    `do dd if=$f bs=${BLOCK_BYTES} skip=$i count=1 status=none; sleep 0.005; done; cat $f; rm $f; ` +
    'echo; echo bulk-$((1+1))-end');
  const text = await waitForText(page, sessionId, /^bulk-2-end$/m, BULK_TIMEOUT_MS);

  t.diagnostic(`${frames.count} OUTPUT frames, ${frames.bytes} bytes, ${frames.splitMidCharacter} ending mid-character`);
  assert.ok(!text.includes('\ufffd'), 'no U+FFFD anywhere in the buffer');
  assert.equal([...text.matchAll(/中/g)].length, 2 * REPEATS, 'every 中 arrived');
  assert.equal([...text.matchAll(/😀/g)].length, 4 * REPEATS, 'every 😀 arrived');
  assert.equal([...text.matchAll(/中😀😀/g)].length, 2 * REPEATS, 'in order');
  assert.ok(frames.bytes >= 2 * REPEATS * 11, `the run came as OUTPUT frames (${frames.bytes} bytes)`);
  // Paced blocks may still merge on a loaded machine: ask for a few splits, not all of them.
  assert.ok(frames.splitMidCharacter >= MIN_SPLIT_FRAMES,
    `OUTPUT frames ended inside a UTF-8 sequence: ${frames.splitMidCharacter} of ${frames.count}`);
  await page.context().close();
});

/**
 * Counts the page's OUTPUT frames, their payload bytes and those whose payload ends inside a
 * UTF-8 sequence (what the UI's decoder must carry over to the next frame).
 */
function watchOutputFrames(page) {
  const frames = { count: 0, bytes: 0, splitMidCharacter: 0 };
  page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
    if (typeof payload === 'string' || payload[0] !== OUTPUT) return;
    const body = payload.subarray(FRAME_HEADER_BYTES);
    frames.count += 1;
    frames.bytes += body.length;
    if (endsInsideSequence(body)) frames.splitMidCharacter += 1;
  }));
  return frames;
}

/** The bytes end with an incomplete UTF-8 sequence. */
function endsInsideSequence(bytes) {
  for (let back = 1; back <= Math.min(3, bytes.length); back += 1) {
    const byte = bytes[bytes.length - back];
    if ((byte & 0xc0) === 0x80) continue; // continuation: look further back for the lead
    const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needed > back;
  }
  return false;
}
