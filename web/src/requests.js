// JSON requests in flight on one WebSocket (docs/protocol.md, "Requests and responses"):
// ids, responses matched to them in any order, timeouts, and what to do with an answer
// that arrives after its request timed out.

import { callSafely } from './attachment.js';

/**
 * Failure of a request: `code` is the protocol's `errorCode`, or `disconnected` / `timeout`
 * from the client (`unauthorized` when the gateway closed the connection with 4401).
 */
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
 * @typedef {object} SendOptions
 * @property {(data: any) => void} [onSuccess] runs with a successful response, synchronously,
 *   before any later message is read (so before the frames that follow it)
 * @property {(data: any) => void} [onLateSuccess] runs when a success arrives after the timeout
 */

export class Requests {
  #nextId = 1;
  #pending = new Map();
  /** id → onLateSuccess, for requests that timed out on the current socket. */
  #late = new Map();

  /**
   * Sends `{type, id, timestamp, data}` on `socket` and waits for the response.
   * @param {WebSocket} socket an open socket
   * @param {string} type
   * @param {object} data
   * @param {number} timeoutMs
   * @param {SendOptions} [options]
   * @returns {Promise<any>} the response's data; rejects with a RequestError
   */
  send(socket, type, data, timeoutMs, { onSuccess, onLateSuccess } = {}) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        if (onLateSuccess) this.#late.set(id, onLateSuccess);
        reject(new RequestError(`${type}: no response in ${timeoutMs} ms`, 'timeout'));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer, onSuccess });
      socket.send(JSON.stringify({ type, id, timestamp: Date.now(), data }));
    });
  }

  /** Settles the request a response answers (or runs its late handler); ignores strangers. */
  settle(message) {
    const pending = this.#pending.get(message.id);
    if (!pending) {
      const onLateSuccess = this.#late.get(message.id);
      this.#late.delete(message.id);
      if (onLateSuccess && message.success) callSafely(onLateSuccess, message.data ?? {});
      return;
    }
    this.#pending.delete(message.id);
    clearTimeout(pending.timer);
    if (message.success) {
      if (pending.onSuccess) callSafely(pending.onSuccess, message.data);
      pending.resolve(message.data);
    } else {
      pending.reject(new RequestError(message.error ?? 'request failed', message.errorCode ?? 'internal', message));
    }
  }

  /** The socket is gone: everything in flight fails with `error`, and no late answer can come. */
  rejectAll(error) {
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.#pending.clear();
    this.#late.clear();
  }
}
