//! Layers: deterministic compression and reproducible tar building.
//!
//! - [`compress`]: a compressing writer ([`CompressWriter`]) whose output depends only on its
//!   input and options (gzip with a fixed header, zstd always in multithreaded mode), and a
//!   decompressing reader ([`decompress`]) chosen by [`Compression`].
//! - [`builder`]: a reproducible layer tar from a list of [`Entry`]s (sorted, owned by root,
//!   one fixed mtime), stored as a compressed blob by [`build_layer`], which reports the blob's
//!   descriptor and the tar's diff_id in one streaming pass.
//!
//! ```no_run
//! use ocikit::layer::{build_layer, Compression, Entry, LayerOptions};
//! # fn main() -> ocikit::Result<()> {
//! let layout = ocikit::layout::Layout::open(std::path::Path::new("my-layout"))?;
//! let writer = layout.writer()?;
//! let entries = [Entry::dir("etc"), Entry::file("etc/motd", "hello\n")];
//! let mtime = ocikit::layer::source_date_epoch()?.unwrap_or(0);
//! let options = LayerOptions::new(Compression::Zstd).with_mtime(mtime);
//! let layer = build_layer(&writer, &entries, &options)?;
//! println!("{} (diff_id {})", layer.descriptor.digest, layer.diff_id);
//! # Ok(())
//! # }
//! ```

pub mod builder;
pub mod compress;

pub use builder::{
    build_layer, source_date_epoch, write_tar, BuiltLayer, Content, Entry, EntryKind, LayerOptions,
};
pub use compress::{
    compress_bytes, decompress, layer_media_type, CompressOptions, CompressWriter, Compression,
};
