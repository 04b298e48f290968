//! Combines default, preset, environment and flags into a [`Config`] and keeps
//! where each value came from, for `tmuxgate config`.

use std::collections::BTreeMap;
use std::fmt;

use clap::ArgMatches;
use clap::parser::ValueSource;
use serde_json::{Map, Value};

use super::settings::entries;
use super::{Config, Overrides};

/// Where a value came from, lowest precedence first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Built-in default.
    #[default]
    Default,
    /// Set by the selected [`super::Preset`].
    Preset,
    /// An environment variable.
    Env,
    /// A command-line flag.
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Default => "default",
            Source::Preset => "preset",
            Source::Env => "env",
            Source::Flag => "flag",
        })
    }
}

/// The [`Source`] of each variable, by environment variable name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources(BTreeMap<&'static str, Source>);

impl Sources {
    /// Where `variable` (e.g. `"PROXY_PORT"`) came from.
    pub fn get(&self, variable: &str) -> Source {
        self.0.get(variable).copied().unwrap_or_default()
    }

    pub(super) fn set(&mut self, variable: &'static str, source: Source) {
        self.0.insert(variable, source);
    }
}

/// The settings given in the environment and on the command line, kept apart.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layers {
    /// Values from environment variables.
    pub env: Overrides,
    /// Values from command-line flags.
    pub flags: Overrides,
}

/// A resolved configuration and where each value came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// The effective configuration (not yet validated).
    pub config: Config,
    /// The source of each value.
    pub sources: Sources,
}

impl Layers {
    /// Splits what clap parsed (env and flags merged) by each value's source.
    /// `matches` are those of the (sub)command `settings` was flattened into.
    pub fn from_matches(settings: &Overrides, matches: &ArgMatches) -> Layers {
        let from = |wanted: ValueSource| {
            let mut layer = settings.clone();
            layer.retain(|id| matches.value_source(id) == Some(wanted));
            layer
        };
        Layers {
            env: from(ValueSource::EnvVariable),
            flags: from(ValueSource::CommandLine),
        }
    }

    /// Applies default < preset < environment < flags. The preset itself is
    /// taken from the highest layer that names one.
    pub fn resolve(&self) -> Resolved {
        let preset = self.flags.preset.or(self.env.preset).unwrap_or_default();
        let mut config = Config::default();
        let mut sources = Sources::default();
        preset.apply(&mut config);
        mark_preset_values(&config, &mut sources);
        self.env.apply_to(&mut config, &mut sources, Source::Env);
        self.flags.apply_to(&mut config, &mut sources, Source::Flag);
        Resolved { config, sources }
    }
}

/// Marks as [`Source::Preset`] every value that differs from the default.
fn mark_preset_values(config: &Config, sources: &mut Sources) {
    let defaults = entries(&Config::default());
    for ((name, value), (_, default)) in entries(config).into_iter().zip(defaults) {
        if value != default {
            sources.set(name, Source::Preset);
        }
    }
}

impl Resolved {
    /// One `NAME = value  # source` line per variable, secrets as `***`,
    /// durations in ms like the variables, `(none)` for unset options.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, value) in entries(&self.config) {
            let shown = match value {
                Value::String(text) => text,
                Value::Null => "(none)".to_owned(),
                Value::Array(items) if items.is_empty() => "(none)".to_owned(),
                Value::Array(items) => items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map_or_else(|| item.to_string(), str::to_owned)
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            out.push_str(&format!("{name} = {shown}  # {}\n", self.sources.get(name)));
        }
        out
    }

    /// `{"NAME": {"value": ..., "source": "..."}, ...}`, secrets as `"***"`.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        for (name, value) in entries(&self.config) {
            let source = Value::String(self.sources.get(name).to_string());
            let entry =
                Map::from_iter([("value".to_owned(), value), ("source".to_owned(), source)]);
            object.insert(name.to_owned(), Value::Object(entry));
        }
        Value::Object(object)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use clap::{CommandFactory, FromArgMatches, Parser};

    use super::*;
    use crate::config::{LogFormat, Preset, Secret};

    /// Parses flags with environment lookups off: the process env never leaks in.
    fn flags(args: &[&str]) -> Overrides {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            settings: Overrides,
        }
        let argv = std::iter::once("tmuxgate").chain(args.iter().copied());
        let matches = Only::command()
            .mut_args(|arg| arg.env(None))
            .try_get_matches_from(argv)
            .expect("valid test flags");
        let settings = Overrides::from_arg_matches(&matches).expect("valid test flags");
        Layers::from_matches(&settings, &matches).flags
    }

    fn resolve(env: Overrides, args: &[&str]) -> Resolved {
        Layers {
            env,
            flags: flags(args),
        }
        .resolve()
    }

    #[test]
    fn nothing_given_is_the_default() {
        let resolved = resolve(Overrides::default(), &[]);
        assert_eq!(resolved.config, Config::default());
        assert_eq!(resolved.sources, Sources::default());
    }

    /// `DEFAULT_COMMAND=` (empty, as container templates write it) means unset: the
    /// integrated shell, not an empty tmux `default-command`.
    #[test]
    fn an_empty_default_command_is_unset() {
        let env = Overrides {
            default_command: Some(String::new()),
            ..Overrides::default()
        };
        assert_eq!(resolve(env, &[]).config.default_command, None);
        let set = resolve(Overrides::default(), &["--default-command", "exec cat"]);
        assert_eq!(set.config.default_command.as_deref(), Some("exec cat"));
    }

    #[test]
    fn preset_overrides_default() {
        let env = Overrides {
            preset: Some(Preset::Production),
            ..Overrides::default()
        };
        let resolved = resolve(env, &[]);
        assert_eq!(resolved.config.max_connections, 10_000);
        assert_eq!(resolved.sources.get("MAX_CONNECTIONS"), Source::Preset);
        assert_eq!(resolved.sources.get("LOG_FORMAT"), Source::Preset);
        assert_eq!(resolved.sources.get("PROXY_PRESET"), Source::Env);
        assert_eq!(resolved.sources.get("BACKEND_POOL_SIZE"), Source::Default);
    }

    #[test]
    fn env_overrides_preset() {
        let env = Overrides {
            preset: Some(Preset::HighPerformance),
            max_connections: Some(7),
            ..Overrides::default()
        };
        let resolved = resolve(env, &[]);
        assert_eq!(resolved.config.max_connections, 7);
        assert_eq!(resolved.sources.get("MAX_CONNECTIONS"), Source::Env);
        assert_eq!(resolved.config.backend_pool_size, 8);
    }

    #[test]
    fn flag_overrides_env_and_preset() {
        let env = Overrides {
            proxy_port: Some(9000),
            log_format: Some(LogFormat::Json),
            ..Overrides::default()
        };
        let resolved = resolve(
            env,
            &[
                "--port",
                "9100",
                "--preset",
                "production",
                "--log-format",
                "text",
            ],
        );
        assert_eq!(resolved.config.proxy_port, 9100);
        assert_eq!(resolved.sources.get("PROXY_PORT"), Source::Flag);
        assert_eq!(resolved.config.log_format, LogFormat::Text);
        assert_eq!(resolved.sources.get("LOG_FORMAT"), Source::Flag);
        assert_eq!(resolved.config.idle_timeout, Duration::from_secs(300));
        assert_eq!(resolved.sources.get("IDLE_TIMEOUT"), Source::Preset);
    }

    #[test]
    fn flag_preset_beats_env_preset() {
        let env = Overrides {
            preset: Some(Preset::HighPerformance),
            ..Overrides::default()
        };
        let resolved = resolve(env, &["--preset", "production"]);
        assert_eq!(resolved.config.preset, Preset::Production);
        assert_eq!(resolved.config.backend_pool_size, 5);
        assert_eq!(resolved.sources.get("PROXY_PRESET"), Source::Flag);
    }

    #[test]
    fn render_lists_every_variable_with_its_source() {
        let env = Overrides {
            proxy_host: Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            redis_password: Some(Secret::new("hunter2")),
            ..Overrides::default()
        };
        let text = resolve(env, &["--target-latency", "20"]).render();
        assert_eq!(text.lines().count(), crate::config::VARIABLES.len());
        assert!(text.contains("PROXY_HOST = 0.0.0.0  # env\n"));
        assert!(text.contains("TARGET_LATENCY = 20  # flag\n"));
        assert!(text.contains("PING_INTERVAL = 30000  # default\n"));
        assert!(text.contains("REDIS_HOST = (none)  # default\n"));
        assert!(text.contains("REDIS_PASSWORD = ***  # env\n"));
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn origins_render_comma_separated_and_as_a_json_array() {
        let none = resolve(Overrides::default(), &[]);
        assert!(
            none.render()
                .contains("ALLOWED_ORIGINS = (none)  # default\n")
        );
        assert_eq!(
            none.to_json()["ALLOWED_ORIGINS"]["value"],
            serde_json::json!([])
        );
        let two = resolve(
            Overrides::default(),
            &["--allowed-origins", "https://a.example,http://b.example:81"],
        );
        let text = two.render();
        let line = "ALLOWED_ORIGINS = https://a.example,http://b.example:81  # flag\n";
        assert!(text.contains(line), "{text}");
        let json = two.to_json();
        let expected = serde_json::json!(["https://a.example", "http://b.example:81"]);
        assert_eq!(json["ALLOWED_ORIGINS"]["value"], expected);
    }

    #[test]
    fn json_is_typed_and_masked() {
        let resolved = resolve(
            Overrides::default(),
            &["--redis-password", "hunter2", "--enable-metrics=false"],
        );
        let json = resolved.to_json();
        assert_eq!(json["REDIS_PASSWORD"]["value"], "***");
        assert_eq!(json["REDIS_PASSWORD"]["source"], "flag");
        assert_eq!(json["ENABLE_METRICS"]["value"], false);
        assert_eq!(json["PROXY_PORT"]["value"], 8080);
        assert_eq!(json["REDIS_HOST"]["value"], Value::Null);
        assert!(!json.to_string().contains("hunter2"));
        assert_eq!(
            resolved.config.redis_password.as_ref().map(Secret::expose),
            Some("hunter2")
        );
    }
}
