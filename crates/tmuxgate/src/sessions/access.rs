//! Who may use a session: its owner and the users it is shared with, and how that is kept in
//! tmux (`@tmuxgate_owner`, `@tmuxgate_shares`) so it outlives the gateway like the session.
//!
//! tmux user options can be rewritten from inside a pane (any shell there can run `tmux`),
//! so what is read back is validated and anything malformed is dropped: a tampered entry can
//! only lose access, never name an invalid user. (A shell in a pane runs as the gateway's
//! Unix user; docs/security.md says what that means.)

use tmuxgate_protocol::request::AttachMode;
use tmuxgate_protocol::response::Share;

/// Whether `name` is a valid user name (the rule of [`crate::security::UserName`]).
pub fn is_user_name(name: &str) -> bool {
    name.parse::<crate::security::UserName>().is_ok()
}

/// The value stored in `@tmuxgate_shares`: `user:read,user:write`, sorted by user.
pub fn encode_shares(shares: &[Share]) -> String {
    let mut entries: Vec<String> = shares
        .iter()
        .map(|s| format!("{}:{}", s.user, mode_name(s.mode)))
        .collect();
    entries.sort();
    entries.join(",")
}

/// Reads `@tmuxgate_shares` back; malformed or duplicate entries are dropped.
pub fn decode_shares(value: &str) -> Vec<Share> {
    let mut shares: Vec<Share> = Vec::new();
    for entry in value.split(',').filter(|e| !e.is_empty()) {
        let Some((user, mode)) = entry.split_once(':') else {
            continue;
        };
        let mode = match mode {
            "read" => AttachMode::Read,
            "write" => AttachMode::Write,
            _ => continue,
        };
        if is_user_name(user) && !shares.iter().any(|s| s.user == user) {
            shares.push(Share {
                user: user.to_owned(),
                mode,
            });
        }
    }
    shares
}

/// Sets `user`'s share to `mode`; returns the mode it had.
pub fn set_share(shares: &mut Vec<Share>, user: &str, mode: AttachMode) -> Option<AttachMode> {
    match shares.iter_mut().find(|s| s.user == user) {
        Some(share) => Some(std::mem::replace(&mut share.mode, mode)),
        None => {
            shares.push(Share {
                user: user.to_owned(),
                mode,
            });
            None
        }
    }
}

/// Removes `user`'s share; returns the mode it had.
pub fn remove_share(shares: &mut Vec<Share>, user: &str) -> Option<AttachMode> {
    let at = shares.iter().position(|s| s.user == user)?;
    Some(shares.remove(at).mode)
}

/// The access `user` has to a session through ownership or a share (roles aside).
pub fn grant(owner: Option<&str>, shares: &[Share], user: &str) -> Option<AttachMode> {
    if owner == Some(user) {
        return Some(AttachMode::Write);
    }
    shares.iter().find(|s| s.user == user).map(|s| s.mode)
}

pub fn mode_name(mode: AttachMode) -> &'static str {
    match mode {
        AttachMode::Read => "read",
        AttachMode::Write => "write",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(user: &str, mode: AttachMode) -> Share {
        Share {
            user: user.into(),
            mode,
        }
    }

    #[test]
    fn user_names() {
        for ok in ["ann", "_svc", "bob.smith", "a-1", &"a".repeat(32)] {
            assert!(is_user_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Ann",
            "1ann",
            "a b",
            "a:b",
            "a,b",
            "é",
            &"a".repeat(33),
            "-x",
        ] {
            assert!(!is_user_name(bad), "{bad}");
        }
    }

    #[test]
    fn shares_round_trip_sorted() {
        let shares = vec![
            share("zed", AttachMode::Read),
            share("ann", AttachMode::Write),
        ];
        let text = encode_shares(&shares);
        assert_eq!(text, "ann:write,zed:read");
        let mut back = decode_shares(&text);
        back.sort_by(|a, b| a.user.cmp(&b.user));
        assert_eq!(
            back,
            vec![
                share("ann", AttachMode::Write),
                share("zed", AttachMode::Read)
            ]
        );
    }

    #[test]
    fn tampered_values_only_lose_entries() {
        let text = "ann:write,Root:write,bob:admin,bob:read,bob:write,,carl,:read,dan:read:x";
        assert_eq!(
            decode_shares(text),
            vec![
                share("ann", AttachMode::Write),
                share("bob", AttachMode::Read)
            ]
        );
    }

    #[test]
    fn grants_follow_owner_then_shares() {
        let mut shares = Vec::new();
        assert_eq!(set_share(&mut shares, "bob", AttachMode::Read), None);
        assert_eq!(grant(Some("ann"), &shares, "ann"), Some(AttachMode::Write));
        assert_eq!(grant(Some("ann"), &shares, "bob"), Some(AttachMode::Read));
        assert_eq!(grant(Some("ann"), &shares, "carl"), None);
        assert_eq!(grant(None, &shares, "ann"), None);
        assert_eq!(
            set_share(&mut shares, "bob", AttachMode::Write),
            Some(AttachMode::Read)
        );
        assert_eq!(remove_share(&mut shares, "bob"), Some(AttachMode::Write));
        assert_eq!(remove_share(&mut shares, "bob"), None);
    }
}
