//! Roles and permissions: the [`Permission`] list, the built-in roles (`admin`,
//! `operator`, `viewer`) and custom ones from `ROLES_FILE`. A role name nobody defined
//! (a stale users file, a forged or old token) is allowed nothing: never fail open.
//!
//! `ROLES_FILE` (TOML):
//! ```toml
//! [roles.auditor]
//! permissions = ["session.list.all", "session.attach.read.any", "metrics"]
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::names::RoleName;

/// One thing a role may do. Names as in `ROLES_FILE` and the docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// `session.create`: create sessions (which the creator then owns).
    SessionCreate,
    /// `session.create.placement`: choose a new session's backend (`options.backend`,
    /// `options.labels`).
    SessionCreatePlacement,
    /// `session.list.own`: list own sessions and those shared with the user.
    SessionListOwn,
    /// `session.list.all`: list every session.
    SessionListAll,
    /// `session.attach.write.own`: type into own sessions.
    AttachWriteOwn,
    /// `session.attach.write.shared`: type into sessions shared with write access.
    AttachWriteShared,
    /// `session.attach.write.any`: type into any session.
    AttachWriteAny,
    /// `session.attach.read.own`: watch own sessions.
    AttachReadOwn,
    /// `session.attach.read.shared`: watch sessions shared with the user.
    AttachReadShared,
    /// `session.attach.read.any`: watch any session.
    AttachReadAny,
    /// `session.destroy.own`: destroy own sessions.
    DestroyOwn,
    /// `session.destroy.any`: destroy any session.
    DestroyAny,
    /// `session.share.own`: share own sessions with others.
    ShareOwn,
    /// `session.share.any`: share any session.
    ShareAny,
    /// `session.resize`: resize sessions the user may write to.
    SessionResize,
    /// `command.execute`: run validated commands and get their output.
    CommandExecute,
    /// `metrics`: read gateway metrics.
    Metrics,
    /// `admin`: administration (users, blocks, everything else).
    Admin,
}

impl Permission {
    /// Every permission, in documentation order.
    pub const ALL: [Permission; 18] = [
        Permission::SessionCreate,
        Permission::SessionCreatePlacement,
        Permission::SessionListOwn,
        Permission::SessionListAll,
        Permission::AttachWriteOwn,
        Permission::AttachWriteShared,
        Permission::AttachWriteAny,
        Permission::AttachReadOwn,
        Permission::AttachReadShared,
        Permission::AttachReadAny,
        Permission::DestroyOwn,
        Permission::DestroyAny,
        Permission::ShareOwn,
        Permission::ShareAny,
        Permission::SessionResize,
        Permission::CommandExecute,
        Permission::Metrics,
        Permission::Admin,
    ];

    /// The name used in `ROLES_FILE`.
    pub fn name(self) -> &'static str {
        match self {
            Permission::SessionCreate => "session.create",
            Permission::SessionCreatePlacement => "session.create.placement",
            Permission::SessionListOwn => "session.list.own",
            Permission::SessionListAll => "session.list.all",
            Permission::AttachWriteOwn => "session.attach.write.own",
            Permission::AttachWriteShared => "session.attach.write.shared",
            Permission::AttachWriteAny => "session.attach.write.any",
            Permission::AttachReadOwn => "session.attach.read.own",
            Permission::AttachReadShared => "session.attach.read.shared",
            Permission::AttachReadAny => "session.attach.read.any",
            Permission::DestroyOwn => "session.destroy.own",
            Permission::DestroyAny => "session.destroy.any",
            Permission::ShareOwn => "session.share.own",
            Permission::ShareAny => "session.share.any",
            Permission::SessionResize => "session.resize",
            Permission::CommandExecute => "command.execute",
            Permission::Metrics => "metrics",
            Permission::Admin => "admin",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Permission {
    type Err = String;

    fn from_str(name: &str) -> Result<Permission, String> {
        let found = Permission::ALL.into_iter().find(|p| p.name() == name);
        found.ok_or_else(|| format!("unknown permission {name:?}"))
    }
}

/// A set of permissions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Permissions(u32);

impl Permissions {
    /// Whether `permission` is in the set.
    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    /// The permissions in the set, in documentation order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }
}

impl FromIterator<Permission> for Permissions {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Permissions {
        Permissions(iter.into_iter().fold(0, |set, p| set | p.bit()))
    }
}

/// Why `ROLES_FILE` was refused.
#[derive(Debug, thiserror::Error)]
#[error("ROLES_FILE {}: {reason}", path.display())]
pub struct RolesError {
    path: PathBuf,
    reason: String,
}

/// Every role the gateway knows, built-in and custom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roles(BTreeMap<RoleName, Permissions>);

/// `ROLES_FILE` as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesFile {
    #[serde(default)]
    roles: BTreeMap<RoleName, RoleEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleEntry {
    permissions: Vec<String>,
}

impl Roles {
    /// The built-in roles only.
    pub fn builtin() -> Roles {
        use Permission as P;
        let operator = [
            P::SessionCreate,
            P::SessionCreatePlacement,
            P::SessionListOwn,
            P::AttachWriteOwn,
            P::AttachWriteShared,
            P::AttachReadOwn,
            P::AttachReadShared,
            P::DestroyOwn,
            P::ShareOwn,
            P::SessionResize,
            P::CommandExecute,
            P::Metrics,
        ];
        let viewer = [P::SessionListOwn, P::AttachReadOwn, P::AttachReadShared];
        let roles = [
            ("admin", Permission::ALL.into_iter().collect()),
            ("operator", operator.into_iter().collect()),
            ("viewer", viewer.into_iter().collect()),
        ];
        let named = roles
            .into_iter()
            .filter_map(|(name, set)| Some((name.parse().ok()?, set)));
        Roles(named.collect())
    }

    /// The built-in roles plus those of `roles_file`, if given. Unknown permission names
    /// and attempts to redefine a built-in role are refused: a typo must not silently
    /// grant less (or more) than written.
    pub fn load(roles_file: Option<&Path>) -> Result<Roles, RolesError> {
        let mut roles = Roles::builtin();
        let Some(path) = roles_file else {
            return Ok(roles);
        };
        let error = |reason: String| RolesError {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let file: RolesFile = toml::from_str(&text).map_err(|e| error(e.message().to_owned()))?;
        for (name, entry) in file.roles {
            if roles.0.contains_key(&name) {
                return Err(error(format!(
                    "role {name} is built in and cannot be redefined"
                )));
            }
            let parsed: Result<Permissions, String> = entry
                .permissions
                .iter()
                .map(|p| p.parse::<Permission>())
                .collect();
            let set = parsed.map_err(|reason| error(format!("role {name}: {reason}")))?;
            roles.0.insert(name, set);
        }
        Ok(roles)
    }

    /// Whether `role` may do `permission`. A role nobody defined may do nothing.
    pub fn allows(&self, role: &str, permission: Permission) -> bool {
        self.permissions(role).contains(permission)
    }

    /// What `role` may do; empty for an unknown role.
    pub fn permissions(&self, role: &str) -> Permissions {
        let known = self.0.iter().find(|(name, _)| name.as_str() == role);
        known.map_or(Permissions::default(), |(_, set)| *set)
    }

    /// Whether `role` is defined.
    pub fn contains(&self, role: &RoleName) -> bool {
        self.0.contains_key(role)
    }

    /// Every role and its permissions, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&RoleName, Permissions)> {
        self.0.iter().map(|(name, set)| (name, *set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission as P;

    fn with_file(text: &str) -> Result<Roles, RolesError> {
        let file = tempfile::NamedTempFile::new().map_err(|e| RolesError {
            path: PathBuf::new(),
            reason: e.to_string(),
        })?;
        std::fs::write(file.path(), text).map_err(|e| RolesError {
            path: file.path().to_path_buf(),
            reason: e.to_string(),
        })?;
        Roles::load(Some(file.path()))
    }

    #[test]
    fn admin_may_do_everything() {
        let roles = Roles::builtin();
        assert!(P::ALL.into_iter().all(|p| roles.allows("admin", p)));
    }

    #[test]
    fn operator_defaults() {
        let roles = Roles::builtin();
        let allowed: Vec<&str> = roles.permissions("operator").iter().map(P::name).collect();
        assert_eq!(
            allowed,
            [
                "session.create",
                "session.create.placement",
                "session.list.own",
                "session.attach.write.own",
                "session.attach.write.shared",
                "session.attach.read.own",
                "session.attach.read.shared",
                "session.destroy.own",
                "session.share.own",
                "session.resize",
                "command.execute",
                "metrics",
            ]
        );
        for denied in [
            P::SessionListAll,
            P::AttachWriteAny,
            P::AttachReadAny,
            P::DestroyAny,
        ] {
            assert!(!roles.allows("operator", denied), "{denied}");
        }
        assert!(!roles.allows("operator", P::ShareAny) && !roles.allows("operator", P::Admin));
    }

    #[test]
    fn viewer_only_lists_and_reads() {
        let roles = Roles::builtin();
        let allowed: Vec<P> = roles.permissions("viewer").iter().collect();
        assert_eq!(
            allowed,
            [P::SessionListOwn, P::AttachReadOwn, P::AttachReadShared]
        );
    }

    #[test]
    fn unknown_roles_are_denied_everything() {
        let roles = Roles::builtin();
        for role in ["", "root", "Admin", "admin ", "superuser"] {
            assert!(P::ALL.into_iter().all(|p| !roles.allows(role, p)), "{role}");
        }
    }

    #[test]
    fn custom_roles_come_from_the_file() -> Result<(), RolesError> {
        let roles = with_file(
            "[roles.auditor]\npermissions = [\"session.list.all\", \"session.attach.read.any\"]\n",
        )?;
        assert!(roles.allows("auditor", P::AttachReadAny));
        assert!(!roles.allows("auditor", P::AttachWriteAny));
        assert!(roles.allows("operator", P::SessionCreate), "built-ins stay");
        Ok(())
    }

    #[test]
    fn bad_roles_files_are_refused() {
        let cases = [
            (
                "[roles.x]\npermissions = [\"session.destroy.all\"]\n",
                "unknown permission",
            ),
            ("[roles.admin]\npermissions = []\n", "built in"),
            ("[roles.x]\npermisions = []\n", "unknown field"),
            ("[roles.Bad]\npermissions = []\n", "invalid role name"),
        ];
        for (text, expected) in cases {
            let message = with_file(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(message.contains(expected), "{text}: {message}");
        }
    }

    #[test]
    fn permission_names_round_trip() {
        for p in P::ALL {
            assert_eq!(p.name().parse::<P>(), Ok(p));
        }
    }
}
