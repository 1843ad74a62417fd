//! Layers: deterministic compression and reproducible tar building.
//!
//! - [`compress`]: a compressing writer ([`CompressWriter`]) whose output depends only on its
//!   input and options (gzip with a fixed header, block-parallel past one block ([`gzip`]);
//!   zstd always in multithreaded mode), never on the number of threads. Reading is
//!   [`crate::codec::decode`]'s.
//! - [`builder`]: a reproducible layer tar from a list of [`Entry`]s (sorted, owned by root,
//!   one fixed mtime), compressed by [`encode_layer`], which also returns the tar's diff_id:
//!   one streaming pass.
//!
//! ```
//! use ocikit::codec::layer::{encode_layer, Compression, Entry, LayerOptions};
//! # fn main() -> ocikit::Result<()> {
//! let entries = [Entry::dir("etc"), Entry::file("etc/motd", "hello\n")];
//! let options = LayerOptions::new(Compression::Zstd).with_mtime(1_700_000_000);
//! let (blob, diff_id) = encode_layer(&entries, &options, Vec::new())?;
//! println!("{} compressed bytes, diff_id {diff_id}", blob.len());
//! # Ok(())
//! # }
//! ```

pub mod builder;
pub mod compress;
pub mod gzip;
pub mod scan;

pub use builder::{
    encode_layer, encode_layer_with, write_tar, Content, Entry, EntryKind, LayerOptions, LayerSink,
};
pub use compress::{compress_bytes, CompressOptions, CompressWriter, Compression};
pub use scan::{scan, Scan, ScanOptions};

#[cfg(test)]
/// A small layer of every entry kind the tar writer knows, with paths to normalize
/// (`/hello.txt`, `./etc/…`, `bin/`).
pub(crate) fn sample_entries() -> Vec<Entry> {
    vec![
        Entry::file("/hello.txt", "hello\n"),
        Entry::symlink("etc/motd", "../hello.txt"),
        Entry::dir("etc"),
        Entry::file("./etc/os-release", "ID=test\n").with_mode(0o600),
        Entry::file("bin/tool", vec![0u8; 1000]).with_mode(0o755),
        Entry::dir("bin/"),
    ]
}
