//! The one sniffer: what a blob or file is, from its first bytes.

use crate::codec::decode::{GZIP_MAGIC, ZSTD_MAGIC};
use crate::codec::tar::checksum_ok;
use crate::spec::document::media_type::Compression;

/// How many first bytes [`sniff`] looks at (one tar header block); fewer are fine, for less
/// certainty about tars.
pub const HEAD: usize = 512;

/// What a stream's first bytes say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// gzip magic `1f 8b`.
    Gzip,
    /// zstd magic `28 b5 2f fd`, or a zstd skippable frame.
    Zstd,
    /// xz magic (ocikit does not decode it).
    Xz,
    /// bzip2 magic (ocikit does not decode it).
    Bzip2,
    /// An uncompressed tar: a header block with a valid checksum (or the ustar magic), or an
    /// all-zero block (an empty tar).
    Tar,
    /// A JSON object: `{` after optional JSON whitespace (manifests, indexes, configs).
    Json,
    /// No bytes at all.
    Empty,
    /// Anything else.
    Unknown,
}

/// What `head` (the first bytes of a stream, up to [`HEAD`] of them) says the stream is.
pub fn sniff(head: &[u8]) -> Format {
    let zstd_skippable =
        head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18];
    let block = head
        .get(..HEAD)
        .and_then(|b| <&[u8; HEAD]>::try_from(b).ok());
    if head.is_empty() {
        Format::Empty
    } else if head.starts_with(&GZIP_MAGIC) {
        Format::Gzip
    } else if head.starts_with(&ZSTD_MAGIC) || zstd_skippable {
        Format::Zstd
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Format::Xz
    } else if head.starts_with(b"BZh") {
        Format::Bzip2
    } else if head.get(257..262) == Some(&b"ustar"[..])
        || block.is_some_and(|b| b.iter().all(|&x| x == 0) || checksum_ok(b))
    {
        Format::Tar
    } else if head
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        == Some(&b'{')
    {
        Format::Json
    } else {
        Format::Unknown
    }
}

impl Format {
    /// The compression this format is, for gzip and zstd.
    pub fn compression(self) -> Option<Compression> {
        match self {
            Format::Gzip => Some(Compression::Gzip),
            Format::Zstd => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// What the first bytes are, for messages ("gzip magic bytes (1f 8b)", …).
    pub fn describe(self, head: &[u8]) -> String {
        match self {
            Format::Gzip => "gzip magic bytes (1f 8b)".into(),
            Format::Zstd => "zstd magic bytes".into(),
            Format::Tar => "an uncompressed tar header".into(),
            Format::Xz => "xz magic bytes".into(),
            Format::Bzip2 => "bzip2 magic bytes".into(),
            Format::Json => "a JSON object".into(),
            Format::Empty => "nothing: it is empty".into(),
            Format::Unknown => {
                let hex: Vec<String> = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
                format!(
                    "bytes {} (neither gzip, zstd nor a tar header)",
                    hex.join(" ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_say_what_a_stream_is() {
        let mut ustar = [0u8; 512];
        ustar[257..262].copy_from_slice(b"ustar");
        for (head, expected) in [
            (&b""[..], Format::Empty),
            (&[0x1f, 0x8b, 8][..], Format::Gzip),
            (&[0x28, 0xb5, 0x2f, 0xfd][..], Format::Zstd),
            (&[0x5e, 0x2a, 0x4d, 0x18, 4, 0, 0, 0][..], Format::Zstd),
            (b"\xfd7zXZ\0", Format::Xz),
            (b"BZh91AY", Format::Bzip2),
            (&[0u8; 512][..], Format::Tar),
            (&ustar[..], Format::Tar),
            (b" \n{\"schemaVersion\":2}", Format::Json),
            (b"[1,2]", Format::Unknown),
            (b"hello", Format::Unknown),
            (&[0u8; 100][..], Format::Unknown),
        ] {
            assert_eq!(sniff(head), expected, "{head:?}");
        }
        assert_eq!(Format::Gzip.compression(), Some(Compression::Gzip));
        assert_eq!(Format::Tar.compression(), None);
        assert!(Format::Unknown.describe(b"abcdef").contains("61 62 63 64"));
    }
}
