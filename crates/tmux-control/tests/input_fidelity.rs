//! `encode_input` against a real tmux: whatever bytes are encoded arrive in
//! the pane unchanged. The pane runs `cat` on a fully raw tty into a file.

mod common;

use std::cell::Cell;

use common::{TestServer, new_window, wait_for_file};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tmux_control::{Command, CommandLine, ControlClient, PaneId, encode_input};

/// How many encoded commands are written per command line.
const COMMANDS_PER_LINE: usize = 8;

/// A pane copying its raw input to `sink` in the test directory.
struct RawPane {
    client: ControlClient,
    pane: PaneId,
    sink: std::path::PathBuf,
    received: u64,
}

impl RawPane {
    async fn open(server: &TestServer) -> RawPane {
        let (client, _notes) = server.attach("main").await;
        let sink = server.path("sink");
        let ready = server.path("ready");
        let script = format!(
            "stty raw -echo -iexten -ixon -ixoff -isig -icanon -opost -icrnl -inlcr -igncr -istrip; \
             touch '{}'; exec cat > '{}'",
            ready.display(),
            sink.display()
        );
        let pane = new_window(&client, &script).await;
        wait_for_file(&ready, 0).await;
        RawPane {
            client,
            pane,
            sink,
            received: 0,
        }
    }

    /// Sends `bytes` with `encode_input` and returns what the pane received.
    async fn round_trip(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut commands = Vec::new();
        encode_input(self.pane, bytes, &mut commands);
        for group in commands.chunks(COMMANDS_PER_LINE) {
            let mut line = CommandLine::from(group[0].clone());
            for cmd in &group[1..] {
                line = line.then(cmd.clone());
            }
            self.client.command(line).await.expect("send-keys");
        }
        let end = self.received + bytes.len() as u64;
        wait_for_file(&self.sink, end).await;
        let all = std::fs::read(&self.sink).expect("read sink");
        let got = all[self.received as usize..].to_vec();
        self.received = all.len() as u64;
        got
    }
}

fn tricky_cases(server: &TestServer) -> Vec<Vec<u8>> {
    let pwned = format!("#(touch {})", server.path("pwned").display());
    let mut cases: Vec<Vec<u8>> = [
        &b"\0"[..],
        b"\x1b",
        b"\r",
        b"\n",
        b"\x7f",
        b"\xff\xfe\xc3",
        b"'",
        b"\"",
        b";",
        b"\\",
        b"$HOME",
        b"~",
        b"-R",
        b"-l",
        b"--",
        b"\\;",
        b";\\",
        b"'\\''",
        b"a'b\"c;d\\e",
        b"\x03\x04\x11\x13\x16\x1a\x1c",
        b"\t",
        b"%1",
        b"#{pane_id}",
        b"{}",
        b"x \\; y",
    ]
    .iter()
    .map(|c| c.to_vec())
    .collect();
    cases.push(pwned.into_bytes());
    cases.push(
        "é中😀\u{200b}e\u{301}\u{feff}\u{10ffff}"
            .as_bytes()
            .to_vec(),
    );
    cases.push((0..=255u8).collect());
    cases
}

#[tokio::test]
async fn tricky_inputs_arrive_unchanged() {
    let server = TestServer::start();
    let mut pane = RawPane::open(&server).await;
    for case in tricky_cases(&server) {
        assert_eq!(
            pane.round_trip(&case).await,
            case,
            "case {:?}",
            String::from_utf8_lossy(&case)
        );
    }
    assert!(!server.path("pwned").exists(), "#(...) was run");
}

#[tokio::test]
async fn large_pastes_arrive_unchanged() {
    let server = TestServer::start();
    let mut pane = RawPane::open(&server).await;
    let text = "fn main() { println!(\"it's 'quoted' ; $HOME ~ \\\\\"); }\r".repeat(64 * 1024 / 50);
    assert_eq!(pane.round_trip(text.as_bytes()).await, text.as_bytes());
    let binary: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_eq!(pane.round_trip(&binary).await, binary);
}

#[test]
fn any_bytes_arrive_unchanged() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = TestServer::start();
    let pane = Cell::new(Some(rt.block_on(RawPane::open(&server))));
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        "(\\PC|[\\x00-\\x1f'\\\\;\"$~#-])*".prop_map(String::into_bytes),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&bytes, |bytes| {
        let mut raw = pane.take().expect("pane");
        let got = rt.block_on(raw.round_trip(&bytes));
        pane.set(Some(raw));
        prop_assert_eq!(got, bytes);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let _ = Command::new("unused");
}
