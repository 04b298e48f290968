//! Path arguments restricted to roots. The longest existing prefix of the path is
//! canonicalized (following every symlink and `..`), the rest must not contain `..`, and
//! the result must lie inside a root, compared component by component. Relative paths
//! are taken against the pane's working directory and refused without one.

use std::fs;
use std::path::{Component, Path, PathBuf};

/// Where paths may point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Root {
    /// `{cwd}` in the policy: the pane's working directory at check time.
    Cwd,
    /// A directory, canonicalized when the policy was loaded.
    Dir(PathBuf),
}

impl Root {
    /// The root's canonical directory for this check, if it has one.
    fn directory(&self, cwd: Option<&Path>) -> Option<PathBuf> {
        match self {
            Root::Dir(dir) => Some(dir.clone()),
            Root::Cwd => cwd.and_then(|cwd| fs::canonicalize(cwd).ok()),
        }
    }
}

/// A path refused: (code, reason).
pub(crate) type PathRefusal = (&'static str, String);

/// Resolves `arg` and checks it lies inside one of `roots`; the canonical path.
pub(crate) fn resolve_under(
    arg: &str,
    roots: &[Root],
    cwd: Option<&Path>,
) -> Result<PathBuf, PathRefusal> {
    if arg.is_empty() {
        return Err(("path-invalid", "an empty path".into()));
    }
    let path = Path::new(arg);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        match cwd {
            Some(cwd) if cwd.is_absolute() => cwd.join(path),
            _ => {
                let reason = format!("relative path `{arg}` without a known working directory");
                return Err(("path-needs-cwd", reason));
            }
        }
    };
    let resolved =
        canonical(&absolute).map_err(|reason| ("path-escape", format!("`{arg}`: {reason}")))?;
    let inside = roots
        .iter()
        .filter_map(|root| root.directory(cwd))
        .any(|dir| resolved.starts_with(&dir));
    if inside {
        Ok(resolved)
    } else {
        let reason = format!(
            "`{arg}` resolves to {} outside the allowed roots",
            resolved.display()
        );
        Err(("path-outside-root", reason))
    }
}

/// Canonicalizes the longest existing prefix of `absolute` and appends the rest,
/// which must be plain names.
fn canonical(absolute: &Path) -> Result<PathBuf, String> {
    let components: Vec<Component<'_>> = absolute.components().collect();
    let mut split = components.len();
    while split > 0 {
        let prefix: PathBuf = components[..split].iter().collect();
        if fs::symlink_metadata(&prefix).is_ok() {
            break;
        }
        split -= 1;
    }
    let prefix: PathBuf = components[..split.max(1)].iter().collect();
    let mut resolved = fs::canonicalize(&prefix)
        .map_err(|err| format!("cannot resolve {}: {err}", prefix.display()))?;
    for component in &components[split.max(1)..] {
        match component {
            Component::Normal(name) => resolved.push(name),
            Component::CurDir => {}
            _ => return Err("`..` after a path that does not exist".into()),
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = fs::canonicalize(dir.path())
            .expect("canonical")
            .join("root");
        fs::create_dir_all(root.join("sub")).expect("mkdir");
        fs::write(root.join("sub/file"), "x").expect("write");
        fs::write(dir.path().join("secret"), "s").expect("write");
        (dir, root)
    }

    #[test]
    fn inside_paths_resolve_and_dotdot_inside_is_fine() {
        let (_dir, root) = setup();
        let roots = [Root::Dir(root.clone())];
        let got = resolve_under("sub/../sub/file", &roots, Some(&root)).expect("inside");
        assert_eq!(got, root.join("sub/file"));
        let new = resolve_under(&format!("{}/sub/new/deeper", root.display()), &roots, None);
        assert_eq!(new.expect("not yet existing"), root.join("sub/new/deeper"));
    }

    #[test]
    fn dotdot_and_symlinks_cannot_escape() {
        let (dir, root) = setup();
        let roots = [Root::Dir(root.clone())];
        let up = resolve_under("../secret", &roots, Some(&root)).unwrap_err();
        assert_eq!(up.0, "path-outside-root");
        let missing_up = resolve_under("nope/../../secret", &roots, Some(&root)).unwrap_err();
        assert_eq!(missing_up.0, "path-escape");
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).expect("symlink");
        let link = resolve_under("link", &roots, Some(&root)).unwrap_err();
        assert_eq!(link.0, "path-outside-root", "{link:?}");
        std::os::unix::fs::symlink(dir.path(), root.join("dirlink")).expect("symlink");
        let through = resolve_under("dirlink/secret", &roots, Some(&root)).unwrap_err();
        assert_eq!(through.0, "path-outside-root");
        let new_through = resolve_under("dirlink/created", &roots, Some(&root)).unwrap_err();
        assert_eq!(new_through.0, "path-outside-root");
    }

    #[test]
    fn relative_paths_need_a_cwd_and_cwd_roots_follow_it() {
        let (_dir, root) = setup();
        let none = resolve_under("sub/file", &[Root::Cwd], None).unwrap_err();
        assert_eq!(none.0, "path-needs-cwd");
        let sub = root.join("sub");
        assert!(resolve_under("file", &[Root::Cwd], Some(&sub)).is_ok());
        let above = resolve_under("..", &[Root::Cwd], Some(&sub)).unwrap_err();
        assert_eq!(above.0, "path-outside-root");
        assert_eq!(
            resolve_under("", &[Root::Cwd], Some(&sub)).unwrap_err().0,
            "path-invalid"
        );
    }
}
