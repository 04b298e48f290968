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
export function writeInputHeader(target, channel) {
  const view = new DataView(target.buffer, target.byteOffset, INPUT_HEADER_BYTES);
  view.setUint8(0, FRAME_INPUT);
  view.setUint32(1, channel);
}

/**
 * Encodes an INPUT frame into a new buffer.
 * @param {number} channel
 * @param {Uint8Array} bytes
 * @returns {Uint8Array}
 */
export function encodeInputFrame(channel, bytes) {
  const frame = new Uint8Array(INPUT_HEADER_BYTES + bytes.length);
  writeInputHeader(frame, channel);
  frame.set(bytes, INPUT_HEADER_BYTES);
  return frame;
}
