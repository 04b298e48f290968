//! `BACKENDS_FILE`: which backends the gateway runs, with each one's placement weight and
//! labels. Without the file the pool is `BACKEND_POOL_SIZE` local backends of weight 1 and
//! no labels.
//!
//! ```toml
//! [[backend]]            # tmux-0
//! weight = 2
//! labels = ["gpu", "fast"]
//!
//! [[backend]]            # tmux-1
//! kind = "local"         # the default, and the only kind so far
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
    /// Relative share of new sessions (1–[`MAX_WEIGHT`]).
    pub weight: u32,
    /// Labels a `session-create` may pin to.
    pub labels: Vec<String>,
}

impl Default for BackendSpec {
    fn default() -> BackendSpec {
        BackendSpec {
            weight: 1,
            labels: Vec::new(),
        }
    }
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
    match entry.kind.as_str() {
        "local" => {}
        "socket" | "ssh" => {
            return Err(format!(
                "kind {:?} is not supported yet (only \"local\")",
                entry.kind
            ));
        }
        other => return Err(format!("unknown kind {other:?} (only \"local\")")),
    }
    if !(1..=MAX_WEIGHT).contains(&entry.weight) {
        return Err(format!("weight must be between 1 and {MAX_WEIGHT}"));
    }
    if let Some(bad) = entry.labels.iter().find(|l| !is_label(l)) {
        return Err(format!(
            "label {bad:?} must match [a-z0-9_-]{{1,{MAX_LABEL_BYTES}}}"
        ));
    }
    Ok(BackendSpec {
        weight: entry.weight,
        labels: entry.labels,
    })
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
    fn refuses_other_kinds_and_bad_values() {
        let err = parse("[[backend]]\nkind = \"ssh\"\n").unwrap_err();
        assert_eq!(
            err,
            "backend 0: kind \"ssh\" is not supported yet (only \"local\")"
        );
        assert!(
            parse("[[backend]]\nkind = \"socket\"\n")
                .unwrap_err()
                .contains("not supported yet")
        );
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
            parse("[[backend]]\nhost = \"x\"\n").is_err(),
            "unknown field"
        );
        assert!(parse("").unwrap_err().contains("1 to 64"));
    }
}
