//! wire protocol (being written)
