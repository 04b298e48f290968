//! [`Preset`]: named bundles of defaults for typical deployments. A preset sits
//! between the built-in defaults and the environment: any variable still wins.

use std::fmt;
use std::time::Duration;

use super::{Config, KIB, LogFormat};

/// A named starting point for the configuration (`PROXY_PRESET`, `--preset`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The built-in defaults: text logs, 1000 connections.
    #[default]
    Development,
    /// JSON logs, 10 000 connections, 5 min idle timeout.
    Production,
    /// Production plus 50 000 connections, 8 backends, 256 KiB pane logs and a
    /// 60 s ping to cut per-connection memory and timer load.
    HighPerformance,
}

impl Preset {
    /// Overwrites the fields this preset changes; leaves all others alone.
    pub fn apply(self, config: &mut Config) {
        config.preset = self;
        match self {
            Preset::Development => {}
            Preset::Production => apply_production(config),
            Preset::HighPerformance => {
                apply_production(config);
                config.max_connections = 50_000;
                config.backend_pool_size = 8;
                config.ring_buffer_bytes = 256 * KIB;
                config.ping_interval = Duration::from_secs(60);
            }
        }
    }

    /// The name used by `PROXY_PRESET` and `--preset`.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Development => "development",
            Preset::Production => "production",
            Preset::HighPerformance => "high-performance",
        }
    }
}

fn apply_production(config: &mut Config) {
    config.log_format = LogFormat::Json;
    config.max_connections = 10_000;
    config.idle_timeout = Duration::from_secs(300);
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    fn preset(preset: Preset) -> Config {
        let mut config = Config::default();
        preset.apply(&mut config);
        config
    }

    #[test]
    fn development_is_the_default() {
        assert_eq!(preset(Preset::Development), Config::default());
    }

    #[test]
    fn production_and_high_performance_values() {
        let production = preset(Preset::Production);
        assert_eq!(production.log_format, LogFormat::Json);
        assert_eq!(production.max_connections, 10_000);
        assert_eq!(production.idle_timeout, Duration::from_secs(300));
        let fast = preset(Preset::HighPerformance);
        assert_eq!(fast.max_connections, 50_000);
        assert_eq!(fast.backend_pool_size, 8);
        assert_eq!(fast.ring_buffer_bytes, 256 * 1024);
        assert_eq!(fast.ping_interval, Duration::from_secs(60));
        assert_eq!(fast.idle_timeout, Duration::from_secs(300));
        assert_eq!(fast.log_format, LogFormat::Json);
    }

    #[test]
    fn every_preset_is_valid_and_named_like_its_cli_value() {
        for &p in Preset::value_variants() {
            assert_eq!(preset(p).validate(), Ok(()), "{p}");
            let cli_name = p.to_possible_value().map(|v| v.get_name().to_owned());
            assert_eq!(cli_name.as_deref(), Some(p.name()));
        }
    }
}
