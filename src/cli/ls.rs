//! `ocikit ls`

use std::io::Write;

use ocikit::spec::document::media_type::short_name;

use super::output::{human_size, print_json, stdout, Table};

/// List a layout's images, indexes and artifacts.
///
/// Shows each index.json entry's name, short digest, media type, artifact type, platforms,
/// total size (the manifest and every blob it references, each once) and how many referrers
/// (signatures, SBOMs, …) point at it. Every entry whose manifest has a subject counts under
/// that subject, named or not; referrer bookkeeping (untagged entries with a subject,
/// sha256-<hex> fallback-tag indexes) is not listed itself, while a named referrer is listed
/// under its name as well. Exits 2 if some entry could not be read, after listing what could.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The layout directory or archive.
    layout: String,
    /// Print JSON: {"rows": [{name, digest, mediaType, artifactType, platforms, size,
    /// referrers, problem}], "detachedReferrers": N}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: super::LimitArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let reference = super::args::whole_layout(&args.layout, "ls")?;
    let layout = ocikit::store::open_read(
        &reference,
        ocikit::store::Check::Layout,
        &args.limits.limits(),
    )?;
    let catalog = ocikit::ops::catalog::load(layout.as_ref())?;
    if args.json {
        print_json(&catalog)?;
    } else {
        let mut table = Table::new(&[
            "NAME",
            "DIGEST",
            "TYPE",
            "ARTIFACT TYPE",
            "PLATFORMS",
            "SIZE",
            "REFERRERS",
        ]);
        for row in &catalog.rows {
            table.push(vec![
                row.name.clone().unwrap_or_else(|| "<none>".into()),
                row.digest.short().to_string(),
                short_name(&row.media_type).to_string(),
                row.artifact_type.clone().unwrap_or_else(|| "-".into()),
                if row.platforms.is_empty() {
                    "-".into()
                } else {
                    row.platforms.join(",")
                },
                row.size.map(human_size).unwrap_or_else(|| "?".into()),
                row.referrers.to_string(),
            ]);
        }
        let mut out = stdout();
        table.write(&mut out)?;
        if catalog.detached_referrers > 0 {
            writeln!(
                out,
                "({} referrers point at manifests that are not listed here)",
                catalog.detached_referrers
            )?;
        }
        out.flush()?;
    }
    let problems: Vec<_> = catalog
        .rows
        .iter()
        .filter_map(|r| r.problem.as_ref().map(|p| (r, p)))
        .collect();
    for (row, problem) in &problems {
        eprintln!(
            "error: {} ({}): {problem}",
            row.name.as_deref().unwrap_or("<none>"),
            row.digest
        );
    }
    Ok(if problems.is_empty() {
        super::EXIT_OK
    } else {
        super::EXIT_FAILURE
    })
}
