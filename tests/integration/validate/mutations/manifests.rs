//! Mutations of the M family: manifests.

use super::super::*;

pub(super) fn mutations() -> Vec<Mutation> {
    vec![
        m("schemaVersion 1", "M1", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/schemaVersion", json!(1)),
                "/schemaVersion",
            )
        }),
        m("schemaVersion missing", "M1", |fx| {
            edit_zstd(fx, |v| remove_at(v, "/schemaVersion"), "")
        }),
        m("schemaVersion a string", "M1", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/schemaVersion", json!("2")),
                "/schemaVersion",
            )
        }),
        m("mediaType differs from the descriptor's", "M2", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/mediaType", json!(DOCKER_MANIFEST)),
                "/mediaType",
            )
        }),
        m("a second descriptor of a manifest says index", "M2", |fx| {
            let member = fx.child(&fx.named("app:multi"), 0);
            let mut entry = fx.descriptor(OCI_INDEX, &member);
            set_at(&mut entry, "/annotations", json!({ REF_NAME: "wrong" }));
            fx.edit_index(|i| set_at(i, "/manifests/-", entry));
            at(
                "index.json",
                format!("/manifests/{}/mediaType", fx.position_of("wrong")),
            )
        }),
        m("config missing", "M3", |fx| {
            edit_zstd(fx, |v| remove_at(v, "/config"), "")
        }),
        m("config a string", "M3", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/config", json!("config.json")),
                "/config",
            )
        }),
        m("layers not an array", "M4", |fx| {
            edit_zstd(fx, |v| set_at(v, "/layers", json!({})), "/layers")
        }),
        m("layers missing", "M4", |fx| {
            edit_zstd(fx, |v| remove_at(v, "/layers"), "")
        }),
        m("layers empty", "M5", |fx| {
            let sbom = fx.set(&fx.sbom(), "/layers", json!([]));
            in_blob(&sbom, "/layers")
        })
        .strict(),
        m("empty config without artifactType", "M6", |fx| {
            let artifact = fx.add_artifact("thing:1");
            let artifact = fx.remove(&artifact, "/artifactType");
            whole(blob_file(&artifact))
        }),
        m("subject not an object", "M7", |fx| {
            edit_zstd(fx, |v| set_at(v, "/subject", json!("nope")), "/subject")
        }),
        m("subject a malformed descriptor", "M7", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/subject", json!({"digest": "x"})),
                "/subject",
            )
        })
        .also(&["D2", "G1", "D4"]),
        m("subject absent from the layout", "M8", |fx| {
            let absent =
                json!({"mediaType": OCI_MANIFEST, "digest": sha256(b"elsewhere"), "size": 9});
            edit_zstd(fx, |v| set_at(v, "/subject", absent), "/subject")
        })
        .strict(),
        m("manifest over 4 MiB", "M9", |fx| {
            let padding = "x".repeat(4 * 1024 * 1024);
            edit_zstd(
                fx,
                |v| set_at(v, "/annotations", json!({"com.example.padding": padding})),
                "",
            )
        })
        .strict(),
        m("non-distributable layer", "M10", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/mediaType", json!(OCI_LAYER_NONDIST_GZIP)),
                "/layers/0/mediaType",
            )
        })
        // layer.md: implementations SHOULD NOT create them; --strict makes every SHOULD an error.
        .strict(),
        m("manifest without mediaType", "M11", |fx| {
            edit_zstd(fx, |v| remove_at(v, "/mediaType"), "")
        })
        .strict(),
        m("manifest not an object", "M12", |fx| {
            replace_zstd(fx, b"[]")
        }),
        m("manifest not JSON", "J1", |fx| {
            replace_zstd(fx, b"schemaVersion: 2\n")
        }),
    ]
}
