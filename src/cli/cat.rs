//! `ocikit cat`

use std::io::Write;

use ocikit::spec::reference::Reference;

/// Write a blob's bytes to stdout, verified against its digest.
///
/// The bytes are streamed; if they do not match the digest, the command fails at the end with
/// exit status 2 (the output must then be discarded).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// LAYOUT@DIGEST of the blob.
    #[arg(value_name = "LAYOUT@DIGEST")]
    blob: String,
    #[command(flatten)]
    limits: super::LimitArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let reference = Reference::parse(&args.blob)?;
    let digest = reference
        .digest
        .clone()
        .ok_or_else(|| anyhow::anyhow!("{} names no blob; write LAYOUT@DIGEST", args.blob))?;
    if reference.name.is_some() {
        anyhow::bail!("cat takes LAYOUT@DIGEST, without a name");
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
