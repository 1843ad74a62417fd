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

/// The temp files ocikit left in `dir` (`.ocikit-tmp-*`), by name.
pub fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("a readable directory")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .to_string()
        })
        .filter(|n| n.starts_with(".ocikit-tmp-"))
        .collect()
}

/// The bytes of a layout's `index.json`.
pub fn index_bytes(layout: &Path) -> Vec<u8> {
    std::fs::read(layout.join("index.json")).expect("index.json")
}

/// The parsed `index.json` of a layout.
pub fn index_value(layout: &Path) -> serde_json::Value {
    serde_json::from_slice(&index_bytes(layout)).expect("index.json is JSON")
}

/// The sorted names of the files under `blobs/` (to show that nothing was added).
pub fn blob_names(layout: &Path) -> Vec<String> {
    let mut names: Vec<String> = walkdir::WalkDir::new(layout.join("blobs"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().display().to_string())
        .collect();
    names.sort();
    names
}

/// The blob `digest` of a layout, as bytes.
pub fn blob_bytes(layout: &Path, digest: &str) -> Vec<u8> {
    let (algorithm, encoded) = digest.split_once(':').expect("a digest");
    std::fs::read(layout.join("blobs").join(algorithm).join(encoded)).expect("the blob exists")
}

/// Runs ocikit with `args`, asserting success; returns stdout parsed as JSON.
pub fn ocikit_json<I, S>(args: I) -> serde_json::Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = ocikit().args(args).assert().success();
    serde_json::from_slice(&out.get_output().stdout).expect("ocikit printed JSON")
}

/// The stdout of a successful run, trimmed (a digest, say).
pub fn trimmed_stdout(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stdout)
        .trim()
        .to_string()
}

/// Runs `ocikit attach SUBJECT --artifact-type TYPE FILE`, asserting success; returns the
/// referrer's digest (what attach prints on stdout).
pub fn attach(subject: &str, artifact_type: &str, file: &Path) -> String {
    let out = ocikit()
        .args(["attach", subject, "--artifact-type", artifact_type])
        .arg(file)
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone())
        .expect("attach prints a digest")
        .trim()
        .to_string()
}

/// What a run shows a user, for snapshots: the exit status, stdout and stderr, with every
/// `(path, placeholder)` of `redactions` replaced (temp directories differ on every run).
pub fn transcript(command: &mut Command, redactions: &[(&Path, &str)]) -> String {
    let output = command.output().expect("ocikit runs");
    let mut text = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        output
            .status
            .code()
            .map_or("killed".to_string(), |c| c.to_string()),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for (path, placeholder) in redactions {
        text = text.replace(&path.display().to_string(), placeholder);
    }
    text
}

/// Snapshots what `ocikit ARGS…` shows a user (see [`transcript`]):
/// `cli_snapshot!(["ls", &layout_arg], [(&layout, "[LAYOUT]")])`.
#[macro_export]
macro_rules! cli_snapshot {
    ([$($arg:expr),* $(,)?], [$(($path:expr, $placeholder:expr)),* $(,)?]) => {{
        let mut command = $crate::helpers::ocikit();
        $(command.arg($arg);)*
        let shown = $crate::helpers::transcript(&mut command, &[$((std::path::Path::new($path), $placeholder)),*]);
        insta::assert_snapshot!(shown);
    }};
}

/// `ocikit` run as a user who is not root: uid/gid 65534 through `setpriv` when the tests run
/// as root (the directories it uses must let that user in), else as the tests run.
pub fn ocikit_unprivileged() -> Command {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return ocikit();
    }
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(ocikit_path());
    command
}

/// A tar header (testkit) for `name` with the permission bits `mode`.
pub fn header_with_mode(name: &str, typeflag: u8, size: u64, mode: u32) -> [u8; 512] {
    let mut h = crate::testkit::header(name.as_bytes(), typeflag, size, b"");
    h[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    crate::testkit::set_checksum(&mut h);
    h
}

/// `ocikit validate --deep PATH` succeeds: the layout, its layers included, is valid.
pub fn assert_deep_valid(path: &Path) {
    ocikit()
        .args(["validate", "--deep"])
        .arg(path)
        .assert()
        .success();
}
