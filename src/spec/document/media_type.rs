//! Media types ocikit recognizes, and what kind of document each one is.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYOUT_HEADER: &str = "application/vnd.oci.layout.header.v1+json";
pub const OCI_DESCRIPTOR: &str = "application/vnd.oci.descriptor.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_NONDIST_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_NONDIST_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
/// The pre-release artifact manifest some tools wrote in 2023.
pub const OCI_ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Not in Docker's own spec, but written by containerd and BuildKit for zstd layers in Docker
/// manifests.
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// What a media type says a document or blob is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An OCI image manifest or a Docker v2 schema2 manifest.
    Manifest,
    /// An OCI image index or a Docker manifest list.
    Index,
    /// The pre-release OCI artifact manifest (`blobs` instead of `layers`, no config).
    ArtifactManifest,
    /// An image configuration.
    Config,
    /// A filesystem layer.
    Layer(Compression),
    /// Anything else: artifacts' blobs, unknown types.
    Other,
}

/// How a layer (or any stream ocikit reads) is compressed.
///
/// It lives here, in the vocabulary of the specs, because media types name it
/// ([`layer_compression`], [`layer_media_type`]); the codec decodes and encodes by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The name users type and read: `none`, `gzip`, `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Classifies a media type.
pub fn kind(media_type: &str) -> Kind {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Kind::Manifest,
        OCI_INDEX | DOCKER_MANIFEST_LIST => Kind::Index,
        OCI_ARTIFACT_MANIFEST => Kind::ArtifactManifest,
        OCI_CONFIG | DOCKER_CONFIG => Kind::Config,
        other => layer_compression(other).map_or(Kind::Other, Kind::Layer),
    }
}

/// The compression a layer media type declares, for every OCI layer type (distributable or
/// not) and every Docker layer type; `None` for anything that is not a layer type.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        OCI_LAYER_TAR | OCI_LAYER_NONDIST_TAR | DOCKER_LAYER_TAR => Some(Compression::None),
        OCI_LAYER_GZIP | OCI_LAYER_NONDIST_GZIP | DOCKER_LAYER_GZIP | DOCKER_LAYER_FOREIGN_GZIP => {
            Some(Compression::Gzip)
        }
        OCI_LAYER_ZSTD | OCI_LAYER_NONDIST_ZSTD | DOCKER_LAYER_ZSTD => Some(Compression::Zstd),
        _ => None,
    }
}

/// The OCI layer media type for a tar compressed with `compression` (the distributable one:
/// layer.md says implementations SHOULD NOT create non-distributable layers).
pub fn layer_media_type(compression: Compression) -> &'static str {
    match compression {
        Compression::None => OCI_LAYER_TAR,
        Compression::Gzip => OCI_LAYER_GZIP,
        Compression::Zstd => OCI_LAYER_ZSTD,
    }
}

/// The Docker layer media type for a tar compressed with `compression` (zstd is not in
/// Docker's own spec, but containerd and BuildKit write it).
pub fn docker_layer_media_type(compression: Compression) -> &'static str {
    match compression {
        Compression::None => DOCKER_LAYER_TAR,
        Compression::Gzip => DOCKER_LAYER_GZIP,
        Compression::Zstd => DOCKER_LAYER_ZSTD,
    }
}

/// Whether a layer media type says the layer must not be distributed: the deprecated OCI
/// non-distributable types and Docker's foreign layer.
pub fn is_nondistributable(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_LAYER_NONDIST_TAR
            | OCI_LAYER_NONDIST_GZIP
            | OCI_LAYER_NONDIST_ZSTD
            | DOCKER_LAYER_FOREIGN_GZIP
    )
}

/// Whether a media type is one of Docker's (`application/vnd.docker.…`).
pub fn is_docker(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.docker.")
}

/// True for media types whose documents ocikit follows as manifests or indexes.
pub fn is_manifest_like(media_type: &str) -> bool {
    matches!(
        kind(media_type),
        Kind::Manifest | Kind::Index | Kind::ArtifactManifest
    )
}

/// A short name for tables: `oci manifest`, `docker list`, or the media type itself.
pub fn short_name(media_type: &str) -> &str {
    match media_type {
        OCI_MANIFEST => "oci manifest",
        OCI_INDEX => "oci index",
        OCI_ARTIFACT_MANIFEST => "oci artifact (pre-release)",
        DOCKER_MANIFEST => "docker manifest",
        DOCKER_MANIFEST_LIST => "docker list",
        other => other,
    }
}

/// Whether `text` is a media type as RFC 6838 defines it and the image-spec schema restricts
/// it (`type/subtype`, each a restricted-name: a letter or digit, then up to 126 of letters,
/// digits and `!#$&^_.+-`; no parameters).
pub fn is_rfc6838(text: &str) -> bool {
    fn restricted_name(part: &str) -> bool {
        let bytes = part.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= 127
            && bytes[0].is_ascii_alphanumeric()
            && bytes[1..]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(b))
    }
    text.split_once('/')
        .is_some_and(|(kind, subtype)| restricted_name(kind) && restricted_name(subtype))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_media_type_maps_to_its_compression_and_back() {
        for (media_type, compression) in [
            (OCI_LAYER_TAR, Compression::None),
            (OCI_LAYER_GZIP, Compression::Gzip),
            (OCI_LAYER_ZSTD, Compression::Zstd),
            (OCI_LAYER_NONDIST_TAR, Compression::None),
            (OCI_LAYER_NONDIST_GZIP, Compression::Gzip),
            (OCI_LAYER_NONDIST_ZSTD, Compression::Zstd),
            (DOCKER_LAYER_TAR, Compression::None),
            (DOCKER_LAYER_GZIP, Compression::Gzip),
            (DOCKER_LAYER_ZSTD, Compression::Zstd),
            (DOCKER_LAYER_FOREIGN_GZIP, Compression::Gzip),
        ] {
            assert_eq!(
                layer_compression(media_type),
                Some(compression),
                "{media_type}"
            );
            assert_eq!(kind(media_type), Kind::Layer(compression), "{media_type}");
        }
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            assert_eq!(
                layer_compression(layer_media_type(compression)),
                Some(compression)
            );
            let docker = docker_layer_media_type(compression);
            assert_eq!(layer_compression(docker), Some(compression));
            assert!(is_docker(docker) && !is_nondistributable(docker));
        }
        assert!(is_nondistributable(OCI_LAYER_NONDIST_ZSTD));
        assert!(is_nondistributable(DOCKER_LAYER_FOREIGN_GZIP));
        assert!(!is_nondistributable(OCI_LAYER_GZIP));
        for other in [OCI_CONFIG, OCI_MANIFEST, "application/x-tar+gzip", ""] {
            assert_eq!(layer_compression(other), None, "{other}");
        }
    }
}
