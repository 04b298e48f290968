//! The audit log's settings (`AUDIT_LOG`, `AUDIT_MAX_BYTES`, `AUDIT_KEEP`) and their
//! rules: part of [`Config::validate`], kept apart like the identity rules.

use std::path::PathBuf;

use super::Config;
use super::validate::{ConfigError, invalid};

/// Smallest `AUDIT_MAX_BYTES` other than 0: a file must hold a few lines.
pub const MIN_AUDIT_MAX_BYTES: u64 = 4096;
/// Most rotated files kept.
pub const MAX_AUDIT_KEEP: usize = 1000;

/// `AUDIT_LOG`: where security events are written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AuditLog {
    /// Not given: `DATA_DIR/audit.jsonl`.
    #[default]
    InDataDir,
    /// Given empty: no audit log. The only way to turn it off.
    Off,
    /// Given: this file.
    File(PathBuf),
}

impl Config {
    /// The audit log's file, or `None` when it is off.
    pub fn audit_log_path(&self) -> Option<PathBuf> {
        match &self.audit_log {
            AuditLog::InDataDir => Some(self.data_dir.join("audit.jsonl")),
            AuditLog::Off => None,
            AuditLog::File(path) => Some(path.clone()),
        }
    }

    /// An absolute `AUDIT_LOG`; `AUDIT_MAX_BYTES` 0 or at least 4 KiB; `AUDIT_KEEP` 1-1000.
    pub(super) fn check_audit(&self) -> Result<(), ConfigError> {
        if let AuditLog::File(path) = &self.audit_log
            && !path.is_absolute()
        {
            let reason = "must be an absolute path (empty: no audit log)".to_owned();
            return invalid("AUDIT_LOG", path.display(), reason);
        }
        if self.audit_max_bytes != 0 && self.audit_max_bytes < MIN_AUDIT_MAX_BYTES {
            let reason = format!("must be 0 (never rotate) or at least {MIN_AUDIT_MAX_BYTES}");
            return invalid("AUDIT_MAX_BYTES", self.audit_max_bytes, reason);
        }
        if !(1..=MAX_AUDIT_KEEP).contains(&self.audit_keep) {
            let reason = format!("must be between 1 and {MAX_AUDIT_KEEP}");
            return invalid("AUDIT_KEEP", self.audit_keep, reason);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::refusal;

    #[test]
    fn the_log_is_on_unless_turned_off_and_paths_are_absolute() {
        let mut config = Config::for_tests(PathBuf::from("/tmp/x/sock"));
        let default = config.audit_log_path();
        assert_eq!(
            default,
            Some(PathBuf::from("/tmp/x/sock-state/audit.jsonl"))
        );
        config.audit_log = AuditLog::Off;
        assert_eq!(config.audit_log_path(), None);
        config.audit_log = AuditLog::File(PathBuf::from("audit.jsonl"));
        assert!(refusal(&config).contains("AUDIT_LOG=audit.jsonl"));
        config.audit_log = AuditLog::File(PathBuf::from("/var/log/tg/audit.jsonl"));
        assert_eq!(refusal(&config), "");
    }

    #[test]
    fn sizes_and_counts_are_bounded() {
        let mut config = Config::for_tests(PathBuf::from("/tmp/x/sock"));
        config.audit_max_bytes = 100;
        assert!(refusal(&config).contains("AUDIT_MAX_BYTES=100"));
        config.audit_max_bytes = 0;
        assert_eq!(refusal(&config), "");
        config.audit_keep = 0;
        assert!(refusal(&config).contains("AUDIT_KEEP=0"));
    }
}
