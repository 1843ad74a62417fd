//! Mutations of the K family: Docker and pre-release documents.

use super::super::*;

pub(super) fn mutations() -> Vec<Mutation> {
    vec![
        m("Docker manifest without mediaType", "K1", |fx| {
            let image = fx.add_docker_image(Some("docker:1"));
            let manifest = fx.remove(image["digest"].as_str().unwrap(), "/mediaType");
            whole(blob_file(&manifest))
        })
        .also(&["M11"]),
        m("Docker manifest list entry without platform", "K1", |fx| {
            let list = fx.add_docker_list("docker:list");
            let list = fx.remove(&list, "/manifests/0/platform");
            in_blob(&list, "/manifests/0")
        })
        .also(&["D10"]),
        m("Docker manifest list without mediaType", "K1", |fx| {
            let list = fx.add_docker_list("docker:list");
            let list = fx.remove(&list, "/mediaType");
            whole(blob_file(&list))
        })
        .also(&["I6"]),
        m("pre-release artifact manifest", "K2", |fx| {
            let artifact = fx.add_prerelease_artifact();
            whole(blob_file(&artifact))
        }),
    ]
}
