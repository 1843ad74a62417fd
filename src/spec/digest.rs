//! Content digests: parsing per the image-spec grammar, and streaming hashing.
//!
//! ```text
//! digest              ::= algorithm ":" encoded
//! algorithm           ::= algorithm-component (algorithm-separator algorithm-component)*
//! algorithm-component ::= [a-z0-9]+
//! algorithm-separator ::= [+._-]
//! encoded             ::= [a-zA-Z0-9=_-]+
//! ```
//! `sha256` and `sha512` must be exact-length lower-case hex. Other algorithms that follow the
//! grammar are accepted as opaque values: they can be named and compared, not computed.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::Digest as _;

/// A validated digest such as `sha256:e3b0…`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    text: String,
    colon: usize,
}

/// The digest algorithms ocikit can compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The registered name, as used in digests and under `blobs/`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// The algorithm of this registered name, if supported.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

/// A string that is not a digest of the image-spec's grammar.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a valid digest: {reason}")]
pub struct DigestError {
    /// The string given.
    pub input: String,
    /// What is wrong with it, as a sentence.
    pub reason: String,
}

impl Digest {
    /// Parses and validates a digest string.
    pub fn parse(input: &str) -> Result<Digest, DigestError> {
        let invalid = |reason: &str| DigestError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let colon = input
            .find(':')
            .ok_or_else(|| invalid("it has no ':' between algorithm and encoded part"))?;
        let (algorithm, encoded) = (&input[..colon], &input[colon + 1..]);
        if !is_valid_algorithm(algorithm) {
            return Err(invalid(
                "the algorithm must be lower-case letters and digits, joined by one of + . _ -",
            ));
        }
        if encoded.is_empty()
            || !encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
        {
            return Err(invalid(
                "the encoded part must be one or more of [a-zA-Z0-9=_-]",
            ));
        }
        if let Some(alg) = Algorithm::from_name(algorithm) {
            let hex_ok = encoded
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if encoded.len() != alg.hex_len() || !hex_ok {
                return Err(invalid(&format!(
                    "{} digests are exactly {} lower-case hex characters",
                    alg.name(),
                    alg.hex_len()
                )));
            }
        }
        Ok(Digest {
            text: input.to_string(),
            colon,
        })
    }

    /// Builds a digest from a computed hash.
    pub fn from_hash(algorithm: Algorithm, hash: &[u8]) -> Digest {
        let mut text = String::with_capacity(algorithm.name().len() + 1 + hash.len() * 2);
        text.push_str(algorithm.name());
        text.push(':');
        for byte in hash {
            // Writing to a String cannot fail.
            let _ = write_hex(&mut text, *byte);
        }
        Digest {
            colon: algorithm.name().len(),
            text,
        }
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest::from_hash(Algorithm::Sha256, &sha2::Sha256::digest(bytes))
    }

    /// The whole digest, `algorithm:encoded`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The algorithm part, e.g. `sha256`.
    pub fn algorithm(&self) -> &str {
        &self.text[..self.colon]
    }

    /// The encoded part (hex for sha256/sha512).
    pub fn encoded(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    /// The algorithm when ocikit can compute it.
    pub fn known_algorithm(&self) -> Option<Algorithm> {
        Algorithm::from_name(self.algorithm())
    }

    /// The first 12 characters of the encoded part, for tables.
    pub fn short(&self) -> &str {
        let encoded = self.encoded();
        &encoded[..encoded.len().min(12)]
    }
}

fn write_hex(out: &mut String, byte: u8) -> fmt::Result {
    use fmt::Write as _;
    write!(out, "{byte:02x}")
}

/// True when `algorithm` follows the grammar of a digest's algorithm part.
pub fn is_valid_algorithm(algorithm: &str) -> bool {
    let bytes = algorithm.as_bytes();
    let mut previous_was_separator = true; // a component must come first
    for &b in bytes {
        if matches!(b, b'+' | b'.' | b'_' | b'-') {
            if previous_was_separator {
                return false;
            }
            previous_was_separator = true;
        } else if b.is_ascii_lowercase() || b.is_ascii_digit() {
            previous_was_separator = false;
        } else {
            return false;
        }
    }
    !previous_was_separator
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.text)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, DigestError> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An incremental hash of one of the computable algorithms.
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest::from_hash(Algorithm::Sha256, &h.finalize()),
            Hasher::Sha512(h) => Digest::from_hash(Algorithm::Sha512, &h.finalize()),
        }
    }
}

/// A writer that hashes and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W, algorithm: Algorithm) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::new(algorithm),
            written: 0,
        }
    }

    /// The digest and length of what was written, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (self.hasher.finish(), self.written, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Why a verified stream failed; carried inside an `io::Error` of kind `InvalidData`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// More bytes than the expected size.
    TooLong { expected: u64 },
    /// Fewer bytes than the expected size.
    TooShort { expected: u64, actual: u64 },
    /// The bytes hash to another digest.
    Digest { actual: Digest },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::TooLong { expected } => {
                write!(f, "it is longer than the expected {expected} bytes")
            }
            Mismatch::TooShort { expected, actual } => {
                write!(f, "it is {actual} bytes long, {expected} were expected")
            }
            Mismatch::Digest { actual } => write!(f, "its content hashes to {actual}"),
        }
    }
}

impl std::error::Error for Mismatch {}

impl Mismatch {
    /// Finds a `Mismatch` inside an `io::Error`, if that is what it is.
    pub fn from_io(error: &io::Error) -> Option<&Mismatch> {
        error.get_ref().and_then(|e| e.downcast_ref::<Mismatch>())
    }
}

/// A reader that checks, as it streams, that the bytes match a digest and (optionally) a size.
///
/// The check on the digest happens when the inner reader reports end of file, so a caller that
/// reads to the end either gets every byte or an `InvalidData` error carrying a [`Mismatch`]. A
/// size overrun is reported as soon as it happens, so memory and time stay bounded.
pub struct VerifyingReader<R> {
    inner: R,
    expected: Digest,
    hasher: Option<Hasher>,
    expected_size: Option<u64>,
    read: u64,
    done: bool,
}

impl<R: Read> VerifyingReader<R> {
    /// Verifies `expected` (when its algorithm is computable) and `expected_size` (when given).
    pub fn new(inner: R, expected: Digest, expected_size: Option<u64>) -> Self {
        let hasher = expected.known_algorithm().map(Hasher::new);
        VerifyingReader {
            inner,
            expected,
            hasher,
            expected_size,
            read: 0,
            done: false,
        }
    }

    fn fail(mismatch: Mismatch) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, mismatch)
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.done = true;
            if let Some(expected) = self.expected_size {
                if self.read != expected {
                    return Err(Self::fail(Mismatch::TooShort {
                        expected,
                        actual: self.read,
                    }));
                }
            }
            if let Some(hasher) = self.hasher.take() {
                let actual = hasher.finish();
                if actual != self.expected {
                    return Err(Self::fail(Mismatch::Digest { actual }));
                }
            }
            return Ok(0);
        }
        self.read += n as u64;
        if let Some(expected) = self.expected_size {
            if self.read > expected {
                self.done = true;
                return Err(Self::fail(Mismatch::TooLong { expected }));
            }
        }
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_valid_digests() {
        for ok in [
            EMPTY,
            "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
            "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
            "blake3:abc",
        ] {
            let d = Digest::parse(ok).unwrap();
            assert_eq!(d.as_str(), ok);
        }
    }

    #[test]
    fn rejects_invalid_digests() {
        for bad in [
            "",
            "sha256",
            ":abc",
            "sha256:",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
            "sha512:abc",
            "sha256+:abc",
            "+sha256:abc",
            "sha256:abc/def",
            "sha256:ab c",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn accessors() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.algorithm(), "sha256");
        assert_eq!(d.short(), "e3b0c44298fc");
        assert_eq!(d.known_algorithm(), Some(Algorithm::Sha256));
        assert_eq!(Digest::sha256_of(b""), d);
    }

    #[test]
    fn verifying_reader_accepts_and_rejects() {
        let good = Digest::sha256_of(b"hello");
        let mut out = Vec::new();
        VerifyingReader::new(&b"hello"[..], good.clone(), Some(5))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");

        let err = VerifyingReader::new(&b"hellp"[..], good.clone(), Some(5))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(matches!(
            Mismatch::from_io(&err),
            Some(Mismatch::Digest { .. })
        ));

        let err = VerifyingReader::new(&b"hello!"[..], good.clone(), Some(5))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(
            Mismatch::from_io(&err),
            Some(&Mismatch::TooLong { expected: 5 })
        );

        let err = VerifyingReader::new(&b"hell"[..], good, Some(5))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(matches!(
            Mismatch::from_io(&err),
            Some(Mismatch::TooShort { .. })
        ));
    }

    #[test]
    fn hashing_writer_counts_and_hashes() {
        let mut w = HashingWriter::new(Vec::new(), Algorithm::Sha256);
        w.write_all(b"hello").unwrap();
        let (digest, n, inner) = w.finish();
        assert_eq!(digest, Digest::sha256_of(b"hello"));
        assert_eq!(n, 5);
        assert_eq!(inner, b"hello");
    }

    mod props {
        use crate::spec::digest::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn sha256_hex_roundtrips(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                let d = Digest::sha256_of(&bytes);
                prop_assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
            }

            #[test]
            fn parse_never_panics(s in ".{0,80}") {
                let _ = Digest::parse(&s);
            }

            #[test]
            fn grammar_valid_opaque_digests_parse(
                alg in "[a-z0-9]{1,8}([+._-][a-z0-9]{1,8}){0,2}",
                enc in "[a-zA-Z0-9=_-]{1,40}",
            ) {
                prop_assume!(alg != "sha256" && alg != "sha512");
                let text = format!("{alg}:{enc}");
                prop_assert!(Digest::parse(&text).is_ok());
            }
        }
    }
}
