//! `ocikit referrers` (being written)

/// (being written)
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("not available in this build")
}
