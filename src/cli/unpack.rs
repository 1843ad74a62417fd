//! `ocikit unpack`

use std::path::PathBuf;

use super::output::{human_size, print_json};
use super::progress::Bar;

/// Unpack an image's root file system into a directory: its layers applied in order, with OCI
/// whiteouts (.wh.NAME removes NAME of lower layers; .wh..wh..opq hides the lower children of
/// its directory), hard links, symlinks, modes, times and extended attributes where the file
/// system allows; owners and device nodes when run as root. Nothing is written outside DIR:
/// every path resolves inside it as in a chroot, also through links made by earlier layers.
/// Each layer is checked against its digest and its diff_id as it is unpacked; on a failure
/// what was unpacked is removed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image: LAYOUT[:NAME][@DIGEST] (a directory or an archive).
    #[arg(value_name = "REF")]
    source: String,
    /// The directory to unpack into: empty or missing (it is created).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    #[command(flatten)]
    platform: super::PlatformArg,
    /// Do not apply the owners (uid/gid) recorded in the layers when run as root (without
    /// root they are never applied).
    #[arg(long)]
    no_chown: bool,
    /// On a failure (a corrupt layer, a refused entry), leave what was unpacked in DIR
    /// instead of removing it, and say it is partial.
    #[arg(long)]
    keep_partial: bool,
    /// Print what was unpacked as JSON: {manifest, dir, layers: [{digest, diffId, size,
    /// entries}], warnings}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: super::LimitArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let reference = super::args::reference(&args.source)?;
    let layout = ocikit::store::open_read(
        &reference,
        ocikit::store::Check::Layout,
        &args.limits.limits(),
    )?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let mut options = ocikit::ops::unpack::Options::new(args.limits.limits());
    options.owners = root && !args.no_chown;
    options.devices = root;
    options.keep_partial = args.keep_partial;
    let bar = Bar::new("unpacking");
    let unpacked = ocikit::ops::unpack::unpack(
        layout.as_ref(),
        &reference,
        args.platform.platform.as_ref(),
        &args.dir,
        &options,
        &bar,
    )
    .map_err(|e| match e {
        e @ ocikit::Error::NeedsPlatform { .. } => {
            anyhow::anyhow!("{e}; choose it with --platform OS/ARCH")
        }
        e @ ocikit::Error::Partial { .. } => e.into(),
        e if !args.keep_partial
            && !matches!(
                e,
                ocikit::Error::Conflict { .. } | ocikit::Error::NameNotFound { .. }
            ) =>
        {
            anyhow::anyhow!(
                "{e}; nothing was left in {} (--keep-partial keeps what was unpacked)",
                args.dir.display()
            )
        }
        e => e.into(),
    })?;
    drop(bar);
    for warning in &unpacked.warnings {
        eprintln!("warning: {warning}");
    }
    if args.json {
        print_json(&unpacked)?;
    }
    let size: u64 = unpacked.layers.iter().map(|l| l.size).sum();
    let count = unpacked.layers.len();
    eprintln!(
        "Unpacked {} ({count} layer{}, {}) into {}",
        unpacked.manifest,
        if count == 1 { "" } else { "s" },
        human_size(size),
        unpacked.dir.display()
    );
    Ok(super::EXIT_OK)
}
