//! The one normaliser of tar entry names: what a name means once `./`, `//`, `.`, a leading `/`
//! and a trailing `/` are taken off, and what about it makes readers disagree.
//!
//! Every reader of a tar ocikit knows agrees that `./a//b/./c/` is `a/b/c`. They disagree about
//! the rest: GNU tar strips a leading `/` and refuses (or strips) `..`; Go programs run
//! `path.Clean` (containerd's importer then ignores `/index.json`, skopeo's untar joins it under
//! its target); the `tar` crate keeps `..` and checks it at unpack time. So a [`TarPath`] keeps
//! the lexically clean name and says separately whether the raw name was absolute, had a `..`
//! component, ended in `/` or held a NUL: each caller decides what those mean to it (a layout
//! archive refuses them, a layer reports them, a layer builder refuses `..` and NUL).

/// A tar entry name, normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarPath {
    /// The components that are neither empty nor `.`, joined by `/`; a `..` removes the
    /// component before it (as Go's `path.Clean` does) and one with nothing to remove is
    /// dropped ([`escapes`](TarPath::escapes) says so). Empty for a name of the root itself.
    pub clean: Vec<u8>,
    /// The raw name starts with `/`.
    pub absolute: bool,
    /// The raw name has a `..` component.
    pub dotdot: bool,
    /// A `..` climbs above the root: the name points outside of where it is unpacked.
    pub escapes: bool,
    /// The raw name ends with `/` (a directory, to the readers that honour it).
    pub trailing_slash: bool,
    /// The raw name holds a NUL byte (no reader can create such a file).
    pub nul: bool,
}

impl TarPath {
    /// Whether every reader reads the name as [`clean`](TarPath::clean): relative, without
    /// `..` and without NUL.
    pub fn is_plain(&self) -> bool {
        !self.absolute && !self.dotdot && !self.nul
    }

    /// The clean name as text, when it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.clean).ok()
    }
}

/// Normalises a tar entry name (or hard-link target: both are relative to the archive's root).
pub fn normalize(raw: &[u8]) -> TarPath {
    let mut components: Vec<&[u8]> = Vec::new();
    let mut dotdot = false;
    let mut escapes = false;
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                dotdot = true;
                if components.pop().is_none() {
                    escapes = true;
                }
            }
            other => components.push(other),
        }
    }
    TarPath {
        clean: components.join(&b'/'),
        absolute: raw.starts_with(b"/"),
        dotdot,
        escapes,
        trailing_slash: raw.len() > 1 && raw.ends_with(b"/"),
        nul: raw.contains(&0),
    }
}

/// How many bytes of a name [`display`] shows.
const SHOWN: usize = 1024;

/// A name for messages: lossy UTF-8, cut after 1 KiB with the whole length said (a name may be
/// 1 MiB long; a message repeating it must not be).
pub fn display(raw: &[u8]) -> String {
    if raw.len() <= SHOWN {
        return String::from_utf8_lossy(raw).into_owned();
    }
    format!(
        "{}… ({} bytes)",
        String::from_utf8_lossy(&raw[..SHOWN]),
        raw.len()
    )
}

/// Where a symlink named `name` (clean) pointing at `target` leads, as a clean name relative
/// to the same root; `None` when the target is absolute, empty, or climbs above the root (it
/// then leads outside of what was unpacked).
pub fn resolve_symlink(name: &[u8], target: &[u8]) -> Option<Vec<u8>> {
    if target.is_empty() || target.starts_with(b"/") || target.contains(&0) {
        return None;
    }
    let mut components: Vec<&[u8]> = name.split(|&b| b == b'/').collect();
    components.pop(); // relative to the link's directory
    for component in target.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                components.pop()?;
            }
            other => components.push(other),
        }
    }
    Some(components.join(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(raw: &str) -> String {
        String::from_utf8(normalize(raw.as_bytes()).clean).unwrap()
    }

    #[test]
    fn names_every_reader_agrees_on() {
        for (raw, expected) in [
            ("index.json", "index.json"),
            ("./index.json", "index.json"),
            ("././blobs//sha256/./ab", "blobs/sha256/ab"),
            ("blobs/", "blobs"),
            ("./", ""),
            (".", ""),
            ("", ""),
        ] {
            let path = normalize(raw.as_bytes());
            assert_eq!(
                String::from_utf8(path.clean.clone()).unwrap(),
                expected,
                "{raw}"
            );
            assert!(path.is_plain(), "{raw}");
        }
        assert!(normalize(b"blobs/").trailing_slash);
        assert!(
            !normalize(b"/").trailing_slash,
            "the root is not a trailing slash"
        );
    }

    #[test]
    fn names_readers_disagree_on_are_flagged() {
        let p = normalize(b"/index.json");
        assert!(p.absolute && !p.is_plain());
        assert_eq!(clean("/index.json"), "index.json");
        let p = normalize(b"a/../index.json");
        assert!(p.dotdot && !p.escapes);
        assert_eq!(p.clean, b"index.json");
        let p = normalize(b"../../etc/passwd");
        assert!(p.dotdot && p.escapes);
        assert_eq!(p.clean, b"etc/passwd");
        assert!(normalize(b"a\0b").nul);
        assert_eq!(normalize(b"a/b/../../..").clean, b"");
        assert!(normalize(b"a/b/../../..").escapes);
    }

    #[test]
    fn long_names_are_shown_cut() {
        assert_eq!(display(b"a/b"), "a/b");
        let long = display(&[b'x'; 1 << 20]);
        assert!(
            long.len() < 1100 && long.ends_with("… (1048576 bytes)"),
            "{long}"
        );
    }

    #[test]
    fn symlinks_resolve_relative_to_their_directory() {
        assert_eq!(
            resolve_symlink(b"a/b/c", b"../d").as_deref(),
            Some(&b"a/d"[..])
        );
        assert_eq!(
            resolve_symlink(b"a/b", b"./c/d").as_deref(),
            Some(&b"a/c/d"[..])
        );
        assert_eq!(resolve_symlink(b"a/b", b"..").as_deref(), Some(&b""[..]));
        assert_eq!(resolve_symlink(b"a/b", b"../../c"), None);
        assert_eq!(resolve_symlink(b"a/b", b"/c"), None);
        assert_eq!(resolve_symlink(b"a/b", b""), None);
    }
}
