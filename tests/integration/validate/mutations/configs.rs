//! Mutations of the C family: configs.

use super::super::*;

pub(super) fn mutations() -> Vec<Mutation> {
    vec![
        m("config not an object", "C1", |fx| {
            let config = fx.replace(&amd64_config(fx), br#""amd64""#);
            whole(blob_file(&config))
        }),
        m("config without architecture", "C2", |fx| {
            edit_config(fx, |v| remove_at(v, "/architecture"), "")
        }),
        m("config architecture a number", "C2", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/architecture", json!(64)),
                "/architecture",
            )
        }),
        m("config without os", "C3", |fx| {
            edit_config(fx, |v| remove_at(v, "/os"), "")
        }),
        m("rootfs.type foo", "C4", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/rootfs/type", json!("foo")),
                "/rootfs/type",
            )
        }),
        m("rootfs missing", "C4", |fx| {
            edit_config(fx, |v| remove_at(v, "/rootfs"), "")
        }),
        m("diff_ids not an array", "C4", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/rootfs/diff_ids", json!({})),
                "/rootfs/diff_ids",
            )
        }),
        m("diff_ids one more than the layers", "C5", |fx| {
            let extra = format!("sha256:{}", "ab".repeat(32));
            edit_config(
                fx,
                |v| set_at(v, "/rootfs/diff_ids/1", json!(extra)),
                "/rootfs/diff_ids",
            )
        }),
        m("created \"yesterday\"", "C6", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/created", json!("yesterday")),
                "/created",
            )
        }),
        m("history created without a time zone", "C6", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/history/0/created", json!("2024-01-01T00:00:00")),
                "/history/0/created",
            )
        }),
        m("Env entry without =", "C7", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/config/Env/1", json!("FOO")),
                "/config/Env/1",
            )
        }),
        m("Env entry with an empty name", "C7", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/config/Env/0", json!("=value")),
                "/config/Env/0",
            )
        }),
        m("Cmd a string", "C8", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/config/Cmd", json!("cat /hello.txt")),
                "/config/Cmd",
            )
        }),
        m("ExposedPorts an array", "C8", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/config/ExposedPorts", json!(["80/tcp"])),
                "/config/ExposedPorts",
            )
        }),
        m("history a string", "C8", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/history", json!("built by hand")),
                "/history",
            )
        }),
        m("history entry empty_layer a string", "C8", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/history/0/empty_layer", json!("false")),
                "/history/0/empty_layer",
            )
        }),
        m("config of the runtime a string", "C8", |fx| {
            edit_config(fx, |v| set_at(v, "/config", json!("none")), "/config")
        }),
        m("history one layer too many", "C9", |fx| {
            let entry = json!({"created": "2024-01-01T00:00:00Z", "created_by": "one more"});
            edit_config(fx, |v| set_at(v, "/history/1", entry), "/history")
        }),
    ]
}
