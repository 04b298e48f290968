//! tmux control-mode client (being written).
#![forbid(unsafe_code)]
