//! `bundle verify`: is a bundle whole, unchanged and what its description says?
//!
//! In this order, so that the cheap checks come first and each file is read once:
//! 1. `SHA256SUMS` is read (the bundle's identity is its sha256) and, when an allowed signers
//!    file is given, its signature checked; a signature present is otherwise reported as
//!    present, not as verified.
//! 2. The files: every listed file must be there, and every file there must be listed
//!    (`SHA256SUMS.sig` aside).
//! 3. The graph: the one walk from every `index.json` entry, referrers included, reading (and
//!    so verifying) every manifest and index. Each blob it reaches must be in the bundle, or
//!    be one the description says an incremental bundle left out.
//! 4. Sizes before hashes: a blob file whose length is not what its descriptors say is
//!    reported without being read.
//! 5. Hashes: every listed file hashed once, in parallel, largest first.
//! 6. The description: its `bundleId`, and each image present in `index.json` at its pinned
//!    digest, with every referrer it lists.
//!
//! Omitted blobs of an incremental bundle are looked for, by digest and hash, in a base
//! layout when one is given; an incremental bundle checked alone is never complete.

use std::collections::{BTreeMap, HashMap, HashSet};

use std::io::Read;

use rayon::prelude::*;
use serde::Serialize;

use crate::codec::decode::Limits;
use crate::error::{Error, Result};
use crate::graph::closure::closure;
use crate::graph::referrers::{Discovery, Scope};
use crate::ops::bundle::description::{Description, DESCRIPTION, MAX_DESCRIPTION_SIZE};
use crate::ops::bundle::sign::{self, Signer, SIGNATURE};
use crate::ops::bundle::sums::{Sums, MAX_SUMS_SIZE, SUMS};
use crate::ops::bundle::{blob_name_mismatch, hash_of, sha256_of, Bundle, Hashed};
use crate::progress::Progress;
use crate::spec::digest::{Algorithm, Digest};
use crate::store::layout::{blob_file, blob_file_digest, FileKind, LayoutRead};

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    /// Something is missing that another place may hold (an incremental bundle's base).
    Incomplete,
    /// Something is wrong: changed, missing, extra, or not what the description says.
    Integrity,
}

/// One problem found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub severity: Severity,
    /// The file concerned, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub message: String,
}

/// What became of `SHA256SUMS.sig`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum Signature {
    /// There is none.
    Absent,
    /// There is one, not checked (no allowed signers given).
    Present,
    /// Checked against the allowed signers: this signer signed `SHA256SUMS`.
    Verified(Signer),
    /// Checked, and not accepted (a problem says why).
    Rejected,
}

/// Blobs an incremental bundle expects from its base that were not found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Missing {
    pub blobs: usize,
    pub bytes: u64,
    pub base: Digest,
}

/// An incremental bundle's base, as its description records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Incremental {
    pub base: Digest,
    /// How many blobs it left out, expecting them from the base.
    pub omitted: usize,
}

/// What [`verify`] found.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Report {
    /// The bundle's identity (the sha256 of `SHA256SUMS`), once it was read.
    pub bundle: Option<Digest>,
    /// Files listed and checked.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    pub images: usize,
    pub referrers: usize,
    /// Referrers that are signatures (cosign, notation, …): present, not verified.
    pub signature_referrers: usize,
    pub signature: Signature,
    /// For an incremental bundle: what its base must supply and was not found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<Missing>,
    /// Blobs taken from the base layout (verified there).
    pub from_base: usize,
    /// For an incremental bundle: its base's identity, and how many blobs it left out (`0`:
    /// it verifies complete on its own, and the output says so).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental: Option<Incremental>,
    pub problems: Vec<Problem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Description>,
}

impl Report {
    /// The worst problem's severity, `None` when the bundle is valid and complete.
    pub fn worst(&self) -> Option<Severity> {
        self.problems.iter().map(|p| p.severity).max()
    }

    fn problem(&mut self, severity: Severity, path: Option<&str>, message: String) {
        self.problems.push(Problem {
            severity,
            path: path.map(str::to_string),
            message,
        });
    }
}

/// How to verify.
#[derive(Default)]
#[non_exhaustive]
pub struct Options<'a> {
    /// The allowed signers file's text: the signature must verify against it.
    pub allowed_signers: Option<String>,
    /// Where an incremental bundle's omitted blobs are looked for.
    pub base: Option<&'a dyn LayoutRead>,
    /// The time now (seconds since the epoch), for the allowed signers' `valid-after` and
    /// `valid-before`.
    pub now: u64,
}

impl<'a> Options<'a> {
    /// With an allowed signers file's text.
    pub fn with_allowed_signers(self, allowed_signers: Option<String>) -> Options<'a> {
        Options {
            allowed_signers,
            ..self
        }
    }

    /// With a base layout for omitted blobs.
    pub fn with_base(self, base: Option<&'a dyn LayoutRead>) -> Options<'a> {
        Options { base, ..self }
    }

    /// At the time `now` (seconds since the epoch).
    pub fn at(self, now: u64) -> Options<'a> {
        Options { now, ..self }
    }
}

/// What an earlier bundle holds, for an incremental one: its identity and its blobs (those it
/// carries, and those it expects from its own base), read from its `SHA256SUMS` and
/// description alone.
#[derive(Clone, Debug)]
pub struct BaseContent {
    pub bundle: Digest,
    blobs: HashSet<Digest>,
}

impl BaseContent {
    /// Reads a base from its `SHA256SUMS` and description bytes.
    pub fn from_files(sums: &[u8], description: Option<&[u8]>, what: &str) -> Result<BaseContent> {
        let parsed = Sums::parse(sums, &format!("{what}/{SUMS}"))?;
        let mut blobs = HashSet::new();
        for (path, _) in parsed.entries() {
            if let Some(Ok(digest)) = blob_file_digest(path) {
                blobs.insert(digest);
            }
        }
        if let Some(bytes) = description {
            let description = Description::parse(bytes, &format!("{what}/{DESCRIPTION}"))?;
            if let Some(base) = description.base {
                blobs.extend(base.omitted.into_iter().map(|o| o.digest));
            }
        }
        Ok(BaseContent {
            bundle: Digest::sha256_of(sums),
            blobs,
        })
    }

    /// Reads a base bundle at `path`: a bundle directory or archive, or a directory holding
    /// just its `SHA256SUMS` and `ocikit-bundle.json`.
    pub fn open(path: &std::path::Path, limits: &Limits) -> Result<BaseContent> {
        let what = path.display().to_string();
        if path.is_dir() {
            let read = |name: &str| -> Result<Option<Vec<u8>>> {
                // A regular file, not through a symlink, within its size limit.
                let full = path.join(name);
                let limit = if name == SUMS {
                    MAX_SUMS_SIZE
                } else {
                    MAX_DESCRIPTION_SIZE
                };
                match crate::store::layout::read_small_file(&full, limit) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(Error::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            };
            let sums = read(SUMS)?.ok_or_else(|| not_a_bundle(&what))?;
            let description = read(DESCRIPTION)?;
            return BaseContent::from_files(&sums, description.as_deref(), &what);
        }
        let bundle = Bundle::open(path, limits, &crate::progress::NoProgress)?;
        let layout = bundle.layout();
        let sums = layout
            .root_file(SUMS, MAX_SUMS_SIZE)?
            .ok_or_else(|| not_a_bundle(&what))?;
        let description = layout.root_file(DESCRIPTION, MAX_DESCRIPTION_SIZE)?;
        BaseContent::from_files(&sums, description.as_deref(), &what)
    }

    /// Whether the base holds blob `digest`.
    pub fn has(&self, digest: &Digest) -> bool {
        self.blobs.contains(digest)
    }
}

/// The one rule for how `verify` ends when it stops with an error instead of a report:
/// `Some(Severity::Integrity)` when the error is damage found in what the bundle holds (a
/// truncated or ambiguous archive, a missing `oci-layout`, a file that is a symlink, FIFO or
/// device, a corrupt document, a part list that does not hold); `None` when it could not run:
/// no bundle at all, an I/O failure of the system, a limit, a format this ocikit cannot read.
/// Whether a file that fails to open as an archive is a damaged bundle or no bundle at all is
/// decided beside it, by [`unless_a_bundle`].
pub fn error_severity(error: &Error) -> Option<Severity> {
    use crate::error::ErrorKind;
    match error {
        Error::Stopped { source, .. } | Error::Partial { source, .. } => error_severity(source),
        // What the bundle holds is not a regular file (read refused), or its bytes are not
        // what they say (a stream cut short, corrupt data).
        Error::Io { source, .. } => matches!(
            source.kind(),
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
        )
        .then_some(Severity::Integrity),
        _ => matches!(
            error.kind(),
            ErrorKind::Corrupt | ErrorKind::Conflict | ErrorKind::NotFound
        )
        .then_some(Severity::Integrity),
    }
}

/// The names `bundle create` writes first in an archive.
const FIRST_ENTRIES: [&str; 3] = ["oci-layout", DESCRIPTION, SUMS];

/// For a file given as a bundle archive that could not be opened (`error`): `error` itself
/// when the file is recognisably a bundle — its first entry that is not a directory is
/// `oci-layout`, `ocikit-bundle.json` or `SHA256SUMS`, as `bundle create` writes them, or it
/// is a gzip or zstd stream that breaks off before its first entry (a zstd block is decoded
/// whole, so a small bundle cut short yields no entry at all) — so that [`error_severity`]
/// counts its damage (cut short, corrupt) as an integrity failure;
/// otherwise (random bytes, an empty file, a document, a tar of other files) "is not a bundle",
/// which [`error_severity`] counts as could not run. An error that is no damage is kept.
pub fn unless_a_bundle(path: &std::path::Path, limits: &Limits, error: Error) -> Error {
    if error_severity(&error).is_none() || starts_like_a_bundle(path, limits) {
        return error;
    }
    Error::InvalidInput {
        what: path.display().to_string(),
        reason: format!("is not a bundle ({error})"),
    }
}

/// Whether the first entry of the (plain or compressed) tar at `path` that is not a directory
/// is one of [`FIRST_ENTRIES`], at the top or in one directory; or whether its compressed
/// stream breaks off before that entry (no telling: taken as damage).
fn starts_like_a_bundle(path: &std::path::Path, limits: &Limits) -> bool {
    use crate::codec::tar::{path::normalize, Kind, Reader};
    use std::io::{BufRead, BufReader};
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut input = BufReader::new(file);
    let compression = match input.fill_buf() {
        Ok(head) => crate::codec::sniff::sniff(head).compression(),
        Err(_) => return false,
    };
    let compressed = compression.is_some();
    let compression = compression.unwrap_or(crate::spec::document::media_type::Compression::None);
    let Ok(decoder) = crate::codec::decode::Decoder::new(input, compression, limits) else {
        return false;
    };
    let mut reader = Reader::new(BufReader::new(decoder));
    // Directory entries (`./`, a root directory), then the first file.
    for _ in 0..4 {
        let entry = match reader.next_entry() {
            Ok(Some(entry)) => entry,
            Err(crate::codec::tar::TarError::Io(_)) => return compressed,
            _ => return false,
        };
        let header = entry.header();
        if header.kind == Kind::Directory {
            continue;
        }
        let name = normalize(&header.path).clean;
        let parts: Vec<&[u8]> = name.split(|&b| b == b'/').collect();
        return parts.len() <= 2
            && FIRST_ENTRIES
                .iter()
                .any(|first| parts.last() == Some(&first.as_bytes()));
    }
    false
}

fn not_a_bundle(what: &str) -> Error {
    Error::InvalidInput {
        what: what.to_string(),
        reason: format!("is not a bundle: it has no {SUMS}"),
    }
}

/// Verifies `bundle` (see the module documentation). `Err` when it cannot be checked at all
/// (not a layout, no `SHA256SUMS`); everything else is a [`Problem`] in the report.
pub fn verify(bundle: &Bundle, options: &Options<'_>, progress: &dyn Progress) -> Result<Report> {
    let layout = bundle.layout();
    let name = layout.name();
    let sums_bytes = layout.root_file(SUMS, MAX_SUMS_SIZE)?;
    let mut report = Report {
        bundle: sums_bytes.as_deref().map(Digest::sha256_of),
        files: 0,
        bytes: 0,
        images: 0,
        referrers: 0,
        signature_referrers: 0,
        signature: Signature::Absent,
        incomplete: None,
        from_base: 0,
        incremental: None,
        problems: Vec::new(),
        description: None,
    };
    // A link entry of an archive (a symlink or hard link, wherever it leads): `bundle create`
    // writes none, and a directory bundle's symlink is no regular file either. It is never
    // read, and so never hashed, as the file it leads to.
    let links = bundle.links();
    for (name, _, link) in &links {
        report.problem(
            Severity::Integrity,
            Some(name),
            format!("the archive entry {name} is {link}: a bundle holds no links"),
        );
    }
    let links: HashSet<String> = links.into_iter().filter_map(|(_, path, _)| path).collect();
    let Some(sums_bytes) = sums_bytes else {
        // A description and no SHA256SUMS: a bundle whose list was removed. Neither: no
        // bundle at all.
        if !layout.files()?.iter().any(|f| f.path == DESCRIPTION) {
            return Err(not_a_bundle(&name));
        }
        report.problem(
            Severity::Integrity,
            Some(SUMS),
            format!("the bundle has {DESCRIPTION} and no {SUMS}"),
        );
        return Ok(report);
    };
    let sums = match Sums::parse(&sums_bytes, SUMS) {
        Ok(sums) => sums,
        Err(e) => {
            report.problem(Severity::Integrity, Some(SUMS), e.to_string());
            return Ok(report);
        }
    };
    check_signature(layout, &sums_bytes, options, &mut report)?;

    // 2. Files listed and present. Every file is known by one name, its path from the
    // layout's root; an archive entry outside that root is no file of the bundle, and an
    // error, as is a directory that holds no listed file.
    let all = layout.files()?;
    let directories: Vec<String> = all
        .iter()
        .filter(|f| f.kind == FileKind::Directory)
        .map(|f| f.path.clone())
        .collect();
    let files: BTreeMap<String, (FileKind, u64)> = all
        .into_iter()
        .filter(|f| f.kind != FileKind::Directory)
        .map(|f| {
            let kind = if links.contains(&f.path) {
                FileKind::Symlink
            } else {
                f.kind
            };
            (f.path, (kind, f.len))
        })
        .collect();
    for entry in layout.outside_root() {
        report.problem(
            Severity::Integrity,
            Some(&entry),
            format!(
                "the archive entry {entry} is outside the bundle's root and not listed in {SUMS}"
            ),
        );
    }
    for dir in &directories {
        let prefix = format!("{dir}/");
        if !sums.entries().any(|(path, _)| path.starts_with(&prefix)) {
            report.problem(
                Severity::Integrity,
                Some(dir),
                format!("the directory {dir} holds no file listed in {SUMS}"),
            );
        }
    }
    for (path, _) in sums.entries() {
        match files.get(path) {
            None => report.problem(
                Severity::Integrity,
                Some(path),
                format!("{path} is listed in {SUMS} and missing"),
            ),
            Some((FileKind::Regular, _)) => {}
            // Reported above, as a link.
            Some(_) if links.contains(path) => {}
            Some(_) => report.problem(
                Severity::Integrity,
                Some(path),
                format!("{path} is not a regular file"),
            ),
        }
    }
    for path in files.keys() {
        if sums.get(path).is_none() && path != SUMS && path != SIGNATURE {
            report.problem(
                Severity::Integrity,
                Some(path),
                format!("{path} is not listed in {SUMS}"),
            );
        }
    }

    // The description (read again after hashing, through its listed hash).
    let description = match layout.root_file(DESCRIPTION, MAX_DESCRIPTION_SIZE) {
        // Damage (a symlink, FIFO or device there): a problem, and the rest still checked.
        Err(e) if error_severity(&e).is_some() => {
            report.problem(Severity::Integrity, Some(DESCRIPTION), e.to_string());
            None
        }
        Err(e) => return Err(e),
        Ok(Some(bytes)) => match Description::parse(&bytes, DESCRIPTION) {
            Ok(d) => Some(d),
            // Written by a newer ocikit: this one cannot check it (not a broken bundle).
            Err(e @ Error::Unsupported { .. }) => return Err(e),
            Err(e) => {
                report.problem(Severity::Integrity, Some(DESCRIPTION), e.to_string());
                None
            }
        },
        Ok(None) => {
            report.problem(
                Severity::Integrity,
                Some(DESCRIPTION),
                format!("the bundle has no {DESCRIPTION}"),
            );
            None
        }
    };

    // 3. The graph.
    let mut expected: HashMap<Digest, u64> = HashMap::new();
    let mut reachable: HashSet<Digest> = HashSet::new();
    let omitted: HashMap<Digest, u64> = description
        .as_ref()
        .and_then(|d| d.base.as_ref())
        .map(|b| {
            b.omitted
                .iter()
                .map(|o| (o.digest.clone(), o.size))
                .collect()
        })
        .unwrap_or_default();
    // Without index.json there is no graph to walk: one problem says so, not three.
    let has_index = files.contains_key("index.json");
    if !has_index && sums.get("index.json").is_none() {
        report.problem(
            Severity::Integrity,
            Some("index.json"),
            "the bundle has no index.json".into(),
        );
    }
    let walked = match (walk(layout), bundle) {
        (Err(_), _) if !has_index => Ok(Walked::default()),
        // A document the stream let pass (more small files than it keeps in memory): the
        // archive is read again, in place, for the walk.
        (Err(_), Bundle::Streamed(_, _, Some(reopen))) => walk(&reopen.open()?),
        (walked, _) => walked,
    };
    match walked {
        Ok(found) => {
            report.referrers = found.referrers;
            report.signature_referrers = found.signatures;
            for (digest, size) in found.blobs {
                reachable.insert(digest.clone());
                expected.insert(digest, size);
            }
        }
        Err(e) => report.problem(
            Severity::Integrity,
            None,
            format!("the images cannot be walked: {e}"),
        ),
    }
    let mut from_base: Vec<(Digest, u64)> = Vec::new();
    for (digest, size) in &expected {
        let path = blob_file(digest);
        if files.contains_key(&path) {
            continue;
        }
        if omitted.contains_key(digest) {
            from_base.push((digest.clone(), *size));
        } else {
            report.problem(
                Severity::Integrity,
                Some(&path),
                format!("blob {digest} is referenced and not in the bundle"),
            );
        }
    }
    check_base(
        &from_base,
        description.as_ref(),
        options,
        &mut report,
        progress,
    );

    // 4. Sizes, 5. hashes.
    let mut todo: Vec<(&str, &str, u64)> = Vec::new();
    for (path, hex) in sums.entries() {
        let Some((FileKind::Regular, len)) = files.get(path) else {
            continue;
        };
        if let Some(Ok(digest)) = blob_file_digest(path) {
            if let Some(size) = expected.get(&digest) {
                if size != len {
                    report.problem(
                        Severity::Integrity,
                        Some(path),
                        format!("{path} is {len} bytes, and its descriptors say {size}"),
                    );
                    continue;
                }
            }
            if digest.known_algorithm() == Some(Algorithm::Sha256) && digest.encoded() != hex {
                report.problem(
                    Severity::Integrity,
                    Some(path),
                    format!("{SUMS} lists {path} with the hash {hex}, not its name"),
                );
                continue;
            }
        }
        todo.push((path, hex, *len));
    }
    todo.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
    progress.total(todo.iter().map(|t| t.2).sum());
    let results: Vec<Option<Problem>> = todo
        .par_iter()
        .map(
            |(path, hex, len)| match hash_file(bundle, path, *len, progress) {
                Ok(Hashed { len: read, .. }) if read != *len => Some(Problem {
                    severity: Severity::Integrity,
                    path: Some(path.to_string()),
                    message: format!(
                        "{path} has changed: it was {len} bytes and {} read",
                        if read > *len {
                            "more were"
                        } else {
                            "fewer were"
                        }
                    ),
                }),
                // Every blob's bytes against its name too, whatever its algorithm.
                Ok(hashed) if blob_name_mismatch(path, &hashed).is_some() => Some(Problem {
                    severity: Severity::Integrity,
                    path: Some(path.to_string()),
                    message: format!(
                        "{path} has changed: it hashes to {}, not the digest its name gives",
                        blob_name_mismatch(path, &hashed)
                            .map(|d| d.to_string())
                            .unwrap_or_default()
                    ),
                }),
                Ok(Hashed { sha256: digest, .. }) if digest.encoded() == *hex => None,
                Ok(Hashed { sha256: digest, .. }) => Some(Problem {
                    severity: Severity::Integrity,
                    path: Some(path.to_string()),
                    message: format!(
                        "{path} has changed: it hashes to {digest}, and {SUMS} says sha256:{hex}"
                    ),
                }),
                Err(e) => Some(Problem {
                    severity: Severity::Integrity,
                    path: Some(path.to_string()),
                    message: format!("{path} cannot be read: {e}"),
                }),
            },
        )
        .collect();
    report.files = todo.len();
    report.bytes = todo.iter().map(|t| t.2).sum();
    report.problems.extend(results.into_iter().flatten());

    // 6. The description.
    if let Some(description) = description.as_ref().filter(|_| has_index) {
        check_description(layout, &sums, description, &reachable, &mut report);
    }
    report.images = description.as_ref().map_or(0, |d| d.images.len());
    report.incremental = description
        .as_ref()
        .and_then(|d| d.base.as_ref())
        .map(|b| Incremental {
            base: b.bundle.clone(),
            omitted: b.omitted.len(),
        });
    report.description = description;
    report.problems.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.path.cmp(&b.path))
    });
    Ok(report)
}

fn check_signature(
    layout: &dyn LayoutRead,
    sums_bytes: &[u8],
    options: &Options<'_>,
    report: &mut Report,
) -> Result<()> {
    let signature = match layout.root_file(SIGNATURE, 1024 * 1024) {
        Ok(signature) => signature,
        // Damage (a symlink, FIFO or device there): not accepted, and said why.
        Err(e) if error_severity(&e).is_some() => {
            report.problem(Severity::Integrity, Some(SIGNATURE), e.to_string());
            report.signature = Signature::Rejected;
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    report.signature = match (&signature, &options.allowed_signers) {
        (None, None) => Signature::Absent,
        (Some(_), None) => Signature::Present,
        (None, Some(_)) => {
            report.problem(
                Severity::Integrity,
                Some(SIGNATURE),
                format!("the bundle is not signed: it has no {SIGNATURE}"),
            );
            Signature::Rejected
        }
        (Some(signature), Some(allowed)) => {
            match sign::verify(allowed, signature, sums_bytes, options.now)? {
                Ok(signer) => Signature::Verified(signer),
                Err(rejected) => {
                    report.problem(Severity::Integrity, Some(SIGNATURE), rejected.to_string());
                    Signature::Rejected
                }
            }
        }
    };
    Ok(())
}

/// What the walk of a bundle found.
#[derive(Default)]
struct Walked {
    blobs: Vec<(Digest, u64)>,
    referrers: usize,
    signatures: usize,
}

fn walk(layout: &dyn LayoutRead) -> Result<Walked> {
    let discovery = Discovery::new(layout, Scope::default())?;
    let roots = discovery.index().entries().to_vec();
    let found = closure(&discovery, &roots, true)?;
    let mut blobs = found.blobs;
    // A blob that only bookkeeping lists (a fallback index) is carried too.
    for entry in &roots {
        if !blobs.iter().any(|(d, _)| d == &entry.digest) {
            blobs.push((entry.digest.clone(), entry.size));
        }
    }
    let signatures = found
        .referrers
        .iter()
        .filter(|(_, r)| {
            r.artifact_type
                .as_deref()
                .is_some_and(|t| t.contains("signature") || t.contains("cosign"))
        })
        .count();
    Ok(Walked {
        blobs,
        referrers: found.referrers.len(),
        signatures,
    })
}

/// Looks for an incremental bundle's omitted blobs in the base layout, if given.
fn check_base(
    wanted: &[(Digest, u64)],
    description: Option<&Description>,
    options: &Options<'_>,
    report: &mut Report,
    progress: &dyn Progress,
) {
    let Some(base) = description.and_then(|d| d.base.as_ref()) else {
        return;
    };
    let mut missing = Vec::new();
    match options.base {
        Some(layout) => {
            let found: Vec<bool> = wanted
                .par_iter()
                .map(|(digest, size)| blob_verified(layout, digest, *size, progress))
                .collect();
            for ((digest, size), ok) in wanted.iter().zip(found) {
                if ok {
                    report.from_base += 1;
                } else {
                    missing.push((digest, *size));
                }
            }
        }
        None => missing.extend(wanted.iter().map(|(d, s)| (d, *s))),
    }
    if missing.is_empty() {
        return;
    }
    let bytes = missing.iter().map(|(_, s)| s).sum();
    let incomplete = Missing {
        blobs: missing.len(),
        bytes,
        base: base.bundle.clone(),
    };
    report.problem(Severity::Incomplete, None, incomplete_message(&incomplete));
    report.incomplete = Some(incomplete);
}

/// "incomplete: 3 blobs (1.2 MiB) expected from base sha256:…".
pub fn incomplete_message(missing: &Missing) -> String {
    format!(
        "incomplete: {} blob{} ({}) expected from base {}",
        missing.blobs,
        if missing.blobs == 1 { "" } else { "s" },
        crate::spec::units::human_size(missing.bytes),
        missing.base
    )
}

/// Whether `layout` holds blob `digest` of `size` bytes, hashing to its digest.
fn blob_verified(
    layout: &dyn LayoutRead,
    digest: &Digest,
    size: u64,
    progress: &dyn Progress,
) -> bool {
    let Ok(mut blob) = layout.open_blob(digest, Some(size)) else {
        return false;
    };
    // The verifying reader fails on a mismatch of digest or size.
    sha256_of(&mut blob, progress).is_ok()
}

/// The sha256 of the file at `path` (and, in the same read, its digest in the algorithm its
/// blob name gives), and its length, read at most to one byte past `len` (the length it had
/// when listed: a file that grows is not read without end).
fn hash_file(bundle: &Bundle, path: &str, len: u64, progress: &dyn Progress) -> Result<Hashed> {
    if let Some(hashed) = bundle.hashed(path) {
        return Ok(hashed);
    }
    let also = blob_file_digest(path).and_then(|d| d.ok()?.known_algorithm());
    let mut reader = bundle.open_file(path)?.take(len.saturating_add(1));
    hash_of(&mut reader, also, progress).map_err(|e| Error::io("cannot read", path, e))
}

fn check_description(
    layout: &dyn LayoutRead,
    sums: &Sums,
    description: &Description,
    reachable: &HashSet<Digest>,
    report: &mut Report,
) {
    let mut content = Sums::new();
    for (path, hex) in sums.entries() {
        if path == DESCRIPTION {
            continue;
        }
        if let Ok(digest) = Digest::parse(&format!("sha256:{hex}")) {
            let _ = content.insert(path, &digest);
        }
    }
    let id = Digest::sha256_of(&content.render());
    if id != description.bundle_id {
        report.problem(
            Severity::Integrity,
            Some(DESCRIPTION),
            format!(
                "its bundleId is {}, and the files listed in {SUMS} give {id}",
                description.bundle_id
            ),
        );
    }
    let index = match layout.index() {
        Ok(index) => index,
        Err(e) => {
            report.problem(Severity::Integrity, Some("index.json"), e.to_string());
            return;
        }
    };
    for image in &description.images {
        let at_digest = index.find_digest(&image.digest);
        let named = at_digest.iter().any(|&i| match &image.name {
            Some(name) => {
                let entry = &index.entries()[i];
                entry.ref_name() == Some(name) || entry.containerd_name() == Some(name)
            }
            None => true,
        });
        if !named {
            report.problem(
                Severity::Integrity,
                Some("index.json"),
                format!(
                    "the image {} ({}) is not in index.json at its pinned digest {}",
                    image.reference,
                    image.name.as_deref().unwrap_or("untagged"),
                    image.digest
                ),
            );
        }
        for referrer in &image.referrers {
            if !reachable.contains(&referrer.digest) {
                report.problem(
                    Severity::Integrity,
                    None,
                    format!(
                        "the referrer {} of {} is not in the bundle",
                        referrer.digest, image.reference
                    ),
                );
            }
        }
    }
}

/// For an import of `bundle` into `destination`: when the bundle is incremental, every blob
/// it left out must be in `destination` and hash to its digest; otherwise the import stops
/// with "incomplete: N blobs (X) expected from base sha256:…". Not a bundle, or a complete
/// one: nothing to check.
pub fn require_base(bundle: &dyn LayoutRead, destination: &dyn LayoutRead) -> Result<()> {
    let Some(bytes) = bundle.root_file(DESCRIPTION, MAX_DESCRIPTION_SIZE)? else {
        return Ok(());
    };
    let description = Description::parse(&bytes, &format!("{}/{DESCRIPTION}", bundle.name()))?;
    let Some(base) = description.base else {
        return Ok(());
    };
    let quiet = crate::progress::NoProgress;
    let missing: Vec<&crate::ops::bundle::description::Omitted> = base
        .omitted
        .par_iter()
        .filter(|o| !blob_verified(destination, &o.digest, o.size, &quiet))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidInput {
        what: format!("the bundle {} is", bundle.name()),
        reason: incomplete_message(&Missing {
            blobs: missing.len(),
            bytes: missing.iter().map(|o| o.size).sum(),
            base: base.bundle.clone(),
        }) + &format!("; {} lacks them", destination.name()),
    })
}
