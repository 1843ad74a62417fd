//! `ocikit completions`

/// Print a shell completion script.
///
/// For example: ocikit completions bash > /etc/bash_completion.d/ocikit
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut command = super::command();
    clap_complete::generate(args.shell, &mut command, "ocikit", &mut std::io::stdout());
    Ok(super::EXIT_OK)
}
