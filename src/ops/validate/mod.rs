//! Validation of OCI image layouts (directories and archives) and of single documents against
//! the image-spec v1.1 and the referrers parts of the distribution-spec.
//!
//! Every rule has a stable id, a level and the spec section it comes from ([`rules::RULES`]).
//! Validation never stops at the first problem: it reports every finding it can, each naming
//! the file, digest, JSON pointer or tar entry. A layout that cannot even be opened (the path
//! does not exist, is unreadable, or is not a tar archive) is an error of the call, not a finding.

mod check;
pub mod deep;
pub mod finding;
pub mod report;
pub mod rules;
mod walk;

use serde::Serialize;

pub use check::{detect_kind, document_kind, is_media_type, DocKind};
pub use finding::{Finding, Findings, Place};
pub use rules::{Level, Rule, RULES};

use crate::error::Result;
use crate::progress::Progress;
use crate::store::layout::{AmbiguityKind, LayoutRead};

/// What to validate and how.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Options {
    /// Also decompress layers, check diff_ids and the tar rules (`T*`).
    pub deep: bool,
    /// SHOULD-level rules become errors.
    pub strict: bool,
    /// Only what these names reach (matched as references match names); empty: everything.
    pub names: Vec<String>,
    /// A missing layer whose descriptor has `urls` (a foreign layer) is not an error.
    pub allow_foreign: bool,
    /// Rules whose findings are accepted: still reported, marked suppressed, never counted
    /// (see [`Report::allow`]). Each must be a rule id of [`RULES`].
    pub allow: Vec<String>,
    /// The decompression limits layers are checked under (`--deep`: beyond them, T10/T11).
    pub limits: crate::codec::decode::Limits,
}

/// Counts of what was checked.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Stats {
    /// Blobs whose content was hashed.
    pub blobs: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Manifests and indexes checked.
    pub manifests: usize,
    /// Layers decompressed (`--deep`).
    pub layers: usize,
    /// Blobs nothing references, and their bytes.
    pub unreferenced: usize,
    pub unreferenced_bytes: u64,
}

/// The outcome of a validation.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Report {
    /// What was validated (a path).
    pub target: String,
    pub strict: bool,
    pub deep: bool,
    pub findings: Vec<Finding>,
    pub stats: Stats,
}

impl Report {
    /// Findings at `level`, not counting suppressed ones.
    pub fn count(&self, level: Level) -> usize {
        self.findings
            .iter()
            .filter(|f| f.level == level && !f.suppressed)
            .count()
    }

    /// Findings of allowed rules.
    pub fn suppressed(&self) -> usize {
        self.findings.iter().filter(|f| f.suppressed).count()
    }

    /// Accepts the findings of the rules `allowed`: they stay in the report, marked
    /// suppressed, and no longer count (as linters suppress a rule). Unknown rule ids are an
    /// error, so a typo cannot silently allow nothing.
    pub fn allow(&mut self, allowed: &[String]) -> Result<()> {
        check_rule_ids(allowed)?;
        for finding in &mut self.findings {
            if allowed.iter().any(|id| id == finding.rule) {
                finding.suppressed = true;
            }
        }
        Ok(())
    }

    /// True when no finding is an error.
    pub fn is_clean(&self) -> bool {
        self.count(Level::Error) == 0
    }
}

/// Fails on an id that is not a rule of [`RULES`].
pub fn check_rule_ids(ids: &[String]) -> Result<()> {
    match ids.iter().find(|id| rules::rule_by_id(id).is_none()) {
        Some(id) => Err(crate::error::Error::InvalidInput {
            what: format!("{id:?}"),
            reason: "is not the id of a validation rule".into(),
        }),
        None => Ok(()),
    }
}

/// Validates a whole layout (or what `options.names` reach).
pub fn validate_layout(
    layout: &dyn LayoutRead,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report> {
    check_rule_ids(&options.allow)?;
    let mut findings = archive_findings(layout, options.strict);
    let (walked, stats) = walk::run(layout, options, progress)?;
    findings.extend(walked);
    let mut report = Report {
        target: layout.name(),
        strict: options.strict,
        deep: options.deep,
        findings,
        stats,
    };
    report.allow(&options.allow)?;
    Ok(report)
}

/// L14, L15: what tar readers read differently in an archive; L16: entries beside the layout (as [`LayoutRead::ambiguities`]
/// says); the rest of the validation reads the archive as extraction would.
fn archive_findings(layout: &dyn LayoutRead, strict: bool) -> Vec<Finding> {
    let mut findings = Findings::new(strict);
    for ambiguity in layout.ambiguities() {
        let rule = match ambiguity.kind {
            AmbiguityKind::Duplicate => "L14",
            AmbiguityKind::Unclear => "L15",
        };
        let place = Place {
            file: ambiguity.path.clone(),
            digest: None,
        };
        // A summary of ambiguities not listed names no entry.
        let entry = Some(ambiguity.entry.as_str()).filter(|e| !e.is_empty());
        findings.add_full(rule, &place, None, entry, ambiguity.message.clone());
    }
    // L16: what else the archive holds beside its layout (read by no command, and so never
    // checked: a place to carry something unseen).
    for entry in layout.outside_root() {
        findings.add_full(
            "L16",
            &Place {
                file: None,
                digest: None,
            },
            None,
            Some(&entry),
            format!("the archive entry {entry} is outside the layout's root"),
        );
    }
    findings.into_vec()
}

/// Validates one JSON document on its own. The media type comes from `media_type`, else from
/// the document's own `mediaType`, else from its shape. Rules that need blobs are skipped.
pub fn validate_document(
    bytes: &[u8],
    media_type: Option<&str>,
    name: &str,
    strict: bool,
) -> Report {
    let mut findings = Findings::new(strict);
    let place = Place::file(name);
    let mut checker = check::Checker::new(&mut findings, place.clone());
    if let Some(value) = checker.parse(bytes) {
        let kind = media_type
            .and_then(check::document_kind)
            .or_else(|| check::detect_kind(&value));
        if let Some(kind) = kind {
            checker.differentials(bytes, kind.schema());
        }
        match kind {
            Some(DocKind::Manifest) => {
                checker.manifest(&value, media_type, bytes.len());
            }
            Some(DocKind::Index) => {
                checker.index(&value, media_type);
            }
            Some(DocKind::Config) => {
                checker.config(&value);
            }
            Some(DocKind::Descriptor) => {
                checker.descriptor(&value, "");
            }
            Some(DocKind::LayoutHeader) => checker.layout_header(&value),
            None => findings.add(
                "J1",
                &place,
                "",
                match media_type {
                    Some(m) => format!("ocikit does not validate documents of media type {m:?}"),
                    None => {
                        "cannot tell what kind of document this is; its media type must be given"
                            .into()
                    }
                },
            ),
        }
    }
    Report {
        target: name.to_string(),
        strict,
        deep: false,
        findings: findings.into_vec(),
        stats: Stats::default(),
    }
}
