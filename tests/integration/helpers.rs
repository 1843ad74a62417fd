//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::Path;

use assert_cmd::Command;

/// The `ocikit` binary under test.
pub fn ocikit() -> Command {
    Command::cargo_bin("ocikit").expect("the ocikit binary is built by cargo test")
}

/// Runs `ocikit init` on `dir`.
pub fn init(dir: &Path) {
    ocikit().arg("init").arg(dir).assert().success();
}
