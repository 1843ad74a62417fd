//! References as every command reads them (prefixes, layout paths with `:`, names, containerd names) and shell completions.

use super::*;

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout_of(&["completions", shell]);
        assert!(script.contains("ocikit"), "{shell}");
    }
}

#[test]
fn reference_prefixes_are_accepted() {
    for prefix in ["oci:", "ocidir://"] {
        let out = json_of(&[
            "inspect",
            &format!("{prefix}{}:app:gzip", sample()),
            "--json",
        ]);
        assert_eq!(out["name"], "app:gzip");
    }
}

#[test]
fn a_malformed_reference_is_a_clear_error() {
    ocikit()
        .args(["inspect", &format!("{}@sha256:NOTHEX", sample())])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a valid reference"));
}

/// `skopeo sync --scoped` names layouts after registries (`127.0.0.1:5000/app`): the longest
/// existing prefix of the argument is the layout, whatever `:` it contains.
#[test]
fn layout_paths_containing_colons_are_found_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let scoped = dir.path().join("127.0.0.1:5000/app");
    crate::helpers::copy_tree(&sample_layout(), &scoped);
    let layout = scoped.display().to_string();
    // the whole argument is the layout
    assert!(stdout_of(&["ls", &layout]).contains("app:gzip"));
    // a name after the layout, itself containing ':'
    let inspect = stdout_of(&["inspect", &format!("{layout}:app:gzip")]);
    assert!(
        inspect.contains("application/vnd.oci.image.manifest.v1+json"),
        "{inspect}"
    );
    // a nested layout whose own name has colons: the longest existing prefix wins
    let nested = dir.path().join("a:b");
    crate::helpers::copy_tree(&sample_layout(), &nested.join("c:d"));
    fs::create_dir_all(nested.join("c")).unwrap();
    let deeper = format!("{}/c:d:app:zstd", nested.display());
    assert!(stdout_of(&["inspect", &deeper]).contains("zstd"));
    // writers too
    ocikit()
        .args([
            "tag",
            &format!("{layout}:app:gzip"),
            "registry.example/app:1",
        ])
        .assert()
        .success();
    assert!(names(&scoped).contains(&"registry.example/app:1".to_string()));
    // a path that does not exist still ends at the first ':' and says what is missing
    ocikit()
        .args(["ls", &format!("{}/none:5000/app", dir.path().display())])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("none"));
}

/// containerd's shape: `ref.name` is only the tag, `io.containerd.image.name` the full name.
/// A full name selects (and removes) exactly its entry, though another image has the same tag.
#[test]
fn containerd_full_names_select_and_remove_only_their_entry() {
    let (_dir, layout) = sample_layout_copy();
    let mut index = index_json(&layout);
    let entries = index["manifests"].as_array_mut().unwrap();
    let (gzip, zstd) = (manifest_digest("app:gzip"), manifest_digest("app:zstd"));
    for (entry, full) in entries.iter_mut().filter_map(|e| {
        let digest = e["digest"].as_str()?.to_string();
        let full = if digest == gzip {
            "localhost/app:1"
        } else if digest == zstd {
            "localhost/other:1"
        } else {
            return None;
        };
        Some((e, full))
    }) {
        entry["annotations"] = serde_json::json!({
            "org.opencontainers.image.ref.name": "1",
            "io.containerd.image.name": full,
        });
    }
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let l = layout.display().to_string();
    let digest = |name: &str| {
        json_of(&["inspect", &format!("{l}:{name}"), "--json"])["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(digest("localhost/app:1"), gzip);
    assert_eq!(digest("localhost/other:1"), zstd);
    ocikit()
        .args(["inspect", &format!("{l}:1")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("{l}:localhost/app:1")))
        .stderr(predicate::str::contains(format!("{l}@{gzip}")));
    ocikit()
        .args(["rm", &format!("{l}:localhost/app:1")])
        .assert()
        .success();
    let left = index_json(&layout);
    let digests: Vec<&str> = left["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["digest"].as_str())
        .collect();
    assert!(!digests.contains(&gzip.as_str()) && digests.contains(&zstd.as_str()));
    assert_eq!(digest("1"), zstd);
}
