//! Test certificates: a certificate authority made fresh per test, server certificates it
//! signs for `localhost` and 127.0.0.1 (each with its own key and serial), files written the
//! way an operator's tooling writes them (a temporary file renamed over the old one), and a
//! rustls client that trusts only that authority.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SerialNumber};
use rustls::pki_types::CertificateDer;

/// A certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its key, as PEM, and the certificate's DER.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

/// Where a gateway reads its certificate and key.
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Ca {
    /// A new authority with its own key.
    pub fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "tmuxgate test CA");
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        Ca { issuer }
    }

    /// The authority's own certificate, as PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `localhost` and 127.0.0.1 with a fresh key and `serial`.
    pub fn issue(&self, serial: u64) -> Leaf {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A client configuration trusting this authority only, offering ALPN `http/1.1`.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.client_config_for(rustls::DEFAULT_VERSIONS)
    }

    /// [`client_config`](Self::client_config) speaking only `versions`.
    pub fn client_config_for(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        let ca: CertificateDer<'static> = self.issuer.der().clone();
        roots.add(ca).expect("CA certificate is a valid root");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("aws-lc-rs supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl CertFiles {
    /// `cert.pem` and `key.pem` in `dir`, holding `leaf`.
    pub fn create(dir: &Path, leaf: &Leaf) -> CertFiles {
        let files = CertFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        files.write(&leaf.cert_pem, &leaf.key_pem);
        files
    }

    /// Replaces both files, each by an atomic rename; the key last, as renewal tools do.
    pub fn write(&self, cert_pem: &str, key_pem: &str) {
        replace(&self.cert, cert_pem);
        replace(&self.key, key_pem);
    }
}

fn replace(path: &Path, text: &str) {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    std::fs::write(&temporary, text).expect("write the new file");
    std::fs::rename(&temporary, path).expect("rename it into place");
}
