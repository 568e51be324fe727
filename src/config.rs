//! Configuration: one TOML file plus flags.
