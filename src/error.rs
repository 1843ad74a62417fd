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

    /// A document holds a member that Go's `encoding/json` (skopeo, umoci, containerd,
    /// registries) reads differently from ocikit (see [`crate::spec::document::differential`]).
    #[error("{file} cannot be used safely: at {pointer}, {message}")]
    ReadDifferently {
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

    /// An index was given where one manifest is needed (a docker archive holds one image per
    /// name): a platform must be chosen.
    #[error("{what} is an index of {} manifests (platforms: {}); {needed}, so one platform must be chosen", .platforms.len(), .platforms.join(", "))]
    NeedsPlatform {
        what: String,
        platforms: Vec<String>,
        /// Why one manifest is needed.
        needed: String,
    },

    /// A tarball could not be read as an OCI layout archive.
    #[error("archive {path}{}: {message}", entry_suffix(.entry))]
    Archive {
        path: PathBuf,
        entry: Option<String>,
        message: String,
    },

    /// A `docker save` archive from before Docker 25 (a `manifest.json`, no `oci-layout`) was
    /// given where an OCI layout archive is read: it must be converted into a layout first.
    #[error("archive {} is a `docker save` archive from before Docker 25 (it has a manifest.json and no oci-layout file), not an OCI image layout archive", .path.display())]
    DockerSave { path: PathBuf },

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

    /// A path below an extraction root cannot be written as asked: it would lead outside the
    /// root, or through or over something that is not what the write needs. `reason` reads on
    /// from the path ("is a symlink to \"../..\", which leads outside the directory").
    #[error("{} in {} {reason}", .path.display(), .root.display())]
    Extract {
        root: PathBuf,
        path: PathBuf,
        reason: String,
    },

    /// An input the caller gave (an argument, a file, a value) cannot be used. `what` names it
    /// ("the annotation \"k\"", "/tmp/x"), `reason` reads on from it ("is malformed: …").
    #[error("{what} {reason}")]
    InvalidInput { what: String, reason: String },

    /// A limit ocikit keeps (a size, a depth, a decompression ratio) was reached. `what` names
    /// the thing, `detail` says how far it got and what the limit is.
    #[error("{what} {detail}")]
    Limit { what: String, detail: String },

    /// A manifest ocikit would write is larger than registries accept.
    #[error("{what} would be {size} bytes, more than the {limit}-byte limit registries enforce")]
    ManifestTooLarge { what: String, size: u64, limit: u64 },

    /// The operation would overwrite or contradict something that exists (a name, a file).
    #[error("{what} {reason}")]
    Conflict { what: String, reason: String },

    /// Something valid that ocikit does not do (an algorithm, a format, a media type).
    #[error("{what} {reason}")]
    Unsupported { what: String, reason: String },

    /// An operation stopped before changing anything, because of `source` (gc refuses to
    /// guess when a reachable document cannot be read).
    #[error("{operation} stopped before changing anything: {source}")]
    Stopped {
        operation: &'static str,
        #[source]
        source: Box<Error>,
    },

    /// An operation that writes a tree failed part way, and what it wrote was left in place
    /// as asked (`unpack` keeping a partial root file system).
    #[error("{source}; {} is left partly written ({done} of {total} layers applied)", .dir.display())]
    Partial {
        dir: PathBuf,
        done: usize,
        total: usize,
        #[source]
        source: Box<Error>,
    },

    /// A value ocikit made could not be serialized (a bug, if it ever happens).
    #[error("cannot serialize {what}: {source}")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// An error that was met once (reading a blob shared by several walks, say) and is reported
    /// again where the original cannot be moved: its message and kind, unchanged.
    #[error("{message}")]
    Repeated { kind: ErrorKind, message: String },
}

/// What kind of failure an [`Error`] is: for callers that react differently (a registry maps
/// kinds to distribution-spec error codes; a CLI could map them to exit codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Something asked for is not there: a blob, a name, a platform, a file.
    NotFound,
    /// Stored content is damaged or malformed: a blob that does not hash to its digest, a
    /// document that does not parse, an archive that is not what it claims.
    Corrupt,
    /// The caller's input cannot be used: a bad reference, digest, name, argument.
    InvalidInput,
    /// A limit was reached (size, depth, decompression ratio).
    Limit,
    /// Valid, but not something ocikit does.
    Unsupported,
    /// It would overwrite or contradict what exists, or is ambiguous.
    Conflict,
    /// The operating system refused or failed (permissions, disk full, read-only).
    Io,
}

impl Error {
    /// The same error again, for a second caller: its message and kind.
    pub fn repeated(&self) -> Error {
        Error::Repeated {
            kind: self.kind(),
            message: self.to_string(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } => ErrorKind::Io,
            Error::Json { .. }
            | Error::ReadDifferently { .. }
            | Error::CorruptBlob { .. }
            | Error::Archive { .. } => ErrorKind::Corrupt,
            Error::InvalidDigest(_)
            | Error::InvalidReference { .. }
            | Error::InvalidPlatform { .. }
            | Error::InvalidName { .. }
            | Error::NeedsPlatform { .. }
            | Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::Serialize { .. } => ErrorKind::Unsupported,
            Error::Repeated { kind, .. } => *kind,
            Error::NotALayout { .. }
            | Error::BlobNotFound { .. }
            | Error::NameNotFound { .. }
            | Error::EmptyLayout { .. }
            | Error::NoPlatformMatch { .. } => ErrorKind::NotFound,
            Error::Ambiguous { .. } | Error::Conflict { .. } | Error::Extract { .. } => {
                ErrorKind::Conflict
            }
            Error::ReadOnly { .. }
            | Error::DockerSave { .. }
            | Error::UnexpectedMediaType { .. }
            | Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Limit { .. }
            | Error::ManifestTooLarge { .. }
            | Error::DecompressionLimit { .. } => ErrorKind::Limit,
            Error::Stopped { source, .. } | Error::Partial { source, .. } => source.kind(),
        }
    }
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
    /// Wraps an I/O error with what was being done and to which path. The path is named
    /// here, so an error that already names one (the `tempfile` crate's "… at path …") is
    /// reduced to the operating system's own error, and no message names a path twice.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let source = without_tempfile_path(source);
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// The `tempfile` crate wraps the errors of its files as "<error> at path \"…\"" (a private
/// type, so only its text can be seen); the path is named by ocikit's own message.
fn without_tempfile_path(error: std::io::Error) -> std::io::Error {
    let Some(inner) = error.get_ref() else {
        return error;
    };
    let text = inner.to_string();
    match text.rfind(" at path \"") {
        Some(at) if text.ends_with('"') => std::io::Error::new(error.kind(), &text[..at]),
        _ => error,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_variant_and_survive_wrapping() {
        let missing = Error::BlobNotFound {
            digest: Digest::sha256_of(b"x"),
            layout: "l".into(),
        };
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        let stopped = Error::Stopped {
            operation: "gc",
            source: Box::new(missing.repeated()),
        };
        assert_eq!(stopped.kind(), ErrorKind::NotFound);
        assert!(stopped
            .to_string()
            .starts_with("gc stopped before changing anything: blob"));
        let io = Error::io("cannot read", "/x", std::io::Error::other("no"));
        assert_eq!(io.kind(), ErrorKind::Io);
        let limit = Error::Limit {
            what: "x".into(),
            detail: "is big".into(),
        };
        assert_eq!(
            (limit.kind(), limit.to_string().as_str()),
            (ErrorKind::Limit, "x is big")
        );
    }

    #[test]
    fn io_errors_name_their_path_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".ocikit-tmp-x");
        // A write error as tempfile reports it: the OS error, then " at path …".
        let wrapped = std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!("No space left on device (os error 28) at path {path:?}"),
        );
        let message = Error::io("cannot write blob to", &path, wrapped).to_string();
        assert_eq!(
            message.matches(&*path.to_string_lossy()).count(),
            1,
            "{message}"
        );
        assert!(
            message.ends_with("No space left on device (os error 28)"),
            "{message}"
        );
        // a real one, from tempfile itself
        let missing = dir.path().join("missing");
        let real = tempfile::Builder::new().tempfile_in(&missing).unwrap_err();
        assert!(real.to_string().contains(" at path "), "{real}");
        let message = Error::io("cannot create a temp file in", &missing, real).to_string();
        assert_eq!(message.matches("missing").count(), 1, "{message}");
        assert!(message.contains("os error 2"), "{message}");
    }
}
