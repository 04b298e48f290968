//! The rules of the TLS settings (`ENABLE_SSL`, `TLS_CERT`, `TLS_KEY`,
//! `TLS_RELOAD_INTERVAL`), and the production presets' refusal to serve clear text beyond
//! loopback. Only the configuration is checked here; whether the files hold a usable
//! certificate and key is decided when the server loads them ([`crate::tls`]).

use std::path::PathBuf;
use std::time::Duration;

use super::validate::{ConfigError, MAX_DURATION_MS, invalid, ms};
use super::{Config, Preset};

/// Shortest non-zero `TLS_RELOAD_INTERVAL`: checking two files more often buys nothing.
const MIN_RELOAD_INTERVAL: Duration = Duration::from_millis(100);

impl Config {
    /// Checks the TLS settings; see the module documentation.
    pub(super) fn check_tls(&self) -> Result<(), ConfigError> {
        if self.enable_ssl {
            required("TLS_CERT", &self.tls_cert, "the certificate chain")?;
            required("TLS_KEY", &self.tls_key, "the private key")?;
        } else {
            unused("TLS_CERT", &self.tls_cert)?;
            unused("TLS_KEY", &self.tls_key)?;
        }
        self.check_reload_interval()?;
        self.check_plaintext_exposure()
    }

    fn check_reload_interval(&self) -> Result<(), ConfigError> {
        let interval = self.tls_reload_interval;
        let allowed = MIN_RELOAD_INTERVAL..=Duration::from_millis(MAX_DURATION_MS);
        if interval.is_zero() || allowed.contains(&interval) {
            return Ok(());
        }
        let reason = format!(
            "must be 0 (reload on SIGHUP only) or between {} and {MAX_DURATION_MS} ms",
            ms(MIN_RELOAD_INTERVAL)
        );
        invalid("TLS_RELOAD_INTERVAL", ms(interval), reason)
    }

    /// The production presets promise a deployment fit for a network: no clear text on it.
    fn check_plaintext_exposure(&self) -> Result<(), ConfigError> {
        let production = self.preset != Preset::Development;
        let exposed = !self.proxy_host.to_canonical().is_loopback();
        if production && exposed && !self.enable_ssl {
            return Err(ConfigError::PlaintextExposure {
                preset: self.preset,
                host: self.proxy_host,
            });
        }
        Ok(())
    }
}

fn required(variable: &'static str, path: &Option<PathBuf>, what: &str) -> Result<(), ConfigError> {
    match path {
        Some(_) => Ok(()),
        None => invalid(
            variable,
            "",
            format!("ENABLE_SSL=true needs {what}: the path of a PEM file"),
        ),
    }
}

/// A certificate given without `ENABLE_SSL` is most likely a forgotten switch: refusing it
/// beats serving clear text to someone who believes they configured TLS.
fn unused(variable: &'static str, path: &Option<PathBuf>) -> Result<(), ConfigError> {
    match path {
        None => Ok(()),
        Some(path) => invalid(
            variable,
            path.display(),
            format!("is set but ENABLE_SSL is false: set ENABLE_SSL=true, or unset {variable}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;

    fn tls_config() -> Config {
        Config {
            enable_ssl: true,
            tls_cert: Some("/etc/tmuxgate/cert.pem".into()),
            tls_key: Some("/etc/tmuxgate/key.pem".into()),
            ..Config::for_tests("/tmp/tmuxgate-test".into())
        }
    }

    fn error(config: &Config) -> String {
        crate::config::refusal(config)
    }

    #[test]
    fn enabled_with_both_files_is_valid() {
        assert_eq!(error(&tls_config()), "");
    }

    #[test]
    fn enabled_needs_both_files() {
        let no_cert = Config {
            tls_cert: None,
            ..tls_config()
        };
        assert_eq!(
            error(&no_cert),
            "invalid TLS_CERT=: ENABLE_SSL=true needs the certificate chain: the path of a PEM file"
        );
        let no_key = Config {
            tls_key: None,
            ..tls_config()
        };
        assert!(
            error(&no_key).starts_with("invalid TLS_KEY=: ENABLE_SSL=true needs the private key")
        );
    }

    #[test]
    fn files_without_the_switch_are_refused() {
        let forgotten = Config {
            enable_ssl: false,
            ..tls_config()
        };
        assert_eq!(
            error(&forgotten),
            "invalid TLS_CERT=/etc/tmuxgate/cert.pem: is set but ENABLE_SSL is false: \
             set ENABLE_SSL=true, or unset TLS_CERT"
        );
        let key_only = Config {
            enable_ssl: false,
            tls_cert: None,
            ..tls_config()
        };
        assert!(error(&key_only).starts_with("invalid TLS_KEY=/etc/tmuxgate/key.pem: is set"));
    }

    #[test]
    fn reload_interval_is_zero_or_at_least_100_ms() {
        for (interval_ms, valid) in [
            (0, true),
            (99, false),
            (100, true),
            (MAX_DURATION_MS + 1, false),
        ] {
            let config = Config {
                tls_reload_interval: Duration::from_millis(interval_ms),
                ..tls_config()
            };
            let message = error(&config);
            assert_eq!(message.is_empty(), valid, "{interval_ms}: {message}");
        }
        let config = Config {
            tls_reload_interval: Duration::from_millis(5),
            ..tls_config()
        };
        assert_eq!(
            error(&config),
            "invalid TLS_RELOAD_INTERVAL=5: must be 0 (reload on SIGHUP only) or between 100 \
             and 86400000 ms"
        );
    }

    #[test]
    fn production_presets_refuse_clear_text_beyond_loopback() {
        for preset in [Preset::Production, Preset::HighPerformance] {
            let mut config = Config::for_tests("/tmp/tmuxgate-test".into());
            preset.apply(&mut config);
            config.proxy_host = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
            config.allow_insecure_no_auth = true;
            let message = error(&config);
            let expected = format!("PROXY_PRESET={preset} with PROXY_HOST=0.0.0.0 would send");
            assert!(message.starts_with(&expected), "{message}");
            assert!(message.contains("ENABLE_SSL=true with TLS_CERT and TLS_KEY"));
            let with_tls = Config {
                enable_ssl: true,
                tls_cert: Some("/c.pem".into()),
                tls_key: Some("/k.pem".into()),
                ..config.clone()
            };
            assert_eq!(error(&with_tls), "", "{preset} with TLS");
            let loopback = Config {
                proxy_host: IpAddr::V6(Ipv6Addr::LOCALHOST),
                ..config
            };
            assert_eq!(error(&loopback), "", "{preset} on loopback");
        }
    }

    #[test]
    fn development_may_serve_clear_text_with_consent() {
        let config = Config {
            proxy_host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            allow_insecure_no_auth: true,
            ..Config::for_tests("/tmp/tmuxgate-test".into())
        };
        assert_eq!(error(&config), "");
    }
}
