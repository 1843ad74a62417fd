//! The OCI vocabulary: digests, media types, read-only document views, platforms, references.
//! Bytes in, values out; nothing here does I/O.

pub mod digest;
pub mod docker_archive;
pub mod document;
pub mod platform;
pub mod reference;
pub mod time;
pub mod units;
