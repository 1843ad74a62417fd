//! `ocikit init`

use std::path::PathBuf;

use ocikit::store::layout::{InitOutcome, Layout};

/// Create an empty OCI image layout (oci-layout, index.json, blobs/sha256/).
///
/// The directory is created if needed; an existing empty directory is used. An existing layout
/// is left untouched; any other non-empty directory is refused.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to create the layout in.
    layout: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let (_, outcome) = Layout::init(&args.layout)?;
    match outcome {
        InitOutcome::Created => eprintln!("Created OCI layout {}", args.layout.display()),
        InitOutcome::AlreadyALayout => eprintln!(
            "{} is already an OCI layout; left unchanged",
            args.layout.display()
        ),
    }
    Ok(super::EXIT_OK)
}
