//! `ocikit gc`

use std::io::Write;

use ocikit::ops::gc::{Options, Was};

use super::output::{human_size, print_json, stdout};

/// Remove blobs nothing references, keeping referrers (signatures, SBOMs, …) of what is kept.
///
/// Roots are every index.json entry, tagged or untagged, except referrer bookkeeping. Marking
/// follows indexes, manifests, configs and layers; referrers of kept manifests are kept, and
/// theirs (blob-only referrers too: blobs/ is scanned for them). Referrers whose subject is not
/// kept are orphans and go with their bookkeeping. index.json is rewritten before any blob is
/// deleted, and the whole run holds the layout's blobs lock exclusively, so concurrent ocikit
/// writers never lose a blob they are about to reference. If a reachable document cannot be
/// read, gc stops before deleting anything.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The layout directory.
    layout: String,
    /// List what would be removed — each blob with its size and what it was (manifest, index,
    /// referrer, config, layer, or unreferenced blob) — and change nothing.
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// Keep referrers whose subject is not kept, and their fallback-tag indexes.
    #[arg(long)]
    keep_orphans: bool,
    /// Also drop untagged index.json entries that are not referrers of something kept.
    #[arg(long)]
    prune_untagged: bool,
    /// Print what was (or would be) removed as JSON: {dryRun, removedBlobs: [{digest, size,
    /// was, of}], removedBytes, keptBlobs, keptBytes, removedEntries: [{digest, name, reason}],
    /// removedTempFiles, skipped}. was is manifest, index, referrer, config, layer or
    /// unreferenced; of is the manifest a config or layer belonged to, or a referrer's subject.
    #[arg(long)]
    json: bool,
    /// Also list every removed blob (a dry run always lists them).
    #[arg(long, short)]
    verbose: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let reference = super::args::whole_layout(&args.layout, "gc")?;
    let layout = ocikit::store::open_write(&reference)?;
    let mut options = Options::default();
    options.dry_run = args.dry_run;
    options.keep_orphans = args.keep_orphans;
    options.prune_untagged = args.prune_untagged;
    let outcome = ocikit::ops::gc::gc(&layout, &options)?;
    if args.json {
        print_json(&outcome)?;
        return Ok(super::EXIT_OK);
    }
    let mut out = stdout();
    let (verb, entries_verb) = if outcome.dry_run {
        ("Would remove", "would go")
    } else {
        ("Removed", "went")
    };
    for entry in &outcome.removed_entries {
        writeln!(
            out,
            "index.json entry {} {} {entries_verb}: {}",
            entry.name.as_deref().unwrap_or("(untagged)"),
            entry.digest.short(),
            entry.reason
        )?;
    }
    if args.verbose || outcome.dry_run {
        for blob in &outcome.removed_blobs {
            let of = match (&blob.of, blob.was) {
                (Some(subject), Was::Referrer) => format!(" of subject {}", subject.short()),
                (Some(manifest), _) => format!(" of manifest {}", manifest.short()),
                (None, _) => String::new(),
            };
            writeln!(
                out,
                "{verb} {} {} ({}){of}",
                blob.was.name(),
                blob.digest,
                human_size(blob.size)
            )?;
        }
    }
    for temp in &outcome.removed_temp_files {
        writeln!(out, "{verb} leftover temp file {temp}")?;
    }
    for skipped in &outcome.skipped {
        writeln!(out, "Left alone: {skipped}")?;
    }
    writeln!(
        out,
        "{verb} {} blobs ({}); kept {} blobs ({})",
        outcome.removed_blobs.len(),
        human_size(outcome.removed_bytes),
        outcome.kept_blobs,
        human_size(outcome.kept_bytes)
    )?;
    out.flush()?;
    Ok(super::EXIT_OK)
}
