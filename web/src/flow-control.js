// Flow control between an attachment and its xterm.js terminal. xterm parses what it is
// given in time slices, queueing the rest without limit (and throwing past 50 MB), and a
// hidden page runs those slices rarely. The attachment's offset has already moved past
// everything queued, so dropping any of it would lose output silently. Instead, bytes in
// xterm's queue are counted (`term.write(data, callback)`), and past a watermark the
// stream is paused (the attachment detaches, keeping its offset) and resumed once the
// queue has drained and the page is visible: exactly where it stopped when the gateway
// still has the bytes, else from a snapshot.

/** Queued bytes that pause the stream: far below xterm's 50 MB, a few seconds of parsing. */
export const HIGH_WATERMARK_BYTES = 4 * 1024 * 1024;
/** Queued bytes that pause the stream of a hidden page, where xterm parses once a second or less. */
export const HIDDEN_WATERMARK_BYTES = 256 * 1024;
/** Queued bytes at or below which a paused stream resumes (when the page is visible). */
export const LOW_WATERMARK_BYTES = 512 * 1024;

export class WriteFlow {
  #term;
  #onPause;
  #onResume;
  #pending = 0;
  #paused = false;
  #onVisibility = () => this.#maybeResume();

  /**
   * @param {import('@xterm/xterm').Terminal} term
   * @param {{onPause: () => void, onResume: () => void}} handlers pause and resume the stream
   */
  constructor(term, { onPause, onResume }) {
    this.#term = term;
    this.#onPause = onPause;
    this.#onResume = onResume;
    document.addEventListener('visibilitychange', this.#onVisibility);
  }

  /** Bytes given to xterm and not parsed yet. */
  get pending() {
    return this.#pending;
  }

  /** Writes output to the terminal, pausing the stream when xterm falls too far behind. */
  write(data) {
    const length = data.length;
    this.#pending += length;
    this.#term.write(data, () => {
      this.#pending -= length;
      if (this.#paused && this.#pending <= LOW_WATERMARK_BYTES) this.#maybeResume();
    });
    const limit = document.hidden ? HIDDEN_WATERMARK_BYTES : HIGH_WATERMARK_BYTES;
    if (this.#pending > limit) {
      this.#paused = true;
      this.#onPause();
    }
  }

  /** Runs `action` after everything written so far has been parsed (e.g. a resize). */
  then(action) {
    this.#term.write('', action);
  }

  dispose() {
    document.removeEventListener('visibilitychange', this.#onVisibility);
  }

  #maybeResume() {
    if (!this.#paused || document.hidden || this.#pending > LOW_WATERMARK_BYTES) return;
    this.#paused = false;
    this.#onResume();
  }
}
