//! Layout archives: OCI layouts packed as tar, tar+gzip or tar+zstd, read in place
//! ([`Archive`]) and written as one stream ([`ArchiveWriter`]).

pub mod parts;
mod read;
mod write;

pub use read::{Archive, Kept, Stage};
pub use write::{ArchiveOptions, ArchiveWriter, Finished};
