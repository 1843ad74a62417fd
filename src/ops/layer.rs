//! Layer blobs: a reproducible tar of entries, compressed and stored in one streaming pass
//! ([`build_layer`]); a tar file stored as a layer, as it is or recompressed, in one read
//! ([`import_tar`]).

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use crate::codec::decode::{self, Limits};
use crate::codec::layer::{encode_layer_with, CompressOptions, Entry, LayerOptions, LayerSink};
use crate::codec::sniff::{self, Format};
use crate::codec::tar::{Reader, TarError};
use crate::error::{Error, IoContext, LimitExceeded, Result};
use crate::progress::Progress;
use crate::spec::digest::{Algorithm, Digest, HashingWriter};
use crate::spec::document::media_type::{layer_media_type, Compression};
use crate::spec::document::Descriptor;
use crate::store::layout::LayoutWriter;

/// A layer stored in a layout.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    build_layer_with(writer, entries, options, &crate::progress::NoProgress)
}

/// [`build_layer`], telling `progress` of the bytes of files read.
pub fn build_layer_with(
    writer: &LayoutWriter<'_>,
    entries: &[Entry],
    options: &LayerOptions,
    progress: &dyn Progress,
) -> Result<BuiltLayer> {
    let sink = writer.blob_sink(Algorithm::Sha256)?;
    let (sink, diff_id) = encode_layer_with(entries, options, sink, progress)?;
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

/// What a file to be stored as a layer is: a plain, gzip or zstd tar, by its first bytes.
/// Anything else is an error naming the file.
pub fn tar_compression(path: &Path) -> Result<Compression> {
    let mut head = Vec::with_capacity(sniff::HEAD);
    open_file(path)?
        .take(sniff::HEAD as u64)
        .read_to_end(&mut head)
        .ctx("cannot read", path)?;
    let format = sniff::sniff(&head);
    match (format, format.compression()) {
        (Format::Tar, _) => Ok(Compression::None),
        (_, Some(compression)) => Ok(compression),
        _ => Err(Error::Unsupported {
            what: path.display().to_string(),
            reason: format!(
                "is {}; a layer is read from a directory or a plain, gzip or zstd tar",
                format.describe(&head)
            ),
        }),
    }
}

/// Stores the tar file `path` (compressed as `compression` says: see [`tar_compression`]) as
/// a layer: its bytes as they are when `recompress` is `None`, otherwise decompressed and
/// compressed again as `recompress` says. The file is read once: its bytes go to the blob (or
/// to the decoder) and the decoded tar is hashed (the diff_id) and checked to be a tar on the
/// way, under the decompression `limits`. `progress` hears of the file's bytes as they are
/// read. Nothing is added to the layout if any step fails.
pub fn import_tar(
    writer: &LayoutWriter<'_>,
    path: &Path,
    compression: Compression,
    recompress: Option<&CompressOptions>,
    limits: &Limits,
    progress: &dyn Progress,
) -> Result<BuiltLayer> {
    let sink = writer.blob_sink(Algorithm::Sha256)?;
    let (pending, diff_id, stored_as) = match recompress {
        None => {
            let mut raw = sink;
            let mut tar = HashingWriter::new(io::sink(), Algorithm::Sha256);
            read_tar_file(path, compression, limits, &mut raw, &mut tar, progress)?;
            (raw.finish()?, tar.finish().0, compression)
        }
        Some(options) => {
            let mut tar = LayerSink::new(sink, options)?;
            read_tar_file(
                path,
                compression,
                limits,
                &mut io::sink(),
                &mut tar,
                progress,
            )?;
            let (sink, diff_id) = tar.finish()?;
            (sink.finish()?, diff_id, options.compression)
        }
    };
    let stored = pending.commit()?;
    Ok(BuiltLayer {
        descriptor: Descriptor::new(layer_media_type(stored_as), stored.digest, stored.size),
        diff_id,
    })
}

fn open_file(path: &Path) -> Result<File> {
    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::InvalidInput {
            what: path.display().to_string(),
            reason: "does not exist".into(),
        },
        _ => Error::io("cannot open", path, e),
    })?;
    if !file.metadata().ctx("cannot read", path)?.is_file() {
        return Err(Error::InvalidInput {
            what: path.display().to_string(),
            reason: "is not a regular file".into(),
        });
    }
    Ok(file)
}

/// Reads the tar file `path` once: its bytes into `raw`, its decoded bytes into `tar`, checking
/// on the way that they are a well-formed tar.
fn read_tar_file(
    path: &Path,
    compression: Compression,
    limits: &Limits,
    raw: &mut dyn Write,
    tar: &mut dyn Write,
    progress: &dyn Progress,
) -> Result<()> {
    let failed = |e: io::Error| match LimitExceeded::in_io(&e) {
        Some(exceeded) => Error::DecompressionLimit {
            what: format!("layer {}", path.display()),
            source: exceeded.clone(),
        },
        None => Error::InvalidInput {
            what: path.display().to_string(),
            reason: format!("cannot be read as a {} tar: {e}", compression.name()),
        },
    };
    let mut file = Tee {
        inner: open_file(path)?,
        copy: raw,
        progress: Some(progress),
    };
    let decoder = decode::decompress(&mut file, compression, limits)?;
    let decoded = Tee {
        inner: decoder,
        copy: tar,
        progress: None,
    };
    let mut reader = Reader::new(BufReader::with_capacity(256 * 1024, decoded));
    loop {
        match reader.next_entry() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(TarError::Io(e)) => return Err(failed(e)),
            Err(TarError::Malformed { offset, message }) => {
                return Err(Error::InvalidInput {
                    what: path.display().to_string(),
                    reason: format!("is not a well-formed tar (at byte {offset}): {message}"),
                })
            }
        }
    }
    // What follows the end of the tar (padding) is part of the layer and of its diff_id; what
    // follows the compressed stream is part of the blob.
    let mut decoded = reader.into_inner();
    io::copy(&mut decoded, &mut io::sink()).map_err(failed)?;
    drop(decoded);
    io::copy(&mut file, &mut io::sink()).map_err(failed)?;
    Ok(())
}

/// A reader that copies what it reads into `copy` (and tells `progress`).
struct Tee<'a, R> {
    inner: R,
    copy: &'a mut dyn Write,
    progress: Option<&'a dyn Progress>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        if let Some(progress) = self.progress {
            progress.advance(n as u64);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::codec::decode::{decompress, Limits};
    use crate::codec::layer::sample_entries as sample;
    use crate::codec::layer::write_tar;
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

#[cfg(test)]
mod import_tests {
    use super::*;
    use crate::codec::layer::{compress_bytes, write_tar};
    use crate::progress::NoProgress;
    use crate::store::layout::Layout;

    fn tar_bytes() -> Vec<u8> {
        let entries = vec![Entry::dir("etc"), Entry::file("etc/motd", "hi\n")];
        write_tar(&entries, 0, Vec::new()).unwrap()
    }

    #[test]
    fn a_tar_is_stored_as_it_is_or_recompressed() {
        let dir = tempfile::tempdir().unwrap();
        let (layout, _) = Layout::init(&dir.path().join("l")).unwrap();
        let writer = layout.writer().unwrap();
        let plain = tar_bytes();
        let diff_id = Digest::sha256_of(&plain);
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let file = dir.path().join(format!("layer.{}", compression.name()));
            let bytes = compress_bytes(&plain, &CompressOptions::new(compression)).unwrap();
            std::fs::write(&file, &bytes).unwrap();
            assert_eq!(tar_compression(&file).unwrap(), compression);
            let limits = Limits::default();
            let kept = import_tar(&writer, &file, compression, None, &limits, &NoProgress).unwrap();
            assert_eq!(kept.descriptor.digest, Digest::sha256_of(&bytes));
            assert_eq!(kept.descriptor.media_type, layer_media_type(compression));
            assert_eq!(kept.diff_id, diff_id);
            let zstd = CompressOptions::new(Compression::Zstd);
            let again = import_tar(
                &writer,
                &file,
                compression,
                Some(&zstd),
                &limits,
                &NoProgress,
            )
            .unwrap();
            assert_eq!(again.diff_id, diff_id);
            assert_eq!(
                again.descriptor.digest,
                Digest::sha256_of(&compress_bytes(&plain, &zstd).unwrap())
            );
        }
    }

    #[test]
    fn what_is_not_a_tar_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (layout, _) = Layout::init(&dir.path().join("l")).unwrap();
        let writer = layout.writer().unwrap();
        let gzip = compress_bytes(&tar_bytes(), &CompressOptions::new(Compression::Gzip)).unwrap();
        let cases: [(&str, Vec<u8>); 4] = [
            ("text", b"just some text that is not a tar".to_vec()),
            ("xz", vec![0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2]),
            ("cut.gz", gzip[..gzip.len() / 2].to_vec()),
            (
                "garbage.gz",
                compress_bytes(&[7u8; 2048], &CompressOptions::new(Compression::Gzip)).unwrap(),
            ),
        ];
        for (name, bytes) in cases {
            let file = dir.path().join(name);
            std::fs::write(&file, bytes).unwrap();
            let result = tar_compression(&file)
                .and_then(|c| import_tar(&writer, &file, c, None, &Limits::default(), &NoProgress));
            let err = result.unwrap_err();
            assert!(
                err.to_string().contains(&file.display().to_string()),
                "{name}: {err}"
            );
        }
        let blobs = std::fs::read_dir(layout.root().join("blobs/sha256"))
            .unwrap()
            .count();
        assert_eq!(blobs, 0, "nothing stored");
    }
}
