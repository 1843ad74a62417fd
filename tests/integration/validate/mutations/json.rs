//! Mutations of the J family: what Go's encoding/json reads differently.

use super::super::*;

pub(super) fn mutations() -> Vec<Mutation> {
    vec![
        m("index.json entry with Digest beside digest", "J3", |fx| {
            // The issue's example: skopeo and umoci read the digest from "Digest".
            let position = fx.position_of("app:gzip");
            let other = fx.named("app:zstd");
            fx.edit_index(|i| set_at(i, &format!("/manifests/{position}/Digest"), json!(other)));
            at("index.json", format!("/manifests/{position}/Digest"))
        }),
        m("index.json entry with a repeated digest", "J2", |fx| {
            let position = fx.position_of("app:gzip");
            let digest = fx.named("app:gzip");
            let member = format!(r#""digest":"{digest}""#);
            let text = String::from_utf8(fs::read(fx.path("index.json")).unwrap()).unwrap();
            fx.write(
                "index.json",
                text.replacen(&member, &format!("{member},{member}"), 1),
            );
            at("index.json", format!("/manifests/{position}/digest"))
        }),
        m("manifest with Layers beside layers", "J3", |fx| {
            edit_zstd(fx, |v| set_at(v, "/Layers", json!([])), "/Layers")
        }),
        m("manifest with a repeated config", "J2", |fx| {
            let manifest = fx.named("app:zstd");
            let bytes = with_member_again(&fx.read_blob(&manifest), "config");
            let manifest = fx.replace(&manifest, &bytes);
            in_blob(&manifest, "/config")
        }),
        m(
            "layer descriptor with mediatype beside mediaType",
            "J3",
            |fx| {
                edit_zstd(
                    fx,
                    |v| set_at(v, "/layers/0/mediatype", json!(OCI_LAYER_NONDIST_GZIP)),
                    "/layers/0/mediatype",
                )
            },
        ),
        m("config digest spelled with a long s", "J3", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/config/digeſt", json!(sha256(b"other"))),
                "/config/digeſt",
            )
        }),
        m("config rootfs with Diff_IDs beside diff_ids", "J3", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/rootfs/Diff_IDs", json!([sha256(b"other")])),
                "/rootfs/Diff_IDs",
            )
        }),
        m("index platform with OS beside os", "J3", |fx| {
            edit_multi(
                fx,
                |v| set_at(v, "/manifests/0/platform/OS", json!("windows")),
                "/manifests/0/platform/OS",
            )
        }),
        m("oci-layout with ImageLayoutVersion", "J3", |fx| {
            fx.write(
                "oci-layout",
                r#"{"imageLayoutVersion":"1.0.0","ImageLayoutVersion":"2.0.0"}"#,
            );
            at("oci-layout", "/ImageLayoutVersion")
        }),
    ]
}
