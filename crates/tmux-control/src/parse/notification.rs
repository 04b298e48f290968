//! Decoding `%…` notification lines (received outside reply blocks).
//!
//! Parsing works on bytes and never assumes UTF-8: names and `%output` data
//! are arbitrary bytes. Unknown notifications and malformed known ones give
//! `None`; extra trailing fields after the ones we need are ignored so newer
//! tmux versions that append fields still parse.

use bytes::Bytes;

use super::decode_octal;
use crate::{PaneId, SessionId, WindowId};

/// An asynchronous event reported by tmux.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Pane output (`%output`, or `%extended-output` with pause-after), decoded to raw bytes.
    Output { pane: PaneId, data: Bytes },
    /// This client is now attached to `session`; `name` is tmux's printable form of the name.
    SessionChanged { session: SessionId, name: Vec<u8> },
    /// A session was renamed.
    SessionRenamed { session: SessionId, name: Vec<u8> },
    /// A session was created or destroyed.
    SessionsChanged,
    /// The current window of a session changed.
    SessionWindowChanged {
        session: SessionId,
        window: WindowId,
    },
    /// Another client is now attached to a different session.
    ClientSessionChanged {
        client: Vec<u8>,
        session: SessionId,
        name: Vec<u8>,
    },
    /// A client detached.
    ClientDetached { client: Vec<u8> },
    /// A window was linked to this client's session.
    WindowAdd { window: WindowId },
    /// A window of this client's session was closed.
    WindowClose { window: WindowId },
    /// A window was created in another session.
    UnlinkedWindowAdd { window: WindowId },
    /// A window in another session was closed.
    UnlinkedWindowClose { window: WindowId },
    /// A window of this client's session was renamed.
    WindowRenamed { window: WindowId, name: Vec<u8> },
    /// The active pane of a window changed.
    WindowPaneChanged { window: WindowId, pane: PaneId },
    /// A window's layout changed (`flags` may be empty).
    LayoutChange {
        window: WindowId,
        layout: Vec<u8>,
        visible_layout: Vec<u8>,
        flags: Vec<u8>,
    },
    /// A pane entered or left a mode such as copy mode.
    PaneModeChanged { pane: PaneId },
    /// Output of a pane is paused for this client (pause-after); queued output was dropped.
    Pause { pane: PaneId },
    /// Output of a pane resumed after a pause (without the dropped part).
    Continue { pane: PaneId },
    /// The connection ended: `%exit [REASON]`, or EOF without `%exit` (reason None).
    Exit { reason: Option<Vec<u8>> },
    /// A configuration file error (tmux 3.4+).
    ConfigError { error: Vec<u8> },
    /// A message from `display-message` (tmux 3.4+).
    Message { message: Vec<u8> },
    /// A paste buffer was changed (tmux 3.4+).
    PasteBufferChanged { name: Vec<u8> },
    /// A format subscription changed; the fields after the name, raw (tmux 3.2+).
    SubscriptionChanged { name: Vec<u8>, payload: Vec<u8> },
}

impl Notification {
    /// Whether this may change which panes a session has, which is active, their size or
    /// what they show other than by output: everything except output, renames, other
    /// clients' moves and messages. A cache of such facts is stale after one of these.
    pub fn may_change_panes(&self) -> bool {
        !matches!(
            self,
            Notification::Output { .. }
                | Notification::SessionRenamed { .. }
                | Notification::SessionsChanged
                | Notification::ClientSessionChanged { .. }
                | Notification::ClientDetached { .. }
                | Notification::UnlinkedWindowAdd { .. }
                | Notification::WindowRenamed { .. }
                | Notification::ConfigError { .. }
                | Notification::Message { .. }
                | Notification::PasteBufferChanged { .. }
                | Notification::SubscriptionChanged { .. }
        )
    }
}

/// Splits at the first space: (word, rest after the space).
pub(crate) fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == b' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

fn pane(s: &[u8]) -> Option<(PaneId, &[u8])> {
    let (word, rest) = split_word(s);
    Some((PaneId::from_bytes(word).ok()?, rest))
}

fn window(s: &[u8]) -> Option<(WindowId, &[u8])> {
    let (word, rest) = split_word(s);
    Some((WindowId::from_bytes(word).ok()?, rest))
}

fn session(s: &[u8]) -> Option<(SessionId, &[u8])> {
    let (word, rest) = split_word(s);
    Some((SessionId::from_bytes(word).ok()?, rest))
}

impl Notification {
    /// Parses one line (without its `\n`); `None` for anything that is not a
    /// well-formed known notification.
    pub fn parse(line: &[u8]) -> Option<Notification> {
        let (kind, rest) = split_word(line);
        match kind {
            b"%output" => parse_output(rest),
            b"%extended-output" => parse_extended_output(rest),
            b"%pause" => pane(rest).map(|(pane, _)| Notification::Pause { pane }),
            b"%continue" => pane(rest).map(|(pane, _)| Notification::Continue { pane }),
            b"%pane-mode-changed" => {
                pane(rest).map(|(pane, _)| Notification::PaneModeChanged { pane })
            }
            b"%exit" => Some(Notification::Exit {
                reason: (!rest.is_empty()).then(|| rest.to_vec()),
            }),
            _ => parse_session_event(kind, rest)
                .or_else(|| parse_window_event(kind, rest))
                .or_else(|| parse_text_event(kind, rest)),
        }
    }
}

fn parse_output(rest: &[u8]) -> Option<Notification> {
    let (pane, data) = pane(rest)?;
    Some(Notification::Output {
        pane,
        data: Bytes::from(decode_octal(data)),
    })
}

/// `%extended-output %P AGE … : DATA`: the data follows the first lone `:`.
fn parse_extended_output(rest: &[u8]) -> Option<Notification> {
    let (pane, mut rest) = pane(rest)?;
    while !rest.is_empty() {
        let (word, tail) = split_word(rest);
        if word == b":" {
            return Some(Notification::Output {
                pane,
                data: Bytes::from(decode_octal(tail)),
            });
        }
        rest = tail;
    }
    None
}

fn parse_session_event(kind: &[u8], rest: &[u8]) -> Option<Notification> {
    Some(match kind {
        b"%session-changed" => {
            let (session, name) = session(rest)?;
            Notification::SessionChanged {
                session,
                name: name.to_vec(),
            }
        }
        b"%session-renamed" => {
            let (session, name) = session(rest)?;
            Notification::SessionRenamed {
                session,
                name: name.to_vec(),
            }
        }
        b"%sessions-changed" => Notification::SessionsChanged,
        b"%session-window-changed" => {
            let (session, rest) = session(rest)?;
            let (window, _) = window(rest)?;
            Notification::SessionWindowChanged { session, window }
        }
        b"%client-session-changed" => {
            let (client, rest) = split_word(rest);
            let (session, name) = session(rest)?;
            Notification::ClientSessionChanged {
                client: client.to_vec(),
                session,
                name: name.to_vec(),
            }
        }
        b"%client-detached" if !rest.is_empty() => Notification::ClientDetached {
            client: rest.to_vec(),
        },
        _ => return None,
    })
}

fn parse_window_event(kind: &[u8], rest: &[u8]) -> Option<Notification> {
    let (window, tail) = window(rest)?;
    Some(match kind {
        b"%window-add" => Notification::WindowAdd { window },
        b"%window-close" => Notification::WindowClose { window },
        b"%unlinked-window-add" => Notification::UnlinkedWindowAdd { window },
        b"%unlinked-window-close" => Notification::UnlinkedWindowClose { window },
        b"%window-renamed" => Notification::WindowRenamed {
            window,
            name: tail.to_vec(),
        },
        b"%window-pane-changed" => Notification::WindowPaneChanged {
            window,
            pane: pane(tail)?.0,
        },
        b"%layout-change" => parse_layout(window, tail)?,
        _ => return None,
    })
}

fn parse_layout(window: WindowId, rest: &[u8]) -> Option<Notification> {
    let (layout, rest) = split_word(rest);
    if layout.is_empty() {
        return None;
    }
    let (visible, flags) = split_word(rest);
    Some(Notification::LayoutChange {
        window,
        layout: layout.to_vec(),
        visible_layout: visible.to_vec(),
        flags: flags.to_vec(),
    })
}

fn parse_text_event(kind: &[u8], rest: &[u8]) -> Option<Notification> {
    let text = rest.to_vec();
    Some(match kind {
        b"%config-error" => Notification::ConfigError { error: text },
        b"%message" => Notification::Message { message: text },
        b"%paste-buffer-changed" => Notification::PasteBufferChanged { name: text },
        b"%subscription-changed" => {
            let (name, payload) = split_word(rest);
            Notification::SubscriptionChanged {
                name: name.to_vec(),
                payload: payload.to_vec(),
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
#[path = "notification_tests.rs"]
mod tests;
