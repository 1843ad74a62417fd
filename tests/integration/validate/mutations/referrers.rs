//! Mutations of the R family: referrers.

use super::super::*;

pub(super) fn mutations() -> Vec<Mutation> {
    vec![
        m(
            "fallback tag lists a referrer of another subject",
            "R1",
            |fx| {
                let other = fx.add_referrer(&fx.named("app:zstd"));
                let listing = fx.set(&fx.fallback(), "/manifests/1", other);
                in_blob(&listing, "/manifests/1")
            },
        ),
        m(
            "fallback tag lists a manifest without subject",
            "R1",
            |fx| {
                let mut zstd = fx.descriptor(OCI_MANIFEST, &fx.named("app:zstd"));
                set_at(&mut zstd, "/artifactType", json!(OCI_CONFIG));
                let listing = fx.set(&fx.fallback(), "/manifests/1", zstd);
                in_blob(&listing, "/manifests/1")
            },
        )
        // An image manifest (not a referrer) in an index, without platform: D10 is right too.
        .also(&["D10"]),
        m("fallback entry with the wrong artifactType", "R2", |fx| {
            let listing = fx.set(
                &fx.fallback(),
                "/manifests/0/artifactType",
                json!("application/vnd.example.other"),
            );
            in_blob(&listing, "/manifests/0/artifactType")
        }),
        m(
            "fallback entry without the manifest's annotations",
            "R2",
            |fx| {
                let listing = fx.remove(&fx.fallback(), "/manifests/0/annotations");
                in_blob(&listing, "/manifests/0/annotations")
            },
        ),
        m(
            "untagged referrer entry with the wrong artifactType",
            "R3",
            |fx| {
                let pointer = format!("/manifests/{}/artifactType", fx.sbom_position());
                fx.edit_index(|i| set_at(i, &pointer, json!("application/vnd.example.other")));
                at("index.json", pointer)
            },
        ),
        m("fallback tag names a manifest", "R4", |fx| {
            let position = fx.fallback_position();
            let sbom = fx.descriptor(OCI_MANIFEST, &fx.sbom());
            fx.edit_index(|i| {
                let entry = &mut i["manifests"][position];
                entry["mediaType"] = sbom["mediaType"].clone();
                entry["digest"] = sbom["digest"].clone();
                entry["size"] = sbom["size"].clone();
            });
            at("index.json", format!("/manifests/{position}"))
        }),
        m(
            "fallback tag (index media type) names a manifest",
            "R4",
            |fx| {
                let position = fx.fallback_position();
                let sbom = fx.sbom();
                let size = fx.read_blob(&sbom).len();
                fx.edit_index(|i| {
                    i["manifests"][position]["digest"] = json!(sbom);
                    i["manifests"][position]["size"] = json!(size);
                });
                at("index.json", format!("/manifests/{position}"))
            },
        )
        // The entry says index, the SBOM is a manifest (reached before, untagged).
        .also(&["M2"]),
    ]
}
