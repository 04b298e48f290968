// The sessions side panel: the create form and the session list (open, open
// read-only, share, destroy), kept fresh by polling `session-list` and by session
// events. With authentication a row names the session's owner when it is someone
// else, and offers sharing when this user may share it.
//
// Keyboard: the current row's buttons are in the tab order; Up/Down (and Home/End)
// move between rows, Left/Right between a row's buttons.

import { allows } from './auth.js';
import { debounce, h } from './dom.js';
import { icon } from './icons.js';

const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const REFRESH_INTERVAL_MS = 5_000;
// Past the gateway's 250 ms coalescing of viewer counts, so one refresh sees the final count.
const EVENT_REFRESH_DELAY_MS = 300;

/** A user-facing sentence for a failed request. */
export function describeError(error) {
  if (error.code === 'disconnected') return 'Not connected to the gateway. Try again once it is back.';
  if (error.code === 'unauthorized') return 'Signed out: reload the page to sign in again.';
  if (error.code === 'timeout') return 'The gateway did not answer in time.';
  const message = error.message || 'the request failed';
  return /[.!?]$/.test(message) ? message : `${message[0].toUpperCase()}${message.slice(1)}.`;
}

export class SessionPanel {
  #client;
  #list;
  #form;
  #formError;
  #count;
  #empty;
  #onOpen;
  #openMode;
  #activeId;
  #notify;
  #onList;
  #onShare;
  #identity;
  /** @type {Map<string, HTMLLIElement>} */
  #items = new Map();
  #sessions = [];
  #currentId = null;
  #pollTimer = 0;

  /**
   * @param {object} options
   * @param {import('./client.js').TerminalWebSocketClient} options.client
   * @param {HTMLElement} options.root the panel, holding #create-session and #sessions
   * @param {(session: object, mode: 'write' | 'read') => void} options.onOpen
   * @param {(sessionId: string) => ('write' | 'read' | null)} options.openMode how a session is open here, if it is
   * @param {() => (string | null)} options.activeId the session of the visible terminal
   * @param {(message: string, kind?: string) => void} options.notify
   * @param {(sessions: object[]) => void} [options.onList] each fresh list
   * @param {(session: object) => void} [options.onShare] the row's Share button
   * @param {() => (import('./auth.js').Identity | null)} [options.identity] who is signed in
   */
  constructor({ client, root, onOpen, openMode, activeId, notify, onList, onShare, identity = () => null }) {
    this.#client = client;
    this.#list = root.querySelector('#sessions');
    this.#form = root.querySelector('#create-session');
    this.#formError = root.querySelector('#create-error');
    this.#count = root.querySelector('#session-count');
    this.#empty = root.querySelector('#sessions-empty');
    this.#onOpen = onOpen;
    this.#openMode = openMode;
    this.#activeId = activeId;
    this.#notify = notify;
    this.#onList = onList;
    this.#onShare = onShare;
    this.#identity = identity;
    this.#form.addEventListener('submit', (event) => this.#onSubmit(event));
    this.#form.elements.name.addEventListener('input', () => this.#showFormError(''));
    root.querySelector('#refresh').addEventListener('click', () => this.refresh());
    this.#list.addEventListener('keydown', (event) => this.#onListKey(event));
    this.#list.addEventListener('focusin', (event) => {
      const item = event.target.closest('li');
      if (item) this.#setCurrent(item.dataset.sessionId);
    });
  }

  /** The sessions of the last successful list. */
  get sessions() {
    return this.#sessions;
  }

  /** Fetches the list now. Failures while disconnected are silent (the status pill says it). */
  async refresh() {
    this.scheduleRefresh.cancel();
    try {
      const { sessions } = await this.#client.request('session-list');
      this.#render(sessions);
      this.#onList?.(this.#sessions);
    } catch (error) {
      if (error.code !== 'disconnected') this.#notify(`Could not list sessions: ${describeError(error)}`, 'error');
    }
  }

  /** Refreshes soon, once for a burst of reasons. */
  scheduleRefresh = debounce(() => this.refresh(), EVENT_REFRESH_DELAY_MS);

  /** Polls while the connection is open. */
  startPolling() {
    clearInterval(this.#pollTimer);
    this.#pollTimer = setInterval(() => {
      if (this.#client.state === 'open') this.refresh();
    }, REFRESH_INTERVAL_MS);
  }

  /** Empties the list (signed out: the next user must not see this one's sessions). */
  clear() {
    this.scheduleRefresh.cancel();
    this.#render([]);
    this.#form.reset();
    this.#showFormError('');
  }

  /** Re-marks which sessions are open in tabs, and which one is shown. */
  markOpen() {
    for (const [sessionId, item] of this.#items) this.#markItem(item, sessionId);
  }

  /** Moves keyboard focus into the panel: the given session's row, the current row, else the name field. */
  focus(sessionId) {
    if (sessionId && this.#items.has(sessionId)) this.#setCurrent(sessionId);
    const current = this.#currentId && this.#items.get(this.#currentId);
    if (current) current.querySelector('button.open').focus();
    else this.#form.elements.name.focus();
  }

  async #onSubmit(event) {
    event.preventDefault();
    const input = this.#form.elements.name;
    const name = input.value.trim();
    if (!NAME_PATTERN.test(name)) {
      this.#showFormError(
        name ? 'Use 1–64 letters, digits, “-” or “_”.' : 'Enter a name for the new session.',
      );
      input.focus();
      return;
    }
    const submit = this.#form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      const session = await this.#client.request('session-create', { name });
      input.value = '';
      this.#showFormError('');
      this.#onOpen(session, 'write');
      this.refresh();
    } catch (error) {
      this.#showFormError(
        error.code === 'conflict' ? `A session named “${name}” already exists.` : describeError(error),
      );
      input.focus();
    } finally {
      submit.disabled = false;
    }
  }

  #showFormError(message) {
    const input = this.#form.elements.name;
    this.#formError.textContent = message;
    this.#formError.hidden = !message;
    if (message) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }

  async #destroy(session) {
    if (!window.confirm(`Destroy session “${session.name}”? Every program running in it is killed.`)) return;
    try {
      await this.#client.request('session-destroy', { sessionId: session.sessionId });
      this.#notify(`Session “${session.name}” destroyed.`);
    } catch (error) {
      this.#notify(`Could not destroy “${session.name}”: ${describeError(error)}`, 'error');
    }
    this.refresh();
  }

  #render(sessions) {
    // Only roles that may create see the form; the gateway refuses the others anyway.
    this.#form.hidden = !allows(this.#identity(), 'session.create');
    this.#sessions = [...sessions].sort((a, b) => a.createdAt - b.createdAt || a.name.localeCompare(b.name));
    const listHadFocus = this.#list.contains(document.activeElement);
    const seen = new Set();
    this.#sessions.forEach((session, index) => {
      seen.add(session.sessionId);
      const item = this.#items.get(session.sessionId) ?? this.#createItem(session);
      this.#items.set(session.sessionId, item);
      item.session = session;
      this.#fillItem(item, session);
      if (this.#list.children[index] !== item) this.#list.insertBefore(item, this.#list.children[index] ?? null);
    });
    for (const [sessionId, item] of this.#items) {
      if (seen.has(sessionId)) continue;
      item.remove();
      this.#items.delete(sessionId);
    }
    if (!this.#items.has(this.#currentId)) this.#currentId = this.#sessions[0]?.sessionId ?? null;
    this.#setCurrent(this.#currentId);
    if (listHadFocus && !this.#list.contains(document.activeElement)) this.focus();
    this.#count.textContent = String(this.#sessions.length);
    this.#empty.hidden = this.#sessions.length > 0;
  }

  #createItem(session) {
    const label = (text) => h('span', { class: 'visually-hidden' }, text);
    const item = h(
      'li',
      { class: 'session', dataset: { sessionId: session.sessionId, sessionName: session.name } },
      h(
        'button',
        { type: 'button', class: 'open', onclick: () => this.#onOpen(item.session, 'write') },
        h('span', { class: 'session-icon' }, icon('terminal')),
        h(
          'span',
          { class: 'session-text' },
          h(
            'span',
            { class: 'session-title' },
            h('span', { class: 'session-name', text: session.name }),
            h('span', { class: 'session-open-mark', hidden: true }),
            h('span', { class: 'owner', hidden: true }),
          ),
          h('span', { class: 'session-meta' }),
        ),
      ),
      h(
        'button',
        { type: 'button', class: 'open-readonly icon-button', title: 'Open read-only', onclick: () => this.#onOpen(item.session, 'read') },
        icon('eye'),
        label(`Open ${session.name} read-only`),
      ),
      h(
        'button',
        { type: 'button', class: 'share icon-button', title: 'Share', hidden: true, onclick: () => this.#onShare?.(item.session) },
        icon('users'),
        label(`Share ${session.name}`),
      ),
      h(
        'button',
        { type: 'button', class: 'destroy icon-button danger', title: 'Destroy session', onclick: () => this.#destroy(item.session) },
        icon('trash'),
        label(`Destroy ${session.name}`),
      ),
    );
    return item;
  }

  #fillItem(item, session) {
    const viewers = `${session.viewers} ${session.viewers === 1 ? 'viewer' : 'viewers'}`;
    const me = this.#identity();
    const foreign = session.owner && session.owner !== me?.user ? session.owner : null;
    const owner = item.querySelector('.owner');
    owner.hidden = !foreign;
    owner.textContent = foreign ?? '';
    owner.title = foreign ? `Owned by ${foreign}` : '';
    item.querySelector('button.share').hidden = !this.#canShare(session, me);
    item.querySelector('.session-meta').textContent = `${session.cols}×${session.rows} · ${viewers}`;
    const ownedBy = foreign ? `, owned by ${foreign}` : '';
    item.querySelector('button.open').setAttribute('aria-label', `Open ${session.name}${ownedBy}, ${session.cols} by ${session.rows}, ${viewers}`);
    this.#markItem(item, session.sessionId);
  }

  /** The gateway lists `shares` only to those who may share (owner, admins); the role backs it up. */
  #canShare(session, me) {
    if (!this.#onShare || !me?.auth) return false;
    return Array.isArray(session.shares) || session.owner === me.user || me.role === 'admin';
  }

  #markItem(item, sessionId) {
    const mode = this.#openMode(sessionId);
    const mark = item.querySelector('.session-open-mark');
    item.classList.toggle('is-open', Boolean(mode));
    item.classList.toggle('is-active', sessionId === this.#activeId());
    mark.hidden = !mode;
    mark.textContent = mode === 'read' ? 'viewing' : 'open';
  }

  #setCurrent(sessionId) {
    this.#currentId = sessionId;
    for (const [id, item] of this.#items) {
      for (const button of buttonsOf(item)) button.tabIndex = id === sessionId ? 0 : -1;
    }
  }

  #onListKey(event) {
    const item = event.target.closest('li');
    if (!item || event.target.tagName !== 'BUTTON') return;
    const rows = [...this.#list.children];
    const buttons = buttonsOf(item);
    const column = buttons.indexOf(event.target);
    const row = rows.indexOf(item);
    let next = null;
    if (event.key === 'ArrowDown') next = cell(rows[row + 1], column);
    else if (event.key === 'ArrowUp') next = cell(rows[row - 1], column);
    else if (event.key === 'Home') next = cell(rows[0], column);
    else if (event.key === 'End') next = cell(rows[rows.length - 1], column);
    else if (event.key === 'ArrowRight') next = buttons[column + 1];
    else if (event.key === 'ArrowLeft') next = buttons[column - 1];
    else return;
    event.preventDefault();
    if (next) next.focus();
  }
}

/** A row's shown buttons, in order. */
function buttonsOf(row) {
  return [...row.querySelectorAll('button:not([hidden])')];
}

/** The row's button in `column`, or its last when it has fewer. */
function cell(row, column) {
  if (!row) return null;
  const buttons = buttonsOf(row);
  return buttons[Math.min(column, buttons.length - 1)] ?? null;
}
