//! Real third-party producers, run here: buildah and podman (vfs storage under a temp dir),
//! containerd (a private daemon on a socket under a temp dir), a distribution registry on
//! 127.0.0.1 with skopeo, umoci. Their normal output must be read by ocikit and give no
//! error-level finding. Each producer is skipped, with a note, when it cannot start here.
//!
//! The kit (`Storage`, `Containerd`, `Registry`, `rootfs`) is shared with other tests that need
//! what real tools write.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{ocikit, tool_available};

/// Runs a tool; `None` (with a note) when it fails, so a producer that cannot work in this
/// sandbox skips its test instead of failing it.
fn try_run(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if out.status.success() {
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        eprintln!(
            "note: `{program} {}` failed here ({}); skipping:\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        None
    }
}

/// Runs a tool that has already shown it works here: failing now is a test failure.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A small root filesystem with what layers commonly hold: nested directories, an executable,
/// a relative and an absolute symlink, a hard link, an empty file.
pub fn rootfs(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("etc/app")).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::write(root.join("etc/app/config.toml"), "name = \"app\"\n").unwrap();
    std::fs::write(root.join("usr/bin/app"), "#!/bin/sh\necho app\n").unwrap();
    std::fs::set_permissions(
        root.join("usr/bin/app"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(root.join("etc/empty"), "").unwrap();
    std::os::unix::fs::symlink("../usr/bin/app", root.join("etc/app-link")).unwrap();
    std::os::unix::fs::symlink("/usr/bin/app", root.join("usr/bin/app-abs")).unwrap();
    std::fs::hard_link(root.join("usr/bin/app"), root.join("usr/bin/app-hard")).unwrap();
    root
}

/// A private containers-storage (vfs) for buildah and podman.
pub struct Storage {
    root: PathBuf,
    runroot: PathBuf,
}

impl Storage {
    /// `None` (with a note) when buildah or podman is missing.
    pub fn new(dir: &Path) -> Option<Storage> {
        if !tool_available("buildah") || !tool_available("podman") {
            return None;
        }
        Some(Storage {
            root: dir.join("storage-root"),
            runroot: dir.join("storage-runroot"),
        })
    }

    fn args<'a>(&'a self, rest: &[&'a str]) -> Vec<String> {
        let mut args = vec![
            "--root".to_string(),
            self.root.display().to_string(),
            "--runroot".to_string(),
            self.runroot.display().to_string(),
            "--storage-driver".to_string(),
            "vfs".to_string(),
        ];
        args.extend(rest.iter().map(|s| s.to_string()));
        args
    }

    fn tool(&self, program: &str, rest: &[&str]) -> Option<String> {
        let args = self.args(rest);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        try_run(program, &args)
    }

    /// `buildah` with this storage; `None` when it fails (with a note).
    pub fn buildah(&self, rest: &[&str]) -> Option<String> {
        self.tool("buildah", rest)
    }

    /// `podman` with this storage; `None` when it fails (with a note).
    pub fn podman(&self, rest: &[&str]) -> Option<String> {
        self.tool("podman", rest)
    }

    /// A private storage under `dir` holding `localhost/app:1`, built from scratch with the
    /// sample [`rootfs`]; `None` (with a note) when buildah or podman cannot run here.
    pub fn with_app(dir: &Path) -> Option<Storage> {
        let storage = Storage::new(dir)?;
        let rootfs = rootfs(dir);
        storage.build_from_scratch(&rootfs, "localhost/app:1")?;
        Some(storage)
    }

    /// `podman save --format FORMAT -o OUT IMAGE…` (`-m` for several images); `None` when it
    /// fails (with a note).
    pub fn save(&self, format: &str, out: &Path, images: &[&str]) -> Option<String> {
        let out = out.to_str().unwrap();
        let mut args = vec!["save", "--format", format, "-o", out];
        if images.len() > 1 {
            args.push("-m");
        }
        args.extend_from_slice(images);
        self.podman(&args)
    }

    /// An image built from scratch with `rootfs` as its one layer, committed into the storage
    /// as `name`; returns the working container's name (for more commits).
    pub fn build_from_scratch(&self, rootfs: &Path, name: &str) -> Option<String> {
        let container = self.buildah(&["from", "scratch"])?.trim().to_string();
        let source = format!("{}/", rootfs.display());
        self.buildah(&["copy", &container, &source, "/"])?;
        self.buildah(&[
            "config",
            "--entrypoint",
            r#"["/usr/bin/app"]"#,
            "--env",
            "A=1",
            "--label",
            "org.example=yes",
            &container,
        ])?;
        self.buildah(&["commit", &container, name])?;
        Some(container)
    }
}

/// A private containerd daemon listening on a socket under a temp dir; killed when dropped.
pub struct Containerd {
    child: Child,
    socket: PathBuf,
}

impl Containerd {
    /// `None` (with a note) when containerd is missing or does not answer within 20 s.
    pub fn start(dir: &Path) -> Option<Containerd> {
        if !tool_available("containerd") || !tool_available("ctr") {
            return None;
        }
        let base = dir.join("containerd");
        std::fs::create_dir_all(&base).unwrap();
        let socket = base.join("containerd.sock");
        let config = base.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n[grpc]\n  address = \"{1}\"\n[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{0}/opt\"\n",
                base.display(),
                socket.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(base.join("log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .ok()?;
        let mut daemon = Containerd { child, socket };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let ok = Command::new("ctr")
                .args(["--address", &daemon.socket.display().to_string(), "version"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return Some(daemon);
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                eprintln!(
                    "note: containerd exited ({status}) here; skipping:\n{}",
                    std::fs::read_to_string(base.join("log")).unwrap_or_default()
                );
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("note: containerd did not answer within 20 s here; skipping");
        let _ = daemon.child.kill();
        None
    }

    /// `ctr` against this daemon.
    pub fn ctr(&self, rest: &[&str]) -> String {
        let mut args = vec!["--address".to_string(), self.socket.display().to_string()];
        args.extend(rest.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run("ctr", &args)
    }
}

impl Containerd {
    /// Imports the OCI archive `archive` of `localhost/app:1` (as `localhost/app`) and exports
    /// that image again to `out`: what `ctr images export` writes.
    pub fn round_trip(&self, archive: &Path, out: &Path) {
        self.ctr(&[
            "images",
            "import",
            "--snapshotter",
            "native",
            "--base-name",
            "localhost/app",
            archive.to_str().unwrap(),
        ]);
        self.ctr(&["images", "export", out.to_str().unwrap(), "localhost/app:1"]);
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A distribution registry (Debian's `docker-registry`) on 127.0.0.1; killed when dropped.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl Registry {
    /// `None` (with a note) when the registry is missing or does not answer within 20 s.
    pub fn start(dir: &Path) -> Option<Registry> {
        if !tool_available("docker-registry") {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .ok()?;
        let base = dir.join("registry");
        std::fs::create_dir_all(&base).unwrap();
        let config = base.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}/data\nhttp:\n  addr: 127.0.0.1:{port}\n",
                base.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut registry = Registry {
            child,
            address: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&registry.address).is_ok() {
                return Some(registry);
            }
            if let Ok(Some(status)) = registry.child.try_wait() {
                eprintln!("note: docker-registry exited ({status}) here; skipping");
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("note: docker-registry did not answer within 20 s here; skipping");
        None
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// skopeo with no dependence on the machine's signature policy.
pub fn skopeo(args: &[&str]) -> String {
    let mut all = vec!["--insecure-policy"];
    all.extend_from_slice(args);
    run("skopeo", &all)
}

/// `validate --deep --format json` of `target`: the findings at error level must be none.
/// Returns the report, for more checks.
fn assert_no_errors(target: &Path, what: &str) -> Value {
    let out = ocikit()
        .args(["validate", "--deep", "--format", "json"])
        .arg(target)
        .output()
        .expect("ocikit runs");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: validate printed no JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let errors: Vec<&Value> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["level"] == "error")
        .collect();
    assert!(
        errors.is_empty() && out.status.code() == Some(0),
        "{what}: a producer's normal output gave error-level findings (exit {:?}): {errors:#?}",
        out.status.code()
    );
    // And the everyday commands read it.
    ocikit().arg("ls").arg(target).assert().success();
    report
}

#[test]
fn buildah_and_podman_output_is_read_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let Some(storage) = Storage::new(dir.path()) else {
        return;
    };
    let rootfs = rootfs(dir.path());
    let Some(container) = storage.build_from_scratch(&rootfs, "localhost/app:1") else {
        return;
    };
    // buildah commit straight into a layout: base.digest and base.name are "" (from scratch).
    let layout = dir.path().join("buildah-oci");
    let dest = format!("oci:{}:app", layout.display());
    storage
        .buildah(&["commit", &container, &dest])
        .expect("buildah commit worked a moment ago");
    let manifest = run(
        crate::helpers::ocikit_path().to_str().unwrap(),
        &["inspect", "--raw", &format!("{}:app", layout.display())],
    );
    assert!(
        manifest.contains(r#""org.opencontainers.image.base.digest":"""#),
        "buildah no longer writes an empty base.digest; this test's premise changed: {manifest}"
    );
    assert_no_errors(&layout, "buildah commit oci:");

    storage
        .buildah(&["tag", "localhost/app:1", "localhost/app:2"])
        .expect("buildah tag");
    let oci_archive = dir.path().join("podman-oci.tar");
    let oci_dir = dir.path().join("podman-oci-dir");
    for (format, out) in [("oci-archive", &oci_archive), ("oci-dir", &oci_dir)] {
        storage
            .save(format, out, &["localhost/app:1"])
            .expect("podman save");
        assert_no_errors(out, &format!("podman save --format {format}"));
    }
}

#[test]
fn containerd_export_is_read_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let Some(storage) = Storage::with_app(dir.path()) else {
        return;
    };
    let archive = dir.path().join("podman-oci.tar");
    storage
        .save("oci-archive", &archive, &["localhost/app:1"])
        .expect("podman save");
    let Some(containerd) = Containerd::start(dir.path()) else {
        return;
    };
    let export = dir.path().join("ctr-export.tar");
    containerd.round_trip(&archive, &export);
    assert_no_errors(&export, "ctr images export");

    // Two images whose tags are both "1": ctr puts only the tag in ref.name and the full name
    // in io.containerd.image.name. The full name selects each; the tag alone is ambiguous and
    // the error shows how to select each one.
    let rootfs = dir.path().join("rootfs");
    std::fs::write(rootfs.join("etc/other"), "another image\n").unwrap();
    storage
        .build_from_scratch(&rootfs, "localhost/other:1")
        .expect("buildah worked a moment ago");
    let other = dir.path().join("podman-other.tar");
    storage
        .save("oci-archive", &other, &["localhost/other:1"])
        .expect("podman save");
    containerd.ctr(&[
        "images",
        "import",
        "--snapshotter",
        "native",
        "--base-name",
        "localhost/other",
        other.to_str().unwrap(),
    ]);
    let both = dir.path().join("ctr-both.tar");
    containerd.ctr(&[
        "images",
        "export",
        both.to_str().unwrap(),
        "localhost/app:1",
        "localhost/other:1",
    ]);
    let digest_of = |name: &str| -> String {
        let out = ocikit()
            .args(["inspect", "--json", &format!("{}:{name}", both.display())])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["digest"].as_str().unwrap().to_string()
    };
    let app = digest_of("localhost/app:1");
    let other_digest = digest_of("localhost/other:1");
    assert_ne!(app, other_digest);
    let out = ocikit()
        .args(["inspect", &format!("{}:1", both.display())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (name, digest) in [
        ("localhost/app:1", &app),
        ("localhost/other:1", &other_digest),
    ] {
        assert!(
            stderr.contains(&format!("{}:{name}", both.display())),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("{}@{digest}", both.display())),
            "{stderr}"
        );
    }
}

#[test]
fn a_registry_round_trip_is_read_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let Some(registry) = Registry::start(dir.path()) else {
        return;
    };
    if !tool_available("skopeo") {
        return;
    }
    // ocikit's own sample, through the registry and back (skopeo rewrites index.json).
    let source = crate::helpers::sample_layout();
    let back = dir.path().join("back");
    for name in ["app:gzip", "app:zstd"] {
        let remote = format!("docker://{}/app:{}", registry.address, &name[4..]);
        skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:{name}", source.display()),
            &remote,
        ]);
        skopeo(&[
            "copy",
            "--src-tls-verify=false",
            &remote,
            &format!("oci:{}:{name}", back.display()),
        ]);
    }
    assert_no_errors(&back, "skopeo copy through a registry");
}

#[test]
fn umoci_and_skopeo_output_is_read_without_errors() {
    if !tool_available("umoci") || !tool_available("skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("umoci");
    let l = layout.display().to_string();
    run("umoci", &["init", "--layout", &l]);
    run("umoci", &["new", "--image", &format!("{l}:app")]);
    let bundle = dir.path().join("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{l}:app"),
            bundle.to_str().unwrap(),
        ],
    );
    let rootfs = rootfs(dir.path());
    crate::helpers::copy_tree(&rootfs.join("etc"), &bundle.join("rootfs/etc"));
    run(
        "umoci",
        &[
            "repack",
            "--image",
            &format!("{l}:app"),
            bundle.to_str().unwrap(),
        ],
    );
    assert_no_errors(&layout, "umoci repack");
    // skopeo recompressing to zstd into another layout
    let zstd = dir.path().join("zstd");
    skopeo(&[
        "copy",
        "--dest-compress-format",
        "zstd",
        &format!("oci:{l}:app"),
        &format!("oci:{}:app", zstd.display()),
    ]);
    assert_no_errors(&zstd, "skopeo copy --dest-compress-format zstd");
}

/// What other tools write that is not an OCI layout is named as what it is, by `validate` too
/// (exit 2, could not run), not reported as a broken layout.
#[test]
fn other_formats_are_named_not_validated_as_broken_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<(PathBuf, &str)> = Vec::new();
    if tool_available("skopeo") {
        let copy = dir.path().join("skopeo-dir");
        skopeo(&[
            "copy",
            &format!("oci:{}:app:gzip", crate::helpers::sample_layout().display()),
            &format!("dir:{}", copy.display()),
        ]);
        cases.push((copy, "skopeo copy … dir:"));
    }
    if let Some(storage) = Storage::new(dir.path()) {
        let rootfs = rootfs(dir.path());
        if storage
            .build_from_scratch(&rootfs, "localhost/app:1")
            .is_some()
        {
            let archive = dir.path().join("docker.tar");
            storage
                .podman(&[
                    "save",
                    "--format",
                    "docker-archive",
                    "-o",
                    archive.to_str().unwrap(),
                    "localhost/app:1",
                ])
                .expect("podman save");
            let extracted = dir.path().join("docker-extracted");
            std::fs::create_dir(&extracted).unwrap();
            run(
                "tar",
                &[
                    "-xf",
                    archive.to_str().unwrap(),
                    "-C",
                    extracted.to_str().unwrap(),
                ],
            );
            cases.push((archive, "docker save"));
            cases.push((extracted, "docker save"));
        }
    }
    for (target, says) in cases {
        for command in [&["validate"][..], &["ls"][..]] {
            let out = ocikit().args(command).arg(&target).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{command:?} {}: {stderr}",
                target.display()
            );
            assert!(
                stderr.contains(says),
                "{command:?} {}: {stderr}",
                target.display()
            );
            assert!(
                out.stdout.is_empty(),
                "no findings printed for {}",
                target.display()
            );
        }
    }
}
