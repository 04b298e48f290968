//! `BACKENDS_FILE`: which backends the gateway runs, with each one's placement weight and
//! labels. Without the file the pool is `BACKEND_POOL_SIZE` local backends of weight 1 and
//! no labels.
//!
//! ```toml
//! [[backend]]            # tmux-0: a tmux server the gateway starts and owns
//! weight = 2
//! labels = ["gpu", "fast"]
//!
//! [[backend]]            # tmux-1: an existing server of the operator's (same user)
//! kind = "socket"
//! path = "/run/user/1000/tmux-ops.sock"
//!
//! [[backend]]            # tmux-2: a server on another host, over the system's ssh
//! kind = "ssh"
//! host = "build-3.internal"
//! port = 22
//! user = "tmux"
//! identity = "/etc/tmuxgate/ssh/id_ed25519"
//! known_hosts = "/etc/tmuxgate/ssh/known_hosts"
//! socket = "tmuxgate"    # tmux -L NAME on the far side (the default)
//! tmux = "tmux"          # the far side's tmux binary (the default)
//! ```
//! Backends are numbered in file order (`tmux-0`, `tmux-1`…), so reordering the file moves
//! existing sessions' backends under other ids: append, do not reorder.

use std::path::{Path, PathBuf};

/// Most backends one gateway runs (as `BACKEND_POOL_SIZE`).
pub const MAX_BACKENDS: usize = 64;
/// Largest weight a backend may have.
pub const MAX_WEIGHT: u32 = 1000;
/// Longest label, in bytes.
pub const MAX_LABEL_BYTES: usize = 32;

/// One backend as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendSpec {
    /// Where the tmux server is.
    pub kind: Kind,
    /// Relative share of new sessions (1–[`MAX_WEIGHT`]).
    pub weight: u32,
    /// Labels a `session-create` may pin to.
    pub labels: Vec<String>,
}

impl Default for BackendSpec {
    fn default() -> BackendSpec {
        BackendSpec {
            kind: Kind::Local,
            weight: 1,
            labels: Vec::new(),
        }
    }
}

/// Where a backend's tmux server runs and who starts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A server the gateway starts, on a socket in its own directory, with its own
    /// configuration.
    Local,
    /// An existing server of the operator's, run by the gateway's user, at `path`. The
    /// gateway never starts it and never changes its global options.
    Socket {
        /// The server's socket.
        path: PathBuf,
    },
    /// A server on another host, reached with the system's `ssh` (see `backends/remote.rs`).
    Ssh(SshSpec),
}

/// An SSH backend's destination and credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshSpec {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Remote user.
    pub user: String,
    /// Private key (`ssh -i`); nothing else is offered (no agent, no passwords).
    pub identity: PathBuf,
    /// The only known_hosts file consulted; an unknown or changed host key refuses the
    /// connection.
    pub known_hosts: PathBuf,
    /// `tmux -L` socket name on the far side.
    pub socket: String,
    /// The far side's tmux binary.
    pub tmux: String,
}

/// Why `BACKENDS_FILE` was refused.
#[derive(Debug, thiserror::Error)]
#[error("BACKENDS_FILE {}: {reason}", path.display())]
pub struct SpecError {
    path: PathBuf,
    reason: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    backend: Vec<Entry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(default = "local")]
    kind: String,
    #[serde(default = "one")]
    weight: u32,
    #[serde(default)]
    labels: Vec<String>,
    /// `socket`: the server's socket.
    path: Option<PathBuf>,
    /// `ssh` fields.
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    identity: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    socket: Option<String>,
    tmux: Option<String>,
}

fn local() -> String {
    "local".into()
}

fn one() -> u32 {
    1
}

/// `size` local backends of weight 1 without labels: the pool without `BACKENDS_FILE`.
pub fn uniform(size: usize) -> Vec<BackendSpec> {
    vec![BackendSpec::default(); size]
}

/// Reads and checks `BACKENDS_FILE`.
pub fn load(path: &Path) -> Result<Vec<BackendSpec>, SpecError> {
    let error = |reason: String| SpecError {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    parse(&text).map_err(error)
}

/// Parses and checks the file's text.
pub fn parse(text: &str) -> Result<Vec<BackendSpec>, String> {
    let file: File = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    if file.backend.is_empty() || file.backend.len() > MAX_BACKENDS {
        return Err(format!(
            "needs 1 to {MAX_BACKENDS} [[backend]] entries, found {}",
            file.backend.len()
        ));
    }
    file.backend
        .into_iter()
        .enumerate()
        .map(|(index, entry)| check(entry).map_err(|e| format!("backend {index}: {e}")))
        .collect()
}

fn check(entry: Entry) -> Result<BackendSpec, String> {
    if !(1..=MAX_WEIGHT).contains(&entry.weight) {
        return Err(format!("weight must be between 1 and {MAX_WEIGHT}"));
    }
    if let Some(bad) = entry.labels.iter().find(|l| !is_label(l)) {
        return Err(format!(
            "label {bad:?} must match [a-z0-9_-]{{1,{MAX_LABEL_BYTES}}}"
        ));
    }
    let kind = match entry.kind.as_str() {
        "local" => {
            only(&entry, &[])?;
            Kind::Local
        }
        "socket" => {
            only(&entry, &["path"])?;
            let path = entry.path.clone().ok_or("kind \"socket\" needs path")?;
            if !path.is_absolute() {
                return Err("path must be absolute".into());
            }
            Kind::Socket { path }
        }
        "ssh" => Kind::Ssh(ssh(&entry)?),
        other => {
            return Err(format!(
                "unknown kind {other:?} (\"local\", \"socket\" or \"ssh\")"
            ));
        }
    };
    Ok(BackendSpec {
        kind,
        weight: entry.weight,
        labels: entry.labels,
    })
}

/// Refuses fields that belong to another kind.
fn only(entry: &Entry, allowed: &[&str]) -> Result<(), String> {
    let present = [
        ("path", entry.path.is_some()),
        ("host", entry.host.is_some()),
        ("port", entry.port.is_some()),
        ("user", entry.user.is_some()),
        ("identity", entry.identity.is_some()),
        ("known_hosts", entry.known_hosts.is_some()),
        ("socket", entry.socket.is_some()),
        ("tmux", entry.tmux.is_some()),
    ];
    match present
        .iter()
        .find(|(name, set)| *set && !allowed.contains(name))
    {
        Some((name, _)) => Err(format!("{name} does not apply to kind {:?}", entry.kind)),
        None => Ok(()),
    }
}

fn ssh(entry: &Entry) -> Result<SshSpec, String> {
    only(
        entry,
        &[
            "host",
            "port",
            "user",
            "identity",
            "known_hosts",
            "socket",
            "tmux",
        ],
    )?;
    let host = entry.host.clone().ok_or("kind \"ssh\" needs host")?;
    if !is_host(&host) {
        return Err(format!(
            "host {host:?} must be a host name or an IP address"
        ));
    }
    let user = entry.user.clone().ok_or("kind \"ssh\" needs user")?;
    if !is_user(&user) {
        return Err(format!(
            "user {user:?} must match [a-z_][a-z0-9_.-]{{0,31}}"
        ));
    }
    let port = entry.port.unwrap_or(22);
    if port == 0 {
        return Err("port must be between 1 and 65535".into());
    }
    let file = |name: &str, path: &Option<PathBuf>| -> Result<PathBuf, String> {
        let path = path
            .clone()
            .ok_or_else(|| format!("kind \"ssh\" needs {name}"))?;
        if !path.is_absolute() {
            return Err(format!("{name} must be an absolute path"));
        }
        // ssh splits option values at spaces and expands `%` tokens in them.
        let text = path.to_string_lossy();
        if text.contains(|c: char| c.is_whitespace() || "%\"'\\".contains(c)) {
            return Err(format!(
                "{name} must not contain spaces, quotes, backslashes or %"
            ));
        }
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(&path) {
            // Whoever may write known_hosts may add a man in the middle; whoever may read
            // the identity may log in (ssh refuses such keys too, less clearly).
            Ok(meta) if meta.is_file() && meta.permissions().mode() & private_bits(name) != 0 => {
                Err(format!(
                    "{name} {} must not be {} by group or others",
                    path.display(),
                    if name == "identity" {
                        "readable"
                    } else {
                        "writable"
                    }
                ))
            }
            Ok(meta) if meta.is_file() => Ok(path),
            Ok(_) => Err(format!("{name} {} is not a file", path.display())),
            Err(e) => Err(format!("{name} {}: {e}", path.display())),
        }
    };
    let identity = file("identity", &entry.identity)?;
    let known_hosts = file("known_hosts", &entry.known_hosts)?;
    let socket = entry.socket.clone().unwrap_or_else(|| "tmuxgate".into());
    if !is_label(&socket) {
        return Err(format!(
            "socket {socket:?} must match [a-z0-9_-]{{1,{MAX_LABEL_BYTES}}}"
        ));
    }
    let tmux = entry.tmux.clone().unwrap_or_else(|| "tmux".into());
    let tmux_ok = !tmux.is_empty()
        && tmux.len() <= 256
        && !tmux.starts_with('-')
        && tmux
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b));
    if !tmux_ok {
        return Err(format!("tmux {tmux:?} must be a plain path"));
    }
    Ok(SshSpec {
        host,
        port,
        user,
        identity,
        known_hosts,
        socket,
        tmux,
    })
}

/// Permission bits `name` must not have: group/other access to the key, group/other write
/// to known_hosts.
fn private_bits(name: &str) -> u32 {
    if name == "identity" { 0o077 } else { 0o022 }
}

/// A host name (letters, digits, dots, hyphens) or an IPv4/IPv6 address: nothing `ssh`
/// could read as an option or a `user@` part.
fn is_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    (1..=253).contains(&host.len())
        && host.split('.').all(|part| {
            (1..=63).contains(&part.len())
                && !part.starts_with('-')
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_user(user: &str) -> bool {
    let mut bytes = user.bytes();
    (1..=32).contains(&user.len())
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

/// Whether `label` is a valid label: `[a-z0-9_-]{1,32}`.
pub fn is_label(label: &str) -> bool {
    (1..=MAX_LABEL_BYTES).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_weights_labels_and_defaults() {
        let text = "[[backend]]\nweight = 2\nlabels = [\"gpu\", \"fast\"]\n\n[[backend]]\nkind = \"local\"\n";
        let specs = parse(text).unwrap();
        assert_eq!(specs[0].weight, 2);
        assert_eq!(specs[0].labels, ["gpu", "fast"]);
        assert_eq!(specs[1], BackendSpec::default());
        assert_eq!(uniform(3).len(), 3);
    }

    #[test]
    fn refuses_unknown_kinds_and_bad_values() {
        assert!(
            parse("[[backend]]\nkind = \"ftp\"\n")
                .unwrap_err()
                .contains("unknown kind")
        );
        assert!(
            parse("[[backend]]\nweight = 0\n")
                .unwrap_err()
                .contains("weight")
        );
        assert!(
            parse("[[backend]]\nlabels = [\"GPU\"]\n")
                .unwrap_err()
                .contains("label")
        );
        assert!(
            parse("[[backend]]\nhost = \"x\"\n")
                .unwrap_err()
                .contains("host does not apply to kind \"local\""),
        );
        assert!(parse("[[backend]]\ncolour = 1\n").is_err(), "unknown field");
        assert!(parse("").unwrap_err().contains("1 to 64"));
    }

    #[test]
    fn socket_backends_need_an_absolute_path() {
        let specs = parse("[[backend]]\nkind = \"socket\"\npath = \"/run/t.sock\"\n").unwrap();
        assert_eq!(
            specs[0].kind,
            Kind::Socket {
                path: "/run/t.sock".into()
            }
        );
        assert!(
            parse("[[backend]]\nkind = \"socket\"\n")
                .unwrap_err()
                .contains("needs path")
        );
        assert!(
            parse("[[backend]]\nkind = \"socket\"\npath = \"t.sock\"\n")
                .unwrap_err()
                .contains("absolute")
        );
    }

    #[test]
    fn ssh_backends_are_checked_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let key = dir.path().join("id");
        let known = dir.path().join("known_hosts");
        std::fs::write(&key, "k").unwrap();
        std::fs::write(&known, "h").unwrap();
        let mode = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        mode(&key, 0o600);
        mode(&known, 0o644);
        let entry = |extra: &str| {
            format!(
                "[[backend]]\nkind = \"ssh\"\nuser = \"tmux\"\nidentity = {:?}\n\
                 known_hosts = {:?}\n{extra}",
                key.display().to_string(),
                known.display().to_string()
            )
        };
        let specs = parse(&entry("host = \"build-3.internal\"\n")).unwrap();
        let Kind::Ssh(ssh) = &specs[0].kind else {
            panic!("not ssh: {:?}", specs[0].kind)
        };
        assert_eq!(
            (ssh.port, ssh.socket.as_str(), ssh.tmux.as_str()),
            (22, "tmuxgate", "tmux")
        );
        assert!(parse(&entry("host = \"::1\"\nport = 2222\n")).is_ok());
        for (extra, says) in [
            ("", "needs host"),
            ("host = \"-oProxyCommand=x\"\n", "host name"),
            ("host = \"a@b\"\n", "host name"),
            ("host = \"h\"\nport = 0\n", "port"),
            ("host = \"h\"\nsocket = \"../x\"\n", "socket"),
            ("host = \"h\"\ntmux = \"tmux; reboot\"\n", "plain path"),
            ("host = \"h\"\npath = \"/x\"\n", "path does not apply"),
        ] {
            let err = parse(&entry(extra)).unwrap_err();
            assert!(err.contains(says), "{extra:?}: {err}");
        }
        let bad_user = entry("host = \"h\"\n").replace("\"tmux\"", "\"-l root\"");
        assert!(parse(&bad_user).unwrap_err().contains("user"));
        let missing =
            entry("host = \"h\"\n").replace(&*key.display().to_string(), "/nonexistent/id");
        assert!(
            parse(&missing)
                .unwrap_err()
                .contains("identity /nonexistent/id")
        );
        let ok = entry("host = \"h\"\n");
        mode(&key, 0o640);
        assert!(parse(&ok).unwrap_err().contains("readable by group"));
        mode(&key, 0o600);
        mode(&known, 0o666);
        assert!(parse(&ok).unwrap_err().contains("writable by group"));
    }
}
