//! Safety: writers killed at random moments never corrupt a layout or lose a name, and hostile
//! layouts get clear errors or findings — never a hang, a panic, or a step outside the layout.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use predicates::prelude::*;
use serde_json::Value;

use crate::helpers::assert_deep_valid;
use crate::helpers::{index_value, ocikit, ocikit_path, sample_layout_copy};

/// Names in `index.json`.
fn names(layout: &Path) -> Vec<String> {
    index_value(layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
        .collect()
}

/// A small deterministic generator, so a failing trial can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// `ocikit ARGS` started with its output discarded.
fn quiet(args: &[String]) -> std::process::Child {
    Command::new(ocikit_path())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// After any crash: the layout opens, index.json parses, no referenced blob is missing and no
/// error-level finding exists (temp leftovers are warnings), and gc then cleans up.
fn assert_intact(
    layout: &Path,
    names_before: &[String],
    removed: Option<&str>,
    trial: usize,
    op: &str,
) {
    ocikit().arg("ls").arg(layout).assert().success();
    let report: Value = serde_json::from_slice(
        &ocikit()
            .args(["validate", "--format", "json"])
            .arg(layout)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap_or_else(|e| panic!("trial {trial} ({op}): validate printed no JSON: {e}"));
    let errors: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == "error")
        .collect();
    assert!(
        errors.is_empty(),
        "trial {trial} ({op}) left errors: {errors:#?}"
    );
    let now = names(layout);
    for name in names_before {
        if Some(name.as_str()) != removed {
            assert!(
                now.contains(name),
                "trial {trial} ({op}) lost the name {name}"
            );
        }
    }
}

#[test]
fn writers_killed_at_random_moments_never_corrupt_the_layout_or_lose_a_name() {
    let (dir, layout) = sample_layout_copy();
    let l = layout.display().to_string();
    // A payload big enough that a kill often lands in the middle of a blob write.
    let payload = dir.path().join("payload.bin");
    let mut rng = Lcg(0x0c1_4b17);
    let bytes: Vec<u8> = (0..4 * 1024 * 1024).map(|_| rng.next() as u8).collect();
    fs::write(&payload, &bytes).unwrap();
    let small = dir.path().join("small.txt");
    fs::write(&small, b"signature").unwrap();
    // A directory layer for image build: the payload, and a compressible file of several
    // gzip blocks.
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("usr")).unwrap();
    fs::copy(&payload, tree.join("usr/payload.bin")).unwrap();
    fs::write(tree.join("usr/text"), b"some text\n".repeat(300_000)).unwrap();

    // An image of several MiB for convert to recompress (a kill often lands mid-layer).
    ok(&[
        "image".into(),
        "build".into(),
        format!("{l}:big"),
        "--layer".into(),
        tree.display().to_string(),
    ]);
    const OPS: usize = 9;
    let trials = OPS + 120; // one timed run of each operation, then 120 killed at random moments
    let mut killed_midway = 0;
    let mut durations = [1u64; OPS];
    for trial in 0..trials {
        let before = names(&layout);
        let op = trial % OPS;
        let (args, removed): (Vec<String>, Option<String>) = match op {
            0 => (
                vec!["tag".into(), format!("{l}:app:gzip"), format!("t{trial}")],
                None,
            ),
            1 => (
                vec![
                    "attach".into(),
                    format!("{l}:app:zstd"),
                    "--artifact-type".into(),
                    "application/vnd.example.sig".into(),
                    payload.display().to_string(),
                ],
                None,
            ),
            2 => (
                vec![
                    "artifact".into(),
                    "push".into(),
                    format!("{l}:a{trial}"),
                    payload.display().to_string(),
                    "--artifact-type".into(),
                    "application/vnd.example.data".into(),
                ],
                None,
            ),
            3 => {
                // Remove a name this test added earlier (never one of the sample's).
                let created = |n: &&String| {
                    let digits = n.strip_prefix('t').or_else(|| n.strip_prefix('a'));
                    digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                };
                let victim = before.iter().find(created).cloned();
                match victim {
                    Some(v) => (vec!["rm".into(), format!("{l}:{v}")], Some(v)),
                    None => (
                        vec!["tag".into(), format!("{l}:app:zstd"), format!("t{trial}")],
                        None,
                    ),
                }
            }
            4 => (vec!["gc".into(), l.clone()], None),
            6 => (
                vec![
                    "image".into(),
                    "build".into(),
                    format!("{l}:b{trial}"),
                    "--layer".into(),
                    tree.display().to_string(),
                    "--base".into(),
                    format!("{l}:app:gzip"),
                ],
                None,
            ),
            7 => (
                vec![
                    "image".into(),
                    "index".into(),
                    format!("{l}:i{trial}"),
                    "app:gzip".into(),
                ],
                None,
            ),
            8 => (
                vec![
                    "convert".into(),
                    format!("{l}:big"),
                    "--compression".into(),
                    if (trial / OPS).is_multiple_of(2) {
                        "zstd"
                    } else {
                        "gzip"
                    }
                    .into(),
                    "--copy-referrers".into(),
                ],
                None,
            ),
            _ => (
                vec![
                    "attach".into(),
                    format!("{l}:app:multi"),
                    "--artifact-type".into(),
                    "application/vnd.example.sig".into(),
                    small.display().to_string(),
                ],
                None,
            ),
        };
        let spawn = || quiet(&args);
        // The first trial of each kind runs to the end and is timed, so that the kills of the
        // later ones land at a random point inside the operation on any machine, fast or slow.
        if trial < OPS {
            let started = Instant::now();
            let status = spawn().wait().unwrap();
            assert!(status.success(), "trial {trial}: {} failed", args.join(" "));
            durations[op] = started.elapsed().as_micros() as u64 + 1;
            assert_intact(&layout, &before, removed.as_deref(), trial, &args.join(" "));
            continue;
        }
        let mut child = spawn();
        std::thread::sleep(Duration::from_micros(rng.next() % durations[op]));
        if child.try_wait().unwrap().is_none() {
            killed_midway += 1;
        }
        let _ = child.kill(); // SIGKILL; the command may already have finished
        let _ = child.wait();
        assert_intact(&layout, &before, removed.as_deref(), trial, &args.join(" "));
    }
    // How many kills hit a running writer depends on the machine, so it is reported, not
    // asserted beyond the fact that the test did kill writers in flight.
    eprintln!(
        "{killed_midway} of {} writers were still running when killed",
        trials - OPS
    );
    assert!(killed_midway > 0, "no writer was killed while running");
    // Whatever crashed writers left, gc removes, and the layout is then spotless.
    ocikit().arg("gc").arg(&layout).assert().success();
    let report: Value = serde_json::from_slice(
        &ocikit()
            .args(["validate", "--format", "json", "--deep"])
            .arg(&layout)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let problems: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] != "info")
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

/// `sh -c SCRIPT` started with its stderr kept (shown if it fails).
fn shell(script: &str) -> std::process::Child {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `gc` on `layout` in a loop until every writer has finished, each successfully (their
/// stderr is shown when one fails); returns how many times gc ran. `dir` holds the stop file.
fn beside_a_gc_loop(layout: &Path, dir: &Path, writers: Vec<std::process::Child>) -> u32 {
    let stop = dir.join("stop");
    let gc_loop = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "n=0; while [ ! -e '{}' ]; do {} gc '{}' >/dev/null || exit 1; n=$((n+1)); done; echo $n",
            stop.display(),
            ocikit_path().display(),
            layout.display()
        ))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut failed = None;
    for w in writers {
        let out = w.wait_with_output().unwrap();
        if !out.status.success() {
            failed.get_or_insert(String::from_utf8_lossy(&out.stderr).to_string());
        }
    }
    fs::write(&stop, b"").unwrap();
    let gc_out = gc_loop.wait_with_output().unwrap();
    if let Some(stderr) = failed {
        panic!("a writer failed: {stderr}");
    }
    assert!(gc_out.status.success(), "a gc run failed");
    String::from_utf8_lossy(&gc_out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn four_writers_and_a_gc_loop_lose_no_operation() {
    let (dir, layout) = sample_layout_copy();
    let l = layout.display().to_string();
    let file = dir.path().join("f.txt");
    fs::write(&file, b"content").unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/conf"), b"content").unwrap();
    let bin = ocikit_path().display().to_string();
    let per_writer = 50;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let script = format!(
                "set -e; for i in $(seq 1 {per_writer}); do \
                   case $((i % 5)) in \
                     0) {bin} tag '{l}:app:gzip' w{w}-tag-$i ;; \
                     1) {bin} artifact push '{l}:w{w}-art-'$i '{f}' --artifact-type application/vnd.example.data >/dev/null ;; \
                     2) {bin} attach '{l}:app:zstd' --artifact-type application/vnd.example.w{w} '{f}' >> '{out}' ;; \
                     3) {bin} image build '{l}:w{w}-img-'$i --layer '{tree}' --base '{l}:app:gzip' --label n=$i >/dev/null 2>&1 ;; \
                     4) {bin} image index '{l}:w{w}-idx-'$i 'w{w}-img-'$((i - 1)) >/dev/null ;; \
                   esac; \
                 done",
                f = file.display(),
                tree = tree.display(),
                out = dir.path().join(format!("attached-{w}")).display()
            );
            Command::new("sh").arg("-c").arg(script).spawn().unwrap()
        })
        .collect();
    let gc_runs = beside_a_gc_loop(&layout, dir.path(), writers);
    assert!(gc_runs > 0, "gc ran beside the writers");

    let now = names(&layout);
    let referrers = crate::helpers::ocikit_json(["referrers", &format!("{l}:app:zstd"), "--json"]);
    let attached: Vec<String> = referrers["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].as_str().unwrap().to_string())
        .collect();
    for w in 0..4 {
        for i in 1..=per_writer {
            let kind = match i % 5 {
                0 => "tag",
                1 => "art",
                3 => "img",
                4 => "idx",
                _ => continue,
            };
            let name = format!("w{w}-{kind}-{i}");
            assert!(now.contains(&name), "{name} lost");
        }
        for digest in fs::read_to_string(dir.path().join(format!("attached-{w}")))
            .unwrap()
            .lines()
        {
            assert!(
                attached.iter().any(|a| a == digest),
                "referrer {digest} of writer {w} lost"
            );
        }
    }
    ocikit().arg("validate").arg(&layout).assert().success();
}

/// Runs `ocikit ARGS`, asserting success.
fn ok(args: &[String]) {
    let status = quiet(args).wait().unwrap();
    assert!(status.success(), "{} failed", args.join(" "));
}

/// Pushes an artifact named `name` into `layout` whose one blob is 4 MiB no other trial has,
/// so that a copy or import of it writes a blob large enough to be killed in the middle of.
fn fresh_artifact(layout: &Path, name: &str, rng: &mut Lcg, dir: &Path) {
    let payload = dir.join("fresh.bin");
    let bytes: Vec<u8> = (0..4 * 1024 * 1024).map(|_| rng.next() as u8).collect();
    fs::write(&payload, &bytes).unwrap();
    ok(&[
        "artifact".into(),
        "push".into(),
        format!("{}:{name}", layout.display()),
        payload.display().to_string(),
        "--artifact-type".into(),
        "application/vnd.example.data".into(),
    ]);
}

#[test]
fn copies_imports_and_exports_killed_at_random_moments_leave_no_broken_layout_or_archive() {
    let (dir, layout) = sample_layout_copy();
    let l = layout.display().to_string();
    let source = dir.path().join("source");
    crate::helpers::init(&source);
    let archive = dir.path().join("out.tar");
    let mut rng = Lcg(0xa4c_41e5);
    let trials = 63; // 3 timed runs, then 60 killed at random moments
    let mut killed_midway = 0;
    let mut durations = [1u64; 3];
    for trial in 0..trials {
        let before = names(&layout);
        let op = trial % 3;
        // Each copy and import brings blobs the layout does not have yet.
        let name = format!("s{trial}");
        let args: Vec<String> = match op {
            0 => {
                fresh_artifact(&source, &name, &mut rng, dir.path());
                vec![
                    "copy".into(),
                    format!("{}:{name}", source.display()),
                    format!("{l}:{name}"),
                ]
            }
            1 => {
                fresh_artifact(&source, &name, &mut rng, dir.path());
                let file = dir.path().join("import.tar.gz");
                ok(&[
                    "export".into(),
                    format!("{}:{name}", source.display()),
                    "-o".into(),
                    file.display().to_string(),
                ]);
                vec!["import".into(), file.display().to_string(), l.clone()]
            }
            _ => vec![
                "export".into(),
                "--all".into(),
                l.clone(),
                "-o".into(),
                archive.display().to_string(),
            ],
        };
        let spawn = || quiet(&args);
        if trial < 3 {
            let started = Instant::now();
            assert!(
                spawn().wait().unwrap().success(),
                "trial {trial}: {} failed",
                args.join(" ")
            );
            durations[op] = started.elapsed().as_micros() as u64 + 1;
        } else {
            let mut child = spawn();
            std::thread::sleep(Duration::from_micros(rng.next() % durations[op]));
            if child.try_wait().unwrap().is_none() {
                killed_midway += 1;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        assert_intact(&layout, &before, None, trial, &args.join(" "));
        // The archive under its final name is always a whole one (an earlier or this export).
        if archive.exists() {
            ocikit().arg("validate").arg(&archive).assert().success();
        }
    }
    eprintln!(
        "{killed_midway} of {} transfers were still running when killed",
        trials - 3
    );
    assert!(killed_midway > 0, "no transfer was killed while running");
    ocikit().arg("gc").arg(&layout).assert().success();
    assert_deep_valid(&layout);
}

/// `bundle create` into a directory or an archive, killed at random moments: the final name is
/// absent or holds a whole bundle that verifies; what a kill leaves is a `.ocikit-tmp-*`
/// directory or file beside it, never a half-written bundle under its name.
#[test]
fn bundles_killed_at_random_moments_are_never_half_written_under_their_name() {
    let (dir, layout) = sample_layout_copy();
    let l = layout.display().to_string();
    let mut rng = Lcg(0xb0d_1e5);
    let trials = 32; // 2 timed runs (a directory, an archive), then 30 killed at random moments
    let mut killed_midway = 0;
    let mut duration = 1u64;
    for trial in 0..trials {
        let name = format!("s{trial}");
        fresh_artifact(&layout, &name, &mut rng, dir.path());
        // Directories and archives in turn.
        let out = match trial % 2 {
            0 => dir.path().join(format!("bundle{trial}")),
            _ => dir.path().join(format!("bundle{trial}.tar")),
        };
        let args: Vec<String> = vec![
            "bundle".into(),
            "create".into(),
            out.display().to_string(),
            "--link".into(),
            "copy".into(),
            "--image".into(),
            format!("{l}:app:gzip"),
            format!("{l}:{name}"),
        ];
        if trial < 2 {
            let started = Instant::now();
            assert!(quiet(&args).wait().unwrap().success(), "{}", args.join(" "));
            duration = duration.max(started.elapsed().as_micros() as u64 + 1);
        } else {
            let mut child = quiet(&args);
            std::thread::sleep(Duration::from_micros(rng.next() % duration));
            if child.try_wait().unwrap().is_none() {
                killed_midway += 1;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if out.exists() {
            ocikit()
                .args(["bundle", "verify"])
                .arg(&out)
                .assert()
                .success();
        }
    }
    eprintln!(
        "{killed_midway} of {} bundles were still being written when killed",
        trials - 2
    );
    assert!(
        killed_midway > 0,
        "no bundle was killed while being written"
    );
}

#[test]
fn copies_and_imports_beside_a_gc_loop_lose_no_name() {
    let (dir, layout) = sample_layout_copy();
    let l = layout.display().to_string();
    let source = dir.path().join("source");
    crate::helpers::init(&source);
    let s = source.display().to_string();
    let bin = ocikit_path().display().to_string();
    let per_writer = 12;
    // Each writer brings new blobs every time, which gc must not sweep before they are named.
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let script = format!(
                "set -e; for i in $(seq 1 {per_writer}); do \
                   head -c 1048576 /dev/urandom > \"{d}/w{w}-$i.bin\"; \
                   {bin} artifact push \"{s}:w{w}-$i\" \"{d}/w{w}-$i.bin\" --artifact-type application/vnd.example.data >/dev/null; \
                   if [ {w} = 0 ]; then {bin} copy --link copy \"{s}:w{w}-$i\" \"{l}:w{w}-$i\" >/dev/null; \
                   else {bin} export \"{s}:w{w}-$i\" -o '{d}/w{w}.tar.zst' && {bin} import - '{l}' < '{d}/w{w}.tar.zst'; fi; \
                 done",
                d = dir.path().display()
            );
            shell(&script)
        })
        .collect();
    beside_a_gc_loop(&layout, dir.path(), writers);
    let now = names(&layout);
    for w in 0..2 {
        for i in 1..=per_writer {
            assert!(now.contains(&format!("w{w}-{i}")), "w{w}-{i} lost");
        }
    }
    assert_deep_valid(&layout);
}

#[test]
fn conversions_beside_a_gc_loop_lose_no_name_and_no_blob() {
    let (dir, layout) = sample_layout_copy();
    let l = layout.display().to_string();
    let bin = ocikit_path().display().to_string();
    let per_writer = 8;
    // Each image has a layer of new bytes, so every conversion writes blobs gc has never seen;
    // every other conversion moves the name instead of giving a new one.
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let script = format!(
                "set -e; for i in $(seq 1 {per_writer}); do \
                   mkdir -p \"{d}/w{w}-$i\"; head -c 1048576 /dev/urandom > \"{d}/w{w}-$i/f\"; \
                   {bin} image build \"{l}:w{w}-src-$i\" --layer \"{d}/w{w}-$i\" >/dev/null; \
                   {bin} convert \"{l}:w{w}-src-$i\" --compression zstd --name \"w{w}-cv-$i\" >/dev/null; \
                   {bin} convert \"{l}:w{w}-src-$i\" --compression none >/dev/null; \
                 done",
                d = dir.path().display()
            );
            shell(&script)
        })
        .collect();
    beside_a_gc_loop(&layout, dir.path(), writers);
    let now = names(&layout);
    for w in 0..2 {
        for i in 1..=per_writer {
            for kind in ["src", "cv"] {
                assert!(
                    now.contains(&format!("w{w}-{kind}-{i}")),
                    "w{w}-{kind}-{i} lost"
                );
            }
        }
    }
    assert_deep_valid(&layout);
}

/// Bundles made from a layout while gc sweeps it, and bundles imported into it: every bundle
/// verifies, and no name is lost.
#[test]
fn bundles_beside_a_gc_loop_verify_and_lose_no_name() {
    let (dir, layout) = sample_layout_copy();
    let l = layout.display().to_string();
    let before = names(&layout);
    let bin = ocikit_path().display().to_string();
    let per_writer = 8;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let script = format!(
                "set -e; for i in $(seq 1 {per_writer}); do \
                   if [ {w} = 0 ]; then \
                     {bin} bundle create \"{d}/b$i\" --link copy --image \"{l}:app:gzip\" \"{l}:app:multi\" >/dev/null 2>&1; \
                     {bin} bundle verify \"{d}/b$i\" >/dev/null; \
                   else \
                     {bin} bundle create \"{d}/x$i.tar.zst\" --image \"{l}:app:zstd\" >/dev/null 2>&1; \
                     {bin} bundle verify \"{d}/x$i.tar.zst\" >/dev/null; \
                     {bin} import \"{d}/x$i.tar.zst\" \"{l}\" 2>/dev/null; \
                   fi; \
                 done",
                d = dir.path().display()
            );
            shell(&script)
        })
        .collect();
    beside_a_gc_loop(&layout, dir.path(), writers);
    assert_eq!(names(&layout), before);
    assert_deep_valid(&layout);
}

// ---- hostile layouts ----

/// Runs a command that must finish quickly with a clear failure or findings, never a panic.
fn must_not_hang(args: &[&str], layout: &Path) -> assert_cmd::assert::Assert {
    let assert = ocikit()
        .args(args)
        .arg(layout)
        .timeout(Duration::from_secs(20))
        .assert();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(
        assert.get_output().status.code().is_some(),
        "{args:?} was killed (hung?)"
    );
    assert
}

#[test]
fn a_symlink_in_blobs_pointing_outside_is_never_followed() {
    let (dir, layout) = sample_layout_copy();
    let secret = dir.path().join("secret");
    fs::write(&secret, b"outside the layout").unwrap();
    // A blob named after the outside file's digest, linking to it, and referenced by an entry.
    let digest = ocikit::Digest::sha256_of(b"outside the layout");
    let link = layout.join("blobs/sha256").join(digest.encoded());
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    must_not_hang(&["validate"], &layout)
        .code(1)
        .stdout(predicate::str::contains("L12"));
    ocikit()
        .args(["cat", &format!("{}@{digest}", layout.display())])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a regular file"));
    must_not_hang(&["ls"], &layout).success();
    must_not_hang(&["gc"], &layout).success();
    assert_eq!(fs::read(&secret).unwrap(), b"outside the layout");
    assert!(link.symlink_metadata().is_ok());
}

/// Every listing of a directory tree, for "nothing changed there".
fn tree(dir: &Path) -> Vec<String> {
    let mut paths: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    paths.sort();
    paths
}

#[test]
fn a_layout_whose_blob_directories_are_symlinks_is_refused_by_every_command() {
    // blobs/ itself, the sha256 directory, and an algorithm directory no blob uses yet: a
    // writer creating blobs/sha512 would otherwise follow it out of the layout.
    for linked in ["blobs", "blobs/sha256", "blobs/sha512"] {
        let (dir, layout) = sample_layout_copy();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let inside = layout.join(linked);
        if inside.exists() {
            fs::rename(&inside, outside.join("moved")).unwrap();
            std::os::unix::fs::symlink(outside.join("moved"), &inside).unwrap();
        } else {
            fs::create_dir(outside.join("moved")).unwrap();
            std::os::unix::fs::symlink(outside.join("moved"), &inside).unwrap();
        }
        let before = tree(&outside);
        let index_before = fs::read(layout.join("index.json")).unwrap();
        let file = dir.path().join("payload.txt");
        fs::write(&file, b"payload").unwrap();
        let l = layout.display().to_string();
        let commands: Vec<Vec<String>> = vec![
            vec!["ls".into(), l.clone()],
            vec!["inspect".into(), format!("{l}:app:gzip")],
            vec!["tag".into(), format!("{l}:app:gzip"), "copy".into()],
            vec!["rm".into(), format!("{l}:app:gzip")],
            vec!["gc".into(), l.clone()],
            vec!["referrers".into(), format!("{l}:app:gzip")],
            vec![
                "artifact".into(),
                "push".into(),
                format!("{l}:new"),
                file.display().to_string(),
                "--artifact-type".into(),
                "application/vnd.example".into(),
            ],
            vec![
                "attach".into(),
                format!("{l}:app:gzip"),
                "--artifact-type".into(),
                "application/vnd.example.sig".into(),
                file.display().to_string(),
            ],
        ];
        for args in &commands {
            ocikit()
                .args(args)
                .timeout(Duration::from_secs(20))
                .assert()
                .code(2)
                .stderr(predicate::str::contains(format!(
                    "{linked} is a symbolic link"
                )));
        }
        must_not_hang(&["validate"], &layout)
            .code(1)
            .stdout(predicate::str::contains("L13"));
        assert_eq!(
            tree(&outside),
            before,
            "{linked}: something was written outside"
        );
        assert_eq!(fs::read(layout.join("index.json")).unwrap(), index_before);
    }
}

#[test]
fn a_blob_that_is_a_directory_is_a_finding_not_a_crash() {
    let (_dir, layout) = sample_layout_copy();
    let digest = crate::helpers::ocikit_json([
        "inspect",
        &format!("{}:app:zstd", layout.display()),
        "--json",
    ])["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    must_not_hang(&["validate"], &layout)
        .code(1)
        .stdout(predicate::str::contains("L12"));
    must_not_hang(&["ls"], &layout).success();
    must_not_hang(&["gc"], &layout).success();
    assert!(path.is_dir());
}

#[test]
fn an_index_json_that_is_a_fifo_or_huge_is_refused_without_hanging() {
    let (_dir, layout) = sample_layout_copy();
    fs::remove_file(layout.join("index.json")).unwrap();
    let status = Command::new("mkfifo")
        .arg(layout.join("index.json"))
        .status()
        .unwrap();
    assert!(status.success());
    must_not_hang(&["ls"], &layout)
        .code(2)
        .stderr(predicate::str::contains("not a regular file"));
    must_not_hang(&["gc"], &layout).code(2);
    must_not_hang(&["validate"], &layout)
        .code(1)
        .stdout(predicate::str::contains("L5"));

    fs::remove_file(layout.join("index.json")).unwrap();
    let huge = fs::File::create(layout.join("index.json")).unwrap();
    huge.set_len(2 * 1024 * 1024 * 1024).unwrap(); // sparse: 2 GB without using the disk
    must_not_hang(&["ls"], &layout)
        .code(2)
        .stderr(predicate::str::contains("larger than"));
    must_not_hang(&["gc"], &layout).code(2);
    must_not_hang(&["validate"], &layout)
        .code(1)
        .stdout(predicate::str::contains("L5"));
}

#[test]
fn a_deeply_nested_index_chain_is_reported_and_gc_refuses_to_guess() {
    let (_dir, layout) = sample_layout_copy();
    let l = layout.display().to_string();
    // Build 80 indexes, each listing the previous one, and name the outermost.
    let child = crate::helpers::ocikit_json(["inspect", &format!("{l}:app:gzip"), "--json"]);
    let mut descriptor = serde_json::json!({
        "mediaType": child["mediaType"], "digest": child["digest"], "size": child["size"],
    });
    for _ in 0..80 {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [descriptor],
        });
        let bytes = ocikit::spec::document::canonical::to_vec(&index);
        let digest = ocikit::Digest::sha256_of(&bytes);
        fs::write(layout.join("blobs/sha256").join(digest.encoded()), &bytes).unwrap();
        descriptor = serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest.to_string(), "size": bytes.len(),
        });
    }
    let mut index = index_value(&layout);
    descriptor["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "deep"});
    index["manifests"].as_array_mut().unwrap().push(descriptor);
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();

    must_not_hang(&["validate"], &layout)
        .code(1)
        .stdout(predicate::str::contains("I5"));
    must_not_hang(&["ls"], &layout);
    let before = crate::helpers::blob_names(&layout);
    must_not_hang(&["gc"], &layout)
        .code(2)
        .stderr(predicate::str::contains("nest more than"));
    assert_eq!(crate::helpers::blob_names(&layout), before);
}

#[test]
fn a_referrer_cycle_terminates_everywhere() {
    let (dir, layout) = sample_layout_copy();
    let l = layout.display().to_string();
    // Referrers whose subjects are each other cannot be made (each digest would have to hash
    // the other), so the cycle is made through an index: A refers to app:gzip, B refers to A,
    // and an index that lists B as a child is tagged — B's subject chain leads back into it.
    let f = dir.path().join("x.txt");
    fs::write(&f, b"x").unwrap();
    let a = crate::helpers::attach(&format!("{l}:app:gzip"), "application/vnd.example.a", &f);
    let b = crate::helpers::attach(&format!("{l}@{a}"), "application/vnd.example.b", &f);
    assert!(a.starts_with("sha256:") && b.starts_with("sha256:"));
    let b_manifest = crate::helpers::ocikit_json(["inspect", &format!("{l}@{b}"), "--json"]);
    let b_descriptor = serde_json::json!({
        "mediaType": b_manifest["mediaType"], "digest": b, "size": b_manifest["size"],
    });
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "artifactType": "application/vnd.example.loop",
        "manifests": [b_descriptor],
        "subject": b_descriptor,
    });
    let bytes = ocikit::spec::document::canonical::to_vec(&index);
    let c = ocikit::Digest::sha256_of(&bytes);
    fs::write(layout.join("blobs/sha256").join(c.encoded()), &bytes).unwrap();
    let mut top = index_value(&layout);
    top["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "artifactType": "application/vnd.example.loop",
            "digest": c.to_string(), "size": bytes.len(),
        }));
    fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    ocikit()
        .args(["referrers", "--tree", &format!("{l}:app:gzip")])
        .timeout(Duration::from_secs(20))
        .assert()
        .success()
        .stdout(predicate::str::contains(&b[7..19]))
        .stdout(predicate::str::contains(&c.encoded()[..12]));
    must_not_hang(&["ls"], &layout).success();
    must_not_hang(&["gc"], &layout).success();
    must_not_hang(&["validate"], &layout).success();
}

/// A small tmpfs mounted for a test, unmounted when dropped; `None` (with a note) where this
/// sandbox cannot mount one.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("note: cannot mount a tmpfs here (not root?); skipping this test");
            return None;
        }
        Some(Tmpfs(at.to_path_buf()))
    }

    fn remount(&self, options: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A full disk and a read-only file system: a clear one-line error naming the path once,
/// no temp file left behind, index.json as it was.
#[test]
fn a_full_or_read_only_file_system_is_a_clear_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Tmpfs::mount(&dir.path().join("fs"), "1m") else {
        return;
    };
    let layout = mount.0.join("layout");
    ocikit().arg("init").arg(&layout).assert().success();
    let big = dir.path().join("big.bin");
    fs::write(&big, vec![7u8; 3 * 1024 * 1024]).unwrap();
    let before = fs::read(layout.join("index.json")).unwrap();
    let leftovers = |layout: &Path| -> Vec<String> {
        walkdir::WalkDir::new(layout)
            .into_iter()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".ocikit-tmp-"))
            .collect()
    };
    let out = ocikit()
        .args(["artifact", "push", &format!("{}:big", layout.display())])
        .arg(&big)
        .args(["--artifact-type", "application/vnd.example"])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let message = String::from_utf8(out).unwrap();
    assert!(message.contains("No space left on device"), "{message}");
    assert_eq!(message.matches(".ocikit-tmp-").count(), 1, "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(leftovers(&layout).is_empty(), "{:?}", leftovers(&layout));
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), before);

    mount.remount("ro");
    let small = dir.path().join("small.txt");
    fs::write(&small, b"small").unwrap();
    let out = ocikit()
        .args(["artifact", "push", &format!("{}:small", layout.display())])
        .arg(&small)
        .args(["--artifact-type", "application/vnd.example"])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let message = String::from_utf8(out).unwrap();
    assert!(message.contains("Read-only file system"), "{message}");
    assert_eq!(
        message.matches(&*layout.display().to_string()).count(),
        1,
        "{message}"
    );
    mount.remount("rw");
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), before);
}

/// Every path below `dir` (not `dir` itself) with its size and mtime, for "nothing changed
/// there".
fn stamped(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.path().symlink_metadata().unwrap();
            format!(
                "{} {} {:?}",
                e.path().display(),
                meta.len(),
                meta.modified().ok()
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn unpacks_killed_at_random_moments_write_only_inside_dir_and_leave_the_layout_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = crate::images::tree(dir.path());
    fs::remove_file(root.join("run-fifo")).unwrap();
    let layout = dir.path().join("layout");
    crate::images::build(
        &format!("{}:app", layout.display()),
        &["--layer", &root.display().to_string()],
        "2",
    );
    let reference = format!("{}:app", layout.display());
    let layout_before = stamped(&layout);
    let outside_before = stamped(dir.path());
    let mut rng = Lcg(0x0b5_7a11);
    let mut duration = 1u64;
    let mut killed_midway = 0;
    let trials = 21;
    for trial in 0..trials {
        let out = dir.path().join(format!("out-{trial}"));
        let args = vec![
            "unpack".to_string(),
            reference.clone(),
            out.display().to_string(),
        ];
        if trial == 0 {
            let started = Instant::now();
            assert!(quiet(&args).wait().unwrap().success());
            duration = started.elapsed().as_micros() as u64 + 1;
        } else {
            let mut child = quiet(&args);
            std::thread::sleep(Duration::from_micros(rng.next() % duration));
            if child.try_wait().unwrap().is_none() {
                killed_midway += 1;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        assert_eq!(stamped(&layout), layout_before, "trial {trial}: the layout");
        let outside: Vec<String> = stamped(dir.path())
            .into_iter()
            .filter(|p| !p.starts_with(&dir.path().join("out-").display().to_string()))
            .collect();
        assert_eq!(outside, outside_before, "trial {trial}: beside DIR");
    }
    eprintln!(
        "{killed_midway} of {} unpacks were still running when killed",
        trials - 1
    );
    assert!(killed_midway > 0, "no unpack was killed while running");
}
