//! The entries of a layer made from a directory on disk, for [`super::builder`].
//!
//! Every entry below the directory (not the directory itself) becomes one: permission bits,
//! uid and gid (or the owner the caller forces), the modification time in whole seconds (the
//! builder clamps it), extended attributes, symbolic links as links (their targets as they
//! are), FIFOs, and device nodes when the caller allows them. Hard links are kept as links:
//! among the paths of one inode, the first in the layer's order (bytewise) is the file and the
//! others link to it. Sockets cannot be stored in a tar and are skipped, and reported.
//!
//! Nothing is followed: the walk never enters a linked directory, and files are read later
//! without following links ([`super::builder`] opens them `O_NOFOLLOW`), so a tree that
//! changes while it is read cannot make ocikit read outside it. The access time is never
//! looked at, so reading a file does not change the layer.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::builder::{Entry, EntryKind};
use crate::error::{Error, IoContext, Result};

/// Extended attributes that describe the machine rather than the content: SELinux labels are
/// the host's policy, and cannot be set by an unprivileged unpacker anyway (umoci leaves them
/// out too).
const SKIPPED_XATTRS: &[&str] = &["security.selinux"];

/// Why a device node is refused when devices are not asked for (callers add how to ask).
pub const DEVICE_REFUSED: &str =
    "is a device node; device nodes go into a layer only when asked for";

/// How to read a directory into entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanOptions {
    /// Every entry owned by this uid and gid instead of its own.
    pub owner: Option<(u64, u64)>,
    /// Take character and block devices; without it, a device is an error.
    pub devices: bool,
}

/// A directory read into entries.
#[derive(Debug, Default)]
pub struct Scan {
    /// The entries, sorted by path.
    pub entries: Vec<Entry>,
    /// Sockets found and left out (a tar cannot hold them).
    pub skipped: Vec<PathBuf>,
    /// The bytes of regular files to be read (hard links counted once).
    pub file_bytes: u64,
}

/// Reads the tree below `root` into entries (see the module documentation).
pub fn scan(root: &Path, options: &ScanOptions) -> Result<Scan> {
    let meta = std::fs::metadata(root).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::InvalidInput {
            what: root.display().to_string(),
            reason: "does not exist".into(),
        },
        _ => Error::io("cannot read", root, e),
    })?;
    if !meta.is_dir() {
        return Err(Error::InvalidInput {
            what: root.display().to_string(),
            reason: "is not a directory".into(),
        });
    }
    let mut found: Vec<(String, PathBuf, Metadata)> = Vec::new();
    let mut result = Scan::default();
    for item in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            Error::io("cannot read", path, e.into())
        })?;
        let path = item.path();
        let meta = path.symlink_metadata().ctx("cannot read", path)?;
        if meta.file_type().is_socket() {
            result.skipped.push(path.to_path_buf());
            continue;
        }
        let relative = path.strip_prefix(root).unwrap_or(path);
        let name = relative.to_str().ok_or_else(|| Error::Unsupported {
            what: path.display().to_string(),
            reason: "has a name that is not UTF-8, which a layer cannot hold here".into(),
        })?;
        found.push((name.to_string(), path.to_path_buf(), meta));
    }
    // The layer's order, so that the first path of an inode is the one written as the file.
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let mut first_of_inode: HashMap<(u64, u64), String> = HashMap::new();
    for (name, path, meta) in found {
        let kind = meta.file_type();
        let entry_kind = if kind.is_dir() {
            EntryKind::Directory
        } else if kind.is_file() {
            match meta.nlink() > 1 {
                true => match first_of_inode.get(&(meta.dev(), meta.ino())) {
                    Some(first) => EntryKind::HardLink(first.clone()),
                    None => {
                        first_of_inode.insert((meta.dev(), meta.ino()), name.clone());
                        result.file_bytes += meta.len();
                        EntryKind::File(super::builder::Content::Path(path.clone()))
                    }
                },
                false => {
                    result.file_bytes += meta.len();
                    EntryKind::File(super::builder::Content::Path(path.clone()))
                }
            }
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&path).ctx("cannot read link", &path)?;
            let target = target
                .into_os_string()
                .into_string()
                .map_err(|_| Error::Unsupported {
                    what: format!("the link {}", path.display()),
                    reason: "has a target that is not UTF-8, which a layer cannot hold here".into(),
                })?;
            EntryKind::Symlink(target)
        } else if kind.is_fifo() {
            EntryKind::Fifo
        } else if kind.is_char_device() || kind.is_block_device() {
            if !options.devices {
                return Err(Error::Unsupported {
                    what: path.display().to_string(),
                    reason: DEVICE_REFUSED.into(),
                });
            }
            let (major, minor) = (
                rustix::fs::major(meta.rdev()),
                rustix::fs::minor(meta.rdev()),
            );
            match kind.is_char_device() {
                true => EntryKind::CharDevice { major, minor },
                false => EntryKind::BlockDevice { major, minor },
            }
        } else {
            return Err(Error::Unsupported {
                what: path.display().to_string(),
                reason: "is of a kind of file a layer cannot hold".into(),
            });
        };
        let owner = options
            .owner
            .unwrap_or((meta.uid().into(), meta.gid().into()));
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
        let entry = Entry::new(name, meta.mode(), entry_kind)
            .with_owner(owner.0, owner.1)
            .with_mtime(mtime)
            .with_xattrs(xattrs(&path)?);
        result.entries.push(entry);
    }
    Ok(result)
}

/// The extended attributes of `path` itself (not of what a link points to), sorted by name,
/// without [`SKIPPED_XATTRS`]. A file system without them has none.
fn xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let unsupported = |e: &rustix::io::Errno| {
        *e == rustix::io::Errno::NOTSUP || *e == rustix::io::Errno::OPNOTSUPP
    };
    let read_error =
        |e: rustix::io::Errno| Error::io("cannot read extended attributes of", path, e.into());
    let mut names = Vec::new();
    match rustix::fs::llistxattr(path, spare(&mut names, 4096)) {
        Ok(0) => return Ok(Vec::new()),
        Ok(_) => {}
        Err(e) if unsupported(&e) => return Ok(Vec::new()),
        Err(rustix::io::Errno::RANGE) => {
            let needed = rustix::fs::llistxattr(path, &mut [0u8; 0]).map_err(read_error)?;
            names.clear();
            rustix::fs::llistxattr(path, spare(&mut names, needed)).map_err(read_error)?;
        }
        Err(e) => return Err(read_error(e)),
    }
    let mut out = Vec::new();
    for raw in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8(raw.to_vec()).map_err(|_| Error::Unsupported {
            what: path.display().to_string(),
            reason: "has an extended attribute whose name is not UTF-8".into(),
        })?;
        if SKIPPED_XATTRS.contains(&name.as_str()) {
            continue;
        }
        let size = rustix::fs::lgetxattr(path, name.as_str(), &mut [0u8; 0]).map_err(read_error)?;
        let mut value = Vec::new();
        rustix::fs::lgetxattr(path, name.as_str(), spare(&mut value, size)).map_err(read_error)?;
        out.push((name, value));
    }
    out.sort();
    Ok(out)
}

/// `buffer`, emptied, with room for `n` bytes, for the xattr calls to fill.
fn spare(buffer: &mut Vec<u8>, n: usize) -> rustix::buffer::SpareCapacity<'_, u8> {
    buffer.clear();
    buffer.reserve(n.max(1));
    rustix::buffer::spare_capacity(buffer)
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::codec::layer::write_tar;
    use crate::codec::tar::{Header, Kind, Reader};

    /// Every entry of a tar, with its data.
    fn read_tar(bytes: &[u8]) -> Vec<(Header, Vec<u8>)> {
        let mut reader = Reader::new(bytes);
        let mut out = Vec::new();
        while let Some(mut entry) = reader.next_entry().unwrap() {
            let header = entry.header().clone();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.push((header, data));
        }
        out
    }

    fn tree(dir: &Path) -> PathBuf {
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("b/c/z"), "zed").unwrap();
        std::fs::write(root.join("a"), "first").unwrap();
        std::fs::set_permissions(root.join("a"), std::fs::Permissions::from_mode(0o4750)).unwrap();
        // Three names of one inode: the bytewise first ("a") is the file.
        std::fs::hard_link(root.join("a"), root.join("b/hard")).unwrap();
        std::fs::hard_link(root.join("a"), root.join("B")).unwrap();
        std::os::unix::fs::symlink("../a", root.join("b/link")).unwrap();
        std::os::unix::fs::symlink("/nowhere", root.join("dangling")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o640),
            0,
        )
        .unwrap();
        root
    }

    #[test]
    fn a_directory_becomes_sorted_entries_with_links_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = tree(dir.path());
        let socket = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
        let scan = scan(&root, &ScanOptions::default()).unwrap();
        drop(socket);
        assert_eq!(scan.skipped, [root.join("sock")]);
        assert_eq!(scan.file_bytes, 5 + 3, "a hard-linked file counts once");
        let tar = write_tar(&scan.entries, 1_000, Vec::new()).unwrap();
        let entries = read_tar(&tar);
        let names: Vec<String> = entries
            .iter()
            .map(|(h, _)| String::from_utf8(h.path.clone()).unwrap())
            .collect();
        assert_eq!(
            names,
            ["B", "a", "b/", "b/c/", "b/c/z", "b/hard", "b/link", "dangling", "fifo"]
        );
        let by_name = |n: &str| &entries[names.iter().position(|x| x == n).unwrap()];
        // "B" < "a" bytewise: the capital is the file, the others link to it.
        assert_eq!(by_name("B").0.kind, Kind::Regular);
        assert_eq!(by_name("B").1, b"first");
        assert_eq!(by_name("B").0.mode, 0o4750);
        for link in ["a", "b/hard"] {
            assert_eq!(by_name(link).0.kind, Kind::HardLink, "{link}");
            assert_eq!(by_name(link).0.link, b"B");
        }
        assert_eq!(by_name("b/link").0.kind, Kind::Symlink);
        assert_eq!(by_name("b/link").0.link, b"../a");
        assert_eq!(by_name("dangling").0.link, b"/nowhere");
        assert_eq!(by_name("fifo").0.kind, Kind::Fifo);
        assert_eq!(by_name("fifo").0.mode, 0o640);
        // Files written now are newer than 1000: clamped.
        assert!(entries.iter().all(|(h, _)| h.mtime == 1_000));
        // Owners are kept: the files are the test's own.
        let uid = std::fs::metadata(&root).unwrap().uid() as i64;
        assert!(entries
            .iter()
            .all(|(h, _)| h.uid == uid && h.uname.is_empty()));
    }

    #[test]
    fn owners_can_be_forced_and_old_mtimes_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("r");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("old"), "x").unwrap();
        let old = std::fs::File::options()
            .write(true)
            .open(root.join("old"))
            .unwrap();
        old.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(500))
            .unwrap();
        let options = ScanOptions {
            owner: Some((4_000_000, 7)),
            devices: false,
        };
        let scan = scan(&root, &options).unwrap();
        let tar = write_tar(&scan.entries, 1_000, Vec::new()).unwrap();
        let entries = read_tar(&tar);
        let (header, _) = &entries[0];
        assert_eq!(header.mtime, 500, "older than the clamp: kept");
        // A uid beyond ustar's 7 octal digits goes in a PAX record as well.
        assert_eq!((header.uid, header.gid), (4_000_000, 7));
        assert!(tar.windows(12).any(|w| w == b"uid=4000000\n"));
    }

    #[test]
    fn a_file_read_twice_gives_the_same_tar_whatever_its_access_time() {
        let dir = tempfile::tempdir().unwrap();
        let root = tree(dir.path());
        let first = write_tar(
            &scan(&root, &ScanOptions::default()).unwrap().entries,
            0,
            Vec::new(),
        )
        .unwrap();
        let file = std::fs::File::open(root.join("b/c/z")).unwrap();
        let times = std::fs::FileTimes::new()
            .set_accessed(std::time::UNIX_EPOCH + std::time::Duration::from_secs(123_456));
        file.set_times(times).unwrap();
        let second = write_tar(
            &scan(&root, &ScanOptions::default()).unwrap().entries,
            0,
            Vec::new(),
        )
        .unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn extended_attributes_are_kept_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("r");
        std::fs::create_dir(&root).unwrap();
        let file = root.join("f");
        std::fs::write(&file, "x").unwrap();
        let set = |name: &str, value: &[u8]| {
            rustix::fs::lsetxattr(&file, name, value, rustix::fs::XattrFlags::empty())
        };
        if let Err(e) = set("user.b", b"\x00binary\xff") {
            eprintln!("note: this file system has no user xattrs ({e}); skipping");
            return;
        }
        set("user.a", b"one").unwrap();
        let scan = scan(&root, &ScanOptions::default()).unwrap();
        let entries = read_tar(&write_tar(&scan.entries, 0, Vec::new()).unwrap());
        assert_eq!(
            entries[0].0.xattrs,
            [
                (b"user.a".to_vec(), b"one".to_vec()),
                (b"user.b".to_vec(), b"\x00binary\xff".to_vec())
            ]
        );
    }

    #[test]
    fn devices_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("r");
        std::fs::create_dir(&root).unwrap();
        let made = rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        );
        if let Err(e) = made {
            eprintln!("note: cannot make a device node here ({e}); skipping");
            return;
        }
        let err = scan(&root, &ScanOptions::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains(&root.join("null").display().to_string()),
            "{err}"
        );
        assert!(err.to_string().contains("device node"), "{err}");
        let options = ScanOptions {
            devices: true,
            ..ScanOptions::default()
        };
        let scan = scan(&root, &options).unwrap();
        let entries = read_tar(&write_tar(&scan.entries, 0, Vec::new()).unwrap());
        assert_eq!(entries[0].0.kind, Kind::CharDevice);
        assert_eq!((entries[0].0.devmajor, entries[0].0.devminor), (1, 3));
    }

    #[test]
    fn not_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        for path in [file, dir.path().join("missing")] {
            let err = scan(&path, &ScanOptions::default()).unwrap_err();
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }
    }
}
