//! ocikit's integration tests: one test binary, one module per area, shared helpers.

mod archive;
mod commands;
mod concurrency;
mod fixtures;
mod helpers;
mod interop;
mod manpages;
mod testdata;
