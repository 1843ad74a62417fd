//! Several ocikit processes writing one layout at once lose nothing.

use std::process::Command;

use crate::helpers::{ocikit_path, sample_layout_copy};

#[test]
fn two_processes_tagging_at_once_lose_no_update() {
    let (_dir, layout) = sample_layout_copy();
    let source = format!("{}:app:gzip", layout.display());
    let per_process = 40;
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|prefix| {
            let script = format!(
                "for i in $(seq 1 {per_process}); do {bin} tag '{source}' {prefix}-$i || exit 1; done",
                bin = ocikit_path().display()
            );
            Command::new("sh").arg("-c").arg(script).spawn().unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a tag process failed");
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    for prefix in ["a", "b"] {
        for i in 1..=per_process {
            let name = format!("{prefix}-{i}");
            assert!(names.contains(&name.as_str()), "{name} was lost");
        }
    }
    assert!(names.contains(&"app:gzip"), "the original name survived");
}
