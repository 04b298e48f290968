// One attachment of a session pane, as seen by a TerminalWebSocketClient user.
//
// It outlives WebSocket connections: the client re-attaches it after a drop
// (with `resumeFrom` = its end offset, `resumeLogId` = the log that offset
// belongs to, and `target` = its pane), so its channel number changes while
// the object, its callbacks and its offset stay. It owns
// the contiguity rule of the stream: bytes below `offset` were already
// delivered and are dropped; bytes above it mean a gap, which the client
// repairs by re-attaching from `offset`.

import { FRAME_SNAPSHOT } from './frames.js';

// Methods the client calls and users should not: symbols keep them off the
// public surface without a second class.
export const kBind = Symbol('bind');
export const kReceive = Symbol('receive');
export const kEvent = Symbol('event');
export const kSuspend = Symbol('suspend');
export const kEnd = Symbol('end');
export const kRequestedSize = Symbol('requestedSize');
export const kAttaching = Symbol('attaching');
export const kRestart = Symbol('restart');
// ...and the attachment calls on its client.
export const kSendInput = Symbol('sendInput');
export const kForget = Symbol('forget');
export const kPause = Symbol('pause');
export const kResume = Symbol('resume');

/**
 * Lifecycle of an attachment:
 * `attaching` (request in flight) → `live` (streaming) ⇄ `reconnecting`
 * (socket dropped; re-attached when it is back) → `closed` (ended for good).
 * `live` ⇄ `paused`: the user stopped the stream (`pause()`) until `resume()`.
 * @typedef {'attaching' | 'live' | 'paused' | 'reconnecting' | 'closed'} AttachmentState
 */

/**
 * Why an attachment ended, as passed to `onClose`:
 * `destroyed`, `exited`, `detached` (the `session-closed` reasons), `backend-lost`,
 * `reattach-failed` (after a reconnect the session could not be attached again;
 * `info.error` is the RequestError), `client-closed` (the client was closed),
 * `unauthorized` (the gateway no longer accepts the client's credentials: close 4401).
 * An explicit `detach()` does not call `onClose`.
 * @typedef {'destroyed' | 'exited' | 'detached' | 'backend-lost' | 'reattach-failed' | 'client-closed' | 'unauthorized'} CloseReason
 */

/**
 * @typedef {object} AttachOptions
 * @property {'write' | 'read'} [mode] default `write`
 * @property {number} [cols] this viewer's size; a write attachment resizes the session to it
 * @property {number} [rows]
 * @property {string} [target] a pane id `%N`; default the session's active pane
 * @property {number} [resumeFrom] an offset reached earlier on `target`: resume exactly from there
 * @property {string} [resumeLogId] the `logId` that `resumeFrom` belongs to (a gateway keeping
 *   another log of the pane answers with a snapshot)
 * @property {(bytes: Uint8Array, offset: number) => void} [onData] output bytes starting at log offset `offset`, in order, without overlap
 * @property {(bytes: Uint8Array, offset: number) => void} [onSnapshot] reset the terminal and write `bytes`; the stream continues at `offset`
 * @property {(reason: CloseReason, info?: object) => void} [onClose] the attachment ended (not called for `detach()`)
 * @property {(cols: number, rows: number) => void} [onResize] the pane changed size (`session-resized`)
 * @property {(viewers: number) => void} [onViewers] the session's attachment count changed
 * @property {(state: AttachmentState) => void} [onState] the attachment's state changed
 * @property {(mode: 'read') => void} [onMode] the gateway took write access away (`access-changed`): input is refused from now on
 */

const noop = () => {};

/**
 * Calls a user callback; what it throws is reported (as an uncaught error, in a
 * microtask) instead of unwinding the client's socket handler halfway through.
 */
export function callSafely(callback, ...args) {
  try {
    callback(...args);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

/** A live (or resuming) stream of one pane. Created by `TerminalWebSocketClient.attach`. */
export class Attachment {
  #client;
  #callbacks;
  #size;

  /**
   * @param {import('./client.js').TerminalWebSocketClient} client
   * @param {string} sessionId
   * @param {AttachOptions} options
   */
  constructor(client, sessionId, options) {
    this.#client = client;
    this.#callbacks = {
      onData: options.onData ?? noop,
      onSnapshot: options.onSnapshot ?? noop,
      onClose: options.onClose ?? noop,
      onResize: options.onResize ?? noop,
      onViewers: options.onViewers ?? noop,
      onState: options.onState ?? noop,
      onMode: options.onMode ?? noop,
    };
    this.#size = options.cols && options.rows ? { cols: options.cols, rows: options.rows } : null;
    /** @type {string} */
    this.sessionId = sessionId;
    /** @type {'write' | 'read'} */
    this.mode = options.mode ?? 'write';
    /** Channel on the current connection; null while not attached. @type {number | null} */
    this.channel = null;
    /**
     * The pane streamed (`%N`), fixed by the first attach (a re-attach finding it gone
     * takes the session's active pane). @type {string | null}
     */
    this.pane = options.target ?? null;
    /**
     * End of what was delivered: `offset + length` of the last OUTPUT frame, or the
     * offset of the last SNAPSHOT. The value to resume from. Null until known.
     * @type {number | null}
     */
    this.offset = options.resumeFrom ?? null;
    /**
     * The id of the pane log `offset` belongs to (`logId` of the last attach response; older
     * gateways send none). Sent back as `resumeLogId`. @type {string | null}
     */
    this.logId = options.resumeLogId ?? null;
    /** The pane's size, from the attach response and `session-resized`. */
    this.cols = null;
    this.rows = null;
    /** The session's attachment count, once an event told it. @type {number | null} */
    this.viewers = null;
    /** @type {AttachmentState} */
    this.state = 'attaching';
    /** Set when the state becomes `closed` by the server or a failed re-attach. @type {CloseReason | null} */
    this.closeReason = null;
  }

  /**
   * Sends keystrokes as a binary INPUT frame (strings are UTF-8 encoded).
   * Input while the attachment is not live is dropped.
   * @param {string | Uint8Array} data
   * @returns {boolean} whether it was sent
   */
  write(data) {
    return this.#client[kSendInput](this, data);
  }

  /**
   * Tells the gateway this viewer's size. On a write attachment the session takes it.
   * The size is remembered and sent again when the attachment is re-attached.
   * @param {number} cols
   * @param {number} rows
   * @returns {Promise<object | null>} the response data, or null when the connection is down
   *   (the size then goes with the re-attach)
   */
  async resize(cols, rows) {
    this.#size = { cols, rows };
    if (this.state !== 'live') return null;
    try {
      return await this.#client.request('session-resize', { channel: this.channel, cols, rows });
    } catch (error) {
      if (error.code === 'disconnected') return null;
      throw error;
    }
  }

  /**
   * Stops the stream without ending the attachment (flow control: the consumer cannot keep
   * up). `offset` stays where delivery stopped; `resume()` re-attaches from there, exactly
   * when the gateway still has the bytes, else with a snapshot. Only a live attachment
   * pauses. Input is dropped while paused.
   * @returns {boolean} whether it paused
   */
  pause() {
    return this.#client[kPause](this);
  }

  /** Re-attaches a paused attachment (when the connection is back, if it is down). */
  resume() {
    this.#client[kResume](this);
  }

  /** Stops the stream. Resolves when the gateway confirmed (or the socket is gone). */
  async detach() {
    const channel = this.channel;
    this.#client[kForget](this);
    this.channel = null;
    this.#setState('closed');
    if (channel === null) return;
    try {
      await this.#client.request('session-detach', { channel });
    } catch {
      // The channel ends with the connection anyway.
    }
  }

  /** The size to send when (re-)attaching: the last one given, if any. */
  [kRequestedSize]() {
    return this.#size;
  }

  /** Takes a successful `session-attach` response. */
  [kBind](data) {
    const resized = data.cols !== this.cols || data.rows !== this.rows;
    this.channel = data.channel;
    this.pane = data.pane;
    this.mode = data.mode;
    this.cols = data.cols;
    this.rows = data.rows;
    // With a snapshot the stream restarts at its frame; until then nothing is deliverable.
    this.offset = data.snapshot ? null : data.offset;
    this.logId = typeof data.logId === 'string' && data.logId ? data.logId : null;
    this.#setState('live');
    // The pane may have been resized while this attachment was away (no event reached it).
    if (resized) callSafely(this.#callbacks.onResize, data.cols, data.rows);
  }

  /**
   * Forgets where the stream was, so the next attach is fresh (a snapshot); with
   * `pane`, also which pane it was (the next attach takes the active one).
   */
  [kRestart]({ pane = false } = {}) {
    this.offset = null;
    this.logId = null;
    if (pane) this.pane = null;
  }

  /**
   * Takes an OUTPUT or SNAPSHOT frame of this attachment's channel.
   * @returns {boolean} false on a gap: the caller must re-attach from `offset`
   */
  [kReceive](frame) {
    if (frame.kind === FRAME_SNAPSHOT) {
      this.offset = frame.offset;
      callSafely(this.#callbacks.onSnapshot, frame.bytes, frame.offset);
      return true;
    }
    const end = this.offset;
    if (end === null) return true; // output before the announced snapshot: not ours to apply
    if (frame.offset > end) return false;
    const frameEnd = frame.offset + frame.bytes.length;
    if (frameEnd <= end) return true; // all seen already (or an empty frame)
    const fresh = frame.bytes.subarray(end - frame.offset);
    this.offset = frameEnd;
    callSafely(this.#callbacks.onData, fresh, end);
    return true;
  }

  /** Takes a protocol event addressed to this attachment. */
  [kEvent](name, data) {
    if (name === 'session-resized') {
      this.cols = data.cols;
      this.rows = data.rows;
      callSafely(this.#callbacks.onResize, data.cols, data.rows);
    } else if (name === 'viewer-joined' || name === 'viewer-left') {
      this.viewers = data.viewers;
      callSafely(this.#callbacks.onViewers, data.viewers);
    } else if (name === 'session-closed') {
      this[kEnd](data.reason);
    } else if (name === 'backend-lost') {
      this[kEnd]('backend-lost', { backend: data.backend });
    } else if (name === 'access-changed') {
      // Re-attaches after a reconnect ask for the mode the gateway now allows.
      this.mode = data.mode;
      callSafely(this.#callbacks.onMode, data.mode);
    }
  }

  /**
   * Not streaming any more: the socket dropped (`reconnecting`: the client re-attaches it
   * when it is back) or `pause()` (`paused`: only `resume()` re-attaches it).
   */
  [kSuspend](state = 'reconnecting') {
    this.channel = null;
    this.#setState(state);
  }

  /** Ends the attachment for good (server side, or a failed re-attach). */
  [kEnd](reason, info) {
    if (this.state === 'closed') return;
    this.#client[kForget](this);
    this.channel = null;
    this.closeReason = reason;
    this.#setState('closed');
    callSafely(this.#callbacks.onClose, reason, info);
  }

  /** Marks a (re-)attach request in flight. */
  [kAttaching]() {
    this.#setState('attaching');
  }

  #setState(state) {
    if (this.state === state) return;
    this.state = state;
    callSafely(this.#callbacks.onState, state);
  }
}
