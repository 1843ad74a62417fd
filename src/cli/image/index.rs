//! `ocikit image index`

use ocikit::ops::image::index::{index, IndexSpec};

use super::pairs;
use crate::cli::output::{count, print_written};

/// Make a multi-platform index from images of one layout.
///
/// Each MEMBER is an image manifest of the layout: NAME, @DIGEST or NAME@DIGEST. Its
/// platform (os, architecture, variant, os.version, os.features) is read from its
/// configuration. Members are listed in the order given: clients take the first entry that
/// matches their platform (image-spec 1.1), and two members of the same platform are an error
/// unless --allow-duplicate-platforms. With --add or --remove (and no MEMBER), the new index
/// is derived from the index NAME points at now: its entries and annotations, without the
/// removed members, with the added ones at the end. The index is written canonically (the
/// same members give the same digest), and NAME moves to it (the old one stays until gc).
/// Prints the index digest on stdout.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to put the index and the name to give it: LAYOUT:NAME.
    #[arg(value_name = "LAYOUT:NAME")]
    target: String,
    /// The images to list, in order: NAME, @DIGEST or NAME@DIGEST in the same layout.
    #[arg(value_name = "MEMBER", required_unless_present_any = ["add", "remove"])]
    members: Vec<String>,
    /// Derive from the index NAME points at now, with MEMBER added at the end (repeatable).
    #[arg(long, value_name = "MEMBER", conflicts_with = "members")]
    add: Vec<String>,
    /// Derive from the index NAME points at now, without MEMBER (repeatable).
    #[arg(long, value_name = "MEMBER", conflicts_with = "members")]
    remove: Vec<String>,
    /// Add an index annotation (repeatable).
    #[arg(long = "annotation", short = 'a', value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// Accept two members of the same platform (clients will only ever take the first).
    #[arg(long)]
    allow_duplicate_platforms: bool,
    /// Print the index descriptor and its entries as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let target = crate::cli::args::reference(&args.target)?;
    let spec = IndexSpec {
        members: args.members,
        add: args.add,
        remove: args.remove,
        annotations: pairs(&args.annotations)?,
        allow_duplicate_platforms: args.allow_duplicate_platforms,
    };
    let written = index(&target, &spec).map_err(|e| match e {
        e @ ocikit::Error::Conflict { .. } => {
            anyhow::anyhow!("{e} (--allow-duplicate-platforms lists them anyway)")
        }
        e => e.into(),
    })?;
    print_written(args.json, &written, &written.index.digest)?;
    eprintln!(
        "Indexed {} as {target}",
        count(written.manifests.len(), "manifest")
    );
    Ok(crate::cli::EXIT_OK)
}
