//! `ocikit bundle create` and `ocikit bundle verify`

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ocikit::ops::bundle::create::{self, Output, Request};
use ocikit::ops::bundle::sign::SigningKey;
use ocikit::ops::bundle::verify::{self, BaseContent, Report, Severity, Signature};
use ocikit::ops::bundle::Bundle;
use ocikit::store::layout::LayoutRead;

use super::output::{human_size, print_json, stdout};
use super::progress::Bar;
use super::transfer::{archive_options, count, hint, CompressionArg, TakeArgs};

const CREATE_EXIT_STATUS: &str = "\
EXIT STATUS:
  0  the bundle was written; its id (the sha256 of SHA256SUMS) is printed on stdout
  2  could not run: bad arguments, OUT exists, an image or blob is missing";

const VERIFY_EXIT_STATUS: &str = "\
EXIT STATUS:
  0  valid and complete
  1  integrity failure: a file changed, missing, extra or not listed, a bad signature, an
     image or referrer not where the description says; an archive cut short or with
     entries tar readers read differently; a link entry in an archive; a listed file,
     part or part list that is a symlink, FIFO or device, or longer than listed
  2  incomplete (blobs expected from the base are missing), or could not run: BUNDLE is
     no bundle (no SHA256SUMS; a file that is no tar, or a tar whose first file is not
     oci-layout, ocikit-bundle.json or SHA256SUMS) or absent, a system I/O error, a limit
     reached";

/// Build and check air-gapped bundles: many images with their referrers, a description and a
/// SHA256SUMS list, verifiable on the far side with or without ocikit.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Create(Box<CreateArgs>),
    Verify(VerifyArgs),
}

pub fn run(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Create(args) => run_create(*args),
        Command::Verify(args) => run_verify(args),
    }
}

/// Write a bundle: every image given, its referrers (recursively), ocikit-bundle.json and
/// SHA256SUMS, in one OCI layout directory or archive.
///
/// OUT is an archive when its name ends in .tar, .tar.gz, .tgz, .tar.zst or .tzst, and a
/// directory otherwise; it must not exist. A directory is built under a temp name beside OUT
/// and renamed into place at the end; an archive is written to a temp file and renamed, with
/// oci-layout, ocikit-bundle.json and SHA256SUMS as its first entries, so that it can be
/// checked in one pass. Each image's index.json entry carries its full name in both
/// org.opencontainers.image.ref.name and io.containerd.image.name. SHA256SUMS is in GNU
/// sha256sum's format: `sha256sum -c SHA256SUMS` checks an extracted bundle. The bundle's id,
/// printed on stdout, is the sha256 of SHA256SUMS. A crash or kill leaves at most a
/// .ocikit-tmp-* directory or file beside OUT, never a partial OUT; remove it by hand.
#[derive(Debug, clap::Args)]
#[command(after_help = CREATE_EXIT_STATUS)]
pub struct CreateArgs {
    /// The bundle to write: a directory, or an archive by its suffix; never inside a source
    /// layout, and not - (a bundle is not streamed to stdout).
    #[arg(value_name = "OUT")]
    out: PathBuf,
    /// The images: LAYOUT[:NAME][@DIGEST] (a directory or an archive), one or more.
    #[arg(long = "image", value_name = "REF", num_args = 1.., action = clap::ArgAction::Append,
          required_unless_present = "images_from")]
    images: Vec<String>,
    /// Read more images from FILE (- for stdin): one REF per line; blank lines and lines
    /// starting with # are skipped.
    #[arg(long, value_name = "FILE")]
    images_from: Option<String>,
    /// Sign SHA256SUMS with this SSH ed25519 private key (OpenSSH format, no passphrase) into
    /// SHA256SUMS.sig, in the SSHSIG format with namespace ocikit-bundle, which
    /// `ssh-keygen -Y verify -f allowed_signers -I ID -n ocikit-bundle -s SHA256SUMS.sig <
    /// SHA256SUMS` checks.
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    /// Make an incremental bundle: leave out every blob OLD has (chosen by digest, never by
    /// tag; manifests, indexes and index.json are always included). OLD is a bundle
    /// directory or archive, or a directory with just its ocikit-bundle.json and SHA256SUMS.
    /// The description records OLD's id and the blobs left out; the far side needs OLD's
    /// content (bundle verify --base, import into a layout that has it).
    #[arg(long, value_name = "OLD")]
    base: Option<PathBuf>,
    /// How blobs get into a directory bundle: auto (reflink, else hard link, else copy),
    /// reflink, hardlink or copy (read, verified and written).
    #[arg(long, value_enum, default_value = "auto")]
    link: super::copy::LinkArg,
    /// For an archive: split it into parts of at most SIZE bytes (units K, M, G, T: binary,
    /// e.g. 4G) for media with size limits: OUT.part001, OUT.part002, … and OUT.parts, a
    /// small JSON list of the parts with the whole archive's size and sha256. bundle verify
    /// and import take OUT.parts, check every part and the whole first, then read the archive.
    #[arg(long, value_name = "SIZE")]
    split_size: Option<super::Size>,
    #[command(flatten)]
    take: TakeArgs,
    /// Compress an archive bundle (default: by OUT's name: .tar.gz or .tgz gzip, .tar.zst or
    /// .tzst zstd, .tar none). Entries are owned by root with one mtime (SOURCE_DATE_EPOCH,
    /// else 0), in a fixed order, so the same images give the same bytes.
    #[arg(long, value_enum, value_name = "ALGORITHM")]
    compression: Option<CompressionArg>,
    /// Print what was written as JSON on stdout: {path, bundle, description, files, bytes,
    /// archiveBytes?, signedBy?, warnings}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: super::LimitArgs,
}

fn run_create(args: CreateArgs) -> anyhow::Result<u8> {
    let mut texts = args.images.clone();
    if let Some(file) = &args.images_from {
        let mut text = String::new();
        if file == "-" {
            std::io::stdin().read_to_string(&mut text)?;
        } else {
            text = std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("cannot read {file}: {e}"))?;
        }
        texts.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    if texts.is_empty() {
        anyhow::bail!("no images given: name them with --image REF or --images-from FILE");
    }
    let limits = args.limits.limits();
    // Each layout opened once, however many images it gives.
    let mut layouts: Vec<(PathBuf, Box<dyn LayoutRead>)> = Vec::new();
    let mut wanted: Vec<(usize, ocikit::spec::reference::Reference, String)> = Vec::new();
    for text in &texts {
        let reference = super::args::reference(text)?;
        let at = match layouts
            .iter()
            .position(|(path, _)| *path == reference.layout)
        {
            Some(at) => at,
            None => {
                let layout =
                    ocikit::store::open_read(&reference, ocikit::store::Check::Layout, &limits)?;
                layouts.push((reference.layout.clone(), layout));
                layouts.len() - 1
            }
        };
        wanted.push((at, reference, text.clone()));
    }
    let requests: Vec<Request<'_>> = wanted
        .into_iter()
        .map(|(at, reference, text)| Request {
            source: &*layouts[at].1,
            reference,
            text,
        })
        .collect();
    let sign = match &args.sign {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            Some(SigningKey::parse(&bytes, &path.display().to_string())?)
        }
        None => None,
    };
    let base = match &args.base {
        Some(path) => Some(BaseContent::open(path, &limits)?),
        None => None,
    };
    if args.out.as_os_str() == "-" {
        anyhow::bail!(
            "a bundle is not written to stdout: name a directory, or a .tar, .tar.gz or .tar.zst file, as OUT"
        );
    }
    for (source, _) in &layouts {
        if let Some(inside) = within(&args.out, source) {
            anyhow::bail!(
                "{} lies inside the source layout {}: write the bundle elsewhere",
                args.out.display(),
                inside.display()
            );
        }
    }
    let archive = ocikit::ops::export::names_archive(&args.out);
    if !archive && (args.compression.is_some() || args.split_size.is_some()) {
        anyhow::bail!(
            "{} names a directory bundle; --compression and --split-size are for archives (name it .tar, .tar.gz or .tar.zst)",
            args.out.display()
        );
    }
    let output = if archive {
        Output::Archive(
            args.out.clone(),
            archive_options(args.compression, Some(&args.out))?,
        )
    } else {
        Output::Directory(args.out.clone())
    };
    let options = create::Options::new(super::clock()?)
        .with_transfer(args.take.options())
        .with_link(args.link.into())
        .with_sign(sign)
        .with_base(base)
        .with_split(args.split_size.map(|s| s.0));
    let bar = Bar::new("bundling");
    let out_name = args
        .out
        .file_name()
        .map(|n| n.to_string_lossy().to_string());
    let created = create::create(&requests, &output, &options, &bar).map_err(|e| match &e {
        // OUT (or a part of it) exists: no --force to suggest.
        ocikit::Error::Conflict { what, .. }
            if out_name.as_deref().is_some_and(|n| what.contains(n)) =>
        {
            e.into()
        }
        _ => hint(
            e,
            "is not available for bundles; give each image its own name",
        ),
    })?;
    drop(bar);
    let totals = &created.description.totals;
    eprintln!(
        "Bundled {} and {} into {}: {} ({}){}",
        count(totals.images, "image"),
        count(totals.referrers, "referrer"),
        created.path.display(),
        count(totals.blobs, "blob"),
        human_size(totals.bytes),
        match created.archive_bytes {
            Some(bytes) => format!(", archive {}", human_size(bytes)),
            None => String::new(),
        }
    );
    for image in &created.description.images {
        eprintln!(
            "  {} {} {}",
            image.name.as_deref().unwrap_or(&image.reference),
            image.digest,
            image.platforms.join(",")
        );
    }
    if let Some(base) = created
        .description
        .base
        .as_ref()
        .filter(|b| b.omitted.is_empty())
    {
        eprintln!(
            "  incremental against base {}: nothing omitted",
            base.bundle
        );
    } else if let Some(base) = &created.description.base {
        eprintln!(
            "  incremental: {} ({}) left out, expected from base {}",
            count(base.omitted.len(), "blob"),
            human_size(base.omitted.iter().map(|o| o.size).sum()),
            base.bundle
        );
    }
    if let Some(parts) = &created.parts {
        eprintln!(
            "  split into {} of at most {} (list: {}.parts)",
            count(parts.parts.len(), "part"),
            human_size(args.split_size.map_or(0, |s| s.0)),
            created.path.display()
        );
    }
    if let Some(fingerprint) = &created.signed_by {
        eprintln!("  signed SHA256SUMS with {fingerprint} (SHA256SUMS.sig)");
    }
    for warning in &created.warnings {
        eprintln!("warning: {warning}");
    }
    if args.json {
        print_json(&created)?;
    } else {
        let mut out = stdout();
        writeln!(out, "{}", created.bundle)?;
        out.flush()?;
    }
    Ok(super::EXIT_OK)
}

/// Check a bundle (directory or archive): SHA256SUMS, the graph, the description and, when
/// asked, the signature.
///
/// Every file listed in SHA256SUMS must be there and every file there listed (SHA256SUMS.sig
/// aside), and no directory may hold nothing listed; an archive may hold the bundle inside one
/// top-level folder, and anything beside that folder fails. Blob sizes are checked against
/// their descriptors before any hash, then every file is hashed once, in parallel, by its one
/// path from the bundle's root. The images are walked (referrers included) and each blob
/// they reach must be there; each image of ocikit-bundle.json must be in index.json at its
/// pinned digest, with its referrers. A signature is reported as present, not verified,
/// unless --allowed-signers is given; signature referrers (cosign, notation) are reported as
/// present and are never verified. An incremental bundle checked alone is incomplete; with
/// --base its omitted blobs are looked for there, by digest, and hashed. The last line says
/// the outcome: `verified 1,234 files, 3.2 GiB, bundle sha256:…`.
#[derive(Debug, clap::Args)]
#[command(after_help = VERIFY_EXIT_STATUS)]
pub struct VerifyArgs {
    /// The bundle: a directory; an archive (a plain tar is read in place, a compressed one
    /// once, as a stream, hashing as it goes); or a split archive's part list (OUT.parts), whose
    /// parts and whole are checked first (a damaged part is an integrity failure).
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
    /// Check SHA256SUMS.sig against this allowed signers file (ssh-keygen's format:
    /// `principals [options] ssh-ed25519 KEY`, read as `ssh-keygen -Y verify` reads it:
    /// namespaces="PATTERNS", valid-after="TIME", valid-before="TIME", cert-authority; a line
    /// with an unknown option grants nothing) and say who signed; a bundle without a
    /// signature, or with one no listed key made, fails. Only ed25519 signatures are verified.
    #[arg(long, value_name = "FILE")]
    allowed_signers: Option<PathBuf>,
    /// For an incremental bundle: the layout (directory or archive) holding the base's
    /// content; each omitted blob must be there and hash to its digest.
    #[arg(long, value_name = "LAYOUT")]
    base: Option<String>,
    /// Print the report as JSON on stdout: {bundle, files, bytes, images, referrers,
    /// signatureReferrers, signature: {status: absent|present|verified|rejected,
    /// principals?, fingerprint?}, incomplete?: {blobs, bytes, base}, fromBase, problems:
    /// [{severity: integrity|incomplete, path?, message}], description}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: super::LimitArgs,
}

/// The allowed signers file at `path`, read whole.
pub(super) fn read_allowed_signers(path: Option<&Path>) -> anyhow::Result<Option<String>> {
    path.map(|path| {
        std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
    })
    .transpose()
}

/// The line that says who signed a bundle.
pub(super) fn signed_by(signer: &ocikit::ops::bundle::sign::Signer) -> String {
    format!(
        "signature: good, SHA256SUMS signed by {} ({})",
        signer.principals.join(", "),
        signer.fingerprint
    )
}

fn run_verify(args: VerifyArgs) -> anyhow::Result<u8> {
    let limits = args.limits.limits();
    let allowed = read_allowed_signers(args.allowed_signers.as_deref())?;
    let base: Option<Box<dyn LayoutRead>> = match &args.base {
        Some(text) => {
            let reference = super::args::reference(text)?;
            Some(ocikit::store::open_read(
                &reference,
                ocikit::store::Check::Layout,
                &limits,
            )?)
        }
        None => None,
    };
    // An error that is damage found (verify::error_severity) is reported as a failure, exit
    // 1; any other error means it could not run, exit 2.
    let damaged = |e: ocikit::error::Error| -> anyhow::Result<u8> {
        match verify::error_severity(&e) {
            Some(_) => {
                println!("FAILED: {}", super::output::error_chain(&e.into()));
                Ok(super::EXIT_FINDINGS)
            }
            None => Err(e.into()),
        }
    };
    let bar = Bar::new("verifying");
    let opened = match split_parts(&args.bundle) {
        Ok(Some((stream, name))) => Bundle::from_stream(stream, &name, &limits, &bar, None),
        Ok(None) => Bundle::open(&args.bundle, &limits, &bar),
        // A part missing, cut short or changed: the bundle as carried is damaged.
        Err(e) => {
            drop(bar);
            println!("FAILED: {}", super::output::error_chain(&e));
            return Ok(super::EXIT_FINDINGS);
        }
    };
    drop(bar);
    let bundle = match opened {
        Ok(bundle) => bundle,
        Err(e) => return damaged(e),
    };
    let options = verify::Options::default()
        .with_allowed_signers(allowed)
        .with_base(base.as_deref())
        .at(super::clock()?.now);
    let bar = Bar::new("verifying");
    let verified = verify::verify(&bundle, &options, &bar);
    drop(bar);
    let report = match verified {
        Ok(report) => report,
        Err(e) => return damaged(e),
    };
    if args.json {
        print_json(&report)?;
    } else {
        print_report(&report)?;
    }
    Ok(match report.worst() {
        None => super::EXIT_OK,
        Some(Severity::Integrity) => super::EXIT_FINDINGS,
        Some(Severity::Incomplete) => super::EXIT_FAILURE,
    })
}

/// For a split archive (its part list, or the archive's name when only the list is there):
/// the parts, checked (each part's size, then each part's sha256 and the whole's), to be read
/// as one stream, and the name of the list; `None` for anything else.
pub fn split_parts(
    path: &std::path::Path,
) -> anyhow::Result<Option<(Box<dyn Read + Send>, String)>> {
    use ocikit::store::archive::parts;
    let list = if parts::is_part_list(path) {
        path.to_path_buf()
    } else if !path.exists() && parts::is_part_list(&parts::list_path(path)) {
        parts::list_path(path)
    } else {
        return Ok(None);
    };
    let (parsed, paths) = parts::check(&list)?;
    eprintln!(
        "{}: {} checked, the whole {} ({})",
        list.display(),
        count(parsed.parts.len(), "part"),
        human_size(parsed.size),
        parsed.digest
    );
    Ok(Some((
        Box::new(parts::open_parts(paths)),
        list.display().to_string(),
    )))
}

fn print_report(report: &Report) -> anyhow::Result<()> {
    let mut out = stdout();
    for problem in &report.problems {
        match problem.severity {
            Severity::Integrity => writeln!(out, "FAILED: {}", problem.message)?,
            // The message says "incomplete: …" itself.
            Severity::Incomplete => writeln!(out, "{}", problem.message)?,
        }
    }
    match &report.signature {
        Signature::Absent => writeln!(out, "signature: none (SHA256SUMS is not signed)")?,
        Signature::Present => writeln!(
            out,
            "signature: SHA256SUMS.sig present, not verified (check it with --allowed-signers FILE)"
        )?,
        Signature::Verified(signer) => writeln!(out, "{}", signed_by(signer))?,
        Signature::Rejected => writeln!(out, "signature: NOT accepted")?,
    }
    writeln!(
        out,
        "images: {}, referrers: {}{}",
        report.images,
        report.referrers,
        if report.signature_referrers > 0 {
            format!(
                " ({} present, not verified)",
                count(report.signature_referrers, "signature")
            )
        } else {
            String::new()
        }
    )?;
    if let Some(incremental) = report.incremental.as_ref().filter(|i| i.omitted == 0) {
        writeln!(
            out,
            "incremental against base {}: nothing omitted",
            incremental.base
        )?;
    }
    if report.from_base > 0 {
        writeln!(
            out,
            "base: {} found and verified",
            count(report.from_base, "omitted blob")
        )?;
    }
    let bundle = report
        .bundle
        .as_ref()
        .map_or("(unknown)".to_string(), |d| d.to_string());
    let files = format!(
        "{} file{}, {}",
        thousands(report.files),
        if report.files == 1 { "" } else { "s" },
        human_size(report.bytes)
    );
    match report.worst() {
        None => writeln!(out, "verified {files}, bundle {bundle}")?,
        Some(Severity::Integrity) => writeln!(
            out,
            "FAILED: {} in {files} checked, bundle {bundle}",
            count(report.problems.len(), "problem")
        )?,
        Some(Severity::Incomplete) => writeln!(
            out,
            "INCOMPLETE: {files} verified, bundle {bundle}; {}",
            report
                .incomplete
                .as_ref()
                .map_or(String::new(), verify::incomplete_message)
        )?,
    }
    out.flush()?;
    Ok(())
}

/// `1,234,567`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The directory `source` (resolved) when `out` would be written inside it (`out` resolved
/// through its nearest existing ancestor).
fn within(out: &std::path::Path, source: &std::path::Path) -> Option<PathBuf> {
    let source = std::fs::canonicalize(source).ok().filter(|s| s.is_dir())?;
    let absolute = std::path::absolute(out).ok()?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    let resolved = loop {
        if let Ok(resolved) = std::fs::canonicalize(existing) {
            break resolved;
        }
        rest.push(existing.file_name()?.to_os_string());
        existing = existing.parent()?;
    };
    let out = rest
        .iter()
        .rev()
        .fold(resolved, |path, name| path.join(name));
    out.starts_with(&source).then_some(source)
}
