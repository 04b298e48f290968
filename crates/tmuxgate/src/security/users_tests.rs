//! Tests of [`Users`]: first start, the file round trip and its mode, changes seen by
//! another handle, and the login paths (one verification each, one error kind).

use std::os::unix::fs::PermissionsExt;

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn open(dir: &Path) -> Result<(Users, Option<FirstStart>), UserError> {
    Users::open(
        &dir.join("users.toml"),
        Roles::builtin(),
        Hasher::fast_for_tests(),
    )
    .await
}

fn name(text: &str) -> UserName {
    text.parse().unwrap_or_else(|e| panic!("test name: {e}"))
}

fn role(text: &str) -> RoleName {
    text.parse().unwrap_or_else(|e| panic!("test role: {e}"))
}

#[tokio::test]
async fn first_start_creates_admin_once() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (users, first) = open(tmp.path()).await?;
    let first = first.ok_or("no first-start password")?;
    assert_eq!(first.user.as_str(), "admin");
    assert_eq!(
        first.password.expose().len(),
        password::GENERATED_PASSWORD_CHARS
    );
    let admin = users.login("admin", &first.password).await?;
    assert_eq!(admin.role.as_str(), "admin");
    let mode = std::fs::metadata(users.path())?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (_, again) = open(tmp.path()).await?;
    assert!(again.is_none(), "the password is handed out only once");
    Ok(())
}

#[tokio::test]
async fn users_file_round_trip_without_hashes_in_records() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (users, _) = open(tmp.path()).await?;
    let secret = Secret::new("alice's password");
    users
        .add(&name("alice"), &secret, &role("operator"))
        .await?;
    let (reopened, _) = open(tmp.path()).await?;
    let listed = reopened.list()?;
    let names: Vec<&str> = listed.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["admin", "alice"]);
    assert_eq!(listed[1].role.as_str(), "operator");
    let shown = format!("{listed:?}");
    assert!(
        !shown.contains("argon2") && !shown.contains("alice's password"),
        "{shown}"
    );
    let text = std::fs::read_to_string(users.path())?;
    assert!(text.contains("$argon2id$") && !text.contains("alice's password"));
    Ok(())
}

#[tokio::test]
async fn changes_reach_other_handles() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (gateway, _) = open(tmp.path()).await?;
    let (cli, _) = open(tmp.path()).await?;
    let secret = Secret::new("bob's password");
    cli.add(&name("bob"), &secret, &role("viewer")).await?;
    assert_eq!(gateway.login("bob", &secret).await?.role.as_str(), "viewer");
    cli.set_role(&name("bob"), &role("operator")).await?;
    assert_eq!(
        gateway.get(&name("bob"))?.map(|u| u.role),
        Some(role("operator"))
    );
    cli.remove(&name("bob")).await?;
    assert!(gateway.login("bob", &secret).await.is_err());
    Ok(())
}

#[tokio::test]
async fn every_login_failure_is_one_kind_and_one_verification() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (users, _) = open(tmp.path()).await?;
    users
        .add(
            &name("carol"),
            &Secret::new("carol's password"),
            &role("viewer"),
        )
        .await?;
    let attempts = [
        ("carol", "wrong password"),
        ("nobody", "carol's password"),
        ("Not A Name", "x"),
    ];
    for (user, password) in attempts {
        let before = users.hasher().verifications();
        let outcome = users.login(user, &Secret::new(password)).await;
        assert!(
            matches!(outcome, Err(AuthError::InvalidCredentials)),
            "{user}"
        );
        assert_eq!(
            users.hasher().verifications(),
            before + 1,
            "{user}: one verification"
        );
    }
    Ok(())
}

#[tokio::test]
async fn changes_are_checked() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (users, _) = open(tmp.path()).await?;
    let good = Secret::new("a fine password");
    let refused = users.add(&name("dave"), &good, &role("root")).await;
    assert!(matches!(refused, Err(UserError::UnknownRole(_))));
    let refused = users
        .add(&name("dave"), &Secret::new("short"), &role("viewer"))
        .await;
    assert!(matches!(refused, Err(UserError::WeakPassword(_))));
    let refused = users.add(&name("admin"), &good, &role("viewer")).await;
    assert!(matches!(refused, Err(UserError::Exists(_))));
    let refused = users.remove(&name("nobody")).await;
    assert!(matches!(refused, Err(UserError::NotFound(_))));
    Ok(())
}

#[tokio::test]
async fn password_change_moves_tokens_after() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (users, _) = open(tmp.path()).await?;
    let old = Secret::new("the old password");
    let record = users.add(&name("erin"), &old, &role("viewer")).await?;
    assert_eq!(record.tokens_after, std::time::UNIX_EPOCH);
    let new = Secret::new("the new password");
    users.set_password(&name("erin"), &new).await?;
    assert!(users.login("erin", &old).await.is_err());
    let changed = users.login("erin", &new).await?;
    assert!(changed.tokens_after > std::time::UNIX_EPOCH);
    assert_ne!(changed.generation, record.generation);
    Ok(())
}

#[tokio::test]
async fn a_users_file_readable_by_others_is_refused() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (users, _) = open(tmp.path()).await?;
    std::fs::set_permissions(users.path(), std::fs::Permissions::from_mode(0o644))?;
    let refused = open(tmp.path()).await.err().map(|e| e.to_string());
    assert!(refused.is_some_and(|m| m.contains("chmod 600")));
    Ok(())
}

#[tokio::test]
async fn a_login_upgrades_a_hash_made_with_other_parameters() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (users, _) = open(tmp.path()).await?;
    let password = Secret::new("frank's password");
    users
        .add(&name("frank"), &password, &role("viewer"))
        .await?;
    let stored = |path: &Path| -> Result<String, Box<dyn std::error::Error>> {
        let map = users_file::read(path)?.ok_or("no users file")?;
        Ok(map.get(&name("frank")).ok_or("no frank")?.password.clone())
    };
    let before = stored(users.path())?;
    let params = argon2::Params::new(128, 1, 1, None)?;
    let path = users.path().to_path_buf();
    let (upgraded, _) = Users::open(&path, Roles::builtin(), Hasher::with_params(params)).await?;
    assert!(
        upgraded
            .login("frank", &Secret::new("wrong"))
            .await
            .is_err()
    );
    assert_eq!(stored(&path)?, before, "a failed login changes nothing");
    let generation = upgraded.get(&name("frank"))?.map(|u| u.generation);
    let record = upgraded.login("frank", &password).await?;
    let after = stored(&path)?;
    assert!(
        after.starts_with("$argon2id$v=19$m=128,t=1,p=1$"),
        "{after}"
    );
    assert_eq!(
        Some(record.generation),
        generation,
        "the same password: tokens stay valid"
    );
    assert!(upgraded.login("frank", &password).await.is_ok());
    Ok(())
}
