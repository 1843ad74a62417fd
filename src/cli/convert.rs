//! `ocikit convert`

use ocikit::ops::convert::{convert, ConvertSpec, Converted, NEEDS_NAME};

use super::output::{count, print_json, print_written};
use crate::cli::progress::Bar;

/// Convert an image, or an index of images, to another form in the same layout.
///
/// --compression recompresses every layer (a layer already in that compression is kept as
/// it is), --to-oci turns Docker v2 schema2 manifests, lists and configs into OCI ones, and
/// --distributable turns non-distributable and foreign layers into ordinary ones; they
/// combine. The uncompressed layers do not change (each layer's diff_id is checked against the
/// configuration as it is recompressed, and a mismatch stops the conversion), so the
/// configuration's bytes do not either; every document that changes is written anew, an
/// index with every image in it converted (other members, such as attestation manifests, kept
/// as they are). Each distinct layer is converted once, layers in parallel, each blob read
/// once and written once; the same input gives the same digests on every run and machine.
/// Nothing is written when any layer fails. The name (every name of the converted document)
/// moves to the new digest unless --name gives a new one; the old documents stay until gc.
/// Referrers of the old documents are counted; --copy-referrers attaches copies of them to
/// the new ones.
///
/// --artifact-to-image, on its own, turns a pre-release artifact manifest
/// (application/vnd.oci.artifact.manifest.v1+json) into an image-spec 1.1 manifest with the
/// same artifactType, subject,
/// annotations and blobs (as layers, with the empty descriptor as config), and points the
/// layout's bookkeeping at it: index.json entries of the old manifest are replaced in place and
/// its subject's fallback-tag index lists the new one.
///
/// Prints the new digest on stdout.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("mode")
        .required(true)
        .multiple(true)
        .args(["artifact_to_image", "compression", "to_oci", "distributable"])
))]
pub struct Args {
    /// What to convert: LAYOUT[:NAME][@DIGEST] (a layout directory; archives cannot be changed
    /// in place: import them first).
    #[arg(value_name = "REF")]
    source: String,
    /// Convert a pre-release artifact manifest into an image-spec 1.1 manifest with
    /// artifactType.
    #[arg(long, conflicts_with_all = ["compression", "to_oci", "distributable", "name", "copy_referrers"])]
    artifact_to_image: bool,
    /// Recompress every layer: zstd, gzip or none. gzip past 1 MiB is compressed in blocks on
    /// several threads, to the same bytes whatever their number.
    #[arg(long, value_enum, value_name = "ALGORITHM")]
    compression: Option<crate::cli::CompressionArg>,
    /// Compression level: gzip 0-9 (default 6), zstd 1-22 (default 3).
    #[arg(long, value_name = "N", requires = "compression")]
    level: Option<i32>,
    /// Compression threads per layer (default: the number of cores, at most 8). The bytes
    /// written do not depend on it.
    #[arg(long, value_name = "N", requires = "compression")]
    threads: Option<u32>,
    /// Turn Docker v2 schema2 manifests, manifest lists, configs and layer media types into
    /// OCI ones (the bytes of layers and configs are kept); implies --distributable.
    #[arg(long)]
    to_oci: bool,
    /// Turn non-distributable and foreign layers into ordinary ones, without urls; the layer
    /// blob must be in the layout.
    #[arg(long)]
    distributable: bool,
    /// Name the converted image NAME (it moves from any other image), leaving the old name
    /// where it is.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Attach copies of the old documents' referrers to the new ones (signatures over the old
    /// digest will not verify against the new one).
    #[arg(long)]
    copy_referrers: bool,
    #[command(flatten)]
    platform: super::PlatformArg,
    #[command(flatten)]
    limits: super::LimitArgs,
    /// Print what was done as JSON (with --artifact-to-image: {from, to, entries, tags,
    /// orphanedReferrers}; otherwise {from, to, documents, layers, layersKept, names,
    /// movedFrom, referrers}).
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    if args.artifact_to_image {
        return artifact_to_image(args);
    }
    let reference = super::args::reference(&args.source)?;
    let layout = ocikit::store::open_write(&reference)?;
    let spec = ConvertSpec {
        compression: args.compression.map(Into::into),
        level: args.level,
        threads: args.threads,
        to_oci: args.to_oci,
        distributable: args.distributable,
        copy_referrers: args.copy_referrers,
        name: args.name,
        limits: args.limits.limits(),
    };
    let bar = Bar::new("converting");
    let converted = convert(
        &layout,
        &reference,
        args.platform.platform.as_ref(),
        &spec,
        &bar,
    )
    .map_err(name_hint)?;
    drop(bar);
    print_written(args.json, &converted, &converted.to.digest)?;
    report(&converted, spec.copy_referrers);
    Ok(super::EXIT_OK)
}

/// Adds the flag that names a converted image that has no name to move.
fn name_hint(error: ocikit::Error) -> anyhow::Error {
    match &error {
        ocikit::Error::InvalidInput { reason, .. } if reason.ends_with(NEEDS_NAME) => {
            anyhow::anyhow!("{error} (--name NAME gives it one)")
        }
        _ => error.into(),
    }
}

fn report(converted: &Converted, copied: bool) {
    let recompressed = converted.layers.iter().filter(|l| l.recompressed).count();
    let retyped = converted.layers.len() - recompressed;
    if converted.to.digest == converted.from.digest {
        eprintln!(
            "{} needed no conversion ({} kept)",
            converted.from.digest,
            count(converted.layers_kept, "layer")
        );
    } else {
        eprintln!(
            "Converted {} to {} ({} recompressed, {} retyped, {} kept; {})",
            converted.from.digest,
            converted.to.digest,
            count(recompressed, "layer"),
            retyped,
            converted.layers_kept,
            count(converted.documents.len(), "new document"),
        );
    }
    if !converted.names.is_empty() {
        eprintln!("Named {}", converted.names.join(", "));
    }
    let referrers = converted.referrers.len();
    if referrers == 0 {
        return;
    }
    if copied {
        let copies = converted
            .referrers
            .iter()
            .filter(|r| r.copy.is_some())
            .count();
        eprintln!(
            "warning: attached copies of {} of {} to the new digests; signatures over the old digests will not verify against the new ones",
            copies,
            count(referrers, "referrer")
        );
        for unreadable in converted.referrers.iter().filter(|r| r.copy.is_none()) {
            eprintln!(
                "warning: referrer {} of {} could not be read and was not copied",
                unreadable.referrer, unreadable.subject
            );
        }
    } else {
        eprintln!(
            "note: the old documents have {}; they stay with the old digests (--copy-referrers attaches copies to the new ones)",
            count(referrers, "referrer")
        );
    }
}

fn artifact_to_image(args: Args) -> anyhow::Result<u8> {
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
