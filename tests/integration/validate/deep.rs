//! `validate --deep`: layouts with one corrupted layer each, built with the library, and the
//! specific `T*` rule each corruption must fire; plus decoys that must stay clean.

use std::io::Write;
use std::path::Path;

use ocikit::codec::layer::{CompressOptions, CompressWriter, Compression};
use ocikit::ops::validate::{validate_layout, Finding, Level, Options, Report};
use ocikit::progress::NoProgress;
use ocikit::spec::digest::Digest;
use ocikit::spec::document::media_type::layer_media_type;
use ocikit::spec::document::media_type::{OCI_CONFIG, OCI_MANIFEST};
use ocikit::store::layout::Layout;
use serde_json::json;

use crate::fixtures::{descriptor_value, tag, write_document};
use crate::helpers::assert_deep_valid;
use crate::helpers::{ocikit, sample_layout, tool_available};
use crate::testkit::{compress, gnu_sparse, header, zstd_raw_frame, Tar, BLOCK};

// ---- tars built by hand (the crate's one test kit), hostile ones included ----

/// A tar of the usual sample entries, with `extra` entries after them.
fn tar_with(extra: Tar) -> Vec<u8> {
    let base = Tar::default()
        .node("etc/", b'5', "")
        .file("etc/os-release", b"NAME=test\n")
        .file("hello.txt", b"hello\n");
    Tar(base.0.into_iter().chain(extra.0).collect()).end()
}

// ---- layouts ----

/// A layout with one image `test` of one layer: `blob` referenced with `media_type`, and
/// `diff_id` in the config.
fn layout_with(dir: &Path, blob: &[u8], media_type: &str, diff_id: &Digest) -> Layout {
    let (layout, _) = Layout::init(&dir.join("layout")).expect("init");
    {
        let writer = layout.writer().expect("writer");
        let layer = writer.write_blob_bytes(blob).expect("write layer");
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        });
        let config = write_document(&writer, OCI_CONFIG, &config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor_value(&config),
            "layers": [{"mediaType": media_type, "digest": layer.digest, "size": layer.size}],
        });
        let manifest = write_document(&writer, OCI_MANIFEST, &manifest);
        tag(&writer, &manifest, "test");
    }
    layout
}

fn deep(layout: &Layout, strict: bool) -> Report {
    let mut options = Options::default();
    options.deep = true;
    options.strict = strict;
    validate_layout(layout, &options, &NoProgress).expect("validation runs")
}

/// The deep report of `tar` compressed with `c`, under its own media type and true diff_id.
fn check_tar(tar: &[u8], c: Compression) -> Report {
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = layout_with(
        dir.path(),
        &compress(tar, c),
        layer_media_type(c),
        &Digest::sha256_of(tar),
    );
    deep(&layout, false)
}

fn rules(report: &Report) -> Vec<&'static str> {
    report.findings.iter().map(|f| f.rule).collect()
}

/// The one finding of `rule`, asserting that nothing else was found.
fn only<'r>(report: &'r Report, rule: &str) -> &'r Finding {
    assert_eq!(rules(report), [rule], "{:#?}", report.findings);
    &report.findings[0]
}

fn assert_clean(report: &Report) {
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.stats.layers, 1);
}

// ---- decoys ----

#[test]
fn valid_layers_with_whiteouts_links_and_long_paths_stay_clean() {
    let long = format!("{}/file.txt", "a-long-directory-name".repeat(12));
    let extra = Tar::default()
        .file("etc/.wh.removed", b"")
        .node("var/", b'5', "")
        .file("var/.wh..wh..opq", b"")
        .node("usr/bin/hard", b'1', "hello.txt")
        .node("etc/localtime", b'2', "/usr/share/zoneinfo/UTC")
        .node("usr/lib/rel", b'2', "../../etc/os-release");
    let tar = tar_with(extra);
    // ocikit's own builder: PAX headers for the long path and link target
    let entries = [
        ocikit::codec::layer::Entry::file(long.as_str(), "x"),
        ocikit::codec::layer::Entry::symlink("l", long.as_str()),
    ];
    let pax = ocikit::codec::layer::write_tar(&entries, 0, Vec::new()).expect("tar");
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        assert_clean(&check_tar(&tar, c));
        assert_clean(&check_tar(&pax, c));
    }
}

#[test]
fn tars_written_by_gnu_tar_stay_clean_and_sparse_files_are_only_warned() {
    if !tool_available("tar") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root");
    let deep_dir = root.join("d".repeat(90)).join("e".repeat(90));
    std::fs::create_dir_all(&deep_dir).expect("mkdir");
    std::fs::write(deep_dir.join("f".repeat(120)), "long\n").expect("write");
    std::fs::write(root.join("plain"), "plain\n").expect("write");
    std::fs::hard_link(root.join("plain"), root.join("hard")).expect("link");
    std::os::unix::fs::symlink("/etc/passwd", root.join("sym")).expect("symlink");
    let mut sparse = std::fs::File::create(root.join("sparse")).expect("create");
    sparse.write_all(b"start").expect("write");
    sparse.set_len(8 << 20).expect("extend");
    drop(sparse);
    for format in ["gnu", "posix"] {
        let out = dir.path().join(format!("{format}.tar"));
        let status = std::process::Command::new("tar")
            .args(["--sparse", &format!("--format={format}"), "-cf"])
            .arg(&out)
            .arg("-C")
            .arg(&root)
            .arg(".")
            .status()
            .expect("run tar");
        assert!(status.success());
        let tar = std::fs::read(&out).expect("read tar");
        let report = check_tar(&tar, Compression::Gzip);
        // Whether GNU tar stores a file as sparse depends on the filesystem; only T9 may appear.
        for f in &report.findings {
            assert_eq!(
                (f.rule, f.level, f.entry.as_deref()),
                ("T9", Level::Warning, Some("./sparse")),
                "{format}: {:#?}",
                report.findings
            );
        }
    }
}

#[test]
fn cli_deep_validation_of_the_sample_layout_exits_0() {
    assert_deep_valid(&sample_layout());
    let (_dir, copy) = crate::helpers::sample_layout_copy();
    let layout = Layout::open(&copy).expect("open");
    let report = deep(&layout, true);
    assert!(report.is_clean(), "{:#?}", report.findings);
    assert!(report.stats.layers >= 3, "{:?}", report.stats);
    assert!(
        !rules(&report).iter().any(|r| r.starts_with('T')),
        "{:#?}",
        report.findings
    );
}

// ---- one corruption per rule ----

#[test]
fn t1_truncated_gzip() {
    let tar = tar_with(Tar::default().file("big", &vec![7u8; 300_000]));
    let blob = compress(&tar, Compression::Gzip);
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = layout_with(
        dir.path(),
        &blob[..blob.len() - 20],
        layer_media_type(Compression::Gzip),
        &Digest::sha256_of(&tar),
    );
    let report = deep(&layout, false);
    let f = only(&report, "T1");
    assert!(f.message.contains("truncated"), "{}", f.message);
    assert!(f
        .file
        .as_deref()
        .is_some_and(|p| p.starts_with("blobs/sha256/")));
}

#[test]
fn t1_corrupt_gzip() {
    let tar = tar_with(Tar::default().file(
        "big",
        &(0..300_000u32).map(|i| (i % 253) as u8).collect::<Vec<_>>(),
    ));
    let mut blob = compress(&tar, Compression::Gzip);
    let mid = blob.len() / 2;
    blob[mid..mid + 32].fill(0xff);
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = layout_with(
        dir.path(),
        &blob,
        layer_media_type(Compression::Gzip),
        &Digest::sha256_of(&tar),
    );
    only(&deep(&layout, false), "T1");
}

#[test]
fn t2_gzip_bytes_under_a_zstd_media_type() {
    let tar = tar_with(Tar::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let blob = compress(&tar, Compression::Gzip);
    let layout = layout_with(
        dir.path(),
        &blob,
        layer_media_type(Compression::Zstd),
        &Digest::sha256_of(&tar),
    );
    let report = deep(&layout, false);
    let f = only(&report, "T2");
    assert!(
        f.message.contains("gzip") && f.message.contains("zstd"),
        "{}",
        f.message
    );
}

#[test]
fn t2_uncompressed_tar_under_a_gzip_media_type_is_still_walked() {
    let tar = tar_with(Tar::default().file("../escape", b""));
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = layout_with(
        dir.path(),
        &tar,
        layer_media_type(Compression::Gzip),
        &Digest::sha256_of(&tar),
    );
    assert_eq!(rules(&deep(&layout, false)), ["T2", "T6"]);
}

#[test]
fn t3_diff_id_mismatch() {
    let tar = tar_with(Tar::default());
    let wrong = Digest::sha256_of(b"not the tar");
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let dir = tempfile::tempdir().expect("temp dir");
        let layout = layout_with(dir.path(), &compress(&tar, c), layer_media_type(c), &wrong);
        let report = deep(&layout, false);
        let f = only(&report, "T3");
        assert!(
            f.message.contains(&wrong.to_string()) && f.message.contains("rootfs.diff_ids[0]"),
            "{}",
            f.message
        );
        assert!(
            f.message.contains(&Digest::sha256_of(&tar).to_string()),
            "{}",
            f.message
        );
    }
}

#[test]
fn t4_truncated_tar() {
    let tar = tar_with(Tar::default().file("big", &vec![1u8; 100_000]));
    let truncated = &tar[..3 * BLOCK + 50_000];
    for c in [Compression::None, Compression::Zstd] {
        let report = check_tar(truncated, c);
        let f = only(&report, "T4");
        assert!(
            f.message.contains("truncated inside the data of big"),
            "{}",
            f.message
        );
    }
}

#[test]
fn t4_bad_header() {
    let mut tar = tar_with(Tar::default().file("x", b"x"));
    tar[3 * BLOCK + 3] ^= 0x20; // the 4th header's name: its checksum no longer matches
    only(&check_tar(&tar, Compression::Gzip), "T4");
}

#[test]
fn t4_a_pax_global_header_gnu_tar_applies() {
    // GNU tar and Python give every later entry this name; Go gives it to none.
    let tar = tar_with(
        Tar::default()
            .global(&[("path", "etc/passwd")])
            .file("x", b"x"),
    );
    let report = check_tar(&tar, Compression::None);
    let f = only(&report, "T4");
    assert!(f.message.contains("sets path"), "{}", f.message);
    // A comment (as `git archive` writes) changes nothing: no finding.
    let tar = tar_with(Tar::default().global(&[("comment", "abc")]).file("x", b"x"));
    assert_eq!(
        rules(&check_tar(&tar, Compression::Gzip)),
        Vec::<&str>::new()
    );
}

#[test]
fn t5_duplicate_paths() {
    let tar = tar_with(
        Tar::default()
            .file("./hello.txt", b"again")
            .node("etc", b'5', ""),
    );
    let report = check_tar(&tar, Compression::Gzip);
    assert_eq!(rules(&report), ["T5", "T5"], "{:#?}", report.findings);
    assert_eq!(report.findings[0].entry.as_deref(), Some("./hello.txt"));
    assert_eq!(report.findings[1].entry.as_deref(), Some("etc"));
}

#[test]
fn t6_dotdot_absolute_and_hard_link_targets() {
    for (extra, entry) in [
        (
            Tar::default().file("../etc/passwd", b"root::0:0"),
            "../etc/passwd",
        ),
        (Tar::default().file("/abs", b""), "/abs"),
        (Tar::default().node("hl", b'1', "../../etc/shadow"), "hl"),
    ] {
        let report = check_tar(&tar_with(extra), Compression::Zstd);
        let f = only(&report, "T6");
        assert_eq!(f.entry.as_deref(), Some(entry));
        assert_eq!(f.level, Level::Error);
    }
}

#[test]
fn t7_bare_whiteout_is_a_warning_and_an_error_under_strict() {
    let tar = tar_with(Tar::default().file("etc/.wh.", b""));
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = layout_with(
        dir.path(),
        &compress(&tar, Compression::Gzip),
        layer_media_type(Compression::Gzip),
        &Digest::sha256_of(&tar),
    );
    let report = deep(&layout, false);
    assert_eq!(only(&report, "T7").level, Level::Warning);
    assert!(report.is_clean());
    let report = deep(&layout, true);
    assert_eq!(only(&report, "T7").level, Level::Error);
}

#[test]
fn t8_reserved_and_non_regular_whiteouts() {
    for extra in [
        Tar::default().file(".wh..wh.foo", b""),
        Tar::default().node("etc/.wh.gone", b'5', ""),
        Tar::default().node("var/.wh..wh..opq", b'2', "x"),
    ] {
        only(&check_tar(&tar_with(extra), Compression::Gzip), "T8");
    }
}

#[test]
fn t9_sparse_entry_is_a_warning() {
    let tar =
        tar_with(Tar::default().raw(gnu_sparse("holes", &[(0, 512), (65536, 512)], 1 << 20), b""));
    let report = check_tar(&tar, Compression::Gzip);
    let f = only(&report, "T9");
    assert_eq!(
        (f.level, f.entry.as_deref()),
        (Level::Warning, Some("holes"))
    );
    assert!(report.is_clean());
}

#[test]
fn t10_decompression_bombs_under_the_default_caps() {
    // 200 MiB of zeros: ~200 KiB of gzip (about 1030:1) and a few KiB of zstd.
    for c in [Compression::Gzip, Compression::Zstd] {
        let mut w = CompressWriter::new(Vec::new(), &CompressOptions::new(c)).expect("compressor");
        w.write_all(&header(b"zeros", b'0', 200 << 20, b""))
            .expect("write");
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..201 {
            w.write_all(&chunk).expect("write");
        }
        let blob = w.finish().expect("finish");
        let dir = tempfile::tempdir().expect("temp dir");
        let layout = layout_with(
            dir.path(),
            &blob,
            layer_media_type(c),
            &Digest::sha256_of(b"unknowable"),
        );
        let report = deep(&layout, false);
        let f = only(&report, "T10");
        assert!(f.message.contains("decompression bomb"), "{}", f.message);
    }
}

#[test]
fn t11_zstd_frame_with_a_256_mib_window() {
    let tar = tar_with(Tar::default());
    let dir = tempfile::tempdir().expect("temp dir");
    // window descriptor: exponent 18 → 2^28 = 256 MiB
    let blob = zstd_raw_frame(18 << 3, &tar);
    let layout = layout_with(
        dir.path(),
        &blob,
        layer_media_type(Compression::Zstd),
        &Digest::sha256_of(&tar),
    );
    let report = deep(&layout, false);
    let f = only(&report, "T11");
    assert!(f.message.contains("256 MiB"), "{}", f.message);
    // The zstd library agrees that it needs --long=28.
    if tool_available("zstd") {
        let path = dir.path().join("frame.zst");
        std::fs::write(&path, &blob).expect("write");
        let refused = std::process::Command::new("zstd")
            .args(["-dc", "-q"])
            .arg(&path)
            .output()
            .expect("run zstd");
        assert!(!refused.status.success());
        let accepted = std::process::Command::new("zstd")
            .args(["-dc", "-q", "--long=28"])
            .arg(&path)
            .output()
            .expect("run zstd");
        assert!(accepted.status.success());
        assert_eq!(accepted.stdout, tar);
    }
}

#[test]
fn t11_zstd_window_via_the_zstd_encoder() {
    // The encoder itself, told to use a 256 MiB window with long-distance matching, on an
    // input it cannot shrink the window for (the size is not known in advance).
    let tar = tar_with(Tar::default());
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("encoder");
    encoder.window_log(28).expect("window_log");
    encoder.long_distance_matching(true).expect("ldm");
    for chunk in tar.chunks(4096) {
        encoder.write_all(chunk).expect("write");
        encoder.flush().expect("flush");
    }
    let blob = encoder.finish().expect("finish");
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = layout_with(
        dir.path(),
        &blob,
        layer_media_type(Compression::Zstd),
        &Digest::sha256_of(&tar),
    );
    only(&deep(&layout, false), "T11");
}

#[test]
fn without_deep_none_of_this_is_looked_at() {
    let tar = tar_with(Tar::default().file("../x", b""));
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = layout_with(
        dir.path(),
        &compress(&tar, Compression::Gzip),
        layer_media_type(Compression::Zstd),
        &Digest::sha256_of(b"x"),
    );
    let report = validate_layout(&layout, &Options::default(), &NoProgress).expect("runs");
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.stats.layers, 0);
}

#[test]
fn cli_reports_tar_findings_and_exits_1() {
    let tar = tar_with(Tar::default().file("/abs", b""));
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = layout_with(
        dir.path(),
        &compress(&tar, Compression::Gzip),
        layer_media_type(Compression::Gzip),
        &Digest::sha256_of(&tar),
    );
    let out = ocikit()
        .args(["validate", "--deep"])
        .arg(layout.root())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("T6"), "{stdout}");
}
