//! The `ocikit` binary: parses arguments, calls the library, prints.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
