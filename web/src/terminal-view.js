// One open terminal: an xterm.js Terminal bound to one attachment of a session, in
// its tab panel (terminal-panel.js). It sizes the terminal (or the session, for the
// visible write terminal), switches modes and attaches again when asked.
//
// Output goes through flow control (flow-control.js): when xterm falls behind, the
// attachment pauses and resumes from its offset; the view keeps showing `live` meanwhile
// and holds what the user types until the stream is back.

import { FitAddon } from '@xterm/addon-fit';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { Terminal } from '@xterm/xterm';
import { debounce } from './dom.js';
import { WriteFlow } from './flow-control.js';
import { bindClipboardKeys } from './keys.js';
import { guardOutput, isFocusReport } from './output-guard.js';
import { guardPaste } from './paste.js';
import { TerminalPanel } from './terminal-panel.js';
import { onThemeChange, terminalTheme } from './themes.js';
import { loadWebgl } from './webgl.js';

const SCROLLBACK_LINES = 5000;
const RESIZE_DEBOUNCE_MS = 80;
const MIN_CELLS = 2;
const MAX_CELLS = 1000;
/** RIS (ESC c): a full reset in band, ordered with the bytes already queued in xterm. */
const FULL_RESET = '\x1bc';
/** Keystrokes held while a paused stream resumes, at most (UTF-16 units); more are dropped. */
const HELD_INPUT_MAX = 64 * 1024;
const FONT_FAMILY =
  'ui-monospace, "SF Mono", "Cascadia Mono", "JetBrains Mono", Menlo, Consolas, "DejaVu Sans Mono", ' +
  '"Liberation Mono", "Noto Sans Mono", "Noto Sans Mono CJK SC", monospace';

let nextViewId = 1;

const clampCells = (n) => Math.max(MIN_CELLS, Math.min(MAX_CELLS, Math.floor(n)));

export class TerminalView {
  #client;
  #onChange;
  #onCloseRequest;
  #fitAddon = new FitAddon();
  #resizeObserver = null;
  #disposed = false;
  #panel;
  #stopThemeUpdates;
  #flow;
  /** The terminal's size once queued writes and resizes are parsed: the last one asked for. */
  #size;
  /** An attach (or the detach before it) is in flight. */
  #attaching = false;
  /** A mode asked for while attaching, applied when that attach settles. */
  #queuedMode = null;
  /** Identifies the attachment whose callbacks count; callbacks of older ones are ignored. */
  #current = null;
  /** Keystrokes typed while the stream is paused or resuming; null when it is not. */
  #held = null;

  /**
   * @param {object} options
   * @param {import('./client.js').TerminalWebSocketClient} options.client
   * @param {{sessionId: string, name: string}} options.session
   * @param {'write' | 'read'} options.mode
   * @param {(view: TerminalView) => void} options.onChange state, mode or viewers changed
   * @param {(view: TerminalView) => void} options.onCloseRequest the user asked to close the tab
   * @param {() => void} options.onLeave the user asked to leave the terminal (keyboard)
   */
  constructor({ client, session, mode, onChange, onCloseRequest, onLeave }) {
    this.#client = client;
    this.#onChange = onChange;
    this.#onCloseRequest = onCloseRequest;
    this.id = nextViewId++;
    this.sessionId = session.sessionId;
    this.name = session.name;
    this.mode = mode;
    /** @type {'attaching' | 'live' | 'reconnecting' | 'closed' | 'lost'} */
    this.state = 'attaching';
    /** @type {number | ''} */
    this.viewers = '';
    /** @type {import('./attachment.js').Attachment | null} */
    this.attachment = null;
    this.active = false;
    this.term = new Terminal({
      allowProposedApi: true, // unicode11's width tables
      cursorBlink: true,
      fontFamily: FONT_FAMILY,
      fontSize: 13,
      lineHeight: 1.15,
      macOptionIsMeta: true,
      scrollback: SCROLLBACK_LINES,
      theme: terminalTheme(),
    });
    this.#size = { cols: this.term.cols, rows: this.term.rows };
    this.#flow = new WriteFlow(this.term, { onPause: () => this.#pause(), onResume: () => this.#resume() });
    this.#panel = new TerminalPanel({
      id: this.id,
      sessionId: this.sessionId,
      name: this.name,
      state: this.state,
      mode: this.mode,
      onReattach: () => this.reattach(),
      onCloseTab: () => this.requestClose(),
    });
    this.element = this.#panel.element;
    this.#applyMode({ notify: false });
    bindClipboardKeys(this.term, { onLeave });
    guardOutput(this.term);
    this.term.onData((data) => isFocusReport(data) || this.#input(data));
    this.term.onBinary((data) => this.#input(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)));
    this.#stopThemeUpdates = onThemeChange((theme) => (this.term.options.theme = theme));
  }

  /** The session ended here (`closed` or `lost`): the overlay shows. */
  get ended() {
    return this.state === 'closed' || this.state === 'lost';
  }

  /** Opens the terminal in its (visible) panel and attaches. */
  open() {
    this.term.loadAddon(this.#fitAddon);
    this.term.loadAddon(new WebLinksAddon());
    this.term.loadAddon(new Unicode11Addon());
    this.term.unicode.activeVersion = '11';
    this.term.open(this.#panel.host);
    guardPaste(this.term);
    loadWebgl(this.term);
    this.#resizeObserver = new ResizeObserver(this.#scheduleFit);
    this.#resizeObserver.observe(this.#panel.host);
    this.fit();
    return this.#attach({});
  }

  /** Shows the panel; `focus` moves keyboard focus into the terminal. */
  show({ focus = false } = {}) {
    this.active = true;
    this.element.hidden = false;
    this.fit();
    if (focus) this.focus();
  }

  hide() {
    this.active = false;
    this.element.hidden = true;
  }

  focus() {
    if (!this.#panel.focusOverlay()) this.term.focus();
  }

  /**
   * Switches between write and read-only by re-attaching from where the stream is (or
   * attaches again in `mode` after the session ended here). While an attach is in flight
   * the change waits for it, so the badge always tells the mode attached.
   */
  async setMode(mode) {
    if (this.#attaching) {
      this.#queuedMode = mode;
      return;
    }
    if (mode === this.mode && !this.ended) return;
    this.mode = mode;
    this.#applyMode();
    await this.reattach();
  }

  /** Asks the workspace to close this tab. */
  requestClose() {
    this.#onCloseRequest(this);
  }

  /**
   * Attaches again, resuming from the last offset when the gateway still has it. The
   * previous attachment (and its offset) stays until the new one is live, so a failed try
   * can be tried again from the same place.
   */
  async reattach() {
    if (this.#attaching || this.#disposed) return;
    this.#attaching = true;
    const previous = this.attachment;
    if (previous && previous.state !== 'closed') await previous.detach();
    if (this.#disposed) return;
    await this.#attach({ resumeFrom: previous?.offset ?? undefined, target: previous?.pane ?? undefined });
  }

  /**
   * Fits the terminal to its panel. Only the visible write terminal drives the session
   * size; a read-only one keeps the session's size (and scrolls in its panel).
   */
  fit() {
    if (!this.active || this.#disposed || this.mode !== 'write' || !this.term.element) return;
    const proposed = this.#fitAddon.proposeDimensions();
    if (!proposed || !Number.isFinite(proposed.cols) || !Number.isFinite(proposed.rows)) return;
    const cols = clampCells(proposed.cols);
    const rows = clampCells(proposed.rows);
    this.#resizeTerm(cols, rows);
    const attachment = this.attachment;
    if (attachment && attachment.state !== 'closed' && (attachment.cols !== cols || attachment.rows !== rows)) {
      attachment.resize(cols, rows).catch(() => {}); // retried at the next re-attach
    }
    this.#renderSize();
  }

  /** The whole buffer as text: wrapped lines joined, trailing empty lines dropped. */
  text() {
    const buffer = this.term.buffer.active;
    const lines = [];
    for (let y = 0; y < buffer.length; y++) {
      const line = buffer.getLine(y);
      if (!line) continue;
      const text = line.translateToString(true);
      if (line.isWrapped && lines.length > 0) lines[lines.length - 1] += text;
      else lines.push(text);
    }
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return lines.join('\n');
  }

  /** Shows the session's attachment count ('' when unknown). */
  setViewers(viewers) {
    if (viewers === this.viewers) return;
    this.viewers = viewers;
    this.#panel.showViewers(viewers);
  }

  dispose() {
    this.#disposed = true;
    this.#scheduleFit.cancel();
    this.#resizeObserver?.disconnect();
    this.#stopThemeUpdates();
    this.#flow.dispose();
    this.#current = null;
    this.attachment?.detach();
    this.attachment = null;
    this.term.dispose();
    this.element.remove();
  }

  /** Attaches the session; on success the new attachment replaces the previous one. */
  async #attach({ resumeFrom, target }) {
    this.#attaching = true;
    this.#held = null;
    this.#setState('attaching');
    try {
      for (;;) {
        const token = (this.#current = {});
        try {
          const attachment = await this.#client.attach(this.sessionId, this.#attachOptions(token, { resumeFrom, target }));
          this.#bound(attachment);
          return;
        } catch (error) {
          if (this.#disposed || token !== this.#current) return;
          if (error.code === 'not_found' && target) {
            resumeFrom = target = undefined; // that pane is gone: take the active one
            continue;
          }
          const ending = { not_found: 'gone', unauthorized: 'unauthorized' }[error.code] ?? 'failed';
          this.#ended(ending, error);
          return;
        }
      }
    } finally {
      this.#attaching = false;
      this.#applyQueuedMode();
    }
  }

  /** Options for `client.attach`, whose callbacks act only while `token` is current. */
  #attachOptions(token, { resumeFrom, target }) {
    const current = (callback) => (...args) => token === this.#current && callback(...args);
    return {
      mode: this.mode,
      ...this.#wantedSize(),
      resumeFrom,
      target,
      onSnapshot: current((bytes) => {
        this.#flow.write(FULL_RESET);
        this.#flow.write(bytes);
      }),
      onData: current((bytes) => this.#flow.write(bytes)),
      onResize: current((cols, rows) => this.#applySessionSize(cols, rows)),
      onViewers: current((viewers) => this.setViewers(viewers)),
      onState: current((state) => this.#follow(state)),
      onMode: current((mode) => {
        this.mode = mode;
        this.#applyMode();
      }),
      onClose: current((reason, info) => this.#ended(reason, info?.error)),
    };
  }

  #bound(attachment) {
    if (this.#disposed) {
      attachment.detach();
      return;
    }
    this.attachment = attachment;
    this.#applySessionSize(attachment.cols, attachment.rows);
    this.#follow(attachment.state);
    this.fit();
  }

  /** Shows the attachment's state; paused (and resuming from flow control) still shows `live`. */
  #follow(state) {
    if (state === 'closed' || state === 'paused') return; // onClose says why a close happened
    if (this.#held && state === 'attaching') return;
    const held = this.#held ?? [];
    this.#held = null;
    this.#setState(state);
    if (state === 'live') for (const data of held) this.attachment?.write(data);
  }

  /** Flow control: xterm is too far behind. */
  #pause() {
    const attachment = this.attachment;
    if (attachment?.state !== 'live') return;
    this.#held ??= []; // from now until the stream is back: also while it re-attaches
    attachment.pause();
  }

  /** Flow control: xterm caught up (and the page is visible). */
  #resume() {
    if (this.attachment?.state === 'paused') this.attachment.resume();
  }

  /** Keystrokes: to the attachment, or held while its stream is paused. */
  #input(data) {
    if (!this.#held) {
      this.attachment?.write(data);
      return;
    }
    const heldLength = this.#held.reduce((sum, each) => sum + each.length, 0);
    if (heldLength + data.length <= HELD_INPUT_MAX) this.#held.push(data);
  }

  #applyQueuedMode() {
    const mode = this.#queuedMode;
    this.#queuedMode = null;
    if (mode && !this.#disposed) this.setMode(mode);
  }

  /** The session ended here (`reason` as `onClose` gives it), or an attach failed. */
  #ended(reason, error) {
    this.#held = null;
    this.#setState(this.#panel.showEnding(reason, error));
  }

  #setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.#panel.showState(state);
    const ended = this.ended;
    this.term.options.disableStdin = ended || this.mode === 'read';
    if (ended) this.setViewers('');
    if (ended && this.active && this.element.contains(document.activeElement)) this.focus();
    if (state === 'live') this.fit(); // the size may have changed while re-attaching
    this.#onChange(this);
  }

  #applyMode({ notify = true } = {}) {
    const readOnly = this.mode === 'read';
    this.#panel.showMode(this.mode);
    this.term.options.disableStdin = readOnly;
    this.term.options.cursorBlink = !readOnly;
    if (notify) this.#onChange(this);
  }

  #applySessionSize(cols, rows) {
    if (!cols || !rows || this.#disposed) return;
    this.#resizeTerm(cols, rows);
    this.#renderSize();
  }

  /**
   * Resizes xterm after the output already queued in it (written for the old size) and
   * before what comes next.
   */
  #resizeTerm(cols, rows) {
    if (cols === this.#size.cols && rows === this.#size.rows) return;
    this.#size = { cols, rows };
    this.#flow.then(() => {
      if (this.#disposed || (cols === this.term.cols && rows === this.term.rows)) return;
      this.term.resize(cols, rows);
    });
  }

  #wantedSize() {
    const proposed = this.term.element && this.active ? this.#fitAddon.proposeDimensions() : null;
    if (proposed && Number.isFinite(proposed.cols) && Number.isFinite(proposed.rows)) {
      return { cols: clampCells(proposed.cols), rows: clampCells(proposed.rows) };
    }
    return { ...this.#size };
  }

  #scheduleFit = debounce(() => this.fit(), RESIZE_DEBOUNCE_MS);

  #renderSize() {
    this.#panel.showSize(this.#size.cols, this.#size.rows, this.attachment?.pane);
  }
}
