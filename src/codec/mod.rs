//! Streaming transforms over `Read`/`Write` that know nothing of layouts, each concern once:
//!
//! - [`sniff`]: what a stream is, from its first bytes (gzip, zstd, tar, JSON, …);
//! - [`decode`]: the one decoder (gzip, zstd) and the decompression-bomb policy it enforces;
//! - [`tar`]: the one tar reader (hardened, streaming, Go's `archive/tar` semantics) and the
//!   one normaliser of entry names;
//! - [`layer`]: deterministic compression and reproducible layer tars (writing);
//! - [`extract`]: escape-safe extraction to disk (every path resolved on disk, never
//!   following a link out of the root);
//! - [`apply`]: the one layer applier (decoder, tar reader, names, [`extract`] root; OCI
//!   whiteouts for an image's root file system);
//! - [`pipe`]: copying a stream while hashing it, reading and writing on two threads.

pub mod apply;
pub mod decode;
pub mod extract;
pub mod layer;
pub mod pipe;
pub mod sniff;
pub mod tar;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
use crate::spec::document::media_type::Compression;
