//! `ocikit convert`

use super::output::print_json;

/// Convert a manifest to another form.
///
/// For now only --artifact-to-image is available, so that flag is required: it turns a
/// pre-release application/vnd.oci.artifact.manifest.v1+json into an image-spec 1.1 manifest
/// with the same artifactType, subject, annotations and blobs (as layers, with the empty
/// descriptor as config), and points the layout's bookkeeping at it: index.json entries of the
/// old manifest are replaced in place and its subject's fallback-tag index lists the new one.
/// Re-compressing layers comes in a later version. Prints the new manifest digest on stdout.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to convert: LAYOUT[:NAME][@DIGEST].
    #[arg(value_name = "REF")]
    source: String,
    /// Convert a pre-release artifact manifest into an image-spec 1.1 manifest with
    /// artifactType (required for now: it is the only conversion available).
    #[arg(long, required = true)]
    artifact_to_image: bool,
    #[command(flatten)]
    platform: super::PlatformArg,
    /// Print what was done as JSON: {from, to, entries, tags, orphanedReferrers}.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    debug_assert!(args.artifact_to_image);
    let reference = super::args::reference(&args.source)?;
    let layout = ocikit::store::open_write(&reference)?;
    let converted = ocikit::ops::artifact::artifact_to_image(
        &layout,
        &reference,
        args.platform.platform.as_ref(),
    )?;
    if args.json {
        print_json(&converted)?;
    } else {
        println!("{}", converted.to.digest);
    }
    eprintln!(
        "Converted {} to {} ({} index.json entr{}, {} fallback tag{})",
        converted.from.digest,
        converted.to.digest,
        converted.entries,
        if converted.entries == 1 { "y" } else { "ies" },
        converted.tags.len(),
        if converted.tags.len() == 1 { "" } else { "s" }
    );
    for referrer in &converted.orphaned_referrers {
        eprintln!(
            "note: referrer {referrer} names the old manifest as its subject; a subject cannot change without changing the referrer's digest"
        );
    }
    Ok(super::EXIT_OK)
}
