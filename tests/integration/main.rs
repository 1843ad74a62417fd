//! ocikit's integration tests: one test binary, one module per area, shared helpers.

mod architecture;
mod archive;
mod artifacts;
mod bundle;
mod commands;
mod concurrency;
mod copy;
mod differentials;
mod export;
mod fixtures;
mod gc;
mod helpers;
mod images;
mod import;
mod interop;
mod manpages;
mod producers;
mod referrers;
mod safety;
mod testdata;
mod validate;
