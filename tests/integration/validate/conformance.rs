//! The image-spec's own test vectors: every case must agree.

use super::*;

// ---------------------------------------------------------------------------------------------
// Conformance: the image-spec's test vectors
// ---------------------------------------------------------------------------------------------

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/image-spec")
}

/// One case of `cases.json`.
struct Case {
    file: String,
    media_type: String,
    valid: bool,
    comment: String,
}

/// Every case of `cases.json`, with its media type percent-decoded.
fn cases() -> Vec<Case> {
    let path = conformance_dir().join("cases.json");
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let all: Value = serde_json::from_slice(&bytes).expect("cases.json is JSON");
    let cases = all["cases"]
        .as_array()
        .expect("cases.json has a cases array");
    assert!(!cases.is_empty(), "cases.json lists no cases");
    cases
        .iter()
        .map(|c| {
            let text = |key: &str| {
                c[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("a case without a string {key}: {c}"))
                    .to_string()
            };
            Case {
                file: text("file"),
                media_type: percent_decode(&text("mediaType")),
                valid: c["valid"].as_bool().expect("valid is a boolean"),
                comment: text("comment"),
            }
        })
        .collect()
}

/// Decodes `%XX` escapes (`application/vnd.oci.image.manifest.v1%2Bjson`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("a UTF-8 media type")
}

#[test]
fn percent_decoding() {
    assert_eq!(
        percent_decode("application/vnd.oci.image.manifest.v1%2Bjson"),
        OCI_MANIFEST
    );
    assert_eq!(percent_decode("a%2bb%2"), "a+b%2");
    assert_eq!(percent_decode("text/plain"), "text/plain");
}

/// Every case through the CLI in strict mode: valid ⇒ exit 0, invalid ⇒ exit 1.
#[test]
fn conformance_cases_through_the_cli() {
    let dir = conformance_dir();
    let cases = cases();
    let mut run = 0;
    let mut disagreements = Vec::new();
    for case in &cases {
        let output = ocikit()
            .args([
                "validate",
                "--strict",
                "--media-type",
                &case.media_type,
                "--document",
            ])
            .arg(dir.join(&case.file))
            .output()
            .expect("run ocikit");
        run += 1;
        let want = if case.valid { 0 } else { 1 };
        let got = output.status.code();
        if got != Some(want) {
            disagreements.push(format!(
                "{} ({}; {}): exit {got:?}, want {want}\n{}{}",
                case.file,
                if case.valid { "valid" } else { "invalid" },
                case.comment,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
            ));
        }
    }
    assert_eq!(run, cases.len(), "every case runs");
    assert!(
        disagreements.is_empty(),
        "{} of {} conformance cases disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
}

/// The error-level rules each invalid case fires under `--strict`, read from each case's
/// comment (and, where the file says more than its comment, from the file).
pub(super) const CASE_RULES: &[(&str, &[&str])] = &[
    ("manifest/001.json", &["D2"]), // config.mediaType "invalid"
    // The comment says config.size is a string, but the file is not even JSON (an unclosed
    // "config" object): J1 is what the bytes deserve.
    ("manifest/002.json", &["J1"]),
    ("manifest/003.json", &["D4"]),    // layers[0].size a string
    ("manifest/006.json", &["M5"]),    // empty layers: a SHOULD, an error under --strict
    ("manifest/009.json", &["M7"]),    // subject ".nope"
    ("manifest/010.json", &["G1"]),    // algorithm "sha256+foo+-b"
    ("imageIndex/001.json", &["D2"]),  // manifests[0].mediaType "invalid"
    ("imageIndex/002.json", &["D4"]),  // size a string
    ("imageIndex/003.json", &["D3"]),  // digest missing
    ("imageIndex/004.json", &["D11"]), // platform without architecture
    ("imageIndex/005.json", &["D2"]),  // mediaType "invalid"
    ("imageIndex/006.json", &["D2"]),  // mediaType ""
    ("imageIndex/012.json", &["M7"]),  // subject "nope"
    ("config/001.json", &["C3"]),      // os 123
    ("config/002.json", &["C8"]),      // variant 123
    ("config/003.json", &["C8"]),      // config.User 1234
    // 004–006 also carry "os": 123 (C3) besides the fault their comment names (C8).
    ("config/004.json", &["C8", "C3"]), // history a string
    ("config/005.json", &["C8", "C3"]), // Env [7353]
    ("config/006.json", &["C8", "C3"]), // Volumes an array
    ("config/007.json", &["J1"]),       // not JSON
    ("config/010.json", &["C7"]),       // Env ["foo"]
    ("descriptor/003.json", &["D2"]),   // mediaType missing
    ("descriptor/004.json", &["D2"]),   // no subtype
    ("descriptor/005.json", &["D2"]),   // ".foo/bar"
    ("descriptor/006.json", &["D2"]),   // "foo/.bar"
    ("descriptor/008.json", &["D2"]),   // type of 128 characters
    ("descriptor/009.json", &["D2"]),   // subtype of 128 characters
    ("descriptor/010.json", &["D4"]),   // size missing
    ("descriptor/011.json", &["D4"]),   // size a string
    ("descriptor/012.json", &["D3"]),   // digest missing
    ("descriptor/013.json", &["G1"]),   // ":5b0b…" (no algorithm)
    ("descriptor/014.json", &["G1"]),   // "sha256" (no encoded part)
    ("descriptor/015.json", &["G1"]),   // "SHA256:…"
    ("descriptor/016.json", &["G2"]),   // upper-case sha256 hex
    ("descriptor/018.json", &["D6"]),   // urls ["value"]
    ("descriptor/020.json", &["D9"]),   // artifactType "foo/.bar"
    ("descriptor/027.json", &["G1"]),   // "sha256+foo+-b"
    ("descriptor/030.json", &["D7"]),   // data without padding
    ("descriptor/031.json", &["D4"]),   // size -7682
    ("imageLayout/001.json", &["J1"]),  // "imageLayoutVersion": 1.0.0 (not JSON)
];

/// Every case through the library: valid ⇒ no error; invalid ⇒ exactly the error-level rules
/// of [`CASE_RULES`] (this pins the rule ids).
#[test]
fn conformance_cases_fire_their_rules() {
    let dir = conformance_dir();
    let cases = cases();
    let mut run = 0;
    let mut disagreements = Vec::new();
    let invalid: BTreeSet<&str> = cases
        .iter()
        .filter(|c| !c.valid)
        .map(|c| c.file.as_str())
        .collect();
    let tabled: BTreeSet<&str> = CASE_RULES.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        tabled, invalid,
        "CASE_RULES must list exactly the invalid cases of cases.json"
    );
    for case in &cases {
        let bytes = fs::read(dir.join(&case.file)).expect("read the case");
        let report = validate_document(&bytes, Some(&case.media_type), &case.file, true);
        run += 1;
        let errors: BTreeSet<&str> = report
            .findings
            .iter()
            .filter(|f| f.level == Level::Error)
            .map(|f| f.rule)
            .collect();
        let want: BTreeSet<&str> = CASE_RULES
            .iter()
            .find(|(f, _)| *f == case.file)
            .map(|(_, rules)| rules.iter().copied().collect())
            .unwrap_or_default();
        if errors != want {
            disagreements.push(format!(
                "{} ({}): error rules {errors:?}, want {want:?}\n{}",
                case.file,
                case.comment,
                describe(&report.findings)
            ));
        }
    }
    assert_eq!(run, cases.len(), "every case runs");
    assert!(
        disagreements.is_empty(),
        "{} of {} conformance cases disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
}

/// An empty `layers` is a warning without `--strict` (the spec text says SHOULD).
#[test]
fn empty_layers_is_a_warning_without_strict() {
    let file = conformance_dir().join("manifest/006.json");
    ocikit()
        .args(["validate", "--media-type", OCI_MANIFEST, "--document"])
        .arg(&file)
        .assert()
        .code(0);
    let report = validate_document(&fs::read(&file).unwrap(), None, "006.json", false);
    assert!(report.is_clean());
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.rule == "M5" && f.level == Level::Warning),
        "{}",
        describe(&report.findings)
    );
}

/// The media type is detected from the document when `--media-type` is not given.
#[test]
fn document_kind_is_detected_without_media_type() {
    let dir = conformance_dir();
    for (file, rule) in [
        ("manifest/006.json", "M5"),
        ("config/010.json", "C7"),
        ("descriptor/030.json", "D7"),
        ("imageIndex/004.json", "D11"),
    ] {
        let report = validate_document(&fs::read(dir.join(file)).unwrap(), None, file, true);
        assert!(
            report.findings.iter().any(|f| f.rule == rule),
            "{file}: want {rule}\n{}",
            describe(&report.findings)
        );
    }
    for file in [
        "manifest/004.json",
        "imageIndex/007.json",
        "config/008.json",
    ] {
        let report = validate_document(&fs::read(dir.join(file)).unwrap(), None, file, true);
        assert!(report.is_clean(), "{file}\n{}", describe(&report.findings));
    }
}
