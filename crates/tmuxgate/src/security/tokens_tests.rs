//! Tests of [`Tokens`]: every way a token must be refused, key rotation, and the
//! asymmetric algorithms. Forged tokens are assembled by hand, byte for byte.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;
use crate::config::JwtAlgorithm;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/security/testdata");

fn config(dir: &Path) -> Config {
    let mut config = Config::for_tests(dir.join("sock"));
    config.data_dir = dir.join("state");
    config
}

fn pem_config(dir: &Path, algorithm: JwtAlgorithm, stem: &str) -> Config {
    let file = |half: &str| Some(PathBuf::from(format!("{TESTDATA}/{stem}-{half}.pem")));
    Config {
        jwt_algorithm: algorithm,
        jwt_private_key_file: file("private"),
        jwt_public_key_file: file("public"),
        ..config(dir)
    }
}

fn alice() -> (UserName, RoleName) {
    let user = "alice".parse().unwrap_or_else(|e| panic!("{e}"));
    let role = "operator".parse().unwrap_or_else(|e| panic!("{e}"));
    (user, role)
}

fn issue(tokens: &Tokens) -> Result<String, AuthError> {
    let (user, role) = alice();
    let (token, _) = tokens.issue(&user, &role, 0, Duration::from_secs(600))?;
    Ok(token.expose().to_owned())
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Claims as the gateway issues them, valid now.
fn claims() -> Value {
    let now = clock::now_unix();
    json!({"sub": "alice", "role": "operator", "iat": now, "nbf": now, "exp": now + 600,
           "jti": "AAAAAAAAAAAAAAAAAAAAAA", "iss": "tmuxgate", "aud": "tmuxgate", "gen": 0})
}

/// `claims`' `iat` plus `secs`.
fn now_plus(claims: &Value, secs: u64) -> u64 {
    claims["iat"].as_u64().unwrap_or_default() + secs
}

/// The signing key's header.
fn header(tokens: &Tokens) -> Value {
    let ring = tokens.current_ring();
    json!({"alg": tokens.algorithm(), "typ": "JWT", "kid": ring.signer().0})
}

/// `header.claims` signed with the real signing key.
fn forge(tokens: &Tokens, header: &Value, claims: &Value) -> Result<String, AuthError> {
    let ring = tokens.current_ring();
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), ring.signer().1, ring.algorithm())
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
    Ok(format!("{message}.{signature}"))
}

/// `claims` changed by `change`, signed with the real key.
fn forge_claims(tokens: &Tokens, change: impl FnOnce(&mut Value)) -> Result<String, AuthError> {
    let mut body = claims();
    change(&mut body);
    forge(tokens, &header(tokens), &body)
}

fn refused(tokens: &Tokens, token: &str) -> Option<AuthError> {
    let error = tokens.verify(token).err();
    if let Some(error) = &error {
        let shown = format!("{error} {error:?}");
        assert!(
            token.is_empty() || !shown.contains(token),
            "the error shows the token"
        );
    }
    error
}

#[test]
fn issued_tokens_verify_with_every_claim() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let tokens = Tokens::open(&config(tmp.path()))?;
    let token = issue(&tokens)?;
    let claims = tokens.verify(&token)?;
    assert_eq!(
        (claims.sub.as_str(), claims.role.as_str()),
        ("alice", "operator")
    );
    assert_eq!(
        (claims.iss.as_str(), claims.aud.as_str()),
        ("tmuxgate", "tmuxgate")
    );
    assert_eq!(claims.exp - claims.iat, 600);
    assert_eq!(claims.nbf, claims.iat);
    assert_eq!(claims.jti.len(), 22);
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap_or(""))?)?;
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["kid"], tokens.keys()[0].kid.as_str());
    assert_ne!(issue(&tokens)?, token, "every token has its own jti");
    Ok(())
}

#[test]
fn time_claims_are_enforced_with_leeway() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let tokens = Tokens::open(&config(tmp.path()))?;
    let now = clock::now_unix();
    let expired = forge_claims(&tokens, |c| {
        (c["iat"], c["nbf"], c["exp"]) = (json!(now - 900), json!(now - 900), json!(now - 60))
    })?;
    assert!(matches!(
        refused(&tokens, &expired),
        Some(AuthError::Expired)
    ));
    let within_leeway = forge_claims(&tokens, |c| {
        (c["iat"], c["nbf"], c["exp"]) = (json!(now - 300), json!(now - 300), json!(now - 10))
    })?;
    assert!(tokens.verify(&within_leeway).is_ok(), "30 s leeway");
    let early = forge_claims(&tokens, |c| {
        (c["nbf"], c["exp"]) = (json!(now + 120), json!(now + 600))
    })?;
    assert!(matches!(
        refused(&tokens, &early),
        Some(AuthError::NotYetValid)
    ));
    let from_the_future = forge_claims(&tokens, |c| {
        (c["iat"], c["nbf"]) = (json!(now + 120), json!(now + 120))
    })?;
    assert!(matches!(
        refused(&tokens, &from_the_future),
        Some(AuthError::NotYetValid)
    ));
    Ok(())
}

#[test]
fn tampering_breaks_the_signature() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let tokens = Tokens::open(&config(tmp.path()))?;
    let token = issue(&tokens)?;
    let parts: Vec<&str> = token.split('.').collect();
    let mut promoted = tokens.verify(&token).map(serde_json::to_value)??;
    promoted["role"] = json!("admin");
    let payload = format!("{}.{}.{}", parts[0], b64(&promoted), parts[2]);
    assert!(matches!(
        refused(&tokens, &payload),
        Some(AuthError::BadSignature)
    ));
    let mut signature: Vec<char> = parts[2].chars().collect();
    signature[5] = if signature[5] == 'A' { 'B' } else { 'A' };
    let signature: String = signature.into_iter().collect();
    let tampered = format!("{}.{}.{signature}", parts[0], parts[1]);
    assert!(matches!(
        refused(&tokens, &tampered),
        Some(AuthError::BadSignature)
    ));
    Ok(())
}

#[test]
fn audience_and_issuer_must_match_exactly() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let tokens = Tokens::open(&config(tmp.path()))?;
    let other_aud = forge_claims(&tokens, |c| c["aud"] = json!("tmuxgate-staging"))?;
    assert!(matches!(
        refused(&tokens, &other_aud),
        Some(AuthError::WrongAudience)
    ));
    let listed_aud = forge_claims(&tokens, |c| c["aud"] = json!(["other", "tmuxgate"]))?;
    assert!(
        refused(&tokens, &listed_aud).is_some(),
        "only the gateway's own string form"
    );
    let other_iss = forge_claims(&tokens, |c| c["iss"] = json!("evil"))?;
    assert!(matches!(
        refused(&tokens, &other_iss),
        Some(AuthError::WrongIssuer)
    ));
    Ok(())
}

#[test]
fn missing_or_mistyped_claims_are_malformed() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let tokens = Tokens::open(&config(tmp.path()))?;
    for claim in [
        "sub", "role", "iat", "nbf", "exp", "jti", "iss", "aud", "gen",
    ] {
        let token = forge_claims(&tokens, |c| {
            c.as_object_mut().map(|o| o.remove(claim));
        })?;
        assert!(refused(&tokens, &token).is_some(), "without {claim}");
    }
    // CVE-2026-25537: a string `nbf` must not count as absent.
    let far = clock::now_unix() + 10_000_000;
    let string_nbf = forge_claims(&tokens, |c| c["nbf"] = json!(far.to_string()))?;
    assert!(refused(&tokens, &string_nbf).is_some());
    let string_exp = forge_claims(&tokens, |c| c["exp"] = json!("never"))?;
    assert!(refused(&tokens, &string_exp).is_some());
    let bad_jti = forge_claims(&tokens, |c| c["jti"] = json!("short"))?;
    assert!(matches!(
        refused(&tokens, &bad_jti),
        Some(AuthError::Malformed)
    ));
    let max = MAX_TOKEN_TTL.as_secs();
    let longest = forge_claims(&tokens, |c| c["exp"] = json!(now_plus(c, max)))?;
    assert!(tokens.verify(&longest).is_ok(), "MAX_TOKEN_TTL itself");
    let too_long = forge_claims(&tokens, |c| c["exp"] = json!(now_plus(c, max + 1)))?;
    assert!(matches!(
        refused(&tokens, &too_long),
        Some(AuthError::Malformed)
    ));
    let bad_name = forge_claims(&tokens, |c| c["sub"] = json!("Alice Smith"))?;
    assert!(matches!(
        refused(&tokens, &bad_name),
        Some(AuthError::Malformed)
    ));
    for garbage in [
        "",
        "a.b",
        "a.b.c.d",
        "not-a-token",
        &"x".repeat(MAX_TOKEN_BYTES + 1),
    ] {
        assert!(
            matches!(refused(&tokens, garbage), Some(AuthError::Malformed)),
            "{garbage:.20}"
        );
    }
    Ok(())
}

#[test]
fn alg_none_is_refused() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let tokens = Tokens::open(&config(tmp.path()))?;
    let kid = tokens.keys()[0].kid.clone();
    for alg in ["none", "None", "NONE", "HS512", ""] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
        let unsigned = format!("{}.{}.", b64(&header), b64(&claims()));
        assert!(
            matches!(refused(&tokens, &unsigned), Some(AuthError::WrongAlgorithm)),
            "{alg}"
        );
    }
    let no_alg = format!("{}.{}.", b64(&json!({"kid": kid})), b64(&claims()));
    assert!(matches!(
        refused(&tokens, &no_alg),
        Some(AuthError::WrongAlgorithm)
    ));
    Ok(())
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let tokens = Tokens::open(&pem_config(tmp.path(), JwtAlgorithm::Rs256, "rsa"))?;
    assert!(tokens.verify(&issue(&tokens)?).is_ok());
    let public_pem = std::fs::read(format!("{TESTDATA}/rsa-public.pem"))?;
    let kid = tokens.keys()[0].kid.clone();
    let hmac = jsonwebtoken::EncodingKey::from_secret(&public_pem)?;
    for alg in ["HS256", "RS256"] {
        let message = format!(
            "{}.{}",
            b64(&json!({"alg": alg, "typ": "JWT", "kid": kid})),
            b64(&claims())
        );
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &hmac, jsonwebtoken::Algorithm::HS256)?;
        let confused = format!("{message}.{signature}");
        let error = refused(&tokens, &confused);
        match alg {
            "HS256" => assert!(
                matches!(error, Some(AuthError::WrongAlgorithm)),
                "{error:?}"
            ),
            _ => assert!(matches!(error, Some(AuthError::BadSignature)), "{error:?}"),
        }
    }
    Ok(())
}

#[test]
fn kid_must_name_a_known_key() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let tokens = Tokens::open(&config(tmp.path()))?;
    let mut header = header(&tokens);
    header["kid"] = json!("no-such-key");
    let unknown = forge(&tokens, &header, &claims())?;
    assert!(matches!(
        refused(&tokens, &unknown),
        Some(AuthError::UnknownKey)
    ));
    header.as_object_mut().map(|o| o.remove("kid"));
    let missing = forge(&tokens, &header, &claims())?;
    assert!(matches!(
        refused(&tokens, &missing),
        Some(AuthError::UnknownKey)
    ));
    Ok(())
}

#[test]
fn rotation_keeps_old_tokens_and_signs_with_the_new_key() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let tokens = Tokens::open(&config(tmp.path()))?;
    let old_kid = tokens.keys()[0].kid.clone();
    let old = issue(&tokens)?;
    let keys = tokens.rotate(false)?;
    assert_eq!(keys.len(), 2);
    assert!(keys[0].signing && !keys[1].signing && keys[1].kid == old_kid);
    assert!(keys[1].verifies_until.is_some());
    assert!(
        tokens.verify(&old).is_ok(),
        "the retired key still verifies"
    );
    let new = issue(&tokens)?;
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(new.split('.').next().unwrap_or(""))?)?;
    assert_eq!(header["kid"], keys[0].kid.as_str());
    tokens.rotate(true)?;
    assert!(matches!(
        refused(&tokens, &old),
        Some(AuthError::UnknownKey)
    ));
    assert!(matches!(
        refused(&tokens, &new),
        Some(AuthError::UnknownKey)
    ));
    Ok(())
}

#[test]
fn a_running_gateway_picks_up_a_rotation_from_the_cli() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let gateway = Tokens::open(&config(tmp.path()))?;
    let cli = Tokens::open(&config(tmp.path()))?;
    assert_eq!(gateway.keys(), cli.keys(), "one generated ring, shared");
    cli.rotate(false)?;
    let from_cli = issue(&cli)?;
    assert!(
        gateway.verify(&from_cli).is_ok(),
        "an unknown kid reloads the ring"
    );
    let from_gateway = issue(&gateway)?;
    assert!(cli.verify(&from_gateway).is_ok());
    assert_eq!(
        gateway.keys()[0].kid,
        cli.keys()[0].kid,
        "issuing reloads too"
    );
    Ok(())
}

#[test]
fn a_key_discarded_from_the_cli_stops_verifying_in_a_running_gateway() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let gateway = Tokens::open(&config(tmp.path()))?;
    let cli = Tokens::open(&config(tmp.path()))?;
    let leaked = issue(&gateway)?;
    assert!(gateway.verify(&leaked).is_ok());
    cli.rotate(true)?;
    assert!(matches!(
        refused(&gateway, &leaked),
        Some(AuthError::UnknownKey)
    ));
    Ok(())
}

#[test]
fn a_retired_key_stops_verifying_at_its_verifies_until() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let tokens = Tokens::open(&config(tmp.path()))?;
    let keys = tokens.rotate(false)?;
    let retired = &keys[1];
    let until = retired.verifies_until.ok_or("no verifies_until")?;
    let ring = tokens.current_ring();
    let just_before = until - Duration::from_secs(1);
    assert!(ring.verifier(&retired.kid, just_before).is_some());
    assert!(ring.verifier(&retired.kid, until).is_none());
    assert!(
        ring.verifier(&keys[0].kid, until).is_some(),
        "the signing key has no end"
    );
    Ok(())
}

#[test]
fn previous_secrets_verify_but_do_not_sign() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let old = Secret::new("the-old-secret-is-long-enough-32b");
    let mut before = config(tmp.path());
    before.jwt_secret = Some(old.clone());
    let token = issue(&Tokens::open(&before)?)?;
    let after = Config {
        jwt_secret: Some(Secret::new("the-new-secret-is-long-enough-32b")),
        jwt_previous_secrets: vec![old],
        ..before.clone()
    };
    let tokens = Tokens::open(&after)?;
    assert!(tokens.verify(&token).is_ok());
    assert_ne!(tokens.keys()[0].kid, tokens.keys()[1].kid);
    let without = Config {
        jwt_previous_secrets: Vec::new(),
        ..after
    };
    assert!(matches!(
        Tokens::open(&without)?.verify(&token),
        Err(AuthError::UnknownKey)
    ));
    assert!(matches!(tokens.rotate(false), Err(KeyError::Configured(_))));
    assert!(
        !tmp.path().join("state/jwt-keys.toml").exists(),
        "no ring file with JWT_SECRET"
    );
    Ok(())
}

#[test]
fn es256_and_eddsa_round_trip() -> TestResult {
    let tmp = tempfile::tempdir()?;
    for (algorithm, stem) in [
        (JwtAlgorithm::Es256, "ec"),
        (JwtAlgorithm::EdDsa, "ed"),
        (JwtAlgorithm::Rs256, "rsa"),
    ] {
        let tokens = Tokens::open(&pem_config(tmp.path(), algorithm, stem))?;
        assert_eq!(tokens.algorithm(), algorithm.name());
        let claims = tokens.verify(&issue(&tokens)?)?;
        assert_eq!(claims.sub.as_str(), "alice");
    }
    Ok(())
}

#[test]
fn mismatched_or_previous_key_pairs() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let mut mismatched = pem_config(tmp.path(), JwtAlgorithm::Rs256, "rsa");
    mismatched.jwt_public_key_file = Some(PathBuf::from(format!("{TESTDATA}/rsa2-public.pem")));
    let error = Tokens::open(&mismatched).err().map(|e| e.to_string());
    assert!(error.is_some_and(|e| e.contains("does not match")));
    let old = Tokens::open(&pem_config(tmp.path(), JwtAlgorithm::Rs256, "rsa2"))?;
    let token = issue(&old)?;
    let mut rotated = pem_config(tmp.path(), JwtAlgorithm::Rs256, "rsa");
    rotated.jwt_previous_public_key_files =
        vec![PathBuf::from(format!("{TESTDATA}/rsa2-public.pem"))];
    assert!(Tokens::open(&rotated)?.verify(&token).is_ok());
    let wrong_kind = pem_config(tmp.path(), JwtAlgorithm::Es256, "rsa");
    assert!(Tokens::open(&wrong_kind).is_err());
    Ok(())
}
