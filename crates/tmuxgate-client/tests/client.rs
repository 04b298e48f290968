//! The client against a scripted server: request routing by id, events, frame routing by
//! channel, contiguity checks, raw responses, pausing, and close codes.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{ScriptedServer, attached};
use tmuxgate_client::protocol::frame::{ClientFrame, FrameKind, decode_client_frame};
use tmuxgate_client::protocol::request::Request;
use tmuxgate_client::protocol::{ErrorCode, Event};
use tmuxgate_client::{Client, ClientError, ClientOptions, Message, attach_request};

const WAIT: Duration = Duration::from_secs(5);

fn session(id: &str, name: &str) -> serde_json::Value {
    json!({"sessionId": id, "name": name, "backend": "tmux-0", "createdAt": 1, "cols": 80, "rows": 24})
}

#[tokio::test]
async fn responses_are_routed_by_id_even_out_of_order() {
    let server = ScriptedServer::start(|mut peer| async move {
        let first = peer.request().await;
        let second = peer.request().await;
        let (list, metrics) = match first.request {
            Request::SessionList => (first, second),
            _ => (second, first),
        };
        assert_eq!(metrics.request, Request::Metrics);
        peer.ok(metrics.id, json!({"connections": 1})).await;
        peer.ok(list.id, json!({"sessions": [session("s-1", "a")]}))
            .await;
    })
    .await;
    let client = Client::connect(&server.url).await.unwrap();
    let (list, metrics) = tokio::join!(client.list_sessions(), client.metrics());
    assert_eq!(list.unwrap()[0].name, "a");
    assert_eq!(metrics.unwrap()["connections"], 1);
    server.finish().await;
}

#[tokio::test]
async fn failures_carry_the_error_code() {
    let server = ScriptedServer::start(|mut peer| async move {
        let create = peer.request().await;
        let Request::SessionCreate(data) = &create.request else {
            panic!("not a create")
        };
        assert_eq!(
            (data.name.as_str(), data.options.cols, data.options.rows),
            ("dup", Some(90), Some(20))
        );
        peer.err(create.id, ErrorCode::Conflict, "name taken").await;
    })
    .await;
    let client = Client::connect(&server.url).await.unwrap();
    let err = client.create_session("dup", 90, 20).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Server { code: ErrorCode::Conflict, ref message } if message == "name taken")
    );
    server.finish().await;
}

#[tokio::test]
async fn unanswered_requests_time_out_and_late_answers_become_raw() {
    let server = ScriptedServer::start(|mut peer| async move {
        let late = peer.request().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        peer.ok(late.id, json!({})).await;
    })
    .await;
    let options = ClientOptions::default().request_timeout(Duration::from_millis(100));
    let client = Client::connect_with(&server.url, options).await.unwrap();
    assert!(matches!(
        client.resize(1, 80, 24).await,
        Err(ClientError::Timeout)
    ));
    let raw = client.next_raw_response(WAIT).await.unwrap();
    assert!(raw.success);
    server.finish().await;
}

#[tokio::test]
async fn responses_without_an_id_are_raw() {
    let server = ScriptedServer::start(|mut peer| async move {
        assert_eq!(peer.recv().await, Some(Message::text("{not json")));
        peer.err(None, ErrorCode::InvalidRequest, "malformed request")
            .await;
        peer.send_text("{\"type\":\"surprise\"}".into()).await;
        let heartbeat = peer.request().await;
        peer.ok(heartbeat.id, json!({"timestamp": 5, "serverTime": 7}))
            .await;
    })
    .await;
    let client = Client::connect(&server.url).await.unwrap();
    client.send_text("{not json").await.unwrap();
    let raw = client.next_raw_response(WAIT).await.unwrap();
    assert_eq!(
        (raw.id, raw.error_code),
        (None, Some(ErrorCode::InvalidRequest))
    );
    let (reply, _rtt) = client.heartbeat().await.unwrap();
    assert_eq!(reply.server_time, 7);
    assert_eq!(client.malformed_messages(), 1);
    server.finish().await;
}

#[tokio::test]
async fn events_are_buffered_and_matched() {
    let server = ScriptedServer::start(|mut peer| async move {
        peer.event(Event::ViewerJoined {
            session_id: "s-1".into(),
            viewers: 2,
        })
        .await;
        peer.event(Event::InputRefused {
            channel: 3,
            error_code: ErrorCode::Forbidden,
        })
        .await;
        let metrics = peer.request().await;
        peer.ok(metrics.id, json!({})).await;
        peer.until_closed().await;
    })
    .await;
    let client = Client::connect(&server.url).await.unwrap();
    client.metrics().await.unwrap();
    let refused = client
        .wait_event(|e| matches!(e, Event::InputRefused { .. }), WAIT)
        .await
        .unwrap();
    assert_eq!(
        refused,
        Event::InputRefused {
            channel: 3,
            error_code: ErrorCode::Forbidden
        }
    );
    let joined = client.next_event(WAIT).await.unwrap();
    assert!(matches!(joined, Event::ViewerJoined { viewers: 2, .. }));
    let none = client.next_event(Duration::from_millis(50)).await;
    assert!(matches!(none, Err(ClientError::Timeout)));
    client.close().await.unwrap();
    server.finish().await;
}

#[tokio::test]
async fn frames_are_routed_by_channel() {
    let server = ScriptedServer::start(|mut peer| async move {
        for (channel, offset) in [(1, 0), (2, 500)] {
            let attach = peer.request().await;
            peer.ok(attach.id, attached(channel, offset, true)).await;
            peer.frame(FrameKind::Snapshot, channel, offset, b"\x1b[H\x1b[2J$ ")
                .await;
        }
        peer.frame(FrameKind::Output, 9, 0, b"nobody's").await;
        peer.frame(FrameKind::Output, 2, 500, b"two").await;
        peer.frame(FrameKind::Output, 1, 0, b"one").await;
        peer.frame(FrameKind::Output, 1, 3, b"\r\nmore").await;
    })
    .await;
    let client = Client::connect(&server.url).await.unwrap();
    let mut one = client.attach(attach_request("s-1", 80, 24)).await.unwrap();
    let mut two = client.attach(attach_request("s-1", 80, 24)).await.unwrap();
    assert_eq!(
        (one.channel, two.channel, two.offset, two.snapshot),
        (1, 2, 500, true)
    );
    one.wait_for(b"more", WAIT).await.unwrap();
    two.wait_for(b"two", WAIT).await.unwrap();
    assert_eq!(one.terminal().log_bytes(), b"one\r\nmore");
    assert_eq!((one.end_offset(), two.end_offset()), (9, 503));
    assert_eq!(one.screen(20, 3), "$ one\nmore");
    assert_eq!(two.screen(20, 3), "$ two");
    assert_eq!(client.malformed_messages(), 0);
    server.finish().await;
}

#[tokio::test]
async fn a_gap_or_a_duplicate_is_caught() {
    let server = ScriptedServer::start(|mut peer| async move {
        let attach = peer.request().await;
        peer.ok(attach.id, attached(4, 10, false)).await;
        peer.frame(FrameKind::Output, 4, 10, b"abc").await;
        peer.frame(FrameKind::Output, 4, 14, b"e").await;
        peer.frame(FrameKind::Output, 4, 12, b"c").await;
    })
    .await;
    let client = Client::connect(&server.url).await.unwrap();
    let mut attachment = client.attach(attach_request("s-1", 80, 24)).await.unwrap();
    attachment.next_frame(WAIT).await.unwrap();
    let gap = attachment.next_frame(WAIT).await.unwrap_err();
    assert!(matches!(
        gap,
        ClientError::Gap {
            channel: 4,
            expected: 13,
            got: 14
        }
    ));
    let duplicate = attachment.next_frame(WAIT).await.unwrap_err();
    assert!(matches!(
        duplicate,
        ClientError::Gap {
            expected: 13,
            got: 12,
            ..
        }
    ));
    server.finish().await;
}

#[tokio::test]
async fn detach_and_session_closed_end_the_channel() {
    let server = ScriptedServer::start(|mut peer| async move {
        for channel in [1, 2] {
            let attach = peer.request().await;
            peer.ok(attach.id, attached(channel, 0, false)).await;
        }
        peer.frame(FrameKind::Output, 1, 0, b"kept").await;
        let detach = peer.request().await;
        assert_eq!(
            detach.request,
            Request::SessionDetach(tmuxgate_client::protocol::request::ChannelRef { channel: 1 })
        );
        peer.ok(detach.id, json!({})).await;
        let closed = Event::SessionClosed {
            session_id: "s-1".into(),
            channel: 2,
            reason: "exited".into(),
        };
        peer.event(closed).await;
        peer.until_closed().await;
    })
    .await;
    let client = Client::connect(&server.url).await.unwrap();
    let mut one = client.attach(attach_request("s-1", 80, 24)).await.unwrap();
    let mut two = client.attach(attach_request("s-1", 80, 24)).await.unwrap();
    one.wait_for(b"kept", WAIT).await.unwrap();
    client.detach(1).await.unwrap();
    assert!(matches!(
        one.next_frame(WAIT).await,
        Err(ClientError::ChannelEnded { channel: 1 })
    ));
    client
        .wait_event(|e| matches!(e, Event::SessionClosed { .. }), WAIT)
        .await
        .unwrap();
    assert!(matches!(
        two.next_frame(WAIT).await,
        Err(ClientError::ChannelEnded { channel: 2 })
    ));
    client.close().await.unwrap();
    server.finish().await;
}

#[tokio::test]
async fn input_and_raw_frames_reach_the_server() {
    let server = ScriptedServer::start(|mut peer| async move {
        let Some(Message::Binary(input)) = peer.recv().await else {
            panic!("no INPUT")
        };
        assert_eq!(
            decode_client_frame(&input),
            Ok(ClientFrame::Input {
                channel: 7,
                data: b"ls\r"
            })
        );
        assert_eq!(peer.recv().await, Some(Message::binary(vec![9, 9])));
        let bad_utf8 = peer.recv().await;
        assert!(
            bad_utf8.is_none(),
            "tungstenite rejects invalid UTF-8: {bad_utf8:?}"
        );
    })
    .await;
    let client = Client::connect(&server.url).await.unwrap();
    client.send_input(7, b"ls\r").await.unwrap();
    client.send_binary(vec![9, 9]).await.unwrap();
    client
        .send_text_bytes(vec![b'{', 0xff, b'}'])
        .await
        .unwrap();
    server.finish().await;
}

#[tokio::test]
async fn the_close_code_is_recorded() {
    let server = ScriptedServer::start(|mut peer| async move {
        let _ = peer.request().await;
        peer.close(4009, "message too large").await;
    })
    .await;
    let client = Client::connect(&server.url).await.unwrap();
    let err = client.metrics().await.unwrap_err();
    assert!(
        matches!(err, ClientError::Closed { code: 4009, .. }),
        "{err:?}"
    );
    assert_eq!(
        client.wait_closed(WAIT).await.unwrap(),
        (4009, "message too large".into())
    );
    assert_eq!(client.closed(), Some((4009, "message too large".into())));
    assert!(matches!(
        client.heartbeat().await,
        Err(ClientError::Closed { code: 4009, .. })
    ));
    assert!(matches!(
        client.next_event(WAIT).await,
        Err(ClientError::Closed { code: 4009, .. })
    ));
    server.finish().await;
}

#[tokio::test]
async fn a_client_close_is_normal() {
    let server = ScriptedServer::start(|mut peer| async move {
        let Some(Message::Close(Some(frame))) = peer.recv().await else {
            panic!("no close")
        };
        assert_eq!(u16::from(frame.code), 1000);
        assert!(peer.recv().await.is_none());
    })
    .await;
    let client = Client::connect(&server.url).await.unwrap();
    client.close().await.unwrap();
    assert_eq!(client.closed().map(|c| c.0), Some(1000));
    server.finish().await;
}

#[tokio::test]
async fn a_paused_client_reads_nothing_until_resumed() {
    let server = ScriptedServer::start(|mut peer| async move {
        peer.event(Event::ViewerLeft {
            session_id: "s-1".into(),
            viewers: 0,
        })
        .await;
        let metrics = peer.request().await;
        peer.ok(metrics.id, json!({"ok": true})).await;
    })
    .await;
    let client = std::sync::Arc::new(Client::connect_paused(&server.url).await.unwrap());
    let early = client.next_event(Duration::from_millis(200)).await;
    assert!(matches!(early, Err(ClientError::Timeout)));
    client.resume_reading();
    client.next_event(WAIT).await.unwrap();
    client.pause_reading();
    let asking = client.clone();
    let metrics = tokio::spawn(async move { asking.metrics().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !metrics.is_finished(),
        "a paused client must not see responses"
    );
    client.resume_reading();
    assert_eq!(metrics.await.unwrap().unwrap()["ok"], true);
    server.finish().await;
}

#[tokio::test]
async fn a_refused_upgrade_reports_the_status() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let (mut tcp, _) = listener.accept().await.unwrap();
        let _ = tcp
            .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
            .await;
    });
    let err = Client::connect(&url).await.err().unwrap();
    assert!(
        matches!(
            err,
            ClientError::Connect {
                status: Some(403),
                ..
            }
        ),
        "{err:?}"
    );
}
