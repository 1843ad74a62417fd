//! `ocikit import`

use std::io::IsTerminal;
use std::path::PathBuf;

use ocikit::ops::import::{ArchiveKind, Input, Options};

use super::output::print_json;
use super::progress::Bar;
use super::transfer::{count, hint, placements, report};

/// Import an archive into a layout directory.
///
/// FILE is an OCI image layout tar, or a docker save archive (Docker 25+ and `ctr images
/// export` write an OCI layout too; older ones, and podman's and skopeo's docker-archive, are
/// converted: each image gets an OCI manifest over its config and layers, unchanged, with
/// layers left uncompressed as Docker wrote them, and each RepoTags entry becomes a name).
/// Plain, gzip or zstd, told from its bytes; - reads stdin, once, as it comes. LAYOUT is
/// created when missing; what it has is kept: blobs it has are not written again, and a name
/// it gives to another image is an error unless --force. The archive is never extracted: its
/// entries are read by the hardened tar reader under the decompression limits, and an archive
/// with absolute or `..` names, links leading out of it, devices, or entries that tar readers
/// read differently (duplicate names, links to replaced entries) is refused. Every blob is
/// verified before it is kept, and index.json is updated last, so a failed import leaves the
/// layout's names as they were. A split archive is imported from its part list (FILE.parts,
/// see bundle create --split-size): every part and the whole are checked first. A bundle
/// archive (one carrying SHA256SUMS) is verified as it is imported, in the same read: a
/// file missing, unlisted or not hashing to its line fails the import before index.json is
/// touched; with --allowed-signers its signature is required and checked first.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The archive, a split archive's part list, or - for stdin.
    #[arg(value_name = "FILE")]
    file: String,
    /// The layout directory to import into.
    layout: String,
    /// Move a name the layout gives to another image to the imported one.
    #[arg(long)]
    force: bool,
    /// Print what was imported as JSON: {kind, created, images, referrers, blobs, names,
    /// warnings}; kind is oci or docker-save.
    #[arg(long)]
    json: bool,
    /// Import only a bundle signed by a key this allowed signers file lists (read as bundle
    /// verify --allowed-signers reads it): its SHA256SUMS.sig must be a good signature of
    /// its SHA256SUMS, whose lines every file must then match. Anything else (another kind of
    /// archive, no signature, a key not listed, expired or not for the namespace) is refused
    /// before the layout is touched.
    #[arg(long, value_name = "FILE")]
    allowed_signers: Option<PathBuf>,
    #[command(flatten)]
    limits: super::LimitArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let layout = super::args::whole_layout(&args.layout, "import")?;
    let input = if args.file == "-" {
        if std::io::stdin().is_terminal() {
            anyhow::bail!(
                "refusing to read an archive from a terminal; redirect stdin or give FILE"
            );
        }
        Input::Stream(Box::new(std::io::stdin()), "stdin".into())
    } else if let Some((stream, name)) = super::bundle::split_parts(&PathBuf::from(&args.file))? {
        // A split archive (its part list): the parts checked first, then read as one stream.
        Input::Stream(stream, name)
    } else {
        Input::File(PathBuf::from(&args.file))
    };
    let allowed = super::bundle::read_allowed_signers(args.allowed_signers.as_deref())?;
    let options = Options::new(args.force, args.limits.limits())
        .with_allowed_signers(allowed, super::clock()?.now);
    let bar = Bar::new("importing");
    let imported = ocikit::ops::import::import(input, &layout.layout, &options, &bar)
        .map_err(|e| hint(e, "moves the name"))?;
    drop(bar);
    if args.json {
        print_json(&imported)?;
    }
    if let Some(signer) = &imported.signed_by {
        eprintln!("{}", super::bundle::signed_by(signer));
    }
    let written = &imported.written;
    eprintln!(
        "Imported {} and {} ({}) into {}{}: {}",
        count(written.images.len(), "image"),
        count(written.referrers, "referrer"),
        match imported.kind {
            ArchiveKind::Oci => "an OCI layout archive",
            ArchiveKind::DockerSave => "a docker save archive, converted",
        },
        layout.layout.display(),
        if imported.created { " (new)" } else { "" },
        placements(&written.blobs)
    );
    report(written);
    Ok(super::EXIT_OK)
}
