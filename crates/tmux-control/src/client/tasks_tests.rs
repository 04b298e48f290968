//! The reader task against scripted tmux output (no tmux needed).

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::client::state::Pending;
use crate::{Command, CommandLine, PaneId, Reply};

type Log = Arc<Mutex<Vec<Notification>>>;
type ReplyRx = oneshot::Receiver<Result<Reply, Error>>;

struct Script {
    shared: Arc<Shared>,
    log: Log,
    writer: mpsc::UnboundedSender<Vec<u8>>,
    _lines: mpsc::UnboundedReceiver<Vec<u8>>,
}

impl Script {
    fn new() -> Script {
        let (writer, lines) = mpsc::unbounded_channel();
        Script {
            shared: Arc::new(Shared::new()),
            log: Log::default(),
            writer,
            _lines: lines,
        }
    }

    /// Queues a command line; `at_begin` records how many notifications the
    /// handler had seen when the reply's first `%begin` was read.
    fn queue(&self, line: CommandLine) -> (ReplyRx, oneshot::Receiver<usize>) {
        let (tx, rx) = oneshot::channel();
        let (seen_tx, seen_rx) = oneshot::channel();
        let log = self.log.clone();
        let at_begin: super::super::state::AtBegin = Box::new(move || {
            let _ = seen_tx.send(log.lock().unwrap().len());
        });
        let bytes = format!("{line}\n").into_bytes();
        self.shared
            .enqueue(Pending::new(&line, Some(at_begin), tx), bytes, &self.writer)
            .unwrap();
        (rx, seen_rx)
    }

    async fn run(&self, wire: &str) -> Result<(), Error> {
        let log = self.log.clone();
        let handler = move |n| log.lock().unwrap().push(n);
        let (ready_tx, ready_rx) = oneshot::channel();
        let reader = Reader::new(self.shared.clone(), Box::new(handler), ready_tx);
        reader
            .run(wire.as_bytes(), tokio::spawn(async { String::new() }))
            .await;
        ready_rx.await.unwrap()
    }

    fn log(&self) -> Vec<Notification> {
        self.log.lock().unwrap().clone()
    }
}

fn cmd(name: &'static str) -> CommandLine {
    CommandLine::from(Command::new(name))
}

fn output(pane: u32, data: &'static [u8]) -> Notification {
    Notification::Output {
        pane: PaneId(pane),
        data: bytes::Bytes::from_static(data),
    }
}

#[tokio::test]
async fn replies_match_fifo_and_at_begin_sees_preceding_notifications() {
    let s = Script::new();
    let (first, first_seen) = s.queue(cmd("list-sessions").then(Command::new("list-windows")));
    let (second, second_seen) = s.queue(cmd("refresh-client"));
    let wire = "%begin 1 1 0\n%end 1 1 0\n%session-changed $0 main\n%output %1 a\n\
        %begin 1 2 1\n%output %1 not output\n%end 1 2 1\n%output %1 b\n%begin 1 3 0\nhook\n%end 1 3 0\n\
        %begin 1 4 1\nsecond\n%end 1 4 1\n%begin 1 5 1\n%pause %1\n%end 1 5 1\n%exit\n";
    assert!(s.run(wire).await.is_ok());

    let first = first.await.unwrap().unwrap();
    assert_eq!(first.blocks.len(), 2);
    assert_eq!(first.blocks[0].lines, [b"%output %1 not output".to_vec()]);
    assert_eq!(first.blocks[1].lines, [b"second".to_vec()]);
    assert_eq!(first_seen.await.unwrap(), 2);
    assert!(second.await.unwrap().unwrap().blocks[0].lines.is_empty());
    assert_eq!(second_seen.await.unwrap(), 3);
    let log = s.log();
    assert_eq!(
        log[1..4],
        [
            output(1, b"a"),
            output(1, b"b"),
            Notification::Pause { pane: PaneId(1) }
        ]
    );
    assert_eq!(log.last(), Some(&Notification::Exit { reason: None }));
    assert!(matches!(s.shared.closed(), Some(Closed::Exited(None))));
}

#[tokio::test]
async fn an_error_block_completes_the_entry_early() {
    let s = Script::new();
    let (first, _) = s.queue(cmd("a").then(Command::new("b")));
    let (second, _) = s.queue(cmd("c"));
    let wire = "%session-changed $0 m\n%begin 1 2 1\nbad\n%error 1 2 1\n%begin 1 3 1\n%end 1 3 1\n";
    s.run(wire).await.unwrap();
    assert!(matches!(first.await.unwrap(), Err(Error::Command { message }) if message == "bad"));
    assert!(second.await.unwrap().is_ok());
}

#[tokio::test]
async fn protocol_violations_fail_pending_commands() {
    let s = Script::new();
    let (pending, _) = s.queue(cmd("a"));
    let wire = "%session-changed $0 m\n%end 1 2 1\n%begin 1 3 1\n%end 1 3 1\n";
    s.run(wire).await.unwrap();
    assert!(matches!(pending.await.unwrap(), Err(Error::Protocol(_))));
    assert!(matches!(s.shared.closed(), Some(Closed::Protocol(_))));
}

#[tokio::test]
async fn an_unexpected_block_is_a_violation() {
    let s = Script::new();
    s.run("%session-changed $0 m\n%begin 1 2 1\n%end 1 2 1\n")
        .await
        .unwrap();
    assert!(matches!(s.shared.closed(), Some(Closed::Protocol(_))));
}

#[tokio::test]
async fn a_failed_attach_is_reported() {
    let s = Script::new();
    let result = s
        .run("%begin 1 1 0\nno sessions\n%error 1 1 0\n%exit\n")
        .await;
    assert!(matches!(result, Err(Error::Exited { reason: Some(r) }) if r.contains("no sessions")));
}

#[tokio::test]
async fn eof_without_exit_still_notifies() {
    let s = Script::new();
    let (pending, _) = s.queue(cmd("a"));
    assert!(
        s.run("%session-changed $0 m\n%begin 1 2 1\npartial")
            .await
            .is_ok()
    );
    assert!(matches!(pending.await.unwrap(), Err(Error::Exited { .. })));
    assert_eq!(s.log().last(), Some(&Notification::Exit { reason: None }));
}

#[tokio::test]
async fn a_panicking_handler_closes_the_connection() {
    let s = Script::new();
    let (pending, _) = s.queue(cmd("a"));
    let (ready_tx, _ready_rx) = oneshot::channel();
    let handler = |_n: Notification| panic!("handler bug");
    let reader = Reader::new(s.shared.clone(), Box::new(handler), ready_tx);
    let wire: &'static [u8] = b"%window-add @1\n";
    let task = tokio::spawn(reader.run(wire, tokio::spawn(async { String::new() })));
    assert!(task.await.is_err());
    assert!(matches!(pending.await.unwrap(), Err(Error::Exited { .. })));
}
