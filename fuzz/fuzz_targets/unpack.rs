//! `unpack` of an image whose two layers are arbitrary tar bytes (the input split in two) never
//! writes outside its directory and never panics; a refused image leaves nothing: the layout and
//! the output directory sit alone in a temp dir, which must hold exactly the layout afterwards
//! when unpack failed (it made the directory, so it removes it), and the layout is unchanged.
#![no_main]

mod scratch;

use std::fs;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ocikit::codec::decode::Limits;
use ocikit::ops::unpack::{unpack, Options};
use ocikit::progress::NoProgress;
use ocikit::spec::digest::Digest;
use ocikit::spec::reference::Reference;
use ocikit::store::layout::Layout;

fn listing(dir: &Path) -> Vec<std::path::PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walkable").into_path())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    // The first byte says where the second layer starts.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (usize::from(split) * 512).min(rest.len());
    let layers = [&rest[..at], &rest[at..]];
    let tmp = scratch::scratch();
    let layout_dir = tmp.path().join("layout");
    let root = tmp.path().join("root");
    let (layout, _) = Layout::init(&layout_dir).expect("a fresh layout");
    let manifest_digest = {
        let writer = layout.writer().expect("a writer");
        let mut descriptors = Vec::new();
        let mut diff_ids = Vec::new();
        for tar in layers {
            let blob = writer.write_blob_bytes(tar).expect("a layer blob");
            descriptors.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": blob.digest.as_str(),
                "size": blob.size,
            }));
            diff_ids.push(Digest::sha256_of(tar).to_string());
        }
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = writer
            .write_blob_bytes(&serde_json::to_vec(&config).expect("json"))
            .expect("the config");
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config.digest.as_str(),
                "size": config.size,
            },
            "layers": descriptors,
        });
        let bytes = serde_json::to_vec(&manifest).expect("json");
        writer
            .write_blob_bytes(&bytes)
            .expect("the manifest")
            .digest
    };
    let before = listing(&layout_dir);
    let reference = Reference::parse(&format!("{}@{}", layout_dir.display(), manifest_digest))
        .expect("a reference by digest");
    let options = Options::new(Limits::default());
    let unpacked = unpack(&layout, &reference, None, &root, &options, &NoProgress);

    assert_eq!(
        listing(&layout_dir),
        before,
        "unpack writes nothing into the layout"
    );
    let mut names: Vec<_> = fs::read_dir(tmp.path())
        .expect("the temp dir can be listed")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    names.sort();
    match unpacked {
        Ok(_) => assert_eq!(
            names,
            ["layout", "root"],
            "nothing beside the layout and root"
        ),
        Err(_) => assert_eq!(names, ["layout"], "a refused image leaves nothing"),
    }
});
