//! Decoys: unusual but valid layouts that must stay clean.

use super::*;

// ---------------------------------------------------------------------------------------------
// Decoys: unusual but valid layouts that must stay clean
// ---------------------------------------------------------------------------------------------

/// A decoy: an unusual but valid change that must yield no error or warning, even under
/// `--strict` (info findings allowed).
struct Decoy {
    name: &'static str,
    allow_foreign: bool,
    apply: fn(&Fx),
}

fn decoys() -> Vec<Decoy> {
    let d = |name, apply| Decoy {
        name,
        allow_foreign: false,
        apply,
    };
    vec![
        d("unknown files at the root (docker save leftovers)", |fx| {
            fx.write(
                "manifest.json",
                r#"[{"Config":"blobs/sha256/x","RepoTags":["app:1"],"Layers":[]}]"#,
            );
            fx.write("repositories", r#"{"app":{"1":"abc"}}"#);
            fx.write("README.md", "# a layout\n");
            fs::create_dir_all(fx.path("extra/dir")).unwrap();
        }),
        d(
            "unknown media types of config and layers (an artifact)",
            |fx| {
                let (config, config_size) = fx.add_blob(br#"{"tool":"example"}"#);
                let (blob, size) = fx.add_blob(b"\x00\x01binary");
                let manifest = json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.example.config.v1+json", "digest": config, "size": config_size},
                    "layers": [{"mediaType": "application/vnd.example.data.v1.tar+lz4", "digest": blob, "size": size}],
                });
                let manifest = fx.add_doc(OCI_MANIFEST, &manifest);
                fx.push_entry(manifest, Some("example:data"));
            },
        ),
        d(
            "empty values of predefined annotations (buildah, an image from scratch)",
            |fx| {
                edit_zstd(
                    fx,
                    |v| {
                        set_at(
                            v,
                            "/annotations",
                            json!({
                                "org.opencontainers.image.base.digest": "",
                                "org.opencontainers.image.base.name": "",
                                CREATED: "",
                                REF_NAME: "",
                            }),
                        )
                    },
                    "",
                );
            },
        ),
        d("an image-spec 1.1 artifact with the empty config", |fx| {
            fx.add_artifact("thing:1");
        }),
        d("unknown fields and annotation keys everywhere", |fx| {
            fx.write(
                "oci-layout",
                r#"{"imageLayoutVersion":"1.0.0","com.example.tool":"x"}"#,
            );
            let zstd = fx.edit(&fx.named("app:zstd"), |v| {
                set_at(v, "/com.example.field", json!({"nested": [1, 2]}));
                set_at(
                    v,
                    "/annotations",
                    json!({"com.example.key": "v", "vendor.x/y": ""}),
                );
                set_at(v, "/layers/0/com.example.field", json!(true));
                set_at(
                    v,
                    "/layers/0/annotations",
                    json!({"com.example.layer": "base"}),
                );
                set_at(v, "/config/com.example.field", json!(null));
            });
            assert!(fx.blob_path(&zstd).exists());
            let config = amd64_config(fx);
            fx.edit(&config, |v| {
                set_at(v, "/com.example.field", json!(1));
                set_at(v, "/config/com.example.field", json!("x"));
                set_at(v, "/config/Labels/com.example.label", json!("v"));
                set_at(v, "/rootfs/com.example.field", json!([]));
                set_at(v, "/history/0/com.example.field", json!({}));
            });
            fx.edit(&fx.named("app:multi"), |v| {
                set_at(v, "/com.example.field", json!(1));
                set_at(v, "/annotations", json!({"com.example.key": "v"}));
                set_at(v, "/manifests/0/platform/com.example.field", json!("x"));
                set_at(v, "/manifests/1/com.example.field", json!("x"));
            });
            fx.edit_index(|i| {
                set_at(i, "/com.example.field", json!({"a": 1}));
                set_at(i, "/annotations", json!({"com.example.key": "v"}));
                set_at(i, "/manifests/0/com.example.field", json!(2));
                set_at(i, "/manifests/0/annotations/com.example.key", json!("v"));
            });
        }),
        d(
            "a cosign-style signature (image config, no platform) in a fallback-tag listing",
            |fx| {
                let payload = br#"{"critical":{"identity":{"docker-reference":"example.com/app"},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature"},"optional":null}"#;
                let (layer, layer_size) = fx.add_blob(payload);
                let config = json!({
                    "architecture": "", "os": "", "config": {}, "created": "0001-01-01T00:00:00Z",
                    "history": [{"created": "0001-01-01T00:00:00Z"}],
                    "rootfs": {"type": "layers", "diff_ids": [layer]},
                });
                let config = fx.add_doc(OCI_CONFIG, &config);
                let gzip = fx.named("app:gzip");
                let signature = json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": config,
                    "layers": [{
                        "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                        "digest": layer, "size": layer_size,
                        "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQDx"},
                    }],
                    "subject": fx.descriptor(OCI_MANIFEST, &gzip),
                });
                let mut listed = fx.add_doc(OCI_MANIFEST, &signature);
                set_at(&mut listed, "/artifactType", json!(OCI_CONFIG));
                fx.set(&fx.fallback(), "/manifests/1", listed);
            },
        ),
        d(
            "Docker media types (schema2 manifest, config, gzip layer)",
            |fx| {
                fx.add_docker_image(Some("docker:1"));
            },
        ),
        d("a Docker manifest list", |fx| {
            fx.add_docker_list("docker:list");
        }),
        d(
            "annotation keys that repeat or differ only in case (data, not fields)",
            |fx| {
                // Go matches map keys exactly and keeps the last of a repeated key, as serde
                // does: no differential. Unknown members are read by neither.
                let annotations = json!({"Digest": "a", "digest": "b", "MediaType": "c"});
                let zstd = fx.edit(&fx.named("app:zstd"), |v| {
                    set_at(v, "/annotations", annotations.clone());
                    set_at(v, "/layers/0/annotations", annotations.clone());
                    set_at(v, "/x-Layers", json!([]));
                });
                let bytes = String::from_utf8(fx.read_blob(&zstd)).unwrap();
                let bytes = bytes.replacen(r#""Digest":"a""#, r#""Digest":"a","Digest":"z""#, 1);
                fx.replace(&zstd, bytes.as_bytes());
                fx.edit(&amd64_config(fx), |v| {
                    set_at(v, "/config/Labels", json!({"Cmd": "x", "cmd": "y"}));
                });
            },
        ),
        d("indexes nested 3 deep", |fx| {
            fx.add_nested_indexes("nested", 3);
        }),
        d("platforms of other architectures and variants", |fx| {
            fx.edit(&fx.named("app:multi"), |v| {
                set_at(v, "/manifests/0/platform", json!({"architecture": "amd64", "os": "linux", "variant": "v3", "os.features": [], "features": ["sse4"]}));
                set_at(v, "/manifests/1/platform/variant", json!("v8.2"));
            });
        }),
        d("RFC 3339 times with fractions and offsets", |fx| {
            fx.edit(&amd64_config(fx), |v| {
                set_at(v, "/created", json!("2024-02-29T23:59:59.123456789+05:30"));
                set_at(v, "/history/0/created", json!("2024-01-01t00:00:00z"));
            });
        }),
        d("a descriptor with urls and embedded data", |fx| {
            fx.edit(&fx.named("app:zstd"), |v| {
                set_at(
                    v,
                    "/layers/0/urls",
                    json!(["https://example.com/layer.tar.zst", "urn:example:layer"]),
                );
            });
        }),
        Decoy {
            name: "a foreign layer with an unregistered digest algorithm and urls (allow_foreign)",
            allow_foreign: true,
            apply: |fx| {
                fx.add_foreign_image("foreign:1");
            },
        },
    ]
}

#[test]
fn decoys_stay_clean() {
    let mut failures = Vec::new();
    for decoy in decoys() {
        let fx = sample();
        (decoy.apply)(&fx);
        let report = validate(&fx.root, true, decoy.allow_foreign);
        if report.findings.iter().any(|f| f.level != Level::Info) {
            failures.push(format!("{}:\n{}", decoy.name, describe(&report.findings)));
        }
    }
    assert!(
        failures.is_empty(),
        "decoys with findings:\n{}",
        failures.join("\n\n")
    );
}

/// The re-linking helper itself: a rewritten config reaches index.json through its manifest
/// and index, and the old blobs are gone.
#[test]
fn edits_relink_up_to_index_json() {
    let fx = sample();
    let multi = fx.named("app:multi");
    let member = fx.child(&multi, 0);
    let config = fx.config_of(&member);
    let new = fx.set(&config, "/author", json!("someone else"));
    let new_multi = fx.named("app:multi");
    assert_ne!(new_multi, multi);
    assert_eq!(fx.config_of(&fx.child(&new_multi, 0)), new);
    for old in [&config, &member, &multi] {
        assert!(!fx.blob_path(old).exists(), "{old} is still there");
    }
    let report = validate(&fx.root, true, false);
    assert!(report.findings.is_empty(), "{}", describe(&report.findings));
}

/// Validating by name still finds an entry whose other annotations are wrong.
#[test]
fn names_match_entries_with_bad_annotations() {
    let fx = sample();
    let position = fx.position_of("app:zstd");
    fx.edit_index(|i| {
        set_at(
            i,
            &format!("/manifests/{position}/annotations/com.example.n"),
            json!(1),
        )
    });
    let layout = Layout::open_unchecked(&fx.root).unwrap();
    let mut options = Options::default();
    options.names = vec!["app:zstd".into()];
    let report = validate_layout(&layout, &options, &NoProgress).expect("app:zstd is found");
    assert!(
        report.findings.iter().any(|f| f.rule == "A1"),
        "{}",
        describe(&report.findings)
    );
}
