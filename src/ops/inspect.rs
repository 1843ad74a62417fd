//! A summary of one manifest or index: what `ocikit inspect` shows.

use std::io::Read;

use serde::Serialize;

use crate::error::Result;
use crate::graph::resolve::Resolved;
use crate::spec::digest::Digest;
use crate::spec::document::media_type::{self, Compression, Kind};
use crate::spec::document::{
    parse_document, Annotations, Descriptor, Document, ImageConfig, Schema,
};
use crate::spec::platform::Platform;
use crate::store::layout::LayoutRead;

/// Everything `inspect` reports.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    pub name: Option<String>,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(skip_serializing_if = "Annotations::is_empty")]
    pub annotations: Annotations,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigSummary>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerSummary>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<ChildSummary>,
}

/// The parts of a config people look at.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ConfigSummary {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Annotations::is_empty")]
    pub labels: Annotations,
    pub diff_ids: usize,
    pub history: usize,
}

/// One layer (or artifact blob).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LayerSummary {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// Compression the media type declares, for layers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<&'static str>,
    /// Compression the first bytes show, when the blob is present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The blob is in the layout (readable or not).
    pub present: bool,
    /// Why a present blob cannot be read (permissions, not a regular file…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One manifest of an index.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ChildSummary {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

/// Builds the inspection of a resolved document, reading its config and sniffing its layers.
pub fn inspect(layout: &dyn LayoutRead, resolved: &Resolved) -> Result<Inspection> {
    let d = &resolved.descriptor;
    let mut out = Inspection {
        name: resolved.name.clone(),
        digest: d.digest.clone(),
        media_type: d.media_type.clone(),
        size: d.size,
        // As `ls` shows it: artifactType, else a config media type that is not an image config's
        // (an artifact of the oras 1.0 convention), else the descriptor's own artifactType.
        artifact_type: resolved
            .document
            .listed_artifact_type()
            .or(d.artifact_type.as_deref())
            .map(str::to_string),
        platform: d.platform.as_ref().map(Platform::to_string),
        subject: resolved.document.subject().cloned(),
        annotations: resolved.document.annotations().cloned().unwrap_or_default(),
        config: None,
        layers: Vec::new(),
        manifests: Vec::new(),
    };
    match &resolved.document {
        Document::Manifest(m) => {
            if let Some(c) = &m.config {
                let summary = summarize_config(layout, c)?;
                if out.platform.is_none() {
                    out.platform = summary.platform.clone();
                }
                out.config = Some(summary);
            }
            out.layers = m
                .content()
                .iter()
                .map(|l| summarize_layer(layout, l))
                .collect();
        }
        Document::Index(index) => {
            out.artifact_type = index.artifact_type.clone();
            out.manifests = index
                .manifests
                .iter()
                .map(|m| ChildSummary {
                    digest: m.digest.clone(),
                    media_type: m.media_type.clone(),
                    size: m.size,
                    platform: m.platform.as_ref().map(Platform::to_string),
                    artifact_type: m.artifact_type.clone(),
                })
                .collect();
        }
    }
    Ok(out)
}

fn summarize_config(layout: &dyn LayoutRead, c: &Descriptor) -> Result<ConfigSummary> {
    let mut summary = ConfigSummary {
        digest: c.digest.clone(),
        media_type: c.media_type.clone(),
        size: c.size,
        platform: None,
        created: None,
        entrypoint: None,
        cmd: None,
        env: Vec::new(),
        working_dir: None,
        user: None,
        labels: Annotations::new(),
        diff_ids: 0,
        history: 0,
    };
    if media_type::kind(&c.media_type) != Kind::Config {
        return Ok(summary);
    }
    let bytes = layout.read_document(c)?;
    let config: ImageConfig =
        parse_document(&bytes, Schema::Config, &format!("config {}", c.digest))?;
    if let (Some(os), Some(architecture)) = (&config.os, &config.architecture) {
        summary.platform = Some(
            Platform {
                os: os.clone(),
                architecture: architecture.clone(),
                variant: config.variant.clone(),
                ..Platform::default()
            }
            .to_string(),
        );
    }
    summary.created = config.created.clone();
    summary.diff_ids = config.rootfs.as_ref().map_or(0, |r| r.diff_ids.len());
    summary.history = config.history.len();
    if let Some(rc) = config.config {
        summary.entrypoint = rc.entrypoint;
        summary.cmd = rc.cmd;
        summary.env = rc.env.unwrap_or_default();
        summary.working_dir = rc.working_dir.filter(|w| !w.is_empty());
        summary.user = rc.user.filter(|u| !u.is_empty());
        summary.labels = rc.labels.unwrap_or_default();
    }
    Ok(summary)
}

fn summarize_layer(layout: &dyn LayoutRead, l: &Descriptor) -> LayerSummary {
    let declared = match media_type::kind(&l.media_type) {
        Kind::Layer(c) => Some(c.name()),
        _ => None,
    };
    let (present, detected, problem) = match sniff(layout, &l.digest) {
        Ok(detected) => (true, detected, None),
        Err(crate::error::Error::BlobNotFound { .. }) => (false, None, None),
        Err(e) => (true, None, Some(e.to_string())),
    };
    LayerSummary {
        digest: l.digest.clone(),
        media_type: l.media_type.clone(),
        size: l.size,
        compression: declared,
        detected: detected.map(Compression::name),
        title: l
            .annotation(crate::spec::document::TITLE)
            .map(str::to_string),
        present,
        problem,
    }
}

/// The compression shown by a blob's magic bytes (`None`: not compressed in a known way);
/// an error when the blob is absent or cannot be read.
fn sniff(layout: &dyn LayoutRead, digest: &Digest) -> Result<Option<Compression>> {
    let mut head = [0u8; 8];
    let mut reader = layout.open_blob_raw(digest)?;
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(crate::error::Error::io(
                    "cannot read blob",
                    digest.to_string(),
                    e,
                ))
            }
        }
    }
    Ok(crate::codec::sniff::sniff(&head[..n]).compression())
}
