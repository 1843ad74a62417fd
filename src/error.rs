//! The library's error type.
//!
//! Every variant carries the context a user needs to act: the file, the digest, the JSON pointer
//! or the tar entry. Messages are written as sentences because they are shown as they are.

use std::path::PathBuf;

use crate::spec::digest::{Digest, DigestError};
use crate::spec::units::compact_size;

/// A `Result` whose error is ocikit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a named file failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A JSON document could not be parsed, or has the wrong shape at `pointer`.
    #[error("{file} is malformed{}: {message}", pointer_suffix(.pointer))]
    Json {
        file: String,
        pointer: String,
        message: String,
    },

    /// A digest string does not follow the image-spec grammar.
    #[error(transparent)]
    InvalidDigest(#[from] DigestError),

    /// A reference (`LAYOUT[:NAME][@DIGEST]`) could not be parsed.
    #[error("{input:?} is not a valid reference: {reason}")]
    InvalidReference { input: String, reason: String },

    /// A `--platform` value could not be parsed.
    #[error("{input:?} is not a valid platform: expected os/arch[/variant]")]
    InvalidPlatform { input: String },

    /// The path is not an OCI image layout.
    #[error("{path} is not an OCI image layout: {reason}")]
    NotALayout { path: PathBuf, reason: String },

    /// A blob the operation needs is absent from the layout.
    #[error("blob {digest} is missing from {layout}")]
    BlobNotFound { digest: Digest, layout: String },

    /// A blob's bytes do not hash to its digest, or its length differs from the expected size.
    #[error("blob {digest} in {layout} is corrupt: {detail}")]
    CorruptBlob {
        digest: Digest,
        layout: String,
        detail: String,
    },

    /// No `index.json` entry carries the requested name.
    #[error("no image named {name:?} in {layout}{}", candidates_suffix(.available))]
    NameNotFound {
        name: String,
        layout: String,
        available: Vec<String>,
    },

    /// A name or an empty reference matches several entries.
    #[error("{what} in {layout} is ambiguous; it matches: {}", .candidates.join(", "))]
    Ambiguous {
        what: String,
        layout: String,
        candidates: Vec<String>,
    },

    /// The layout has no manifests at all.
    #[error("{layout} has no images")]
    EmptyLayout { layout: String },

    /// No manifest of an index matches the requested platform.
    #[error("index {digest} has no manifest for platform {platform} (it has: {})", .available.join(", "))]
    NoPlatformMatch {
        digest: Digest,
        platform: String,
        available: Vec<String>,
    },

    /// A tarball could not be read as an OCI layout archive.
    #[error("archive {path}{}: {message}", entry_suffix(.entry))]
    Archive {
        path: PathBuf,
        entry: Option<String>,
        message: String,
    },

    /// Decompression stopped at a limit of the decompression policy (a bomb, or a stream
    /// larger than the caller allows).
    #[error("{what}: {source}")]
    DecompressionLimit {
        /// What was being decompressed (`archive x.tar.zst`).
        what: String,
        #[source]
        source: LimitExceeded,
    },

    /// A write was requested on something that can only be read.
    #[error("{what} is read-only: {hint}")]
    ReadOnly { what: String, hint: String },

    /// A document has a media type the operation cannot handle.
    #[error("{what} has media type {media_type:?}, {expected}")]
    UnexpectedMediaType {
        what: String,
        media_type: String,
        expected: String,
    },

    /// A name given by the user is not usable as `org.opencontainers.image.ref.name`.
    #[error("{name:?} is not a valid name: {reason}")]
    InvalidName { name: String, reason: String },

    /// Anything else the user asked for that cannot be done, said as a sentence.
    #[error("{0}")]
    Invalid(String),
}

/// Which limit of the decompression policy (`codec::decode::Limits`) a stream ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// The total uncompressed size.
    Uncompressed,
    /// The ratio of uncompressed to compressed bytes.
    Ratio,
    /// The window a zstd frame needs (which a decoder must allocate whole).
    ZstdWindow,
}

/// A decompression stopped by a limit: which one, its value, and how far the stream got.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct LimitExceeded {
    pub limit: Limit,
    /// The limit's value: bytes (uncompressed size, zstd window) or the ratio.
    pub value: u64,
    /// `gzip` or `zstd`.
    pub compression: &'static str,
    /// Compressed bytes the decoder had consumed when it stopped.
    pub compressed: u64,
    /// Uncompressed bytes it had produced.
    pub uncompressed: u64,
    /// The window the frame needs, when its header says (zstd window only).
    pub needed: Option<u64>,
    /// Uncompressed bytes before the ratio is checked (ratio only).
    pub grace: u64,
}

impl LimitExceeded {
    fn describe(&self) -> String {
        let (compressed, uncompressed) = (self.compressed, self.uncompressed);
        let name = self.compression;
        match self.limit {
            Limit::Uncompressed => format!(
                "decompression stopped: the {name} stream expands beyond {} (the limit on uncompressed size) from {compressed} compressed bytes; it is treated as a decompression bomb",
                compact_size(self.value)
            ),
            Limit::Ratio => format!(
                "decompression stopped: {compressed} compressed bytes of {name} expanded to {uncompressed} bytes, a ratio above the limit of {}:1 (checked past the first {}); it is treated as a decompression bomb",
                self.value,
                compact_size(self.grace)
            ),
            Limit::ZstdWindow => {
                let needs = match self.needed {
                    Some(window) => format!("needs a {} window (its frame header says so)", compact_size(window)),
                    None => "needs a larger window".to_string(),
                };
                format!(
                    "a zstd frame after {uncompressed} uncompressed bytes {needs}, more than the limit of {} (`zstd -d` refuses it without --long too); a decoder must allocate the whole window, so it is not decompressed",
                    compact_size(self.value)
                )
            }
        }
    }

    /// The limit an I/O error carries, when a decoder stopped at one.
    pub fn in_io(error: &std::io::Error) -> Option<&LimitExceeded> {
        error.get_ref()?.downcast_ref()
    }
}

fn pointer_suffix(pointer: &str) -> String {
    if pointer.is_empty() {
        String::new()
    } else {
        format!(" at {pointer}")
    }
}

fn candidates_suffix(available: &[String]) -> String {
    if available.is_empty() {
        String::new()
    } else {
        format!(" (names: {})", available.join(", "))
    }
}

fn entry_suffix(entry: &Option<String>) -> String {
    entry
        .as_ref()
        .map(|e| format!(", entry {e}"))
        .unwrap_or_default()
}

impl Error {
    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Adds path context to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(action, path, e))
    }
}
