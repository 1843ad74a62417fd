//! ocikit's integration tests: one test binary, one module per command, shared helpers.

mod helpers;
