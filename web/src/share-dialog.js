// The share dialog (`dialog#share-dialog`): who else may see one session, and how.
// Its form shares the session with a user, `read` or `write` (`session-share`;
// sharing again changes the mode), and each current share (`li[data-user]`) has a
// `button.unshare` (`session-unshare`). Only the owner and admins see a session's
// shares, so only they get here (the list's `button.share`).

import { h } from './dom.js';
import { icon } from './icons.js';
import { describeError } from './session-panel.js';

const MODE_LABELS = { read: 'can view', write: 'can view and type' };

export class ShareDialog {
  #dialog;
  #form;
  #list;
  #empty;
  #error;
  #client;
  #notify;
  #onChange;
  /** The session shown, as the last list gave it (with `shares`). */
  #session = null;

  /**
   * @param {object} options
   * @param {HTMLDialogElement} options.dialog #share-dialog
   * @param {import('./client.js').TerminalWebSocketClient} options.client
   * @param {(message: string, kind?: string) => void} options.notify
   * @param {() => void} options.onChange a share was made or taken back (the list is stale)
   */
  constructor({ dialog, client, notify, onChange }) {
    this.#dialog = dialog;
    this.#form = dialog.querySelector('form');
    this.#list = dialog.querySelector('.shares');
    this.#empty = dialog.querySelector('.shares-empty');
    this.#error = dialog.querySelector('.share-error');
    this.#client = client;
    this.#notify = notify;
    this.#onChange = onChange;
    this.#form.addEventListener('submit', (event) => this.#onSubmit(event));
    this.#form.elements.user.addEventListener('input', () => this.#showError(''));
    dialog.querySelector('.share-close').addEventListener('click', () => this.close());
    dialog.addEventListener('close', () => (this.#session = null));
  }

  /** Opens the dialog for `session` (a session-list entry). */
  open(session) {
    this.#session = { ...session, shares: [...(session.shares ?? [])] };
    this.#form.reset();
    this.#showError('');
    this.#render();
    if (!this.#dialog.open) this.#dialog.showModal();
    this.#form.elements.user.focus();
  }

  close() {
    if (this.#dialog.open) this.#dialog.close();
  }

  /** Takes a fresh session list: the open dialog follows its session, or closes when it is gone. */
  sync(sessions) {
    if (!this.#session) return;
    const fresh = sessions.find((session) => session.sessionId === this.#session.sessionId);
    if (!fresh) {
      this.close();
      return;
    }
    this.#session = { ...fresh, shares: [...(fresh.shares ?? [])] };
    this.#render();
  }

  async #onSubmit(event) {
    event.preventDefault();
    const session = this.#session;
    const input = this.#form.elements.user;
    const user = input.value.trim();
    const mode = this.#form.elements.mode.value;
    if (!session) return;
    if (!user) {
      this.#showError('Enter the user name to share with.');
      input.focus();
      return;
    }
    const submit = this.#form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      const answer = await this.#client.request('session-share', { sessionId: session.sessionId, user, mode });
      this.#setShare(session, user, mode);
      input.value = '';
      const was = answer?.previous && answer.previous !== mode ? ` (was: ${MODE_LABELS[answer.previous] ?? answer.previous})` : '';
      this.#notify(`“${session.name}” shared with ${user}: ${MODE_LABELS[mode]}${was}.`);
      this.#onChange();
    } catch (error) {
      this.#failed(`Could not share “${session.name}” with ${user}`, error);
    } finally {
      submit.disabled = false;
      input.focus();
    }
  }

  async #unshare(user) {
    const session = this.#session;
    if (!session) return;
    try {
      await this.#client.request('session-unshare', { sessionId: session.sessionId, user });
      this.#setShare(session, user, null);
      this.#notify(`${user} no longer has access to “${session.name}”.`);
      this.#onChange();
    } catch (error) {
      this.#failed(`Could not take “${session.name}” back from ${user}`, error);
    }
  }

  /** Records a share (`mode` null: taken back) in the shown session, ahead of the next list. */
  #setShare(session, user, mode) {
    if (session !== this.#session) return;
    const others = session.shares.filter((share) => share.user !== user);
    session.shares = mode ? [...others, { user, mode }] : others;
    this.#render();
  }

  #failed(what, error) {
    const message = `${what}: ${describeError(error)}`;
    this.#showError(message);
    this.#notify(message, 'error');
  }

  #render() {
    const session = this.#session;
    if (!session) return;
    this.#dialog.querySelector('.share-session').textContent = `“${session.name}”`;
    const shares = [...session.shares].sort((a, b) => a.user.localeCompare(b.user));
    this.#list.replaceChildren(...shares.map((share) => this.#renderShare(share)));
    this.#empty.hidden = shares.length > 0;
  }

  #renderShare({ user, mode }) {
    return h(
      'li',
      { class: 'share', dataset: { user, mode } },
      h('span', { class: 'share-user', text: user }),
      h('span', { class: `share-mode share-mode-${mode}`, text: MODE_LABELS[mode] ?? mode }),
      h(
        'button',
        { type: 'button', class: 'unshare icon-button danger', title: `Stop sharing with ${user}`, onclick: () => this.#unshare(user) },
        icon('close'),
        h('span', { class: 'visually-hidden' }, `Stop sharing with ${user}`),
      ),
    );
  }

  #showError(message) {
    this.#error.textContent = message;
    this.#error.hidden = !message;
  }
}
