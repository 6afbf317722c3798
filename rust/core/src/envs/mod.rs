//! Built-in environments (being written).
