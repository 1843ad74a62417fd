//! Mutations of the D family: descriptors.

use super::super::*;

pub(super) fn mutations() -> Vec<Mutation> {
    vec![
        m("layer descriptor not an object", "D1", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0", json!("a layer")),
                "/layers/0",
            )
        }),
        m("layer mediaType invalid", "D2", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/mediaType", json!("invalid")),
                "/layers/0/mediaType",
            )
        }),
        m("layer mediaType a number", "D2", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/mediaType", json!(7)),
                "/layers/0/mediaType",
            )
        }),
        m("config mediaType missing", "D2", |fx| {
            edit_zstd(fx, |v| remove_at(v, "/config/mediaType"), "/config")
        }),
        m("index.json entry mediaType with parameters", "D2", |fx| {
            let position = fx.position_of("app:zstd");
            let pointer = format!("/manifests/{position}/mediaType");
            fx.edit_index(|i| set_at(i, &pointer, json!(format!("{OCI_MANIFEST}; charset=utf-8"))));
            at("index.json", pointer)
        }),
        m("layer digest a number", "D3", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/digest", json!(42)),
                "/layers/0/digest",
            )
        }),
        m("layer digest missing", "D3", |fx| {
            edit_zstd(fx, |v| remove_at(v, "/layers/0/digest"), "/layers/0")
        }),
        m("layer size negative", "D4", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/size", json!(-284)),
                "/layers/0/size",
            )
        }),
        m("layer size a string", "D4", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/size", json!("284")),
                "/layers/0/size",
            )
        }),
        m("layer size fractional", "D4", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/size", json!(284.5)),
                "/layers/0/size",
            )
        }),
        m("layer size missing", "D4", |fx| {
            edit_zstd(fx, |v| remove_at(v, "/layers/0/size"), "/layers/0")
        }),
        m("layer size wrong", "D5", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/size", json!(285)),
                "/layers/0/size",
            )
        }),
        m("index.json entry size wrong", "D5", |fx| {
            let position = fx.position_of("app:zstd");
            let pointer = format!("/manifests/{position}/size");
            fx.edit_index(|i| set_at(i, &pointer, json!(400)));
            at("index.json", pointer)
        }),
        m("urls entry not a URI", "D6", |fx| {
            edit_zstd(
                fx,
                |v| {
                    set_at(
                        v,
                        "/layers/0/urls",
                        json!(["https://example.com/l.tar", "not a uri"]),
                    )
                },
                "/layers/0/urls/1",
            )
        }),
        m("urls not an array", "D6", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/urls", json!("https://example.com/l.tar")),
                "/layers/0/urls",
            )
        }),
        m("data without padding", "D7", |fx| {
            let sbom = fx.set(&fx.sbom(), "/config/data", json!("e30"));
            in_blob(&sbom, "/config/data")
        }),
        m("data not base64", "D7", |fx| {
            let sbom = fx.set(&fx.sbom(), "/config/data", json!("{}"));
            in_blob(&sbom, "/config/data")
        }),
        m("data of the right length but other bytes", "D8", |fx| {
            let sbom = fx.set(&fx.sbom(), "/config/data", json!("W10="));
            in_blob(&sbom, "/config/data")
        }),
        m("data longer than size", "D8", |fx| {
            let sbom = fx.set(&fx.sbom(), "/config/data", json!("e30K"));
            in_blob(&sbom, "/config/data")
        }),
        m("artifactType not a media type", "D9", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/artifactType", json!("signature")),
                "/layers/0/artifactType",
            )
        }),
        m("manifest artifactType not a media type", "D9", |fx| {
            let artifact = fx.add_artifact("thing:1");
            let artifact = fx.set(&artifact, "/artifactType", json!("application/"));
            in_blob(&artifact, "/artifactType")
        }),
        m("multi-platform index entry without platform", "D10", |fx| {
            edit_multi(
                fx,
                |v| remove_at(v, "/manifests/0/platform"),
                "/manifests/0",
            )
        })
        .strict(),
        m("platform without os", "D11", |fx| {
            edit_multi(
                fx,
                |v| remove_at(v, "/manifests/0/platform/os"),
                "/manifests/0/platform",
            )
        }),
        m("platform architecture a number", "D11", |fx| {
            edit_multi(
                fx,
                |v| set_at(v, "/manifests/0/platform/architecture", json!(64)),
                "/manifests/0/platform/architecture",
            )
        }),
        m("platform not an object", "D11", |fx| {
            edit_multi(
                fx,
                |v| set_at(v, "/manifests/0/platform", json!("linux/amd64")),
                "/manifests/0/platform",
            )
        }),
        m("platform os.features not strings", "D11", |fx| {
            edit_multi(
                fx,
                |v| set_at(v, "/manifests/0/platform/os.features", json!([1])),
                "/manifests/0/platform/os.features",
            )
        }),
        m("variant v9 on amd64", "D12", |fx| {
            edit_multi(
                fx,
                |v| set_at(v, "/manifests/0/platform/variant", json!("v9")),
                "/manifests/0/platform/variant",
            )
        }),
        m("variant v7 on arm64", "D12", |fx| {
            edit_multi(
                fx,
                |v| set_at(v, "/manifests/1/platform/variant", json!("v7")),
                "/manifests/1/platform/variant",
            )
        }),
    ]
}
