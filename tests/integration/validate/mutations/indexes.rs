//! Mutations of the I family: indexes.

use super::super::*;

pub(super) fn mutations() -> Vec<Mutation> {
    vec![
        m("index schemaVersion 3", "I1", |fx| {
            edit_multi(
                fx,
                |v| set_at(v, "/schemaVersion", json!(3)),
                "/schemaVersion",
            )
        }),
        m("index manifests a string", "I2", |fx| {
            edit_multi(
                fx,
                |v| set_at(v, "/manifests", json!("amd64, arm64")),
                "/manifests",
            )
        }),
        m("index manifests missing", "I2", |fx| {
            edit_multi(fx, |v| remove_at(v, "/manifests"), "")
        }),
        m(
            "index mediaType differs from the descriptor's",
            "I3",
            |fx| {
                edit_multi(
                    fx,
                    |v| set_at(v, "/mediaType", json!(DOCKER_MANIFEST_LIST)),
                    "/mediaType",
                )
            },
        ),
        m("index not an object", "I4", |fx| {
            let index = fx.replace(&fx.named("app:multi"), br#""amd64""#);
            whole(blob_file(&index))
        }),
        m("indexes nested more than 16 deep", "I5", |fx| {
            // chain[0] (named in index.json) to chain[15] are followed: 16 deep. chain[15]
            // leads to a 17th, which is refused there.
            let chain = fx.add_nested_indexes("deep", 20);
            in_blob(&chain[15], "/manifests/0")
        }),
        m(
            "index cycle (a blob that lies about its digest)",
            "I5",
            |fx| {
                let fake = sha256(b"a lie");
                let body = |size: usize| {
                    serde_json::to_vec(&json!({
                        "schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [{"mediaType": OCI_INDEX, "digest": fake, "size": size}],
                    }))
                    .unwrap()
                };
                let mut size = 0;
                while body(size).len() != size {
                    size = body(size).len();
                }
                fx.write(&blob_file(&fake), body(size));
                fx.push_entry(
                    json!({"mediaType": OCI_INDEX, "digest": fake, "size": size}),
                    Some("cycle"),
                );
                in_blob(&fake, "/manifests/0")
            },
        )
        .also(&["L8"]),
        m("index without mediaType", "I6", |fx| {
            edit_multi(fx, |v| remove_at(v, "/mediaType"), "")
        })
        .strict(),
    ]
}
