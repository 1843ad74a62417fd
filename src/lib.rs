//! ocikit: an offline toolkit for OCI image layouts.
//!
//! The library holds all the work; the `ocikit` binary only parses arguments and prints. Start
//! with [`layout::Layout`] (a layout directory), [`resolve::open_read`] (a directory or an
//! archive, for reading) and [`resolve::resolve`] (a reference to a manifest).

pub mod archive;
pub mod artifact;
pub mod catalog;
pub mod codec;
pub mod digest;
pub mod document;
pub mod error;
pub mod gc;
pub mod inspect;
pub mod layer;
pub mod layout;
pub mod platform;
pub mod reference;
pub mod referrers;
pub mod resolve;
pub mod tag;
pub mod units;
pub mod validate;

pub use digest::Digest;
pub use error::{Error, Result};
