//! `ocikit rm`

use ocikit::reference::Reference;

/// Remove a name from a layout's index.json.
///
/// The entry carrying the name goes; the manifest's blobs stay in blobs/ until `ocikit gc`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// LAYOUT:NAME to remove.
    #[arg(value_name = "LAYOUT:NAME")]
    target: String,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let reference = Reference::parse(&args.target)?;
    let Some(name) = reference.name.as_deref() else {
        anyhow::bail!(
            "{} names no entry; write LAYOUT:NAME (removal by digest is not supported yet)",
            args.target
        );
    };
    if reference.digest.is_some() {
        anyhow::bail!("rm takes LAYOUT:NAME; removal by digest is not supported yet");
    }
    let layout = ocikit::resolve::open_write(&reference)?;
    for removed in ocikit::tag::remove_name(&layout, name)? {
        eprintln!("Removed {removed}");
    }
    Ok(super::EXIT_OK)
}
