//! Unit and property tests for `notification.rs`.

use super::*;
use proptest::prelude::*;

fn parse(line: &[u8]) -> Option<Notification> {
    Notification::parse(line)
}

#[test]
fn output_is_decoded() {
    assert_eq!(
        parse(b"%output %3 a\\015\\012\\134\xff"),
        Some(Notification::Output {
            pane: PaneId(3),
            data: Bytes::from_static(b"a\r\n\\\xff")
        })
    );
    assert_eq!(
        parse(b"%output %3 "),
        Some(Notification::Output {
            pane: PaneId(3),
            data: Bytes::new()
        })
    );
}

#[test]
fn extended_output_skips_to_the_lone_colon() {
    assert_eq!(
        parse(b"%extended-output %2 1234 x : a : b"),
        Some(Notification::Output {
            pane: PaneId(2),
            data: Bytes::from_static(b"a : b")
        })
    );
    assert_eq!(parse(b"%extended-output %2 1234"), None);
}

#[test]
fn session_and_window_events() {
    assert_eq!(
        parse(b"%session-changed $1 my name\xff"),
        Some(Notification::SessionChanged {
            session: SessionId(1),
            name: b"my name\xff".to_vec()
        })
    );
    assert_eq!(
        parse(b"%session-window-changed $1 @2"),
        Some(Notification::SessionWindowChanged {
            session: SessionId(1),
            window: WindowId(2)
        })
    );
    assert_eq!(
        parse(b"%window-add @7"),
        Some(Notification::WindowAdd {
            window: WindowId(7)
        })
    );
    assert_eq!(
        parse(b"%window-pane-changed @7 %9"),
        Some(Notification::WindowPaneChanged {
            window: WindowId(7),
            pane: PaneId(9)
        })
    );
    assert_eq!(
        parse(b"%layout-change @0 b25d,80x24,0,0,0 b25d,80x24,0,0,0 *"),
        Some(Notification::LayoutChange {
            window: WindowId(0),
            layout: b"b25d,80x24,0,0,0".to_vec(),
            visible_layout: b"b25d,80x24,0,0,0".to_vec(),
            flags: b"*".to_vec(),
        })
    );
    assert_eq!(
        parse(b"%client-session-changed /dev/pts/1 $2 s"),
        Some(Notification::ClientSessionChanged {
            client: b"/dev/pts/1".to_vec(),
            session: SessionId(2),
            name: b"s".to_vec()
        })
    );
}

#[test]
fn flow_control_and_exit() {
    assert_eq!(
        parse(b"%pause %4"),
        Some(Notification::Pause { pane: PaneId(4) })
    );
    assert_eq!(
        parse(b"%continue %4"),
        Some(Notification::Continue { pane: PaneId(4) })
    );
    assert_eq!(parse(b"%exit"), Some(Notification::Exit { reason: None }));
    assert_eq!(
        parse(b"%exit server exited unexpectedly"),
        Some(Notification::Exit {
            reason: Some(b"server exited unexpectedly".to_vec())
        })
    );
}

#[test]
fn unknown_and_malformed_are_none() {
    for line in [
        &b"%unknown @1"[..],
        b"%window-add",
        b"%window-add %1",
        b"%output",
        b"%output 3 x",
        b"%pause",
        b"%session-changed 1 x",
        b"%layout-change @1",
        b"%client-detached",
        b"plain text",
        b"",
    ] {
        assert_eq!(parse(line), None, "{}", String::from_utf8_lossy(line));
    }
}

proptest! {
    #[test]
    fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse(&line);
    }

    #[test]
    fn never_panics_on_near_misses(
        kind in prop_oneof![
            Just("%output"), Just("%extended-output"), Just("%layout-change"),
            Just("%session-changed"), Just("%window-pane-changed"), Just("%exit"),
            Just("%client-session-changed"), Just("%subscription-changed"),
        ],
        rest in "[%@$: 0-9a-z\\\\]{0,30}",
    ) {
        let _ = parse(format!("{kind} {rest}").as_bytes());
    }
}
