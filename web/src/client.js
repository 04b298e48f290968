// TerminalWebSocketClient: a dependency-free client of tmuxgate protocol v1
// (docs/protocol.md) for browsers and other JavaScript hosts.
//
// One WebSocket carries JSON requests (matched to responses by id, in any
// order), server events, and binary frames of any number of attachments. The
// client reconnects by itself after a drop and resumes every attachment at its
// exact offset; callers see one continuous byte stream per attachment, or a
// snapshot when the gateway could not keep the missing bytes. Given the URLs of
// a fleet of gateways (`urls`), it tries the same gateway again after a drop (an
// exact resume if it is still there) and moves on to the next one after every
// attempt that fails; the attachments re-attach there (with a snapshot).

import {
  Attachment,
  callSafely,
  kAttaching,
  kBind,
  kEnd,
  kEvent,
  kForget,
  kPause,
  kReceive,
  kRequestedSize,
  kRestart,
  kResume,
  kSendInput,
  kSuspend,
} from './attachment.js';
import { decodeServerFrame, InputEncoder } from './frames.js';
import { RequestError, Requests } from './requests.js';

export { Attachment, RequestError };

/**
 * @typedef {object} ClientOptions
 * @property {string} [url] WebSocket URL; default `ws(s)://<this page's host and path>/ws`
 * @property {string[]} [urls] WebSocket URLs of a fleet of gateways sharing their sessions:
 *   the client starts with the first; after a dropped connection it tries the same one again,
 *   and after every attempt that fails (or a gateway that stops answering) the next one
 *   (round robin, with the usual backoff); replaces `url` when not empty
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

/**
 * `closed` is also where a 4401 close leaves the client (no reconnect; `unauthorized` event).
 * @typedef {'connecting' | 'open' | 'reconnecting' | 'closed'} ClientState
 */

const DEFAULTS = {
  connectTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  heartbeatIntervalMs: 5_000,
  heartbeatTimeoutMs: 10_000,
  reconnectBaseMs: 250,
  reconnectCapMs: 10_000,
  stableAfterMs: 5_000,
};

/** The gateway no longer accepts the credentials (authentication, after protocol v1). */
const CLOSE_UNAUTHORIZED = 4401;
/**
 * Close codes saying this client broke the protocol (bad frame, invalid UTF-8, message too
 * large; 4001: input for a channel never attached). Reconnecting cannot fix that, so these
 * are logged, and the backoff is not reset by the next connection staying up: a client
 * that breaks the protocol on every connection backs off instead of looping.
 */
const PROTOCOL_VIOLATIONS = new Set([4000, 4001, 4002, 4009]);
/** Request error codes after which a re-attach is tried again: the failure may pass. */
const TRANSIENT_ERRORS = new Set(['timeout', 'unavailable', 'internal', 'rate_limited']);
/** Tries of a re-attach failing with a transient error, and the first wait between them. */
const REATTACH_TRIES = 4;
const REATTACH_RETRY_BASE_MS = 500;
/** This many gap repairs of one attachment within the window re-attach it afresh (a snapshot). */
const GAP_REPAIRS_BEFORE_FRESH = 3;
const GAP_REPAIR_WINDOW_MS = 10_000;

/** Events that name a channel, routed to the attachment holding it. */
const CHANNEL_EVENTS = new Set(['session-closed', 'session-resized', 'backend-lost', 'input-refused', 'access-changed']);
/** Events that name a session, routed to every attachment of it. */
const SESSION_EVENTS = new Set(['viewer-joined', 'viewer-left']);

/**
 * The WebSocket URL of the gateway that served this page: `ws(s)://<its host and path>/ws`
 * (the default `url`). Throws outside a browser.
 */
export function pageWebSocketUrl() {
  if (typeof location === 'undefined') throw new Error('options.url is required outside a browser');
  const page = new URL('ws', location.href);
  page.protocol = page.protocol === 'https:' ? 'wss:' : 'ws:';
  return page.href;
}

/**
 * A tmuxgate client. Events (`on`/`off`):
 * - `state` (state: ClientState): connection state changes
 * - `rtt` (ms: number): a heartbeat round trip was measured
 * - `unauthorized` ({code, reason}): the gateway refused the credentials (close 4401); the
 *   client is `closed` and does not reconnect
 * - each protocol event by name (`session-closed`, `session-resized`, `viewer-joined`,
 *   `viewer-left`, `backend-lost`, `access-changed`, `input-refused`): (data, attachment | undefined)
 */
export class TerminalWebSocketClient {
  #options;
  #WebSocket;
  #socket = null;
  /** @type {ClientState} */
  #state = 'closed';
  #wantOpen = false;
  #requests = new Requests();
  #listeners = new Map();
  #attachments = new Set();
  #byChannel = new Map();
  #openWaiters = [];
  #attempt = 0;
  #timers = { reconnect: 0, connect: 0, heartbeat: 0, stable: 0 };
  /** The last close was a protocol violation: the next connection does not reset the backoff. */
  #penalized = false;
  /** Why the client stopped for good (a RequestError), once `close()` or a 4401 stopped it. */
  #stopped = null;
  /** Recent gap repairs per attachment (times in ms). */
  #repairs = new WeakMap();
  #rtt = null;
  #input;
  /** Index into `options.urls` of the gateway connected to (or tried next). */
  #urlIndex = 0;

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

  /** The URL the client connects to (with `urls`: the one in use now, or tried next). */
  get url() {
    const { urls } = this.#options;
    const url = (urls?.length ? urls[this.#urlIndex % urls.length] : this.#options.url) || pageWebSocketUrl();
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
      this.#stopped = null;
      this.#setState('connecting');
      this.#openSocket();
    }
    return opened;
  }

  /** Closes the connection for good: no reconnect; attachments end with `client-closed`. */
  close() {
    const socket = this.#socket;
    this.#stop(new RequestError('client closed', 'disconnected'), 'client-closed');
    socket?.close(1000);
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
   * Attaches a session's pane. Frames and events reach the callbacks in `options`. While
   * the connection is down (or when it drops before the answer) it waits for the next one.
   * @param {string} sessionId
   * @param {import('./attachment.js').AttachOptions} [options]
   * @returns {Promise<Attachment>} rejects with a RequestError when the attach fails, or
   *   with `disconnected` once the client is closed
   */
  async attach(sessionId, options = {}) {
    const attachment = new Attachment(this, sessionId, options);
    for (;;) {
      await this.#opened();
      try {
        await this.#attachRequest(attachment);
        return attachment;
      } catch (error) {
        if (error.code !== 'disconnected') throw error;
      }
    }
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

  /** Resolves when the socket is open; rejects once the client stopped for good. */
  #opened() {
    if (this.#state === 'open') return Promise.resolve();
    if (!this.#wantOpen) return Promise.reject(this.#stopped ?? new RequestError('not connected', 'disconnected'));
    return new Promise((resolve, reject) => this.#openWaiters.push({ resolve, reject }));
  }

  /** Stops for good: no reconnect, attachments end with `reason`, waiters reject with `error`. */
  #stop(error, reason) {
    this.#wantOpen = false;
    this.#stopped = error;
    clearTimeout(this.#timers.reconnect);
    for (const attachment of this.#attachments) attachment[kEnd](reason);
    if (this.#socket) this.#connectionLost(this.#socket);
    for (const waiter of this.#openWaiters.splice(0)) waiter.reject(error);
  }

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
    socket.onclose = (event) => this.#handleClose(socket, event);
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
    if (!this.#penalized) this.#timers.stable = setTimeout(() => (this.#attempt = 0), this.#options.stableAfterMs);
    this.#heartbeat(socket);
    for (const waiter of this.#openWaiters.splice(0)) waiter.resolve();
    for (const attachment of this.#attachments) {
      if (attachment.state === 'reconnecting') this.#reattach(attachment);
    }
  }

  #handleClose(socket, { code, reason } = {}) {
    if (socket !== this.#socket) return;
    if (code === CLOSE_UNAUTHORIZED) {
      this.#stop(new RequestError('the gateway did not accept the credentials', 'unauthorized'), 'unauthorized');
      this.#setState('closed');
      this.#emit('unauthorized', { code, reason });
      return;
    }
    this.#penalized = PROTOCOL_VIOLATIONS.has(code);
    if (this.#penalized) console.warn(`tmuxgate: the gateway closed the connection: ${code} ${reason || '(no reason)'}`);
    const wasOpen = this.#state === 'open';
    this.#connectionLost(socket);
    if (this.#wantOpen) {
      this.#setState('reconnecting');
      this.#scheduleReconnect(!wasOpen);
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
    this.#requests.rejectAll(new RequestError('connection lost', 'disconnected'));
    for (const attachment of this.#attachments) {
      if (attachment.state !== 'paused') attachment[kSuspend]();
    }
  }

  /**
   * Exponential backoff with full jitter: a uniform wait in [0, min(cap, base·2^attempt)).
   * With `urls` and `moveOn` (the attempt failed, or the gateway stopped answering), the
   * next try goes to the next gateway of the fleet; after a plain drop, to the same one.
   */
  #scheduleReconnect(moveOn = true) {
    const { reconnectBaseMs, reconnectCapMs, urls } = this.#options;
    if (moveOn && urls?.length) this.#urlIndex = (this.#urlIndex + 1) % urls.length;
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

  /** @param {import('./requests.js').SendOptions} [options] */
  #send(type, data, timeoutMs = this.#options.requestTimeoutMs, options) {
    const socket = this.#socket;
    if (!socket || this.#state !== 'open') {
      return Promise.reject(new RequestError(`not connected (${type})`, 'disconnected'));
    }
    return this.#requests.send(socket, type, data, timeoutMs, options);
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
    if (message.type === 'response') this.#requests.settle(message);
    else if (message.type === 'event') this.#handleEvent(message.event, message.data ?? {});
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
    if (attachment.offset !== null) {
      data.resumeFrom = attachment.offset;
      // Another gateway (or this one restarted) keeps another log: it answers with a snapshot.
      if (attachment.logId) data.resumeLogId = attachment.logId;
    }
    attachment[kAttaching]();
    const letGo = (response) => this.#send('session-detach', { channel: response.channel }).catch(() => {});
    return this.#send('session-attach', data, undefined, {
      onSuccess: (response) => {
        if (attachment.state === 'closed') return letGo(response); // detached while in flight
        this.#attachments.add(attachment);
        this.#byChannel.set(response.channel, attachment);
        attachment[kBind](response);
      },
      // Else the channel would stream on (and count as a viewer) for nobody.
      onLateSuccess: letGo,
    });
  }

  /**
   * Attaches a known attachment again (after a drop, a gap or `resume()`). Transient
   * errors are tried again with backoff; a pane that is gone gives way to the session's
   * active pane; a drop leaves it to the next connection.
   */
  async #reattach(attachment) {
    for (let tries = 1; ; tries += 1) {
      const socket = this.#socket;
      try {
        await this.#attachRequest(attachment);
        return;
      } catch (error) {
        // Detached meanwhile, or the socket dropped: then #handleOpen re-attaches it.
        if (attachment.state === 'closed' || error.code === 'disconnected') return;
        if (error.code === 'not_found' && attachment.pane !== null) {
          attachment[kRestart]({ pane: true }); // its offsets belonged to that pane
          continue;
        }
        if (!TRANSIENT_ERRORS.has(error.code) || tries >= REATTACH_TRIES) {
          attachment[kEnd]('reattach-failed', { error });
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, REATTACH_RETRY_BASE_MS * 2 ** (tries - 1)));
        // Someone else owns it now: a new connection re-attaches it, or it was detached.
        if (this.#socket !== socket || attachment.state !== 'attaching') return;
      }
    }
  }

  /**
   * Bytes went missing: stop the channel and resume from the last delivered offset, or
   * afresh (a snapshot) when gaps keep coming, so a misbehaving stream cannot loop.
   */
  #repairGap(attachment) {
    const channel = attachment.channel;
    this.#byChannel.delete(channel);
    attachment.channel = null;
    this.#send('session-detach', { channel }).catch(() => {});
    const nowMs = performance.now();
    const recent = (this.#repairs.get(attachment) ?? []).filter((atMs) => nowMs - atMs < GAP_REPAIR_WINDOW_MS);
    recent.push(nowMs);
    this.#repairs.set(attachment, recent);
    if (recent.length >= GAP_REPAIRS_BEFORE_FRESH) {
      this.#repairs.delete(attachment);
      attachment[kRestart]();
    }
    this.#reattach(attachment);
  }

  [kPause](attachment) {
    if (attachment.state !== 'live') return false;
    const channel = attachment.channel;
    if (this.#byChannel.get(channel) === attachment) this.#byChannel.delete(channel);
    attachment[kSuspend]('paused');
    this.#send('session-detach', { channel }).catch(() => {});
    return true;
  }

  [kResume](attachment) {
    if (attachment.state !== 'paused') return;
    // While the connection is down, #handleOpen re-attaches it with the others.
    if (this.#state === 'open') this.#reattach(attachment);
    else attachment[kSuspend]();
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
    // One failing listener must not starve the others or break the socket handler.
    for (const listener of [...(this.#listeners.get(event) ?? [])]) callSafely(listener, ...args);
  }
}
