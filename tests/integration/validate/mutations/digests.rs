//! Mutations of the G family: digests.

use super::super::*;

pub(super) fn mutations() -> Vec<Mutation> {
    vec![
        m("upper-case hex in a layer digest", "G2", |fx| {
            let layer = fx.layer_of(&fx.named("app:zstd"));
            let upper = format!("sha256:{}", layer["sha256:".len()..].to_uppercase());
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/digest", json!(upper)),
                "/layers/0/digest",
            )
        }),
        m("sha256 digest one character short", "G2", |fx| {
            let layer = fx.layer_of(&fx.named("app:zstd"));
            let short = layer[..layer.len() - 1].to_string();
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/digest", json!(short)),
                "/layers/0/digest",
            )
        }),
        m("sha512 digest of sha256 length", "G2", |fx| {
            let layer = fx.layer_of(&fx.named("app:zstd"));
            let wrong = layer.replace("sha256:", "sha512:");
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/digest", json!(wrong)),
                "/layers/0/digest",
            )
        }),
        m("bad algorithm grammar", "G1", |fx| {
            let layer = fx.layer_of(&fx.named("app:zstd"));
            let bad = layer.replace("sha256:", "sha256+-x:");
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/digest", json!(bad)),
                "/layers/0/digest",
            )
        }),
        m("digest without a colon", "G1", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/digest", json!("nope")),
                "/layers/0/digest",
            )
        }),
        m("diff_id not a digest", "G1", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/rootfs/diff_ids/0", json!("layer-1")),
                "/rootfs/diff_ids/0",
            )
        }),
        m("blob of an unregistered algorithm", "G3", |fx| {
            fx.write(
                "blobs/multihash+base58/QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
                "?",
            );
            whole("blobs/multihash+base58/QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8")
        }),
    ]
}
