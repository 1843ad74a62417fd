//! `ocikit tag`

use ocikit::ops::tag::TagOutcome;

/// Give the manifest REF names an additional name.
///
/// A name names one thing: if another entry carries NAME, the name moves. The new entry is
/// written atomically under the layout's index lock.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to tag: LAYOUT[:NAME][@DIGEST].
    #[arg(value_name = "REF")]
    source: String,
    /// The new name (an org.opencontainers.image.ref.name value, e.g. v1 or example.com/app:1.0).
    name: String,
    #[command(flatten)]
    platform: super::PlatformArg,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let reference = super::args::reference(&args.source)?;
    let layout = ocikit::store::open_write(&reference)?;
    match ocikit::ops::tag::tag(
        &layout,
        &reference,
        args.platform.platform.as_ref(),
        &args.name,
    )? {
        TagOutcome::Tagged { digest, moved_from } => {
            eprintln!("Tagged {digest} as {}", args.name);
            for old in moved_from {
                eprintln!("  (the name no longer points at {old})");
            }
        }
        TagOutcome::Unchanged { digest } => {
            eprintln!("{} already points at {digest}", args.name)
        }
    }
    Ok(super::EXIT_OK)
}
