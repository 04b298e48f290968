//! Who may do what to which session (docs/protocol.md, "Authentication"): a connection's
//! [`Principal`] against a session's owner and shares, through the role's permissions.
//!
//! One function decides everything a request can ask ([`Principal::reach`]), so the
//! request handlers never combine permissions themselves: they ask the [`Reach`] whether
//! to proceed, and a session the principal cannot see answers `not_found`, exactly like a
//! session that does not exist.

use tmuxgate_protocol::request::AttachMode;

use crate::security::{Authenticator, Identity, Permission};

/// Whom a connection acts for.
#[derive(Clone, Debug)]
pub enum Principal {
    /// Authentication is off (`ENABLE_AUTH=false`): everything is allowed and sessions
    /// have no owner.
    Anyone,
    /// A verified user.
    User(Box<Identity>, Authenticator),
}

/// What a principal may do with one session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// The session exists for them (listed, and named in requests without `not_found`).
    pub see: bool,
    /// Attach `read`.
    pub read: bool,
    /// Attach `write`.
    pub write: bool,
    /// `session-destroy`.
    pub destroy: bool,
    /// `session-share` and `session-unshare`.
    pub share: bool,
    /// The session's shares are shown to them.
    pub see_shares: bool,
}

impl Reach {
    /// The mode an attachment may have: `write` when allowed, else `read`, else none.
    pub fn mode(self) -> Option<AttachMode> {
        match (self.write, self.read) {
            (true, _) => Some(AttachMode::Write),
            (false, true) => Some(AttachMode::Read),
            (false, false) => None,
        }
    }
}

/// Which sessions `session-list` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// Every session.
    All,
    /// Those the principal owns or was given a share of.
    OwnAndShared,
}

impl Principal {
    /// The user name sessions record as owner; `None` when authentication is off.
    pub fn user(&self) -> Option<&str> {
        match self {
            Principal::Anyone => None,
            Principal::User(identity, _) => Some(identity.user.as_str()),
        }
    }

    /// Whether the role has `permission` (always, with authentication off).
    pub fn may(&self, permission: Permission) -> bool {
        match self {
            Principal::Anyone => true,
            Principal::User(identity, auth) => auth.allows(identity, permission),
        }
    }

    /// What `session-list` may show, or `None` when the role may not list at all.
    pub fn listing(&self) -> Option<Listing> {
        if self.may(Permission::SessionListAll) {
            Some(Listing::All)
        } else if self.may(Permission::SessionListOwn) {
            Some(Listing::OwnAndShared)
        } else {
            None
        }
    }

    /// What the principal may do with a session owned by `owner` that grants the principal
    /// `grant` through ownership or a share (as [`crate::sessions::access::grant`] says).
    pub fn reach(&self, owner: Option<&str>, grant: Option<AttachMode>) -> Reach {
        let Principal::User(identity, _) = self else {
            return Reach {
                see: true,
                read: true,
                write: true,
                destroy: true,
                share: true,
                see_shares: true,
            };
        };
        let owns = owner == Some(identity.user.as_str());
        let shared = if owns { None } else { grant };
        let may = |p| self.may(p);
        let read = may(Permission::AttachReadAny)
            || (owns && may(Permission::AttachReadOwn))
            || (shared.is_some() && may(Permission::AttachReadShared));
        let write = may(Permission::AttachWriteAny)
            || (owns && may(Permission::AttachWriteOwn))
            || (shared == Some(AttachMode::Write) && may(Permission::AttachWriteShared));
        let destroy = may(Permission::DestroyAny) || (owns && may(Permission::DestroyOwn));
        let share = may(Permission::ShareAny) || (owns && may(Permission::ShareOwn));
        let see = owns
            || shared.is_some()
            || may(Permission::SessionListAll)
            || read
            || write
            || destroy
            || share;
        Reach {
            see,
            read,
            write,
            destroy,
            share,
            see_shares: owns || may(Permission::ShareAny),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::config::Config;
    use crate::security::password::Hasher;
    use crate::security::{FileRevocations, Revocations};

    async fn principal(role: &str) -> (Principal, tempfile::TempDir) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_tests(tmp.path().join("sock"));
        config.data_dir = tmp.path().join("data");
        let revocations: std::sync::Arc<dyn Revocations> = std::sync::Arc::new(
            FileRevocations::open(&tmp.path().join("r.jsonl"), Duration::ZERO).expect("open"),
        );
        let (auth, _) = Authenticator::open_with(&config, revocations, Hasher::fast_for_tests())
            .await
            .expect("authenticator");
        let identity = Identity {
            user: "alice".parse().expect("name"),
            role: role.parse().expect("role"),
            jti: "j".into(),
            expires_at: SystemTime::now(),
            generation: 0,
        };
        (Principal::User(Box::new(identity), auth), tmp)
    }

    const W: Option<AttachMode> = Some(AttachMode::Write);
    const R: Option<AttachMode> = Some(AttachMode::Read);

    #[tokio::test]
    async fn an_operator_reaches_own_and_shared_sessions_only() {
        let (op, _tmp) = principal("operator").await;
        let own = op.reach(Some("alice"), W);
        assert_eq!(
            (own.see, own.write, own.destroy, own.share),
            (true, true, true, true)
        );
        let shared_read = op.reach(Some("bob"), R);
        assert_eq!(shared_read.mode(), Some(AttachMode::Read));
        assert!(!shared_read.destroy && !shared_read.share && !shared_read.see_shares);
        assert_eq!(op.reach(Some("bob"), W).mode(), Some(AttachMode::Write));
        let other = op.reach(Some("bob"), None);
        assert_eq!(
            other,
            Reach::default(),
            "another operator's session is invisible"
        );
        assert_eq!(op.reach(None, None), Reach::default());
        assert_eq!(op.listing(), Some(Listing::OwnAndShared));
    }

    #[tokio::test]
    async fn a_viewer_only_watches_even_with_a_write_share() {
        let (viewer, _tmp) = principal("viewer").await;
        assert_eq!(viewer.reach(Some("bob"), W).mode(), Some(AttachMode::Read));
        assert_eq!(viewer.reach(Some("bob"), None), Reach::default());
        assert!(!viewer.may(Permission::SessionCreate));
    }

    #[tokio::test]
    async fn an_admin_reaches_everything() {
        let (admin, _tmp) = principal("admin").await;
        let any = admin.reach(Some("bob"), None);
        assert!(any.see && any.write && any.destroy && any.share && any.see_shares);
        assert_eq!(admin.listing(), Some(Listing::All));
    }

    #[test]
    fn anyone_reaches_everything() {
        let reach = Principal::Anyone.reach(None, None);
        assert_eq!(reach.mode(), Some(AttachMode::Write));
        assert!(reach.destroy && reach.share);
    }
}
