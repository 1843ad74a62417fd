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

/// The path of the built `ocikit` binary, for tests that spawn it from a shell.
pub fn ocikit_path() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("ocikit")
}

/// A private copy of `testdata/sample`, which tests may change freely.
pub fn sample_layout_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let target = dir.path().join("sample");
    copy_tree(&sample_layout(), &target);
    (dir, target)
}

/// The shipped sample layout (read-only: copy it before changing anything).
pub fn sample_layout() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sample")
}

/// Copies a directory tree (regular files and directories).
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("readable tree");
        let relative = entry.path().strip_prefix(from).expect("inside the tree");
        let target = to.join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("create dir");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Whether `tool` is on the PATH; prints a note saying the test is skipped when it is not.
pub fn tool_available(tool: &str) -> bool {
    let found = std::process::Command::new("which")
        .arg(tool)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        eprintln!("note: {tool} is not installed; skipping this test");
    }
    found
}
