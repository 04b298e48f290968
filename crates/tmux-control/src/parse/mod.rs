//! Parsing tmux control-mode output: line framing, `%output` unescaping,
//! reply guards and notifications. Pure functions over bytes, no I/O.

mod framer;
mod line;
mod notification;
mod octal;

pub use framer::{LINE_MAX_BYTES, LineFramer, LineTooLong};
pub use line::{Guard, GuardKind, Line, parse_guard};
pub use notification::Notification;
pub use octal::decode_octal;
