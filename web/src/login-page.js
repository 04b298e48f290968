// The sign-in page (#login-page): `form#login` with a user name and a password, a
// notice saying why it shows (#login-notice: signed out, session expired) and the
// error of the last attempt (#login-error). The password field is emptied after
// every attempt; nothing typed here is kept anywhere else.

import { signIn } from './auth.js';

export class LoginPage {
  #root;
  #form;
  #notice;
  #error;
  #onSignedIn;

  /**
   * @param {object} options
   * @param {HTMLElement} options.root #login-page, holding form#login, #login-notice and #login-error
   * @param {(identity: import('./auth.js').Identity) => void} options.onSignedIn a sign-in succeeded
   */
  constructor({ root, onSignedIn }) {
    this.#root = root;
    this.#form = root.querySelector('form#login');
    this.#notice = root.querySelector('#login-notice');
    this.#error = root.querySelector('#login-error');
    this.#onSignedIn = onSignedIn;
    this.#form.addEventListener('submit', (event) => this.#onSubmit(event));
    for (const input of [this.#fields.username, this.#fields.password]) {
      input.addEventListener('input', () => this.#showError(''));
    }
  }

  get visible() {
    return !this.#root.hidden;
  }

  /**
   * Shows the page with a notice (why it shows) and an error (what went wrong), both optional,
   * and puts the focus where typing should start.
   */
  show({ notice = '', error = '' } = {}) {
    this.#root.hidden = false;
    this.#notice.textContent = notice;
    this.#notice.hidden = !notice;
    this.#showError(error);
    this.#fields.password.value = '';
    document.title = 'Sign in · tmuxgate';
    (this.#fields.username.value ? this.#fields.password : this.#fields.username).focus();
  }

  hide() {
    this.#root.hidden = true;
    this.#fields.password.value = '';
    this.#showError('');
  }

  get #fields() {
    return this.#form.elements;
  }

  async #onSubmit(event) {
    event.preventDefault();
    const { username, password } = this.#fields;
    const name = username.value.trim();
    if (!name || !password.value) {
      this.#showError(name ? 'Enter your password.' : 'Enter your user name.');
      (name ? password : username).focus();
      return;
    }
    const submit = this.#form.querySelector('button[type="submit"]');
    submit.disabled = true;
    this.#form.setAttribute('aria-busy', 'true');
    let identity = null;
    try {
      identity = await signIn({ username: name, password: password.value });
    } catch (error) {
      this.#showError(error.message);
    } finally {
      password.value = '';
      submit.disabled = false;
      this.#form.removeAttribute('aria-busy');
    }
    if (identity) this.#onSignedIn(identity);
    else password.focus();
  }

  #showError(message) {
    this.#error.textContent = message;
    this.#error.hidden = !message;
    const { password } = this.#fields;
    if (message) password.setAttribute('aria-invalid', 'true');
    else password.removeAttribute('aria-invalid');
  }
}
