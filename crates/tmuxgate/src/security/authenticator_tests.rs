//! Tests of [`Authenticator`]: login to identity, revocation, users changed after a
//! token was issued, and that nothing secret shows in `Debug`.

use std::path::Path;

use super::*;
use crate::security::RoleName;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn open(dir: &Path) -> Result<(Authenticator, Option<FirstStart>), OpenError> {
    let mut config = Config::for_tests(dir.join("sock"));
    config.data_dir = dir.join("state");
    let revocations = FileRevocations::open(&dir.join("revoked.jsonl"), config.jwt_leeway)?;
    Authenticator::open_with(&config, Arc::new(revocations), Hasher::fast_for_tests()).await
}

fn name(text: &str) -> UserName {
    text.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn role(text: &str) -> RoleName {
    text.parse().unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn first_start_login_verify_and_permissions() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (auth, first) = open(tmp.path()).await?;
    let first = first.ok_or("no first start")?;
    let issued = auth.login("admin", &first.password).await?;
    assert_eq!(
        (issued.user.as_str(), issued.role.as_str()),
        ("admin", "admin")
    );
    let identity = auth.verify(issued.token.expose()).await?;
    assert_eq!(identity.user, issued.user);
    assert_eq!(identity.jti, issued.jti);
    assert_eq!(identity.expires_at, issued.expires_at);
    assert!(auth.allows(&identity, Permission::Admin));
    let wrong = auth.login("admin", &Secret::new("not the password")).await;
    assert!(matches!(wrong, Err(AuthError::InvalidCredentials)));
    Ok(())
}

#[tokio::test]
async fn a_revoked_token_is_refused_even_after_a_restart() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (auth, _) = open(tmp.path()).await?;
    let bob = name("bob");
    auth.users()
        .add(&bob, &Secret::new("bob's password"), &role("viewer"))
        .await?;
    let issued = auth.issue(&bob, Duration::from_secs(300)).await?;
    let identity = auth.verify(issued.token.expose()).await?;
    assert!(!auth.allows(&identity, Permission::SessionCreate));
    auth.revoke(&identity).await?;
    assert!(matches!(
        auth.verify(issued.token.expose()).await,
        Err(AuthError::Revoked)
    ));
    let (restarted, _) = open(tmp.path()).await?;
    assert!(matches!(
        restarted.verify(issued.token.expose()).await,
        Err(AuthError::Revoked)
    ));
    let other = restarted.issue(&bob, Duration::from_secs(300)).await?;
    assert!(
        restarted.verify(other.token.expose()).await.is_ok(),
        "only that token"
    );
    Ok(())
}

#[tokio::test]
async fn changed_or_removed_users_supersede_their_tokens() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (auth, _) = open(tmp.path()).await?;
    let carol = name("carol");
    auth.users()
        .add(&carol, &Secret::new("carol's password"), &role("operator"))
        .await?;
    let token = auth.issue(&carol, Duration::from_secs(300)).await?.token;
    auth.users().set_role(&carol, &role("viewer")).await?;
    assert!(matches!(
        auth.verify(token.expose()).await,
        Err(AuthError::Superseded)
    ));
    let token = auth.issue(&carol, Duration::from_secs(300)).await?.token;
    assert_eq!(auth.verify(token.expose()).await?.role.as_str(), "viewer");
    auth.users().revoke_tokens(&carol).await?;
    assert!(matches!(
        auth.verify(token.expose()).await,
        Err(AuthError::Superseded)
    ));
    let token = auth.issue(&carol, Duration::from_secs(300)).await?.token;
    auth.users().remove(&carol).await?;
    assert!(matches!(
        auth.verify(token.expose()).await,
        Err(AuthError::Superseded)
    ));
    let missing = auth.issue(&carol, Duration::from_secs(300)).await;
    assert!(matches!(missing, Err(AuthError::NoSuchUser(_))));
    Ok(())
}

#[tokio::test]
async fn a_change_in_the_same_second_as_the_issue_still_supersedes() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (auth, _) = open(tmp.path()).await?;
    let dan = name("dan");
    auth.users()
        .add(&dan, &Secret::new("dan's password"), &role("operator"))
        .await?;
    // Each issue and change happen well within one second of each other.
    for _ in 0..3 {
        let token = auth.issue(&dan, Duration::from_secs(300)).await?.token;
        auth.users().revoke_tokens(&dan).await?;
        assert!(matches!(
            auth.verify(token.expose()).await,
            Err(AuthError::Superseded)
        ));
        let token = auth.issue(&dan, Duration::from_secs(300)).await?.token;
        auth.users()
            .set_password(&dan, &Secret::new("dan's new password"))
            .await?;
        assert!(matches!(
            auth.verify(token.expose()).await,
            Err(AuthError::Superseded)
        ));
    }
    let token = auth.issue(&dan, Duration::from_secs(300)).await?.token;
    assert!(
        auth.verify(token.expose()).await.is_ok(),
        "the current generation"
    );
    Ok(())
}

#[tokio::test]
async fn an_unknown_role_in_the_users_file_is_allowed_nothing() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (auth, first) = open(tmp.path()).await?;
    let first = first.ok_or("no first start")?;
    let path = auth.users().path().to_path_buf();
    let text = std::fs::read_to_string(&path)?.replace("role = \"admin\"", "role = \"superuser\"");
    private_files::write_private(&path, text.as_bytes())?;
    let issued = auth.login("admin", &first.password).await?;
    let identity = auth.verify(issued.token.expose()).await?;
    assert_eq!(identity.role.as_str(), "superuser");
    assert!(
        Permission::ALL
            .into_iter()
            .all(|p| !auth.allows(&identity, p))
    );
    Ok(())
}

#[tokio::test]
async fn debug_output_never_shows_secrets() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (auth, first) = open(tmp.path()).await?;
    let first = first.ok_or("no first start")?;
    let issued = auth.login("admin", &first.password).await?;
    let token = issued.token.expose().to_owned();
    let ring = std::fs::read_to_string(tmp.path().join("state/jwt-keys.toml"))?;
    let secret_line = ring
        .lines()
        .find(|l| l.starts_with("secret"))
        .ok_or("no key")?;
    let key = secret_line.split('"').nth(1).ok_or("no key")?;
    let shown = format!("{auth:?} {issued:?} {first:?} {:?}", auth.keys());
    for secret in [token.as_str(), first.password.expose(), key] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(
        shown.contains("token: ***") && shown.contains("password: ***"),
        "{shown}"
    );
    Ok(())
}
