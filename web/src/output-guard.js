// What a pane prints is the pane's program talking to its terminal, and that terminal is
// tmux: tmux answers the program's queries (device attributes, status and cursor reports,
// modes, settings) itself. The browser's xterm.js sees the same bytes, and an answer of its
// own would reach the pane as typed input, after the program had its answer, and land on
// the shell's command line: a DECRQSS answer starts with ESC P, which puts bash's readline
// in a history search that swallows the user's next line. So the browser's terminal
// answers no query. Title reports need `windowOptions`, which stay off.
//
// And a few bytes must not cost the page more than the screen they draw: REP (CSI Ps b)
// repeats the preceding character Ps times, and xterm.js 6 does all of them, so
// `R ESC[999999999b` (13 bytes) blocks the tab for most of a minute. tmux repeats to the
// end of the row at most; a REP longer than a row is dropped here (the screen is right
// again at the next snapshot or redraw), a shorter one is drawn as usual.

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

/**
 * Makes `term` answer no query in its output and bounds REP to one row.
 * @param {import('@xterm/xterm').Terminal} term
 */
export function guardOutput(term) {
  const { parser } = term;
  const swallow = () => true;
  for (const id of CSI_QUERIES) parser.registerCsiHandler(id, swallow);
  for (const id of DCS_QUERIES) parser.registerDcsHandler(id, swallow);
  // Setting a colour is drawn as usual; a sequence asking for one is dropped whole.
  for (const ident of OSC_COLOUR_QUERIES) parser.registerOscHandler(ident, (data) => data.includes('?'));
  parser.registerCsiHandler({ final: 'b' }, (params) => repeatCount(params) > term.cols);
}

/** REP's count: its first parameter, 1 when missing or 0. */
export function repeatCount(params) {
  const first = Array.isArray(params[0]) ? params[0][0] : params[0];
  return Number(first) || 1;
}
