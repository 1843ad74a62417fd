//! `ocikit rm`

use super::output::print_json;

/// Remove a name, or a manifest and its referrers, from a layout's index.json.
///
/// LAYOUT:NAME removes the entry carrying the name. LAYOUT@DIGEST removes every entry of that
/// manifest (named or not) and, recursively, its referrers (signatures of SBOMs of it…): their
/// entries, their sha256-<hex> fallback tags and their listing in fallback indexes; when the
/// manifest is an index, also the referrers of its children that no other entry reaches. A
/// referrer that has a name of its own is kept. Blobs stay in blobs/ until `ocikit gc`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// LAYOUT:NAME or LAYOUT@DIGEST.
    #[arg(value_name = "LAYOUT:NAME|LAYOUT@DIGEST")]
    target: String,
    /// With LAYOUT@DIGEST, remove only the manifest's own entries and leave its referrers and
    /// their bookkeeping in place.
    #[arg(long)]
    keep_referrers: bool,
    /// Print what was removed as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let reference = super::args::reference(&args.target)?;
    let layout = ocikit::store::open_write(&reference)?;
    match (reference.name.as_deref(), reference.digest.as_ref()) {
        (Some(name), None) => {
            if args.keep_referrers {
                anyhow::bail!("--keep-referrers applies to LAYOUT@DIGEST, not to a name");
            }
            let removed = ocikit::ops::tag::remove_name(&layout, name)?;
            if args.json {
                print_json(&serde_json::json!({ "names": removed }))?;
            }
            for name in removed {
                eprintln!("Removed {name}");
            }
        }
        (None, Some(digest)) => {
            let removal = ocikit::ops::tag::remove_digest(&layout, digest, args.keep_referrers)?;
            if args.json {
                print_json(&removal)?;
            }
            let own = removal
                .entries
                .iter()
                .filter(|e| !removal.referrers.contains(&e.digest));
            for entry in own {
                match &entry.name {
                    Some(name) => eprintln!("Removed {name} ({})", entry.digest),
                    None => eprintln!("Removed the untagged entry of {}", entry.digest),
                }
            }
            for referrer in &removal.referrers {
                eprintln!("Removed referrer {referrer}");
            }
            for kept in &removal.kept_named {
                eprintln!(
                    "Kept referrer {}: it is named {}",
                    kept.digest,
                    kept.name.as_deref().unwrap_or("")
                );
            }
            for tag in &removal.dropped_tags {
                eprintln!("Dropped fallback tag {tag}");
            }
            for tag in &removal.updated_tags {
                eprintln!("Updated fallback tag {tag}");
            }
        }
        _ => anyhow::bail!(
            "{} names no entry; write LAYOUT:NAME to remove a name or LAYOUT@DIGEST to remove a manifest",
            args.target
        ),
    }
    Ok(super::EXIT_OK)
}
