//! ocikit's integration tests: one test binary, one module per area, shared helpers.

mod architecture;
mod archive;
mod artifacts;
mod bundle;
mod commands;
mod concurrency;
mod convert;
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
/// The crate's test kit of hand-built tars and frames, shared with its unit tests (one kit).
#[path = "../../src/codec/testkit.rs"]
#[allow(dead_code)]
mod testkit;
mod unpack;
mod validate;

/// Seen by `testkit` as `super::Compression`.
use ocikit::spec::document::media_type::Compression;
