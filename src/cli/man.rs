//! `ocikit generate-man` (hidden): writes the man pages in `man/` from these definitions.

use std::path::PathBuf;

/// Write one man page per command into DIR.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write the pages to.
    #[arg(long, default_value = "man")]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    std::fs::create_dir_all(&args.out)?;
    let command = super::command();
    // ocikit.1, then ocikit-<sub>.1 for every visible subcommand.
    clap_mangen::generate_to(command, &args.out)?;
    // generate_to also writes pages for hidden subcommands; remove them.
    for hidden in super::command()
        .get_subcommands()
        .filter(|c| c.is_hide_set())
    {
        let page = args.out.join(format!("ocikit-{}.1", hidden.get_name()));
        if page.exists() {
            std::fs::remove_file(page)?;
        }
    }
    Ok(super::EXIT_OK)
}
