//! `ocikit image build` and `ocikit image index`

mod build;
mod index;

/// Build images from directories and tars, and multi-platform indexes from images.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Build(Box<build::Args>),
    Index(index::Args),
}

pub fn run(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Build(args) => build::run(*args),
        Command::Index(args) => index::run(args),
    }
}

/// Parses `KEY=VALUE` annotations and labels.
fn pairs(texts: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    Ok(texts
        .iter()
        .map(|t| ocikit::ops::artifact::parse_annotation(t))
        .collect::<ocikit::Result<_>>()?)
}
