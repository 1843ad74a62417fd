//! Parser differentials (issue 8, item 3): a document that Go's `encoding/json` (skopeo, umoci,
//! containerd, registries) reads differently from ocikit is an error-level finding of
//! `validate` (J2 repeated field, J3 case-folded name) with its JSON pointer, and every
//! command that reads it refuses it (exit 2) naming the file and the pointer, writing and
//! deleting nothing. The interop test that shows skopeo really reads the other digest is in
//! `interop.rs`.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::helpers::{blob_names, index_bytes, ocikit, sample_layout_copy};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A copy of the sample layout to corrupt.
pub struct Layout {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Layout {
    pub fn sample() -> Layout {
        let (dir, root) = sample_layout_copy();
        Layout { _dir: dir, root }
    }

    pub fn arg(&self) -> String {
        self.root.display().to_string()
    }

    fn index(&self) -> Value {
        serde_json::from_slice(&index_bytes(&self.root)).unwrap()
    }

    fn position_of(&self, name: &str) -> usize {
        self.index()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .position(|e| e["annotations"][REF_NAME] == name)
            .unwrap_or_else(|| panic!("no entry named {name}"))
    }

    /// The digest of the entry named `name`.
    pub fn named(&self, name: &str) -> String {
        self.index()["manifests"][self.position_of(name)]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        let (algorithm, encoded) = digest.split_once(':').unwrap();
        self.root.join("blobs").join(algorithm).join(encoded)
    }

    fn blob(&self, digest: &str) -> Vec<u8> {
        fs::read(self.blob_path(digest)).unwrap()
    }

    fn doc(&self, digest: &str) -> Value {
        serde_json::from_slice(&self.blob(digest)).unwrap()
    }

    /// Writes `bytes` as a blob; returns its digest and size.
    fn add_blob(&self, bytes: &[u8]) -> (String, usize) {
        let digest = ocikit::Digest::sha256_of(bytes).as_str().to_string();
        fs::write(self.blob_path(&digest), bytes).unwrap();
        (digest, bytes.len())
    }

    /// Points the entry named `name` at a new blob of `bytes`; returns its digest.
    fn repoint(&self, name: &str, bytes: &[u8]) -> String {
        let (digest, size) = self.add_blob(bytes);
        let position = self.position_of(name);
        let mut index = self.index();
        index["manifests"][position]["digest"] = json!(digest);
        index["manifests"][position]["size"] = json!(size);
        fs::write(
            self.root.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
        digest
    }

    /// The issue's example: the entry `app:gzip` keeps `"digest": A` (the gzip manifest) and
    /// gains `"Digest": B` (the zstd manifest, 401 bytes like A), and the entry `app:zstd` is
    /// removed, so that only `"Digest"` leads to B. ocikit reads A; Go reads B; a gc that
    /// trusted ocikit's reading would delete B and its layers. Returns (A, B).
    pub fn issue_example() -> (Layout, String, String) {
        Layout::with_second_digest("Digest")
    }

    /// [`Layout::issue_example`] with `member` (written right after `"digest": A`) for
    /// `"Digest"`.
    pub fn with_second_digest(member: &str) -> (Layout, String, String) {
        let layout = Layout::sample();
        let a = layout.named("app:gzip");
        let b = layout.named("app:zstd");
        assert_eq!(layout.blob(&a).len(), layout.blob(&b).len());
        let mut index = layout.index();
        let zstd = layout.position_of("app:zstd");
        index["manifests"].as_array_mut().unwrap().remove(zstd);
        let text = serde_json::to_string(&index).unwrap();
        let digest = format!(r#""digest":"{a}""#);
        assert_eq!(text.matches(&digest).count(), 1);
        let second = format!(r#"{digest},{}:"{b}""#, json!(member));
        fs::write(
            layout.root.join("index.json"),
            text.replacen(&digest, &second, 1),
        )
        .unwrap();
        (layout, a, b)
    }
}

/// `validate --format json` exits 1 with an error finding of `rule` at `pointer` in `file`.
fn assert_finding(layout: &Layout, rule: &str, file: &str, pointer: &str) {
    assert_finding_in(&layout.root, rule, file, pointer);
}

/// [`assert_finding`] for a layout directory or archive at `target`.
fn assert_finding_in(target: &Path, rule: &str, file: &str, pointer: &str) {
    let out = ocikit()
        .args(["validate", "--format", "json"])
        .arg(target)
        .assert()
        .code(1);
    let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["rule"] == rule
            && f["level"] == "error"
            && f["file"] == file
            && f["pointer"] == pointer),
        "no {rule} at {file} {pointer}: {findings:#?}"
    );
}

/// Every command of `commands` exits 2, naming `file` and `pointer`, and neither index.json
/// nor blobs/ changes.
fn assert_refused(layout: &Layout, commands: &[Vec<String>], file: &str, pointer: &str) {
    let index = index_bytes(&layout.root);
    let blobs = blob_names(&layout.root);
    let mut failures = Vec::new();
    for args in commands {
        let output = ocikit().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let named = stderr.contains(file) && stderr.contains(&format!("at {pointer}, "));
        if output.status.code() != Some(2) || !named {
            failures.push(format!(
                "{args:?}: exit {:?}\nstdout: {}\nstderr: {stderr}",
                output.status.code(),
                String::from_utf8_lossy(&output.stdout)
            ));
        }
        assert_eq!(
            index_bytes(&layout.root),
            index,
            "{args:?} changed index.json"
        );
        assert_eq!(blob_names(&layout.root), blobs, "{args:?} changed blobs/");
    }
    assert!(failures.is_empty(), "not refused:\n{}", failures.join("\n"));
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

/// Every command that reads `index.json` (on a layout whose `app:gzip` entry is at fault)
/// refuses it, naming index.json and `pointer`.
fn assert_index_json_refused(layout: &Layout, pointer: &str) {
    let l = layout.arg();
    let gzip = format!("{l}:app:gzip");
    let note = layout.root.with_file_name("note.txt");
    fs::write(&note, "hello").unwrap();
    let file = note.display().to_string();
    let commands = vec![
        args(&["ls", &l]),
        args(&["ls", "--json", &l]),
        args(&["inspect", &gzip]),
        args(&["inspect", "--raw", &gzip]),
        args(&["tag", &gzip, "v2"]),
        args(&["rm", &gzip]),
        args(&["rm", &format!("{l}@{}", layout.named("app:gzip"))]),
        args(&["gc", &l]),
        args(&["gc", "--dry-run", &l]),
        args(&["referrers", &gzip]),
        args(&["attach", &gzip, "--artifact-type", "text/plain", &file]),
        args(&[
            "artifact",
            "push",
            &format!("{l}:new"),
            &file,
            "--artifact-type",
            "text/plain",
        ]),
    ];
    let index_json = layout.root.join("index.json").display().to_string();
    assert_refused(layout, &commands, &index_json, pointer);
}

#[test]
fn the_issue_example_is_reported_and_refused_everywhere() {
    let (layout, _a, b) = Layout::issue_example();
    let pointer = format!("/manifests/{}/Digest", layout.position_of("app:gzip"));
    assert_finding(&layout, "J3", "index.json", &pointer);
    assert_index_json_refused(&layout, &pointer);
    // B, which only Go can see, is still there (gc deleted nothing).
    assert!(layout.blob_path(&b).exists());
    // Read in place from an archive, the layout is refused the same way.
    let archive = layout.root.with_file_name("layout.tar");
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(&layout.root)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success());
    let a = archive.display().to_string();
    for command in [
        args(&["ls", &a]),
        args(&["inspect", &format!("{a}:app:gzip")]),
    ] {
        let out = ocikit().args(&command).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {stderr}");
        assert!(stderr.contains(&format!("at {pointer}, ")), "{stderr}");
    }
    assert_finding_in(&archive, "J3", "index.json", &pointer);
}

#[test]
fn index_json_variants_are_refused_everywhere() {
    // Beyond the issue: a folded mediaType, a repeated digest (even with the same value), a
    // long s for size (beside a Kelvin sign that matches no field and is ignored), and a
    // folded top-level "Manifests" that Go would read instead of "manifests".
    // Each edit gets index.json's text and the app:gzip entry's digest member (which appears
    // once); "{entry}" in a pointer stands for that entry's.
    type Edit = fn(&str, &str) -> String;
    let variants: [(&str, &str, Edit); 4] = [
        ("J3", "{entry}/mediatype", |text, m| {
            text.replacen(m, &format!(r#""mediatype":"text/plain",{m}"#), 1)
        }),
        ("J2", "{entry}/digest", |text, m| {
            text.replacen(m, &format!("{m},{m}"), 1)
        }),
        ("J3", "{entry}/\u{17F}ize", |text, m| {
            text.replacen(m, &format!("{m},\"\u{212A}\":1,\"\u{17F}ize\":1"), 1)
        }),
        ("J3", "/Manifests", |text, _| {
            text.replacen('{', r#"{"Manifests":[],"#, 1)
        }),
    ];
    for (rule, pointer, edit) in variants {
        let layout = Layout::sample();
        let text = String::from_utf8(index_bytes(&layout.root)).unwrap();
        let member = format!(r#""digest":"{}""#, layout.named("app:gzip"));
        assert_eq!(text.matches(&member).count(), 1);
        let edited = edit(&text, &member);
        let entry = format!("/manifests/{}", layout.position_of("app:gzip"));
        let pointer = pointer.replace("{entry}", &entry);
        assert_ne!(edited, text);
        fs::write(layout.root.join("index.json"), &edited).unwrap();
        assert_finding(&layout, rule, "index.json", &pointer);
        assert_index_json_refused(&layout, &pointer);
    }
}

#[test]
fn manifest_variants_are_refused_by_every_command_that_reads_them() {
    // The app:zstd manifest (named, no referrers) rewritten three ways.
    type Edit = fn(&Layout, &str) -> Vec<u8>;
    let variants: [(&str, Edit, &str, &str); 3] = [
        (
            "Layers beside layers (Go reads the gzip image's layers)",
            |layout, manifest| {
                let mut value = layout.doc(manifest);
                let other = layout.doc(&layout.named("app:gzip"));
                value["Layers"] = other["layers"].clone();
                serde_json::to_vec(&value).unwrap()
            },
            "J3",
            "/Layers",
        ),
        (
            "a repeated config (Go merges the second into the first)",
            |layout, manifest| {
                let value = layout.doc(manifest);
                let other = layout.doc(&layout.named("app:gzip"));
                let text = serde_json::to_string(&value).unwrap();
                let again = serde_json::to_string(&other["config"]).unwrap();
                let open = text.strip_suffix('}').unwrap();
                format!(r#"{open},"config":{again}}}"#).into_bytes()
            },
            "J2",
            "/config",
        ),
        (
            "a layer with mediatype beside mediaType",
            |layout, manifest| {
                let mut value = layout.doc(manifest);
                value["layers"][0]["mediatype"] =
                    json!("application/vnd.oci.image.layer.v1.tar+gzip");
                serde_json::to_vec(&value).unwrap()
            },
            "J3",
            "/layers/0/mediatype",
        ),
    ];
    for (name, edit, rule, pointer) in variants {
        let layout = Layout::sample();
        let bytes = edit(&layout, &layout.named("app:zstd"));
        let manifest = layout.repoint("app:zstd", &bytes);
        let (algorithm, encoded) = manifest.split_once(':').unwrap();
        assert_finding(
            &layout,
            rule,
            &format!("blobs/{algorithm}/{encoded}"),
            pointer,
        );
        let l = layout.arg();
        let zstd = format!("{l}:app:zstd");
        let note = layout.root.with_file_name("note.txt");
        fs::write(&note, "hello").unwrap();
        let note = note.display().to_string();
        let commands = vec![
            args(&["ls", &l]),
            args(&["inspect", &zstd]),
            args(&["inspect", &format!("{l}@{manifest}")]),
            args(&["tag", &zstd, "v2"]),
            args(&["gc", &l]),
            args(&["gc", "--dry-run", &l]),
            args(&["referrers", &zstd]),
            args(&["attach", &zstd, "--artifact-type", "text/plain", &note]),
        ];
        let what = format!("manifest {manifest}");
        assert_refused(&layout, &commands, &what, pointer);
        eprintln!("{name}: refused");
    }
}

#[test]
fn config_variants_are_refused_by_the_commands_that_read_configs() {
    // gc never reads a config (it is a leaf: nothing in it changes what gc keeps), so only
    // ls (platforms) and inspect read it, and validate reports it.
    let layout = Layout::sample();
    let gzip = layout.named("app:gzip");
    let mut manifest = layout.doc(&gzip);
    let config = manifest["config"]["digest"].as_str().unwrap().to_string();
    let mut value = layout.doc(&config);
    value["rootfs"]["Diff_IDs"] = json!([format!("sha256:{}", "0".repeat(64))]);
    let (new_config, size) = layout.add_blob(&serde_json::to_vec(&value).unwrap());
    manifest["config"]["digest"] = json!(new_config);
    manifest["config"]["size"] = json!(size);
    let zstd_manifest = layout.repoint("app:zstd", &serde_json::to_vec(&manifest).unwrap());
    let (algorithm, encoded) = new_config.split_once(':').unwrap();
    assert_finding(
        &layout,
        "J3",
        &format!("blobs/{algorithm}/{encoded}"),
        "/rootfs/Diff_IDs",
    );
    let l = layout.arg();
    assert_refused(
        &layout,
        &[
            args(&["ls", &l]),
            args(&["inspect", &format!("{l}:app:zstd")]),
            args(&["inspect", &format!("{l}@{zstd_manifest}")]),
        ],
        &format!("config {new_config}"),
        "/rootfs/Diff_IDs",
    );
}

#[test]
fn what_go_reads_with_replacements_or_not_at_all_is_refused() {
    // Both Go and ocikit refuse a byte order mark and trailing data (json.Unmarshal); ocikit
    // also refuses what Go would read with U+FFFD in place (ill-formed UTF-8, lone
    // surrogates) and sizes beyond int64 (which Go refuses), so it never reads a value that
    // differs from Go's.
    type Edit = fn(&[u8]) -> Vec<u8>;
    let index_edits: [(&str, Edit); 6] = [
        ("a byte order mark", |b| {
            [b"\xef\xbb\xbf".as_slice(), b].concat()
        }),
        ("trailing data", |b| [b, b" {}".as_slice()].concat()),
        ("ill-formed UTF-8 in an unknown member", |b| {
            [&b[..b.len() - 1], b",\"x\":\"\xff\"}".as_slice()].concat()
        }),
        ("a lone surrogate in an unknown member", |b| {
            [&b[..b.len() - 1], br#","x":"\ud800"}"#.as_slice()].concat()
        }),
        ("a size beyond int64", |b| {
            let text = String::from_utf8(b.to_vec()).unwrap();
            let at = text.find(r#""size":"#).unwrap() + r#""size":"#.len();
            let end = at + text[at..].find(|c: char| !c.is_ascii_digit()).unwrap();
            format!("{}9223372036854775808{}", &text[..at], &text[end..]).into_bytes()
        }),
        ("nesting deeper than 128 in an unknown member", |b| {
            let deep = format!(r#","x":{}{}}}"#, "[".repeat(129), "]".repeat(129));
            [&b[..b.len() - 1], deep.as_bytes()].concat()
        }),
    ];
    for (name, edit) in index_edits {
        let layout = Layout::sample();
        let bytes = edit(&index_bytes(&layout.root));
        fs::write(layout.root.join("index.json"), &bytes).unwrap();
        let l = layout.arg();
        for command in [
            args(&["ls", &l]),
            args(&["inspect", &format!("{l}:app:gzip")]),
            args(&["gc", &l]),
            args(&["tag", &format!("{l}:app:gzip"), "v2"]),
        ] {
            let out = ocikit().args(&command).output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{name}: {command:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("index.json"),
                "{name}: {command:?}: {stderr}"
            );
        }
        assert_eq!(index_bytes(&layout.root), bytes, "{name}");
        // validate reports it (L5: index.json is not a usable index; D4 for the size).
        let out = ocikit().arg("validate").arg(&layout.root).assert().code(1);
        let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(
            text.contains("error[L5]") || text.contains("error[D4]"),
            "{name}: {text}"
        );
    }
    // The same in a manifest: trailing data used to be ignored by commands (not by validate).
    let layout = Layout::sample();
    let zstd = layout.named("app:zstd");
    let bytes = [layout.blob(&zstd).as_slice(), b"\n{}"].concat();
    let manifest = layout.repoint("app:zstd", &bytes);
    let l = layout.arg();
    for command in [
        args(&["inspect", &format!("{l}:app:zstd")]),
        args(&["gc", &l]),
    ] {
        let out = ocikit().args(&command).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{command:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&manifest) && stderr.contains("trailing"),
            "{command:?}: {stderr}"
        );
    }
    ocikit().arg("validate").arg(&layout.root).assert().code(1);
}

#[test]
fn a_blob_only_referrer_that_go_reads_differently_stops_gc() {
    // A manifest referenced from nowhere whose subject is spelled "Subject": to Go it is a
    // referrer of app:gzip (and so kept with it); to an exact reader it is garbage. gc cannot
    // know which, so it deletes nothing; the referrers scan names it as a problem.
    let layout = Layout::sample();
    let gzip = layout.named("app:gzip");
    let (empty, _) = layout.add_blob(b"{}");
    let empty =
        json!({"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2});
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "text/x-note",
        "config": empty,
        "layers": [empty],
        "Subject": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": gzip,
            "size": layout.blob(&gzip).len(),
        },
    });
    let (referrer, _) = layout.add_blob(&serde_json::to_vec(&manifest).unwrap());
    let l = layout.arg();
    assert_refused(
        &layout,
        &[
            args(&["gc", &l]),
            args(&["gc", "--dry-run", &l]),
            args(&["referrers", "--scan", &format!("{l}:app:gzip")]),
        ],
        &format!("blob {referrer}"),
        "/Subject",
    );
}
