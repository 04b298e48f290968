//! Hostile and malformed input, each answered as docs/protocol.md says: error responses that
//! keep the connection, close codes for frame-level violations, and a gateway that keeps
//! serving. Also the operator port: `/health` JSON and strictly valid Prometheus `/metrics`.

mod common;

use std::collections::{HashMap, HashSet};

use common::{STEP, TestServer, eventually, http_get};
use serde_json::Value;
use tmuxgate_client::protocol::request::RequestId;
use tmuxgate_client::protocol::response::ResponseBody;
use tmuxgate_client::protocol::{CloseCode, ErrorCode};
use tmuxgate_client::{Client, Message};

/// A small limit so oversized messages stay cheap.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Sends `text` as is and returns the response it gets.
async fn raw(client: &Client, text: &str) -> ResponseBody {
    client.send_text(text).await.expect("send");
    client.next_raw_response(STEP).await.expect("a response")
}

/// Asserts a failed response with `code` and `id`.
fn assert_error(body: &ResponseBody, code: ErrorCode, id: Option<RequestId>, what: &str) {
    assert!(!body.success, "{what}: succeeded: {body:?}");
    assert_eq!(body.error_code, Some(code), "{what}: {body:?}");
    assert_eq!(body.id, id, "{what}: wrong id");
}

fn id(s: &str) -> Option<RequestId> {
    Some(RequestId::String(s.into()))
}

/// Sends `message` on a fresh connection and returns the close code it gets; then checks
/// that the gateway still serves a new client.
async fn close_code_for(server: &TestServer, message: Message) -> u16 {
    let client = server.client().await;
    // Errors are fine: the gateway may close before the whole message is written.
    let _ = client.send(message).await;
    let (code, _) = client
        .wait_closed(STEP)
        .await
        .expect("the gateway closes the connection");
    server
        .client()
        .await
        .heartbeat()
        .await
        .expect("the gateway still serves new clients");
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_invalid_request_and_keep_the_connection() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let nested = "[".repeat(10_000);
    let deep_data = format!(
        r#"{{"type":"heartbeat","data":{{"timestamp":{}{}}}}}"#,
        nested,
        "]".repeat(10_000)
    );
    let unreadable = [
        "{not json",
        "",
        "null",
        "42",
        "\"heartbeat\"",
        "[]",
        r#"["heartbeat", null, null]"#,
        r#"{"type":5}"#,
        r#"{"type":"heartbeat","id":{"a":1}}"#,
        r#"{"type":"heartbeat","id":[1]}"#,
        r#"{"type":"heartbeat","id":true}"#,
        nested.as_str(),
        deep_data.as_str(),
    ];
    for text in unreadable {
        let what = text.chars().take(40).collect::<String>();
        assert_error(
            &raw(&client, text).await,
            ErrorCode::InvalidRequest,
            None,
            &what,
        );
    }
    let long_id = "x".repeat(129);
    let huge_id = "x".repeat(60_000);
    for id_text in [&long_id, &huge_id] {
        let text = format!(r#"{{"type":"heartbeat","id":"{id_text}"}}"#);
        assert_error(
            &raw(&client, &text).await,
            ErrorCode::InvalidRequest,
            None,
            "long id",
        );
    }
    let max_id = "y".repeat(128);
    let body = raw(
        &client,
        &format!(r#"{{"type":"heartbeat","id":"{max_id}"}}"#),
    )
    .await;
    assert!(
        body.success && body.id == id(&max_id),
        "128-byte id refused: {body:?}"
    );
    // Readable envelope, bad content: the id is echoed.
    assert_error(
        &raw(&client, r#"{"id":"m1"}"#).await,
        ErrorCode::InvalidRequest,
        id("m1"),
        "no type",
    );
    let array_data = r#"{"type":"session-destroy","id":"m2","data":["s_0"]}"#;
    assert_error(
        &raw(&client, array_data).await,
        ErrorCode::InvalidRequest,
        id("m2"),
        "array data",
    );
    client.heartbeat().await.expect("the connection survives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_types_and_mistyped_fields_echo_the_id() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let body = raw(&client, r#"{"type":"session-explode","id":"u1","data":{}}"#).await;
    assert_error(&body, ErrorCode::UnknownType, id("u1"), "unknown type");
    let body = raw(&client, r#"{"type":"nope","id":900001}"#).await;
    assert_error(
        &body,
        ErrorCode::UnknownType,
        Some(RequestId::Number(900001.into())),
        "numeric id",
    );

    let mistyped = [
        r#"{"type":"session-resize","id":"w","data":{"channel":"x","cols":80,"rows":24}}"#,
        r#"{"type":"session-resize","id":"w","data":{"channel":1,"cols":-1,"rows":24}}"#,
        r#"{"type":"session-resize","id":"w","data":{"channel":1,"cols":99999999,"rows":24}}"#,
        r#"{"type":"session-create","id":"w","data":{"name":"ok","options":{"cols":-1}}}"#,
        r#"{"type":"session-create","id":"w","data":{"name":"ok","options":{"cols":99999999}}}"#,
        r#"{"type":"session-create","id":"w","data":{"name":"ok","options":{"cols":1}}}"#,
        r#"{"type":"session-create","id":"w","data":{"name":"ok","options":{"rows":1001}}}"#,
        r#"{"type":"session-create","id":"w","data":{"name":7}}"#,
        r#"{"type":"session-create","id":"w","data":{}}"#,
        r#"{"type":"session-attach","id":"w","data":{"sessionId":"s","mode":"admin"}}"#,
        r#"{"type":"session-attach","id":"w","data":{"sessionId":"s","resumeFrom":-5}}"#,
        r#"{"type":"session-detach","id":"w","data":{"channel":1.5}}"#,
        r#"{"type":"terminal-input","id":"w","data":{"channel":1,"data":5}}"#,
        r#"{"type":"heartbeat","id":"w","data":"x"}"#,
    ];
    for text in mistyped {
        assert_error(
            &raw(&client, text).await,
            ErrorCode::InvalidRequest,
            id("w"),
            text,
        );
    }
    // Values checked against a session that exists (an unknown session is `not_found` first).
    let session = client
        .create_session("target", 80, 24)
        .await
        .expect("create")
        .session_id;
    for data in [
        r#""target":"$1""#,
        r#""target":"1""#,
        r#""cols":1,"rows":24"#,
        r#""cols":80,"rows":1001"#,
    ] {
        let text = format!(
            r#"{{"type":"session-attach","id":"w","data":{{"sessionId":"{session}",{data}}}}}"#
        );
        assert_error(
            &raw(&client, &text).await,
            ErrorCode::InvalidRequest,
            id("w"),
            &text,
        );
    }
    client.heartbeat().await.expect("the connection survives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_violations_close_with_their_codes() {
    let server = TestServer::start().await;
    let input =
        |channel: u32| tmuxgate_client::protocol::frame::encode_input(channel, b"x").to_vec();
    let cases: [(&str, Vec<u8>, CloseCode); 5] = [
        (
            "INPUT for an unknown channel",
            input(7),
            CloseCode::UnknownChannel,
        ),
        ("empty binary frame", vec![], CloseCode::BadFrame),
        (
            "truncated INPUT header",
            vec![0x02, 0, 0],
            CloseCode::BadFrame,
        ),
        (
            "unknown kind",
            vec![0x09, 0, 0, 0, 1, b'x'],
            CloseCode::BadFrame,
        ),
        (
            "server kind OUTPUT",
            [&[0x01][..], &[0; 12], b"x"].concat(),
            CloseCode::BadFrame,
        ),
    ];
    for (what, frame, expected) in cases {
        let code = close_code_for(&server, Message::binary(frame)).await;
        assert_eq!(code, expected.code(), "{what}");
    }

    let client = server.client().await;
    client
        .send_text_bytes(b"{\"type\":\"heartbeat\",\"x\":\"\xff\xfe\"}".to_vec())
        .await
        .expect("send");
    let (code, _) = client.wait_closed(STEP).await.expect("closed");
    assert_eq!(code, CloseCode::InvalidUtf8.code(), "invalid UTF-8");
    server
        .client()
        .await
        .heartbeat()
        .await
        .expect("the gateway still serves new clients");
}

/// Input racing the end of its channel (a detach, or a destroy by someone else) is dropped:
/// only a channel this connection never had closes it with 4001.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_for_an_ended_channel_is_dropped() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let session = client
        .create_session("ended", 80, 24)
        .await
        .expect("create");
    let attached = client
        .attach(tmuxgate_client::attach_request(&session.session_id, 80, 24))
        .await
        .expect("attach");
    client.detach(attached.channel).await.expect("detach");
    client
        .send_input(attached.channel, b"late keys")
        .await
        .expect("send");
    client
        .heartbeat()
        .await
        .expect("the connection survives input for its ended channel");
    client
        .send_input(attached.channel + 1, b"x")
        .await
        .expect("send");
    let (code, _) = client.wait_closed(STEP).await.expect("closed");
    assert_eq!(
        code,
        CloseCode::UnknownChannel.code(),
        "a channel never attached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_close_with_4009() {
    let server = TestServer::start_with(|c| c.max_message_bytes = MAX_MESSAGE_BYTES).await;
    let client = server.client().await;
    // A request of exactly the limit is fine (unknown fields are ignored).
    let head = r#"{"type":"heartbeat","id":"big","pad":""#;
    let pad = "p".repeat(MAX_MESSAGE_BYTES - head.len() - 2);
    let at_limit = format!("{head}{pad}\"}}");
    assert_eq!(at_limit.len(), MAX_MESSAGE_BYTES);
    assert!(
        raw(&client, &at_limit).await.success,
        "a message at the limit was refused"
    );
    // A binary frame at the limit is decoded (and then refused for its unknown channel).
    let frame =
        tmuxgate_client::protocol::frame::encode_input(7, &vec![b'x'; MAX_MESSAGE_BYTES - 5]);
    assert_eq!(frame.len(), MAX_MESSAGE_BYTES);
    let code = close_code_for(&server, Message::Binary(frame)).await;
    assert_eq!(
        code,
        CloseCode::UnknownChannel.code(),
        "binary frame at the limit"
    );

    let over_text = format!("{head}{pad}pp\"}}");
    let code = close_code_for(&server, Message::text(over_text)).await;
    assert_eq!(
        code,
        CloseCode::MessageTooLarge.code(),
        "text over the limit"
    );
    let over_binary = vec![0x02; MAX_MESSAGE_BYTES + 1];
    let code = close_code_for(&server, Message::binary(over_binary)).await;
    assert_eq!(
        code,
        CloseCode::MessageTooLarge.code(),
        "binary over the limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_status_as_json() {
    let server = TestServer::start().await;
    let _client = server.client().await;
    // The client's handshake completes when the 101 is sent, a moment before the gateway's
    // connection task starts and counts itself.
    eventually("the connection to be counted", || {
        (server.handle.status().connections == 1).then_some(())
    })
    .await;
    let (status, body) = http_get(server.health_addr, "/health").await;
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["uptime"].is_u64(), "{health}");
    assert_eq!(health["connections"], 1);
    assert_eq!(health["sessions"], 0);
    assert_eq!(health["backends"][0]["id"], "tmux-0");
    assert_eq!(health["backends"][0]["state"], "up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_valid_prometheus_text() {
    let server = TestServer::start().await;
    let client = server.client().await;
    client.heartbeat().await.expect("heartbeat");
    let _ = raw(&client, "{not json").await;
    let (status, body) = http_get(server.health_addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    let families = prometheus::parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    for name in [
        "tmuxgate_connections",
        "tmuxgate_requests_total",
        "tmuxgate_request_duration_seconds",
        "tmuxgate_bytes_sent_total",
        "tmuxgate_sessions",
        "tmuxgate_backend_command_duration_seconds",
    ] {
        assert!(families.contains_key(name), "no family {name}");
    }
    let samples = prometheus::samples(&body);
    assert!(
        samples
            .iter()
            .any(|(n, _, _)| n == "tmuxgate_request_duration_seconds_bucket")
    );
    let heartbeats = samples
        .iter()
        .find(|(n, l, _)| n == "tmuxgate_requests_total" && l == "type=\"heartbeat\"");
    assert_eq!(heartbeats.map(|s| s.2), Some(1.0));
    let connections = samples.iter().find(|(n, _, _)| n == "tmuxgate_connections");
    assert_eq!(connections.map(|s| s.2), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_disabled() {
    let server = TestServer::start_with(|c| c.enable_metrics = false).await;
    let (status, _) = http_get(server.health_addr, "/metrics").await;
    assert_eq!(status, 404);
    let (status, _) = http_get(server.health_addr, "/health").await;
    assert_eq!(status, 200);
    server
        .client()
        .await
        .metrics()
        .await
        .expect("the `metrics` request is always answered");
}

/// A strict reader of the Prometheus text exposition format (0.0.4), enough to reject
/// anything a scraper would.
mod prometheus {
    use super::*;

    /// A sample: metric name, label text (without braces), value.
    pub type Sample = (String, String, f64);

    /// Checks `text`; returns each family's TYPE.
    pub fn parse(text: &str) -> Result<HashMap<String, String>, String> {
        let (mut help, mut types) = (HashSet::new(), HashMap::new());
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap_or_default();
                check_name(name)?;
                if !help.insert(name.to_string()) {
                    return Err(format!("second HELP for {name}"));
                }
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest
                    .split_once(' ')
                    .ok_or(format!("bad TYPE line {line:?}"))?;
                check_name(name)?;
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                    return Err(format!("bad type {kind:?}"));
                }
                if types.insert(name.to_string(), kind.to_string()).is_some() {
                    return Err(format!("second TYPE for {name}"));
                }
            } else if line.starts_with('#') || line.is_empty() {
                continue;
            } else {
                let (name, _, _) = sample(line)?;
                let family =
                    family_of(&name, &types).ok_or(format!("sample {name} before its TYPE"))?;
                if !help.contains(&family) {
                    return Err(format!("sample {name} before HELP of {family}"));
                }
            }
        }
        for (name, kind) in &types {
            if kind == "histogram" {
                check_histogram(text, name)?;
            }
        }
        Ok(types)
    }

    /// Every sample line of `text` (call after [`parse`] succeeded).
    pub fn samples(text: &str) -> Vec<Sample> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| sample(l).ok())
            .collect()
    }

    fn sample(line: &str) -> Result<Sample, String> {
        let (series, value) = line
            .rsplit_once(' ')
            .ok_or(format!("no value in {line:?}"))?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().map_err(|_| format!("bad value in {line:?}"))?,
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (
                name,
                rest.strip_suffix('}')
                    .ok_or(format!("unclosed labels in {line:?}"))?,
            ),
            None => (series, ""),
        };
        check_name(name)?;
        check_labels(labels).map_err(|e| format!("{e} in {line:?}"))?;
        Ok((name.to_string(), labels.to_string(), value))
    }

    fn family_of(name: &str, types: &HashMap<String, String>) -> Option<String> {
        if types.contains_key(name) {
            return Some(name.to_string());
        }
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))?;
        matches!(
            types.get(base).map(String::as_str),
            Some("histogram" | "summary")
        )
        .then(|| base.to_string())
    }

    fn check_name(name: &str) -> Result<(), String> {
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
        if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            Ok(())
        } else {
            Err(format!("invalid metric name {name:?}"))
        }
    }

    fn check_labels(labels: &str) -> Result<(), String> {
        if labels.is_empty() {
            return Ok(());
        }
        for pair in labels.split(',') {
            let (key, value) = pair.split_once('=').ok_or("label without '='")?;
            check_name(key).map_err(|_| format!("invalid label name {key:?}"))?;
            let inner = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or("unquoted label value")?;
            if inner.contains(['"', '\\', '\n']) {
                return Err("label value needs escaping".into());
            }
        }
        Ok(())
    }

    /// Buckets are cumulative per label set and end with `+Inf` equal to `_count`.
    fn check_histogram(text: &str, name: &str) -> Result<(), String> {
        let all = samples(text);
        let bucket = format!("{name}_bucket");
        let mut series: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
        for (n, labels, value) in all.iter().filter(|(n, _, _)| *n == bucket) {
            let (rest, le) = split_le(labels).ok_or(format!("{n} without le"))?;
            series.entry(rest).or_default().push((le, *value));
        }
        if series.is_empty() {
            return Err(format!("histogram {name} has no buckets"));
        }
        for (labels, buckets) in series {
            let les: Vec<f64> = buckets.iter().map(|b| b.0).collect();
            if !les.windows(2).all(|w| w[0] < w[1]) || les.last() != Some(&f64::INFINITY) {
                return Err(format!(
                    "{name}{{{labels}}}: bounds {les:?} not increasing to +Inf"
                ));
            }
            if !buckets.windows(2).all(|w| w[0].1 <= w[1].1) {
                return Err(format!("{name}{{{labels}}}: buckets not cumulative"));
            }
            let count = all
                .iter()
                .find(|(n, l, _)| *n == format!("{name}_count") && *l == labels);
            let inf = buckets.last().map(|b| b.1);
            if count.map(|c| c.2) != inf {
                return Err(format!(
                    "{name}{{{labels}}}: +Inf {inf:?} != _count {count:?}"
                ));
            }
            if !all
                .iter()
                .any(|(n, l, _)| *n == format!("{name}_sum") && *l == labels)
            {
                return Err(format!("{name}{{{labels}}}: no _sum"));
            }
        }
        Ok(())
    }

    /// Splits the `le` label off a label text: (the other labels, the bound).
    fn split_le(labels: &str) -> Option<(String, f64)> {
        let mut rest = Vec::new();
        let mut le = None;
        for pair in labels.split(',') {
            match pair.strip_prefix("le=\"").and_then(|v| v.strip_suffix('"')) {
                Some("+Inf") => le = Some(f64::INFINITY),
                Some(v) => le = Some(v.parse().ok()?),
                None => rest.push(pair),
            }
        }
        Some((rest.join(","), le?))
    }
}

/// Until authentication is served, its requests are refused plainly, and a password sent
/// anyway is never echoed back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_requests_are_refused_while_authentication_is_off() {
    let server = TestServer::start().await;
    let client = server.client().await;
    for text in [
        r#"{"type":"auth","id":"a","data":{"username":"ann","password":"hunter2-secret"}}"#,
        r#"{"type":"auth","id":"a","data":{"token":["hunter2-secret"]}}"#,
        r#"{"type":"session-share","id":"a","data":{"sessionId":"x","user":"bob","mode":"read"}}"#,
        r#"{"type":"session-unshare","id":"a","data":{"sessionId":"x","user":"bob"}}"#,
    ] {
        let body = raw(&client, text).await;
        assert_error(&body, ErrorCode::InvalidRequest, id("a"), text);
        let message = body.error.unwrap_or_default();
        assert!(!message.contains("hunter2"), "{text}: {message}");
    }
    client.heartbeat().await.expect("the connection survives");
}
