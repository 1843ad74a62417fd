//! Mutations of the L family: the layout.

use super::super::*;

pub(super) fn mutations() -> Vec<Mutation> {
    vec![
        m("oci-layout missing", "L1", |fx| {
            fx.delete("oci-layout");
            whole("oci-layout")
        }),
        m("oci-layout not an object", "L2", |fx| {
            fx.write("oci-layout", r#"["1.0.0"]"#);
            whole("oci-layout")
        }),
        m("oci-layout not JSON", "L2", |fx| {
            fx.write("oci-layout", "imageLayoutVersion: 1.0.0\n");
            whole("oci-layout")
        }),
        m("oci-layout a directory", "L2", |fx| {
            fx.delete("oci-layout");
            fs::create_dir(fx.path("oci-layout")).unwrap();
            whole("oci-layout")
        }),
        m("oci-layout a symlink", "L2", |fx| {
            let elsewhere = fx.root.with_file_name("oci-layout-elsewhere");
            fs::rename(fx.path("oci-layout"), &elsewhere).unwrap();
            std::os::unix::fs::symlink(&elsewhere, fx.path("oci-layout")).unwrap();
            whole("oci-layout")
        }),
        m("oci-layout over 64 KiB", "L2", |fx| {
            let padded = format!(
                r#"{{"imageLayoutVersion":"1.0.0"{}}}"#,
                " ".repeat(64 * 1024)
            );
            fx.write("oci-layout", padded);
            whole("oci-layout")
        }),
        m("imageLayoutVersion 2.0.0", "L3", |fx| {
            fx.write("oci-layout", r#"{"imageLayoutVersion":"2.0.0"}"#);
            at("oci-layout", "/imageLayoutVersion")
        }),
        m("imageLayoutVersion missing", "L3", |fx| {
            fx.write("oci-layout", r#"{"version":"1.0.0"}"#);
            whole("oci-layout")
        }),
        m("index.json missing", "L4", |fx| {
            fx.delete("index.json");
            whole("index.json")
        }),
        m("index.json not JSON", "L5", |fx| {
            fx.write("index.json", r#"{"schemaVersion":2,"manifests":["#);
            whole("index.json")
        }),
        m("index.json a directory", "L5", |fx| {
            fx.delete("index.json");
            fs::create_dir(fx.path("index.json")).unwrap();
            whole("index.json")
        }),
        m("index.json a dangling symlink", "L5", |fx| {
            fx.delete("index.json");
            std::os::unix::fs::symlink("/nonexistent/index.json", fx.path("index.json")).unwrap();
            whole("index.json")
        }),
        m("index.json manifests null", "I2", |fx| {
            fx.edit_index(|i| set_at(i, "/manifests", Value::Null));
            at("index.json", "/manifests")
        }),
        m("index.json not an object", "I4", |fx| {
            fx.write("index.json", "[]");
            whole("index.json")
        }),
        m("index.json schemaVersion 1", "I1", |fx| {
            fx.edit_index(|i| set_at(i, "/schemaVersion", json!(1)));
            at("index.json", "/schemaVersion")
        }),
        m("blobs/ missing", "L6", |fx| {
            fx.delete("blobs");
            whole("blobs")
        })
        .also(&["L11"]),
        m("blob named with upper-case hex", "L7", |fx| {
            let (_, layer) = gzip_layer(fx);
            let upper = blob_file(&layer)
                .to_uppercase()
                .replace("BLOBS/SHA256", "blobs/sha256");
            fs::copy(fx.blob_path(&layer), fx.path(&upper)).unwrap();
            whole(upper)
        }),
        m("blob named with a short digest", "L7", |fx| {
            fx.write("blobs/sha256/abc123", "x");
            whole("blobs/sha256/abc123")
        }),
        m("blob directory not named after an algorithm", "L7", |fx| {
            fs::create_dir_all(fx.path("blobs/SHA_256")).unwrap();
            whole("blobs/SHA_256")
        }),
        m("file directly under blobs/", "L7", |fx| {
            fx.write("blobs/README", "blobs live here\n");
            whole("blobs/README")
        }),
        m("blob nested one level too deep", "L7", |fx| {
            fx.write(&format!("blobs/sha256/ab/{}", "cd".repeat(32)), "x");
            anywhere()
        }),
        m("layer content changed in place", "L8", |fx| {
            let (_, layer) = gzip_layer(fx);
            let mut bytes = fx.read_blob(&layer);
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            fs::write(fx.blob_path(&layer), bytes).unwrap();
            whole(blob_file(&layer))
        }),
        m("config content changed in place", "L8", |fx| {
            let config = amd64_config(fx);
            let text = String::from_utf8(fx.read_blob(&config)).unwrap();
            fs::write(
                fx.blob_path(&config),
                text.replace("ocikit fixtures", "OCIKIT FIXTURES"),
            )
            .unwrap();
            whole(blob_file(&config))
        }),
        m(
            "manifest content changed in place (same JSON, keys reordered)",
            "L8",
            |fx| {
                let manifest = fx.named("app:zstd");
                let text = String::from_utf8(fx.read_blob(&manifest)).unwrap();
                let from = format!(r#""mediaType":"{OCI_MANIFEST}","schemaVersion":2"#);
                let to = format!(r#""schemaVersion":2,"mediaType":"{OCI_MANIFEST}""#);
                assert!(text.contains(&from));
                fs::write(fx.blob_path(&manifest), text.replace(&from, &to)).unwrap();
                whole(blob_file(&manifest))
            },
        ),
        m("unreferenced blob changed in place", "L8", |fx| {
            let (digest, _) = fx.add_blob(b"nobody references me\n");
            fs::write(fx.blob_path(&digest), b"nobody references ME\n").unwrap();
            whole(blob_file(&digest))
        }),
        m("referenced layer deleted", "L11", |fx| {
            let (manifest, layer) = gzip_layer(fx);
            fs::remove_file(fx.blob_path(&layer)).unwrap();
            in_blob(&manifest, "/layers/0")
        }),
        m("referenced config deleted", "L11", |fx| {
            let member = fx.child(&fx.named("app:multi"), 0);
            fs::remove_file(fx.blob_path(&fx.config_of(&member))).unwrap();
            in_blob(&member, "/config")
        }),
        m("manifest named in index.json deleted", "L11", |fx| {
            fs::remove_file(fx.blob_path(&fx.named("app:zstd"))).unwrap();
            at(
                "index.json",
                format!("/manifests/{}", fx.position_of("app:zstd")),
            )
        }),
        m("foreign layer missing without allow_foreign", "L11", |fx| {
            let manifest = fx.add_foreign_image("foreign:1");
            in_blob(&manifest, "/layers/0")
        }),
        m("stray temp file at the root", "L9", |fx| {
            fx.write(".ocikit-tmp-1", "half a blob");
            whole(".ocikit-tmp-1")
        }),
        m("stray temp file in blobs/sha256", "L9", |fx| {
            fx.write("blobs/sha256/.ocikit-tmp-2", "half a blob");
            whole("blobs/sha256/.ocikit-tmp-2")
        }),
        m("unreferenced extra blob", "L10", |fx| {
            let (digest, _) = fx.add_blob(b"nobody references me\n");
            whole(blob_file(&digest))
        }),
        m("referenced blob is a directory", "L12", |fx| {
            let (_, layer) = gzip_layer(fx);
            fs::remove_file(fx.blob_path(&layer)).unwrap();
            fs::create_dir(fx.blob_path(&layer)).unwrap();
            whole(blob_file(&layer))
        })
        .also(&["L11"]),
        m("referenced blob is a symlink", "L12", |fx| {
            let (_, layer) = gzip_layer(fx);
            let outside = fx.root.with_file_name("layer-elsewhere");
            fs::rename(fx.blob_path(&layer), &outside).unwrap();
            std::os::unix::fs::symlink(&outside, fx.blob_path(&layer)).unwrap();
            whole(blob_file(&layer))
        })
        .also(&["L11"]),
        m("blobs/sha256 is a symlink out of the layout", "L13", |fx| {
            let outside = fx.root.with_file_name("blobs-elsewhere");
            fs::rename(fx.path("blobs/sha256"), &outside).unwrap();
            std::os::unix::fs::symlink(&outside, fx.path("blobs/sha256")).unwrap();
            whole("blobs/sha256")
        })
        // No blob is read through the link, so every referenced blob is missing.
        .also(&["L11"]),
        m("blob is a FIFO", "L12", |fx| {
            let digest = sha256(b"a fifo");
            let status = std::process::Command::new("mkfifo")
                .arg(fx.blob_path(&digest))
                .status()
                .expect("run mkfifo");
            assert!(status.success());
            whole(blob_file(&digest))
        }),
    ]
}
