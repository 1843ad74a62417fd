//! `ocikit attach`

use super::output::print_json;
use super::referrers::FormatArg;

/// Attach an artifact (SBOM, signature, attestation…) to an image or index.
///
/// Creates an artifact as `ocikit artifact push` does, with subject set to the manifest or
/// index REF names, and records it as a referrer of REF: as an untagged index.json entry
/// carrying its artifactType and annotations (oras's convention) and in the subject's
/// fallback-tag index sha256-<hex> (regctl's and the distribution-spec's), merged with what
/// that index already lists. Every input, the subject included, is checked before anything is
/// written. Prints the artifact's manifest digest on stdout.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The subject: LAYOUT[:NAME][@DIGEST].
    #[arg(value_name = "REF")]
    subject: String,
    #[command(flatten)]
    content: super::artifact::ContentArgs,
    #[command(flatten)]
    platform: super::PlatformArg,
    /// How to record the referrer: index (untagged index.json entry), tag (fallback-tag
    /// index) or both, so that every tool finds it.
    #[arg(long, value_enum, default_value_t = FormatArg::Both, value_name = "FORMAT")]
    referrers_format: FormatArg,
    /// Print the manifest, config, layer and subject descriptors as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let reference = super::args::reference(&args.subject)?;
    let spec = args.content.spec()?;
    let layout = ocikit::store::open_write(&reference)?;
    let artifact = ocikit::ops::artifact::attach(
        &layout,
        &reference,
        args.platform.platform.as_ref(),
        &spec,
        args.referrers_format.into(),
    )
    .map_err(super::artifact::size_hint)?;
    if args.json {
        print_json(&artifact)?;
    } else {
        println!("{}", artifact.manifest.digest);
    }
    if let Some(subject) = &artifact.subject {
        eprintln!(
            "Attached {} to {}",
            artifact.manifest.digest, subject.digest
        );
    }
    Ok(super::EXIT_OK)
}
