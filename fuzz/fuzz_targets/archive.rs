//! Opening a layout archive never panics and never allocates without bound, whatever the file
//! holds: the first byte chooses how the rest is stored (as is, gzip or zstd: the file's magic
//! bytes then decide, as for a real archive), then the archive is opened (refusing, and
//! unchecked as validate opens it), its index read, and every blob read to its end.
//! Run with `-rss_limit_mb=512`.
#![no_main]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ocikit::codec::decode::Limits;
use ocikit::store::archive::Archive;
use ocikit::store::layout::{blob_file_digest, FileKind, LayoutRead};

/// The file the archive is written to: one per fuzzing process.
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("ocikit-fuzz-archive-{}.tar", std::process::id()))
    })
}

fn read_everything(archive: &Archive) {
    let _ = archive.index();
    let _ = archive.root_file("oci-layout", 64 * 1024);
    let Ok(files) = archive.files() else {
        return;
    };
    for file in files.iter().filter(|f| f.kind == FileKind::Regular) {
        let Some(Ok(digest)) = blob_file_digest(&file.path) else {
            continue;
        };
        let _ = archive.blob_len(&digest);
        if let Ok(mut blob) = archive.open_blob_raw(&digest) {
            let _ = std::io::copy(&mut blob, &mut std::io::sink());
        }
        if let Ok(blob) = archive.open_blob(&digest, None) {
            let mut out = Vec::new();
            let _ = blob.take(1 << 20).read_to_end(&mut out);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let bytes = match selector % 3 {
        0 => rest.to_vec(),
        1 => {
            let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gzip.write_all(rest).unwrap();
            gzip.finish().unwrap()
        }
        _ => zstd::stream::encode_all(rest, 1).unwrap(),
    };
    let path = path();
    std::fs::write(path, &bytes).unwrap();
    // Tighter than the defaults, so that bombs are stopped in milliseconds, not seconds.
    let limits = Limits::default()
        .with_ratio_grace(1 << 20)
        .with_max_uncompressed(64 << 20);
    if let Ok(archive) = Archive::open(path, &limits) {
        read_everything(&archive);
    }
    if let Ok(archive) = Archive::open_unchecked(path, &limits) {
        let _ = archive.ambiguities();
        read_everything(&archive);
    }
});
