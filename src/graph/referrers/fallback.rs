//! Writing the bookkeeping: untagged entries and fallback-tag indexes, merged with what other
//! tools put there and never re-serialized when appending will do.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::conventions::{fallback_tag, Format};
use crate::error::{Error, Result};
use crate::graph::documents::{Documents, Parsed};
use crate::spec::digest::Digest;
use crate::spec::document::media_type::OCI_INDEX;
use crate::spec::document::{
    canonical, differential, parse_document, Annotations, Descriptor, Document, Schema, REF_NAME,
};
use crate::store::destination::DocumentStore;
use crate::store::layout::{IndexFile, LayoutRead};

/// The descriptors a fallback-tag index lists; why it cannot be read otherwise.
pub(super) fn fallback_list(
    documents: &Documents<'_>,
    entry: &Descriptor,
) -> std::result::Result<Vec<Descriptor>, String> {
    match &*documents.get(entry) {
        Ok(Parsed {
            document: Document::Index(index),
            ..
        }) => Ok(index.manifests.clone()),
        Ok(_) => Err(Error::UnexpectedMediaType {
            what: format!("fallback index {}", entry.digest),
            media_type: entry.media_type.clone(),
            expected: "but a fallback tag must name an index".into(),
        }
        .to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// `value` with its object keys in canonical (sorted) order, as the documents ocikit writes.
pub(crate) fn canonical_value(value: &Value) -> Result<Value> {
    serde_json::from_slice(&canonical::to_vec(value)).map_err(|source| Error::Serialize {
        what: "a JSON value in canonical order",
        source,
    })
}

/// A descriptor as JSON, keys sorted.
pub(crate) fn descriptor_value(descriptor: &Descriptor) -> Result<Value> {
    let value = serde_json::to_value(descriptor).map_err(|source| Error::Serialize {
        what: "a descriptor",
        source,
    })?;
    canonical_value(&value)
}

/// Records `referrer` (a descriptor with `artifactType` and annotations) as a referrer of
/// `subject` in `index`, in the conventions `format` names: an untagged entry, and the
/// fallback index merged with what it already lists. Returns whether index.json changed.
pub fn record(
    writer: &dyn DocumentStore,
    index: &mut IndexFile,
    subject: &Digest,
    referrer: &Descriptor,
    format: Format,
) -> Result<bool> {
    Pending::read(writer.reader(), index, subject, format)?.record(writer, index, referrer)
}

/// A subject's bookkeeping, read before a referrer is recorded, so that a fallback index that
/// cannot be read is reported before any blob is written.
pub struct Pending {
    format: Format,
    fallback: Option<Fallback>,
}

impl Pending {
    /// Reads what recording a referrer of `subject` in `format` will change.
    pub fn read(
        layout: &dyn LayoutRead,
        index: &IndexFile,
        subject: &Digest,
        format: Format,
    ) -> Result<Pending> {
        let fallback = if format.tag() {
            Some(Fallback::read(layout, index, subject)?)
        } else {
            None
        };
        Ok(Pending { format, fallback })
    }

    /// Records `referrer`; returns whether index.json changed.
    pub fn record(
        self,
        writer: &dyn DocumentStore,
        index: &mut IndexFile,
        referrer: &Descriptor,
    ) -> Result<bool> {
        let mut changed = false;
        if self.format.index() && !has_untagged(index, &referrer.digest) {
            index.push_raw(descriptor_value(referrer)?)?;
            changed = true;
        }
        if let Some(fallback) = self.fallback {
            changed |= fallback.append(writer, index, referrer)?;
        }
        Ok(changed)
    }
}

/// Whether `index` has an untagged entry for `digest`.
pub(super) fn has_untagged(index: &IndexFile, digest: &Digest) -> bool {
    index
        .entries()
        .iter()
        .any(|d| &d.digest == digest && d.ref_name().is_none())
}

pub(super) fn listed_digest(value: &Value) -> Option<&str> {
    value.get("digest").and_then(Value::as_str)
}

/// A subject's fallback-tag index as read: its entries in index.json and its content.
/// Several entries of that tag are merged into one.
struct Fallback {
    name: String,
    positions: Vec<usize>,
    content: Content,
}

/// What a fallback index holds.
enum Content {
    /// The common case, left as bytes: one index in canonical JSON, whose `manifests` array
    /// ends at `end` (the offset of its `]`). A descriptor is appended by splicing, which keeps
    /// the document canonical and costs no parse, however long the list.
    Canonical { bytes: Vec<u8>, end: usize },
    /// Anything else, as raw JSON.
    Raw(RawFallback),
}

/// A fallback index as raw JSON: the document's other fields and the listed descriptors (so
/// what other tools put there survives).
#[derive(Default)]
struct RawFallback {
    base: Option<Map<String, Value>>,
    list: Vec<Value>,
}

impl RawFallback {
    /// Adds the document `bytes` (named `what` in errors) to the merge: its fields, unless an
    /// earlier document gave them, and the descriptors not listed yet.
    fn merge(&mut self, bytes: &[u8], what: String, seen: &mut HashSet<String>) -> Result<()> {
        let value: Value = parse_document(bytes, Schema::ManifestLike, &what)?;
        let Value::Object(mut object) = value else {
            return Err(Error::Json {
                file: what,
                pointer: String::new(),
                message: "the document is not a JSON object".into(),
            });
        };
        let Some(Value::Array(manifests)) = object.remove("manifests") else {
            return Err(Error::Json {
                file: what,
                pointer: "/manifests".into(),
                message: "manifests must be an array".into(),
            });
        };
        for item in manifests {
            let key = listed_digest(&item).map(str::to_string);
            if key.is_none_or(|k| seen.insert(k)) {
                self.list.push(item);
            }
        }
        self.base.get_or_insert(object);
        Ok(())
    }
}

impl Fallback {
    fn read(layout: &dyn LayoutRead, index: &IndexFile, subject: &Digest) -> Result<Fallback> {
        let name = fallback_tag(subject);
        let positions = index.find_name(&name);
        let what = |i: usize| format!("fallback index {name} ({})", index.entries()[i].digest);
        if let [only] = positions[..] {
            let bytes = layout.read_document(&index.entries()[only])?;
            // The canonical path splices the bytes without parsing them: refuse here what Go
            // would read differently, as the raw path's parse does.
            differential::check(&bytes, Schema::ManifestLike, &what(only))?;
            let content = match canonical_array_end(&bytes, "manifests") {
                Some(end) => Content::Canonical { bytes, end },
                None => {
                    let mut raw = RawFallback::default();
                    raw.merge(&bytes, what(only), &mut HashSet::new())?;
                    Content::Raw(raw)
                }
            };
            return Ok(Fallback {
                name,
                positions,
                content,
            });
        }
        let mut raw = RawFallback::default();
        let mut seen = HashSet::new();
        for &i in &positions {
            let bytes = layout.read_document(&index.entries()[i])?;
            raw.merge(&bytes, what(i), &mut seen)?;
        }
        Ok(Fallback {
            name,
            positions,
            content: Content::Raw(raw),
        })
    }

    /// Lists `referrer` unless it is listed already; returns whether index.json changed.
    fn append(
        self,
        writer: &dyn DocumentStore,
        index: &mut IndexFile,
        referrer: &Descriptor,
    ) -> Result<bool> {
        let entry = descriptor_value(referrer)?;
        if let Content::Canonical { bytes, end } = &self.content {
            // In canonical JSON this text appears where the descriptor is listed (or, very
            // rarely, as an annotation: then the parse below decides).
            let needle = format!("\"digest\":\"{}\"", referrer.digest);
            if !contains(bytes, needle.as_bytes()) {
                use std::io::Read as _;
                let item = canonical::to_vec(&entry);
                let comma: &[u8] = if bytes[*end - 1] == b'[' { b"" } else { b"," };
                let mut spliced = bytes[..*end]
                    .chain(comma)
                    .chain(&item[..])
                    .chain(&bytes[*end..]);
                let media_type = media_type_of(bytes);
                let written = writer.write_document(&mut spliced)?;
                replace_entry(&self.name, &self.positions, index, &media_type, written)?;
                return Ok(true);
            }
        }
        self.edit(writer, index, |list| {
            if list
                .iter()
                .any(|v| listed_digest(v) == Some(referrer.digest.as_str()))
            {
                false
            } else {
                list.push(entry);
                true
            }
        })
    }

    /// Applies `edit` to the list and records the result: a new index (canonical JSON) under
    /// the tag, in the place of the old entry; an empty list drops the tag. Returns whether
    /// index.json changed.
    fn edit(
        self,
        writer: &dyn DocumentStore,
        index: &mut IndexFile,
        edit: impl FnOnce(&mut Vec<Value>) -> bool,
    ) -> Result<bool> {
        let RawFallback { base, mut list } = match self.content {
            Content::Raw(raw) => raw,
            Content::Canonical { bytes, .. } => {
                let mut raw = RawFallback::default();
                let what = format!("fallback index {}", self.name);
                raw.merge(&bytes, what, &mut HashSet::new())?;
                raw
            }
        };
        let changed = edit(&mut list);
        if !changed && self.positions.len() <= 1 {
            return Ok(false);
        }
        if list.is_empty() {
            let name = self.name.as_str();
            let removed = index.remove_where(|d| d.ref_name() == Some(name));
            return Ok(removed > 0);
        }
        let mut object = base.unwrap_or_default();
        object
            .entry("schemaVersion")
            .or_insert_with(|| Value::from(2));
        object
            .entry("mediaType")
            .or_insert_with(|| Value::from(OCI_INDEX));
        object.insert("manifests".into(), Value::Array(list));
        let media_type = object
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or(OCI_INDEX)
            .to_string();
        let written = writer.write_document(&mut &canonical::to_vec(&Value::Object(object))[..])?;
        replace_entry(&self.name, &self.positions, index, &media_type, written)?;
        Ok(true)
    }
}

/// Whether `haystack` contains `needle`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    haystack
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == first)
        .any(|(i, _)| haystack[i + 1..].starts_with(rest))
}

/// The top-level `mediaType` of an index (`OCI_INDEX` when it has none).
fn media_type_of(bytes: &[u8]) -> String {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct MediaType {
        media_type: Option<String>,
    }
    serde_json::from_slice::<MediaType>(bytes)
        .ok()
        .and_then(|m| m.media_type)
        .unwrap_or_else(|| OCI_INDEX.to_string())
}

/// Points the (first) entry of fallback tag `name` (at `positions`) at `written`, or adds one.
fn replace_entry(
    name: &str,
    positions: &[usize],
    index: &mut IndexFile,
    media_type: &str,
    written: crate::store::layout::WrittenBlob,
) -> Result<()> {
    match positions.first() {
        Some(&first) => {
            let mut entry = index.raw_entry(first).unwrap_or(Value::Null);
            if let Some(fields) = entry.as_object_mut() {
                fields.insert("mediaType".into(), Value::from(media_type));
                fields.insert("digest".into(), Value::from(written.digest.as_str()));
                fields.insert("size".into(), Value::from(written.size));
            }
            index.replace_raw(first, entry)?;
            let mut kept_first = false;
            index.remove_where(|d| {
                d.ref_name() == Some(name) && std::mem::replace(&mut kept_first, true)
            });
        }
        None => {
            let mut annotations = Annotations::new();
            annotations.insert(REF_NAME.to_string(), name.to_string());
            index.push_raw(descriptor_value(&Descriptor {
                annotations: Some(annotations),
                ..Descriptor::new(media_type, written.digest, written.size)
            })?)?;
        }
    }
    Ok(())
}

/// Where the array that the top-level key `key` holds ends (the offset of its `]`), provided
/// `bytes` are exactly what [`canonical::to_vec`] writes for the document they hold. `None`
/// for anything else — including canonical JSON this check is too strict for (floats, keys
/// with escapes, very deep nesting) — and the caller then parses the document.
fn canonical_array_end(bytes: &[u8], key: &str) -> Option<usize> {
    std::str::from_utf8(bytes).ok()?;
    let mut scanner = Scanner {
        bytes,
        pos: 0,
        key: key.as_bytes(),
        found: None,
    };
    if bytes.first() != Some(&b'{') {
        return None;
    }
    scanner.value(0, false)?;
    (scanner.pos == bytes.len()).then_some(())?;
    scanner.found
}

/// A validating pass over canonical JSON (see [`canonical_array_end`]).
struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    key: &'a [u8],
    found: Option<usize>,
}

impl Scanner<'_> {
    fn next(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// One value at nesting `depth`; `target` marks the array to report.
    fn value(&mut self, depth: usize, target: bool) -> Option<()> {
        if depth > 64 {
            return None;
        }
        match self.peek()? {
            b'{' => self.object(depth),
            b'[' => {
                self.pos += 1;
                if self.peek()? != b']' {
                    loop {
                        self.value(depth + 1, false)?;
                        if self.peek()? == b']' {
                            break;
                        }
                        (self.next()? == b',').then_some(())?;
                    }
                }
                if target {
                    self.found = Some(self.pos);
                }
                self.pos += 1;
                Some(())
            }
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    /// An object whose keys are unescaped and strictly increasing (so sorted, no duplicates).
    fn object(&mut self, depth: usize) -> Option<()> {
        self.pos += 1;
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        let mut previous: Option<(usize, usize)> = None;
        loop {
            (self.peek()? == b'"').then_some(())?;
            let (start, end, escaped) = self.string()?;
            if escaped {
                return None;
            }
            if let Some((ps, pe)) = previous {
                (self.bytes[ps..pe] < self.bytes[start..end]).then_some(())?;
            }
            previous = Some((start, end));
            (self.next()? == b':').then_some(())?;
            let target = depth == 0 && &self.bytes[start..end] == self.key;
            self.value(depth + 1, target)?;
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// A string escaped as serde_json escapes: `\"`, `\\`, `\b \f \n \r \t`, and `\u00xx`
    /// (lowercase) for other control characters; nothing else. Returns the span of its
    /// content and whether it has escapes.
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            match self.next()? {
                b'"' => return Some((start, self.pos - 1, escaped)),
                b'\\' => {
                    escaped = true;
                    match self.next()? {
                        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = self.bytes.get(self.pos..self.pos + 4)?;
                            self.pos += 4;
                            let digit = |b: u8| match b {
                                b'0'..=b'9' => Some(b - b'0'),
                                b'a'..=b'f' => Some(b - b'a' + 10),
                                _ => None,
                            };
                            (hex[0] == b'0' && hex[1] == b'0').then_some(())?;
                            let code = digit(hex[2])? * 16 + digit(hex[3])?;
                            let short = matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d);
                            (code < 0x20 && !short).then_some(())?;
                        }
                        _ => return None,
                    }
                }
                0x00..=0x1f => return None,
                _ => {}
            }
        }
    }

    /// An integer as serde_json writes it (no `-0`, no leading zeros, no fraction or
    /// exponent), short enough to be a 64-bit integer whatever its sign.
    fn integer(&mut self) -> Option<()> {
        if self.peek()? == b'-' {
            self.pos += 1;
            matches!(self.peek()?, b'1'..=b'9').then_some(())?;
        }
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = &self.bytes[start..self.pos];
        let well_formed =
            !digits.is_empty() && digits.len() <= 18 && (digits[0] != b'0' || digits.len() == 1);
        let no_fraction = !matches!(self.peek(), Some(b'.' | b'e' | b'E'));
        (well_formed && no_fraction).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.bytes[self.pos..].starts_with(word).then_some(())?;
        self.pos += word.len();
        Some(())
    }
}

/// Applies `edit` to the list of descriptors of `subject`'s fallback index (raw JSON) and
/// records the result in place of the old entry (see `Fallback`); an empty list drops the
/// tag. Returns whether index.json changed.
pub fn edit_fallback(
    writer: &dyn DocumentStore,
    index: &mut IndexFile,
    subject: &Digest,
    edit: impl FnOnce(&mut Vec<Value>) -> bool,
) -> Result<bool> {
    Fallback::read(writer.reader(), index, subject)?.edit(writer, index, edit)
}

/// Removes `referrer` from `subject`'s fallback index (dropping the tag when nothing is left).
pub fn unlist(
    writer: &dyn DocumentStore,
    index: &mut IndexFile,
    subject: &Digest,
    referrer: &Digest,
) -> Result<bool> {
    if index.find_name(&fallback_tag(subject)).is_empty() {
        return Ok(false);
    }
    edit_fallback(writer, index, subject, |list| {
        let before = list.len();
        list.retain(|v| listed_digest(v) != Some(referrer.as_str()));
        list.len() != before
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_scan_accepts_exactly_what_canonical_json_looks_like() {
        let document = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "x-vendor": {"n": -12, "t": true, "f": false, "z": null, "s": "a\"b\\c\nd\u{1}é/<>"},
            "manifests": [
                {"digest": Digest::sha256_of(b"a").to_string(), "size": 0, "urls": ["u"]},
                {"digest": Digest::sha256_of(b"b").to_string(), "annotations": {"k": "v"}},
            ],
        });
        let bytes = canonical::to_vec(&document);
        let end = canonical_array_end(&bytes, "manifests").expect("canonical");
        assert_eq!(bytes[end], b']');
        assert!(bytes[end + 1..].starts_with(b",\"mediaType\""));
        let empty = canonical::to_vec(&serde_json::json!({"manifests": [], "schemaVersion": 2}));
        let end = canonical_array_end(&empty, "manifests").unwrap();
        assert_eq!(&empty[end - 1..=end], b"[]");
        let text = String::from_utf8(bytes.clone()).unwrap();
        for other in [
            text.replacen(',', ", ", 1),                                // whitespace
            text.replacen("\"manifests\"", "\"zzz\"", 1),               // unsorted keys
            text.replacen("\"k\":\"v\"", "\"k\":\"v\",\"k\":\"w\"", 1), // duplicate key
            text.replacen("\\n", "\\u000a", 1),                         // long escape
            text.replacen("é/", "é\\/", 1),                             // needless escape
            text.replacen("-12", "-12.0", 1),                           // float
            text.replacen("-12", "-012", 1),                            // leading zero
            format!("{text} "),                                         // trailing space
            text.replacen("\"manifests\"", "\"manifestz\"", 1),         // no such key
        ] {
            assert_ne!(other, text);
            assert_eq!(
                canonical_array_end(other.as_bytes(), "manifests"),
                None,
                "{other}"
            );
        }
        assert_eq!(canonical_array_end(b"[]", "manifests"), None);
    }

    #[test]
    fn contains_finds_a_needle() {
        assert!(contains(b"abcabd", b"abd"));
        assert!(!contains(b"abcab", b"abd"));
        assert!(contains(b"x", b""));
    }
}
