// One open terminal: an xterm.js Terminal bound to one attachment of a session,
// its tab panel (status line, viewer count, read-only badge) and the overlay
// that says when the session closed or the connection is being restored.

import { FitAddon } from '@xterm/addon-fit';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { WebglAddon } from '@xterm/addon-webgl';
import { Terminal } from '@xterm/xterm';
import { debounce, h } from './dom.js';
import { icon } from './icons.js';
import { bindClipboardKeys } from './keys.js';
import { describeError } from './session-panel.js';
import { onThemeChange, terminalTheme } from './themes.js';

const SCROLLBACK_LINES = 5000;
const RESIZE_DEBOUNCE_MS = 80;
const MIN_CELLS = 2;
const MAX_CELLS = 1000;
/** RIS (ESC c): a full reset in band, ordered with the bytes already queued in xterm. */
const FULL_RESET = '\x1bc';
const FONT_FAMILY =
  'ui-monospace, "SF Mono", "Cascadia Mono", "JetBrains Mono", Menlo, Consolas, "DejaVu Sans Mono", ' +
  '"Liberation Mono", "Noto Sans Mono", "Noto Sans Mono CJK SC", monospace';

/**
 * What the overlay says for each way a session can end.
 * `state` is the view's data-state; `reattach` whether attaching again can help.
 */
const ENDINGS = {
  destroyed: { state: 'closed', title: 'Session destroyed', text: 'The session was destroyed and its programs ended.' },
  exited: { state: 'closed', title: 'Session ended', text: 'The last program in this session exited.' },
  detached: {
    state: 'closed',
    title: 'Detached',
    text: 'The gateway let go of this session; it is still running.',
    reattach: true,
  },
  'backend-lost': {
    state: 'lost',
    title: 'Backend lost',
    text: 'The tmux server holding this session stopped answering.',
    reattach: true,
  },
  gone: { state: 'closed', title: 'Session not found', text: 'This session no longer exists.' },
  failed: { state: 'lost', title: 'Could not attach', text: 'The gateway could not attach this session.', reattach: true },
};

let nextViewId = 1;
let hardwareWebgl = null;

/**
 * Whether WebGL2 runs on a GPU. A software implementation (SwiftShader in headless or
 * GPU-less browsers) is slower than xterm's DOM renderer and draws its canvas at the
 * wrong scale when the device pixel ratio is not 1, so it is not worth using.
 */
function hasHardwareWebgl() {
  if (hardwareWebgl !== null) return hardwareWebgl;
  const gl = document.createElement('canvas').getContext('webgl2', { failIfMajorPerformanceCaveat: true });
  if (!gl) return (hardwareWebgl = false);
  // Chromium and Safari mask RENDERER ("WebKit WebGL"); Firefox names the renderer there
  // and deprecates the debug extension, so ask the extension only when masked.
  let renderer = String(gl.getParameter(gl.RENDERER));
  if (/^WebKit/.test(renderer)) {
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    if (info) renderer = String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL));
  }
  gl.getExtension('WEBGL_lose_context')?.loseContext();
  return (hardwareWebgl = !/swiftshader|llvmpipe|softpipe|software/i.test(renderer));
}
const clampCells = (n) => Math.max(MIN_CELLS, Math.min(MAX_CELLS, Math.floor(n)));

export class TerminalView {
  #client;
  #onChange;
  #onCloseRequest;
  #fitAddon = new FitAddon();
  #resizeObserver = null;
  #disposed = false;
  #parts;
  #stopThemeUpdates;

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
    this.element = this.#render();
    this.#applyMode({ notify: false });
    bindClipboardKeys(this.term, { onLeave });
    this.term.onData((data) => this.attachment?.write(data));
    this.term.onBinary((data) => this.attachment?.write(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)));
    this.#stopThemeUpdates = onThemeChange((theme) => (this.term.options.theme = theme));
  }

  /** Opens the terminal in its (visible) panel and attaches. */
  open() {
    this.term.loadAddon(this.#fitAddon);
    this.term.loadAddon(new WebLinksAddon());
    this.term.loadAddon(new Unicode11Addon());
    this.term.unicode.activeVersion = '11';
    this.term.open(this.#parts.host);
    this.#loadWebgl();
    this.#resizeObserver = new ResizeObserver(this.#scheduleFit);
    this.#resizeObserver.observe(this.#parts.host);
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
    const overlay = this.#parts.overlay;
    if (!overlay.hidden) overlay.querySelector('button')?.focus();
    else this.term.focus();
  }

  /** Switches between write and read-only by re-attaching from where the stream is. */
  async setMode(mode) {
    if (mode === this.mode && this.state !== 'closed' && this.state !== 'lost') return;
    this.mode = mode;
    this.#applyMode();
    await this.reattach();
  }

  /** Asks the workspace to close this tab. */
  requestClose() {
    this.#onCloseRequest(this);
  }

  /** Attaches again, resuming from the last offset when the gateway still has it. */
  async reattach() {
    if (this.state === 'attaching') return;
    const previous = this.attachment;
    this.attachment = null;
    if (previous && previous.state !== 'closed') await previous.detach();
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
    if (cols !== this.term.cols || rows !== this.term.rows) this.term.resize(cols, rows);
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
    this.#parts.viewers.textContent = String(viewers);
    this.#parts.viewersPill.title = viewers === '' ? 'Viewers attached' : `${viewers} ${viewers === 1 ? 'viewer' : 'viewers'} attached`;
  }

  dispose() {
    this.#disposed = true;
    this.#scheduleFit.cancel();
    this.#resizeObserver?.disconnect();
    this.#stopThemeUpdates();
    this.attachment?.detach();
    this.attachment = null;
    this.term.dispose();
    this.element.remove();
  }

  async #attach({ resumeFrom, target }) {
    this.#setState('attaching');
    const size = this.#wantedSize();
    let attachment;
    try {
      attachment = await this.#client.attach(this.sessionId, {
        mode: this.mode,
        ...size,
        resumeFrom,
        target,
        onSnapshot: (bytes) => {
          this.term.write(FULL_RESET);
          this.term.write(bytes);
        },
        onData: (bytes) => this.term.write(bytes),
        onResize: (cols, rows) => this.#applySessionSize(cols, rows),
        onViewers: (viewers) => this.setViewers(viewers),
        onState: (state) => state !== 'closed' && this.#setState(state),
        onClose: (reason, info) => this.#ended(reason, info?.error),
      });
    } catch (error) {
      if (this.#disposed) return;
      if (error.code === 'not_found' && target) return this.#attach({}); // that pane is gone: take the active one
      this.#ended(error.code === 'not_found' ? 'gone' : 'failed', error);
      return;
    }
    if (this.#disposed) {
      attachment.detach();
      return;
    }
    this.attachment = attachment;
    this.#applySessionSize(attachment.cols, attachment.rows);
    this.#setState('live');
    this.fit();
  }

  #ended(reason, error) {
    if (reason === 'reattach-failed') reason = error?.code === 'not_found' ? 'gone' : 'failed';
    const ending = ENDINGS[reason] ?? ENDINGS.failed;
    const { overlay } = this.#parts;
    overlay.querySelector('.overlay-title').textContent = ending.title;
    overlay.querySelector('.overlay-text').textContent = error ? `${ending.text} ${describeError(error)}` : ending.text;
    overlay.querySelector('.reattach').hidden = !ending.reattach;
    this.#setState(ending.state);
  }

  #setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.element.dataset.state = state;
    const { overlay, banner, busy } = this.#parts;
    const ended = state === 'closed' || state === 'lost';
    overlay.hidden = !ended;
    banner.hidden = state !== 'reconnecting';
    busy.hidden = state !== 'attaching';
    this.term.options.disableStdin = ended || this.mode === 'read';
    if (ended) this.setViewers('');
    if (ended && this.active && this.element.contains(document.activeElement)) this.focus();
    if (state === 'live') this.fit(); // the size may have changed while re-attaching
    this.#onChange(this);
  }

  #applyMode({ notify = true } = {}) {
    const readOnly = this.mode === 'read';
    this.element.dataset.mode = this.mode;
    this.#parts.badge.hidden = !readOnly;
    this.#parts.host.classList.toggle('read-only', readOnly);
    this.term.options.disableStdin = readOnly;
    this.term.options.cursorBlink = !readOnly;
    if (notify) this.#onChange(this);
  }

  #applySessionSize(cols, rows) {
    if (!cols || !rows || this.#disposed) return;
    if (cols !== this.term.cols || rows !== this.term.rows) this.term.resize(cols, rows);
    this.#renderSize();
  }

  #wantedSize() {
    const proposed = this.term.element && this.active ? this.#fitAddon.proposeDimensions() : null;
    if (proposed && Number.isFinite(proposed.cols) && Number.isFinite(proposed.rows)) {
      return { cols: clampCells(proposed.cols), rows: clampCells(proposed.rows) };
    }
    return { cols: this.term.cols, rows: this.term.rows };
  }

  #scheduleFit = debounce(() => this.fit(), RESIZE_DEBOUNCE_MS);

  /** GPU rendering when the browser has hardware WebGL2; the DOM renderer otherwise or after a context loss. */
  #loadWebgl() {
    if (!hasHardwareWebgl()) return;
    try {
      const webgl = new WebglAddon();
      webgl.onContextLoss(() => webgl.dispose());
      this.term.loadAddon(webgl);
    } catch {
      // No WebGL2 (headless, blocklisted GPU): xterm keeps its DOM renderer.
    }
  }

  #renderSize() {
    const pane = this.attachment?.pane;
    this.#parts.size.textContent = `${this.term.cols}×${this.term.rows}`;
    this.#parts.pane.textContent = pane ? `pane ${pane}` : '';
  }

  #render() {
    const viewers = h('span', { class: 'viewers' });
    const viewersPill = h('span', { class: 'viewers-pill', title: 'Viewers attached' }, icon('users'), viewers);
    const badge = h('span', { class: 'badge-readonly', hidden: true }, icon('lock'), 'Read-only');
    const size = h('span', { class: 'status-size' });
    const pane = h('span', { class: 'status-pane' });
    const host = h('div', { class: 'term-host' });
    const banner = h('div', { class: 'view-banner', role: 'status', hidden: true }, h('span', { class: 'spinner' }), 'Connection lost — reconnecting; output resumes where it stopped.');
    const busy = h('div', { class: 'view-busy' }, h('span', { class: 'spinner' }), `Attaching ${this.name}…`);
    const overlay = h(
      'div',
      { class: 'overlay', hidden: true },
      h(
        'div',
        { class: 'overlay-card', role: 'alertdialog', 'aria-labelledby': `overlay-title-${this.id}`, 'aria-describedby': `overlay-text-${this.id}` },
        h('div', { class: 'overlay-icon' }, icon('plug')),
        h('h2', { class: 'overlay-title', id: `overlay-title-${this.id}` }),
        h('p', { class: 'overlay-text', id: `overlay-text-${this.id}` }),
        h(
          'div',
          { class: 'overlay-actions' },
          h('button', { type: 'button', class: 'reattach button primary', onclick: () => this.reattach() }, 'Re-attach'),
          h('button', { type: 'button', class: 'close-tab button', onclick: () => this.requestClose() }, 'Close tab'),
        ),
      ),
    );
    const statusLine = h(
      'div',
      { class: 'view-status' },
      h('span', { class: 'status-name', text: this.name }),
      pane,
      size,
      h('span', { class: 'spacer' }),
      badge,
      viewersPill,
    );
    this.#parts = { host, banner, busy, overlay, viewers, viewersPill, badge, size, pane };
    return h(
      'section',
      {
        class: 'terminal-view',
        id: `view-${this.id}`,
        role: 'tabpanel',
        'aria-labelledby': `tab-${this.id}`,
        dataset: { sessionId: this.sessionId, state: this.state, mode: this.mode },
        hidden: true,
      },
      h('div', { class: 'term-frame' }, host, banner, busy, overlay),
      statusLine,
    );
  }
}
