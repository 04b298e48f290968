//! Streaming end to end: several viewers of one session, read-only refusal, late-joiner
//! snapshots, exact resume, slow viewers, resizing and byte fidelity in both directions,
//! each proved against the pane itself (`tmux capture-pane` / `display` on the backend).

mod common;

use std::future::Future;
use std::time::Duration;

use common::{STEP, TestServer, eventually, http_get};
use tmuxgate_client::protocol::request::{AttachMode, SessionAttach};
use tmuxgate_client::protocol::{ErrorCode, Event, FrameKind};
use tmuxgate_client::{Attachment, Client, ClientError, Terminal, attach_request, vt100};

/// Upper bound for a whole test; every wait inside is also bounded by `STEP`.
const TEST_DEADLINE: Duration = Duration::from_secs(50);
/// The shell prompt every test sets, so "the prompt is back" means "the pane is idle".
const PROMPT: &[u8] = b"READY> ";
/// How much the test process (gateway included) may grow while one viewer floods and another
/// stalls. The reading viewer's own copy of the stream (`FLOOD_LINES` * 79 bytes, in a Vec
/// that doubles) accounts for up to 16 MiB of it; the gateway holds one ring per pane and
/// at most a frame plus socket buffers per viewer.
const FLOOD_RSS_GROWTH_MAX_BYTES: u64 = 64 << 20;
/// The pane log's ring in the flood test (the default, set explicitly).
const RING_BUFFER_BYTES: usize = 1 << 20;
/// Lines of 77 characters the flood test prints (79 bytes each on the wire: about 12 MB,
/// enough to pass the ring plus the socket buffers, about 4 MB on Linux, of a viewer that
/// stopped reading).
const FLOOD_LINES: u32 = 150_000;
/// How long the flood may take to reach the reading viewer (it takes about 5 s).
const FLOOD_DEADLINE: Duration = Duration::from_secs(30);

/// Runs a test body, failing it after `TEST_DEADLINE`.
async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_DEADLINE, test)
        .await
        .expect("test exceeded its deadline")
}

/// A read-only attach request that leaves the session's size alone.
fn read_request(session_id: &str) -> SessionAttach {
    SessionAttach {
        mode: AttachMode::Read,
        cols: None,
        rows: None,
        ..attach_request(session_id, 2, 2)
    }
}

/// A new 80x24 session with a writer attached on its own connection, its prompt set.
async fn writer_session(server: &TestServer, name: &str) -> (Client, String, Attachment) {
    let client = server.client().await;
    let session = client.create_session(name, 80, 24).await.expect("create");
    let id = session.session_id;
    let mut att = client
        .attach_session(&id, 80, 24)
        .await
        .expect("attach writer");
    prepare_shell(&client, &mut att).await;
    (client, id, att)
}

/// A new connection with a read-only attachment to `session_id` (or resuming at `resume_from`).
async fn viewer(
    server: &TestServer,
    session_id: &str,
    resume_from: Option<u64>,
) -> (Client, Attachment) {
    let client = server.client().await;
    let request = SessionAttach {
        resume_from,
        ..read_request(session_id)
    };
    let att = client
        .attach(request)
        .await
        .expect("attach read-only viewer");
    (client, att)
}

/// Sends `bytes` as one binary INPUT frame.
async fn type_bytes(client: &Client, att: &Attachment, bytes: &[u8]) {
    client
        .send_input(att.channel, bytes)
        .await
        .expect("send input");
}

/// Sets a prompt the typed command itself does not contain (`\122` is `R`) and waits for it.
async fn prepare_shell(client: &Client, att: &mut Attachment) {
    type_bytes(client, att, b"PS1='\\122EADY> '\r").await;
    att.wait_for(PROMPT, STEP).await.expect("prompt");
}

/// Types `command`, then waits for the prompt after it: the pane is idle again.
async fn run(client: &Client, att: &mut Attachment, command: &str) {
    type_bytes(client, att, format!("{command}\r").as_bytes()).await;
    att.wait_for(PROMPT, STEP)
        .await
        .unwrap_or_else(|e| panic!("`{command}` did not finish: {e}"));
}

/// The visible rows of `pane` as tmux has them, trailing blanks trimmed.
fn pane_rows(server: &TestServer, pane: &str, rows: u16) -> Vec<String> {
    let text = server.tmux(0, &["capture-pane", "-p", "-t", pane]);
    let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_owned()).collect();
    lines.resize(usize::from(rows), String::new());
    lines
}

/// The visible rows of a viewer's terminal rendered at the pane's size, trimmed likewise.
fn viewer_rows(att: &Attachment, cols: u16, rows: u16) -> Vec<String> {
    let parser = att.terminal().parser(cols, rows);
    parser
        .screen()
        .rows(0, cols)
        .map(|r| r.trim_end().to_owned())
        .collect()
}

/// `(column, row)` of the cursor in the pane, and in the viewer's terminal.
fn cursors(
    server: &TestServer,
    att: &Attachment,
    cols: u16,
    rows: u16,
) -> ((u16, u16), (u16, u16)) {
    let text = server.tmux(
        0,
        &["display", "-p", "-t", &att.pane, "#{cursor_x},#{cursor_y}"],
    );
    let (x, y) = text.trim().split_once(',').expect("cursor reply");
    let (row, col) = att.terminal().parser(cols, rows).screen().cursor_position();
    ((x.parse().expect("x"), y.parse().expect("y")), (col, row))
}

/// Waits for `client`'s first event `matches` accepts.
async fn event(client: &Client, matches: impl FnMut(&Event) -> bool) -> Event {
    client.wait_event(matches, STEP).await.expect("event")
}

/// Whether an event `matches` accepts is already buffered (everything sent before the
/// client's last response has been read by then).
async fn buffered(client: &Client, matches: impl FnMut(&Event) -> bool) -> bool {
    client.wait_event(matches, Duration::ZERO).await.is_ok()
}

/// The test process's resident memory (the gateway runs in it).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:"));
    let kib = line.and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok());
    kib.expect("VmRSS in KiB") * 1024
}

/// Whether `needle` is among the last bytes received: a check cheap enough to run after every
/// frame of a multi-megabyte stream (frames carry at most 32 KiB).
fn tail_contains(terminal: &Terminal, needle: &[u8]) -> bool {
    let bytes = terminal.bytes_since_start();
    find(&bytes[bytes.len().saturating_sub(64 * 1024)..], needle).is_some()
}

/// Whether `marker` has arrived and the prompt came after it: the pane is idle again.
fn idle_after(terminal: &Terminal, marker: &[u8]) -> bool {
    terminal.bytes_since_start().ends_with(PROMPT) && tail_contains(terminal, marker)
}

/// The `errorCode` of a failed request.
fn server_code(error: &ClientError) -> ErrorCode {
    match error {
        ClientError::Server { code, .. } => *code,
        other => panic!("expected an error response, got {other:?}"),
    }
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The late viewer renders what tmux shows (text and cursor), and every cell as the viewer
/// that saw every byte (text, colours, bold, inverse).
fn assert_screens_match(server: &TestServer, full: &Attachment, late: &Attachment) {
    let expected = pane_rows(server, &late.pane, 24);
    assert_eq!(
        viewer_rows(late, 80, 24),
        expected,
        "late viewer vs capture-pane"
    );
    assert_eq!(
        viewer_rows(full, 80, 24),
        expected,
        "first viewer vs capture-pane"
    );
    let (pane, viewer) = cursors(server, late, 80, 24);
    assert_eq!(viewer, pane, "cursor (column, row)");
    let (a, b) = (
        full.terminal().parser(80, 24),
        late.terminal().parser(80, 24),
    );
    // A blank written as a space and a cell never written look the same.
    let attrs = |c: &vt100::Cell| {
        let text = c.contents().trim().to_owned();
        (text, c.fgcolor(), c.bgcolor(), c.bold(), c.inverse())
    };
    for (row, col) in (0..24).flat_map(|r| (0..80).map(move |c| (r, c))) {
        let (x, y) = (a.screen().cell(row, col), b.screen().cell(row, col));
        let (x, y) = (x.expect("cell"), y.expect("cell"));
        assert_eq!(attrs(y), attrs(x), "cell at row {row}, column {col}");
    }
}

/// The gateway's `tmuxgate_snapshot_captures_total`.
async fn snapshot_captures(server: &TestServer) -> u64 {
    let (status, body) = http_get(server.health_addr, "/metrics").await;
    assert_eq!(status, 200, "/metrics");
    let line = body
        .lines()
        .find(|l| l.starts_with("tmuxgate_snapshot_captures_total "));
    let value = line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
    value.expect("tmuxgate_snapshot_captures_total in /metrics")
}

/// Runs `stty size` in the pane and expects `rows cols`.
async fn stty_size_is(client: &Client, att: &mut Attachment, expected: &[u8]) {
    type_bytes(client, att, b"stty size\r").await;
    let line = [b"\r", expected, b"\r\n"].concat();
    att.wait_for(&line, STEP)
        .await
        .expect("stty size reports the pane size");
    att.wait_for(PROMPT, STEP).await.expect("prompt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_viewer_sees_output_and_its_input_never_reaches_the_pane() {
    bounded(async {
        let server = TestServer::start().await;
        let (writer, id, mut w) = writer_session(&server, "viewers").await;
        let (reader, mut r) = viewer(&server, &id, None).await;
        assert_eq!(r.mode, AttachMode::Read);
        type_bytes(&writer, &w, b"echo both-$((6*7))\r").await;
        w.wait_for(b"both-42", STEP)
            .await
            .expect("writer sees output");
        r.wait_for(b"both-42", STEP)
            .await
            .expect("reader sees output");

        let refused = reader
            .terminal_input(r.channel, "echo refused-request\r")
            .await;
        let forbidden = Err::<(), _>(ErrorCode::Forbidden);
        assert_eq!(refused.map(drop).map_err(|e| server_code(&e)), forbidden);
        type_bytes(&reader, &r, b"echo refused-frame\r").await;
        type_bytes(&reader, &r, b"echo refused-again\r").await;
        reader
            .heartbeat()
            .await
            .expect("connection stays open after refused input");
        let is_refusal = |e: &Event| matches!(e, Event::InputRefused { .. });
        let notice = event(&reader, is_refusal).await;
        let expected = Event::InputRefused {
            channel: r.channel,
            error_code: ErrorCode::Forbidden,
        };
        assert_eq!(notice, expected);
        assert!(
            !buffered(&reader, is_refusal).await,
            "one notice per channel"
        );

        // Refused bytes would have been queued before this marker, so they would show by now.
        type_bytes(&writer, &w, b"echo marker-$((6*7))x\r").await;
        w.wait_for(b"marker-42x", STEP)
            .await
            .expect("writer sees marker");
        r.wait_for(b"marker-42x", STEP)
            .await
            .expect("reader sees marker");
        let pane = pane_rows(&server, &w.pane, 24).join("\n");
        assert!(
            pane.contains("marker-42x") && !pane.contains("refused"),
            "pane:\n{pane}"
        );
        assert!(!w.terminal().contains(b"refused"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_viewer_snapshot_reproduces_normal_and_alternate_screens() {
    bounded(async {
        let server = TestServer::start().await;
        let (writer, id, mut w) = writer_session(&server, "late").await;
        // Scrolled lines, a wrapped line, colours and wide characters (in octal, so the
        // echoed command differs from the output).
        let colourful = concat!(
            r"printf 'row %s\n' $(seq 1 40); printf '%0100d\n' 7; ",
            r"printf '\e[1;31mred\e[0m \e[42mgreen\e[0m wide:\346\227\245\346\234\254 end\n'",
        );
        run(&writer, &mut w, colourful).await;
        let (_late, mut l) = viewer(&server, &id, None).await;
        assert!(l.snapshot, "a fresh attach starts with a snapshot");
        l.wait_for_offset(w.end_offset(), STEP)
            .await
            .expect("late viewer catches up");
        assert_screens_match(&server, &w, &l);

        // A full-screen program: text at positions on the alternate screen, cursor parked.
        let full_screen = concat!(
            r"printf '\e[?1049h\e[H\e[2J\e[5;10H\101LT top\e[12;3H\e[7mmiddle\e[0m",
            r"\e[24;70Hbottom\e[18;33H'; read x; printf '\e[?1049l'",
            "\r",
        );
        type_bytes(&writer, &w, full_screen.as_bytes()).await;
        w.wait_for(b"\x1b[18;33H", STEP)
            .await
            .expect("full-screen program drew");
        let (_later, mut l2) = viewer(&server, &id, None).await;
        l2.wait_for_offset(w.end_offset(), STEP)
            .await
            .expect("catches up");
        assert!(l2.terminal().parser(80, 24).screen().alternate_screen());
        assert_screens_match(&server, &w, &l2);
        assert_eq!(cursors(&server, &l2, 80, 24).0, (32, 17));

        // Leaving the alternate screen must restore the normal screen the snapshot carried.
        type_bytes(&writer, &w, b"\r").await;
        w.wait_for(PROMPT, STEP).await.expect("program ended");
        l2.wait_for_offset(w.end_offset(), STEP)
            .await
            .expect("catches up");
        assert_screens_match(&server, &w, &l2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_a_dropped_connection_delivers_exactly_the_missing_bytes() {
    bounded(async {
        let server = TestServer::start().await;
        let (client_a, id, mut a) = writer_session(&server, "resume").await;
        let (client_b, mut b) = viewer(&server, &id, None).await;
        // Numbered lines until the test says stop, so output flows across the drop and resume.
        let stop = server.dir.join("stop-loop");
        let numbered = format!(
            concat!(
                "i=0; while [ ! -e {} ]; do i=$((i+1)); echo line-$i; ",
                "if [ $((i%50)) = 0 ]; then sleep 0.01; fi; done; echo loop-$((1+1))-end\r",
            ),
            stop.display()
        );
        type_bytes(&client_a, &a, numbered.as_bytes()).await;
        b.wait_for(b"line-300\r\n", STEP).await.expect("B streams");
        drop(client_b); // abruptly: no close frame, frames in flight are lost
        b.drain()
            .expect("frames received before the drop are contiguous");
        let dropped_at = b.end_offset();
        let log_id = b.log_id.clone();
        assert_eq!(log_id.len(), 16, "{log_id}");
        let carried = b.into_terminal();
        let flowing = a.wait_for_offset(dropped_at + 8192, STEP).await;
        flowing.expect("output flows while B is away");

        // The offset of another log (another gateway's, or before a restart) is never
        // resumed, even where this log holds the same number.
        let foreign = SessionAttach {
            resume_from: Some(dropped_at),
            resume_log_id: Some("0123456789abcdef".into()),
            ..read_request(&id)
        };
        let other = server.client().await;
        let elsewhere = other.attach(foreign).await.expect("attach");
        assert!(elsewhere.snapshot, "another log's offset gets a snapshot");
        drop(other);

        let client_b2 = server.client().await;
        let same_log = SessionAttach {
            resume_from: Some(dropped_at),
            resume_log_id: Some(log_id.clone()),
            ..read_request(&id)
        };
        let mut b2 = client_b2.attach(same_log).await.expect("resume");
        assert!(!b2.snapshot, "the ring still holds offset {dropped_at}");
        assert_eq!(b2.log_id, log_id);
        assert_eq!(b2.offset, dropped_at);
        b2.continue_from(carried).expect("continues B's stream");
        let caught_up = b2.wait_for_offset(a.end_offset(), STEP).await;
        caught_up.expect("B catches up while the loop runs");
        std::fs::write(&stop, b"").expect("stop the loop");
        let ended = |t: &mut Terminal| idle_after(t, b"loop-2-end");
        a.wait_until(ended, STEP).await.expect("loop ended");
        let end = a.end_offset();
        b2.wait_for_offset(end, STEP)
            .await
            .expect("B reaches A's end");
        assert_eq!(b2.end_offset(), end);

        let (ta, tb) = (a.terminal(), b2.terminal());
        let from = ta.base_offset().max(tb.base_offset());
        assert!(
            from < dropped_at,
            "the compared range covers the bytes missed while dropped"
        );
        let a_bytes = &ta.log_bytes()[(from - ta.base_offset()) as usize..];
        let b_bytes = &tb.log_bytes()[(from - tb.base_offset()) as usize..];
        assert_eq!(a_bytes.len(), b_bytes.len());
        assert!(
            a_bytes == b_bytes,
            "B's bytes differ from A's over {from}..{end}"
        );
        assert!(tb.contains(b"line-300\r\n") && tb.contains(b"loop-2-end"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_viewer_does_not_slow_another_and_recovers_with_a_snapshot() {
    bounded(async {
        let server = TestServer::start_with(|c| c.ring_buffer_bytes = RING_BUFFER_BYTES).await;
        let (reading, id, mut r) = writer_session(&server, "flood").await;
        let (stalled, mut s) = viewer(&server, &id, None).await;
        s.wait_for_offset(r.end_offset(), STEP)
            .await
            .expect("both viewers start in step");
        stalled.pause_reading();

        let before = resident_bytes();
        let mut peak = before;
        let x = "x".repeat(77);
        let flood = format!("yes {x} | head -n {FLOOD_LINES}; echo flood-$((2+3))-done\r");
        type_bytes(&reading, &r, flood.as_bytes()).await;
        let sample_until_done = |t: &mut Terminal| {
            peak = peak.max(resident_bytes());
            idle_after(t, b"flood-5-done")
        };
        let flooded = r.wait_until(sample_until_done, FLOOD_DEADLINE).await;
        flooded.expect("the reading viewer gets the whole flood while the other stalls");
        let growth = peak.saturating_sub(before);
        let bound = FLOOD_RSS_GROWTH_MAX_BYTES;
        assert!(
            growth <= bound,
            "RSS grew by {growth} bytes during the flood (bound {bound})"
        );
        // A fresh attach starts at the log's end: the reading viewer has every byte.
        let end = r.end_offset();
        assert_eq!(viewer(&server, &id, None).await.1.offset, end);

        // The stalled viewer fell out of the ring. Resumed within WRITE_TIMEOUT (30 s), it gets
        // the frames its socket already held, then a SNAPSHOT at the log's end instead of the
        // bytes it missed (had it stayed stalled for 30 s, the gateway would close it with 4010).
        stalled.resume_reading();
        let reached = loop {
            let reached = s.end_offset();
            let frame = s
                .next_frame(STEP)
                .await
                .expect("stalled viewer reads again");
            if frame.kind == FrameKind::Snapshot {
                break reached;
            }
        };
        assert!(
            end - reached > RING_BUFFER_BYTES as u64,
            "it missed more than the ring holds"
        );
        s.wait_for_offset(end, STEP)
            .await
            .expect("stalled viewer recovers");
        let snapshots = s.terminal().snapshots();
        assert_eq!(
            snapshots, 2,
            "the initial snapshot plus one replacing the missed bytes"
        );
        assert_eq!(
            s.terminal().base_offset(),
            end,
            "the recovery snapshot is at the log's end"
        );
        assert_eq!(stalled.closed(), None);
        assert_eq!(viewer_rows(&s, 80, 24), pane_rows(&server, &s.pane, 24));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_resize_reaches_the_pane_and_read_only_resize_does_not() {
    bounded(async {
        let server = TestServer::start().await;
        let (writer, id, mut w) = writer_session(&server, "resize").await;
        let (reader, r) = viewer(&server, &id, None).await;
        let pane = w.pane.clone();
        let size_format = "#{pane_width}x#{pane_height}";
        let pane_size = || server.tmux(0, &["display", "-p", "-t", &pane, size_format]);

        let reply = writer.resize(w.channel, 100, 30).await.expect("resize");
        assert_eq!(reply["applied"], true);
        let resized = || (pane_size().trim() == "100x30").then_some(());
        eventually("the pane is 100x30", resized).await;
        for (client, channel) in [(&writer, w.channel), (&reader, r.channel)] {
            let mine =
                |e: &Event| matches!(e, Event::SessionResized { channel: c, .. } if *c == channel);
            let expected = Event::SessionResized {
                session_id: id.clone(),
                channel,
                cols: 100,
                rows: 30,
            };
            assert_eq!(event(client, mine).await, expected);
        }
        stty_size_is(&writer, &mut w, b"30 100").await;

        let reply = reader
            .resize(r.channel, 60, 20)
            .await
            .expect("read-only resize is answered");
        assert_eq!(reply["applied"], false);
        stty_size_is(&writer, &mut w, b"30 100").await;
        assert_eq!(pane_size().trim(), "100x30");
        for client in [&writer, &reader] {
            client.heartbeat().await.expect("heartbeat");
            let any_resize = |e: &Event| matches!(e, Event::SessionResized { .. });
            assert!(!buffered(client, any_resize).await, "no second resize");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_input_arrives_in_the_pane_byte_for_byte() {
    bounded(async {
        let server = TestServer::start().await;
        let (client, _id, mut att) = writer_session(&server, "input").await;
        let (file, pwned) = (server.dir.join("typed.bin"), server.dir.join("pwned"));
        let cat = format!(
            "stty raw -echo; printf 'cat-\\162eady\\n'; cat > {}\r",
            file.display()
        );
        type_bytes(&client, &att, cat.as_bytes()).await;
        att.wait_for(b"cat-ready", STEP)
            .await
            .expect("cat is reading a raw tty");

        let touch = format!("#(touch {})", pwned.display());
        let all_bytes: Vec<u8> = (0..=255).collect();
        let paste = "日本語のテキスト, 中文, 한국어, 🎉 ".repeat(200);
        let frames: Vec<&[u8]> = vec![
            b"-R",
            b"-R -t %0 \x1b[A\x1b",
            b"it's; echo 'no' \"#{pane_id}\" ;",
            touch.as_bytes(),
            "日本語 🎉 ✓".as_bytes(),
            b"C-c Enter -- -l -H \\ \\\\ %begin 1 2 3\r\n",
            &all_bytes,
            paste.as_bytes(),
            b"<end of input>",
        ];
        for frame in &frames {
            type_bytes(&client, &att, frame).await;
        }
        let expected = frames.concat();
        let read = || Some(std::fs::read(&file).unwrap_or_default());
        let last_arrived = || read().filter(|w| w.ends_with(b"<end of input>"));
        let written = eventually("the last frame reaches the file", last_arrived).await;
        let first_difference = written.iter().zip(&expected).position(|(a, b)| a != b);
        assert_eq!(first_difference, None, "typed bytes arrive unchanged");
        assert_eq!(written.len(), expected.len());
        // tmux would have started a `#()` job when it parsed that frame, long before the
        // frames after it reached the file.
        assert!(!pwned.exists(), "#(...) in input must not run");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf8_output_split_across_frames_arrives_intact() {
    bounded(async {
        let server = TestServer::start().await;
        let (client, id, mut att) = writer_session(&server, "utf8").await;
        // 13-byte units and no newline: 32 KiB frames (the gateway's largest) cannot all end
        // on a character boundary.
        let text = "日本語🎉".repeat(8000);
        let file = server.dir.join("utf8.txt");
        std::fs::write(&file, &text).expect("write text");
        let cat = format!("cat {}; echo; echo utf8-$((1+1))-end", file.display());
        run(&client, &mut att, &cat).await;
        let live = att.terminal();
        let at = find(live.log_bytes(), text.as_bytes()).expect("the live stream carries the text");
        assert!(live.contains(b"utf8-2-end"));

        // Resuming at the text's first byte replays it from the ring in full-size frames.
        let start = live.base_offset() + at as u64;
        let (_other, mut replay) = viewer(&server, &id, Some(start)).await;
        assert!(!replay.snapshot);
        let (mut received, mut split_frames) = (Vec::new(), 0);
        while received.len() < text.len() {
            let frame = replay.next_frame(STEP).await.expect("frame");
            assert_eq!(frame.kind, FrameKind::Output);
            split_frames += usize::from(std::str::from_utf8(&frame.data).is_err());
            received.extend_from_slice(&frame.data);
        }
        assert!(split_frames > 0, "some frame ends inside a character");
        assert!(
            received.starts_with(text.as_bytes()),
            "bytes, not frames, carry the text"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_joining_together_share_one_snapshot_and_each_reaches_the_live_screen() {
    bounded(async {
        let server = TestServer::start().await;
        let (writer, id, mut w) = writer_session(&server, "shared").await;
        run(
            &writer,
            &mut w,
            r"printf '\e[1;32mgreen\e[0m row %s\n' $(seq 1 30)",
        )
        .await;
        let (_first, mut first) = viewer(&server, &id, None).await;
        first
            .wait_for_offset(w.end_offset(), STEP)
            .await
            .expect("first viewer catches up");
        // Output after that snapshot: later joiners reuse it and replay these bytes.
        run(&writer, &mut w, r"printf '\e[7mafter\e[0m %s\n' $(seq 1 5)").await;
        let before = snapshot_captures(&server).await;
        let joins = (0..8).map(|_| viewer(&server, &id, None));
        let mut viewers = futures_util::future::join_all(joins).await;
        let captured = snapshot_captures(&server).await - before;
        assert!(
            captured <= 1,
            "8 viewers joining a quiet pane at once cost {captured} tmux captures"
        );
        for (_, att) in &mut viewers {
            assert!(att.snapshot, "a fresh attach starts with a snapshot");
            att.wait_for_offset(w.end_offset(), STEP)
                .await
                .expect("joiner catches up");
            assert_screens_match(&server, &w, att);
        }
        // A layout change invalidates the shared snapshot: the next joiner gets a new one
        // at the new size.
        writer.resize(w.channel, 100, 30).await.expect("resize");
        event(&writer, |e| {
            matches!(e, Event::SessionResized { cols: 100, .. })
        })
        .await;
        let before = snapshot_captures(&server).await;
        let (_late, mut late) = viewer(&server, &id, None).await;
        assert_eq!(
            snapshot_captures(&server).await,
            before + 1,
            "fresh capture"
        );
        late.wait_for_offset(w.end_offset(), STEP)
            .await
            .expect("catches up");
        assert_eq!(
            viewer_rows(&late, 100, 30),
            pane_rows(&server, &late.pane, 30)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_joins_reaches_existing_viewers_as_a_few_coalesced_counts() {
    bounded(async {
        let server = TestServer::start().await;
        let (writer, id, _w) = writer_session(&server, "burst").await;
        let mut events = writer.events();
        let joins = (0..30).map(|_| viewer(&server, &id, None));
        let viewers = futures_util::future::join_all(joins).await;
        // Every count change reaches the writer; the last one says 31.
        let mut counts = Vec::new();
        while counts.last() != Some(&31) {
            let event = tokio::time::timeout(STEP, events.recv())
                .await
                .expect("viewer count reaches 31")
                .expect("event stream");
            if let Event::ViewerJoined { viewers, .. } = event {
                counts.push(viewers);
            }
        }
        // 30 joins made within a few intervals: far fewer than 30 events.
        assert!(
            counts.len() < 15,
            "30 joins became {} viewer-joined events: {counts:?}",
            counts.len()
        );
        assert!(
            counts.windows(2).all(|p| p[0] < p[1]),
            "counts rise: {counts:?}"
        );
        // And when they all leave, the count goes back down to the writer alone.
        drop(viewers);
        loop {
            let event = tokio::time::timeout(STEP, events.recv())
                .await
                .expect("viewer count falls to 1")
                .expect("event stream");
            match event {
                Event::ViewerLeft { viewers: 1, .. } => break,
                Event::ViewerLeft { .. } => {}
                other => panic!("unexpected event {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_of_bulk_output_arrives_with_nothing_printed_after_it() {
    bounded(async {
        let server = TestServer::start().await;
        let (writer, id, w) = writer_session(&server, "bulk").await;
        let (_viewer, mut v) = viewer(&server, &id, None).await;
        // Bulk output is sent in held, larger frames; its last bytes must still leave once
        // their hold is over, though nothing printed after them wakes the viewer (`sleep`).
        let flood = "head -c 3000000 /dev/zero | tr '\\0' x; printf '\\nbulk-done'; sleep 30\r";
        type_bytes(&writer, &w, flood.as_bytes()).await;
        v.wait_until(|t| tail_contains(t, b"\nbulk-done"), STEP)
            .await
            .expect("the end of the bulk output arrives");
        let bytes = v.terminal().bytes_since_start().len();
        assert!(
            bytes > 3_000_000,
            "every byte of the flood arrived: {bytes}"
        );
    })
    .await;
}
