//! `artifact pull` of a directory layer made of arbitrary tar bytes never writes outside its
//! output directory, never leaves a link there that leads out, and leaves nothing behind when it
//! refuses: the layout and the output directory `root` sit alone in a temp dir, which must hold
//! exactly those two afterwards.
#![no_main]

mod scratch;

use std::fs;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ocikit::spec::reference::Reference;
use ocikit::store::layout::Layout;

/// Every link below `root` that resolves at all resolves inside `root`.
fn assert_links_stay_inside(root: &Path) {
    let inside = root.canonicalize().expect("the output directory resolves");
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.expect("the output directory can be walked");
        if entry.path_is_symlink() {
            if let Ok(real) = entry.path().canonicalize() {
                assert!(
                    real.starts_with(&inside),
                    "{} leads to {}",
                    entry.path().display(),
                    real.display()
                );
            }
        }
    }
}

fuzz_target!(|tar: &[u8]| {
    let tmp = scratch::scratch();
    let layout_dir = tmp.path().join("layout");
    let root = tmp.path().join("root");
    let (layout, _) = Layout::init(&layout_dir).expect("a fresh layout");
    let manifest_digest = {
        let writer = layout.writer().expect("a writer");
        let layer = writer.write_blob_bytes(tar).expect("the layer blob");
        writer.write_blob_bytes(b"{}").expect("the empty config");
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/x-fuzz",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                "size": 2
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer.digest.as_str(),
                "size": layer.size,
                "annotations": {
                    "org.opencontainers.image.title": "d",
                    "io.deis.oras.content.unpack": "true"
                }
            }]
        });
        let bytes = serde_json::to_vec(&manifest).expect("json");
        writer
            .write_blob_bytes(&bytes)
            .expect("the manifest")
            .digest
    };
    let before: Vec<_> = walkdir::WalkDir::new(&layout_dir)
        .into_iter()
        .map(|e| e.expect("the layout can be walked").into_path())
        .collect();
    let reference = Reference::parse(&format!("{}@{}", layout_dir.display(), manifest_digest))
        .expect("a reference by digest");
    let pulled = ocikit::ops::artifact::pull(
        &layout,
        &reference,
        None,
        &root,
        None,
        &ocikit::codec::decode::Limits::default(),
    );

    let mut names: Vec<_> = fs::read_dir(tmp.path())
        .expect("the temp dir can be listed")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["layout", "root"],
        "nothing beside the layout and root"
    );
    let after: Vec<_> = walkdir::WalkDir::new(&layout_dir)
        .into_iter()
        .map(|e| e.expect("the layout can be walked").into_path())
        .collect();
    assert_eq!(before, after, "pull writes nothing into the layout");
    let written: Vec<_> = fs::read_dir(&root)
        .expect("the output directory exists")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    match pulled {
        Ok(_) => {
            assert_eq!(written, ["d"], "one titled directory");
            assert_links_stay_inside(&root);
        }
        Err(_) => assert!(
            written.is_empty(),
            "a refused layer leaves nothing: {written:?}"
        ),
    }
});
