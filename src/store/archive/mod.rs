//! Layout archives: OCI layouts packed as tar, tar+gzip or tar+zstd, read in place.

mod read;

pub use read::Archive;
