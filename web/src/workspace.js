// The open terminals: one tab (role=tab in #tabs) and one TerminalView panel per
// session, one of them active. Keyboard: arrows move between tabs (and show
// them), Enter/Space/click go into the terminal, Delete closes a tab.

import { h } from './dom.js';
import { icon } from './icons.js';
import { TerminalView } from './terminal-view.js';

export class Workspace {
  #client;
  #tabList;
  #viewContainer;
  #welcome;
  #onChange;
  #onLeave;
  /** @type {Map<TerminalView, HTMLElement>} view → its tab, in tab order */
  #tabs = new Map();
  /** @type {TerminalView | null} */
  #active = null;

  /**
   * @param {object} options
   * @param {import('./client.js').TerminalWebSocketClient} options.client
   * @param {HTMLElement} options.tabList the #tabs tablist
   * @param {HTMLElement} options.viewContainer where panels go
   * @param {HTMLElement} options.welcome shown while no terminal is open
   * @param {() => void} options.onChange a terminal opened, closed or changed state
   * @param {() => void} options.onLeave the user asked to leave the terminal for the panel
   */
  constructor({ client, tabList, viewContainer, welcome, onChange, onLeave }) {
    this.#client = client;
    this.#tabList = tabList;
    this.#viewContainer = viewContainer;
    this.#welcome = welcome;
    this.#onChange = onChange;
    this.#onLeave = onLeave;
    tabList.addEventListener('keydown', (event) => this.#onTabKey(event));
  }

  /** The open terminals in tab order. */
  get views() {
    return [...this.#tabs.keys()];
  }

  get active() {
    return this.#active;
  }

  /** @returns {TerminalView | undefined} */
  find(sessionId) {
    return this.views.find((view) => view.sessionId === sessionId);
  }

  /**
   * Shows the session's terminal, opening a tab for it when there is none. A tab open
   * in the other mode switches to the mode asked for; one whose session ended here
   * attaches again.
   * @param {{sessionId: string, name: string}} session
   * @param {'write' | 'read'} mode
   */
  open(session, mode) {
    const existing = this.find(session.sessionId);
    if (existing) {
      this.activate(existing, { focus: true });
      if (existing.mode !== mode || existing.ended) existing.setMode(mode);
      return existing;
    }
    const view = new TerminalView({
      client: this.#client,
      session,
      mode,
      onChange: (changed) => this.#viewChanged(changed),
      onCloseRequest: (closing) => this.close(closing),
      onLeave: this.#onLeave,
    });
    const tab = this.#renderTab(view);
    this.#tabs.set(view, tab);
    this.#tabList.append(tab);
    this.#viewContainer.append(view.element);
    this.activate(view);
    view.open();
    view.focus();
    this.#viewChanged(view);
    return view;
  }

  /** Whether a terminal is attached or on its way to be (closing the page would end it). */
  get hasLiveTerminals() {
    return this.views.some((view) => !view.ended);
  }

  /** Makes `view` the visible terminal. */
  activate(view, { focus = false } = {}) {
    if (this.#active && this.#active !== view) this.#active.hide();
    this.#active = view;
    for (const [each, tab] of this.#tabs) {
      const selected = each === view;
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
    }
    this.#tabs.get(view)?.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    view.show({ focus });
    this.#onChange();
  }

  /** Closes a tab: detaches its terminal and shows a neighbour. */
  close(view) {
    const order = this.views;
    const index = order.indexOf(view);
    if (index < 0) return;
    this.#tabs.get(view).remove();
    this.#tabs.delete(view);
    view.dispose();
    if (this.#active === view) {
      this.#active = null;
      const next = order[index + 1] ?? order[index - 1];
      if (next) this.activate(next, { focus: true });
    }
    this.#viewChanged(null);
  }

  /** Closes every tab (signing out: the next user must not see this one's terminals). */
  closeAll() {
    for (const [view, tab] of this.#tabs) {
      tab.remove();
      view.dispose();
    }
    this.#tabs.clear();
    this.#active = null;
    this.#viewChanged(null);
  }

  #viewChanged(view) {
    const tab = view && this.#tabs.get(view);
    if (tab) {
      tab.dataset.state = view.state;
      tab.dataset.mode = view.mode;
      tab.querySelector('.tab-readonly').hidden = view.mode !== 'read';
      tab.title = `${view.name}${view.mode === 'read' ? ' (read-only)' : ''}`;
    }
    this.#welcome.hidden = this.#tabs.size > 0;
    this.#onChange();
  }

  #renderTab(view) {
    const close = h('span', { class: 'tab-close', 'aria-hidden': 'true', title: 'Close tab (Delete)' }, icon('close'));
    const tab = h(
      'button',
      {
        type: 'button',
        role: 'tab',
        class: 'tab',
        id: `tab-${view.id}`,
        'aria-selected': 'false',
        'aria-controls': `view-${view.id}`,
        'aria-keyshortcuts': 'Delete',
        tabindex: '-1',
        dataset: { sessionId: view.sessionId, state: view.state, mode: view.mode },
      },
      h('span', { class: 'tab-dot', 'aria-hidden': 'true' }),
      h('span', { class: 'tab-name', text: view.name }),
      h('span', { class: 'tab-readonly', title: 'Read-only', hidden: true }, icon('lock'), h('span', { class: 'visually-hidden' }, ' (read-only)')),
      close,
    );
    tab.addEventListener('click', (event) => {
      if (close.contains(event.target)) this.close(view);
      else this.activate(view, { focus: true });
    });
    tab.addEventListener('auxclick', (event) => {
      if (event.button === 1) this.close(view);
    });
    return tab;
  }

  #onTabKey(event) {
    const order = this.views;
    const index = order.findIndex((view) => this.#tabs.get(view) === event.target);
    if (index < 0) return;
    const targets = {
      ArrowLeft: order[(index - 1 + order.length) % order.length],
      ArrowRight: order[(index + 1) % order.length],
      Home: order[0],
      End: order[order.length - 1],
    };
    if (event.key in targets) {
      event.preventDefault();
      const view = targets[event.key];
      this.activate(view);
      this.#tabs.get(view).focus();
    } else if (event.key === 'Delete') {
      event.preventDefault();
      this.close(order[index]);
      if (this.#active) this.#tabs.get(this.#active).focus();
    }
  }
}
