//! Escape-safe extraction to disk: the one way ocikit writes a tree it was handed (the files of
//! `artifact pull`, and the layers of `unpack`).
//!
//! A [`Root`] is a directory opened once. Every operation through it — make a directory, create
//! or replace a regular file, symlink, hard link, set mode/mtime/owner, remove, rename —
//! resolves its path against what is **on disk**, one component at a time, and never follows a
//! link out of the root. Lexical checks cannot be right here: `d/up -> ..` followed by
//! `d/l -> up/d/up/../../etc/passwd` looks contained but is not, and only the disk knows.
//!
//! What it defends against: names with `..` or a leading `/`; symlinks planted by earlier
//! entries (or earlier layers, or already in the directory) that later entries write through;
//! chains of links that each look harmless; a link planted where a file is about to be written;
//! hard links whose source lies behind a link; hard links to symlinks.
//!
//! # Policies
//! - [`Policy::Chroot`] resolves as a chroot would (`RESOLVE_IN_ROOT`): `..` at the root stays
//!   there and an absolute link target starts again at the root, so an image's merged-usr
//!   `lib -> usr/lib` or `/usr/lib` works. Links are stored as written: they are meant to be read
//!   inside the root. For `unpack`.
//! - [`Policy::Refuse`] (`RESOLVE_BENEATH`): any path that would leave the root — by `..`, an
//!   absolute name, or a link, existing or being made — is an error. A link being made is judged
//!   by walking its target from where it lands, counting missing parts as directories (a later
//!   entry may make them); because a later entry can still change where an earlier link leads
//!   (`d/l -> x/../..`, then `d/x -> .`), [`Root::finish`] judges every link again once all is
//!   written. For `artifact pull`, whose files are read on the host.
//!
//! # How
//! The parent of the last component is opened with `openat2(2)` (`RESOLVE_IN_ROOT` or
//! `RESOLVE_BENEATH`, with `RESOLVE_NO_MAGICLINKS`), creating missing directories one level at a
//! time. The last component is never followed: it is handled relative to that parent with calls
//! that act on the name itself — `unlinkat` then `openat(O_CREAT|O_EXCL|O_NOFOLLOW)`,
//! `symlinkat`, `linkat` without `AT_SYMLINK_FOLLOW`, `renameat` — so a symlink planted there is
//! replaced, never written through. Where `openat2` is missing (`ENOSYS` before Linux 5.6,
//! `EPERM`/`EINVAL` from a seccomp filter) a walk in user space does the same: `fstatat` and
//! `openat(O_PATH|O_NOFOLLOW)` per component, `readlinkat` for links, `..` taken from the walk's
//! own record of where it is (never the kernel's `..`), at most [`MAX_SYMLINKS`] links (`ELOOP`
//! past that, as the kernel). The walk also explains the kernel's bare `EXDEV`/`ELOOP`/`ENOTDIR`
//! in words, and places `Refuse` links (it knows the physical path where a link lands, which
//! `finish` needs). [`Root::with_resolver`] picks the walk on purpose, for tests.
//!
//! A hard link to a symlink is that symlink placed at the new path: its target is read again from
//! the new place (and refused under `Refuse` if it leads out from there). Hard-link sources
//! resolve inside the root like every other path. Device nodes and FIFOs cannot be made at all.
//!
//! Threat model: the entries being written and whatever is already in the root. Another process
//! renaming directories inside the root while a write runs is not in it (`openat2` narrows that
//! race; the walk and the final-component checks do not close it).
//!
//! # Why not a crate
//! The syscalls come from `rustix`. The resolution is ours because no well-kept crate has both
//! modes and a fallback that can be chosen: `cap-std` confines like `RESOLVE_BENEATH` only (no
//! chroot-like mode for `unpack`), keeps its fallback private, and does not look at a link's
//! target when the link is made (its own docs: "`original` is not resolved"), which is exactly
//! the hole of `artifact pull`; `pathrs` resolves in-root only (no refusing mode), marks itself
//! experimental and keeps its backend choice private; the `openat2` crate wraps the one syscall
//! that `rustix` already has.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// The most links one resolution follows (the kernel's limit too); past it, `ELOOP`.
pub const MAX_SYMLINKS: usize = 40;

/// How paths that would leave the root are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Like a chroot: `..` at the root stays there, absolute link targets start at the root.
    Chroot,
    /// Anything that would leave the root is an error, links included.
    Refuse,
}

/// How paths are resolved: by the kernel or by a walk in user space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolver {
    /// `openat2(2)` with `RESOLVE_IN_ROOT` or `RESOLVE_BENEATH`.
    Openat2,
    /// `openat(O_PATH|O_NOFOLLOW)` per component, links read and followed by hand.
    Walk,
}

/// What [`Root::set_metadata`] sets; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Permission bits (with setuid/setgid/sticky); ignored for symlinks, which have none.
    pub mode: Option<u32>,
    /// Modification (and access) time; a symlink's own.
    pub mtime: Option<SystemTime>,
    /// Owner and group (needs privilege to give away); a symlink's own.
    pub owner: Option<(u32, u32)>,
}

/// Which directory (device and inode) a path was when [`Root::mkdir`] made or kept it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Identity(u64, u64);

/// A directory that everything is written below, and never outside of.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
    policy: Policy,
    resolver: Resolver,
    /// Links placed under `Refuse`, judged again by `finish`.
    placed: Mutex<Vec<Placed>>,
    /// Whether an entry that is not a directory replaces a directory in its place (with all it
    /// holds), as a later layer's file replaces an earlier layer's directory.
    replace_directories: bool,
}

/// A link placed under `Refuse`.
#[derive(Debug)]
struct Placed {
    /// Where it is, from the root, through no link.
    physical: PathBuf,
    /// The path it was placed under, for messages.
    given: PathBuf,
    /// "is a symlink to …" or "is a hard link to …, a symlink to …".
    what: String,
}

/// One component of a path to resolve.
#[derive(Clone, Debug)]
enum Step {
    Up,
    Name(OsString),
}

/// A link followed during a walk, for messages.
#[derive(Debug)]
struct Link {
    path: PathBuf,
    target: PathBuf,
}

/// Why a resolution stopped.
#[derive(Debug)]
enum Stop {
    /// It would leave the root (through this link, if one was followed).
    Escape(Option<Rc<Link>>),
    /// An absolute path under `Refuse`.
    Absolute,
    /// A path with a NUL byte.
    Nul,
    /// It needs a directory where something else is.
    NotDir(PathBuf),
    /// A directory it needs does not exist (and is not to be made).
    Missing(PathBuf),
    /// A link leads to a directory that does not exist; directories are not made through links.
    Dangling(Rc<Link>),
    /// More than `MAX_SYMLINKS` links.
    Loop,
    Io(&'static str, PathBuf, io::Error),
}

impl Stop {
    /// The reason, reading on from the path that was resolved.
    fn reason(&self) -> String {
        match self {
            Stop::Escape(None) => "goes above the directory with '..'".into(),
            Stop::Escape(Some(link)) => format!(
                "goes through the symlink {:?} to {:?}, which leads outside the directory",
                link.path, link.target
            ),
            Stop::Absolute => "is an absolute path".into(),
            Stop::Nul => "contains a NUL byte".into(),
            Stop::NotDir(path) => format!("goes through {path:?}, which is not a directory"),
            Stop::Missing(path) => format!("goes through {path:?}, which does not exist"),
            Stop::Dangling(link) => format!(
                "goes through the symlink {:?} to {:?}, which leads to a missing directory",
                link.path, link.target
            ),
            Stop::Loop => format!("goes through more than {MAX_SYMLINKS} symlinks"),
            Stop::Io(action, path, e) => format!("cannot be resolved: {action} {path:?}: {e}"),
        }
    }
}

/// How a walk treats a directory that does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Missing {
    /// Make it (not through a link: a link to a missing directory is an error).
    Create,
    /// Stop.
    Fail,
    /// Go on as if it were an empty directory (to judge a link whose target does not exist yet).
    Assume,
}

/// Where a walk is: the directory reached, and assumed directories past it.
struct At {
    /// `None` is the root.
    fd: Option<OwnedFd>,
    names: Vec<OsString>,
    assumed: Vec<OsString>,
    /// Whether a link was followed.
    links: bool,
}

impl At {
    fn path(&self) -> PathBuf {
        self.names.iter().collect()
    }
}

/// Splits a path into steps; `.` and empty components are dropped. Returns whether it was
/// absolute.
fn split_path(path: &Path) -> Result<(bool, Vec<Step>), Stop> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.contains(&0) {
        return Err(Stop::Nul);
    }
    let steps = bytes
        .split(|&b| b == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
        .map(|part| match part {
            b".." => Step::Up,
            name => Step::Name(OsStr::from_bytes(name).to_os_string()),
        })
        .collect();
    Ok((bytes.first() == Some(&b'/'), steps))
}

/// The steps as a relative path (for `openat2` and messages).
fn joined(steps: &[Step]) -> PathBuf {
    if steps.is_empty() {
        return PathBuf::from(".");
    }
    steps
        .iter()
        .map(|s| match s {
            Step::Up => OsStr::new(".."),
            Step::Name(n) => n.as_os_str(),
        })
        .collect()
}

fn kind(mode: u32) -> FileType {
    FileType::from_raw_mode(mode)
}

/// `fstatat` without following, `None` when nothing is there.
fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<rustix::fs::Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn read_link(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<PathBuf> {
    let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
    Ok(PathBuf::from(OsString::from_vec(target.into_bytes())))
}

/// Both times of a file set to `time`.
fn timestamps(time: SystemTime) -> Timestamps {
    let time = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: d.subsec_nanos().into(),
        },
        Err(before) => {
            let d = before.duration();
            let (sec, nsec) = (d.as_secs() as i64, i64::from(d.subsec_nanos()));
            if nsec == 0 {
                Timespec {
                    tv_sec: -sec,
                    tv_nsec: 0,
                }
            } else {
                Timespec {
                    tv_sec: -sec - 1,
                    tv_nsec: 1_000_000_000 - nsec,
                }
            }
        }
    };
    Timestamps {
        last_access: time,
        last_modification: time,
    }
}

/// Sets what `metadata` gives on a file [`Root::create_file`] returned (owner first: a change
/// of owner clears setuid and setgid bits, which the mode then sets again). `shown` names the
/// file in errors.
pub fn set_file_metadata(file: &File, metadata: &Metadata, shown: &Path) -> Result<()> {
    if let Some((uid, gid)) = metadata.owner {
        rustix::fs::fchown(file, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .map_err(|e| Error::io("cannot change the owner of", shown, e.into()))?;
    }
    if let Some(mode) = metadata.mode {
        rustix::fs::fchmod(file, Mode::from_raw_mode(mode))
            .map_err(|e| Error::io("cannot set the mode of", shown, e.into()))?;
    }
    if let Some(mtime) = metadata.mtime {
        rustix::fs::futimens(file, &timestamps(mtime))
            .map_err(|e| Error::io("cannot set the time of", shown, e.into()))?;
    }
    Ok(())
}

/// Sets the extended attribute `name` of an open file.
pub fn set_file_xattr(file: &File, name: &[u8], value: &[u8], shown: &Path) -> Result<()> {
    rustix::fs::fsetxattr(
        file,
        OsStr::from_bytes(name),
        value,
        rustix::fs::XattrFlags::empty(),
    )
    .map_err(|e| Error::io("cannot set an extended attribute of", shown, e.into()))
}

/// A special file [`Root::make_special`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    Fifo,
    /// A character device (major, minor).
    Char(u32, u32),
    /// A block device (major, minor).
    Block(u32, u32),
}

/// Opens `name` in `dir` as a directory without following it.
fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens the directory `name` in `dir` (not following a link) to list and empty it, first
/// giving its owner `rwx` when it lacks them; returns it with its device and inode.
fn enter_to_remove(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<(OwnedFd, (u64, u64))> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if kind(st.st_mode) != FileType::Directory {
        return Err(Errno::NOTDIR.into());
    }
    if st.st_mode & 0o700 != 0o700 {
        // Failing (not the owner), the open or the removal says why.
        let _ = rustix::fs::chmodat(
            dir,
            name,
            Mode::from_raw_mode((st.st_mode | 0o700) & 0o7777),
            AtFlags::empty(),
        );
    }
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let opened = rustix::fs::fstat(&fd)?;
    if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino) {
        return Err(io::Error::other("it changed while it was being removed"));
    }
    Ok((fd, (st.st_dev, st.st_ino)))
}

impl Root {
    /// Opens `path` (which is trusted: links in it are followed) as the root of later writes,
    /// resolving with `openat2` where the kernel allows it.
    pub fn open(path: &Path, policy: Policy) -> Result<Root> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("cannot open directory", path, e.into()))?;
        let mut root = Root {
            fd,
            path: path.to_path_buf(),
            policy,
            resolver: Resolver::Walk,
            placed: Mutex::new(Vec::new()),
            replace_directories: false,
        };
        if root.open2(&[]).is_ok() {
            root.resolver = Resolver::Openat2;
        }
        Ok(root)
    }

    /// Resolves with `resolver` from now on: [`Resolver::Walk`] always works (tests use it to
    /// exercise the fallback); [`Resolver::Openat2`] is an error where the kernel refuses it.
    pub fn with_resolver(mut self, resolver: Resolver) -> Result<Root> {
        if resolver == Resolver::Openat2 {
            self.open2(&[])
                .map_err(|e| Error::io("cannot use openat2(2) in", &self.path, e.into()))?;
        }
        self.resolver = resolver;
        Ok(self)
    }

    /// From now on a file, link or special file written where a directory is replaces it and
    /// everything below it (for the layers of an image, where a later layer's entry replaces an
    /// earlier one's); by default that is an error.
    pub fn replacing_directories(mut self) -> Root {
        self.replace_directories = true;
        self
    }

    /// How paths are resolved.
    pub fn resolver(&self) -> Resolver {
        self.resolver
    }

    /// The directory, as it was given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the directory `path`, and its missing parents (0755 before the umask; set modes
    /// with [`Root::set_metadata`]). A directory already there is kept; anything else at the last
    /// component (a symlink included: it is not followed) is replaced.
    /// Returns the directory's [`Identity`], for [`Root::set_dir_metadata`].
    pub fn mkdir(&self, path: &Path) -> Result<Identity> {
        let (_, all) = self.steps(path)?;
        let Some((Step::Name(name), parent)) = all.split_last() else {
            let dir = self
                .dir(&all, Missing::Create)
                .map_err(|stop| self.stopped(path, stop))?;
            let st = rustix::fs::fstat(&dir).map_err(|e| self.io("cannot read", path, e.into()))?;
            return Ok(Identity(st.st_dev, st.st_ino));
        };
        let dir = self
            .dir(parent, Missing::Create)
            .map_err(|stop| self.stopped(path, stop))?;
        match stat_at(dir.as_fd(), name).map_err(|e| self.io("cannot read", path, e))? {
            Some(st) if kind(st.st_mode) == FileType::Directory => {
                return Ok(Identity(st.st_dev, st.st_ino))
            }
            Some(_) => rustix::fs::unlinkat(&dir, name, AtFlags::empty())
                .map_err(|e| self.io("cannot replace", path, e.into()))?,
            None => {}
        }
        rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755))
            .map_err(|e| self.io("cannot create directory", path, e.into()))?;
        match stat_at(dir.as_fd(), name).map_err(|e| self.io("cannot read", path, e))? {
            Some(st) if kind(st.st_mode) == FileType::Directory => {
                Ok(Identity(st.st_dev, st.st_ino))
            }
            _ => Err(self.refused(path, "vanished once made".into())),
        }
    }

    /// The physical path (from the root, through no link) of the directory `path` resolves to,
    /// links followed inside the root, and whether any link was followed on the way; `None`
    /// when `path` leads to nothing or to something that is not a directory. Always resolved by
    /// the walk (only it knows the physical path).
    pub fn resolve_dir(&self, path: &Path) -> Result<Option<(PathBuf, bool)>> {
        let (_, all) = self.steps(path)?;
        match self.walk(all, Missing::Fail) {
            Ok(at) => Ok(Some((at.path(), at.links))),
            Err(Stop::Missing(_) | Stop::Dangling(_) | Stop::NotDir(_)) => Ok(None),
            Err(stop) => Err(self.stopped(path, stop)),
        }
    }

    /// Creates the regular file `path` (making missing parents) with `mode`, replacing a file or
    /// link already there (never following it) but not a directory, and returns it open for
    /// writing. For trees being built (the file is there, partly written, while it is written);
    /// use [`Root::replace_file`] for a file that must appear whole.
    pub fn create_file(&self, path: &Path, mode: u32) -> Result<File> {
        let (dir, name) = self.parent(path, Missing::Create)?;
        self.clear(dir.as_fd(), &name, path)?;
        let fd = rustix::fs::openat(
            &dir,
            &name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| self.io("cannot create", path, e.into()))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
            .map_err(|e| self.io("cannot set the mode of", path, e.into()))?;
        Ok(File::from(fd))
    }

    /// Writes the regular file `path` whole or not at all: `write` fills a temp file (named
    /// `temp_prefix…`) in the same directory, which is fsynced and renamed over `path` (a file or
    /// link there is replaced, never followed; a directory is an error). The temp file is removed
    /// when anything fails.
    pub fn replace_file(
        &self,
        path: &Path,
        mode: u32,
        temp_prefix: &str,
        write: impl FnOnce(&mut File) -> Result<()>,
    ) -> Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let (dir, name) = self.parent(path, Missing::Create)?;
        self.refuse_directory(dir.as_fd(), &name, path)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut attempt = 0;
        let (temp, fd) = loop {
            let temp = OsString::from(format!(
                "{temp_prefix}{}-{nanos:x}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            match rustix::fs::openat(
                &dir,
                &temp,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => break (temp, fd),
                Err(Errno::EXIST) if attempt < 100 => attempt += 1,
                Err(e) => return Err(self.io("cannot create a temp file for", path, e.into())),
            }
        };
        let mut file = File::from(fd);
        let written = rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))
            .map_err(|e| self.io("cannot set the mode of", path, e.into()))
            .and_then(|()| write(&mut file))
            .and_then(|()| file.sync_all().map_err(|e| self.io("cannot sync", path, e)))
            .and_then(|()| {
                rustix::fs::renameat(&dir, &temp, &dir, &name)
                    .map_err(|e| self.io("cannot move into place", path, e.into()))
            });
        if written.is_err() {
            // The write's own error is the one worth reporting.
            let _ = rustix::fs::unlinkat(&dir, &temp, AtFlags::empty());
        }
        written
    }

    /// Makes `path` a symlink to `target` (making missing parents), replacing a file or link
    /// already there but not a directory. Under `Refuse`, a target that leads outside the root
    /// from `path`'s directory is an error.
    pub fn symlink(&self, target: &Path, path: &Path) -> Result<()> {
        self.place_symlink(target, path, format!("is a symlink to {target:?}"))
    }

    /// Makes `path` a hard link to `source` (making missing parents), replacing a file or link
    /// already there but not a directory. `source` resolves inside the root like any path, and
    /// its last component is not followed: a hard link to a symlink is that symlink placed at
    /// `path`, judged from there.
    pub fn hard_link(&self, source: &Path, path: &Path) -> Result<()> {
        let of_source = |stop: Stop| match stop {
            Stop::Io(action, p, e) => self.io(action, &p, e),
            stop => self.refused(
                path,
                format!("is a hard link to {source:?}, which {}", stop.reason()),
            ),
        };
        let (absolute, all) = split_path(source).map_err(of_source)?;
        if absolute && self.policy == Policy::Refuse {
            return Err(of_source(Stop::Absolute));
        }
        let Some((Step::Name(source_name), source_parent)) = all.split_last() else {
            return Err(self.refused(
                path,
                format!("is a hard link to {source:?}, which names no file"),
            ));
        };
        let source_dir = self.dir(source_parent, Missing::Fail).map_err(of_source)?;
        let st = stat_at(source_dir.as_fd(), source_name)
            .map_err(|e| self.io("cannot read", source, e))?
            .ok_or_else(|| {
                self.refused(
                    path,
                    format!("is a hard link to {source:?}, which does not exist"),
                )
            })?;
        match kind(st.st_mode) {
            FileType::Symlink => {
                let target = read_link(source_dir.as_fd(), source_name)
                    .map_err(|e| self.io("cannot read", source, e))?;
                let what = format!("is a hard link to {source:?}, a symlink to {target:?}");
                return self.place_symlink(&target, path, what);
            }
            FileType::Directory => {
                return Err(
                    self.refused(path, format!("is a hard link to the directory {source:?}"))
                )
            }
            _ => {}
        }
        let (dir, name) = self.parent(path, Missing::Create)?;
        if let Some(there) =
            stat_at(dir.as_fd(), &name).map_err(|e| self.io("cannot read", path, e))?
        {
            if (there.st_dev, there.st_ino) == (st.st_dev, st.st_ino) {
                return Ok(());
            }
        }
        self.clear(dir.as_fd(), &name, path)?;
        rustix::fs::linkat(&source_dir, source_name, &dir, &name, AtFlags::empty())
            .map_err(|e| self.io("cannot create hard link", path, e.into()))
    }

    /// Sets what `metadata` gives on `path` (the root itself for an empty path), without
    /// following a link at its last component.
    pub fn set_metadata(&self, path: &Path, metadata: &Metadata) -> Result<()> {
        self.set_metadata_of(path, metadata, None).map(drop)
    }

    /// Sets what `metadata` gives on the directory `path` only if it is still the very
    /// directory `identity` names (what [`Root::mkdir`] returned); returns whether it was. A
    /// directory's metadata is set once its layer is written, and by then a later entry may
    /// have put a file, a link or another directory in its place, which must not get it.
    pub fn set_dir_metadata(
        &self,
        path: &Path,
        metadata: &Metadata,
        identity: Identity,
    ) -> Result<bool> {
        self.set_metadata_of(path, metadata, Some(identity))
    }

    fn set_metadata_of(
        &self,
        path: &Path,
        metadata: &Metadata,
        identity: Option<Identity>,
    ) -> Result<bool> {
        let (_, all) = self.steps(path)?;
        if all.is_empty() {
            // The root itself, through its own descriptor: no lookup in it, which a mode
            // without search permission would refuse.
            let st =
                rustix::fs::fstat(&self.fd).map_err(|e| self.io("cannot read", path, e.into()))?;
            if let Some(Identity(dev, ino)) = identity {
                if (st.st_dev, st.st_ino) != (dev, ino) {
                    return Ok(false);
                }
            }
            let shown = self.path.join(path);
            let without_mode = Metadata {
                mode: None,
                ..metadata.clone()
            };
            set_file_metadata(
                &File::from(
                    self.fd
                        .try_clone()
                        .map_err(|e| self.io("cannot open", path, e))?,
                ),
                &without_mode,
                &shown,
            )?;
            if let Some(mode) = metadata.mode {
                rustix::fs::fchmod(&self.fd, Mode::from_raw_mode(mode))
                    .map_err(|e| self.io("cannot set the mode of", path, e.into()))?;
            }
            return Ok(true);
        }
        let (parent, name) = match all.split_last() {
            Some((Step::Name(name), parent)) => (parent, name.clone()),
            _ => (&all[..], OsString::from(".")),
        };
        let dir = match self.dir(parent, Missing::Fail) {
            Ok(dir) => dir,
            // The directory is gone from there: nothing is its own any more.
            Err(Stop::Missing(_) | Stop::Dangling(_) | Stop::NotDir(_)) if identity.is_some() => {
                return Ok(false)
            }
            Err(stop) => return Err(self.stopped(path, stop)),
        };
        let st = match stat_at(dir.as_fd(), &name).map_err(|e| self.io("cannot read", path, e))? {
            Some(st) => st,
            None if identity.is_some() => return Ok(false),
            None => return Err(self.refused(path, "does not exist".into())),
        };
        if let Some(Identity(dev, ino)) = identity {
            if kind(st.st_mode) != FileType::Directory || (st.st_dev, st.st_ino) != (dev, ino) {
                return Ok(false);
            }
        }
        if let Some((uid, gid)) = metadata.owner {
            rustix::fs::chownat(
                &dir,
                &name,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.io("cannot change the owner of", path, e.into()))?;
        }
        // The time before the mode: a mode without search permission would keep `.` (the root
        // itself) from being looked up again.
        if let Some(mtime) = metadata.mtime {
            rustix::fs::utimensat(&dir, &name, &timestamps(mtime), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| self.io("cannot set the time of", path, e.into()))?;
        }
        // A symlink has no mode of its own; chmod would change its target's.
        if let (Some(mode), false) = (metadata.mode, kind(st.st_mode) == FileType::Symlink) {
            rustix::fs::chmodat(&dir, &name, Mode::from_raw_mode(mode), AtFlags::empty())
                .map_err(|e| self.io("cannot set the mode of", path, e.into()))?;
        }
        Ok(true)
    }

    /// The mode (file type and permission bits), [`Identity`] and modification time of what is
    /// at `path` (the root itself for an empty path), its last component not followed; `None`
    /// when nothing is there.
    pub fn status(&self, path: &Path) -> Result<Option<(u32, Identity, SystemTime)>> {
        let (_, all) = self.steps(path)?;
        let st = match all.split_last() {
            Some((Step::Name(name), parent)) => {
                let dir = match self.dir(parent, Missing::Fail) {
                    Ok(dir) => dir,
                    Err(Stop::Missing(_) | Stop::Dangling(_) | Stop::NotDir(_)) => return Ok(None),
                    Err(stop) => return Err(self.stopped(path, stop)),
                };
                stat_at(dir.as_fd(), name).map_err(|e| self.io("cannot read", path, e))?
            }
            None => Some(
                rustix::fs::fstat(&self.fd).map_err(|e| self.io("cannot read", path, e.into()))?,
            ),
            _ => {
                let dir = match self.dir(&all, Missing::Fail) {
                    Ok(dir) => dir,
                    Err(Stop::Missing(_) | Stop::Dangling(_) | Stop::NotDir(_)) => return Ok(None),
                    Err(stop) => return Err(self.stopped(path, stop)),
                };
                Some(rustix::fs::fstat(&dir).map_err(|e| self.io("cannot read", path, e.into()))?)
            }
        };
        Ok(st.map(|st| {
            let mtime = if st.st_mtime >= 0 {
                UNIX_EPOCH + std::time::Duration::new(st.st_mtime as u64, st.st_mtime_nsec as u32)
            } else {
                UNIX_EPOCH - std::time::Duration::from_secs(st.st_mtime.unsigned_abs())
                    + std::time::Duration::new(0, st.st_mtime_nsec as u32)
            };
            (st.st_mode, Identity(st.st_dev, st.st_ino), mtime)
        }))
    }

    /// The entries of the directory `path` (links on the way followed inside the root), each
    /// with whether it is a directory itself; empty when there is no such directory.
    pub fn read_dir(&self, path: &Path) -> Result<Vec<(OsString, bool)>> {
        let (_, all) = self.steps(path)?;
        let dir = match self.dir(&all, Missing::Fail) {
            Ok(dir) => dir,
            Err(Stop::Missing(_) | Stop::Dangling(_) | Stop::NotDir(_)) => return Ok(Vec::new()),
            Err(stop) => return Err(self.stopped(path, stop)),
        };
        let failed = |e: Errno| self.io("cannot list", path, e.into());
        // Resolved descriptors are O_PATH, which cannot be listed.
        let listing = rustix::fs::openat(
            &dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .and_then(rustix::fs::Dir::new)
        .map_err(failed)?;
        let mut children = Vec::new();
        for entry in listing {
            let entry = entry.map_err(failed)?;
            let child = OsStr::from_bytes(entry.file_name().to_bytes());
            if child == "." || child == ".." {
                continue;
            }
            let is_dir = match entry.file_type() {
                FileType::Unknown => stat_at(dir.as_fd(), child)
                    .map_err(|e| self.io("cannot read", path, e))?
                    .is_some_and(|st| kind(st.st_mode) == FileType::Directory),
                t => t == FileType::Directory,
            };
            children.push((child.to_os_string(), is_dir));
        }
        Ok(children)
    }

    /// Makes the FIFO or device node `path` (making missing parents) with `mode`, replacing a
    /// file or link there but not a directory. Only under `Chroot` (an image's root file system;
    /// a device node needs privilege): under `Refuse` it is an error.
    pub fn make_special(&self, path: &Path, special: Special, mode: u32) -> Result<()> {
        if self.policy == Policy::Refuse {
            return Err(self.refused(path, "is a device node or FIFO".into()));
        }
        let (dir, name) = self.parent(path, Missing::Create)?;
        self.clear(dir.as_fd(), &name, path)?;
        let (file_type, dev) = match special {
            Special::Fifo => (FileType::Fifo, 0),
            Special::Char(major, minor) => {
                (FileType::CharacterDevice, rustix::fs::makedev(major, minor))
            }
            Special::Block(major, minor) => {
                (FileType::BlockDevice, rustix::fs::makedev(major, minor))
            }
        };
        rustix::fs::mknodat(&dir, &name, file_type, Mode::from_raw_mode(mode), dev)
            .map_err(|e| self.io("cannot create", path, e.into()))
    }

    /// Sets the extended attribute `name` of the directory `path` (its last component not
    /// followed).
    pub fn set_dir_xattr(&self, path: &Path, name: &[u8], value: &[u8]) -> Result<()> {
        let (_, all) = self.steps(path)?;
        let (dir, last) = match all.split_last() {
            Some((Step::Name(last), parent)) => (
                self.dir(parent, Missing::Fail)
                    .map_err(|stop| self.stopped(path, stop))?,
                last.clone(),
            ),
            _ => (
                self.dir(&all, Missing::Fail)
                    .map_err(|stop| self.stopped(path, stop))?,
                OsString::from("."),
            ),
        };
        let fd = rustix::fs::openat(
            &dir,
            &last,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.io("cannot open", path, e.into()))?;
        set_file_xattr(&File::from(fd), name, value, &self.path.join(path))
    }

    /// Removes `path` — a directory with everything in it — without following a link at its
    /// last component (the link goes, not what it points to). Returns whether anything was
    /// there; a path through something missing or not a directory has nothing to remove.
    pub fn remove(&self, path: &Path) -> Result<bool> {
        let (_, all) = self.steps(path)?;
        let Some((Step::Name(name), parent)) = all.split_last() else {
            return Err(self.refused(path, "names no file".into()));
        };
        let dir = match self.dir(parent, Missing::Fail) {
            Ok(dir) => dir,
            Err(Stop::Missing(_) | Stop::Dangling(_) | Stop::NotDir(_)) => return Ok(false),
            Err(stop) => return Err(self.stopped(path, stop)),
        };
        match stat_at(dir.as_fd(), name).map_err(|e| self.io("cannot read", path, e))? {
            None => Ok(false),
            Some(st) if kind(st.st_mode) == FileType::Directory => {
                self.remove_tree(dir.as_fd(), name, path)?;
                Ok(true)
            }
            Some(_) => {
                rustix::fs::unlinkat(&dir, name, AtFlags::empty())
                    .map_err(|e| self.io("cannot remove", path, e.into()))?;
                Ok(true)
            }
        }
    }

    /// Renames `from` to `to` as `rename(2)` does (a directory may replace only an empty
    /// directory), both resolved inside the root, neither last component followed.
    pub fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let (from_dir, from_name) = self.parent(from, Missing::Fail)?;
        let (to_dir, to_name) = self.parent(to, Missing::Create)?;
        rustix::fs::renameat(&from_dir, &from_name, &to_dir, &to_name)
            .map_err(|e| self.io("cannot move into place", to, e.into()))
    }

    /// Flushes the filesystem that holds the root (`syncfs`), so that a tree written with
    /// [`Root::create_file`] is on disk before it is renamed into place.
    pub fn sync(&self) -> Result<()> {
        rustix::fs::syncfs(&self.fd).map_err(|e| Error::io("cannot sync", &self.path, e.into()))
    }

    /// To be called once everything is written. Under `Refuse`, judges every link placed so far
    /// again, as the tree now is: an entry written after a link can change where it leads.
    pub fn finish(&self) -> Result<()> {
        let placed = self
            .placed
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_else(|poisoned| std::mem::take(&mut *poisoned.into_inner()));
        for link in placed {
            let (Some(parent), Some(name)) = (link.physical.parent(), link.physical.file_name())
            else {
                continue;
            };
            let parent_steps = parent
                .iter()
                .map(|n| Step::Name(n.to_os_string()))
                .collect();
            let at = match self.walk(parent_steps, Missing::Fail) {
                Ok(at) => at,
                // Its directory is gone, and the link with it.
                Err(Stop::Missing(_) | Stop::Dangling(_) | Stop::NotDir(_)) => continue,
                Err(stop) => return Err(self.stopped(&link.given, stop)),
            };
            let dir = self.at_fd(&at);
            let is_link = stat_at(dir, name)
                .map_err(|e| self.io("cannot read", &link.given, e))?
                .is_some_and(|st| kind(st.st_mode) == FileType::Symlink);
            if !is_link {
                continue;
            }
            let target =
                read_link(dir, name).map_err(|e| self.io("cannot read", &link.given, e))?;
            if let Err(stop) = self.judge_link(&at.path(), &target) {
                return Err(self.link_refused(
                    &link.given,
                    &link.what,
                    stop,
                    " once the entries after it are written",
                ));
            }
        }
        Ok(())
    }

    // ---- the last component ----

    fn place_symlink(&self, target: &Path, path: &Path, what: String) -> Result<()> {
        if target.as_os_str().is_empty() {
            return Err(self.refused(path, format!("{what}, which names nothing")));
        }
        if target.as_os_str().as_bytes().contains(&0) {
            return Err(self.refused(path, format!("{what}, which contains a NUL byte")));
        }
        let (_, all) = self.steps(path)?;
        let Some((Step::Name(name), parent)) = all.split_last() else {
            return Err(self.refused(path, "names no file".into()));
        };
        if self.policy == Policy::Chroot {
            let dir = self
                .dir(parent, Missing::Create)
                .map_err(|stop| self.stopped(path, stop))?;
            self.clear(dir.as_fd(), name, path)?;
            return rustix::fs::symlinkat(target, &dir, name)
                .map_err(|e| self.io("cannot create symlink", path, e.into()));
        }
        // Under Refuse the walk places the link: it knows the physical path `finish` needs.
        let at = self
            .walk(parent.to_vec(), Missing::Create)
            .map_err(|stop| self.stopped(path, stop))?;
        let physical = at.path();
        if let Err(stop) = self.judge_link(&physical, target) {
            return Err(self.link_refused(path, &what, stop, ""));
        }
        let dir = self.at_fd(&at);
        self.clear(dir, name, path)?;
        rustix::fs::symlinkat(target, dir, name)
            .map_err(|e| self.io("cannot create symlink", path, e.into()))?;
        let placed = Placed {
            physical: physical.join(name),
            given: path.to_path_buf(),
            what,
        };
        match self.placed.lock() {
            Ok(mut list) => list.push(placed),
            Err(poisoned) => poisoned.into_inner().push(placed),
        }
        Ok(())
    }

    /// Where `target` leads from the directory `physical` (a path from the root through no
    /// link), with missing parts taken as directories; an error when that is outside.
    fn judge_link(&self, physical: &Path, target: &Path) -> Result<(), Stop> {
        let (absolute, target_steps) = split_path(target)?;
        if absolute {
            return Err(Stop::Escape(None));
        }
        let mut all: Vec<Step> = physical
            .iter()
            .map(|n| Step::Name(n.to_os_string()))
            .collect();
        all.extend(target_steps);
        self.walk(all, Missing::Assume).map(|_| ())
    }

    /// Removes a file or link at `name` to make room; a directory stays, and is an error.
    fn clear(&self, dir: BorrowedFd<'_>, name: &OsStr, path: &Path) -> Result<()> {
        match stat_at(dir, name).map_err(|e| self.io("cannot read", path, e))? {
            None => Ok(()),
            Some(st) if kind(st.st_mode) == FileType::Directory && self.replace_directories => {
                self.remove_tree(dir, name, path)
            }
            Some(st) if kind(st.st_mode) == FileType::Directory => {
                Err(self.refused(path, "would replace a directory".into()))
            }
            Some(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty())
                .map_err(|e| self.io("cannot replace", path, e.into())),
        }
    }

    fn refuse_directory(&self, dir: BorrowedFd<'_>, name: &OsStr, path: &Path) -> Result<()> {
        match stat_at(dir, name).map_err(|e| self.io("cannot read", path, e))? {
            Some(st) if kind(st.st_mode) == FileType::Directory => {
                Err(self.refused(path, "would replace a directory".into()))
            }
            _ => Ok(()),
        }
    }

    /// Removes the directory `name` in `dir` and everything below it, following no link.
    /// Directories its owner cannot list, enter or empty (a read-only layer directory, when
    /// not root) are made `u+rwx` first: they are going anyway. At most three descriptors are
    /// open at a time whatever the depth: the walk goes back up through `..`, checked against
    /// its own record of each directory (device and inode), so a tree deeper than the limit on
    /// open files is removed too.
    fn remove_tree(&self, dir: BorrowedFd<'_>, name: &OsStr, path: &Path) -> Result<()> {
        let failed = |action, e: io::Error| self.io(action, path, e);
        let mut top = enter_to_remove(dir, name).map_err(|e| failed("cannot open", e))?;
        // Below `dir`: each directory's name and identity, down to the one open (`top`).
        let mut stack: Vec<(OsString, (u64, u64))> = vec![(name.to_os_string(), top.1)];
        loop {
            let mut subdir = None;
            let entries = rustix::fs::openat(
                &top.0,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .and_then(rustix::fs::Dir::new)
            .map_err(|e| failed("cannot list", e.into()))?;
            for entry in entries {
                let entry = entry.map_err(|e| failed("cannot list", e.into()))?;
                let child = OsStr::from_bytes(entry.file_name().to_bytes());
                if child == "." || child == ".." {
                    continue;
                }
                let is_dir = match entry.file_type() {
                    FileType::Unknown => stat_at(top.0.as_fd(), child)
                        .map_err(|e| failed("cannot read", e))?
                        .is_some_and(|st| kind(st.st_mode) == FileType::Directory),
                    t => t == FileType::Directory,
                };
                if is_dir {
                    subdir = Some(child.to_os_string());
                    break;
                }
                rustix::fs::unlinkat(&top.0, child, AtFlags::empty())
                    .map_err(|e| failed("cannot remove", e.into()))?;
            }
            if let Some(child) = subdir {
                let below =
                    enter_to_remove(top.0.as_fd(), &child).map_err(|e| failed("cannot open", e))?;
                stack.push((child, below.1));
                top = below;
                continue;
            }
            let Some((emptied, _)) = stack.pop() else {
                return Ok(());
            };
            let Some((_, identity)) = stack.last() else {
                return rustix::fs::unlinkat(dir, &emptied, AtFlags::REMOVEDIR)
                    .map_err(|e| failed("cannot remove", e.into()));
            };
            let parent = rustix::fs::openat(
                &top.0,
                "..",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| failed("cannot open", e.into()))?;
            let st = rustix::fs::fstat(&parent).map_err(|e| failed("cannot read", e.into()))?;
            if (st.st_dev, st.st_ino) != *identity {
                return Err(failed(
                    "cannot remove",
                    io::Error::other("a directory moved while it was being removed"),
                ));
            }
            rustix::fs::unlinkat(&parent, &emptied, AtFlags::REMOVEDIR)
                .map_err(|e| failed("cannot remove", e.into()))?;
            top = (parent, *identity);
        }
    }

    // ---- resolution ----

    /// The steps of a path to write; an absolute path is an error under `Refuse`.
    fn steps(&self, path: &Path) -> Result<(bool, Vec<Step>)> {
        let (absolute, all) = split_path(path).map_err(|stop| self.stopped(path, stop))?;
        if absolute && self.policy == Policy::Refuse {
            return Err(self.stopped(path, Stop::Absolute));
        }
        Ok((absolute, all))
    }

    /// The directory that holds `path`'s last component, and that component.
    fn parent(&self, path: &Path, missing: Missing) -> Result<(OwnedFd, OsString)> {
        let (_, all) = self.steps(path)?;
        let Some((Step::Name(name), parent)) = all.split_last() else {
            return Err(self.refused(path, "names no file".into()));
        };
        let dir = self
            .dir(parent, missing)
            .map_err(|stop| self.stopped(path, stop))?;
        Ok((dir, name.clone()))
    }

    /// Opens the directory at `steps` (following links inside the root).
    fn dir(&self, steps: &[Step], missing: Missing) -> Result<OwnedFd, Stop> {
        match self.resolver {
            Resolver::Openat2 => self.kernel_dir(steps, missing),
            Resolver::Walk => {
                let at = self.walk(steps.to_vec(), missing)?;
                match at.fd {
                    Some(fd) => Ok(fd),
                    None => self
                        .fd
                        .try_clone()
                        .map_err(|e| Stop::Io("cannot open", PathBuf::from("."), e)),
                }
            }
        }
    }

    /// `openat2` of a directory below the root, retried when the kernel asks (`EAGAIN`).
    fn open2(&self, steps: &[Step]) -> Result<OwnedFd, Errno> {
        let resolve = ResolveFlags::NO_MAGICLINKS
            | match self.policy {
                Policy::Chroot => ResolveFlags::IN_ROOT,
                Policy::Refuse => ResolveFlags::BENEATH,
            };
        let path = joined(steps);
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(
                &self.fd,
                &path,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                resolve,
            ) {
                Err(Errno::AGAIN) if tries < 16 => tries += 1,
                result => return result,
            }
        }
    }

    fn kernel_dir(&self, steps: &[Step], missing: Missing) -> Result<OwnedFd, Stop> {
        match self.open2(steps) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) if missing == Missing::Create => {}
            Err(errno) => return Err(self.explain(steps, errno)),
        }
        // Make what is missing, one level at a time, each parent opened by the kernel afresh.
        let mut parent: Option<OwnedFd> = None;
        for end in 1..=steps.len() {
            let prefix = &steps[..end];
            match self.open2(prefix) {
                Ok(fd) => {
                    parent = Some(fd);
                    continue;
                }
                Err(Errno::NOENT) => {}
                Err(errno) => return Err(self.explain(prefix, errno)),
            }
            let Step::Name(name) = &steps[end - 1] else {
                return Err(self.explain(prefix, Errno::NOENT));
            };
            let dir = parent
                .as_ref()
                .map(|fd| fd.as_fd())
                .unwrap_or(self.fd.as_fd());
            match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
                // EEXIST: a link to a missing directory (which the retry explains), or a race.
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => {
                    return Err(Stop::Io(
                        "cannot create directory",
                        joined(prefix),
                        e.into(),
                    ))
                }
            }
            match self.open2(prefix) {
                Ok(fd) => parent = Some(fd),
                Err(errno) => return Err(self.explain(prefix, errno)),
            }
        }
        match parent {
            Some(fd) => Ok(fd),
            None => self
                .fd
                .try_clone()
                .map_err(|e| Stop::Io("cannot open", PathBuf::from("."), e)),
        }
    }

    /// Says in words why the kernel refused `steps`: the walk finds the link or `..` at fault.
    fn explain(&self, steps: &[Step], errno: Errno) -> Stop {
        match self.walk(steps.to_vec(), Missing::Fail) {
            Err(stop) => stop,
            Ok(_) => Stop::Io("cannot open", joined(steps), errno.into()),
        }
    }

    fn at_fd<'a>(&'a self, at: &'a At) -> BorrowedFd<'a> {
        at.fd
            .as_ref()
            .map(|fd| fd.as_fd())
            .unwrap_or(self.fd.as_fd())
    }

    /// Reopens the directory at `names` (a physical path) from the root.
    fn reopen(&self, names: &[OsString]) -> Result<Option<OwnedFd>, Stop> {
        let mut fd: Option<OwnedFd> = None;
        for (i, name) in names.iter().enumerate() {
            let dir = fd.as_ref().map(|f| f.as_fd()).unwrap_or(self.fd.as_fd());
            let next = open_dir(dir, name)
                .map_err(|e| Stop::Io("cannot open", names[..=i].iter().collect(), e))?;
            fd = Some(next);
        }
        Ok(fd)
    }

    /// Resolves `steps` from the root in user space, one component at a time: links are read
    /// and followed by hand (at most `MAX_SYMLINKS`), `..` goes back along the walk's own path.
    fn walk(&self, steps: Vec<Step>, missing: Missing) -> Result<At, Stop> {
        let mut todo: VecDeque<(Step, Option<Rc<Link>>)> =
            steps.into_iter().map(|s| (s, None)).collect();
        let mut at = At {
            fd: None,
            names: Vec::new(),
            assumed: Vec::new(),
            links: false,
        };
        let mut followed = 0;
        let mut last_link: Option<Rc<Link>> = None;
        while let Some((step, via)) = todo.pop_front() {
            let name = match step {
                Step::Up => {
                    if at.assumed.pop().is_some() {
                        continue;
                    }
                    if at.names.pop().is_some() {
                        at.fd = self.reopen(&at.names)?;
                    } else if self.policy == Policy::Refuse {
                        return Err(Stop::Escape(last_link));
                    }
                    continue;
                }
                Step::Name(name) => name,
            };
            if !at.assumed.is_empty() {
                at.assumed.push(name);
                continue;
            }
            let here = at.path().join(&name);
            let dir = self.at_fd(&at);
            let io = |action, e: io::Error| Stop::Io(action, here.clone(), e);
            match stat_at(dir, &name).map_err(|e| io("cannot read", e))? {
                Some(st) => match kind(st.st_mode) {
                    FileType::Directory => {
                        let fd = open_dir(dir, &name).map_err(|e| io("cannot open", e))?;
                        at.fd = Some(fd);
                        at.names.push(name);
                    }
                    FileType::Symlink => {
                        followed += 1;
                        if followed > MAX_SYMLINKS {
                            return Err(Stop::Loop);
                        }
                        let target = read_link(dir, &name).map_err(|e| io("cannot read", e))?;
                        let (absolute, target_steps) = split_path(&target)?;
                        let link = Rc::new(Link { path: here, target });
                        if absolute {
                            match self.policy {
                                Policy::Chroot => {
                                    at.fd = None;
                                    at.names.clear();
                                }
                                Policy::Refuse => return Err(Stop::Escape(Some(link))),
                            }
                        }
                        for s in target_steps.into_iter().rev() {
                            todo.push_front((s, Some(link.clone())));
                        }
                        last_link = Some(link);
                        at.links = true;
                    }
                    _ if missing == Missing::Assume => at.assumed.push(name),
                    _ => return Err(Stop::NotDir(here)),
                },
                None => match (missing, via) {
                    (Missing::Assume, _) => at.assumed.push(name),
                    (Missing::Create | Missing::Fail, Some(link)) => {
                        return Err(Stop::Dangling(link))
                    }
                    (Missing::Fail, None) => return Err(Stop::Missing(here)),
                    (Missing::Create, None) => {
                        match rustix::fs::mkdirat(dir, &name, Mode::from_raw_mode(0o755)) {
                            Ok(()) | Err(Errno::EXIST) => {}
                            Err(e) => return Err(io("cannot create directory", e.into())),
                        }
                        let fd = open_dir(dir, &name).map_err(|e| io("cannot open", e))?;
                        at.fd = Some(fd);
                        at.names.push(name);
                    }
                },
            }
        }
        Ok(at)
    }

    // ---- errors ----

    fn io(&self, action: &'static str, path: &Path, e: io::Error) -> Error {
        Error::io(action, self.path.join(path), e)
    }

    fn refused(&self, path: &Path, reason: String) -> Error {
        Error::Extract {
            root: self.path.clone(),
            path: path.to_path_buf(),
            reason,
        }
    }

    fn stopped(&self, path: &Path, stop: Stop) -> Error {
        match stop {
            Stop::Io(action, p, e) => self.io(action, &p, e),
            stop => self.refused(path, stop.reason()),
        }
    }

    fn link_refused(&self, path: &Path, what: &str, stop: Stop, when: &str) -> Error {
        let how = match stop {
            Stop::Io(action, p, e) => return self.io(action, &p, e),
            Stop::Loop => format!("goes through more than {MAX_SYMLINKS} symlinks"),
            Stop::Nul => "contains a NUL byte".into(),
            Stop::Escape(Some(link)) => format!(
                "leads outside the directory (through the symlink {:?} to {:?})",
                link.path, link.target
            ),
            _ => "leads outside the directory".into(),
        };
        self.refused(path, format!("{what}, which {how}{when}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink as plant, MetadataExt, PermissionsExt};

    /// A temp dir holding `root/` (written through a `Root`) and `outside/victim`, which no write
    /// may touch.
    struct Scene {
        dir: tempfile::TempDir,
    }

    impl Scene {
        fn new() -> Scene {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir(dir.path().join("root")).unwrap();
            fs::create_dir(dir.path().join("outside")).unwrap();
            fs::write(dir.path().join("outside/victim"), "original").unwrap();
            Scene { dir }
        }

        fn root(&self) -> PathBuf {
            self.dir.path().join("root")
        }

        fn outside(&self) -> PathBuf {
            self.dir.path().join("outside")
        }

        fn open(&self, policy: Policy, resolver: Resolver) -> Root {
            Root::open(&self.root(), policy)
                .unwrap()
                .with_resolver(resolver)
                .unwrap()
        }

        /// Nothing beside `root/` and `outside/victim`, and the victim as it was.
        fn assert_outside_untouched(&self) {
            let mut names: Vec<String> = fs::read_dir(self.dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            assert_eq!(names, ["outside", "root"]);
            let inside: Vec<_> = fs::read_dir(self.outside()).unwrap().collect();
            assert_eq!(inside.len(), 1, "only the victim is outside");
            assert_eq!(
                fs::read_to_string(self.outside().join("victim")).unwrap(),
                "original"
            );
            assert_eq!(
                fs::symlink_metadata(self.outside().join("victim"))
                    .unwrap()
                    .nlink(),
                1,
                "no hard link to the victim"
            );
        }
    }

    /// The resolvers this machine has: always the walk, and openat2 where the kernel allows it.
    fn resolvers() -> Vec<Resolver> {
        let probe = tempfile::tempdir().unwrap();
        let mut all = vec![Resolver::Walk];
        if Root::open(probe.path(), Policy::Refuse).unwrap().resolver() == Resolver::Openat2 {
            all.push(Resolver::Openat2);
        } else {
            eprintln!("openat2(2) is not available here; only the walk is tested");
        }
        all
    }

    /// Runs `case` on a fresh scene for every resolver.
    fn each(policy: Policy, case: impl Fn(&Scene, &Root)) {
        for resolver in resolvers() {
            let scene = Scene::new();
            let root = scene.open(policy, resolver);
            case(&scene, &root);
            scene.assert_outside_untouched();
        }
    }

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    fn write(root: &Root, path: &str, content: &str) -> Result<()> {
        use std::io::Write;
        let mut file = root.create_file(p(path), 0o644)?;
        file.write_all(content.as_bytes()).unwrap();
        Ok(())
    }

    fn reason(result: Result<impl std::fmt::Debug>) -> String {
        match result {
            Err(Error::Extract { reason, .. }) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn open_picks_openat2_exactly_where_the_kernel_allows_it() {
        let dir = tempfile::tempdir().unwrap();
        let fd = rustix::fs::open(
            dir.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let works = rustix::fs::openat2(
            &fd,
            ".",
            OFlags::PATH | OFlags::DIRECTORY,
            Mode::empty(),
            ResolveFlags::BENEATH,
        )
        .is_ok();
        let root = Root::open(dir.path(), Policy::Refuse).unwrap();
        assert_eq!(root.resolver() == Resolver::Openat2, works);
        assert_eq!(root.with_resolver(Resolver::Openat2).is_ok(), works);
        eprintln!(
            "openat2(2) works here: {works}; resolvers tested: {:?}",
            resolvers()
        );
    }

    #[test]
    fn the_issue_chain_is_refused_when_the_link_is_made() {
        each(Policy::Refuse, |scene, root| {
            root.symlink(p(".."), p("d/up")).unwrap();
            let refused = reason(root.symlink(p("up/d/up/../../etc/passwd"), p("d/l")));
            assert!(refused.contains("leads outside the directory"), "{refused}");
            assert!(fs::symlink_metadata(scene.root().join("d/l")).is_err());
            // The same chain as a path to write through.
            let refused = reason(write(root, "d/up/d/up/../../x", "x"));
            assert!(refused.contains("leads outside the directory"), "{refused}");
            root.finish().unwrap_or_else(|e| panic!("{e}"));
        });
    }

    #[test]
    fn the_issue_chain_stays_inside_under_chroot() {
        each(Policy::Chroot, |scene, root| {
            root.symlink(p(".."), p("d/up")).unwrap();
            root.symlink(p("up/d/up/../../victim"), p("d/l")).unwrap();
            // Writing through the chain lands at the root, as in a chroot.
            write(root, "d/up/d/up/../../x", "x").unwrap();
            assert_eq!(fs::read_to_string(scene.root().join("x")).unwrap(), "x");
        });
    }

    #[test]
    fn a_hard_link_to_a_deep_symlink_is_judged_where_it_lands() {
        each(Policy::Refuse, |scene, root| {
            root.symlink(p("../../x"), p("a/b/c/s")).unwrap();
            let refused = reason(root.hard_link(p("a/b/c/s"), p("top")));
            assert!(
                refused.contains("is a hard link to \"a/b/c/s\", a symlink to \"../../x\""),
                "{refused}"
            );
            assert!(fs::symlink_metadata(scene.root().join("top")).is_err());
            // At the same depth it leads where the original does, and is a symlink, not a copy.
            root.hard_link(p("a/b/c/s"), p("a/b/d/s2")).unwrap();
            assert_eq!(
                fs::read_link(scene.root().join("a/b/d/s2")).unwrap(),
                p("../../x")
            );
            root.finish().unwrap();
        });
        each(Policy::Chroot, |scene, root| {
            root.symlink(p("../../x"), p("a/b/c/s")).unwrap();
            root.hard_link(p("a/b/c/s"), p("top")).unwrap();
            assert_eq!(
                fs::read_link(scene.root().join("top")).unwrap(),
                p("../../x")
            );
        });
    }

    #[test]
    fn absolute_link_targets_are_refused_or_rooted() {
        each(Policy::Refuse, |scene, root| {
            let victim = scene.outside().join("victim");
            let refused = reason(root.symlink(&victim, p("abs")));
            assert!(refused.contains("leads outside the directory"), "{refused}");
            reason(root.symlink(p("/"), p("slash")));
        });
        each(Policy::Chroot, |scene, root| {
            root.mkdir(p("usr/lib")).unwrap();
            root.symlink(p("/usr/lib"), p("lib")).unwrap();
            write(root, "lib/libc.so", "elf").unwrap();
            assert_eq!(
                fs::read_to_string(scene.root().join("usr/lib/libc.so")).unwrap(),
                "elf"
            );
            // An absolute target naming the real outside directory is read inside the root.
            root.symlink(&scene.outside(), p("out")).unwrap();
            let refused = reason(write(root, "out/victim", "overwritten"));
            assert!(refused.contains("missing directory"), "{refused}");
        });
    }

    #[test]
    fn a_symlink_planted_at_the_final_path_is_replaced_not_followed() {
        for policy in [Policy::Refuse, Policy::Chroot] {
            each(policy, |scene, root| {
                let victim = scene.outside().join("victim");
                for name in ["f", "r", "l", "h", "d", "m"] {
                    plant(&victim, scene.root().join(name)).unwrap();
                }
                write(root, "f", "new").unwrap();
                root.replace_file(p("r"), 0o644, ".tmp-", |file| {
                    use std::io::Write;
                    file.write_all(b"new")
                        .map_err(|e| Error::io("write", "r", e))
                })
                .unwrap();
                root.symlink(p("f"), p("l")).unwrap();
                root.hard_link(p("f"), p("h")).unwrap();
                root.mkdir(p("d")).unwrap();
                root.set_metadata(
                    p("m"),
                    &Metadata {
                        mode: Some(0o777),
                        ..Metadata::default()
                    },
                )
                .unwrap();
                assert!(root.remove(p("m")).unwrap());
                for (name, content) in [("f", "new"), ("r", "new"), ("l", "new"), ("h", "new")] {
                    assert_eq!(
                        fs::read_to_string(scene.root().join(name)).unwrap(),
                        content
                    );
                }
                assert!(fs::symlink_metadata(scene.root().join("d"))
                    .unwrap()
                    .is_dir());
                assert!(fs::symlink_metadata(scene.root().join("m")).is_err());
                let mode = fs::metadata(&victim).unwrap().permissions().mode();
                assert_ne!(mode & 0o777, 0o777, "chmod went through the link");
            });
        }
    }

    #[test]
    fn a_symlinked_directory_pointing_outside_is_never_written_through() {
        each(Policy::Refuse, |scene, root| {
            plant(scene.outside(), scene.root().join("sub")).unwrap();
            plant("../outside", scene.root().join("rel")).unwrap();
            for path in ["sub/victim", "sub/new", "rel/victim", "rel/new"] {
                let refused = reason(write(root, path, "x"));
                assert!(refused.contains("leads outside the directory"), "{refused}");
                reason(root.symlink(p("x"), p(path)));
                reason(root.hard_link(p(path), p("h")));
                reason(root.remove(p(path)));
            }
            reason(root.mkdir(p("sub/d")));
            reason(root.rename(p("sub/victim"), p("stolen")));
        });
        each(Policy::Chroot, |scene, root| {
            plant("../../outside", scene.root().join("rel")).unwrap();
            // `..` stops at the root, so `rel` names root/outside, which does not exist.
            reason(write(root, "rel/victim", "x"));
            assert!(!root.remove(p("rel/victim")).unwrap());
            root.mkdir(p("outside")).unwrap();
            write(root, "rel/victim", "inside").unwrap();
            assert_eq!(
                fs::read_to_string(scene.root().join("outside/victim")).unwrap(),
                "inside"
            );
        });
    }

    #[test]
    fn dot_dot_in_names_is_resolved_on_disk() {
        each(Policy::Refuse, |scene, root| {
            write(root, "a/../b", "b").unwrap();
            assert_eq!(fs::read_to_string(scene.root().join("b")).unwrap(), "b");
            for bad in ["../x", "a/../../x", "/x", "a/../.."] {
                reason(write(root, bad, "x"));
            }
            // `..` after a link is the link target's parent, not the name's.
            root.mkdir(p("x/y")).unwrap();
            root.symlink(p("x/y"), p("s")).unwrap();
            write(root, "s/../c", "c").unwrap();
            assert_eq!(fs::read_to_string(scene.root().join("x/c")).unwrap(), "c");
            reason(write(root, "a/..", "x"));
        });
        each(Policy::Chroot, |scene, root| {
            write(root, "../../x", "x").unwrap();
            write(root, "/abs", "y").unwrap();
            assert_eq!(fs::read_to_string(scene.root().join("x")).unwrap(), "x");
            assert_eq!(fs::read_to_string(scene.root().join("abs")).unwrap(), "y");
        });
    }

    #[test]
    fn a_link_made_harmful_by_a_later_entry_is_caught_by_finish() {
        for resolver in resolvers() {
            let scene = Scene::new();
            let root = scene.open(Policy::Refuse, resolver);
            // `x` does not exist yet: taken as a directory, d/sub/x/../../.. is the root.
            root.symlink(p("x/../../.."), p("d/sub/l")).unwrap();
            // `x -> .` is harmless on its own, but now d/sub/l is d/sub/../../.. = outside.
            root.symlink(p("."), p("d/sub/x")).unwrap();
            let refused = reason(root.finish());
            assert!(
                refused.contains("once the entries after it are written"),
                "{refused}"
            );
            scene.assert_outside_untouched();
        }
    }

    #[test]
    fn links_that_loop_are_refused() {
        for policy in [Policy::Refuse, Policy::Chroot] {
            each(policy, |_, root| {
                root.symlink(p("b"), p("a")).unwrap();
                root.symlink(p("a"), p("b")).unwrap();
                let refused = reason(write(root, "a/x", "x"));
                assert!(refused.contains("more than 40 symlinks"), "{refused}");
            });
        }
    }

    #[test]
    fn hard_link_sources_resolve_inside_the_root() {
        each(Policy::Refuse, |scene, root| {
            plant(scene.outside(), scene.root().join("s")).unwrap();
            let refused = reason(root.hard_link(p("s/victim"), p("h")));
            assert!(
                refused.starts_with("is a hard link to \"s/victim\""),
                "{refused}"
            );
            reason(root.hard_link(p("../outside/victim"), p("h")));
            reason(root.hard_link(&scene.outside().join("victim"), p("h")));
            reason(root.hard_link(p("missing"), p("h")));
        });
        each(Policy::Chroot, |scene, root| {
            plant(scene.outside(), scene.root().join("s")).unwrap();
            reason(root.hard_link(p("s/victim"), p("h")));
            reason(root.hard_link(p("../outside/victim"), p("h")));
            write(root, "f", "f").unwrap();
            root.hard_link(p("../../f"), p("h")).unwrap();
            assert_eq!(fs::metadata(scene.root().join("f")).unwrap().nlink(), 2);
        });
    }

    #[test]
    fn directories_are_not_made_through_a_link_to_nothing() {
        each(Policy::Chroot, |scene, root| {
            root.symlink(p("usr/lib"), p("lib")).unwrap();
            let refused = reason(write(root, "lib/x", "x"));
            assert!(refused.contains("missing directory"), "{refused}");
            root.mkdir(p("usr/lib")).unwrap();
            write(root, "lib/sub/x", "x").unwrap();
            assert!(scene.root().join("usr/lib/sub/x").is_file());
        });
    }

    #[test]
    fn replacing_never_removes_a_directory_but_remove_does() {
        each(Policy::Refuse, |scene, root| {
            write(root, "d/e/f", "f").unwrap();
            root.symlink(p("f"), p("d/e/l")).unwrap();
            for refused in [
                reason(write(root, "d", "x")),
                reason(root.symlink(p("e"), p("d"))),
                reason(root.hard_link(p("d/e/f"), p("d"))),
            ] {
                assert_eq!(refused, "would replace a directory");
            }
            assert!(root.remove(p("d")).unwrap());
            assert!(!root.remove(p("d")).unwrap());
            assert!(!scene.root().join("d").exists());
            // mkdir keeps a directory and replaces anything else.
            write(root, "g", "g").unwrap();
            root.mkdir(p("g")).unwrap();
            write(root, "g/h", "h").unwrap();
            root.mkdir(p("g")).unwrap();
            assert!(scene.root().join("g/h").is_file());
        });
    }

    #[test]
    fn metadata_and_rename_work_on_what_is_inside() {
        each(Policy::Refuse, |scene, root| {
            write(root, "f", "f").unwrap();
            let mtime = UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
            root.set_metadata(
                p("f"),
                &Metadata {
                    mode: Some(0o600),
                    mtime: Some(mtime),
                    owner: None,
                },
            )
            .unwrap();
            let meta = fs::metadata(scene.root().join("f")).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
            assert_eq!(meta.mtime(), 1_000_000);
            root.set_metadata(
                p(""),
                &Metadata {
                    mode: Some(0o750),
                    ..Metadata::default()
                },
            )
            .unwrap();
            assert_eq!(
                fs::metadata(scene.root()).unwrap().permissions().mode() & 0o777,
                0o750
            );
            root.rename(p("f"), p("a/g")).unwrap();
            assert_eq!(fs::read_to_string(scene.root().join("a/g")).unwrap(), "f");
            root.sync().unwrap();
        });
    }

    #[test]
    fn names_that_name_no_file_are_refused() {
        each(Policy::Refuse, |_, root| {
            for bad in ["", ".", "a/..", "a/b/.."] {
                let refused = reason(root.create_file(p(bad), 0o644));
                assert!(
                    refused == "names no file" || refused.contains("above the directory"),
                    "{bad}: {refused}"
                );
            }
            use std::os::unix::ffi::OsStrExt;
            let nul = Path::new(OsStr::from_bytes(b"a\0b"));
            assert_eq!(reason(root.create_file(nul, 0o644)), "contains a NUL byte");
            reason(root.symlink(nul, p("l")));
            reason(root.symlink(p(""), p("l")));
        });
    }

    // ---- both resolvers do the same, and nothing leaves the root ----

    /// One operation of a generated sequence.
    #[derive(Clone, Debug)]
    enum Op {
        Mkdir(String),
        File(String),
        Symlink(String, String),
        HardLink(String, String),
        Remove(String),
    }

    fn path_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        proptest::collection::vec(prop_oneof!["a", "b", "l", "..", "."], 1..5)
            .prop_map(|parts| parts.join("/"))
    }

    fn op_strategy() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let target = prop_oneof![
            path_strategy(),
            path_strategy().prop_map(|t| format!("/{t}"))
        ];
        prop_oneof![
            path_strategy().prop_map(Op::Mkdir),
            path_strategy().prop_map(Op::File),
            (target, path_strategy()).prop_map(|(t, p)| Op::Symlink(t, p)),
            (path_strategy(), path_strategy()).prop_map(|(s, p)| Op::HardLink(s, p)),
            path_strategy().prop_map(Op::Remove),
        ]
    }

    fn apply(root: &Root, op: &Op) -> bool {
        match op {
            Op::Mkdir(path) => root.mkdir(p(path)).is_ok(),
            Op::File(path) => write(root, path, path).is_ok(),
            Op::Symlink(target, path) => root.symlink(p(target), p(path)).is_ok(),
            Op::HardLink(source, path) => root.hard_link(p(source), p(path)).is_ok(),
            Op::Remove(path) => root.remove(p(path)).is_ok(),
        }
    }

    /// Every entry below `dir`: path, kind, link target or content.
    fn listing(dir: &Path) -> Vec<String> {
        let mut all: Vec<String> = walkdir::WalkDir::new(dir)
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                let t = e.file_type();
                if t.is_symlink() {
                    format!("{rel} -> {}", fs::read_link(e.path()).unwrap().display())
                } else if t.is_dir() {
                    format!("{rel}/")
                } else {
                    format!("{rel} = {}", fs::read_to_string(e.path()).unwrap())
                }
            })
            .collect();
        all.sort();
        all
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn resolvers_agree_and_nothing_leaves_the_root(
            ops in proptest::collection::vec(op_strategy(), 1..12),
            refuse in proptest::bool::ANY,
        ) {
            let policy = if refuse { Policy::Refuse } else { Policy::Chroot };
            let mut outcomes = Vec::new();
            for resolver in resolvers() {
                let scene = Scene::new();
                plant("../outside", scene.root().join("b")).unwrap();
                let root = scene.open(policy, resolver);
                let results: Vec<bool> = ops.iter().map(|op| apply(&root, op)).collect();
                let finished = root.finish().is_ok();
                scene.assert_outside_untouched();
                let tree = listing(&scene.root());
                if policy == Policy::Refuse && finished {
                    // Every link that resolves, resolves inside.
                    let inside = scene.root().canonicalize().unwrap();
                    for entry in walkdir::WalkDir::new(scene.root()) {
                        let entry = entry.unwrap();
                        if entry.path_is_symlink() && entry.path() != scene.root().join("b") {
                            if let Ok(real) = entry.path().canonicalize() {
                                proptest::prop_assert!(real.starts_with(&inside), "{:?} -> {real:?}: {tree:?}", entry.path());
                            }
                        }
                    }
                }
                outcomes.push((results, finished, tree));
            }
            if let [first, second] = &outcomes[..] {
                proptest::prop_assert_eq!(first, second);
            }
        }
    }
}
