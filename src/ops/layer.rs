//! Layer blobs: a reproducible tar of entries, compressed and stored in one streaming pass.

use crate::codec::layer::{encode_layer, Entry, LayerOptions};
use crate::error::Result;
use crate::spec::digest::{Algorithm, Digest};
use crate::spec::document::media_type::layer_media_type;
use crate::spec::document::Descriptor;
use crate::store::layout::LayoutWriter;

/// A layer stored in a layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltLayer {
    /// The descriptor of the compressed blob (media type, digest, size), for a manifest.
    pub descriptor: Descriptor,
    /// The digest of the uncompressed tar, for the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
}

/// Builds the tar of `entries`, compresses it and stores it as a blob through `writer`: the
/// compressed bytes are written once, straight into the blob's temp file, hashed on the way.
/// Nothing is added to the layout if any step fails.
pub fn build_layer(
    writer: &LayoutWriter<'_>,
    entries: &[Entry],
    options: &LayerOptions,
) -> Result<BuiltLayer> {
    let sink = writer.blob_sink(Algorithm::Sha256)?;
    let (sink, diff_id) = encode_layer(entries, options, sink)?;
    let stored = sink.finish()?.commit()?;
    Ok(BuiltLayer {
        descriptor: Descriptor::new(
            layer_media_type(options.compress.compression),
            stored.digest,
            stored.size,
        ),
        diff_id,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::codec::decode::{decompress, Limits};
    use crate::codec::layer::sample_entries as sample;
    use crate::codec::layer::{write_tar, Compression};
    use crate::store::layout::{Layout, LayoutRead};

    #[test]
    fn build_layer_stores_blob_and_reports_diff_id() {
        let dir = tempfile::tempdir().unwrap();
        let (layout, _) = Layout::init(dir.path()).unwrap();
        let writer = layout.writer().unwrap();
        let tar_bytes = write_tar(&sample(), 7, Vec::new()).unwrap();
        let diff_id = Digest::sha256_of(&tar_bytes);
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let options = LayerOptions::new(compression).with_mtime(7);
            let built = build_layer(&writer, &sample(), &options).unwrap();
            assert_eq!(built.diff_id, diff_id, "{}", compression.name());
            assert_eq!(built.descriptor.media_type, layer_media_type(compression));
            let blob = layout
                .read_blob_limited(&built.descriptor.digest, Some(built.descriptor.size))
                .unwrap();
            let mut plain = Vec::new();
            decompress(&blob[..], compression, &Limits::default())
                .unwrap()
                .read_to_end(&mut plain)
                .unwrap();
            assert_eq!(plain, tar_bytes);
            // the same again gives the same blob
            assert_eq!(build_layer(&writer, &sample(), &options).unwrap(), built);
        }
        let none = build_layer(&writer, &sample(), &LayerOptions::new(Compression::None)).unwrap();
        assert_eq!(
            none.descriptor.digest,
            write_tar(&sample(), 0, Vec::new())
                .map(|t| Digest::sha256_of(&t))
                .unwrap()
        );
        // nothing but blobs was left in the layout
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(names, ["blobs", "index.json", "oci-layout"]);
    }
}
