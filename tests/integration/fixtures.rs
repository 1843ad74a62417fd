//! Builders of sample layouts, written with the library itself.
//!
//! Every document goes through `canonical::to_vec` and every layer through the reproducible
//! tar builder with a fixed mtime, so building twice gives the same bytes. `sample_layout` is
//! what `testdata/sample/` holds (see `testdata.rs`).

#![allow(dead_code)]

use std::path::Path;

use ocikit::codec::layer::{Compression, Entry, LayerOptions};
use ocikit::ops::layer::{build_layer, BuiltLayer};
use ocikit::spec::document::canonical;
use ocikit::spec::document::media_type::{OCI_CONFIG, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};
use ocikit::spec::document::{Descriptor, CREATED, REF_NAME, TITLE};
use ocikit::store::layout::{Layout, LayoutWriter};
use serde_json::{json, Value};

/// The creation time of every sample image.
pub(crate) const CREATED_AT: &str = "2024-01-01T00:00:00Z";
/// The same instant as a Unix time: the mtime of every layer entry.
pub(crate) const MTIME: u64 = 1_704_067_200;
/// The SBOM's artifact type (and its one blob's media type).
pub(crate) const SBOM_TYPE: &str = "application/spdx+json";
/// The title of the SBOM's blob.
pub(crate) const SBOM_TITLE: &str = "sbom.spdx.json";
/// The content of `/hello.txt` in the single-platform images.
pub(crate) const HELLO: &str = "Hello from an ocikit sample layer!\n";
/// The digest of the empty descriptor's bytes `{}`.
pub(crate) const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// An image written to a layout (not yet named).
#[derive(Clone, Debug)]
pub(crate) struct Image {
    /// The manifest's descriptor (media type, digest, size).
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<BuiltLayer>,
}

/// An artifact attached to a subject.
#[derive(Clone, Debug)]
pub(crate) struct Artifact {
    /// The artifact manifest's descriptor as index.json and the fallback tag list it (with
    /// artifactType and annotations).
    pub manifest: Descriptor,
    /// The fallback-tag index `sha256-<hex of subject>`.
    pub tag_index: Descriptor,
    /// Its name: `sha256-<hex of subject>`.
    pub tag_name: String,
    pub blob: Descriptor,
}

/// Everything in `testdata/sample/`.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub layout: Layout,
    /// `app:gzip`: one gzip layer, linux/amd64.
    pub gzip: Image,
    /// `app:zstd`: the same files (same diff_id, same config) as a zstd layer.
    pub zstd: Image,
    /// `app:multi`: the index.
    pub multi: Descriptor,
    /// The index's linux/amd64 member.
    pub amd64: Image,
    /// The index's linux/arm64/v8 member.
    pub arm64: Image,
    /// The SBOM attached to `app:gzip`.
    pub sbom: Artifact,
}

/// Builds the whole sample layout at `dir` (which must not exist or be empty).
pub(crate) fn sample_layout(dir: &Path) -> Sample {
    let (layout, _) = Layout::init(dir).expect("init the sample layout");
    let gzip = gzip_image(&layout, "app:gzip");
    let zstd = zstd_image(&layout, "app:zstd");
    let (multi, amd64, arm64) = multi_platform_index(&layout, "app:multi");
    let sbom = sbom_artifact(&layout, &gzip.manifest);
    Sample {
        layout,
        gzip,
        zstd,
        multi,
        amd64,
        arm64,
        sbom,
    }
}

/// The files of the single-platform sample images: a directory, two files, a symlink, an
/// empty directory.
pub(crate) fn base_files() -> Vec<Entry> {
    vec![
        Entry::dir("etc"),
        Entry::file(
            "etc/os-release",
            "NAME=\"ocikit sample\"\nID=ocikit-sample\nVERSION_ID=1.0\nPRETTY_NAME=\"ocikit sample 1.0\"\n",
        ),
        Entry::symlink("etc/motd", "../hello.txt"),
        Entry::file("hello.txt", HELLO),
        Entry::dir("var"),
        Entry::dir("var/empty").with_mode(0o700),
    ]
}

/// An image with one gzip layer of [`base_files`], linux/amd64, named `name`.
pub(crate) fn gzip_image(layout: &Layout, name: &str) -> Image {
    let writer = layout.writer().expect("writer");
    let image = write_image(
        &writer,
        Compression::Gzip,
        ("amd64", None),
        base_files(),
        "sample files",
    );
    tag(&writer, &image.manifest, name);
    image
}

/// The same image with its layer compressed with zstd (same diff_id, same config), named `name`.
pub(crate) fn zstd_image(layout: &Layout, name: &str) -> Image {
    let writer = layout.writer().expect("writer");
    let image = write_image(
        &writer,
        Compression::Zstd,
        ("amd64", None),
        base_files(),
        "sample files",
    );
    tag(&writer, &image.manifest, name);
    image
}

/// A multi-platform index of a linux/amd64 and a linux/arm64/v8 image, each with its own
/// config and layer, named `name`. Returns the index and its two members.
pub(crate) fn multi_platform_index(layout: &Layout, name: &str) -> (Descriptor, Image, Image) {
    let writer = layout.writer().expect("writer");
    let member = |arch: &str, variant: Option<&str>| {
        let mut files = base_files();
        files.push(Entry::file("etc/arch", format!("{arch}\n")));
        write_image(
            &writer,
            Compression::Gzip,
            (arch, variant),
            files,
            &format!("sample files for {arch}"),
        )
    };
    let amd64 = member("amd64", None);
    let arm64 = member("arm64", Some("v8"));
    let entry = |image: &Image, platform: Value| {
        json!({
            "mediaType": image.manifest.media_type,
            "digest": image.manifest.digest,
            "size": image.manifest.size,
            "platform": platform,
        })
    };
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            entry(&amd64, json!({"architecture": "amd64", "os": "linux"})),
            entry(&arm64, json!({"architecture": "arm64", "os": "linux", "variant": "v8"})),
        ],
    });
    let descriptor = write_document(&writer, OCI_INDEX, &index);
    tag(&writer, &descriptor, name);
    (descriptor, amd64, arm64)
}

/// An SBOM artifact (image-spec 1.1: `artifactType`, empty config, one titled blob) whose
/// `subject` is `subject`, recorded both ways PRODUCT.md §Referrers describes: an untagged
/// index.json entry carrying artifactType and annotations, and the fallback-tag index
/// `sha256-<hex of subject>` listing the same descriptor (replacing any earlier one).
pub(crate) fn sbom_artifact(layout: &Layout, subject: &Descriptor) -> Artifact {
    let writer = layout.writer().expect("writer");
    let sbom = json!({
        "SPDXID": "SPDXRef-DOCUMENT",
        "creationInfo": {"created": CREATED_AT, "creators": ["Tool: ocikit-fixtures"]},
        "dataLicense": "CC0-1.0",
        "name": "app",
        "documentNamespace": "https://example.com/ocikit/sample/app",
        "packages": [{
            "SPDXID": "SPDXRef-Package-hello",
            "downloadLocation": "NOASSERTION",
            "name": "hello",
            "versionInfo": "1.0",
        }],
        "spdxVersion": "SPDX-2.3",
    });
    let blob_bytes = canonical::to_vec(&sbom);
    let blob = writer.write_blob_bytes(&blob_bytes).expect("write sbom");
    let empty = writer.write_blob_bytes(b"{}").expect("write empty config");
    assert_eq!(empty.digest.as_str(), EMPTY_DIGEST);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SBOM_TYPE,
        "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2, "data": "e30="},
        "layers": [{
            "mediaType": SBOM_TYPE,
            "digest": blob.digest,
            "size": blob.size,
            "annotations": {TITLE: SBOM_TITLE},
        }],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": {CREATED: CREATED_AT},
    });
    let written = write_document(&writer, OCI_MANIFEST, &manifest);
    let descriptor = Descriptor {
        artifact_type: Some(SBOM_TYPE.to_string()),
        annotations: Some([(CREATED.to_string(), CREATED_AT.to_string())].into()),
        ..written
    };
    let tag_name = format!("sha256-{}", subject.digest.encoded());
    let tag_index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor_value(&descriptor)],
    });
    let tag_index = write_document(&writer, OCI_INDEX, &tag_index);
    let untagged = canonical_value(&descriptor_value(&descriptor));
    let tagged = named_entry(&tag_index, &tag_name);
    writer
        .update_index(|index| {
            index.remove_where(|d| d.digest == descriptor.digest && d.ref_name().is_none());
            index.remove_where(|d| d.ref_name() == Some(tag_name.as_str()));
            index.push_raw(untagged)?;
            index.push_raw(tagged)?;
            Ok(((), true))
        })
        .expect("record the artifact in index.json");
    Artifact {
        manifest: descriptor,
        tag_index,
        tag_name,
        blob: Descriptor {
            media_type: SBOM_TYPE.to_string(),
            digest: blob.digest,
            size: blob.size,
            urls: None,
            annotations: Some([(TITLE.to_string(), SBOM_TITLE.to_string())].into()),
            data: None,
            platform: None,
            artifact_type: None,
        },
    }
}

/// Writes a one-layer image (layer, config, manifest) without naming it.
pub(crate) fn write_image(
    writer: &LayoutWriter<'_>,
    compression: Compression,
    (architecture, variant): (&str, Option<&str>),
    files: Vec<Entry>,
    what: &str,
) -> Image {
    let options = LayerOptions::new(compression).with_mtime(MTIME);
    let layer = build_layer(writer, &files, &options).expect("build layer");
    let mut config = json!({
        "architecture": architecture,
        "os": "linux",
        "created": CREATED_AT,
        "author": "ocikit fixtures",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["cat", "/hello.txt"],
            "WorkingDir": "/",
            "Labels": {"org.opencontainers.image.title": "ocikit sample"},
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created": CREATED_AT, "created_by": format!("ocikit fixtures: {what}")}],
    });
    if let Some(variant) = variant {
        config["variant"] = Value::from(variant);
    }
    let config = write_document(writer, OCI_CONFIG, &config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor_value(&config),
        "layers": [descriptor_value(&layer.descriptor)],
    });
    let manifest = write_document(writer, OCI_MANIFEST, &manifest);
    Image {
        manifest,
        config,
        layers: vec![layer],
    }
}

/// Writes `value` canonically as a blob; returns its descriptor with `media_type`.
pub(crate) fn write_document(
    writer: &LayoutWriter<'_>,
    media_type: &str,
    value: &Value,
) -> Descriptor {
    let blob = writer
        .write_blob_bytes(&canonical::to_vec(value))
        .expect("write document");
    Descriptor {
        media_type: media_type.to_string(),
        digest: blob.digest,
        size: blob.size,
        urls: None,
        annotations: None,
        data: None,
        platform: None,
        artifact_type: None,
    }
}

/// Adds an index.json entry for `descriptor` named `name`, replacing any entry of that name.
/// Done through the writer that wrote the blobs, so `gc` cannot sweep them in between.
pub(crate) fn tag(writer: &LayoutWriter<'_>, descriptor: &Descriptor, name: &str) {
    let entry = named_entry(descriptor, name);
    writer
        .update_index(|index| {
            index.remove_where(|d| d.ref_name() == Some(name));
            index.push_raw(entry)?;
            Ok(((), true))
        })
        .expect("name the entry in index.json");
}

/// The index.json entry for `descriptor` with `org.opencontainers.image.ref.name` = `name`.
fn named_entry(descriptor: &Descriptor, name: &str) -> Value {
    let mut named = descriptor.clone();
    named
        .annotations
        .get_or_insert_with(Default::default)
        .insert(REF_NAME.to_string(), name.to_string());
    canonical_value(&descriptor_value(&named))
}

/// A descriptor as JSON (absent fields left out).
pub(crate) fn descriptor_value(descriptor: &Descriptor) -> Value {
    serde_json::to_value(descriptor).expect("a descriptor serializes")
}

/// `value` with its keys in canonical (sorted) order, so index.json entries read like the
/// documents ocikit writes (serde_json keeps insertion order here).
fn canonical_value(value: &Value) -> Value {
    serde_json::from_slice(&canonical::to_vec(value)).expect("canonical JSON parses")
}

// ---- referrers after each peer's convention (PRODUCT.md §"Referrers inside a layout") ----

/// An image-spec 1.1 artifact manifest with one titled blob of `content`, whose `subject` is
/// `subject`, written without any bookkeeping. Returns the descriptor bookkeeping would record
/// (with artifactType and the manifest's annotations).
pub(crate) fn referrer_manifest(
    writer: &LayoutWriter<'_>,
    subject: &Descriptor,
    artifact_type: &str,
    content: &[u8],
) -> Descriptor {
    let blob = writer.write_blob_bytes(content).expect("write blob");
    writer.write_blob_bytes(b"{}").expect("write empty config");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2, "data": "e30="},
        "layers": [{
            "mediaType": "application/octet-stream",
            "digest": blob.digest,
            "size": blob.size,
            "annotations": {TITLE: "content.bin"},
        }],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": {CREATED: CREATED_AT},
    });
    let written = write_document(writer, OCI_MANIFEST, &manifest);
    Descriptor {
        artifact_type: Some(artifact_type.to_string()),
        annotations: Some([(CREATED.to_string(), CREATED_AT.to_string())].into()),
        ..written
    }
}

/// Records `referrer` as an untagged index.json entry (oras's convention).
pub(crate) fn record_untagged(writer: &LayoutWriter<'_>, referrer: &Descriptor) {
    let entry = canonical_value(&descriptor_value(referrer));
    writer
        .update_index(|index| {
            index.push_raw(entry)?;
            Ok(((), true))
        })
        .expect("record the untagged entry");
}

/// Writes the fallback-tag index `sha256-<hex of subject>` listing exactly `referrers`
/// (regctl's convention), replacing any earlier one.
pub(crate) fn record_fallback(
    writer: &LayoutWriter<'_>,
    subject: &ocikit::Digest,
    referrers: &[Descriptor],
) {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": referrers.iter().map(descriptor_value).collect::<Vec<_>>(),
    });
    let written = write_document(writer, OCI_INDEX, &index);
    tag(writer, &written, &format!("sha256-{}", subject.encoded()));
}

/// A layout with one image `app:1` and one referrer of it (of `artifact_type`, holding
/// `content`), which `record` records (or not). Returns (image, referrer).
fn image_and_referrer(
    dir: &Path,
    artifact_type: &str,
    content: &[u8],
    record: impl FnOnce(&LayoutWriter<'_>, &Descriptor, &Descriptor),
) -> (Descriptor, Descriptor) {
    let (layout, _) = Layout::init(dir).expect("init");
    let image = gzip_image(&layout, "app:1");
    let writer = layout.writer().expect("writer");
    let referrer = referrer_manifest(&writer, &image.manifest, artifact_type, content);
    record(&writer, &image.manifest, &referrer);
    (image.manifest, referrer)
}

/// One image and one referrer of it recorded only as an untagged index.json entry, as
/// `oras attach --oci-layout` leaves it. Returns (image, referrer).
pub(crate) fn oras_style(dir: &Path) -> (Descriptor, Descriptor) {
    image_and_referrer(
        dir,
        "application/vnd.example.oras",
        b"oras",
        |writer, _, r| record_untagged(writer, r),
    )
}

/// One image and one referrer of it recorded only under the fallback tag, as regctl leaves
/// it. Returns (image, referrer).
pub(crate) fn regctl_style(dir: &Path) -> (Descriptor, Descriptor) {
    image_and_referrer(
        dir,
        "application/vnd.example.regctl",
        b"regctl",
        |writer, image, r| record_fallback(writer, &image.digest, std::slice::from_ref(r)),
    )
}

/// One image and one referrer of it that is only a blob, recorded nowhere, as cosign leaves
/// it. Returns (image, referrer).
pub(crate) fn blob_only_style(dir: &Path) -> (Descriptor, Descriptor) {
    let cosign = "application/vnd.dev.cosign.artifact.sig.v1+json";
    image_and_referrer(dir, cosign, b"cosign", |_, _, _| {})
}

/// A layout with image `app:1`, an SBOM of it, a signature of the SBOM and an attestation of
/// the signature, each recorded as `ocikit attach` does (both conventions). Returns the image
/// and the chain, nearest first.
pub(crate) fn chain_style(dir: &Path) -> (Descriptor, Vec<Descriptor>) {
    let (layout, _) = Layout::init(dir).expect("init");
    let image = gzip_image(&layout, "app:1");
    let writer = layout.writer().expect("writer");
    let mut chain = Vec::new();
    let mut subject = image.manifest.clone();
    for (kind, content) in [
        ("application/spdx+json", &b"sbom"[..]),
        ("application/vnd.example.signature", b"signature"),
        ("application/vnd.example.attestation", b"attestation"),
    ] {
        let referrer = referrer_manifest(&writer, &subject, kind, content);
        record_untagged(&writer, &referrer);
        record_fallback(&writer, &subject.digest, std::slice::from_ref(&referrer));
        chain.push(referrer.clone());
        subject = referrer;
    }
    (image.manifest, chain)
}

/// A layout with an index `idx` whose `subject` is its own first child (legal: the child's
/// digest is known before the index is written). Returns (index, child).
pub(crate) fn self_subject_index(dir: &Path) -> (Descriptor, Descriptor) {
    let (layout, _) = Layout::init(dir).expect("init");
    let writer = layout.writer().expect("writer");
    let child = write_image(
        &writer,
        Compression::Gzip,
        ("amd64", None),
        base_files(),
        "child",
    );
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": "application/vnd.example.bundle",
        "manifests": [{
            "mediaType": child.manifest.media_type,
            "digest": child.manifest.digest,
            "size": child.manifest.size,
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
        "subject": {"mediaType": child.manifest.media_type, "digest": child.manifest.digest, "size": child.manifest.size},
    });
    let index = write_document(&writer, OCI_INDEX, &index);
    tag(&writer, &index, "idx");
    (index, child.manifest)
}

/// A pre-release `application/vnd.oci.artifact.manifest.v1+json` (2023) with one blob, whose
/// subject is `subject`, recorded in both conventions as a tool of that time might have.
pub(crate) fn pre_release_artifact(layout: &Layout, subject: &Descriptor) -> Descriptor {
    let writer = layout.writer().expect("writer");
    let blob = writer
        .write_blob_bytes(b"pre-release signature")
        .expect("blob");
    let manifest = json!({
        "mediaType": ocikit::spec::document::media_type::OCI_ARTIFACT_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "blobs": [{
            "mediaType": "application/octet-stream",
            "digest": blob.digest,
            "size": blob.size,
            "annotations": {TITLE: "signature.bin"},
            "x-vendor": "kept",
        }],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": {CREATED: CREATED_AT},
    });
    let written = write_document(
        &writer,
        ocikit::spec::document::media_type::OCI_ARTIFACT_MANIFEST,
        &manifest,
    );
    let descriptor = Descriptor {
        artifact_type: Some("application/vnd.example.signature".into()),
        annotations: Some([(CREATED.to_string(), CREATED_AT.to_string())].into()),
        ..written
    };
    record_untagged(&writer, &descriptor);
    record_fallback(&writer, &subject.digest, std::slice::from_ref(&descriptor));
    descriptor
}

/// A layout as a pull from a registry without the referrers API leaves it (skopeo `copy
/// --all`, `oras copy`): the image and its referrers are all named entries — an SBOM of the
/// image and a signature of the SBOM — with no untagged entry and no fallback tag. Returns the
/// image and the chain, nearest first.
pub(crate) fn registry_pull_style(dir: &Path) -> (Descriptor, Vec<Descriptor>) {
    let (layout, _) = Layout::init(dir).expect("init");
    let image = gzip_image(&layout, "registry.example/app:1");
    let writer = layout.writer().expect("writer");
    let sbom = referrer_manifest(&writer, &image.manifest, SBOM_TYPE, b"sbom");
    tag(&writer, &sbom, "registry.example/app:sbom");
    let signature = referrer_manifest(&writer, &sbom, "application/vnd.example.signature", b"sig");
    tag(&writer, &signature, "registry.example/app:sbom.sig");
    (image.manifest, vec![sbom, signature])
}
