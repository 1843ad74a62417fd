//! `ocikit export`

use std::io::IsTerminal;
use std::path::PathBuf;

use ocikit::ops::export::{Format, Options, Output};
use ocikit::ops::transfer::Selection;
use ocikit::store::layout::LayoutRead;

use super::output::{human_size, print_json};
use super::progress::Bar;
use super::transfer::{count, hint, placements, report, ArchiveArgs, TakeArgs};

/// Write images, with their referrers, into one archive.
///
/// Each LAYOUT[:NAME] names an image (or, with --all, a whole layout); they may come from
/// several layouts. The archive is an OCI image layout tar (what skopeo reads as
/// oci-archive:FILE:NAME) holding their closure and referrers, named as in their layouts; or,
/// with --format docker, a docker save archive (see --format). It is written to a temp file
/// beside FILE and renamed into place at the end, so FILE is never half-written; with -o - it
/// goes to stdout as it is made. Memory does not grow with the archive.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to export: LAYOUT[:NAME][@DIGEST] (a directory or an archive), one or more.
    #[arg(value_name = "LAYOUT[:NAME]", required = true)]
    sources: Vec<String>,
    /// The archive to write, or - for stdout.
    #[arg(short, long, value_name = "FILE")]
    output: String,
    /// Export every index.json entry of each LAYOUT (names, untagged images, referrers).
    #[arg(long)]
    all: bool,
    /// oci: an OCI image layout tar. docker: a docker save archive as Docker 25+ writes it,
    /// which docker load, podman load and skopeo's docker-archive: read — manifest.json,
    /// repositories and the legacy layer directories, over an OCI layout (index.json names
    /// each image with its full reference in io.containerd.image.name). It holds images only,
    /// one manifest per name (an index needs --platform), and no referrers.
    #[arg(long, value_enum, default_value = "oci")]
    format: FormatArg,
    #[command(flatten)]
    take: TakeArgs,
    #[command(flatten)]
    archive: ArchiveArgs,
    /// Print what was exported as JSON on stdout (not with -o -): {images, referrers, blobs,
    /// names, foreign, warnings, path, bytes, docker: [{manifest, repoTags, untaggedNames}]}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: super::LimitArgs,
}

/// `--format`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum FormatArg {
    Oci,
    Docker,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let to_stdout = args.output == "-";
    if to_stdout && args.json {
        anyhow::bail!("--json prints on stdout, where -o - writes the archive; use one of them");
    }
    if to_stdout && std::io::stdout().is_terminal() {
        anyhow::bail!(
            "refusing to write an archive to a terminal; redirect stdout or give -o FILE"
        );
    }
    let limits = args.limits.limits();
    let mut opened: Vec<(Box<dyn LayoutRead>, Selection)> = Vec::new();
    for text in &args.sources {
        let reference = super::args::reference(text)?;
        if args.all && (reference.name.is_some() || reference.digest.is_some()) {
            anyhow::bail!("--all exports every entry of a layout; give just LAYOUT, not {text}");
        }
        let selection = if args.all {
            Selection::All
        } else {
            Selection::Refs(vec![reference.clone()])
        };
        let layout = ocikit::store::open_read(&reference, ocikit::store::Check::Layout, &limits)?;
        opened.push((layout, selection));
    }
    let sources: Vec<(&dyn LayoutRead, Selection)> = opened
        .iter()
        .map(|(layout, selection)| (&**layout, selection.clone()))
        .collect();
    let path = (!to_stdout).then(|| PathBuf::from(&args.output));
    let format = match args.format {
        FormatArg::Oci => Format::Oci,
        FormatArg::Docker => Format::Docker,
    };
    let options = Options::new(format, args.archive.options(path.as_deref())?)
        .with_transfer(args.take.options())
        .with_repository(args.archive.repository());
    let output = match path {
        Some(path) => Output::File(path),
        None => Output::Stream(Box::new(std::io::stdout()), "stdout".into()),
    };
    let bar = Bar::new("exporting");
    let exported = ocikit::ops::export::export(&sources, output, &options, &bar)
        .map_err(|e| hint(e, "moves the name"))?;
    drop(bar);
    if args.json {
        print_json(&exported)?;
    }
    let written = &exported.written;
    eprintln!(
        "Exported {} and {} to {} ({}): {}",
        count(written.images.len(), "image"),
        count(written.referrers, "referrer"),
        exported
            .path
            .as_ref()
            .map_or("stdout".into(), |p| p.display().to_string()),
        human_size(exported.bytes),
        placements(&written.blobs)
    );
    for image in &exported.docker {
        if image.repo_tags.is_empty() {
            eprintln!(
                "note: image {} has no Docker tag ({}), so it is loaded by its id; --repository gives bare tags one",
                image.manifest,
                if image.untagged_names.is_empty() {
                    "it has no name".to_string()
                } else {
                    format!("{} is not repository:tag", image.untagged_names.join(", "))
                }
            );
        }
    }
    report(written);
    Ok(super::EXIT_OK)
}
