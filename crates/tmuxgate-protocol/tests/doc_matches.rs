//! Checks that `docs/protocol.md` names every request type, event, error code and close code
//! this crate defines, and that its worked example decodes with this crate's types.

use tmuxgate_protocol::{CloseCode, ErrorCode, Event, Request, ServerMessage, decode_request};

fn spec() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Names that the spec does not mention in backticks (`name`).
fn missing<'a>(spec: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    names
        .into_iter()
        .filter(|name| !spec.contains(&format!("`{name}`")))
        .collect()
}

#[test]
fn every_request_type_is_documented() {
    assert_eq!(missing(&spec(), Request::TYPES), Vec::<&str>::new());
}

#[test]
fn every_event_is_documented() {
    assert_eq!(missing(&spec(), Event::NAMES), Vec::<&str>::new());
}

#[test]
fn every_error_code_is_documented() {
    let codes = ErrorCode::ALL.map(ErrorCode::as_str);
    assert_eq!(missing(&spec(), codes), Vec::<&str>::new());
}

#[test]
fn every_close_code_is_documented() {
    let spec = spec();
    let undocumented: Vec<u16> = CloseCode::ALL
        .iter()
        .map(|c| c.code())
        .filter(|code| !spec.contains(&format!("| `{code}` |")))
        .collect();
    assert_eq!(
        undocumented,
        Vec::<u16>::new(),
        "close codes missing from the close-code table"
    );
}

#[test]
fn the_worked_example_decodes() {
    let spec = spec();
    let mut checked = 0;
    for line in spec.lines() {
        if let Some(request) = line.strip_prefix("→ {\"").map(|rest| format!("{{\"{rest}")) {
            decode_request(&request).unwrap_or_else(|e| panic!("{request}: {e}"));
            checked += 1;
        } else if let Some(reply) = line.strip_prefix("← {") {
            let reply = format!("{{{reply}");
            serde_json::from_str::<ServerMessage>(&reply)
                .unwrap_or_else(|e| panic!("{reply}: {e}"));
            checked += 1;
        }
    }
    assert!(
        checked >= 10,
        "the worked example has only {checked} JSON lines"
    );
}
