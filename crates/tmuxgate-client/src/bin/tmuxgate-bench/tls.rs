//! `--tls`: a certificate authority and a server certificate for 127.0.0.1 made for the run,
//! the started gateway's TLS settings pointing at them, and the client configuration every
//! connection of the run trusts (set once, read by `conn::connect`).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tmuxgate_client::rustls;

/// What every connection of a `--tls` run trusts: the run's authority only.
static CLIENT: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

/// The client configuration of a `--tls` run; `None` otherwise.
pub fn client_config() -> Option<Arc<rustls::ClientConfig>> {
    CLIENT.get().cloned()
}

/// Writes a certificate for 127.0.0.1 and its key into `dir` (created if needed) and returns
/// the gateway settings that serve them. The authority is made once per run.
pub fn prepare(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca = authority()?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?
        .signed_by(&key, ca)?;
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).context("writing the certificate")?;
    std::fs::write(&key_path, key.serialize_pem()).context("writing the key")?;
    if CLIENT.get().is_none() {
        let _ = CLIENT.set(trusting(ca.der())?);
    }
    Ok(vec![
        ("ENABLE_SSL".into(), "true".into()),
        ("TLS_CERT".into(), cert_path.display().to_string()),
        ("TLS_KEY".into(), key_path.display().to_string()),
    ])
}

/// The run's authority (one per run, so the client trusts every gateway it starts).
fn authority() -> anyhow::Result<&'static CertifiedIssuer<'static, KeyPair>> {
    static CA: OnceLock<CertifiedIssuer<'static, KeyPair>> = OnceLock::new();
    if let Some(ca) = CA.get() {
        return Ok(ca);
    }
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let made = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
    Ok(CA.get_or_init(|| made))
}

fn trusting(
    ca: &rustls::pki_types::CertificateDer<'static>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone())?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
