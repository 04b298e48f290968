// The chrome around one terminal: its tab panel (`.terminal-view`, with the test
// contract's data-state and data-mode), the status line (name, pane, size, read-only
// badge, viewer count), the reconnecting banner, the attaching spinner, and the overlay
// that says how the session ended and offers Re-attach and Close tab.

import { h } from './dom.js';
import { icon } from './icons.js';
import { describeError } from './session-panel.js';

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
  revoked: { state: 'closed', title: 'Access revoked', text: 'The session’s owner took back its share with you.' },
  gone: { state: 'closed', title: 'Session not found', text: 'This session no longer exists.' },
  failed: { state: 'lost', title: 'Could not attach', text: 'The gateway could not attach this session.', reattach: true },
  unauthorized: {
    state: 'closed',
    title: 'Signed out',
    text: 'The gateway no longer accepts this page’s credentials. Reload the page to sign in again.',
  },
};

export class TerminalPanel {
  #parts;

  /**
   * @param {object} options
   * @param {number} options.id unique per view: element ids
   * @param {string} options.sessionId
   * @param {string} options.name
   * @param {string} options.state
   * @param {'write' | 'read'} options.mode
   * @param {() => void} options.onReattach the overlay's Re-attach
   * @param {() => void} options.onCloseTab the overlay's Close tab
   */
  constructor({ id, sessionId, name, state, mode, onReattach, onCloseTab }) {
    /** The `.terminal-view` section. */
    this.element = this.#render({ id, sessionId, name, state, mode, onReattach, onCloseTab });
    /** Where xterm opens. */
    this.host = this.#parts.host;
  }

  /** Shows `state`: the overlay when ended, the banner while reconnecting, the spinner while attaching. */
  showState(state) {
    const { overlay, banner, busy } = this.#parts;
    this.element.dataset.state = state;
    overlay.hidden = state !== 'closed' && state !== 'lost';
    banner.hidden = state !== 'reconnecting';
    busy.hidden = state !== 'attaching';
  }

  /**
   * Fills the overlay for an ending: a close reason of the attachment, or `gone` / `failed`
   * for an attach that failed (`error` its RequestError).
   * @returns {'closed' | 'lost'} the state to show
   */
  showEnding(reason, error) {
    if (reason === 'reattach-failed') reason = error?.code === 'not_found' ? 'gone' : 'failed';
    const ending = ENDINGS[reason] ?? ENDINGS.failed;
    const { overlay } = this.#parts;
    overlay.querySelector('.overlay-title').textContent = ending.title;
    overlay.querySelector('.overlay-text').textContent = error ? `${ending.text} ${describeError(error)}` : ending.text;
    overlay.querySelector('.reattach').hidden = !ending.reattach;
    return ending.state;
  }

  /** Focuses the overlay's first button; false when the overlay is not shown. */
  focusOverlay() {
    const overlay = this.#parts.overlay;
    if (overlay.hidden) return false;
    overlay.querySelector('button:not([hidden])')?.focus();
    return true;
  }

  showMode(mode) {
    const readOnly = mode === 'read';
    this.element.dataset.mode = mode;
    this.#parts.badge.hidden = !readOnly;
    this.#parts.host.classList.toggle('read-only', readOnly);
  }

  /** The session's attachment count ('' when unknown). */
  showViewers(viewers) {
    this.#parts.viewers.textContent = String(viewers);
    this.#parts.viewersPill.title = viewers === '' ? 'Viewers attached' : `${viewers} ${viewers === 1 ? 'viewer' : 'viewers'} attached`;
  }

  showSize(cols, rows, pane) {
    this.#parts.size.textContent = `${cols}×${rows}`;
    this.#parts.pane.textContent = pane ? `pane ${pane}` : '';
  }

  #render({ id, sessionId, name, state, mode, onReattach, onCloseTab }) {
    const viewers = h('span', { class: 'viewers' });
    const viewersPill = h('span', { class: 'viewers-pill', title: 'Viewers attached' }, icon('users'), viewers);
    const badge = h('span', { class: 'badge-readonly', hidden: true }, icon('lock'), 'Read-only');
    const size = h('span', { class: 'status-size' });
    const pane = h('span', { class: 'status-pane' });
    const host = h('div', { class: 'term-host' });
    const banner = h('div', { class: 'view-banner', role: 'status', hidden: true }, h('span', { class: 'spinner' }), 'Connection lost — reconnecting; output resumes where it stopped.');
    const busy = h('div', { class: 'view-busy' }, h('span', { class: 'spinner' }), `Attaching ${name}…`);
    const overlay = h(
      'div',
      { class: 'overlay', hidden: true },
      h(
        'div',
        { class: 'overlay-card', role: 'alertdialog', 'aria-labelledby': `overlay-title-${id}`, 'aria-describedby': `overlay-text-${id}` },
        h('div', { class: 'overlay-icon' }, icon('plug')),
        h('h2', { class: 'overlay-title', id: `overlay-title-${id}` }),
        h('p', { class: 'overlay-text', id: `overlay-text-${id}` }),
        h(
          'div',
          { class: 'overlay-actions' },
          h('button', { type: 'button', class: 'reattach button primary', onclick: onReattach }, 'Re-attach'),
          h('button', { type: 'button', class: 'close-tab button', onclick: onCloseTab }, 'Close tab'),
        ),
      ),
    );
    const statusLine = h(
      'div',
      { class: 'view-status' },
      h('span', { class: 'status-name', text: name }),
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
        id: `view-${id}`,
        role: 'tabpanel',
        'aria-labelledby': `tab-${id}`,
        dataset: { sessionId, state, mode },
        hidden: true,
      },
      h('div', { class: 'term-frame' }, host, banner, busy, overlay),
      statusLine,
    );
  }
}
