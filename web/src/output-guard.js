// What a pane prints is the pane's program talking to its terminal, and that terminal is
// tmux: tmux answers the program's queries (device attributes, status and cursor reports,
// modes, settings) itself. The browser's xterm.js sees the same bytes, and an answer of its
// own would reach the pane as typed input, after the program had its answer, and land on
// the shell's command line: a DECRQSS answer starts with ESC P, which puts bash's readline
// in a history search that swallows the user's next line. So the browser's terminal
// answers no query. Title reports need `windowOptions`, which stay off.
//
// And a few bytes must not cost the page more than the screen they draw. xterm.js 6 runs
// a loop as many times as some sequences' count says, up to 2^31 - 1: REP (repeat the
// preceding character) `R ESC[999999999b`, 13 bytes, blocks the tab for most of a minute;
// IL, DL, SU and SD (insert, delete or scroll lines) make a blank line per step, CHT and
// CBT move a tab stop per step. Past a screen (lines) or a row (characters, tab stops)
// more steps change nothing in tmux, which bounds them; such a sequence is dropped here
// (the browser's screen is right again at the next redraw or snapshot), a shorter one is
// drawn as usual.
//
// Focus reports are tmux's to send too: once a program turns them on (CSI ? 1004 h),
// xterm.js would type ESC [ I and ESC [ O into the pane whenever the page gains or loses
// focus. The mode is not turned on here, and should a sequence setting several modes at
// once turn it on, `isFocusReport` tells the view to drop the reports.

/** CSI queries xterm.js would answer. */
const CSI_QUERIES = [
  { final: 'c' }, // DA1: primary device attributes
  { prefix: '>', final: 'c' }, // DA2: secondary device attributes
  { prefix: '=', final: 'c' }, // DA3: tertiary device attributes
  { final: 'n' }, // DSR: status, cursor position
  { prefix: '?', final: 'n' }, // DECDSR
  { intermediates: '$', final: 'p' }, // DECRQM: ANSI modes
  { prefix: '?', intermediates: '$', final: 'p' }, // DECRQM: DEC private modes
  { prefix: '>', final: 'q' }, // XTVERSION
];

/** DCS queries: DECRQSS (a setting), XTGETTCAP (a terminfo capability). */
const DCS_QUERIES = [
  { intermediates: '$', final: 'q' },
  { intermediates: '+', final: 'q' },
];

/** OSC colour numbers whose `?` asks for a colour report: palette, foreground, background, cursor. */
const OSC_COLOUR_QUERIES = [4, 10, 11, 12];

/** DEC private mode 1004: focus reports. */
const FOCUS_MODE = 1004;
/** Counted in characters or tab stops: REP, CHT (forward tabs), CBT (backward tabs). */
const ROW_BOUNDED = ['b', 'I', 'Z'];
/** Counted in lines: IL, DL (insert, delete lines), SU, SD (scroll up, down). */
const SCREEN_BOUNDED = ['L', 'M', 'S', 'T'];

/**
 * Makes `term` answer no query in its output and drops counts past a row or a screen.
 * @param {import('@xterm/xterm').Terminal} term
 */
export function guardOutput(term) {
  const { parser } = term;
  const swallow = () => true;
  for (const id of CSI_QUERIES) parser.registerCsiHandler(id, swallow);
  for (const id of DCS_QUERIES) parser.registerDcsHandler(id, swallow);
  // Setting a colour is drawn as usual; a sequence asking for one is dropped whole.
  for (const ident of OSC_COLOUR_QUERIES) parser.registerOscHandler(ident, (data) => data.includes('?'));
  parser.registerCsiHandler({ prefix: '?', final: 'h' }, (params) => params.length === 1 && params[0] === FOCUS_MODE);
  for (const final of ROW_BOUNDED) parser.registerCsiHandler({ final }, (params) => repeatCount(params) > term.cols);
  for (const final of SCREEN_BOUNDED) parser.registerCsiHandler({ final }, (params) => repeatCount(params) > term.rows);
}

/** What xterm.js emits when the page gains or loses focus with focus reporting on. */
export function isFocusReport(data) {
  return data === '\x1b[I' || data === '\x1b[O';
}

/** A count: the first parameter, 1 when missing or 0. */
export function repeatCount(params) {
  const first = Array.isArray(params[0]) ? params[0][0] : params[0];
  return Number(first) || 1;
}
