// Pasting into a terminal safely. With bracketed paste on (bash, zsh, vim ask for it) xterm
// wraps pasted text in ESC[200~ … ESC[201~ so the program takes it as text, not keys. It
// does not remove an ESC[201~ inside the text: a copied snippet holding one ends the
// bracket early, and whatever follows runs as typed, Enter included. So pastes are taken
// before xterm sees them and stripped of control characters first.

/** C0 controls but tab, line feed and carriage return; DEL; C1 controls (U+0080–U+009F). */
const UNSAFE_CONTROLS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g;

/** The text with every control character that could act as a key or escape removed. */
export function sanitizePaste(text) {
  return text.replace(UNSAFE_CONTROLS, '');
}

/**
 * Routes every paste into the opened terminal (keyboard, context menu, middle click)
 * through `sanitizePaste`, then `term.paste` (line endings, bracketing, disableStdin).
 * A capture listener on the terminal's element runs before xterm's own on its textarea.
 * @param {import('@xterm/xterm').Terminal} term opened (`term.element` set)
 */
export function guardPaste(term) {
  term.element.addEventListener(
    'paste',
    (event) => {
      event.preventDefault();
      event.stopImmediatePropagation();
      const text = event.clipboardData?.getData('text/plain');
      if (text) term.paste(sanitizePaste(text));
    },
    { capture: true },
  );
}
