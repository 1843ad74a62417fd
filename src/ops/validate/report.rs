//! Rendering a validation [`Report`]: text for people, and JSON, SARIF 2.1.0 and JUnit XML for
//! machines; and rendering the rule catalogue (`--list-rules`).
//!
//! Every renderer writes to a `&mut dyn Write` and depends only on the report and the
//! [`RenderOptions`], so the output of each format is deterministic for a given report.
//!
//! # Text ([`Format::Text`])
//!
//! Findings grouped by the object they are about (`oci-layout`, `index.json`, a blob shown by
//! its short digest, a stray file), in the order the validation reached them; one line per
//! finding, `  error[M5] /layers: message`, with the JSON pointer and the tar entry when present.
//! Info-level findings (such as L10, unreferenced blobs) are collapsed into one line per rule
//! with their count (and total size, for L10) unless [`RenderOptions::verbose`]. A summary line
//! ends the output. Levels are colored only when [`RenderOptions::color`] is set. Control
//! characters in messages, paths and tar entries are escaped, so a hostile layout cannot send
//! escape sequences to a terminal.
//!
//! # JSON ([`Format::Json`]), schema version 1
//!
//! One object; fields may be added in later versions, never renamed, retyped or removed (a
//! breaking change would bump `schemaVersion`). Optional fields are omitted when absent.
//!
//! ```text
//! {
//!   "schemaVersion": 1,
//!   "tool": { "name": "ocikit", "version": "0.1.0" },
//!   "target": "path/to/layout",        // the layout (or the document with --document)
//!   "strict": false,                   // --strict: SHOULD rules are errors
//!   "deep": false,                     // --deep: layers were decompressed
//!   "summary": { "errors": 2, "warnings": 1, "notes": 3,    // findings per level,
//!                "suppressed": 0 },    // not counting those of allowed rules
//!   "stats": {
//!     "blobs": 16, "bytes": 20480,     // blobs hashed, and their bytes
//!     "manifests": 5,                  // manifests and indexes checked
//!     "layers": 0,                     // layers decompressed (--deep)
//!     "unreferenced": 3, "unreferencedBytes": 1200   // blobs nothing references
//!   },
//!   "findings": [
//!     {
//!       "rule": "D5",                  // a rule id of `ocikit validate --list-rules`
//!       "level": "error",              // "error" | "warning" | "info" (after --strict)
//!       "message": "size is 401 but blob sha256:… is 400 bytes",
//!       "file": "index.json",          // optional: relative to the layout, or the document
//!       "digest": "sha256:…",          // optional: the blob the finding is about
//!       "pointer": "/manifests/0/size",  // optional: RFC 6901 JSON pointer into the file
//!       "entry": "etc/passwd",         // optional: a path inside a layer's tar stream
//!       "suppressed": true             // optional: the rule is allowed (not counted)
//!     }
//!   ]
//! }
//! ```
//!
//! # SARIF ([`Format::Sarif`])
//!
//! SARIF 2.1.0, one run, acceptable to GitHub code scanning. `tool.driver.rules` lists every
//! rule of [`RULES`] (id, shortDescription, helpUri when the source is a public spec, the source
//! in `properties.source`, `defaultConfiguration.level`). Each result has `ruleId`, `ruleIndex`,
//! `level` (`error`, `warning`, `note`), `message.text` (the location inside the file, then the
//! message), one location whose `artifactLocation.uri` is the file relative to the layout with
//! `uriBaseId` `LAYOUT` (defined in `run.originalUriBaseIds`; findings without a file point at
//! `index.json`) and `region.startLine` 1, the JSON pointer as a logical location's
//! `fullyQualifiedName`, the digest, pointer and tar entry in `properties`, and a
//! `partialFingerprints."ocikit/v1"` hash of rule, file, pointer and entry (not the message, so
//! that a changed size or digest in the message still matches the same alert). With
//! `--document`, the location is the document's own path.
//!
//! # JUnit XML ([`Format::Junit`])
//!
//! `<testsuites>` holding one `<testsuite name="ocikit validate">` with one `<testcase>` per rule
//! that was checked: every rule of [`RULES`], except the `T` rules without `--deep` and, with
//! `--document`, the rules that need a whole layout. `classname` is the rule's family (`layout`,
//! `digests`, `descriptors`, `manifests`, `indexes`, `configs`, `annotations`, `referrers`,
//! `docker`, `layers`, `json`) and `name` is `"ID summary"`. Error-level findings of a rule
//! become one `<failure>` (its `message` attribute the first finding, its text every finding's
//! location and message, one per line). Warnings and notes do not fail a test: they are listed
//! in the test case's `<system-out>`. The counts are `tests`, `failures` (test cases with a
//! failure), `errors="0"` and `skipped="0"`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use crate::spec::units::human_size;

use super::finding::Finding;
use super::rules::{rule_by_id, Level, Rule, RULES};
use super::Report;
use crate::spec::digest::Digest;

/// The SARIF schema ocikit writes.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The version of ocikit's JSON report schema.
pub const JSON_SCHEMA_VERSION: u32 = 1;
/// The `uriBaseId` of every SARIF location inside a layout.
pub const SARIF_LAYOUT_BASE: &str = "LAYOUT";
/// The key of the SARIF partial fingerprint.
pub const SARIF_FINGERPRINT: &str = "ocikit/v1";

const TOOL: &str = "ocikit";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// An output format of `ocikit validate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// For people: findings grouped by object, a summary line.
    #[default]
    Text,
    /// ocikit's own JSON schema (see the module documentation).
    Json,
    /// SARIF 2.1.0, for code-scanning upload.
    Sarif,
    /// JUnit XML, for CI test reports.
    Junit,
}

impl Format {
    /// Every format, in the order help lists them.
    pub const ALL: [Format; 4] = [Format::Text, Format::Json, Format::Sarif, Format::Junit];

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Sarif => "sarif",
            Format::Junit => "junit",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown format {s:?}: use text, json, sarif or junit"))
    }
}

/// How to render.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct RenderOptions {
    /// Color levels with ANSI escapes (text only; the caller decides: a terminal, no `NO_COLOR`).
    pub color: bool,
    /// List info-level findings one by one instead of counting them (text only).
    pub verbose: bool,
    /// The report comes from [`super::validate_document`]: its target is the document itself,
    /// and the rules that need a layout were not checked.
    pub document: bool,
}

/// Writes `report` in `format`.
pub fn render(
    report: &Report,
    format: Format,
    options: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Text => render_text(report, options, out),
        Format::Json => write_json(&json_report(report), out),
        Format::Sarif => write_json(&sarif_log(report, options), out),
        Format::Junit => render_junit(report, options, out),
    }
}

/// Writes the rule catalogue: a table (text) or an array of
/// `{"id", "level", "strictError", "source", "summary"}` (JSON). SARIF and JUnit have no
/// rule-listing form: they give an error of kind [`io::ErrorKind::InvalidInput`].
pub fn render_rules(rules: &[Rule], format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => rules_text(rules, out),
        Format::Json => {
            let list: Vec<JsonRule> = rules.iter().map(JsonRule::from).collect();
            write_json(&list, out)
        }
        Format::Sarif | Format::Junit => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the rule list is printed as text or json, not {}",
                format.name()
            ),
        )),
    }
}

// ---- shared ----

/// The level's name in text, SARIF and JUnit (`info` is a "note", as in the summary).
fn level_word(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Info => "note",
    }
}

/// A rule's family, from the first letter of its id.
pub fn family(id: &str) -> &'static str {
    match id.as_bytes().first() {
        Some(b'L') => "layout",
        Some(b'G') => "digests",
        Some(b'D') => "descriptors",
        Some(b'M') => "manifests",
        Some(b'I') => "indexes",
        Some(b'C') => "configs",
        Some(b'A') => "annotations",
        Some(b'R') => "referrers",
        Some(b'K') => "docker",
        Some(b'T') => "layers",
        Some(b'J') => "json",
        _ => "other",
    }
}

/// Whether a rule needs a whole layout (blobs, the graph from `index.json`), so that it is not
/// checked when one document is validated on its own.
fn needs_layout(id: &str) -> bool {
    match family(id) {
        "layout" => !matches!(id, "L2" | "L3"),
        "referrers" | "layers" => true,
        _ => matches!(id, "G3" | "D5" | "D10" | "I5" | "C5" | "C9" | "M8"),
    }
}

/// Whether `rule` was checked for `report`.
fn was_checked(rule: &Rule, report: &Report, options: &RenderOptions) -> bool {
    if family(rule.id) == "layers" && !report.deep {
        return false;
    }
    !(options.document && needs_layout(rule.id))
}

/// Where in its file a finding is: the JSON pointer, then the tar entry.
fn location_in_file(f: &Finding) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &f.pointer {
        parts.push(p.clone());
    }
    if let Some(e) = &f.entry {
        parts.push(format!("entry {e}"));
    }
    parts.join(" ")
}

/// Text with control characters (`\n`, `\u{1b}`) and bidirectional overrides escaped, safe to
/// print on a terminal.
fn printable(text: &str) -> String {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(unsafe_char) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn write_json<T: Serialize + ?Sized>(value: &T, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

// ---- text ----

/// ANSI styles, or none.
struct Paint {
    color: bool,
}

impl Paint {
    fn paint(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{style}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn level(&self, level: Level, text: &str) -> String {
        let style = match level {
            Level::Error => "1;31",
            Level::Warning => "1;33",
            Level::Info => "1;36",
        };
        self.paint(style, text)
    }
}

/// The heading of the object a finding is about.
fn object_heading(f: &Finding, target: &str) -> String {
    match (&f.file, &f.digest) {
        (Some(file), Some(digest)) if is_blob_path(file, digest) => short_blob(digest),
        (Some(file), _) => printable(file),
        (None, Some(digest)) => short_blob(digest),
        (None, None) => printable(target),
    }
}

/// Where an object's group goes in text: `oci-layout`, `index.json`, `blobs`, blobs, the rest.
fn object_rank(f: &Finding) -> u8 {
    match (f.file.as_deref(), &f.digest) {
        (Some("oci-layout"), _) => 0,
        (Some("index.json"), _) | (None, None) => 1,
        (Some("blobs"), _) => 2,
        (_, Some(_)) => 3,
        _ => 4,
    }
}

fn is_blob_path(file: &str, digest: &Digest) -> bool {
    file == crate::store::layout::blob_file(digest)
}

fn short_blob(digest: &Digest) -> String {
    format!("blob {}:{}", digest.algorithm(), digest.short())
}

fn render_text(report: &Report, options: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let paint = Paint {
        color: options.color,
    };
    // Groups: the layout's own files, then blobs, then other files; within each, in the order
    // the validation first reached them.
    let mut groups: Vec<(String, Vec<&Finding>)> = Vec::new();
    let mut group_of: HashMap<String, usize> = HashMap::new();
    // Collapsed info-level findings: (rule, count), in order of first appearance.
    let mut collapsed: Vec<(&'static str, usize)> = Vec::new();
    for f in report.findings.iter().filter(|f| !f.suppressed) {
        if f.level == Level::Info && !options.verbose {
            match collapsed.iter_mut().find(|(rule, _)| *rule == f.rule) {
                Some((_, n)) => *n += 1,
                None => collapsed.push((f.rule, 1)),
            }
            continue;
        }
        let heading = object_heading(f, &report.target);
        let index = *group_of.entry(heading.clone()).or_insert_with(|| {
            groups.push((heading, Vec::new()));
            groups.len() - 1
        });
        groups[index].1.push(f);
    }
    groups.sort_by_key(|(_, findings)| object_rank(findings[0]));
    for (heading, findings) in &groups {
        writeln!(out, "{}", paint.paint("1", heading))?;
        for f in findings {
            let label = paint.level(f.level, &format!("{}[{}]", level_word(f.level), f.rule));
            let location = printable(&location_in_file(f));
            let separator = if location.is_empty() { "" } else { " " };
            writeln!(
                out,
                "  {label}{separator}{location}: {}",
                printable(&f.message)
            )?;
        }
    }
    for (rule, count) in &collapsed {
        let label = paint.level(Level::Info, &format!("note[{rule}]"));
        let what = if *rule == "L10" {
            let size = if report.stats.unreferenced == *count {
                format!(", {} in all", human_size(report.stats.unreferenced_bytes))
            } else {
                String::new()
            };
            let them = if *count == 1 { "it" } else { "them" };
            format!(
                "{} that nothing references{size}; garbage collection would remove {them}",
                plural(*count, "blob", "blobs")
            )
        } else {
            let summary = rule_by_id(rule).map_or("", |r| r.summary);
            format!("{}: {summary}", plural(*count, "finding", "findings"))
        };
        writeln!(out, "{label} {what} (verbose output lists them)")?;
    }
    if !groups.is_empty() || !collapsed.is_empty() {
        writeln!(out)?;
    }
    writeln!(out, "{}", summary_line(report, options, &paint))
}

fn summary_line(report: &Report, options: &RenderOptions, paint: &Paint) -> String {
    let errors = report.count(Level::Error);
    let counts = format!(
        "{}, {}",
        plural(report.count(Level::Warning), "warning", "warnings"),
        plural(report.count(Level::Info), "note", "notes")
    );
    let mut line = if errors == 0 {
        format!("{} no errors, {counts}", paint.paint("1;32", "clean:"))
    } else {
        let errors = paint.paint("1;31", &plural(errors, "error", "errors"));
        format!("{errors}, {counts}")
    };
    let suppressed = report.suppressed();
    if suppressed > 0 {
        line.push_str(&format!(
            " ({} of allowed rules not shown)",
            plural(suppressed, "finding", "findings")
        ));
    }
    line.push_str(&format!(" in {}", printable(&report.target)));
    if !options.document {
        let stats = &report.stats;
        line.push_str(&format!(
            " ({}, {} checked",
            plural(stats.blobs, "blob", "blobs"),
            human_size(stats.bytes)
        ));
        if report.deep {
            line.push_str(&format!(
                ", {} decompressed",
                plural(stats.layers, "layer", "layers")
            ));
        }
        line.push(')');
    }
    line
}

// ---- JSON ----

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonReport<'a> {
    schema_version: u32,
    tool: JsonTool,
    target: &'a str,
    strict: bool,
    deep: bool,
    summary: JsonSummary,
    stats: JsonStats,
    findings: &'a [Finding],
}

#[derive(Serialize)]
struct JsonTool {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct JsonSummary {
    errors: usize,
    warnings: usize,
    notes: usize,
    /// Findings of allowed rules (not counted above).
    suppressed: usize,
}

/// The stats, spelled out here so that the schema does not change with [`super::Stats`].
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonStats {
    blobs: usize,
    bytes: u64,
    manifests: usize,
    layers: usize,
    unreferenced: usize,
    unreferenced_bytes: u64,
}

fn summary(report: &Report) -> JsonSummary {
    JsonSummary {
        errors: report.count(Level::Error),
        warnings: report.count(Level::Warning),
        notes: report.count(Level::Info),
        suppressed: report.suppressed(),
    }
}

fn stats(report: &Report) -> JsonStats {
    let s = &report.stats;
    JsonStats {
        blobs: s.blobs,
        bytes: s.bytes,
        manifests: s.manifests,
        layers: s.layers,
        unreferenced: s.unreferenced,
        unreferenced_bytes: s.unreferenced_bytes,
    }
}

fn json_report(report: &Report) -> JsonReport<'_> {
    JsonReport {
        schema_version: JSON_SCHEMA_VERSION,
        tool: JsonTool {
            name: TOOL,
            version: VERSION,
        },
        target: &report.target,
        strict: report.strict,
        deep: report.deep,
        summary: summary(report),
        stats: stats(report),
        findings: &report.findings,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonRule {
    id: &'static str,
    level: Level,
    strict_error: bool,
    source: &'static str,
    summary: &'static str,
}

impl From<&Rule> for JsonRule {
    fn from(r: &Rule) -> JsonRule {
        JsonRule {
            id: r.id,
            level: r.level,
            strict_error: r.strict_error,
            source: r.source,
            summary: r.summary,
        }
    }
}

// ---- rules as text ----

fn rules_text(rules: &[Rule], out: &mut dyn Write) -> io::Result<()> {
    let level = |r: &Rule| {
        if r.strict_error {
            "warning*".to_string()
        } else {
            r.level.name().to_string()
        }
    };
    let id_width = rules.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    let level_width = rules
        .iter()
        .map(|r| level(r).len())
        .max()
        .unwrap_or(5)
        .max(5);
    let source_width = rules
        .iter()
        .map(|r| r.source.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let row = |out: &mut dyn Write, id: &str, level: &str, source: &str, summary: &str| {
        writeln!(
            out,
            "{id:<id_width$}  {level:<level_width$}  {source:<source_width$}  {summary}"
        )
    };
    row(out, "ID", "LEVEL", "SOURCE", "SUMMARY")?;
    let mut previous = None;
    for r in rules {
        let family = family(r.id);
        if previous.is_some_and(|p| p != family) {
            writeln!(out)?;
        }
        previous = Some(family);
        row(out, r.id, &level(r), r.source, r.summary)?;
    }
    if rules.iter().any(|r| r.strict_error) {
        writeln!(out)?;
        writeln!(out, "* a SHOULD of the specs: an error in strict mode")?;
    }
    Ok(())
}

// ---- SARIF ----

/// A public address for a rule's source, when it is a spec ocikit can link to.
pub fn source_uri(source: &str) -> Option<String> {
    const IMAGE_SPEC: &[&str] = &[
        "image-layout.md",
        "descriptor.md",
        "manifest.md",
        "image-index.md",
        "config.md",
        "annotations.md",
        "layer.md",
    ];
    let file = source.split('#').next().unwrap_or(source);
    if IMAGE_SPEC.contains(&file) {
        return Some(format!(
            "https://github.com/opencontainers/image-spec/blob/v1.1.0/{source}"
        ));
    }
    if let Some(rest) = source.strip_prefix("distribution-spec ") {
        return Some(format!(
            "https://github.com/opencontainers/distribution-spec/blob/v1.1.0/{rest}"
        ));
    }
    if let Some(section) = source.strip_prefix("RFC 8259 section ") {
        return Some(format!(
            "https://www.rfc-editor.org/rfc/rfc8259#section-{section}"
        ));
    }
    if source.starts_with("docker image-manifest-v2-2") {
        return Some("https://distribution.github.io/distribution/spec/manifest-v2-2/".into());
    }
    if let Some(rest) = source.strip_prefix("image-spec v1.1.0-rc ") {
        return Some(format!(
            "https://github.com/opencontainers/image-spec/blob/v1.1.0-rc2/{rest}"
        ));
    }
    None
}

/// ocikit's address, for SARIF's `informationUri`.
fn information_uri() -> &'static str {
    match (env!("CARGO_PKG_HOMEPAGE"), env!("CARGO_PKG_REPOSITORY")) {
        (home, _) if !home.is_empty() => home,
        (_, repo) if !repo.is_empty() => repo,
        _ => "https://crates.io/crates/ocikit",
    }
}

fn sarif_level(level: Level) -> &'static str {
    level_word(level)
}

/// Percent-encodes a path for a URI reference (RFC 3986 unreserved characters and `/` kept).
fn uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// An artifact location for a path on this machine: absolute paths as `file://` URIs,
/// relative ones relative to `%SRCROOT%` (the working directory, a repository's root in CI).
fn local_location(path: &str, directory: bool) -> serde_json::Value {
    let mut uri = uri_path(path);
    if directory && !uri.ends_with('/') {
        uri.push('/');
    }
    if Path::new(path).is_absolute() {
        serde_json::json!({ "uri": format!("file://{uri}") })
    } else {
        serde_json::json!({ "uri": uri, "uriBaseId": "%SRCROOT%" })
    }
}

fn sarif_log(report: &Report, options: &RenderOptions) -> serde_json::Value {
    use serde_json::json;
    let rules: Vec<serde_json::Value> = RULES
        .iter()
        .map(|r| {
            let mut rule = serde_json::Map::new();
            rule.insert("id".into(), json!(r.id));
            rule.insert("shortDescription".into(), json!({ "text": r.summary }));
            rule.insert(
                "fullDescription".into(),
                json!({ "text": format!("{} ({})", r.summary, r.source) }),
            );
            if let Some(uri) = source_uri(r.source) {
                rule.insert("helpUri".into(), json!(uri));
            }
            rule.insert(
                "defaultConfiguration".into(),
                json!({ "level": sarif_level(r.level) }),
            );
            rule.insert(
                "properties".into(),
                json!({
                    "source": r.source,
                    "family": family(r.id),
                    "strictError": r.strict_error,
                    "tags": ["oci", family(r.id)],
                }),
            );
            serde_json::Value::Object(rule)
        })
        .collect();
    let results: Vec<serde_json::Value> = report
        .findings
        .iter()
        .map(|f| sarif_result(f, report, options))
        .collect();
    let mut run = json!({
        "tool": {
            "driver": {
                "name": TOOL,
                "version": VERSION,
                "semanticVersion": VERSION,
                "informationUri": information_uri(),
                "rules": rules,
            }
        },
        "columnKind": "unicodeCodePoints",
        "results": results,
        "invocations": [{ "executionSuccessful": true }],
        "properties": {
            "target": report.target,
            "strict": report.strict,
            "deep": report.deep,
            "summary": summary(report),
            "stats": stats(report),
        },
    });
    if !options.document {
        run["originalUriBaseIds"] = json!({
            SARIF_LAYOUT_BASE: local_location(&report.target, true),
        });
    }
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [run],
    })
}

fn sarif_result(f: &Finding, report: &Report, options: &RenderOptions) -> serde_json::Value {
    use serde_json::json;
    let file = f.file.as_deref();
    let artifact = if options.document {
        local_location(file.unwrap_or(&report.target), false)
    } else {
        json!({
            "uri": uri_path(file.unwrap_or("index.json")),
            "uriBaseId": SARIF_LAYOUT_BASE,
        })
    };
    let mut location = json!({
        "physicalLocation": {
            "artifactLocation": artifact,
            "region": { "startLine": 1 },
        }
    });
    if let Some(pointer) = &f.pointer {
        location["logicalLocations"] = json!([{
            "fullyQualifiedName": pointer,
            "kind": "element",
        }]);
    }
    let where_ = location_in_file(f);
    let text = if where_.is_empty() {
        f.message.clone()
    } else {
        format!("{where_}: {}", f.message)
    };
    let mut result = json!({ "ruleId": f.rule });
    if let Some(index) = RULES.iter().position(|r| r.id == f.rule) {
        result["ruleIndex"] = json!(index);
    }
    result["level"] = json!(sarif_level(f.level));
    result["message"] = json!({ "text": text });
    result["locations"] = json!([location]);
    if f.suppressed {
        result["suppressions"] = json!([{
            "kind": "external",
            "justification": "the rule is allowed by the validation's configuration",
        }]);
    }
    let key = format!(
        "{}\0{}\0{}\0{}",
        f.rule,
        file.unwrap_or(""),
        f.pointer.as_deref().unwrap_or(""),
        f.entry.as_deref().unwrap_or("")
    );
    let hash = Digest::sha256_of(key.as_bytes());
    result["partialFingerprints"] = json!({ SARIF_FINGERPRINT: &hash.encoded()[..32] });
    let mut properties = serde_json::Map::new();
    if let Some(d) = &f.digest {
        properties.insert("digest".into(), json!(d));
    }
    if let Some(p) = &f.pointer {
        properties.insert("pointer".into(), json!(p));
    }
    if let Some(e) = &f.entry {
        properties.insert("entry".into(), json!(e));
    }
    if !properties.is_empty() {
        result["properties"] = serde_json::Value::Object(properties);
    }
    result
}

// ---- JUnit ----

/// Escapes text for an XML 1.0 attribute value (line breaks and tabs as character references,
/// so that they survive attribute normalization). Characters XML 1.0 cannot carry at all (most
/// control characters) are written as `\u{…}` text instead.
pub fn xml_attr(text: &str) -> String {
    xml_escape(text, true)
}

/// Escapes text for XML 1.0 element content; see [`xml_attr`].
pub fn xml_text(text: &str) -> String {
    xml_escape(text, false)
}

fn xml_escape(text: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\t' | '\n' | '\r' if attribute => {
                let _ = write!(out, "&#{};", c as u32);
            }
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || matches!(c, '\u{fffe}' | '\u{ffff}') => {
                out.extend(c.escape_unicode());
            }
            c => out.push(c),
        }
    }
    out
}

/// A finding's place, for JUnit texts: file, then pointer and tar entry.
fn junit_place(f: &Finding, report: &Report) -> String {
    let file = f
        .file
        .clone()
        .or_else(|| f.digest.as_ref().map(|d| d.to_string()))
        .unwrap_or_else(|| report.target.clone());
    let inside = location_in_file(f);
    if inside.is_empty() {
        file
    } else {
        format!("{file} {inside}")
    }
}

fn render_junit(report: &Report, options: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    // The rules checked, then any rule a finding names that the catalogue does not know.
    let mut cases: Vec<(&str, String)> = RULES
        .iter()
        .filter(|r| was_checked(r, report, options))
        .map(|r| (r.id, format!("{} {}", r.id, r.summary)))
        .collect();
    for f in &report.findings {
        if !cases.iter().any(|(id, _)| *id == f.rule) {
            cases.push((f.rule, f.rule.to_string()));
        }
    }
    let mut by_rule: HashMap<&str, Vec<&Finding>> = HashMap::new();
    for f in &report.findings {
        by_rule.entry(f.rule).or_default().push(f);
    }
    let failures = cases
        .iter()
        .filter(|(id, _)| {
            by_rule
                .get(id)
                .is_some_and(|fs| fs.iter().any(|f| f.level == Level::Error && !f.suppressed))
        })
        .count();
    let counts = format!(
        "tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\"",
        cases.len()
    );
    let suite = "ocikit validate";
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(out, r#"<testsuites name="{suite}" {counts}>"#)?;
    writeln!(out, r#"  <testsuite name="{suite}" {counts}>"#)?;
    writeln!(out, "    <properties>")?;
    for (name, value) in [
        ("target", report.target.clone()),
        ("strict", report.strict.to_string()),
        ("deep", report.deep.to_string()),
        ("ocikit.version", VERSION.to_string()),
    ] {
        writeln!(
            out,
            r#"      <property name="{name}" value="{}"/>"#,
            xml_attr(&value)
        )?;
    }
    writeln!(out, "    </properties>")?;
    let none = Vec::new();
    for (id, name) in &cases {
        let findings = by_rule.get(id).unwrap_or(&none);
        let open = format!(
            r#"    <testcase classname="{}" name="{}""#,
            family(id),
            xml_attr(name)
        );
        if findings.is_empty() {
            writeln!(out, "{open}/>")?;
            continue;
        }
        writeln!(out, "{open}>")?;
        let (errors, others): (Vec<&Finding>, Vec<&Finding>) = findings
            .iter()
            .partition(|f| f.level == Level::Error && !f.suppressed);
        if let Some(first) = errors.first() {
            let message = if errors.len() == 1 {
                format!("{}: {}", junit_place(first, report), first.message)
            } else {
                format!(
                    "{} errors; the first: {}: {}",
                    errors.len(),
                    junit_place(first, report),
                    first.message
                )
            };
            let text: String = errors
                .iter()
                .map(|f| format!("{}: {}\n", junit_place(f, report), f.message))
                .collect();
            writeln!(
                out,
                r#"      <failure message="{}" type="{}">{}</failure>"#,
                xml_attr(&message),
                xml_attr(id),
                xml_text(&text)
            )?;
        }
        if !others.is_empty() {
            let text: String = others
                .iter()
                .map(|f| {
                    format!(
                        "{}{}: {}: {}\n",
                        level_word(f.level),
                        if f.suppressed { " (allowed)" } else { "" },
                        junit_place(f, report),
                        f.message
                    )
                })
                .collect();
            writeln!(out, "      <system-out>{}</system-out>", xml_text(&text))?;
        }
        writeln!(out, "    </testcase>")?;
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(out, "</testsuites>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::validate::Stats;

    fn finding(
        rule: &'static str,
        level: Level,
        file: Option<&str>,
        pointer: Option<&str>,
    ) -> Finding {
        Finding {
            rule,
            level,
            message: format!("message of {rule}"),
            file: file.map(str::to_string),
            digest: None,
            pointer: pointer.map(str::to_string),
            entry: None,
            suppressed: false,
        }
    }

    fn blob_finding(rule: &'static str, level: Level, digest: &Digest) -> Finding {
        Finding {
            rule,
            level,
            message: format!("message of {rule}"),
            file: Some(format!("blobs/{}/{}", digest.algorithm(), digest.encoded())),
            digest: Some(digest.clone()),
            pointer: None,
            entry: None,
            suppressed: false,
        }
    }

    fn report(findings: Vec<Finding>) -> Report {
        Report {
            target: "/data/layout".into(),
            strict: false,
            deep: false,
            findings,
            stats: Stats {
                blobs: 3,
                bytes: 3 * 1024 * 1024,
                manifests: 1,
                layers: 0,
                unreferenced: 2,
                unreferenced_bytes: 2048,
            },
        }
    }

    fn sample() -> Report {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let c = Digest::sha256_of(b"c");
        report(vec![
            finding(
                "D5",
                Level::Error,
                Some("index.json"),
                Some("/manifests/0/size"),
            ),
            blob_finding("M5", Level::Warning, &a),
            finding("L9", Level::Warning, Some(".ocikit-tmp-x"), None),
            blob_finding("L8", Level::Error, &a),
            blob_finding("L10", Level::Info, &b),
            blob_finding("L10", Level::Info, &c),
        ])
    }

    fn rendered(report: &Report, format: Format, options: RenderOptions) -> String {
        let mut out = Vec::new();
        render(report, format, &options, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_groups_by_object_and_collapses_notes() {
        let text = rendered(&sample(), Format::Text, RenderOptions::default());
        let a = Digest::sha256_of(b"a");
        let expected = format!(
            "index.json\n  error[D5] /manifests/0/size: message of D5\n\
             blob sha256:{short}\n  warning[M5]: message of M5\n  error[L8]: message of L8\n\
             .ocikit-tmp-x\n  warning[L9]: message of L9\n\
             note[L10] 2 blobs that nothing references, 2.0 KiB in all; garbage collection would remove them (verbose output lists them)\n\
             \n2 errors, 2 warnings, 2 notes in /data/layout (3 blobs, 3.0 MiB checked)\n",
            short = a.short()
        );
        assert_eq!(text, expected);
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn text_verbose_lists_notes_and_color_is_optional() {
        let options = RenderOptions {
            verbose: true,
            color: true,
            document: false,
        };
        let text = rendered(&sample(), Format::Text, options);
        assert!(text.contains("note[L10]"));
        assert_eq!(text.matches("message of L10").count(), 2);
        assert!(text.contains("\x1b[1;31merror[D5]\x1b[0m"));
        assert!(text.contains("\x1b[1;33mwarning[M5]\x1b[0m"));
    }

    #[test]
    fn text_says_clean_and_escapes_control_characters() {
        let mut r = report(vec![finding(
            "L9",
            Level::Warning,
            Some("bad\x1b[2Jname"),
            None,
        )]);
        r.deep = true;
        r.stats.layers = 1;
        let text = rendered(&r, Format::Text, RenderOptions::default());
        assert!(!text.contains('\x1b'), "{text}");
        assert!(text.contains("bad\\u{1b}[2Jname"));
        assert_eq!(printable("a\u{202e}b\tc"), "a\\u{202e}b\\tc");
        assert!(text.ends_with(
            "clean: no errors, 1 warning, 0 notes in /data/layout (3 blobs, 3.0 MiB checked, 1 layer decompressed)\n"
        ));
        let empty = rendered(
            &report(vec![]),
            Format::Text,
            RenderOptions {
                document: true,
                ..Default::default()
            },
        );
        assert_eq!(
            empty,
            "clean: no errors, 0 warnings, 0 notes in /data/layout\n"
        );
    }

    #[test]
    fn json_follows_the_schema() {
        let v: serde_json::Value =
            serde_json::from_str(&rendered(&sample(), Format::Json, RenderOptions::default()))
                .unwrap();
        assert_eq!(v["schemaVersion"], 1);
        assert_eq!(v["tool"]["name"], "ocikit");
        assert_eq!(v["tool"]["version"], VERSION);
        assert_eq!(v["target"], "/data/layout");
        assert_eq!(
            v["summary"],
            serde_json::json!({"errors": 2, "warnings": 2, "notes": 2, "suppressed": 0})
        );
        assert_eq!(v["stats"]["unreferencedBytes"], 2048);
        let first = &v["findings"][0];
        assert_eq!(
            first,
            &serde_json::json!({"rule": "D5", "level": "error", "message": "message of D5",
                "file": "index.json", "pointer": "/manifests/0/size"})
        );
        assert_eq!(v["findings"][4]["level"], "info");
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "schemaVersion",
                "tool",
                "target",
                "strict",
                "deep",
                "summary",
                "stats",
                "findings"
            ]
        );
    }

    #[test]
    fn sarif_results_point_at_rules_and_files() {
        let v: serde_json::Value = serde_json::from_str(&rendered(
            &sample(),
            Format::Sarif,
            RenderOptions::default(),
        ))
        .unwrap();
        assert_eq!(v["version"], "2.1.0");
        assert_eq!(v["$schema"], SARIF_SCHEMA);
        let run = &v["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), RULES.len());
        assert_eq!(
            run["originalUriBaseIds"]["LAYOUT"]["uri"],
            "file:///data/layout/"
        );
        for result in run["results"].as_array().unwrap() {
            let index = result["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[index]["id"], result["ruleId"]);
            let artifact = &result["locations"][0]["physicalLocation"]["artifactLocation"];
            assert_eq!(artifact["uriBaseId"], "LAYOUT");
            assert!(artifact["uri"].as_str().is_some());
            assert!(["error", "warning", "note"].contains(&result["level"].as_str().unwrap()));
        }
        let d5 = &run["results"][0];
        assert_eq!(d5["message"]["text"], "/manifests/0/size: message of D5");
        assert_eq!(
            d5["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
            "/manifests/0/size"
        );
        let fingerprints: std::collections::HashSet<String> = run["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r["partialFingerprints"][SARIF_FINGERPRINT]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            fingerprints.len(),
            6,
            "distinct findings have distinct fingerprints"
        );
    }

    #[test]
    fn sarif_for_a_document_and_findings_without_a_file() {
        let mut r = report(vec![finding(
            "J1",
            Level::Error,
            Some("dir/m a.json"),
            None,
        )]);
        r.target = "dir/m a.json".into();
        let options = RenderOptions {
            document: true,
            ..Default::default()
        };
        let v: serde_json::Value =
            serde_json::from_str(&rendered(&r, Format::Sarif, options)).unwrap();
        let artifact =
            &v["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"];
        assert_eq!(artifact["uri"], "dir/m%20a.json");
        assert_eq!(artifact["uriBaseId"], "%SRCROOT%");
        assert!(v["runs"][0].get("originalUriBaseIds").is_none());

        let r = report(vec![finding("L4", Level::Error, None, None)]);
        let v: serde_json::Value =
            serde_json::from_str(&rendered(&r, Format::Sarif, RenderOptions::default())).unwrap();
        let artifact =
            &v["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"];
        assert_eq!(artifact["uri"], "index.json");
    }

    #[test]
    fn junit_has_a_test_case_per_checked_rule() {
        let xml = rendered(&sample(), Format::Junit, RenderOptions::default());
        let checked = RULES.iter().filter(|r| !r.id.starts_with('T')).count();
        assert_eq!(xml.matches("<testcase ").count(), checked);
        assert!(xml.contains(&format!(r#"<testsuite name="ocikit validate" tests="{checked}" failures="2" errors="0" skipped="0">"#)));
        assert!(xml.contains(
            r#"<failure message="index.json /manifests/0/size: message of D5" type="D5">"#
        ));
        assert!(xml.contains("<system-out>warning: .ocikit-tmp-x: message of L9\n</system-out>"));
        let mut deep = sample();
        deep.deep = true;
        let xml = rendered(&deep, Format::Junit, RenderOptions::default());
        assert_eq!(xml.matches("<testcase ").count(), RULES.len());
        let xml = rendered(
            &report(vec![]),
            Format::Junit,
            RenderOptions {
                document: true,
                ..Default::default()
            },
        );
        assert!(!xml.contains("name=\"L1 "));
        assert!(xml.contains("name=\"L3 "));
        assert!(xml.contains("name=\"M5 "));
        assert!(!xml.contains("name=\"D5 "));
    }

    #[test]
    fn xml_escaping() {
        assert_eq!(xml_attr(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(xml_attr("x\ny\u{1}"), "x&#10;y\\u{1}");
        assert_eq!(xml_text("x\ny\u{1}\"'\r"), "x\ny\\u{1}\"'&#13;");
        assert_eq!(xml_text("]]>"), "]]&gt;");
    }

    #[test]
    fn rules_render_as_a_table_or_json() {
        let mut out = Vec::new();
        render_rules(RULES, Format::Json, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v.as_array().unwrap().len(), RULES.len());
        assert_eq!(v[0]["id"], RULES[0].id);
        assert!(v[0].get("strictError").is_some());
        let mut out = Vec::new();
        render_rules(RULES, Format::Text, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("ID "));
        for r in RULES {
            assert_eq!(
                text.lines()
                    .filter(|l| l.split_whitespace().next() == Some(r.id))
                    .count(),
                1
            );
        }
        let err = render_rules(RULES, Format::Sarif, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn sources_link_to_the_specs() {
        assert_eq!(
            source_uri("image-layout.md#blobs").as_deref(),
            Some("https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md#blobs")
        );
        assert!(source_uri("distribution-spec spec.md#referrers-tag-schema")
            .unwrap()
            .contains("distribution-spec/blob/v1.1.0/spec.md"));
        assert_eq!(source_uri("PRODUCT.md#referrers-inside-a-layout"), None);
        assert_eq!(uri_path("a b/%c"), "a%20b/%25c");
        assert_eq!("sarif".parse::<Format>(), Ok(Format::Sarif));
        assert!("xml".parse::<Format>().is_err());
    }
}
