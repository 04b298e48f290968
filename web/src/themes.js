// Terminal colour themes for the light and dark colour schemes, following the
// system's `prefers-color-scheme` (the page's own colours follow it in CSS).

const dark = {
  background: '#0d1016',
  foreground: '#d6dae3',
  cursor: '#8fb4ff',
  cursorAccent: '#0d1016',
  selectionBackground: '#3a4a6b',
  selectionInactiveBackground: '#2a3244',
  scrollbarSliderBackground: 'rgba(214, 218, 227, 0.14)',
  scrollbarSliderHoverBackground: 'rgba(214, 218, 227, 0.24)',
  scrollbarSliderActiveBackground: 'rgba(214, 218, 227, 0.32)',
  black: '#1b1f28',
  red: '#f0717a',
  green: '#8ccf7e',
  yellow: '#e5c76b',
  blue: '#6cb0f5',
  magenta: '#c49af0',
  cyan: '#6cd0d0',
  white: '#c4c9d4',
  brightBlack: '#596173',
  brightRed: '#ff8a92',
  brightGreen: '#a6e295',
  brightYellow: '#f2d88a',
  brightBlue: '#8fc3ff',
  brightMagenta: '#d7b4ff',
  brightCyan: '#8de2e2',
  brightWhite: '#f2f4f8',
};

const light = {
  background: '#fbfbfd',
  foreground: '#24292f',
  cursor: '#2f6feb',
  cursorAccent: '#fbfbfd',
  selectionBackground: '#b8d3ff',
  selectionInactiveBackground: '#dbe4f3',
  scrollbarSliderBackground: 'rgba(36, 41, 47, 0.14)',
  scrollbarSliderHoverBackground: 'rgba(36, 41, 47, 0.24)',
  scrollbarSliderActiveBackground: 'rgba(36, 41, 47, 0.32)',
  black: '#24292f',
  red: '#c9303c',
  green: '#1f7f3a',
  yellow: '#8a6300',
  blue: '#1f5fc9',
  magenta: '#8440c2',
  cyan: '#157a86',
  white: '#6e7781',
  brightBlack: '#57606a',
  brightRed: '#e0424f',
  brightGreen: '#2a9a4a',
  brightYellow: '#a67a00',
  brightBlue: '#3b7ae6',
  brightMagenta: '#a05ad9',
  brightCyan: '#1b95a3',
  brightWhite: '#8c959f',
};

const darkQuery = typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : null;

/** The terminal theme for the current colour scheme. */
export function terminalTheme() {
  return darkQuery && !darkQuery.matches ? light : dark;
}

/**
 * Calls `listener(theme)` whenever the colour scheme changes.
 * @returns {() => void} stops listening
 */
export function onThemeChange(listener) {
  const onChange = () => listener(terminalTheme());
  darkQuery?.addEventListener('change', onChange);
  return () => darkQuery?.removeEventListener('change', onChange);
}
