//! Snapshots for late joiners: a pane's screen, cursor and modes, replayed as terminal bytes.
//!
//! Taken exactly as ../shared/notes/tmux-control-mode.md prescribes: one command line that
//! reads the cursor state (`display -p`, numbers only) and captures the screen into named
//! buffers saved to private files — pane text never travels through the control stream,
//! where it could forge protocol lines. The line's reply position marks the exact pane-log
//! offset the capture reflects, so snapshot + later log = the live screen.

use crate::backends::captures::Captures;

use tmux_control::{Command, CommandLine, ControlClient, PaneId};

use super::log::PaneLog;

/// The cursor and mode state of a pane, from `display -p`.
const STATE_FORMAT: &str = "#{cursor_x},#{cursor_y},#{cursor_flag},#{alternate_on},\
#{alternate_saved_x},#{alternate_saved_y},#{pane_width},#{pane_height},#{history_size},\
#{keypad_cursor_flag},#{keypad_flag},#{scroll_region_upper},#{scroll_region_lower},\
#{mouse_standard_flag},#{mouse_button_flag},#{mouse_any_flag},#{mouse_sgr_flag}";

/// A pane's state as `display -p` reported it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PaneState {
    pub cursor_x: u16,
    pub cursor_y: u16,
    pub cursor_visible: bool,
    pub alternate_on: bool,
    pub saved_x: u16,
    pub saved_y: u16,
    pub cols: u16,
    pub rows: u16,
    pub history_size: u32,
    pub keypad_cursor: bool,
    pub keypad: bool,
    pub scroll_upper: u16,
    pub scroll_lower: u16,
    pub mouse: [bool; 4],
}

impl PaneState {
    /// Parses the comma-separated numbers of [`STATE_FORMAT`]; `None` if anything is off.
    pub fn parse(line: &[u8]) -> Option<PaneState> {
        let text = std::str::from_utf8(line).ok()?;
        let n: Vec<u32> = text
            .trim()
            .split(',')
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let [
            cx,
            cy,
            cv,
            alt,
            sx,
            sy,
            w,
            h,
            hist,
            kc,
            kp,
            su,
            sl,
            m0,
            m1,
            m2,
            m3,
        ] = n[..]
        else {
            return None;
        };
        let small = |v: u32| u16::try_from(v).ok();
        Some(PaneState {
            cursor_x: small(cx)?,
            cursor_y: small(cy)?,
            cursor_visible: cv != 0,
            alternate_on: alt != 0,
            // UINT_MAX when the alternate screen is off.
            saved_x: small(sx).unwrap_or(0),
            saved_y: small(sy).unwrap_or(0),
            cols: small(w)?,
            rows: small(h)?,
            history_size: hist,
            keypad_cursor: kc != 0,
            keypad: kp != 0,
            scroll_upper: small(su)?,
            scroll_lower: small(sl)?,
            mouse: [m0 != 0, m1 != 0, m2 != 0, m3 != 0],
        })
    }
}

/// A snapshot ready to send.
pub struct Snapshot {
    /// Terminal bytes that reproduce the screen on a freshly reset terminal.
    pub bytes: Vec<u8>,
    /// The pane-log offset this snapshot reflects.
    pub offset: u64,
    /// Pane size at that point.
    pub state: PaneState,
    /// The caller's epoch marker, read at the same point in the control stream.
    pub epoch: u64,
}

/// Why a snapshot failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// tmux refused or the connection ended.
    #[error("tmux: {0}")]
    Tmux(#[from] tmux_control::Error),
    /// A command could not be built.
    #[error("building a command: {0}")]
    Build(#[from] tmux_control::command::CommandError),
    /// The state line could not be parsed.
    #[error("unexpected pane state reply")]
    BadState,
    /// A capture file could not be read.
    #[error("reading capture: {0}")]
    Io(#[from] std::io::Error),
    /// The capture this request waited for (another joiner's) failed.
    #[error("the shared capture failed")]
    Shared,
}

/// A pane's last snapshot, shared by viewers joining while it is current (see
/// `Hub::snapshot`), and when the last capture failed.
#[derive(Default)]
pub struct SnapshotCache {
    /// The last snapshot taken.
    pub snap: Option<std::sync::Arc<Snapshot>>,
    /// When the last capture failed: joiners that were waiting for it fail too, rather
    /// than each retrying, one tmux timeout after another.
    pub failed_at: Option<tokio::time::Instant>,
}

/// Takes a snapshot of `pane`, marking the exact `log` offset it reflects and the value of
/// `epoch` at that point.
pub async fn take(
    client: &ControlClient,
    pane: PaneId,
    log: std::sync::Arc<PaneLog>,
    epoch: impl FnOnce() -> u64 + Send + 'static,
    captures: &Captures,
    history_lines: u32,
) -> Result<Snapshot, SnapshotError> {
    // Every hub's captures share one directory and one name space per tmux server, which
    // other gateways may share too: names carry this process's tag and a sequence number.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = Seq(SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let captured = client
        .command_with(capture_line(pane, history_lines, seq)?, move || {
            (log.end(), epoch())
        })
        .await;
    let state = match &captured {
        Ok((reply, _)) => reply
            .blocks
            .first()
            .and_then(|b| b.lines.first())
            .and_then(|l| PaneState::parse(l)),
        Err(_) => None,
    };
    let (Ok((offset, epoch)), Some(state)) = (captured.as_ref().map(|(_, mark)| *mark), state)
    else {
        discard_buffers(client, seq).await;
        return Err(captured
            .err()
            .map_or(SnapshotError::BadState, SnapshotError::Tmux));
    };
    // The saved normal screen exists only while the alternate screen is on.
    let parts: &[&str] = if state.alternate_on {
        &["h", "v", "n"]
    } else {
        &["h", "v"]
    };
    let files: Vec<String> = parts.iter().map(|part| buffer(seq, part)).collect();
    let mut saves: Option<CommandLine> = None;
    for (part, file) in parts.iter().zip(&files) {
        let save = Command::new("save-buffer")
            .flag_value("-b", buffer(seq, part))
            .arg_quoted(&captures.path(file))?;
        let delete = Command::new("delete-buffer").flag_value("-b", buffer(seq, part));
        saves = Some(match saves {
            None => CommandLine::from(save).then(delete),
            Some(line) => line.then(save).then(delete),
        });
    }
    let saved = match saves {
        Some(saves) => client.command(saves).await.map(drop),
        None => Ok(()),
    };
    // Read (and remove) every file before looking at errors, so nothing is left behind.
    let read = captures.take(&files).await;
    if let Err(e) = saved {
        discard_buffers(client, seq).await;
        return Err(e.into());
    }
    let mut read = read?.into_iter();
    let (history, visible, normal) = (
        read.next().flatten(),
        read.next().flatten(),
        read.next().flatten(),
    );
    let history = history.filter(|_| state.history_size > 0);
    let bytes = compose(
        &state,
        history.as_deref(),
        normal.as_deref(),
        visible.as_deref().unwrap_or(b""),
    );
    Ok(Snapshot {
        bytes,
        offset,
        state,
        epoch,
    })
}

/// Deletes whatever capture buffers a failed snapshot left in the tmux server (one command
/// per line: deleting a buffer that does not exist fails and would stop the rest).
async fn discard_buffers(client: &ControlClient, seq: Seq) {
    for part in ["h", "v", "n"] {
        let _ = client
            .command(Command::new("delete-buffer").flag_value("-b", buffer(seq, part)))
            .await;
    }
}

/// A capture's sequence number in this process.
#[derive(Clone, Copy)]
struct Seq(u64);

/// The name of a capture buffer, and of the file it is saved to.
fn buffer(seq: Seq, part: &str) -> String {
    static TAG: std::sync::LazyLock<u32> = std::sync::LazyLock::new(rand::random);
    format!("tmuxgate-snap-{:08x}-{}-{part}", *TAG, seq.0)
}

/// One line that cannot fail halfway: the state and three captures into named buffers,
/// all at the same point of the pane's output. The capture of the saved normal screen
/// (`-a -q`) only creates its buffer while the alternate screen is on.
fn capture_line(
    pane: PaneId,
    history_lines: u32,
    seq: Seq,
) -> Result<CommandLine, tmux_control::command::CommandError> {
    let state = Command::new("display-message")
        .flag("-p")
        .flag_value("-t", pane)
        .arg_quoted(STATE_FORMAT)?;
    let capture = |part: &str| {
        Command::new("capture-pane")
            .flag("-e")
            .flag("-N")
            .flag("-J")
            .flag_value("-b", buffer(seq, part))
            .flag_value("-t", pane)
    };
    let history = capture("h")
        .flag_value("-S", -i64::from(history_lines.max(1)))
        .flag_value("-E", -1);
    let visible = capture("v").flag_value("-S", 0).flag_value("-E", "-");
    let normal = capture("n").flag("-a").flag("-q");
    Ok(CommandLine::from(state)
        .then(history)
        .then(visible)
        .then(normal))
}

/// Builds the replay bytes. Lines are joined with CRLF and the last line has none, so the
/// final visible row ends at the bottom of the screen and earlier lines scroll into the
/// terminal's scrollback.
pub fn compose(
    state: &PaneState,
    history: Option<&[u8]>,
    normal: Option<&[u8]>,
    visible: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(visible.len() + history.map_or(0, <[u8]>::len) + 64);
    let mut lines = Vec::new();
    if let Some(h) = history {
        lines.extend(split_lines(h));
    }
    if state.alternate_on {
        lines.extend(split_lines(normal.unwrap_or(b"")));
        join_into(&mut out, &lines);
        out.extend_from_slice(b"\x1b[0m");
        cursor_to(&mut out, state.saved_x, state.saved_y);
        out.extend_from_slice(b"\x1b[?1049h\x1b[H\x1b[2J");
        lines.clear();
    }
    lines.extend(split_lines(visible));
    join_into(&mut out, &lines);
    out.extend_from_slice(b"\x1b[0m");
    modes_into(&mut out, state);
    cursor_to(&mut out, state.cursor_x, state.cursor_y);
    if !state.cursor_visible {
        out.extend_from_slice(b"\x1b[?25l");
    }
    out
}

fn split_lines(capture: &[u8]) -> impl Iterator<Item = &[u8]> {
    let capture = capture.strip_suffix(b"\n").unwrap_or(capture);
    capture
        .split(|&b| b == b'\n')
        .filter(move |_| !capture.is_empty())
}

fn join_into(out: &mut Vec<u8>, lines: &[&[u8]]) {
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line);
    }
}

fn cursor_to(out: &mut Vec<u8>, x: u16, y: u16) {
    out.extend_from_slice(format!("\x1b[{};{}H", u32::from(y) + 1, u32::from(x) + 1).as_bytes());
}

fn modes_into(out: &mut Vec<u8>, state: &PaneState) {
    if state.scroll_upper != 0 || u32::from(state.scroll_lower) + 1 != u32::from(state.rows) {
        let region = format!(
            "\x1b[{};{}r",
            u32::from(state.scroll_upper) + 1,
            u32::from(state.scroll_lower) + 1
        );
        out.extend_from_slice(region.as_bytes());
    }
    if state.keypad_cursor {
        out.extend_from_slice(b"\x1b[?1h");
    }
    if state.keypad {
        out.extend_from_slice(b"\x1b=");
    }
    for (on, mode) in state.mouse.iter().zip(["1000", "1002", "1003", "1006"]) {
        if *on {
            out.extend_from_slice(format!("\x1b[?{mode}h").as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> PaneState {
        PaneState::parse(b"6,2,1,0,0,0,40,3,0,0,0,0,2,0,0,0,0").unwrap()
    }

    #[test]
    fn parses_state_and_rejects_garbage() {
        let s = state();
        assert_eq!((s.cursor_x, s.cursor_y, s.cols, s.rows), (6, 2, 40, 3));
        assert!(PaneState::parse(b"1,2,3").is_none());
        assert!(PaneState::parse(b"%end 1 2 1").is_none());
        assert!(PaneState::parse(b"6,2,1,0,0,0,99999,3,0,0,0,0,2,0,0,0,0").is_none());
        let off =
            PaneState::parse(b"0,0,1,0,4294967295,4294967295,40,6,0,0,0,0,5,0,0,0,0").unwrap();
        assert_eq!((off.saved_x, off.saved_y), (0, 0));
    }

    #[test]
    fn composes_normal_screen_with_history() {
        let out = compose(&state(), Some(b"h1\n"), None, b"a\nb\n$ \n");
        assert_eq!(out, b"h1\r\na\r\nb\r\n$ \x1b[0m\x1b[3;7H".to_vec());
    }

    #[test]
    fn composes_alternate_screen_after_normal_screen() {
        let mut s = state();
        s.alternate_on = true;
        s.cursor_visible = false;
        let out = compose(&s, None, Some(b"n1\nn2\n\n"), b"ALT\n\n  xy\n");
        let expected = b"n1\r\nn2\r\n\x1b[0m\x1b[1;1H\x1b[?1049h\x1b[H\x1b[2JALT\r\n\r\n  xy\x1b[0m\x1b[3;7H\x1b[?25l";
        assert_eq!(out, expected.to_vec());
    }
}
