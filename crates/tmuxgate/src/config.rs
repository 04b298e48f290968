//! Configuration (being written).

/// Placeholder.
#[derive(Clone, Debug, Default)]
pub struct Config;
