//! Findings: what a rule says about one place in a layout or document.

use serde::Serialize;

use super::rules::{rule_by_id, Level};
use crate::spec::digest::Digest;

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule's id (see `ocikit validate --list-rules`).
    pub rule: &'static str,
    /// The level, after `--strict` is applied.
    pub level: Level,
    /// What is wrong, as a sentence.
    pub message: String,
    /// The file, relative to the layout (`index.json`, `blobs/sha256/…`), or the document given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The blob the finding is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// A JSON pointer (RFC 6901) into the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// A path inside a layer's tar stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// The rule is allowed (the caller chose to accept its findings): reported, but it does not
    /// count towards the outcome.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// Where findings about one object go.
#[derive(Clone, Debug, Default)]
pub struct Place {
    pub file: Option<String>,
    pub digest: Option<Digest>,
}

impl Place {
    /// A blob of the layout.
    pub fn blob(digest: &Digest) -> Place {
        Place {
            file: Some(crate::store::layout::blob_file(digest)),
            digest: Some(digest.clone()),
        }
    }

    /// A file of the layout, or a document given on its own.
    pub fn file(name: impl Into<String>) -> Place {
        Place {
            file: Some(name.into()),
            digest: None,
        }
    }
}

/// Collects findings, applying `--strict`.
#[derive(Debug, Default)]
pub struct Findings {
    strict: bool,
    items: Vec<Finding>,
}

impl Findings {
    pub fn new(strict: bool) -> Findings {
        Findings {
            strict,
            items: Vec::new(),
        }
    }

    /// Records a finding of rule `rule` at `place` (and `pointer` inside it).
    pub fn add(&mut self, rule: &'static str, place: &Place, pointer: &str, message: String) {
        self.add_full(rule, place, Some(pointer), None, message);
    }

    /// Records a finding with every location field.
    pub fn add_full(
        &mut self,
        rule: &'static str,
        place: &Place,
        pointer: Option<&str>,
        entry: Option<&str>,
        message: String,
    ) {
        let level = rule_by_id(rule).map_or(Level::Error, |r| r.level_in(self.strict));
        self.items.push(Finding {
            rule,
            level,
            message,
            file: place.file.clone(),
            digest: place.digest.clone(),
            pointer: pointer.filter(|p| !p.is_empty()).map(str::to_string),
            entry: entry.map(str::to_string),
            suppressed: false,
        });
    }

    /// Moves another collector's findings into this one.
    pub fn extend(&mut self, other: Findings) {
        self.items.extend(other.items);
    }

    /// Copies another collector's findings into this one.
    pub fn extend_from(&mut self, other: &Findings) {
        self.items.extend(other.items.iter().cloned());
    }

    pub fn strict(&self) -> bool {
        self.strict
    }

    pub fn into_vec(self) -> Vec<Finding> {
        self.items
    }

    pub fn as_slice(&self) -> &[Finding] {
        &self.items
    }
}
