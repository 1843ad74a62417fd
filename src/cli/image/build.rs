//! `ocikit image build`

use std::path::PathBuf;

use ocikit::codec::layer::scan::DEVICE_REFUSED;
use ocikit::codec::layer::ScanOptions;
use ocikit::ops::image::build::{build, BuildSpec};
use ocikit::ops::image::config::{self, ConfigChanges, ExposedPort};
use ocikit::spec::platform::Platform;

use super::pairs;
use crate::cli::output::{count, print_written};
use crate::cli::progress::Bar;

/// Build an image from directories and tars, reproducibly.
///
/// Each --layer is one layer, in order. A directory becomes a reproducible tar: entries
/// sorted bytewise, modification times clamped to SOURCE_DATE_EPOCH (0 when it is unset),
/// uid and gid kept (or forced with --owner) with no user or group names, extended
/// attributes kept (not security.selinux), hard links stored as links (the first path of an
/// inode in that order is the file), symbolic links as links, FIFOs kept, device nodes only
/// with --devices, sockets left out with a warning; long names and large values in PAX
/// headers. A tar, plain or gzip- or zstd-compressed (found from its first bytes), is stored
/// as it is, and recompressed only when --compression is given.
///
/// The image's configuration starts from the base's (--base) or from nothing; created,
/// every history entry (one per new layer) and the org.opencontainers.image.created
/// annotation are SOURCE_DATE_EPOCH when set, the current time otherwise; with a base, the
/// manifest also gets org.opencontainers.image.base.digest and base.name. The same inputs
/// give the same manifest digest on every run, machine and number of cores (set
/// SOURCE_DATE_EPOCH and --platform for that). The layout is created when missing, and NAME
/// moves to the new manifest (the old one stays until gc). Every input is checked before
/// anything is written. Prints the manifest digest on stdout.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to put the image and the name to give it: LAYOUT:NAME.
    #[arg(value_name = "LAYOUT:NAME")]
    target: String,
    /// A layer: a directory, or a tar file (plain, gzip or zstd). Repeatable, in order.
    #[arg(long = "layer", value_name = "DIR|TAR")]
    layers: Vec<PathBuf>,
    /// Compression of the new layers: gzip (the default for directories; tars are kept as they
    /// are unless this is given), zstd or none. gzip past 1 MiB is compressed in blocks on
    /// several threads, to the same bytes whatever their number.
    #[arg(long, value_enum, value_name = "ALGORITHM")]
    compression: Option<crate::cli::CompressionArg>,
    /// Compression level: gzip 0-9 (default 6), zstd 1-22 (default 3).
    #[arg(long, value_name = "N")]
    level: Option<i32>,
    /// Compression threads (default: the number of cores, at most 8). The bytes written do
    /// not depend on it.
    #[arg(long, value_name = "N")]
    threads: Option<u32>,
    /// Own every entry of directory layers by UID:GID instead of its owner on disk.
    #[arg(long, value_name = "UID:GID", value_parser = parse_owner)]
    owner: Option<(u64, u64)>,
    /// Put character and block devices of directory layers in the layer (refused otherwise).
    #[arg(long)]
    devices: bool,
    /// Build on this image (a layout or an archive: LAYOUT[:NAME][@DIGEST]; with an index,
    /// the manifest of --platform): its layers, configuration and history are inherited, and
    /// its blobs are put into the target layout (hard-linked where possible).
    #[arg(long, value_name = "REF")]
    base: Option<String>,
    /// The image's platform, os/arch[/variant] (default: the base's, else this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<Platform>,
    /// The entrypoint: a JSON array of strings (exec form; [] clears it), or a shell command
    /// run by /bin/sh -c. Setting it drops a command inherited from the base, unless --cmd is
    /// given too.
    #[arg(long, value_name = "COMMAND", allow_hyphen_values = true)]
    entrypoint: Option<String>,
    /// The default command (or arguments to the entrypoint), as --entrypoint takes it.
    #[arg(long, value_name = "COMMAND", allow_hyphen_values = true)]
    cmd: Option<String>,
    /// Set an environment variable (repeatable); it replaces the base's of that name.
    #[arg(long, value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Add a label to the configuration (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// The working directory.
    #[arg(long, value_name = "DIR")]
    workdir: Option<String>,
    /// The user (and group) to run as: USER, UID, USER:GROUP or UID:GID.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// Expose a port (repeatable): PORT or PORT/PROTOCOL (tcp, udp, sctp; tcp by default).
    #[arg(long, value_name = "PORT[/PROTO]")]
    expose: Vec<String>,
    /// Declare a volume (repeatable): an absolute path.
    #[arg(long, value_name = "PATH")]
    volume: Vec<String>,
    /// The signal that stops the container (e.g. SIGTERM).
    #[arg(long, value_name = "SIGNAL")]
    stop_signal: Option<String>,
    /// Add a manifest annotation (repeatable); it overrides one ocikit sets.
    #[arg(long = "annotation", short = 'a', value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// Add an annotation to the manifest's config descriptor (repeatable).
    #[arg(long = "config-annotation", value_name = "KEY=VALUE")]
    config_annotations: Vec<String>,
    #[command(flatten)]
    limits: crate::cli::LimitArgs,
    /// Print the manifest, config and layer descriptors as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_owner(text: &str) -> Result<(u64, u64), String> {
    let parsed = text
        .split_once(':')
        .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)));
    parsed.ok_or_else(|| format!("{text:?} is not UID:GID (two numbers)"))
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let target = crate::cli::args::reference(&args.target)?;
    let base = args
        .base
        .as_deref()
        .map(crate::cli::args::reference)
        .transpose()?;
    let command = |text: &Option<String>| text.as_deref().map(config::command).transpose();
    let changes = ConfigChanges {
        entrypoint: command(&args.entrypoint)?,
        cmd: command(&args.cmd)?,
        env: args
            .env
            .iter()
            .map(|e| config::env_var(e))
            .collect::<ocikit::Result<_>>()?,
        labels: pairs(&args.label)?,
        workdir: args.workdir,
        user: args.user,
        expose: args
            .expose
            .iter()
            .map(|p| ExposedPort::parse(p))
            .collect::<ocikit::Result<_>>()?,
        volumes: args
            .volume
            .iter()
            .map(|v| config::volume(v))
            .collect::<ocikit::Result<_>>()?,
        stop_signal: args.stop_signal,
    };
    let spec = BuildSpec {
        layers: args.layers,
        compression: args.compression.map(Into::into),
        level: args.level,
        threads: args.threads,
        scan: {
            let mut scan = ScanOptions::default();
            scan.owner = args.owner;
            scan.devices = args.devices;
            scan
        },
        base,
        platform: args.platform,
        default_platform: host_platform(),
        config: changes,
        annotations: pairs(&args.annotations)?,
        config_annotations: pairs(&args.config_annotations)?,
        clock: crate::cli::clock()?,
        limits: args.limits.limits(),
    };
    let bar = Bar::new("building");
    let built = build(&target, &spec, &bar).map_err(device_hint)?;
    drop(bar);
    for socket in &built.skipped {
        eprintln!(
            "warning: left out the socket {} (a tar cannot hold sockets)",
            socket.display()
        );
    }
    print_written(args.json, &built, &built.manifest.digest)?;
    eprintln!(
        "Built {target} ({}{})",
        count(built.layers.len(), "new layer"),
        built
            .base
            .as_ref()
            .map(|b| format!(" on {}", b.digest))
            .unwrap_or_default()
    );
    Ok(crate::cli::EXIT_OK)
}

/// Adds the flag that lets device nodes in.
fn device_hint(error: ocikit::Error) -> anyhow::Error {
    match &error {
        ocikit::Error::Unsupported { reason, .. } if reason == DEVICE_REFUSED => {
            anyhow::anyhow!("{error} (--devices puts them in)")
        }
        _ => error.into(),
    }
}

/// This machine's platform, as image configurations name it.
fn host_platform() -> Platform {
    let (architecture, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", None),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
        other => (other, None),
    };
    Platform {
        os: "linux".into(),
        architecture: architecture.into(),
        variant: variant.map(str::to_string),
        ..Platform::default()
    }
}
