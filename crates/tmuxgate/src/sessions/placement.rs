//! The sessions' side of placement: the per-backend snapshot a strategy chooses from
//! (sessions, viewers, output held, from the registry and live hubs) and the shape check
//! of a `session-create`'s pin. Run once per creation, never on input or output.

use tmuxgate_protocol::request::SessionOptions;

use super::{SessionError, Sessions};
use crate::backends::Candidate;

/// Labels a `session-create` may ask for at most.
const MAX_PIN_LABELS: usize = 16;

/// `options.backend` and `options.labels` are well formed (whether they match is
/// placement's business).
pub(super) fn valid_pin(options: &SessionOptions) -> Result<(), SessionError> {
    let id_ok = options.backend.as_deref().is_none_or(|id| {
        id.strip_prefix("tmux-")
            .is_some_and(|n| !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()))
    });
    if !id_ok {
        return Err(SessionError::Invalid(
            "`options.backend` must be a backend id like tmux-0".into(),
        ));
    }
    let labels_ok = options.labels.len() <= MAX_PIN_LABELS
        && options
            .labels
            .iter()
            .all(|l| crate::backends::spec::is_label(l));
    if !labels_ok {
        return Err(SessionError::Invalid(format!(
            "`options.labels`: at most {MAX_PIN_LABELS} labels matching [a-z0-9_-]{{1,32}}"
        )));
    }
    Ok(())
}

impl Sessions {
    /// What placement needs to know about every backend now.
    pub fn placement_snapshot(&self) -> Vec<Candidate> {
        let mut snapshot: Vec<Candidate> = self
            .pool
            .all()
            .iter()
            .map(|b| Candidate {
                index: b.index,
                weight: b.weight(),
                labels: b.labels().to_vec(),
                latency_ewma_us: b.latency_ewma().as_micros() as u64,
                up: b.admits(),
                draining: b.is_draining(),
                ..Candidate::default()
            })
            .collect();
        for entry in self.registry.all() {
            let Some(c) = snapshot.get_mut(entry.backend.index) else {
                continue;
            };
            if entry.is_lost() {
                continue;
            }
            c.sessions += 1;
            if let Some(hub) = entry.live_hub() {
                c.viewers += hub.viewer_count() as usize;
                c.recent_output_bytes += hub.output_held_bytes();
            }
        }
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(backend: Option<&str>, labels: &[&str]) -> SessionOptions {
        SessionOptions {
            backend: backend.map(str::to_owned),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            ..SessionOptions::default()
        }
    }

    #[test]
    fn pins_are_checked_for_shape() {
        assert!(valid_pin(&pin(None, &[])).is_ok());
        assert!(valid_pin(&pin(Some("tmux-12"), &["gpu", "fast_1"])).is_ok());
        for bad in ["tmux-", "tmux-1a", "tmux-1234", "../tmux-1", "TMUX-1", ""] {
            assert!(valid_pin(&pin(Some(bad), &[])).is_err(), "{bad}");
        }
        assert!(valid_pin(&pin(None, &["GPU"])).is_err());
        assert!(valid_pin(&pin(None, &[""])).is_err());
        assert!(valid_pin(&pin(None, &["a"; 17])).is_err());
    }
}
