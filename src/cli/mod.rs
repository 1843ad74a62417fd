//! Command-line definitions. Each subcommand has its own module holding its arguments (every flag
//! documented once, where it is defined) and a `run` that calls the library and prints.

mod args;
mod artifact;
mod attach;
mod bundle;
mod cat;
mod completions;
mod convert;
mod copy;
mod export;
mod gc;
mod image;
mod import;
mod init;
mod inspect;
mod ls;
mod man;
mod output;
mod progress;
mod referrers;
mod rm;
mod tag;
mod transfer;
mod unpack;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ocikit::codec::decode;

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: the command ran and found problems (validate's error-level findings).
pub const EXIT_FINDINGS: u8 = 1;
/// Exit status: the command could not run (bad arguments, unreadable input, …).
pub const EXIT_FAILURE: u8 = 2;

const EXIT_STATUS_HELP: &str = "\
EXIT STATUS:
  0  success
  1  validate found error-level problems
  2  could not run: bad arguments, a missing or malformed layout, a missing name or blob";

const SUBCOMMAND_EXIT_STATUS_HELP: &str = "\
EXIT STATUS:
  0  success
  2  could not run: bad arguments, a missing or malformed layout, a missing name or blob";

/// Offline toolkit for OCI image layouts (directories and tarballs).
///
/// A LAYOUT is a directory or, for commands that only read, an archive (.tar, .tar.gz, .tgz,
/// .tar.zst). A REF is LAYOUT[:NAME][@DIGEST]: the layout path ends at the first ':', NAME may
/// contain ':' and '/', and @sha256:… selects by digest. The prefixes oci:, oci-archive:,
/// ocidir:// and docker-archive: are accepted.
#[derive(Debug, Parser)]
#[command(name = "ocikit", version, after_help = EXIT_STATUS_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Init(init::Args),
    Ls(ls::Args),
    Inspect(inspect::Args),
    Cat(cat::Args),
    Tag(tag::Args),
    Rm(rm::Args),
    Validate(validate::Args),
    Gc(gc::Args),
    #[command(subcommand)]
    Artifact(artifact::Command),
    Attach(attach::Args),
    Referrers(referrers::Args),
    #[command(subcommand)]
    Image(image::Command),
    Convert(convert::Args),
    Copy(copy::Args),
    Export(export::Args),
    Import(import::Args),
    Unpack(unpack::Args),
    #[command(subcommand)]
    Bundle(bundle::Command),
    Completions(completions::Args),
    #[command(hide = true)]
    GenerateMan(man::Args),
}

/// Parses the command line, runs the command, and turns errors into messages and exit codes.
pub fn main() -> ExitCode {
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let outcome = match cli.command {
        Command::Init(args) => init::run(args),
        Command::Ls(args) => ls::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Cat(args) => cat::run(args),
        Command::Tag(args) => tag::run(args),
        Command::Rm(args) => rm::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Gc(args) => gc::run(args),
        Command::Artifact(command) => artifact::run(command),
        Command::Attach(args) => attach::run(args),
        Command::Referrers(args) => referrers::run(args),
        Command::Image(command) => image::run(command),
        Command::Convert(args) => convert::run(args),
        Command::Copy(args) => copy::run(args),
        Command::Export(args) => export::run(args),
        Command::Import(args) => import::run(args),
        Command::Unpack(args) => unpack::run(args),
        Command::Bundle(command) => bundle::run(command),
        Command::Completions(args) => completions::run(args),
        Command::GenerateMan(args) => man::run(args),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            if is_broken_pipe(&error) {
                return ExitCode::from(EXIT_OK);
            }
            eprintln!("error: {}", output::error_chain(&error));
            if let Some(hint) = limit_hint(&error).or_else(|| docker_save_hint(&error)) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `ocikit ls | head` must end quietly, not with an error.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || matches!(
                cause.downcast_ref::<ocikit::Error>(),
                Some(ocikit::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe
            )
    })
}

/// The clap command, for parsing, man pages and completions. Every subcommand documents the
/// exit status in its help and man page, unless it sets its own.
pub fn command() -> clap::Command {
    let mut command = <Cli as clap::CommandFactory>::command();
    let names: Vec<String> = command
        .get_subcommands()
        .filter(|sub| sub.get_after_help().is_none())
        .map(|sub| sub.get_name().to_string())
        .collect();
    for name in names {
        command = command.mut_subcommand(name, |sub| sub.after_help(SUBCOMMAND_EXIT_STATUS_HELP));
    }
    command
}

/// The `--platform` flag shared by commands that select from an index.
#[derive(Debug, clap::Args)]
pub struct PlatformArg {
    /// Select the first manifest of an index matching os/arch[/variant] (e.g. linux/arm64).
    /// arm64 equals arm64/v8, amd64 equals amd64/v1 and arm equals arm/v7.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<ocikit::spec::platform::Platform>,
}

/// A layer compression, as `--compression` names it.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum CompressionArg {
    Gzip,
    Zstd,
    None,
}

impl From<CompressionArg> for ocikit::codec::layer::Compression {
    fn from(arg: CompressionArg) -> Self {
        match arg {
            CompressionArg::Gzip => Self::Gzip,
            CompressionArg::Zstd => Self::Zstd,
            CompressionArg::None => Self::None,
        }
    }
}

/// The decompression limits of the commands that read compressed archives or layers: beyond
/// them a stream is treated as a decompression bomb.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Decompression limits")]
pub struct LimitArgs {
    /// Stop decompressing a stream (a compressed archive, or a layer with validate --deep) once
    /// it expands beyond SIZE bytes (units K, M, G, T: binary, e.g. 200G).
    #[arg(long, value_name = "SIZE", default_value_t = Size(decode::MAX_UNCOMPRESSED))]
    max_uncompressed: Size,
    /// Stop decompressing a stream once it has expanded more than RATIO times its compressed
    /// size (checked past its first 64 MiB; real archives and layers stay far below 100).
    #[arg(long, value_name = "RATIO", default_value_t = decode::MAX_RATIO)]
    max_ratio: u64,
    /// Refuse zstd frames that need a window larger than SIZE bytes (a decoder allocates the
    /// whole window; `zstd --long=N` writes windows of 2^N bytes).
    #[arg(long, value_name = "SIZE", default_value_t = Size(decode::MAX_ZSTD_WINDOW))]
    max_zstd_window: Size,
}

impl LimitArgs {
    /// The limits the flags give.
    pub fn limits(&self) -> decode::Limits {
        decode::Limits::default()
            .with_max_uncompressed(self.max_uncompressed.0)
            .with_max_ratio(self.max_ratio)
            .with_max_zstd_window(self.max_zstd_window.0)
    }
}

/// A size in bytes as people type it (`64G`, `128MiB`) and read it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Size(pub u64);

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&ocikit::spec::units::compact_size(self.0).replace(' ', ""))
    }
}

impl std::str::FromStr for Size {
    type Err = String;
    fn from_str(text: &str) -> Result<Size, String> {
        ocikit::spec::units::parse_size(text).map(Size)
    }
}

/// Which flag raises the decompression limit an error ran into, if it ran into one.
fn limit_hint(error: &anyhow::Error) -> Option<&'static str> {
    use ocikit::error::{Limit, LimitExceeded};
    let exceeded = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<LimitExceeded>())?;
    Some(match exceeded.limit {
        Limit::Uncompressed => {
            "if you trust this input, raise the limit with --max-uncompressed SIZE"
        }
        Limit::Ratio => "if you trust this input, raise the limit with --max-ratio RATIO",
        Limit::ZstdWindow => "if you trust this input, raise the limit with --max-zstd-window SIZE",
    })
}

/// What to do with a `docker save` archive from before Docker 25 given where a layout is read.
fn docker_save_hint(error: &anyhow::Error) -> Option<&'static str> {
    error
        .chain()
        .any(|cause| {
            matches!(
                cause.downcast_ref::<ocikit::Error>(),
                Some(ocikit::Error::DockerSave { .. })
            )
        })
        .then_some("import it into a layout first: ocikit import FILE LAYOUT")
}

/// The time writing commands record: `SOURCE_DATE_EPOCH` when set (reproducible output), the
/// wall clock otherwise. The environment and the clock are read here, never in the library.
pub fn clock() -> anyhow::Result<ocikit::spec::time::Clock> {
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => ocikit::spec::time::parse_source_date_epoch(&text)?,
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("SOURCE_DATE_EPOCH is not valid UTF-8; it must be a number of seconds")
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(ocikit::spec::time::Clock {
        source_date_epoch,
        now,
    })
}
