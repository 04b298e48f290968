// TerminalWebSocketClient: a dependency-free client of tmuxgate protocol v1
// (docs/protocol.md) for browsers and other JavaScript hosts.
//
// One WebSocket carries JSON requests (matched to responses by id, in any
// order), server events, and binary frames of any number of attachments. The
// client reconnects by itself after a drop and resumes every attachment at its
// exact offset; callers see one continuous byte stream per attachment, or a
// snapshot when the gateway could not keep the missing bytes.

import {
  Attachment,
  kAttaching,
  kBind,
  kEnd,
  kEvent,
  kForget,
  kReceive,
  kRequestedSize,
  kSendInput,
  kSuspend,
} from './attachment.js';
import { decodeServerFrame, InputEncoder } from './frames.js';

export { Attachment };

/** Failure of a request: `code` is the protocol's `errorCode`, or `disconnected` / `timeout` from the client. */
export class RequestError extends Error {
  /**
   * @param {string} message
   * @param {string} code
   * @param {object} [response] the gateway's response, when there was one
   */
  constructor(message, code, response) {
    super(message);
    this.name = 'RequestError';
    this.code = code;
    this.response = response;
  }
}

/**
 * @typedef {object} ClientOptions
 * @property {string} [url] WebSocket URL; default `ws(s)://<this page's host and path>/ws`
 * @property {string} [token] sent as `?token=` (for gateways with authentication; unused by protocol v1)
 * @property {typeof WebSocket} [WebSocket] constructor to use instead of the global one (e.g. `ws` in Node)
 * @property {number} [connectTimeoutMs] a socket not open after this is abandoned and retried (10000)
 * @property {number} [requestTimeoutMs] default timeout of `request` (15000)
 * @property {number} [heartbeatIntervalMs] time between heartbeats (5000)
 * @property {number} [heartbeatTimeoutMs] an unanswered heartbeat drops the socket after this (10000)
 * @property {number} [reconnectBaseMs] backoff base (250)
 * @property {number} [reconnectCapMs] backoff cap (10000)
 * @property {number} [stableAfterMs] a connection open this long resets the backoff (5000)
 */

/** @typedef {'connecting' | 'open' | 'reconnecting' | 'closed'} ClientState */

const DEFAULTS = {
  connectTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  heartbeatIntervalMs: 5_000,
  heartbeatTimeoutMs: 10_000,
  reconnectBaseMs: 250,
  reconnectCapMs: 10_000,
  stableAfterMs: 5_000,
};

/** Events that name a channel, routed to the attachment holding it. */
const CHANNEL_EVENTS = new Set(['session-closed', 'session-resized', 'backend-lost', 'input-refused']);
/** Events that name a session, routed to every attachment of it. */
const SESSION_EVENTS = new Set(['viewer-joined', 'viewer-left']);

/**
 * A tmuxgate client. Events (`on`/`off`):
 * - `state` (state: ClientState): connection state changes
 * - `rtt` (ms: number): a heartbeat round trip was measured
 * - each protocol event by name (`session-closed`, `session-resized`, `viewer-joined`,
 *   `viewer-left`, `backend-lost`, `input-refused`): (data, attachment | undefined)
 */
export class TerminalWebSocketClient {
  #options;
  #WebSocket;
  #socket = null;
  /** @type {ClientState} */
  #state = 'closed';
  #wantOpen = false;
  #nextId = 1;
  #pending = new Map();
  #listeners = new Map();
  #attachments = new Set();
  #byChannel = new Map();
  #openWaiters = [];
  #attempt = 0;
  #timers = { reconnect: 0, connect: 0, heartbeat: 0, stable: 0 };
  #rtt = null;
  #input;

  /** @param {ClientOptions} [options] */
  constructor(options = {}) {
    this.#options = { ...DEFAULTS, ...options };
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (!this.#WebSocket) throw new Error('no WebSocket implementation: pass options.WebSocket');
    // Browsers copy what WebSocket.send is given, so one buffer serves every keystroke.
    // A WebSocket from the options may keep a reference: fresh buffers for it.
    this.#input = new InputEncoder({ reuseBuffer: !options.WebSocket });
  }

  /** @returns {ClientState} */
  get state() {
    return this.#state;
  }

  /** The last measured heartbeat round trip in milliseconds, or null. */
  get rtt() {
    return this.#rtt;
  }

  /** The attachments not yet closed. @returns {Attachment[]} */
  get attachments() {
    return [...this.#attachments];
  }

  /** The URL the client connects to. */
  get url() {
    let url = this.#options.url;
    if (!url) {
      if (typeof location === 'undefined') throw new Error('options.url is required outside a browser');
      const page = new URL('ws', location.href);
      page.protocol = page.protocol === 'https:' ? 'wss:' : 'ws:';
      url = page.href;
    }
    if (!this.#options.token) return url;
    const withToken = new URL(url);
    withToken.searchParams.set('token', this.#options.token);
    return withToken.href;
  }

  /**
   * Opens the connection (and keeps it open, reconnecting after drops, until `close()`).
   * @returns {Promise<void>} resolves when the socket is open; rejects if `close()` comes first
   */
  connect() {
    const opened = new Promise((resolve, reject) => {
      if (this.#state === 'open') resolve();
      else this.#openWaiters.push({ resolve, reject });
    });
    if (!this.#wantOpen) {
      this.#wantOpen = true;
      this.#setState('connecting');
      this.#openSocket();
    }
    return opened;
  }

  /** Closes the connection for good: no reconnect; attachments end with `client-closed`. */
  close() {
    this.#wantOpen = false;
    clearTimeout(this.#timers.reconnect);
    for (const attachment of this.#attachments) attachment[kEnd]('client-closed');
    const socket = this.#socket;
    if (socket) {
      this.#connectionLost(socket);
      socket.close(1000);
    }
    for (const waiter of this.#openWaiters.splice(0)) waiter.reject(new RequestError('client closed', 'disconnected'));
    this.#setState('closed');
  }

  /** Skips the backoff wait and tries to reconnect now (e.g. when the browser comes back online). */
  reconnectNow() {
    if (this.#state !== 'reconnecting' || this.#socket) return;
    clearTimeout(this.#timers.reconnect);
    this.#openSocket();
  }

  /**
   * Sends a request and waits for its response.
   * @param {string} type a request type, e.g. `session-list`
   * @param {object} [data]
   * @param {{timeoutMs?: number}} [options]
   * @returns {Promise<any>} the response's `data`; rejects with a RequestError
   */
  request(type, data = {}, { timeoutMs } = {}) {
    return this.#send(type, data, timeoutMs ?? this.#options.requestTimeoutMs);
  }

  /**
   * Attaches a session's pane. Frames and events reach the callbacks in `options`.
   * @param {string} sessionId
   * @param {import('./attachment.js').AttachOptions} [options]
   * @returns {Promise<Attachment>} rejects with a RequestError when the attach fails
   */
  async attach(sessionId, options = {}) {
    const attachment = new Attachment(this, sessionId, options);
    await this.#attachRequest(attachment);
    return attachment;
  }

  /**
   * Subscribes to an event.
   * @param {string} event
   * @param {Function} listener
   * @returns {() => void} unsubscribes
   */
  on(event, listener) {
    if (!this.#listeners.has(event)) this.#listeners.set(event, new Set());
    this.#listeners.get(event).add(listener);
    return () => this.off(event, listener);
  }

  /** Unsubscribes a listener added with `on`. */
  off(event, listener) {
    this.#listeners.get(event)?.delete(listener);
  }

  // --- connection lifecycle -------------------------------------------------

  #openSocket() {
    let socket;
    try {
      socket = new this.#WebSocket(this.url);
    } catch (error) {
      this.#scheduleReconnect();
      return;
    }
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => this.#handleOpen(socket);
    socket.onmessage = (event) => this.#handleMessage(event.data);
    socket.onclose = () => this.#handleClose(socket);
    socket.onerror = () => {}; // a close event follows
    this.#socket = socket;
    // A connection attempt into a black hole can hang for minutes before the browser gives up.
    this.#timers.connect = setTimeout(() => this.#abandon(socket), this.#options.connectTimeoutMs);
  }

  /** Gives up on a socket that stopped answering (or never opened) and schedules the next try. */
  #abandon(socket) {
    if (socket !== this.#socket) return;
    this.#connectionLost(socket);
    socket.close(4000, 'unresponsive');
    this.#setState('reconnecting');
    this.#scheduleReconnect();
  }

  #handleOpen(socket) {
    if (socket !== this.#socket) return;
    clearTimeout(this.#timers.connect);
    this.#setState('open');
    this.#timers.stable = setTimeout(() => (this.#attempt = 0), this.#options.stableAfterMs);
    this.#heartbeat(socket);
    for (const waiter of this.#openWaiters.splice(0)) waiter.resolve();
    for (const attachment of this.#attachments) {
      if (attachment.state === 'reconnecting') this.#reattach(attachment);
    }
  }

  #handleClose(socket) {
    if (socket !== this.#socket) return;
    this.#connectionLost(socket);
    if (this.#wantOpen) {
      this.#setState('reconnecting');
      this.#scheduleReconnect();
    }
  }

  /** Forgets `socket` and everything that lived on it. */
  #connectionLost(socket) {
    socket.onopen = socket.onmessage = socket.onclose = null;
    this.#socket = null;
    clearTimeout(this.#timers.connect);
    clearTimeout(this.#timers.heartbeat);
    clearTimeout(this.#timers.stable);
    this.#byChannel.clear();
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(new RequestError('connection lost', 'disconnected'));
    }
    this.#pending.clear();
    for (const attachment of this.#attachments) attachment[kSuspend]();
  }

  /** Exponential backoff with full jitter: a uniform wait in [0, min(cap, base·2^attempt)). */
  #scheduleReconnect() {
    const { reconnectBaseMs, reconnectCapMs } = this.#options;
    const ceilingMs = Math.min(reconnectCapMs, reconnectBaseMs * 2 ** this.#attempt);
    this.#attempt += 1;
    clearTimeout(this.#timers.reconnect);
    this.#timers.reconnect = setTimeout(() => {
      if (this.#wantOpen && !this.#socket) this.#openSocket();
    }, Math.random() * ceilingMs);
  }

  /** Measures the round trip now and every interval; a silent socket is dropped. */
  async #heartbeat(socket) {
    const startedMs = performance.now();
    try {
      await this.request('heartbeat', { timestamp: Date.now() }, { timeoutMs: this.#options.heartbeatTimeoutMs });
      this.#rtt = performance.now() - startedMs;
      this.#emit('rtt', this.#rtt);
    } catch (error) {
      // Half-open (a sleeping laptop, a dead NAT entry): don't wait for TCP to notice.
      if (error.code === 'timeout') this.#abandon(socket);
    }
    if (socket !== this.#socket) return;
    this.#timers.heartbeat = setTimeout(() => this.#heartbeat(socket), this.#options.heartbeatIntervalMs);
  }

  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.#emit('state', state);
  }

  // --- requests and messages -------------------------------------------------

  /** `onSuccess` runs synchronously with the response, before any later frame is read. */
  #send(type, data, timeoutMs, onSuccess) {
    const socket = this.#socket;
    if (!socket || this.#state !== 'open') {
      return Promise.reject(new RequestError(`not connected (${type})`, 'disconnected'));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new RequestError(`${type}: no response in ${timeoutMs} ms`, 'timeout'));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer, onSuccess });
      socket.send(JSON.stringify({ type, id, timestamp: Date.now(), data }));
    });
  }

  #handleMessage(data) {
    if (typeof data !== 'string') {
      this.#handleFrame(data);
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.type === 'response') this.#handleResponse(message);
    else if (message.type === 'event') this.#handleEvent(message.event, message.data ?? {});
  }

  #handleResponse(message) {
    const pending = this.#pending.get(message.id);
    if (!pending) return; // timed out already, or not ours
    this.#pending.delete(message.id);
    clearTimeout(pending.timer);
    if (message.success) {
      pending.onSuccess?.(message.data);
      pending.resolve(message.data);
    } else {
      pending.reject(new RequestError(message.error ?? 'request failed', message.errorCode ?? 'internal', message));
    }
  }

  #handleEvent(name, data) {
    let attachment;
    if (CHANNEL_EVENTS.has(name)) {
      attachment = this.#byChannel.get(data.channel);
      attachment?.[kEvent](name, data);
    } else if (SESSION_EVENTS.has(name)) {
      for (const each of this.#attachments) {
        if (each.sessionId === data.sessionId) each[kEvent](name, data);
      }
    }
    this.#emit(name, data, attachment);
  }

  #handleFrame(buffer) {
    if (!(buffer instanceof ArrayBuffer)) return;
    const frame = decodeServerFrame(buffer);
    if (!frame) return;
    const attachment = this.#byChannel.get(frame.channel);
    if (!attachment) return; // a channel being detached
    if (!attachment[kReceive](frame)) this.#repairGap(attachment);
  }

  // --- attachments ------------------------------------------------------------

  #attachRequest(attachment) {
    const data = { sessionId: attachment.sessionId, mode: attachment.mode };
    const size = attachment[kRequestedSize]();
    if (size) Object.assign(data, size);
    if (attachment.pane) data.target = attachment.pane;
    if (attachment.offset !== null) data.resumeFrom = attachment.offset;
    attachment[kAttaching]();
    return this.#send('session-attach', data, this.#options.requestTimeoutMs, (response) => {
      if (attachment.state === 'closed') {
        // Detached while the request was in flight.
        this.#send('session-detach', { channel: response.channel }).catch(() => {});
        return;
      }
      this.#attachments.add(attachment);
      this.#byChannel.set(response.channel, attachment);
      attachment[kBind](response);
    });
  }

  async #reattach(attachment) {
    try {
      await this.#attachRequest(attachment);
    } catch (error) {
      // A drop during the request retries on the next connection.
      if (error.code !== 'disconnected') attachment[kEnd]('reattach-failed', { error });
    }
  }

  /** Bytes went missing: stop the channel and resume from the last delivered offset. */
  #repairGap(attachment) {
    const channel = attachment.channel;
    this.#byChannel.delete(channel);
    attachment.channel = null;
    this.#send('session-detach', { channel }).catch(() => {});
    this.#reattach(attachment);
  }

  [kForget](attachment) {
    this.#attachments.delete(attachment);
    if (this.#byChannel.get(attachment.channel) === attachment) this.#byChannel.delete(attachment.channel);
  }

  [kSendInput](attachment, data) {
    const socket = this.#socket;
    if (!socket || attachment.state !== 'live') return false;
    for (const frame of this.#input.encode(attachment.channel, data)) socket.send(frame);
    return true;
  }

  #emit(event, ...args) {
    for (const listener of [...(this.#listeners.get(event) ?? [])]) {
      try {
        listener(...args);
      } catch (error) {
        // One failing listener must not starve the others or break the socket handler.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
