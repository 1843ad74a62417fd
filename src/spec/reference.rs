//! References: `[PREFIX]LAYOUT[:NAME][@DIGEST]` (PRODUCT.md §References).
//!
//! The layout path ends at the first `:`; `NAME` may itself contain `:` and `/`
//! (`docker.io/library/alpine:3.20` is a common name). A layout path may contain `:` too
//! (`skopeo sync --scoped` writes `127.0.0.1:5000/app`): [`Reference::parse_with`] is told which
//! paths exist and takes the longest existing one. A trailing `@algorithm:encoded` is a digest.
//! Prefixes `oci:`, `oci-archive:`, `ocidir://` and `docker-archive:` are accepted for
//! familiarity with skopeo and friends.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::spec::digest::{Digest, DigestError};

/// Which prefix the reference carried, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// No prefix: a directory or an archive, detected.
    Auto,
    /// `oci:` or `ocidir://`: a layout directory.
    Directory,
    /// `oci-archive:`: a layout tarball.
    Archive,
    /// `docker-archive:`: a `docker save` tarball.
    DockerArchive,
}

/// A parsed reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub transport: Transport,
    pub layout: PathBuf,
    pub name: Option<String>,
    pub digest: Option<Digest>,
}

const PREFIXES: [(&str, Transport); 4] = [
    ("ocidir://", Transport::Directory),
    ("oci-archive:", Transport::Archive),
    ("docker-archive:", Transport::DockerArchive),
    ("oci:", Transport::Directory),
];

impl Reference {
    /// Parses a reference, the layout path ending at the first `:`.
    pub fn parse(input: &str) -> Result<Reference> {
        Reference::parse_with(input, |_| false)
    }

    /// Parses a reference where `exists` says which layout paths exist: the whole text (before
    /// any `@digest`) when it exists, otherwise the longest prefix ending before a `:` that
    /// exists, otherwise the text up to the first `:`.
    pub fn parse_with(input: &str, exists: impl Fn(&Path) -> bool) -> Result<Reference> {
        let invalid = |reason: &str| Error::InvalidReference {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (transport, rest) = PREFIXES
            .iter()
            .find_map(|(prefix, t)| input.strip_prefix(prefix).map(|rest| (*t, rest)))
            .unwrap_or((Transport::Auto, input));

        let (rest, digest) = split_digest(rest)
            .map_err(|e| invalid(&format!("its digest is invalid: {}", e.reason)))?;
        let existing = std::iter::once(rest.len())
            .chain(rest.rmatch_indices(':').map(|(i, _)| i))
            .find(|&end| end > 0 && exists(Path::new(&rest[..end])));
        let (layout, name) = match existing {
            Some(end) if end == rest.len() => (rest, None),
            Some(end) => (&rest[..end], Some(&rest[end + 1..])),
            None => match rest.split_once(':') {
                Some((layout, name)) => (layout, Some(name)),
                None => (rest, None),
            },
        };
        if layout.is_empty() {
            return Err(invalid("the layout path is empty"));
        }
        if name == Some("") {
            return Err(invalid("the name after ':' is empty"));
        }
        Ok(Reference {
            transport,
            layout: PathBuf::from(layout),
            name: name.map(str::to_string),
            digest,
        })
    }

    /// A reference to a whole layout (no name, no digest).
    pub fn layout_only(path: impl Into<PathBuf>) -> Reference {
        Reference {
            transport: Transport::Auto,
            layout: path.into(),
            name: None,
            digest: None,
        }
    }
}

/// Splits a trailing `@algorithm:encoded`. Text after the last `@` counts as a digest when it
/// starts with something shaped like an algorithm and a `:`; otherwise the `@` belongs to the
/// name (the ref.name grammar allows `@`).
fn split_digest(text: &str) -> Result<(&str, Option<Digest>), DigestError> {
    let Some(at) = text.rfind('@') else {
        return Ok((text, None));
    };
    let candidate = &text[at + 1..];
    let looks_like_digest = candidate.split_once(':').is_some_and(|(alg, _)| {
        !alg.is_empty()
            && alg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
    });
    if !looks_like_digest {
        return Ok((text, None));
    }
    Ok((&text[..at], Some(Digest::parse(candidate)?)))
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.layout.display())?;
        if let Some(name) = &self.name {
            write!(f, ":{name}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn layout_only() {
        let x = r("dir/layout");
        assert_eq!(x.layout, PathBuf::from("dir/layout"));
        assert_eq!(x.name, None);
        assert_eq!(x.digest, None);
    }

    #[test]
    fn names_with_colons_and_slashes() {
        let x = r("out:docker.io/library/alpine:3.20");
        assert_eq!(x.layout, PathBuf::from("out"));
        assert_eq!(x.name.as_deref(), Some("docker.io/library/alpine:3.20"));
    }

    #[test]
    fn layout_paths_with_colons_are_found_by_what_exists() {
        let on_disk = ["127.0.0.1:5000/app", "out", "a:b", "a:b:c/d"];
        let parse =
            |s: &str| Reference::parse_with(s, |p| on_disk.iter().any(|d| Path::new(d) == p));
        let r = parse("127.0.0.1:5000/app:v1").unwrap();
        assert_eq!(r.layout, Path::new("127.0.0.1:5000/app"));
        assert_eq!(r.name.as_deref(), Some("v1"));
        let r = parse("127.0.0.1:5000/app").unwrap();
        assert_eq!(
            (r.layout.as_path(), r.name),
            (Path::new("127.0.0.1:5000/app"), None)
        );
        // the longest existing prefix wins
        let r = parse("a:b:c/d:x:y").unwrap();
        assert_eq!(r.layout, Path::new("a:b:c/d"));
        assert_eq!(r.name.as_deref(), Some("x:y"));
        let r = parse("a:b:zzz").unwrap();
        assert_eq!(
            (r.layout.as_path(), r.name.as_deref()),
            (Path::new("a:b"), Some("zzz"))
        );
        // names with ':' after an existing layout are unchanged
        let r = parse("out:docker.io/library/alpine:3.20@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").unwrap();
        assert_eq!(r.layout, Path::new("out"));
        assert_eq!(r.name.as_deref(), Some("docker.io/library/alpine:3.20"));
        assert!(r.digest.is_some());
        // nothing exists: the first ':' ends the layout
        let r = parse("nowhere:5000/app:v1").unwrap();
        assert_eq!(
            (r.layout.as_path(), r.name.as_deref()),
            (Path::new("nowhere"), Some("5000/app:v1"))
        );
    }

    #[test]
    fn digests() {
        let x = r(&format!("l@{D}"));
        assert_eq!(x.layout, PathBuf::from("l"));
        assert_eq!(x.digest.unwrap().as_str(), D);
        let x = r(&format!("l:v1@{D}"));
        assert_eq!(x.name.as_deref(), Some("v1"));
        assert!(x.digest.is_some());
        let x = r("l:user@host");
        assert_eq!(x.name.as_deref(), Some("user@host"));
        assert!(x.digest.is_none());
        assert!(Reference::parse("l@sha256:ABC").is_err());
    }

    #[test]
    fn prefixes() {
        assert_eq!(r("oci:l:v1").transport, Transport::Directory);
        assert_eq!(r("oci:l:v1").name.as_deref(), Some("v1"));
        assert_eq!(r("ocidir://l").transport, Transport::Directory);
        assert_eq!(r("oci-archive:l.tar:v1").transport, Transport::Archive);
        assert_eq!(
            r("docker-archive:s.tar").transport,
            Transport::DockerArchive
        );
        assert_eq!(r("oci-archive:l.tar:v1").layout, PathBuf::from("l.tar"));
    }

    #[test]
    fn rejects() {
        for bad in ["", ":v1", "l:", "oci:", "@sha256:abc"] {
            assert!(Reference::parse(bad).is_err(), "{bad:?}");
        }
    }

    mod props {
        use crate::spec::reference::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parse_never_panics(s in ".{0,100}") {
                let _ = Reference::parse(&s);
            }

            #[test]
            fn roundtrips(
                layout in "[a-zA-Z0-9_./-]{1,20}",
                name in proptest::option::of("[a-z0-9]+([._:/-][a-z0-9]+){0,3}"),
                with_digest in any::<bool>(),
            ) {
                let digest = with_digest.then(|| Digest::sha256_of(layout.as_bytes()));
                let reference = Reference { transport: Transport::Auto, layout: layout.clone().into(), name, digest };
                prop_assert_eq!(Reference::parse(&reference.to_string()).unwrap(), reference);
            }
        }
    }
}
