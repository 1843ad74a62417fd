//! `ocikit artifact push` and `ocikit artifact pull`

use std::path::PathBuf;

use ocikit::ops::artifact::{parse_annotation, ArtifactSpec, FileArg, MANIFEST_LIMIT};

use super::output::print_json;

/// Create artifacts from files, and write an artifact's files out.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Push(PushArgs),
    Pull(PullArgs),
}

/// Create an artifact (image-spec 1.1) from files and name it.
///
/// The manifest has the given artifactType, the empty descriptor as config (unless --config),
/// and one layer per FILE, titled by its base name (org.opencontainers.image.title). A
/// directory becomes a reproducible tar+gzip layer that `oras pull` and `ocikit artifact pull`
/// unpack (annotations io.deis.oras.content.digest and io.deis.oras.content.unpack). Without
/// files the manifest has one empty-descriptor layer. org.opencontainers.image.created is set
/// to SOURCE_DATE_EPOCH when that is set, else to the current time, unless given as an
/// annotation. Every input is checked before anything is written. Prints the manifest digest
/// on stdout.
#[derive(Debug, clap::Args)]
#[command(after_help = super::SUBCOMMAND_EXIT_STATUS_HELP)]
pub struct PushArgs {
    /// Where to put it and the name to give it: LAYOUT:NAME.
    #[arg(value_name = "LAYOUT:NAME")]
    target: String,
    #[command(flatten)]
    content: ContentArgs,
    /// Print the manifest, config and layer descriptors as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// What an artifact is made of: the flags `artifact push` and `attach` share.
#[derive(Debug, clap::Args)]
pub struct ContentArgs {
    /// Files and directories, each one layer. MEDIATYPE defaults to application/octet-stream
    /// for files and application/vnd.oci.image.layer.v1.tar+gzip for directories. A path that
    /// exists as given is taken whole, even if it contains ':'.
    #[arg(value_name = "FILE[:MEDIATYPE]")]
    files: Vec<String>,
    /// The artifact's type (the manifest's artifactType), a media type as RFC 6838 defines
    /// it, e.g. application/spdx+json.
    #[arg(long, value_name = "MEDIATYPE")]
    artifact_type: String,
    /// Use FILE as the config blob instead of the empty descriptor; MEDIATYPE defaults to
    /// application/vnd.unknown.config.v1+json.
    #[arg(long, value_name = "FILE[:MEDIATYPE]")]
    config: Option<String>,
    /// Add a manifest annotation (repeatable); a key may be given only once.
    #[arg(long = "annotation", short = 'a', value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// Read annotations from a JSON file in oras's format: {"$manifest": {KEY: VALUE…},
    /// "$config": {…}, "FILE": {…}}, where FILE is a file as given on the command line or its
    /// title. Any other key is an error.
    #[arg(long, value_name = "FILE")]
    annotation_file: Option<PathBuf>,
    /// Also embed the content of blobs of at most BYTES bytes in their descriptors' data
    /// field (the blobs are stored too).
    #[arg(long, value_name = "BYTES")]
    inline_max: Option<u64>,
    /// Write a manifest larger than 4 MiB, which registries refuse; without it such a
    /// manifest is an error.
    #[arg(long)]
    allow_large: bool,
}

/// Adds what the user can do about a manifest that would be too large.
pub fn size_hint(error: ocikit::Error) -> anyhow::Error {
    match error {
        e @ ocikit::Error::ManifestTooLarge { .. } => anyhow::anyhow!(
            "{e}; use fewer or smaller inline blobs and annotations, or --allow-large"
        ),
        e => e.into(),
    }
}

impl ContentArgs {
    /// The library's description of the artifact; parse errors come before anything is written.
    pub fn spec(&self) -> anyhow::Result<ArtifactSpec> {
        if let Some(max) = self.inline_max.filter(|&max| max > MANIFEST_LIMIT) {
            anyhow::bail!(
                "--inline-max {max} is more than the {MANIFEST_LIMIT}-byte manifest limit"
            );
        }
        Ok(ArtifactSpec {
            artifact_type: self.artifact_type.clone(),
            files: self
                .files
                .iter()
                .map(|f| FileArg::parse(f))
                .collect::<ocikit::Result<_>>()?,
            config: self.config.as_deref().map(FileArg::parse).transpose()?,
            annotations: self
                .annotations
                .iter()
                .map(|a| parse_annotation(a))
                .collect::<ocikit::Result<_>>()?,
            annotation_file: self.annotation_file.clone(),
            inline_max: self.inline_max,
            allow_large: self.allow_large,
            clock: crate::cli::clock()?,
        })
    }
}

/// Write an artifact's files into a directory.
///
/// Each layer titled by org.opencontainers.image.title becomes that file; a layer annotated
/// io.deis.oras.content.unpack=true (a directory pushed by ocikit or oras) is unpacked, and
/// its tar is checked against io.deis.oras.content.digest. Layers without a title are skipped
/// (and listed). Nothing is written outside DIR: every path is resolved on disk, names that are
/// absolute or contain '..' are refused, and so is any link that leads out of DIR (out of its
/// own directory, for an unpacked layer), whether it was there before, is made by an entry, or
/// is turned outward by a later entry; links that stay inside are followed. Every file is
/// verified against its digest before it is renamed into place.
#[derive(Debug, clap::Args)]
#[command(after_help = super::SUBCOMMAND_EXIT_STATUS_HELP)]
pub struct PullArgs {
    /// The artifact: LAYOUT[:NAME][@DIGEST] (a directory or an archive).
    #[arg(value_name = "REF")]
    source: String,
    /// The directory to write into (created if missing).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: PathBuf,
    /// Also write the config blob, as the file NAME inside DIR.
    #[arg(long, value_name = "NAME")]
    config: Option<String>,
    #[command(flatten)]
    platform: super::PlatformArg,
    /// Print what was written as JSON: {"files": [{path, digest, size, unpacked}], "skipped":
    /// [digest…]}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: super::LimitArgs,
}

pub fn run(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Push(args) => push(args),
        Command::Pull(args) => pull(args),
    }
}

fn push(args: PushArgs) -> anyhow::Result<u8> {
    let reference = super::args::reference(&args.target)?;
    let (Some(name), None) = (reference.name.as_deref(), reference.digest.as_ref()) else {
        anyhow::bail!(
            "artifact push needs LAYOUT:NAME (the name to give the artifact), not {}",
            args.target
        );
    };
    let spec = args.content.spec()?;
    let layout = ocikit::store::open_write(&reference)?;
    let artifact = ocikit::ops::artifact::push(&layout, name, &spec).map_err(size_hint)?;
    if args.json {
        print_json(&artifact)?;
    } else {
        println!("{}", artifact.manifest.digest);
    }
    eprintln!(
        "Pushed {} as {name} ({} layer{})",
        artifact.manifest.digest,
        artifact.layers.len(),
        if artifact.layers.len() == 1 { "" } else { "s" }
    );
    Ok(super::EXIT_OK)
}

fn pull(args: PullArgs) -> anyhow::Result<u8> {
    let reference = super::args::reference(&args.source)?;
    let layout = ocikit::store::open_read(
        &reference,
        ocikit::store::Check::Layout,
        &args.limits.limits(),
    )?;
    let pulled = ocikit::ops::artifact::pull(
        layout.as_ref(),
        &reference,
        args.platform.platform.as_ref(),
        &args.output,
        args.config.as_deref(),
        &args.limits.limits(),
    )
    .map_err(|e| match e {
        e @ ocikit::Error::UnexpectedMediaType { .. } if args.platform.platform.is_none() => {
            anyhow::anyhow!("{e}; give --platform to pick one")
        }
        e => e.into(),
    })?;
    if args.json {
        print_json(&pulled)?;
    } else {
        for file in &pulled.files {
            let how = if file.unpacked { "unpacked" } else { "wrote" };
            eprintln!("{how} {} ({})", file.path, file.digest);
        }
    }
    for skipped in &pulled.skipped {
        eprintln!("skipped {skipped}: the layer has no title");
    }
    Ok(super::EXIT_OK)
}
