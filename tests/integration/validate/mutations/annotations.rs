//! Mutations of the A family: annotations (and labels).

use super::super::*;

pub(super) fn mutations() -> Vec<Mutation> {
    vec![
        m("annotation value a number", "A1", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/annotations", json!({"com.example.build": 42})),
                "/annotations/com.example.build",
            )
        }),
        m("annotations an array", "A1", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/annotations", json!(["a=b"])),
                "/annotations",
            )
        }),
        m("layer annotation value null", "A1", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/layers/0/annotations", json!({TITLE: null})),
                &format!("/layers/0/annotations/{TITLE}"),
            )
        }),
        m("config label value a boolean", "A1", |fx| {
            edit_config(
                fx,
                |v| set_at(v, "/config/Labels/com.example.debug", json!(true)),
                "/config/Labels/com.example.debug",
            )
        }),
        m("index.json entry annotation a number", "A1", |fx| {
            let position = fx.position_of("app:zstd");
            let pointer = format!("/manifests/{position}/annotations/com.example.n");
            fx.edit_index(|i| set_at(i, &pointer, json!(1)));
            at("index.json", pointer)
        }),
        m("ref.name \"bad name\"", "A2", |fx| {
            let position = fx.position_of("app:zstd");
            let pointer = format!("/manifests/{position}/annotations/{REF_NAME}");
            fx.edit_index(|i| set_at(i, &pointer, json!("bad name")));
            at("index.json", pointer)
        }),
        m("created annotation not RFC 3339", "A3", |fx| {
            edit_zstd(
                fx,
                |v| set_at(v, "/annotations", json!({CREATED: "2024-01-01"})),
                &format!("/annotations/{CREATED}"),
            )
        }),
        m("base.digest \"nope\"", "A4", |fx| {
            let key = "org.opencontainers.image.base.digest";
            edit_zstd(
                fx,
                |v| set_at(v, "/annotations", json!({key: "nope"})),
                &format!("/annotations/{key}"),
            )
        })
        // The annotations spec has no MUST on the value's form: a warning, an error if strict.
        .strict(),
    ]
}
