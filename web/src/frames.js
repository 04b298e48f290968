// Binary frames of tmuxgate protocol v1 (docs/protocol.md, "Binary frames").
//
//   byte:      0        1..5           5..13          13..
//   OUTPUT     0x01     channel u32    offset u64     bytes      server → client
//   SNAPSHOT   0x03     channel u32    offset u64     bytes      server → client
//   INPUT      0x02     channel u32    bytes                     client → server
//
// Every integer is big-endian. Offsets stay below 2^53, so a JavaScript number
// holds them exactly; they are read as two u32 halves to avoid BigInt.

/** Frame kind byte: terminal output (server → client). */
export const FRAME_OUTPUT = 0x01;
/** Frame kind byte: keystrokes (client → server). */
export const FRAME_INPUT = 0x02;
/** Frame kind byte: screen snapshot, reset then write (server → client). */
export const FRAME_SNAPSHOT = 0x03;

/** Header length of OUTPUT and SNAPSHOT frames: kind, channel, offset. */
export const SERVER_HEADER_BYTES = 13;
/** Header length of INPUT frames: kind, channel. */
export const INPUT_HEADER_BYTES = 5;

const TWO_POW_32 = 4294967296;

/**
 * A decoded server frame. `bytes` is a view into the received buffer, not a copy.
 * @typedef {object} ServerFrame
 * @property {number} kind FRAME_OUTPUT or FRAME_SNAPSHOT
 * @property {number} channel
 * @property {number} offset absolute pane-log offset of the first byte
 * @property {Uint8Array} bytes
 */

/**
 * Decodes an OUTPUT or SNAPSHOT frame.
 * @param {ArrayBuffer} buffer one binary WebSocket message
 * @returns {ServerFrame | null} null when the frame is too short or of another kind
 */
export function decodeServerFrame(buffer) {
  if (buffer.byteLength < SERVER_HEADER_BYTES) return null;
  const view = new DataView(buffer);
  const kind = view.getUint8(0);
  if (kind !== FRAME_OUTPUT && kind !== FRAME_SNAPSHOT) return null;
  return {
    kind,
    channel: view.getUint32(1),
    offset: view.getUint32(5) * TWO_POW_32 + view.getUint32(9),
    bytes: new Uint8Array(buffer, SERVER_HEADER_BYTES),
  };
}

/**
 * Writes an INPUT header for `channel` at the start of `target`.
 * @param {Uint8Array} target at least INPUT_HEADER_BYTES long
 * @param {number} channel
 */
function writeInputHeader(target, channel) {
  const view = new DataView(target.buffer, target.byteOffset, INPUT_HEADER_BYTES);
  view.setUint8(0, FRAME_INPUT);
  view.setUint32(1, channel);
}

/** Largest INPUT payload per frame, well under the gateway's 1 MiB message limit. */
export const INPUT_CHUNK_BYTES = 64 * 1024;

const encoder = new TextEncoder();

/**
 * Turns keystrokes into INPUT frames: strings UTF-8 encoded, long input split into
 * frames of at most INPUT_CHUNK_BYTES (never inside a UTF-16 surrogate pair).
 *
 * With `reuseBuffer`, every frame is a view of one scratch buffer, valid until the next
 * frame is produced: fine for `WebSocket.send`, which copies the bytes in browsers.
 */
export class InputEncoder {
  #reuseBuffer;
  #scratch = null;

  /** @param {{reuseBuffer?: boolean}} [options] */
  constructor({ reuseBuffer = false } = {}) {
    this.#reuseBuffer = reuseBuffer;
  }

  /**
   * @param {number} channel
   * @param {string | Uint8Array} data
   * @returns {Generator<Uint8Array>} the frames, in order
   */
  *encode(channel, data) {
    if (typeof data === 'string') {
      for (const piece of splitText(data)) {
        const frame = this.#buffer(INPUT_HEADER_BYTES + piece.length * 3);
        writeInputHeader(frame, channel);
        const { written } = encoder.encodeInto(piece, frame.subarray(INPUT_HEADER_BYTES));
        yield frame.subarray(0, INPUT_HEADER_BYTES + written);
      }
      return;
    }
    for (let at = 0; at < data.length; at += INPUT_CHUNK_BYTES) {
      const piece = data.subarray(at, at + INPUT_CHUNK_BYTES);
      const frame = this.#buffer(INPUT_HEADER_BYTES + piece.length);
      writeInputHeader(frame, channel);
      frame.set(piece, INPUT_HEADER_BYTES);
      yield frame.subarray(0, INPUT_HEADER_BYTES + piece.length);
    }
  }

  #buffer(capacity) {
    if (!this.#reuseBuffer) return new Uint8Array(capacity);
    if (!this.#scratch || this.#scratch.length < capacity) {
      this.#scratch = new Uint8Array(Math.max(capacity, 4096));
    }
    return this.#scratch;
  }
}

/** Splits text so each piece encodes to at most INPUT_CHUNK_BYTES. */
function* splitText(text) {
  const maxChars = INPUT_CHUNK_BYTES / 3;
  for (let at = 0; at < text.length; ) {
    let end = Math.min(text.length, at + maxChars);
    const code = text.charCodeAt(end - 1);
    if (end < text.length && code >= 0xd800 && code <= 0xdbff) end -= 1;
    yield text.slice(at, end);
    at = end;
  }
}
