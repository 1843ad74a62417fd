//! `SHA256SUMS`: the list of every file of a bundle with its sha256, in the format GNU
//! `sha256sum` writes and `sha256sum -c` checks (`<64 hex>  <relative path>`, one line each,
//! LF, sorted bytewise by path), so a bundle can be checked with nothing but coreutils.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::spec::digest::Digest;

/// The file's name at the bundle's top.
pub const SUMS: &str = "SHA256SUMS";

/// The largest `SHA256SUMS` read (a million files is about 100 MiB).
pub const MAX_SUMS_SIZE: u64 = 256 * 1024 * 1024;

/// Paths and their sha256 (hex), sorted bytewise by path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sums {
    entries: BTreeMap<String, String>,
}

impl Sums {
    /// An empty list.
    pub fn new() -> Sums {
        Sums::default()
    }

    /// Lists `path` with the sha256 `digest`. A path must be a plain relative path without
    /// a newline or a backslash (which GNU would escape).
    pub fn insert(&mut self, path: &str, digest: &Digest) -> Result<()> {
        check_path(path)?;
        if digest.algorithm() != "sha256" {
            return Err(Error::InvalidInput {
                what: format!("the digest {digest} of {path}"),
                reason: "is not a sha256 digest".into(),
            });
        }
        self.entries
            .insert(path.to_string(), digest.encoded().to_string());
        Ok(())
    }

    /// Lists `path` with the sha256 of `bytes`.
    pub fn insert_bytes(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        self.insert(path, &Digest::sha256_of(bytes))
    }

    /// The paths and their sha256 in hex, sorted.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(p, h)| (p.as_str(), h.as_str()))
    }

    /// The sha256 (hex) listed for `path`.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.entries.get(path).map(String::as_str)
    }

    /// How many files are listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no file is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The file's bytes.
    pub fn render(&self) -> Vec<u8> {
        let mut out = String::with_capacity(self.entries.len() * 140);
        for (path, hex) in &self.entries {
            out.push_str(hex);
            out.push_str("  ");
            out.push_str(path);
            out.push('\n');
        }
        out.into_bytes()
    }

    /// Reads a `SHA256SUMS` file (`what` names it in messages): GNU's text (`  `) and binary
    /// (` *`) separators are accepted; escaped names, other digests, duplicate paths and paths
    /// that are not plain relative paths are refused.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Sums> {
        let bad = |line: usize, reason: String| Error::InvalidInput {
            what: format!("{what}, line {line},"),
            reason,
        };
        let text = std::str::from_utf8(bytes).map_err(|_| bad(0, "is not UTF-8 text".into()))?;
        let mut sums = Sums::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if line.is_empty() {
                continue;
            }
            let (hex, rest) = line.split_at(line.len().min(64));
            let valid_hex = hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            let path = rest.strip_prefix("  ").or_else(|| rest.strip_prefix(" *"));
            let (true, Some(path)) = (valid_hex, path) else {
                return Err(bad(
                    n,
                    "is not `<64 lowercase hex digits>  <path>` (sha256sum's format)".into(),
                ));
            };
            check_path(path).map_err(|e| bad(n, e.to_string()))?;
            if sums
                .entries
                .insert(path.to_string(), hex.to_string())
                .is_some()
            {
                return Err(bad(n, format!("lists {path} a second time")));
            }
        }
        Ok(sums)
    }
}

/// Refuses a path that is not plain and relative, or that GNU would escape.
fn check_path(path: &str) -> Result<()> {
    let normalized = crate::codec::tar::path::normalize(path.as_bytes());
    let plain = !path.is_empty()
        && normalized.is_plain()
        && normalized.as_str() == Some(path)
        && !path.contains(['\n', '\r', '\\']);
    if !plain {
        return Err(Error::InvalidInput {
            what: format!("the path {path:?}"),
            reason:
                "is not a plain relative path (no `.`, `..`, leading `/`, backslash or newline)"
                    .into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sorted_gnu_lines_and_reads_them_back() {
        let mut sums = Sums::new();
        sums.insert_bytes("oci-layout", b"x").unwrap();
        sums.insert_bytes("blobs/sha256/ab", b"y").unwrap();
        sums.insert_bytes("SHA256SUMS.sig", b"z").unwrap();
        let text = String::from_utf8(sums.render()).unwrap();
        let paths: Vec<&str> = text.lines().map(|l| &l[66..]).collect();
        assert_eq!(paths, ["SHA256SUMS.sig", "blobs/sha256/ab", "oci-layout"]);
        assert!(text.ends_with('\n'));
        assert_eq!(Sums::parse(text.as_bytes(), "SHA256SUMS").unwrap(), sums);
    }

    #[test]
    fn refuses_escaping_paths_and_bad_lines() {
        let hex = "a".repeat(64);
        for line in [
            format!("{hex}  ../x\n"),
            format!("{hex}  /etc/passwd\n"),
            format!("{hex} x\n"),
            format!("{}  x\n", "A".repeat(64)),
            format!("\\{hex}  x\\ny\n"),
            format!("{hex}  x\n{hex}  x\n"),
        ] {
            assert!(Sums::parse(line.as_bytes(), "S").is_err(), "{line}");
        }
        assert!(Sums::parse(format!("{hex} *x\n").as_bytes(), "S").is_ok());
    }
}
