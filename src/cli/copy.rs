//! `ocikit copy`

use ocikit::ops::copy::{Options, Target};
use ocikit::store::layout::Link;

use super::output::{human_size, print_json};
use super::progress::Bar;
use super::transfer::{count, hint, placements, report, ArchiveArgs, TakeArgs};

/// Copy images, with their referrers, between layouts and archives.
///
/// SRC is any REF: a layout directory or archive, and the image a NAME or DIGEST selects (or
/// the one image, or every entry with --all). DST is a layout directory, created when missing,
/// or a new archive: a DST with the prefix oci-archive: or docker-archive:, an existing file,
/// or a path that does not exist and ends in .tar, .tar.gz, .tgz, .tar.zst or .tzst. DST:NAME
/// gives the one image copied that name. The closure is copied: indexes, manifests, configs,
/// layers, and the referrers of all of them (and theirs). Blobs the destination has are
/// skipped; the others are linked or copied as --link says, each copied one verified against
/// its digest. Names are recorded last, under the layout's locks; a name the destination gives
/// to another image is an error unless --force.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to copy: LAYOUT[:NAME][@DIGEST] (a directory or an archive).
    #[arg(value_name = "SRC")]
    source: String,
    /// Where to: LAYOUT[:NAME], oci-archive:FILE or docker-archive:FILE.
    #[arg(value_name = "DST")]
    destination: String,
    /// Copy every index.json entry of SRC (names, untagged images, referrers).
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    take: TakeArgs,
    /// How blobs get into a layout on the same file system: auto (a reflink where the file
    /// system makes them, else a hard link, else a copy), reflink, hardlink (each an error
    /// when impossible) or copy. A linked blob is the source's file (its size is checked, its
    /// bytes are not read); a copied one is verified against its digest.
    #[arg(long, value_enum, value_name = "MODE", default_value = "auto")]
    link: LinkArg,
    /// Move a name the destination gives to another image; replace an existing archive.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    archive: ArchiveArgs,
    /// Print what was copied as JSON: {images, referrers, blobs: {present, reflinked,
    /// hardlinked, copied, bytes}, names: {added, replaced, unchanged, untagged, fallbacks},
    /// foreign, warnings, destination, created, archiveBytes}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: super::LimitArgs,
}

/// `--link`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LinkArg {
    Auto,
    Hardlink,
    Reflink,
    Copy,
}

impl From<LinkArg> for Link {
    fn from(arg: LinkArg) -> Link {
        match arg {
            LinkArg::Auto => Link::Auto,
            LinkArg::Hardlink => Link::Hardlink,
            LinkArg::Reflink => Link::Reflink,
            LinkArg::Copy => Link::Copy,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let source_ref = super::args::reference(&args.source)?;
    if args.all && (source_ref.name.is_some() || source_ref.digest.is_some()) {
        anyhow::bail!(
            "--all copies every entry of a layout; give just SRC's LAYOUT, not {}",
            args.source
        );
    }
    let destination = super::args::reference(&args.destination)?;
    let source = ocikit::store::open_read(
        &source_ref,
        ocikit::store::Check::Layout,
        &args.limits.limits(),
    )?;
    let target = Target::of(&destination);
    let archive_path = match &target {
        Target::Archive(path, _) => Some(path.as_path()),
        Target::Layout(_) => None,
    };
    let options = Options::new(args.take.options(), args.archive.options(archive_path)?)
        .with_all(args.all)
        .with_link(args.link.into())
        .with_force(args.force)
        .with_repository(args.archive.repository());
    let bar = Bar::new("copying");
    let copied = ocikit::ops::copy::copy(&*source, &source_ref, &destination, &options, &bar)
        .map_err(|e| hint(e, "moves the name, or replaces the archive"))?;
    drop(bar);
    if args.json {
        print_json(&copied)?;
    }
    let written = &copied.written;
    let size = copied
        .archive_bytes
        .map(|b| format!(", {}", human_size(b)))
        .unwrap_or_default();
    eprintln!(
        "Copied {} and {} to {}{}{size}: {}",
        count(written.images.len(), "image"),
        count(written.referrers, "referrer"),
        copied.destination.display(),
        if copied.created { " (new)" } else { "" },
        placements(&written.blobs)
    );
    report(written);
    Ok(super::EXIT_OK)
}
