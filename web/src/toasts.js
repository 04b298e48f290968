// Short-lived notices in the corner (#toasts, a polite live region).

import { h } from './dom.js';

const TOAST_MS = 5_000;

/** @returns {(message: string, kind?: 'info' | 'error') => void} */
export function createNotifier(container) {
  return (message, kind = 'info') => {
    const toast = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : null }, message);
    container.append(toast);
    setTimeout(() => toast.remove(), TOAST_MS);
  };
}
