// Keyboard rules between the terminal and the browser: clipboard shortcuts go to
// the browser, everything else (Ctrl, Alt/Option as Meta) goes to the terminal,
// and one shortcut leaves the terminal, which otherwise keeps Tab for itself.

const isMac = /Mac|iPhone|iPad/.test(globalThis.navigator?.userAgentData?.platform ?? globalThis.navigator?.platform ?? '');

/** The shortcut that moves focus from a terminal to the sessions panel. */
export const LEAVE_SHORTCUT = 'Ctrl+Shift+L';

/**
 * Installs the key rules on an xterm Terminal.
 * - Ctrl+Shift+C copies the selection, Ctrl+Shift+V pastes (Cmd+C / Cmd+V on a Mac);
 *   a paste reaches the program through `guardPaste` (paste.js) and xterm, bracketed when
 *   the program asked for it.
 * - Ctrl+Shift+L calls `onLeave`.
 * @param {import('@xterm/xterm').Terminal} term
 * @param {{onLeave?: () => void}} handlers
 */
export function bindClipboardKeys(term, { onLeave }) {
  term.attachCustomKeyEventHandler((event) => {
    const key = event.key.toLowerCase();
    const ctrlShift = event.ctrlKey && event.shiftKey && !event.altKey && !event.metaKey;
    const command = isMac && event.metaKey && !event.ctrlKey && !event.altKey;
    if ((ctrlShift || command) && (key === 'c' || key === 'v')) {
      // Cmd+C and either paste are the browser's own copy/paste; Ctrl+Shift+C is not
      // (Chromium opens its inspector), so copy here.
      if (ctrlShift && key === 'c' && event.type === 'keydown') {
        event.preventDefault();
        copySelection(term);
      }
      return false;
    }
    if (ctrlShift && key === 'l') {
      if (event.type === 'keydown') {
        event.preventDefault();
        onLeave?.();
      }
      return false;
    }
    return true;
  });
}

/**
 * Copies the selection. Runs inside the key handler, so the user's gesture still allows
 * the synchronous `execCommand` fallback (outside a secure context there is no
 * `navigator.clipboard`; the copy event reaches xterm, which fills it with the selection).
 */
function copySelection(term) {
  if (!term.hasSelection()) return;
  if (navigator.clipboard?.writeText) {
    // A refusal is final: by the time it arrives the key's user gesture is over, and
    // execCommand outside one is refused too.
    navigator.clipboard.writeText(term.getSelection()).catch(() => {});
  } else {
    document.execCommand('copy');
  }
}
