// Building DOM elements from code without innerHTML for anything that holds data.

/**
 * Creates an element. `props`: `class`, `dataset` (object), `on*` listeners, `text`,
 * other keys as attributes (`true` = present, `false`/null/undefined = absent).
 * Children may be nodes or strings (set as text, never parsed).
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {...(Node | string | null | false)} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') element.className = value;
    else if (key === 'dataset') Object.assign(element.dataset, value);
    else if (key === 'text') element.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== false && child !== undefined) element.append(child);
  }
  return element;
}

/** Calls `fn` once `delayMs` after the last of a burst of calls. */
export function debounce(fn, delayMs) {
  let timer = 0;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), delayMs);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}
