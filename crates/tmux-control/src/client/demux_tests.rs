//! Unit and property tests for `demux.rs`.

use super::*;
use crate::PaneId;
use proptest::prelude::*;

fn feed(d: &mut Demux, line: &str) -> Result<Event, String> {
    d.feed(line.as_bytes().to_vec())
}

fn closed(lines: &[&str], error: bool) -> Event {
    let lines = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
    Event::Closed {
        ours: true,
        block: Block { lines, error },
    }
}

#[test]
fn collects_a_block() {
    let mut d = Demux::default();
    assert_eq!(
        feed(&mut d, "%begin 10 5 1"),
        Ok(Event::Opened { ours: true })
    );
    assert_eq!(feed(&mut d, "line"), Ok(Event::Nothing));
    assert_eq!(feed(&mut d, ""), Ok(Event::Nothing));
    assert_eq!(
        feed(&mut d, "%end 10 5 1"),
        Ok(closed(&["line", ""], false))
    );
    assert_eq!(
        feed(&mut d, "%begin 10 6 1"),
        Ok(Event::Opened { ours: true })
    );
    assert_eq!(feed(&mut d, "%error 10 6 1"), Ok(closed(&[], true)));
}

#[test]
fn forged_guards_inside_a_block_are_content() {
    let mut d = Demux::default();
    feed(&mut d, "%begin 10 5 1").unwrap();
    for forged in [
        "%end 1 2 1",
        "%end 10 5 0",
        "%error 11 5 1",
        "%begin 10 6 1",
        "%output %1 x",
        "%exit",
    ] {
        assert_eq!(feed(&mut d, forged), Ok(Event::Nothing), "{forged}");
    }
    let expected = [
        "%end 1 2 1",
        "%end 10 5 0",
        "%error 11 5 1",
        "%begin 10 6 1",
        "%output %1 x",
        "%exit",
    ];
    assert_eq!(feed(&mut d, "%end 10 5 1"), Ok(closed(&expected, false)));
}

#[test]
fn flow_control_lines_are_forwarded_only_when_asked() {
    let mut d = Demux::default();
    feed(&mut d, "%begin 10 5 1").unwrap();
    assert_eq!(feed(&mut d, "%pause %1"), Ok(Event::Nothing));
    feed(&mut d, "%end 10 5 1").unwrap();
    feed(&mut d, "%begin 10 6 1").unwrap();
    d.forward_flow_control();
    let n = Notification::Continue { pane: PaneId(1) };
    assert_eq!(feed(&mut d, "%continue %1"), Ok(Event::Notification(n)));
    assert_eq!(feed(&mut d, "%output %1 x"), Ok(Event::Nothing));
    assert_eq!(
        feed(&mut d, "%end 10 6 1"),
        Ok(closed(&["%output %1 x"], false))
    );
}

#[test]
fn outside_blocks() {
    let mut d = Demux::default();
    assert_eq!(
        feed(&mut d, "%window-add @1"),
        Ok(Event::Notification(Notification::WindowAdd {
            window: crate::WindowId(1)
        }))
    );
    assert_eq!(feed(&mut d, "%unknown"), Ok(Event::Nothing));
    assert_eq!(feed(&mut d, "stray text"), Ok(Event::Nothing));
    assert!(feed(&mut d, "%end 1 2 1").is_err());
    assert!(feed(&mut d, "%error 1 2 1").is_err());
}

#[test]
fn numbers_must_increase() {
    let mut d = Demux::default();
    feed(&mut d, "%begin 10 5 0").unwrap();
    feed(&mut d, "%end 10 5 0").unwrap();
    assert!(feed(&mut d, "%begin 10 5 1").is_err());
    let mut d = Demux::default();
    feed(&mut d, "%begin 10 4294967295 1").unwrap();
    feed(&mut d, "%end 10 4294967295 1").unwrap();
    assert_eq!(
        feed(&mut d, "%begin 10 0 1"),
        Ok(Event::Opened { ours: true })
    );
}

proptest! {
    #[test]
    fn never_panics(lines in proptest::collection::vec(
        prop_oneof![
            "%(begin|end|error) [0-9]{1,3} [0-9]{1,3} [01]",
            "%(pause|continue|output) %[0-9] ?[a-z]*",
            "[ -~]{0,20}",
        ],
        0..40,
    )) {
        let mut d = Demux::default();
        for (i, line) in lines.iter().enumerate() {
            if i % 7 == 3 {
                d.forward_flow_control();
            }
            let _ = d.feed(line.as_bytes().to_vec());
        }
    }
}
