// Who this page is signed in as, and the moves between the login page and the
// workspace: start-up (`?token=` link, else `api/me`), signing in, signing out
// (#logout), and the gateway closing the connection with 4401. The header shows
// the user and role in #whoami. A gateway without authentication (or one that does
// not serve `api/me`) goes straight to the workspace, as before sign-in existed.

import { AuthError, fetchIdentity, signIn, signOut } from './auth.js';
import { h } from './dom.js';
import { LoginPage } from './login-page.js';

/** What the login page says after each way of getting there. */
const NOTICES = {
  signedOut: 'Signed out.',
  expired: 'Session expired. Sign in again.',
  refused: 'Signed out: the gateway no longer accepts this sign-in. Sign in again.',
  badLink: 'The sign-in link was not accepted. Sign in with your user name and password.',
};

export class Account {
  /** @type {import('./auth.js').Identity | null} null: not signed in, or not known yet */
  #identity = null;
  #login;
  #badge;
  #whoami;
  #onEnter;
  #onLeave;

  /**
   * @param {object} options
   * @param {HTMLElement} options.loginRoot #login-page
   * @param {HTMLElement} options.badge #account in the header, holding #whoami and #logout
   * @param {(identity: import('./auth.js').Identity) => void} options.onEnter show the workspace and connect
   * @param {() => void} options.onLeave close the connection, drop the terminals, hide the workspace
   */
  constructor({ loginRoot, badge, onEnter, onLeave }) {
    this.#login = new LoginPage({ root: loginRoot, onSignedIn: (identity) => this.#enter(identity) });
    this.#badge = badge;
    this.#whoami = badge.querySelector('#whoami');
    this.#onEnter = onEnter;
    this.#onLeave = onLeave;
    badge.querySelector('#logout').addEventListener('click', () => this.logout());
  }

  /**
   * The current identity: `{auth: false}` without authentication (`unknown: true` when
   * `api/me` could not tell), null while signed out.
   */
  get identity() {
    return this.#identity;
  }

  /**
   * Decides what the page shows first.
   * @param {string | null} urlToken a `?token=` the page was opened with, already taken off
   *   the address bar (`takeUrlToken`, the first thing the page does)
   */
  async start(urlToken) {
    let identity = null;
    let linkError = null;
    if (urlToken) {
      try {
        identity = await signIn({ token: urlToken });
      } catch (error) {
        linkError = error; // the cookie may still sign in, or the gateway may not authenticate
      }
    }
    identity ??= await this.#fetchIdentity();
    if (identity) this.#enter(identity);
    else if (linkError) this.#leave({ notice: NOTICES.badLink, error: linkError.status === 0 ? linkError.message : '' });
    else this.#leave({});
  }

  /** Signs out: the connection closes first (no 4401 race), then the gateway revokes the token. */
  async logout() {
    this.#leave({ notice: NOTICES.signedOut });
    try {
      await signOut();
    } catch (error) {
      this.#login.show({ notice: NOTICES.signedOut, error: `Signing out at the gateway failed: ${error.message}` });
    }
  }

  /**
   * The gateway closed the connection with 4401; `reason` is the close reason (`token
   * expired`, `token revoked`, `user removed or changed`). Returns false when the page does
   * not authenticate (the caller tells the user as before), true when the login page took over.
   */
  unauthorized(reason = '') {
    if (this.#identity?.auth === false && !this.#identity.unknown) return false;
    const expiresAt = this.#identity?.expiresAt;
    const expired = /expired/i.test(reason) || (expiresAt && expiresAt <= Date.now());
    this.#leave({ notice: expired ? NOTICES.expired : NOTICES.refused });
    return true;
  }

  /**
   * `api/me`; when it cannot tell (no answer, a server error) the page connects as before
   * sign-in existed, and a 4401 brings the login page.
   * @returns {Promise<import('./auth.js').Identity | null>}
   */
  async #fetchIdentity() {
    try {
      return await fetchIdentity();
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      return { auth: false, unknown: true };
    }
  }

  #enter(identity) {
    this.#identity = identity;
    this.#login.hide();
    this.#badge.hidden = !identity.auth;
    if (identity.auth) this.#showWhoami(identity);
    this.#onEnter(identity);
  }

  #leave({ notice = '', error = '' }) {
    const wasIn = this.#identity !== null;
    this.#identity = null;
    this.#badge.hidden = true;
    this.#whoami.replaceChildren();
    if (wasIn) this.#onLeave();
    this.#login.show({ notice, error });
  }

  #showWhoami({ user, role }) {
    this.#whoami.replaceChildren(h('span', { class: 'whoami-user', text: user }), ' ', h('span', { class: 'whoami-role', text: role }));
    this.#whoami.title = `Signed in as ${user} (${role})`;
  }
}
