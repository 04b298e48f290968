use super::*;
use proptest::prelude::*;

const NONCE: &str = "n0nce";

fn mark(body: &str) -> Vec<u8> {
    format!("\x1b]133;{body};tg={NONCE}\x07").into_bytes()
}

/// A prompt, a command `echo hi` and its output, and the next prompt, as bash prints them.
fn session() -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(mark("A"));
    out.extend(b"$ ");
    out.extend(mark("B"));
    out.extend(b"echo hi\r\n\x1b[?2004l\r");
    out.extend(mark("C"));
    out.extend(b"hi\r\n");
    out.extend(mark("D;7"));
    out.extend(mark("A"));
    out.extend(b"$ ");
    out.extend(mark("B"));
    out
}

fn claimed() -> Scanner {
    let mut s = Scanner::default();
    s.marks_mut().claim = Some(Claim {
        command: 1,
        ..Claim::default()
    });
    s
}

#[test]
fn follows_a_command_from_prompt_to_prompt() {
    let data = session();
    let mut s = claimed();
    assert!(s.scan(NONCE, &data, 1000));
    let m = s.marks();
    assert_eq!(m.state, ShellState::Prompt);
    assert_eq!(m.commands, 1);
    let claim = m.claim.unwrap();
    let (start, (end, status)) = (claim.start.unwrap(), claim.done.unwrap());
    assert_eq!(status, 7);
    assert_eq!(
        &data[(start - 1000) as usize..(end - 1000) as usize],
        b"hi\r\n"
    );
}

#[test]
fn states_in_order() {
    let mut s = Scanner::default();
    assert_eq!(s.marks().state, ShellState::Unknown);
    for (body, state) in [
        ("A", ShellState::PromptStart),
        ("B", ShellState::Prompt),
        ("C", ShellState::Running),
        ("D;0", ShellState::Finished),
    ] {
        s.scan(NONCE, &mark(body), 0);
        assert_eq!(s.marks().state, state, "after {body}");
    }
    s.scan(NONCE, &mark("P;n=12"), 0);
    assert_eq!((s.marks().probes, s.marks().probe_len), (1, 12));
}

#[test]
fn marks_without_the_nonce_or_malformed_are_ignored() {
    let mut s = Scanner::default();
    for fake in [
        b"\x1b]133;B\x07".to_vec(),
        b"\x1b]133;B;tg=other\x07".to_vec(),
        b"\x1b]133;B;tg=n0nce2\x07".to_vec(),
        b"\x1b]133;D;x;tg=n0nce\x07".to_vec(),
        b"\x1b]133;Q;tg=n0nce\x07".to_vec(),
        b"\x1b]133;P;12;tg=n0nce\x07".to_vec(),
        b"\x1b]1330;B;tg=n0nce\x07".to_vec(),
        b"\x1b]133;B;tg=n0nce\x1bX".to_vec(),
    ] {
        assert!(!s.scan(NONCE, &fake, 0), "{fake:?}");
    }
    assert_eq!(s.marks(), Marks::default());
}

#[test]
fn st_terminator_and_an_unterminated_giant_are_handled() {
    let mut s = Scanner::default();
    assert!(s.scan(NONCE, b"\x1b]133;B;tg=n0nce\x1b\\", 0));
    let mut giant = b"\x1b]133;".to_vec();
    giant.extend(std::iter::repeat_n(b'x', 10_000));
    assert!(!s.scan(NONCE, &giant, 0));
    assert!(s.carry.is_empty(), "an over-long sequence is not carried");
}

#[test]
fn a_claim_for_another_command_records_nothing() {
    let mut s = Scanner::default();
    s.marks_mut().claim = Some(Claim {
        command: 2,
        ..Claim::default()
    });
    s.scan(NONCE, &session(), 0);
    assert_eq!(s.marks().claim.unwrap().start, None);
    // A `D` after an empty line (no `C`) finishes nothing.
    let mut s = claimed();
    s.scan(NONCE, &[mark("B"), mark("D;0")].concat(), 0);
    assert_eq!(s.marks().claim.unwrap().done, None);
}

proptest! {
    /// However tmux cuts the output into reads, the scanner sees the same marks at the
    /// same offsets.
    #[test]
    fn any_split_gives_the_same_result(cuts in proptest::collection::vec(0usize..200, 0..12)) {
        let data = session();
        let mut whole = claimed();
        whole.scan(NONCE, &data, 50);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut split = claimed();
        let mut from = 0;
        for cut in cuts.into_iter().chain([data.len()]) {
            split.scan(NONCE, &data[from..cut], 50 + from as u64);
            from = cut;
        }
        prop_assert_eq!(split.marks(), whole.marks());
    }

    /// Arbitrary bytes never panic the scanner and keep its carry bounded.
    #[test]
    fn arbitrary_output_is_harmless(chunks in proptest::collection::vec(
        proptest::collection::vec(prop_oneof![Just(0x1bu8), Just(b']'), Just(b';'), any::<u8>()], 0..64), 0..16)) {
        let mut s = Scanner::default();
        let mut at = 0;
        for c in &chunks {
            s.scan(NONCE, c, at);
            at += c.len() as u64;
            prop_assert!(s.carry.len() <= MAX_SEQUENCE_BYTES);
        }
    }
}

/// Found by fuzzing: a read ending with the `ESC` of a mark, right after a sequence that
/// looked like a mark and was not, lost that mark (the carried bytes were only tried from
/// their first byte).
#[test]
fn a_mark_whose_escape_ends_a_read_after_a_false_start_is_found() {
    let mut bytes = b"\x1b]133;C;;D;0;tg=01".to_vec();
    let cut = bytes.len() + 1;
    bytes.extend(mark("C"));
    let mut whole = Scanner::default();
    whole.scan(NONCE, &bytes, 0);
    let mut split = Scanner::default();
    split.scan(NONCE, &bytes[..cut], 0);
    split.scan(NONCE, &bytes[cut..], cut as u64);
    assert_eq!(whole.marks().commands, 1);
    assert_eq!(split.marks(), whole.marks());
}
