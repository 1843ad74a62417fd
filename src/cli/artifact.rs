//! `ocikit artifact` (being written)

/// (being written)
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// (being written)
    Push,
}

pub fn run(_command: Command) -> anyhow::Result<u8> {
    anyhow::bail!("not available in this build")
}
