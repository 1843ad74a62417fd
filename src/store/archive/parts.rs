//! An archive split into numbered parts for media with size limits, and the small part list
//! that says how to put them back together.
//!
//! `OUT` split at `SIZE` is written as `OUT.part001`, `OUT.part002`, … (each `SIZE` bytes but
//! the last) and `OUT.parts`, a JSON list: the whole archive's name, size and sha256, and each
//! part's name, size and sha256. Parts are written under temp names beside their final ones,
//! synced, renamed into place, and the list is written last: a crash leaves no list (and so
//! no split archive), whatever parts it left. [`check`] checks every part's presence and size
//! before reading any, then hashes each part and the whole; a reader then reads the parts as
//! one stream ([`open_parts`]), never putting them together on disk.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::error::{Error, IoContext, Result};
use crate::spec::digest::{Algorithm, Digest};
use crate::store::layout::TEMP_PREFIX;

/// The media type of a part list.
pub const PARTS_MEDIA_TYPE: &str = "application/vnd.ocikit.archive.parts.v1+json";

/// The suffix of a part list's name.
pub const PARTS_SUFFIX: &str = ".parts";

/// A part list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartList {
    pub media_type: String,
    /// The whole archive's file name (what the parts make when put together).
    pub name: String,
    /// The whole archive's size and sha256.
    pub size: u64,
    pub digest: Digest,
    pub parts: Vec<Part>,
}

/// One part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Its file name, beside the list.
    pub name: String,
    pub size: u64,
    pub digest: Digest,
}

/// Where the part list of `out` goes: `out` + `.parts`.
pub fn list_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(PARTS_SUFFIX);
    PathBuf::from(name)
}

/// An archive being split into parts (see the module documentation): write through
/// [`PartsWriter::sink`], then [`PartsWriter::finish`].
pub struct PartsWriter {
    state: Arc<Mutex<State>>,
    out: PathBuf,
}

struct State {
    dir: PathBuf,
    base: String,
    size: u64,
    current: Option<(BufWriter<File>, tempfile::TempPath, u64, sha2::Sha256)>,
    done: Vec<(tempfile::TempPath, Part)>,
    whole: sha2::Sha256,
    total: u64,
}

/// The writing end of a [`PartsWriter`].
pub struct Sink(Arc<Mutex<State>>);

impl PartsWriter {
    /// Starts splitting the archive `out` into parts of `size` bytes; `out.parts` and the
    /// parts must not exist.
    pub fn create(out: &Path, size: u64) -> Result<PartsWriter> {
        if size == 0 {
            return Err(Error::InvalidInput {
                what: "a part size of 0".into(),
                reason: "cannot hold anything".into(),
            });
        }
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = out
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        // Every name this may write, checked up front: OUT, its list, and any OUT.partNNN
        // (how many parts there will be is not known yet, so none may exist).
        let exists = |path: &Path| Error::Conflict {
            what: path.display().to_string(),
            reason: "exists; a split archive is written under new names".into(),
        };
        for path in [out.to_path_buf(), list_path(out)] {
            if std::fs::symlink_metadata(&path).is_ok() {
                return Err(exists(&path));
            }
        }
        let prefix = format!("{base}.part");
        for entry in std::fs::read_dir(&dir).ctx("cannot read directory", &dir)? {
            let name = entry.ctx("cannot read directory", &dir)?.file_name();
            let name = name.to_string_lossy();
            if name
                .strip_prefix(&prefix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(exists(&dir.join(&*name)));
            }
        }
        Ok(PartsWriter {
            state: Arc::new(Mutex::new(State {
                dir,
                base,
                size,
                current: None,
                done: Vec::new(),
                whole: sha2::Sha256::new(),
                total: 0,
            })),
            out: out.to_path_buf(),
        })
    }

    /// Where the archive's bytes go.
    pub fn sink(&self) -> Sink {
        Sink(self.state.clone())
    }

    /// Closes the last part, moves every part into place and writes the list; returns it.
    pub fn finish(self) -> Result<PartList> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.close().ctx("cannot write a part of", &self.out)?;
        let digest = Digest::from_hash(Algorithm::Sha256, &state.whole.clone().finalize());
        // Every part and the list are written under temp names, then committed with renames
        // that never replace; on a failure, what this run placed is removed again.
        let mut parts = Vec::new();
        let mut placed = Placed(Vec::new());
        for (i, (temp, part)) in std::mem::take(&mut state.done).into_iter().enumerate() {
            let target = part_path(&self.out, i + 1);
            temp.persist_noclobber(&target)
                .map_err(|e| Error::io("cannot move a part into place at", &target, e.error))?;
            placed.0.push(target);
            parts.push(part);
        }
        let list = PartList {
            media_type: PARTS_MEDIA_TYPE.into(),
            name: state.base.clone(),
            size: state.total,
            digest,
            parts,
        };
        let bytes = serde_json::to_vec_pretty(&list).map_err(|e| Error::Serialize {
            what: "the part list",
            source: e,
        })?;
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(&state.dir)
            .ctx("cannot create a temp file in", &state.dir)?;
        temp.write_all(&bytes)
            .and_then(|_| temp.write_all(b"\n"))
            .and_then(|_| temp.as_file().sync_all())
            .ctx("cannot write", temp.path())?;
        let target = list_path(&self.out);
        temp.persist_noclobber(&target)
            .map_err(|e| Error::io("cannot move the part list into place at", &target, e.error))?;
        placed.0.clear();
        File::open(&state.dir)
            .and_then(|d| d.sync_all())
            .ctx("cannot sync directory", &state.dir)?;
        Ok(list)
    }
}

/// Parts moved into place by this run, removed again when dropped before the list is.
struct Placed(Vec<PathBuf>);

impl Drop for Placed {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl State {
    fn close(&mut self) -> io::Result<()> {
        if let Some((mut out, temp, size, hasher)) = self.current.take() {
            out.flush()?;
            out.get_ref().sync_all()?;
            let n = self.done.len() + 1;
            let name = format!("{}.part{n:03}", self.base);
            self.done.push((
                temp,
                Part {
                    name,
                    size,
                    digest: Digest::from_hash(Algorithm::Sha256, &hasher.finalize()),
                },
            ));
        }
        Ok(())
    }

    fn open(&mut self) -> io::Result<()> {
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(&self.dir)?;
        let (file, path) = temp.into_parts();
        self.current = Some((
            BufWriter::with_capacity(256 * 1024, file),
            path,
            0,
            sha2::Sha256::new(),
        ));
        Ok(())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if state.current.as_ref().is_some_and(|c| c.2 == state.size) {
            state.close()?;
        }
        if state.current.is_none() {
            state.open()?;
        }
        let limit = state.size;
        let Some((out, _, written, hasher)) = state.current.as_mut() else {
            return Err(io::Error::other("no part is open"));
        };
        let n = buf.len().min((limit - *written) as usize);
        out.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
        *written += n as u64;
        state.whole.update(&buf[..n]);
        state.total += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match state.current.as_mut() {
            Some((out, ..)) => out.flush(),
            None => Ok(()),
        }
    }
}

fn part_path(out: &Path, n: usize) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(format!(".part{n:03}"));
    PathBuf::from(name)
}

/// Whether `path` is a part list (a file whose name ends in `.parts`).
pub fn is_part_list(path: &Path) -> bool {
    path.to_string_lossy().ends_with(PARTS_SUFFIX) && path.is_file()
}

/// Reads the part list at `list` and checks the parts: every part there with its size (before
/// any is read), then each part's sha256 and the whole's, reading every part once. Returns the
/// list and the parts' paths with their listed sizes, in order, to be read as one stream
/// ([`open_parts`]).
pub fn check(list: &Path) -> Result<(PartList, Vec<(PathBuf, u64)>)> {
    let what = list.display().to_string();
    // Every file read from the list is opened without following a symlink, must be a regular
    // file, and is read at most to its listed size (a FIFO or /dev/zero never ends).
    let bytes = crate::store::layout::read_small_file(list, MAX_LIST_SIZE)?;
    let parsed: PartList = crate::spec::document::parse_json(&bytes, &what)?;
    if parsed.media_type != PARTS_MEDIA_TYPE {
        return Err(Error::InvalidInput {
            what,
            reason: format!("is not a part list (its mediaType is not {PARTS_MEDIA_TYPE})"),
        });
    }
    let dir = match list.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let bad = |reason: String| Error::InvalidInput {
        what: what.clone(),
        reason,
    };
    if parsed.parts.is_empty() {
        return Err(bad("lists no parts".into()));
    }
    let mut paths = Vec::new();
    for part in &parsed.parts {
        if part.name.contains('/') || part.name.starts_with('.') {
            return Err(bad(format!(
                "names the part {:?}, which is not a file beside it",
                part.name
            )));
        }
        let path = dir.join(&part.name);
        let len = match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => meta.len(),
            Ok(_) => {
                return Err(bad(format!(
                    "lists the part {}, which is not a regular file",
                    part.name
                )))
            }
            Err(_) => {
                return Err(bad(format!(
                    "lists the part {}, which is missing",
                    part.name
                )))
            }
        };
        if len != part.size {
            return Err(bad(format!(
                "lists the part {} with {} bytes, and it has {len}",
                part.name, part.size
            )));
        }
        paths.push((path, part.size));
    }
    let total: u64 = parsed.parts.iter().map(|p| p.size).sum();
    if total != parsed.size {
        return Err(bad(format!(
            "says the whole is {} bytes, and its parts add up to {total}",
            parsed.size
        )));
    }
    let mut whole = sha2::Sha256::new();
    let mut buffer = vec![0; 1024 * 1024];
    for (part, (path, _)) in parsed.parts.iter().zip(&paths) {
        let mut file = open_part(path, part.size)?;
        let mut hasher = sha2::Sha256::new();
        let mut len = 0u64;
        loop {
            let n = file.read(&mut buffer).ctx("cannot read", path)?;
            if n == 0 {
                break;
            }
            len += n as u64;
            hasher.update(&buffer[..n]);
            whole.update(&buffer[..n]);
        }
        if len != part.size {
            return Err(bad(format!(
                "lists the part {} with {} bytes, and it has {}",
                part.name,
                part.size,
                if len > part.size { "more" } else { "fewer" }
            )));
        }
        let digest = Digest::from_hash(Algorithm::Sha256, &hasher.finalize());
        if digest != part.digest {
            return Err(bad(format!(
                "lists the part {} as {}, and it hashes to {digest}",
                part.name, part.digest
            )));
        }
    }
    let digest = Digest::from_hash(Algorithm::Sha256, &whole.finalize());
    if digest != parsed.digest {
        return Err(bad(format!(
            "says the whole is {}, and its parts make {digest}",
            parsed.digest
        )));
    }
    Ok((parsed, paths))
}

/// The largest part list read.
const MAX_LIST_SIZE: u64 = 16 * 1024 * 1024;

/// A part, opened as a regular file without following a symlink, read at most to one byte past
/// its listed `size` (so that more is seen as more, and nothing reads without end).
fn open_part(path: &Path, size: u64) -> Result<io::Take<File>> {
    Ok(crate::store::layout::open_regular_file(path)?.take(size.saturating_add(1)))
}

/// The parts at `paths` with their listed sizes, read one after the other as one stream (the
/// whole archive), each opened when the one before it ends, as a regular file and to its
/// listed size: a part that is now longer or shorter is an error.
pub fn open_parts(paths: Vec<(PathBuf, u64)>) -> impl Read + Send {
    Parts {
        paths: paths.into_iter(),
        current: None,
    }
}

struct Parts {
    paths: std::vec::IntoIter<(PathBuf, u64)>,
    /// The part being read, its listed size and the bytes read from it.
    current: Option<(io::Take<File>, u64, u64)>,
}

impl Read for Parts {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((file, size, read)) = self.current.as_mut() {
                let n = file.read(buf)?;
                *read += n as u64;
                if *read > *size {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a part is longer than its part list says",
                    ));
                }
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                if read != size {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "a part is shorter than its part list says",
                    ));
                }
                self.current = None;
            }
            match self.paths.next() {
                Some((path, size)) => {
                    let file = open_part(&path, size).map_err(io::Error::other)?;
                    self.current = Some((file, size, 0));
                }
                None => return Ok(0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(paths: Vec<(PathBuf, u64)>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        open_parts(paths).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn parts_are_read_to_their_listed_sizes_as_regular_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, b"12345").unwrap();
        std::fs::write(&b, b"678").unwrap();
        assert_eq!(
            read_all(vec![(a.clone(), 5), (b.clone(), 3)]).unwrap(),
            b"12345678"
        );
        // Grown or shrunk since the list was checked.
        let longer = read_all(vec![(a.clone(), 4), (b.clone(), 3)]).unwrap_err();
        assert!(longer.to_string().contains("longer"), "{longer}");
        let shorter = read_all(vec![(a.clone(), 6), (b.clone(), 3)]).unwrap_err();
        assert!(shorter.to_string().contains("shorter"), "{shorter}");
        // A symlink (to a regular file, even) or a device is refused, not followed.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        assert!(read_all(vec![(link, 5)]).is_err());
        assert!(read_all(vec![(PathBuf::from("/dev/zero"), 0)]).is_err());
    }

    #[test]
    fn a_part_name_taken_meanwhile_fails_the_split_and_removes_what_it_placed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("s.tar");
        let writer = PartsWriter::create(&out, 4).unwrap();
        writer.sink().write_all(b"0123456789").unwrap();
        // Someone else's file at the third part's name, made while the parts are written.
        std::fs::write(dir.path().join("s.tar.part003"), b"theirs").unwrap();
        assert!(writer.finish().is_err());
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["s.tar.part003"]);
        assert_eq!(
            std::fs::read(dir.path().join("s.tar.part003")).unwrap(),
            b"theirs"
        );
        // And up front, any OUT.partNNN is refused before anything is written.
        assert!(PartsWriter::create(&out, 4).is_err());
    }
}
