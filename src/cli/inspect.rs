//! `ocikit inspect`

use std::io::Write;

use ocikit::ops::inspect::Inspection;

use super::output::{human_size, print_json, stdout, Table};

/// Show a manifest or index: config summary, layers with sizes and compression, platforms.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to inspect: LAYOUT[:NAME][@DIGEST].
    #[arg(value_name = "REF")]
    reference: String,
    /// Write the manifest's bytes exactly as stored, nothing else.
    #[arg(long, conflicts_with = "json")]
    raw: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    platform: super::PlatformArg,
    #[command(flatten)]
    limits: super::LimitArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let reference = super::args::reference(&args.reference)?;
    let layout = ocikit::store::open_read(
        &reference,
        ocikit::store::Check::Layout,
        &args.limits.limits(),
    )?;
    let resolved = ocikit::graph::resolve::resolve(
        layout.as_ref(),
        &reference,
        args.platform.platform.as_ref(),
    )?;
    if args.raw {
        let mut out = std::io::stdout().lock();
        out.write_all(&resolved.bytes)?;
        out.flush()?;
        return Ok(super::EXIT_OK);
    }
    let inspection = ocikit::ops::inspect::inspect(layout.as_ref(), &resolved)?;
    if args.json {
        print_json(&inspection)?;
    } else {
        let mut out = stdout();
        print_human(&inspection, &mut out)?;
        out.flush()?;
    }
    Ok(super::EXIT_OK)
}

fn print_human(i: &Inspection, out: &mut dyn Write) -> anyhow::Result<()> {
    let field = |out: &mut dyn Write, key: &str, value: &str| writeln!(out, "{key:<14} {value}");
    if let Some(name) = &i.name {
        field(out, "Name:", name)?;
    }
    field(out, "Digest:", i.digest.as_str())?;
    field(out, "Media type:", &i.media_type)?;
    field(
        out,
        "Size:",
        &format!("{} ({} bytes)", human_size(i.size), i.size),
    )?;
    if let Some(p) = &i.platform {
        field(out, "Platform:", p)?;
    }
    if let Some(t) = &i.artifact_type {
        field(out, "Artifact type:", t)?;
    }
    if let Some(s) = &i.subject {
        field(out, "Subject:", &format!("{} ({})", s.digest, s.media_type))?;
    }
    if !i.annotations.is_empty() {
        writeln!(out, "Annotations:")?;
        for (k, v) in &i.annotations {
            writeln!(out, "  {k}: {v}")?;
        }
    }
    if let Some(c) = &i.config {
        field(
            out,
            "Config:",
            &format!("{} ({}, {})", c.digest, c.media_type, human_size(c.size)),
        )?;
        let sub =
            |out: &mut dyn Write, key: &str, value: &str| writeln!(out, "  {key:<12} {value}");
        if let Some(created) = &c.created {
            sub(out, "Created:", created)?;
        }
        if let Some(e) = &c.entrypoint {
            sub(out, "Entrypoint:", &serde_json::to_string(e)?)?;
        }
        if let Some(cmd) = &c.cmd {
            sub(out, "Cmd:", &serde_json::to_string(cmd)?)?;
        }
        if let Some(w) = &c.working_dir {
            sub(out, "WorkingDir:", w)?;
        }
        if let Some(u) = &c.user {
            sub(out, "User:", u)?;
        }
        for env in &c.env {
            sub(out, "Env:", env)?;
        }
        for (k, v) in &c.labels {
            sub(out, "Label:", &format!("{k}={v}"))?;
        }
        if c.diff_ids > 0 || c.history > 0 {
            sub(
                out,
                "Rootfs:",
                &format!("{} diff_ids, {} history entries", c.diff_ids, c.history),
            )?;
        }
    }
    if !i.layers.is_empty() {
        writeln!(out, "Layers:")?;
        let mut table = Table::new(&["  DIGEST", "COMPRESSION", "SIZE", "MEDIA TYPE / TITLE"]);
        for l in &i.layers {
            let compression = match (l.compression, l.detected, l.present) {
                _ if l.problem.is_some() => "unreadable".to_string(),
                (_, _, false) => "missing".to_string(),
                (Some(declared), Some(seen), _) if declared != seen => {
                    format!("{declared} (bytes are {seen}!)")
                }
                (Some(declared), None, _) if declared != "none" => {
                    format!("{declared} (bytes are not!)")
                }
                (Some(declared), _, _) => declared.to_string(),
                (None, Some(seen), _) => seen.to_string(),
                (None, None, _) => "-".to_string(),
            };
            let what = match &l.title {
                Some(t) => format!("{} ({t})", l.media_type),
                None => l.media_type.clone(),
            };
            table.push(vec![
                format!("  {}", l.digest.short()),
                compression,
                human_size(l.size),
                what,
            ]);
        }
        table.write(out)?;
        for l in i.layers.iter().filter(|l| l.problem.is_some()) {
            let problem = l.problem.as_deref().unwrap_or_default();
            writeln!(out, "  {}: {problem}", l.digest.short())?;
        }
    }
    if !i.manifests.is_empty() {
        writeln!(out, "Manifests:")?;
        let mut table = Table::new(&["  DIGEST", "PLATFORM", "SIZE", "MEDIA TYPE"]);
        for m in &i.manifests {
            table.push(vec![
                format!("  {}", m.digest.short()),
                m.platform.clone().unwrap_or_else(|| "-".into()),
                human_size(m.size),
                m.artifact_type
                    .clone()
                    .unwrap_or_else(|| m.media_type.clone()),
            ]);
        }
        table.write(out)?;
    }
    Ok(())
}
