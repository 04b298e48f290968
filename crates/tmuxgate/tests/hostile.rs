//! Hostile input beyond malformed requests (issue 10; tests/bad_input.rs has those): messages
//! cut into WebSocket fragments, duplicate keys and huge numbers, and a million tiny INPUT
//! frames. Each has the outcome docs/reliability.md gives it.

mod common;

use common::{STEP, TestServer};
use tmuxgate_client::protocol::request::RequestId;
use tmuxgate_client::protocol::{CloseCode, ErrorCode};
use tmuxgate_client::{Client, Message};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// A small limit so that an oversized message stays cheap.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// `text` as a text message cut into WebSocket fragments of `size` bytes.
async fn send_fragmented(client: &Client, text: &str, size: usize) {
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(size).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = match i {
            0 => OpCode::Data(Data::Text),
            _ => OpCode::Data(Data::Continue),
        };
        let frame = Frame::message(chunk.to_vec(), opcode, i + 1 == chunks.len());
        // Errors are fine: the gateway may close before the last fragment is written.
        let _ = client.send(Message::Frame(frame)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_messages_are_reassembled_and_an_oversized_one_closes_4009() {
    let server = TestServer::start_with(|c| c.max_message_bytes = MAX_MESSAGE_BYTES).await;
    let client = server.client().await;
    send_fragmented(
        &client,
        r#"{"type":"heartbeat","id":"frag","data":{"timestamp":7}}"#,
        5,
    )
    .await;
    let body = client.next_raw_response(STEP).await.expect("a response");
    assert!(body.success, "{body:?}");
    assert_eq!(body.id, Some(RequestId::String("frag".into())));

    // Over the limit in all, every fragment under it: the message still counts whole.
    let padding = "x".repeat(MAX_MESSAGE_BYTES);
    let big = format!(r#"{{"type":"heartbeat","id":"big","pad":"{padding}"}}"#);
    send_fragmented(&client, &big, 16 * 1024).await;
    let (code, _) = client.wait_closed(STEP).await.expect("closed");
    assert_eq!(code, CloseCode::MessageTooLarge.code());
    server
        .client()
        .await
        .heartbeat()
        .await
        .expect("the gateway serves others");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_keys_take_the_last_and_huge_numbers_are_refused_or_echoed_exactly() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let raw = |text: &'static str| {
        let client = &client;
        async move {
            client.send_text(text).await.expect("send");
            client.next_raw_response(STEP).await.expect("a response")
        }
    };
    // As JSON.parse does: the last of duplicate keys wins.
    let body =
        raw(r#"{"type":"metrics","type":"heartbeat","id":"a","id":"b","data":{"timestamp":1}}"#)
            .await;
    assert!(body.success, "{body:?}");
    assert_eq!(body.id, Some(RequestId::String("b".into())));
    assert!(
        body.data
            .as_ref()
            .and_then(|d| d.get("timestamp"))
            .is_some(),
        "a heartbeat answered: {body:?}"
    );

    // A number too big for its field is an invalid request; the id is echoed as sent.
    let body = raw(
        r#"{"type":"session-resize","id":1e300,"data":{"channel":99999999999999999999999,"cols":80,"rows":24}}"#,
    )
    .await;
    assert_eq!(body.error_code, Some(ErrorCode::InvalidRequest), "{body:?}");
    let Some(RequestId::Number(n)) = &body.id else {
        panic!("the id: {body:?}")
    };
    assert_eq!(n.as_f64(), Some(1e300));
    let body = raw(r#"{"type":"session-create","id":2,"data":{"name":"n","cols":1e999}}"#).await;
    assert_eq!(body.error_code, Some(ErrorCode::InvalidRequest), "{body:?}");
    client.heartbeat().await.expect("the connection survives");
}

/// A million INPUT frames of one byte each, as fast as the client can write them: the
/// gateway takes every one, the connection survives, and another client's session keeps
/// echoing meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_tiny_input_frames_all_arrive_without_hurting_others() {
    let server = TestServer::start().await;
    let flooder = server.client().await;
    let id = flooder
        .create_session("flooded", 80, 24)
        .await
        .expect("create")
        .session_id;
    let mut att = flooder.attach_session(&id, 80, 24).await.expect("attach");
    // The pane counts what it receives, without echoing it, byte by byte (not line by line:
    // a terminal's line editor keeps at most 4 KiB of a line).
    flooder
        .send_input(
            att.channel,
            b"stty -echo -icanon; head -c 1000000 | wc -c; echo count$((1+1))ed\r",
        )
        .await
        .expect("input");
    let other = server.client().await;
    let quiet = other
        .create_session("quiet", 80, 24)
        .await
        .expect("create")
        .session_id;
    let mut watch = other.attach_session(&quiet, 80, 24).await.expect("attach");

    const FRAMES: usize = 1_000_000;
    let sender = {
        let flooder_frames = (0..FRAMES).map(|_| b"x".as_slice());
        let channel = att.channel;
        let flooder = &flooder;
        async move {
            for byte in flooder_frames {
                flooder.send_input(channel, byte).await.expect("INPUT");
            }
        }
    };
    let typing = async {
        other
            .send_input(watch.channel, b"echo still-$((20+22))\r")
            .await
            .expect("input");
        watch
            .wait_for(b"still-42", STEP * 3)
            .await
            .expect("the other session echoes meanwhile");
    };
    tokio::join!(sender, typing);
    // `head` ends after a million bytes: all arrived (the default budget's 4 MiB burst
    // takes them; tests/abuse.rs covers a flood over the budget).
    att.wait_for(b"count2ed", STEP * 6)
        .await
        .expect("every byte arrived");
    let screen = att.screen(80, 24);
    assert!(
        screen.lines().any(|l| l.trim() == FRAMES.to_string()),
        "{FRAMES} bytes counted:\n{screen}"
    );
    flooder
        .heartbeat()
        .await
        .expect("the flooding connection survives");
}
