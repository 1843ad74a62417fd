//! `ocikit cat`

use std::io::Write;

/// Write a blob's bytes to stdout, verified against its digest.
///
/// The bytes are streamed; if they do not match the digest, the command fails at the end with
/// exit status 2 (the output must then be discarded). A digest of an algorithm ocikit cannot
/// compute (anything but sha256 and sha512) is refused, unless --unverified.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// LAYOUT@DIGEST of the blob.
    #[arg(value_name = "LAYOUT@DIGEST")]
    blob: String,

    /// Print a blob whose digest algorithm ocikit cannot compute, unchecked (a warning on
    /// stderr says so). Its size is still checked.
    #[arg(long)]
    unverified: bool,

    #[command(flatten)]
    limits: super::LimitArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let (reference, digest) = super::args::blob(&args.blob)?;
    if digest.known_algorithm().is_none() {
        if !args.unverified {
            anyhow::bail!(
                "ocikit cannot compute {} digests, so it cannot verify {digest}; pass --unverified to print its bytes unchecked",
                digest.algorithm()
            );
        }
        eprintln!(
            "warning: {digest} is printed unverified: ocikit cannot compute {} digests",
            digest.algorithm()
        );
    }
    let layout = ocikit::store::open_read(
        &reference,
        ocikit::store::Check::Layout,
        &args.limits.limits(),
    )?;
    let size = layout.blob_len(&digest)?;
    let mut blob = layout.open_blob(&digest, size)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    blob.copy_to(&mut out)?;
    out.flush()?;
    Ok(super::EXIT_OK)
}
