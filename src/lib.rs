//! ocikit: an offline toolkit for OCI image layouts.
//!
//! The library holds all the work; the `ocikit` binary only parses arguments and prints. It is
//! built in layers, each using only those below it (ARCHITECTURE.md):
//!
//! - [`spec`]: the OCI vocabulary (digests, media types, document views, references), no I/O;
//! - [`codec`]: streaming transforms (compression, tars) that know nothing of layouts;
//! - [`store`]: layout directories and archives, the only code that touches their files;
//! - [`graph`]: what references what (resolving references, referrers);
//! - [`ops`]: one module per capability, as the binary's subcommands offer them.
//!
//! Start with [`store::open_read`] (a directory or an archive, for reading),
//! [`store::layout::Layout`] (a layout directory, for writing) and [`graph::resolve::resolve`]
//! (a reference to a manifest).

pub mod codec;
pub mod error;
pub mod graph;
pub mod ops;
pub mod progress;
pub mod spec;
pub mod store;

pub use error::{Error, ErrorKind, Result};
pub use spec::digest::Digest;
