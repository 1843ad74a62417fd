//! What `copy`, `export` and `import` share: the flags that say what a transfer takes along and
//! how an archive is written, and the summary they print.

use ocikit::ops::transfer::{self, Written};
use ocikit::spec::document::media_type::Compression;
use ocikit::spec::platform::Platform;
use ocikit::store::archive::ArchiveOptions;
use ocikit::store::destination::Placements;

use super::output::human_size;

/// What comes along with the images.
#[derive(Debug, clap::Args)]
pub struct TakeArgs {
    /// Leave referrers (signatures, SBOMs, attestations) behind. By default the referrers of
    /// everything copied come along, and theirs, found in every convention a layout keeps them
    /// in (index.json entries and fallback-tag indexes).
    #[arg(long, overrides_with = "referrers")]
    no_referrers: bool,
    /// Bring referrers along (the default; the last of --referrers and --no-referrers wins).
    #[arg(long, overrides_with = "no_referrers")]
    referrers: bool,
    /// Also bring referrers that no index.json entry or fallback index records, found by
    /// reading every document-sized blob of the source (cosign keeps signatures so); they get
    /// untagged index.json entries where they arrive.
    #[arg(long, conflicts_with = "no_referrers")]
    scan: bool,
    #[command(flatten)]
    platform: super::PlatformArg,
    /// Keep only these platforms of an index (comma-separated os/arch[/variant]). An index that
    /// loses children is replaced by a new one listing the rest, so its digest changes and the
    /// name points at the new index; attestation manifests stay with the manifests they
    /// describe.
    #[arg(
        long,
        value_name = "OS/ARCH[/VARIANT],…",
        value_delimiter = ',',
        conflicts_with = "platform"
    )]
    platforms: Vec<Platform>,
}

impl TakeArgs {
    /// The transfer options these flags give.
    pub fn options(&self) -> transfer::Options {
        transfer::Options::default()
            .with_referrers(!self.no_referrers)
            .with_scan(self.scan)
            .with_platform(self.platform.platform.clone())
            .with_platforms(self.platforms.clone())
    }
}

/// How an archive is compressed.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum CompressionArg {
    None,
    Gzip,
    Zstd,
}

impl CompressionArg {
    fn compression(self) -> Compression {
        match self {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

/// How an archive is written.
#[derive(Debug, clap::Args)]
pub struct ArchiveArgs {
    /// Compress the archive (default: by the file name: .tar.gz or .tgz gzip, .tar.zst or
    /// .tzst zstd, otherwise none; none on stdout). Every entry is owned by root with one
    /// mtime (SOURCE_DATE_EPOCH, else 0), in a fixed order, so the same images give the same
    /// bytes.
    #[arg(long, value_enum, value_name = "ALGORITHM")]
    compression: Option<CompressionArg>,
    /// For a docker archive: the repository a name that is only a tag is given (app makes
    /// the name v1 the Docker tag app:v1). Names that are repository:tag are used as they are;
    /// an image left with no tag is loaded by its id.
    #[arg(long, value_name = "REPOSITORY")]
    repository: Option<String>,
}

impl ArchiveArgs {
    /// The archive options for an archive at `path` (`None`: a stream).
    pub fn options(&self, path: Option<&std::path::Path>) -> anyhow::Result<ArchiveOptions> {
        archive_options(self.compression, path)
    }

    /// The repository for bare tags.
    pub fn repository(&self) -> Option<String> {
        self.repository.clone()
    }
}

/// The archive options for an archive at `path` (`None`: a stream) compressed as `compression`
/// says (default: by the name): entries owned by root, mtime SOURCE_DATE_EPOCH or 0.
pub fn archive_options(
    compression: Option<CompressionArg>,
    path: Option<&std::path::Path>,
) -> anyhow::Result<ArchiveOptions> {
    let compression = match (compression, path) {
        (Some(c), _) => c.compression(),
        (None, Some(path)) => ocikit::ops::export::compression_for(path),
        (None, None) => Compression::None,
    };
    let mtime = super::clock()?.source_date_epoch.unwrap_or(0);
    Ok(
        ArchiveOptions::new(ocikit::codec::layer::CompressOptions::new(compression))
            .with_mtime(mtime),
    )
}

/// "3 images", "1 image".
pub fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// How blobs were placed: "12 blobs (106.0 MiB): 10 hard-linked, 2 already there".
pub fn placements(p: &Placements) -> String {
    let total = p.present + p.written();
    let mut parts = Vec::new();
    for (n, what) in [
        (p.reflinked, "reflinked"),
        (p.hardlinked, "hard-linked"),
        (p.copied, "copied"),
        (p.present, "already there"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    format!(
        "{} ({} written): {}",
        count(total, "blob"),
        human_size(p.bytes),
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    )
}

/// The lines every transfer prints on stderr after its summary: names, and what was not
/// carried.
pub fn report(written: &Written) {
    for name in &written.names.added {
        eprintln!("  named {name}");
    }
    for (name, was) in &written.names.replaced {
        eprintln!("  named {name} (it pointed at {was} before)");
    }
    for name in &written.names.unchanged {
        eprintln!("  {name} already pointed there");
    }
    for layer in &written.foreign {
        eprintln!("note: foreign layer {layer} is not in the source (its descriptor lists where it is), so it is not carried");
    }
    for warning in &written.warnings {
        eprintln!("warning: {warning}");
    }
}

/// Adds the flag that resolves a conflict (`force` says what `--force` does) or an index
/// where one platform is needed.
pub fn hint(error: ocikit::Error, force: &str) -> anyhow::Error {
    match error {
        e @ ocikit::Error::Conflict { .. } => anyhow::anyhow!("{e}; --force {force}"),
        e @ ocikit::Error::NeedsPlatform { .. } => {
            anyhow::anyhow!("{e}; choose it with --platform OS/ARCH")
        }
        e => e.into(),
    }
}
