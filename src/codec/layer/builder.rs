//! Reproducible layer tars, built from a list of entries and compressed.
//!
//! The tar depends only on the entries and the modification time given: entries are sorted by
//! path (bytewise), owners are uid/gid 0 with empty user and group names, every entry carries
//! the same mtime (the caller's: 0, or `SOURCE_DATE_EPOCH`), headers are ustar, and
//! a path or link target too long for ustar gets a PAX extended header (`path`, `linkpath`).
//! Directories are written with a trailing `/`, as `tar`, Docker and BuildKit do.
//!
//! [`encode_layer`] streams the tar through the compressor into any writer (a blob being
//! stored, say) while hashing the tar (the diff_id): one pass, bounded memory.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::compress::{CompressOptions, CompressWriter};
use crate::error::{Error, IoContext, Result};
use crate::spec::digest::{Algorithm, Digest, HashingWriter};
use crate::spec::document::media_type::Compression;

/// Longest name (and link target) a ustar header holds without a PAX record.
const USTAR_NAME_MAX: usize = 100;
/// The name of PAX extended headers (as GNU tar names its long-name entries).
const PAX_HEADER_NAME: &[u8] = b"././@PaxHeader";

/// One entry of a layer: a directory, a regular file or a symbolic link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    path: String,
    mode: u32,
    kind: EntryKind,
}

/// What an [`Entry`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Directory,
    File(Content),
    /// A symbolic link to the target, stored exactly as given.
    Symlink(String),
}

/// The content of a regular file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// Bytes held in memory.
    Bytes(Vec<u8>),
    /// A file on disk, streamed when the tar is written. Its length is taken when it is opened;
    /// a file that shrinks while it is read is an error, bytes appended meanwhile are ignored.
    Path(PathBuf),
}

impl Entry {
    /// A directory, mode 0755. `path` is inside the layer: `/etc`, `etc` and `./etc/` are the
    /// same entry.
    pub fn dir(path: impl Into<String>) -> Entry {
        Entry {
            path: path.into(),
            mode: 0o755,
            kind: EntryKind::Directory,
        }
    }

    /// A regular file with the given bytes, mode 0644.
    pub fn file(path: impl Into<String>, content: impl Into<Vec<u8>>) -> Entry {
        Entry {
            path: path.into(),
            mode: 0o644,
            kind: EntryKind::File(Content::Bytes(content.into())),
        }
    }

    /// A regular file whose bytes are read from `source` when the tar is written, mode 0644.
    pub fn file_from(path: impl Into<String>, source: impl Into<PathBuf>) -> Entry {
        Entry {
            path: path.into(),
            mode: 0o644,
            kind: EntryKind::File(Content::Path(source.into())),
        }
    }

    /// A symbolic link to `target`, mode 0777.
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Entry {
        Entry {
            path: path.into(),
            mode: 0o777,
            kind: EntryKind::Symlink(target.into()),
        }
    }

    /// The same entry with permission bits `mode` (masked to 0o7777).
    pub fn with_mode(self, mode: u32) -> Entry {
        Entry {
            mode: mode & 0o7777,
            ..self
        }
    }

    /// The path as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The permission bits.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// What the entry is.
    pub fn kind(&self) -> &EntryKind {
        &self.kind
    }
}

/// How to build a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerOptions {
    /// Compression of the stored blob.
    pub compress: CompressOptions,
    /// The modification time of every entry, in seconds since the epoch.
    pub mtime: u64,
}

impl LayerOptions {
    /// `compression` at its default level, mtime 0.
    pub fn new(compression: Compression) -> LayerOptions {
        LayerOptions {
            compress: CompressOptions::new(compression),
            mtime: 0,
        }
    }

    /// The same options with mtime `mtime`.
    pub fn with_mtime(self, mtime: u64) -> LayerOptions {
        LayerOptions { mtime, ..self }
    }
}

/// Writes the reproducible tar of `entries` to `out` and returns `out`.
///
/// Every path is checked before anything is written: an empty path, a `..` component, a NUL
/// byte or two entries with the same path are errors.
pub fn write_tar<W: Write>(entries: &[Entry], mtime: u64, out: W) -> Result<W> {
    let sorted = prepare(entries)?;
    write_sorted(&sorted, mtime, out, Path::new("the tar output"))
}

/// Writes the reproducible tar of `entries`, compressed as `options` say, to `out`; returns
/// `out` and the digest of the uncompressed tar (the layer's diff_id). One pass: the tar is
/// hashed on its way into the compressor.
pub fn encode_layer<W: Write>(
    entries: &[Entry],
    options: &LayerOptions,
    out: W,
) -> Result<(W, Digest)> {
    let sorted = prepare(entries)?;
    let compressed = CompressWriter::new(out, &options.compress)?;
    let tar = HashingWriter::new(compressed, Algorithm::Sha256);
    let tar = write_sorted(&sorted, options.mtime, tar, Path::new("the layer"))?;
    let (diff_id, _, compressed) = tar.finish();
    let out = compressed
        .finish()
        .map_err(|e| Error::io("cannot write", "the compressed layer", e))?;
    Ok((out, diff_id))
}

/// An entry with its normalized tar name.
struct Prepared<'a> {
    name: String,
    entry: &'a Entry,
}

/// Normalizes and checks every path, sorts, and refuses duplicates.
fn prepare(entries: &[Entry]) -> Result<Vec<Prepared<'_>>> {
    let mut sorted = entries
        .iter()
        .map(|entry| {
            let name = normalize(&entry.path)?;
            if let EntryKind::Symlink(target) = &entry.kind {
                if target.is_empty() || target.contains('\0') {
                    return Err(Error::InvalidInput {
                        what: format!("layer entry {:?}:", entry.path),
                        reason: "a symlink target must be non-empty and without NUL bytes".into(),
                    });
                }
            }
            Ok(Prepared { name, entry })
        })
        .collect::<Result<Vec<_>>>()?;
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = sorted.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::Conflict {
            what: format!(
                "layer entries {:?} and {:?}",
                pair[0].entry.path, pair[1].entry.path
            ),
            reason: format!("are the same path {:?}", pair[0].name),
        });
    }
    Ok(sorted)
}

/// `/a//b/./c/` → `a/b/c` (the one tar-name normaliser); refuses `..`, NUL and paths naming
/// the root.
fn normalize(path: &str) -> Result<String> {
    let bad = |reason: &str| Error::InvalidInput {
        what: format!("layer entry {path:?}:"),
        reason: reason.to_string(),
    };
    let normalized = crate::codec::tar::path::normalize(path.as_bytes());
    if normalized.nul {
        return Err(bad("a path cannot contain a NUL byte"));
    }
    if normalized.dotdot {
        return Err(bad("a path cannot contain '..'"));
    }
    match normalized.as_str() {
        Some("") | None => Err(bad("a path must name something below the root")),
        Some(clean) => Ok(clean.to_string()),
    }
}

fn write_sorted<W: Write>(entries: &[Prepared<'_>], mtime: u64, out: W, dest: &Path) -> Result<W> {
    let sink = |e: io::Error| Error::io("cannot write the layer tar to", dest, e);
    let mut builder = tar::Builder::new(out);
    for p in entries {
        let entry = p.entry;
        match &entry.kind {
            EntryKind::Directory => {
                let mut header = new_header(EntryType::Directory, entry.mode, mtime, 0);
                let name = format!("{}/", p.name);
                let pax = set_names(&mut header, &name, None);
                append(&mut builder, header, &pax, mtime, io::empty()).map_err(sink)?;
            }
            EntryKind::Symlink(target) => {
                let mut header = new_header(EntryType::Symlink, entry.mode, mtime, 0);
                let pax = set_names(&mut header, &p.name, Some(target));
                append(&mut builder, header, &pax, mtime, io::empty()).map_err(sink)?;
            }
            EntryKind::File(Content::Bytes(bytes)) => {
                let size = bytes.len() as u64;
                let mut header = new_header(EntryType::Regular, entry.mode, mtime, size);
                let pax = set_names(&mut header, &p.name, None);
                append(&mut builder, header, &pax, mtime, &bytes[..]).map_err(sink)?;
            }
            EntryKind::File(Content::Path(source)) => {
                let file = File::open(source).ctx("cannot open", source)?;
                let meta = file.metadata().ctx("cannot read", source)?;
                if !meta.is_file() {
                    return Err(Error::InvalidInput {
                        what: format!("layer entry {:?}:", entry.path),
                        reason: format!("{} is not a regular file", source.display()),
                    });
                }
                let mut header = new_header(EntryType::Regular, entry.mode, mtime, meta.len());
                let pax = set_names(&mut header, &p.name, None);
                let mut reader = SourceReader {
                    file,
                    remaining: meta.len(),
                    failure: None,
                };
                if let Err(e) = append(&mut builder, header, &pax, mtime, &mut reader) {
                    return Err(match reader.failure.take() {
                        Some(read_error) => Error::io("cannot read", source, read_error),
                        None => sink(e),
                    });
                }
            }
        }
    }
    builder.into_inner().map_err(sink)
}

/// A ustar header owned by root, with the given type, permissions, mtime and size.
fn new_header(kind: EntryType, mode: u32, mtime: u64, size: u64) -> Header {
    // A new ustar header is all zeros but for its magic: empty user and group names, device
    // numbers 0.
    let mut header = Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode & 0o7777);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_size(size);
    header
}

/// Puts `name` (and `link`) in the header; returns the PAX records needed for what does not fit.
fn set_names(header: &mut Header, name: &str, link: Option<&str>) -> Vec<u8> {
    let mut pax = Vec::new();
    if header.set_path(name).is_err() {
        // Too long for ustar's name and prefix fields: a PAX `path` record, and as much of the
        // name as fits in the header for readers that ignore PAX.
        pax_record(&mut pax, "path", name);
        if let Some(ustar) = header.as_ustar_mut() {
            ustar.prefix = [0; 155];
            ustar.name = [0; USTAR_NAME_MAX];
            let cut = truncate(name, USTAR_NAME_MAX);
            ustar.name[..cut.len()].copy_from_slice(cut.as_bytes());
        }
    }
    if let Some(target) = link {
        let stored = if target.len() <= USTAR_NAME_MAX {
            target
        } else {
            pax_record(&mut pax, "linkpath", target);
            truncate(target, USTAR_NAME_MAX)
        };
        // Fits by construction; the literal setter keeps the target's bytes as they are.
        let _ = header.set_link_name_literal(stored);
    }
    pax
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Appends one PAX record: `"<length> <key>=<value>\n"`, the length counting itself.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &str) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
}

/// Appends the PAX header (when there are records) and the entry.
fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    header: Header,
    pax: &[u8],
    mtime: u64,
    mut data: impl Read,
) -> io::Result<()> {
    let out = builder.get_mut();
    out.write_all(&start_blocks(header, pax, mtime))?;
    let written = io::copy(&mut data, out)?;
    out.write_all(&[0; 512][..crate::codec::tar::padding(written) as usize])
}

/// The blocks that start an entry: the PAX extended header holding `pax` (when there are
/// records) with its padded data, then `header`, both checksummed. The entry's data and its
/// padding follow them.
fn start_blocks(mut header: Header, pax: &[u8], mtime: u64) -> Vec<u8> {
    let mut blocks = Vec::with_capacity(1024 + pax.len());
    if !pax.is_empty() {
        let mut pax_header = new_header(EntryType::XHeader, 0o644, mtime, pax.len() as u64);
        // Written raw: `set_path` would drop the `./` components. Readers ignore this name.
        if let Some(ustar) = pax_header.as_ustar_mut() {
            ustar.name[..PAX_HEADER_NAME.len()].copy_from_slice(PAX_HEADER_NAME);
        }
        pax_header.set_cksum();
        blocks.extend_from_slice(pax_header.as_bytes());
        blocks.extend_from_slice(pax);
        blocks.resize(
            blocks.len() + crate::codec::tar::padding(pax.len() as u64) as usize,
            0,
        );
    }
    header.set_cksum();
    blocks.extend_from_slice(header.as_bytes());
    blocks
}

/// The blocks that start one entry written as the layer tar writes its entries (owned by root,
/// `mtime`, ustar with a PAX record for a name or link that does not fit): for writers of
/// other reproducible tars (layout archives). `kind` is a directory (whose `name` ends in
/// `/`), a regular file of `size` bytes, or a symlink to `link`.
pub(crate) fn entry_start(
    kind: EntryType,
    name: &str,
    link: Option<&str>,
    mode: u32,
    mtime: u64,
    size: u64,
) -> Vec<u8> {
    let mut header = new_header(kind, mode, mtime, size);
    let pax = set_names(&mut header, name, link);
    start_blocks(header, &pax, mtime)
}

/// Reads at most `remaining` bytes of a source file, remembering why a read failed so the
/// error can name the source rather than the output.
struct SourceReader {
    file: File,
    remaining: u64,
    failure: Option<io::Error>,
}

impl Read for SourceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        match self.file.read(&mut buf[..want]) {
            Ok(0) => {
                let e = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file became shorter while it was being read",
                );
                self.failure = Some(io::Error::new(e.kind(), e.to_string()));
                Err(e)
            }
            Ok(n) => {
                self.remaining -= n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failure = Some(io::Error::new(e.kind(), e.to_string()));
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode::{decompress, Limits};
    use crate::codec::tar::{Kind, Reader};

    fn sample() -> Vec<Entry> {
        vec![
            Entry::file("/hello.txt", "hello\n"),
            Entry::symlink("etc/motd", "../hello.txt"),
            Entry::dir("etc"),
            Entry::file("./etc/os-release", "ID=test\n").with_mode(0o600),
            Entry::file("bin/tool", vec![0u8; 1000]).with_mode(0o755),
            Entry::dir("bin/"),
        ]
    }

    struct Seen {
        path: String,
        kind: Kind,
        mode: i64,
        mtime: i64,
        link: Option<String>,
        content: Vec<u8>,
    }

    fn read_back(tar_bytes: &[u8]) -> Vec<Seen> {
        let mut reader = Reader::new(tar_bytes);
        let mut seen = Vec::new();
        while let Some(mut e) = reader.next_entry().unwrap() {
            let h = e.header().clone();
            assert_eq!((h.uid, h.gid), (0, 0));
            assert_eq!((&h.uname[..], &h.gname[..]), (&b""[..], &b""[..]));
            let mut content = Vec::new();
            e.read_to_end(&mut content).unwrap();
            seen.push(Seen {
                path: String::from_utf8(h.path).unwrap(),
                kind: h.kind,
                mode: h.mode,
                mtime: h.mtime,
                link: (!h.link.is_empty()).then(|| String::from_utf8(h.link).unwrap()),
                content,
            });
        }
        assert_eq!(reader.end(), Some(&crate::codec::tar::End::Marker));
        seen
    }

    #[test]
    fn sorted_owned_by_root_with_fixed_mtime() {
        let tar_bytes = write_tar(&sample(), 1_704_067_200, Vec::new()).unwrap();
        let seen = read_back(&tar_bytes);
        let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "bin/",
                "bin/tool",
                "etc/",
                "etc/motd",
                "etc/os-release",
                "hello.txt"
            ]
        );
        assert!(seen.iter().all(|s| s.mtime == 1_704_067_200));
        assert_eq!(seen[0].kind, Kind::Directory);
        assert_eq!(seen[0].mode, 0o755);
        assert_eq!(seen[1].mode, 0o755);
        assert_eq!(seen[1].content, vec![0u8; 1000]);
        assert_eq!(seen[3].kind, Kind::Symlink);
        assert_eq!(seen[3].link.as_deref(), Some("../hello.txt"));
        assert_eq!(seen[4].mode, 0o600);
        assert_eq!(seen[5].content, b"hello\n");
        assert_eq!(seen[5].mode, 0o644);
        // header blocks, data blocks, and the two zero blocks of the end
        assert_eq!(tar_bytes.len() % 512, 0);
        assert!(tar_bytes.ends_with(&[0u8; 1024]));
    }

    #[test]
    fn order_of_input_does_not_matter() {
        let mut reversed = sample();
        reversed.reverse();
        assert_eq!(
            write_tar(&sample(), 0, Vec::new()).unwrap(),
            write_tar(&reversed, 0, Vec::new()).unwrap()
        );
    }

    #[test]
    fn long_paths_and_targets_use_pax() {
        let long_dir = "d".repeat(120);
        let long_name = format!("{long_dir}/{}", "f".repeat(150));
        let long_target = format!("/{}", "t".repeat(200));
        let entries = vec![
            Entry::dir(long_dir.clone()),
            Entry::file(long_name.clone(), "x"),
            Entry::symlink("link", long_target.clone()),
            // fits the ustar prefix + name split, no PAX needed
            Entry::file(format!("{long_dir}/short"), "y"),
        ];
        let tar_bytes = write_tar(&entries, 0, Vec::new()).unwrap();
        let seen = read_back(&tar_bytes);
        let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
        let dir_name = format!("{long_dir}/");
        let short_name = format!("{long_dir}/short");
        assert_eq!(paths, [&dir_name, &long_name, &short_name, "link"]);
        assert_eq!(seen[3].link.as_deref(), Some(long_target.as_str()));
        assert_eq!(seen[1].content, b"x");
        let pax_headers = tar_bytes
            .chunks(512)
            .filter(|block| block.starts_with(b"././@PaxHeader"))
            .count();
        assert_eq!(
            pax_headers, 3,
            "the directory, the long file name and the long target"
        );
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        for value_len in [
            0, 1, 5, 6, 7, 90, 95, 96, 97, 98, 99, 100, 994, 995, 996, 1000,
        ] {
            let value = "v".repeat(value_len);
            let mut out = Vec::new();
            pax_record(&mut out, "path", &value);
            let text = String::from_utf8(out).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), text.len(), "{text}");
        }
    }

    #[test]
    fn rejects_bad_paths_and_duplicates() {
        for entries in [
            vec![Entry::file("", "x")],
            vec![Entry::dir("/")],
            vec![Entry::file("a/../b", "x")],
            vec![Entry::file("a\0b", "x")],
            vec![Entry::symlink("a", "")],
            vec![Entry::file("/a", "x"), Entry::dir("a/")],
        ] {
            assert!(write_tar(&entries, 0, Vec::new()).is_err(), "{entries:?}");
        }
    }

    #[test]
    fn files_from_disk_are_streamed() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src.bin");
        std::fs::write(&source, b"from disk").unwrap();
        let entries = vec![Entry::file_from("data.bin", &source)];
        let seen = read_back(&write_tar(&entries, 0, Vec::new()).unwrap());
        assert_eq!(seen[0].content, b"from disk");

        let missing = vec![Entry::file_from("x", dir.path().join("missing"))];
        let err = write_tar(&missing, 0, Vec::new()).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        let not_file = vec![Entry::file_from("x", dir.path())];
        assert!(write_tar(&not_file, 0, Vec::new()).is_err());
    }

    #[test]
    fn encode_layer_compresses_the_tar_and_reports_its_diff_id() {
        let tar_bytes = write_tar(&sample(), 7, Vec::new()).unwrap();
        let diff_id = Digest::sha256_of(&tar_bytes);
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let options = LayerOptions::new(compression).with_mtime(7);
            let (blob, got) = encode_layer(&sample(), &options, Vec::new()).unwrap();
            assert_eq!(got, diff_id, "{}", compression.name());
            let mut plain = Vec::new();
            decompress(&blob[..], compression, &Limits::default())
                .unwrap()
                .read_to_end(&mut plain)
                .unwrap();
            assert_eq!(plain, tar_bytes);
            // the same again gives the same blob
            assert_eq!(
                encode_layer(&sample(), &options, Vec::new()).unwrap().0,
                blob
            );
        }
    }
}
