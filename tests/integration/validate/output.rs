//! `ocikit validate` output: text, JSON, SARIF and JUnit on a layout with a few findings, the
//! rule list, and the exit status.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::helpers::{ocikit, sample_layout, sample_layout_copy, tool_available};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Replaces the temp path and ocikit's version so snapshots are stable.
fn redact(text: &str, path: &Path) -> String {
    text.replace(&path.display().to_string(), "[LAYOUT]")
        .replace(&format!("\"{VERSION}\""), "\"[VERSION]\"")
}

/// A copy of the sample layout with a few findings:
/// - L11: the layer of `app:gzip` is deleted;
/// - D5: the size of `app:zstd` in index.json is one too many;
/// - L10: a blob nothing references;
/// - L9: a temp file left by an interrupted write.
fn corrupted_layout() -> (tempfile::TempDir, PathBuf) {
    let (dir, layout) = sample_layout_copy();
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let mut index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = |index: &Value, name: &str| -> usize {
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .position(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
            .unwrap()
    };
    let gzip = entry(&index, "app:gzip");
    let manifest: Value = serde_json::from_slice(
        &fs::read(blob(index["manifests"][gzip]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    fs::remove_file(blob(manifest["layers"][0]["digest"].as_str().unwrap())).unwrap();
    let zstd = entry(&index, "app:zstd");
    let size = index["manifests"][zstd]["size"].as_u64().unwrap();
    index["manifests"][zstd]["size"] = Value::from(size + 1);
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let stray = b"nothing references me";
    let digest = format!("{}", ocikit::Digest::sha256_of(stray));
    fs::write(blob(&digest), stray).unwrap();
    fs::write(layout.join(".ocikit-tmp-x"), b"half a blob").unwrap();
    (dir, layout)
}

/// Runs `ocikit validate LAYOUT ARGS…`, asserts the exit status, returns stdout.
fn validate(layout: &Path, args: &[&str], code: i32) -> String {
    let out = ocikit()
        .arg("validate")
        .arg(layout)
        .args(args)
        .env_remove("NO_COLOR")
        .assert()
        .code(code)
        .get_output()
        .clone();
    String::from_utf8(out.stdout).unwrap()
}

// ---- text ----

#[test]
fn text_groups_findings_by_object_and_ends_with_a_summary() {
    let (_dir, layout) = corrupted_layout();
    let text = validate(&layout, &[], 1);
    assert!(
        !text.contains('\x1b'),
        "no color when stdout is not a terminal"
    );
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("2 errors, 1 warning, 1 note in "),
        "{last}"
    );
    insta::assert_snapshot!(redact(&text, &layout));
}

#[test]
fn text_lists_notes_only_with_verbose() {
    let (_dir, layout) = corrupted_layout();
    let short = validate(&layout, &[], 1);
    assert!(short.contains("note[L10] 1 blob that nothing references, 21 B in all"));
    assert!(!short.contains("nothing references this blob"));
    let long = validate(&layout, &["--verbose"], 1);
    assert!(long.contains("  note[L10]: nothing references this blob (21 bytes)"));
    assert_eq!(validate(&layout, &["-v"], 1), long);
}

#[test]
fn text_says_clean_when_there_is_no_error() {
    let text = validate(&sample_layout(), &["--format", "text"], 0);
    assert!(
        text.starts_with("clean: no errors, 0 warnings, 0 notes in "),
        "{text}"
    );
    assert!(text.trim_end().ends_with("checked)"));
}

// ---- JSON ----

#[test]
fn json_follows_its_documented_schema() {
    let (_dir, layout) = corrupted_layout();
    let text = validate(&layout, &["--format", "json"], 1);
    let v: Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "schemaVersion",
            "tool",
            "target",
            "strict",
            "deep",
            "summary",
            "stats",
            "findings"
        ]
    );
    assert_eq!(v["schemaVersion"], 1);
    assert_eq!(
        v["tool"],
        serde_json::json!({"name": "ocikit", "version": VERSION})
    );
    assert_eq!(v["target"], layout.display().to_string());
    assert_eq!(v["strict"], false);
    assert_eq!(v["deep"], false);
    assert_eq!(
        v["summary"],
        serde_json::json!({"errors": 2, "warnings": 1, "notes": 1, "suppressed": 0})
    );
    for key in [
        "blobs",
        "bytes",
        "manifests",
        "layers",
        "unreferenced",
        "unreferencedBytes",
    ] {
        assert!(v["stats"][key].is_u64(), "stats.{key}");
    }
    let allowed: HashSet<&str> = [
        "rule", "level", "message", "file", "digest", "pointer", "entry",
    ]
    .into();
    let mut rules = Vec::new();
    for f in v["findings"].as_array().unwrap() {
        for (key, value) in f.as_object().unwrap() {
            assert!(allowed.contains(key.as_str()), "unexpected field {key}");
            assert!(value.is_string(), "{key} is a string");
        }
        assert!(["error", "warning", "info"].contains(&f["level"].as_str().unwrap()));
        rules.push(f["rule"].as_str().unwrap().to_string());
    }
    rules.sort();
    assert_eq!(rules, ["D5", "L10", "L11", "L9"]);
    let d5 = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "D5")
        .unwrap();
    assert_eq!(d5["file"], "index.json");
    assert!(d5["pointer"].as_str().unwrap().ends_with("/size"));
    assert!(d5.get("entry").is_none(), "absent fields are omitted");
    insta::assert_snapshot!(redact(&text, &layout));
}

#[test]
fn json_of_a_clean_layout_has_no_findings() {
    let v: Value =
        serde_json::from_str(&validate(&sample_layout(), &["--format", "json"], 0)).unwrap();
    assert_eq!(v["findings"], serde_json::json!([]));
    assert_eq!(v["summary"]["errors"], 0);
}

// ---- SARIF ----

#[test]
fn sarif_is_a_code_scanning_log() {
    let (_dir, layout) = corrupted_layout();
    let text = validate(&layout, &["--format", "sarif"], 1);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["$schema"],
        "https://json.schemastore.org/sarif-2.1.0.json"
    );
    assert_eq!(v["version"], "2.1.0");
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "ocikit");
    assert_eq!(driver["version"], VERSION);
    assert!(driver["informationUri"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    let rules = driver["rules"].as_array().unwrap();
    let listed: Value = serde_json::from_str(&list_rules("json")).unwrap();
    assert_eq!(
        rules.len(),
        listed.as_array().unwrap().len(),
        "every rule of the catalogue"
    );
    for rule in rules {
        assert!(rule["id"].is_string());
        assert!(rule["shortDescription"]["text"].is_string());
        assert!(rule["properties"]["source"].is_string());
        assert!(["error", "warning", "note"]
            .contains(&rule["defaultConfiguration"]["level"].as_str().unwrap()));
    }
    assert_eq!(
        run["originalUriBaseIds"]["LAYOUT"]["uri"],
        format!("file://{}/", layout.display())
    );
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    let mut fingerprints = HashSet::new();
    for result in results {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(
            rules[index]["id"], result["ruleId"],
            "ruleIndex points at ruleId"
        );
        assert!(["error", "warning", "note"].contains(&result["level"].as_str().unwrap()));
        assert!(!result["message"]["text"].as_str().unwrap().is_empty());
        let locations = result["locations"].as_array().unwrap();
        assert_eq!(locations.len(), 1, "GitHub needs a location per result");
        let artifact = &locations[0]["physicalLocation"]["artifactLocation"];
        assert_eq!(artifact["uriBaseId"], "LAYOUT");
        let uri = artifact["uri"].as_str().unwrap();
        assert!(layout.join(uri).exists(), "{uri} is a file of the layout");
        assert!(fingerprints.insert(result["partialFingerprints"]["ocikit/v1"].to_string()));
    }
    let d5 = results.iter().find(|r| r["ruleId"] == "D5").unwrap();
    assert_eq!(
        d5["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "index.json"
    );
    assert!(
        d5["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
            .as_str()
            .unwrap()
            .ends_with("/size")
    );
    // The rule catalogue is tested above; the snapshot keeps to the results.
    let mut v = v;
    v["runs"][0]["tool"]["driver"]["rules"] = Value::from("[every rule, as above]");
    for result in v["runs"][0]["results"].as_array_mut().unwrap() {
        result["ruleIndex"] = Value::from("[as above]");
    }
    let text = serde_json::to_string_pretty(&v).unwrap();
    insta::assert_snapshot!(redact(&text, &layout));
}

// ---- JUnit ----

/// A small well-formedness check: tags balance, attributes are quoted, text has no bare `<`
/// or `&` outside entity and character references.
fn assert_well_formed_xml(xml: &str) {
    let body = xml
        .strip_prefix(r#"<?xml version="1.0" encoding="UTF-8"?>"#)
        .expect("an XML declaration");
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    let mut roots = 0;
    while let Some(open) = rest.find('<') {
        check_text(&rest[..open]);
        let close = rest[open..].find('>').expect("a tag ends") + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "balanced tags");
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name = tag.split_whitespace().next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{name}"
        );
        let mut attributes = &tag[name.len()..];
        while !attributes.trim().is_empty() {
            let (key, value) = attributes
                .trim_start()
                .split_once("=\"")
                .expect("key=\"value\"");
            assert!(key.chars().all(|c| c.is_ascii_alphanumeric()), "{key}");
            let end = value.find('"').expect("a closing quote");
            check_text(&value[..end]);
            assert!(!value[..end].contains('<'));
            attributes = &value[end + 1..];
        }
        if stack.is_empty() {
            roots += 1;
        }
        if !self_closing {
            stack.push(name.to_string());
        }
    }
    check_text(rest);
    assert!(stack.is_empty(), "unclosed {stack:?}");
    assert_eq!(roots, 1, "one root element");
}

fn check_text(text: &str) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        let end = rest[amp..].find(';').expect("an entity ends") + amp;
        let entity = &rest[amp + 1..end];
        assert!(
            ["amp", "lt", "gt", "quot", "apos"].contains(&entity)
                || (entity.starts_with('#') && entity[1..].chars().all(|c| c.is_ascii_digit())),
            "entity {entity}"
        );
        rest = &rest[end + 1..];
    }
}

#[test]
fn junit_has_a_test_case_per_rule_and_failures_for_errors() {
    let (_dir, layout) = corrupted_layout();
    let xml = validate(&layout, &["--format", "junit"], 1);
    assert_well_formed_xml(&xml);
    if tool_available("python3") {
        let status = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys, xml.etree.ElementTree as E; E.parse(sys.stdin)",
            ])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(xml.as_bytes())?;
                child.wait()
            })
            .unwrap();
        assert!(status.success(), "python3 parses the JUnit XML");
    }
    let listed: Value = serde_json::from_str(&list_rules("json")).unwrap();
    let checked = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["id"].as_str().unwrap().starts_with('T'))
        .count();
    assert_eq!(
        xml.matches("<testcase ").count(),
        checked,
        "every rule but T (no --deep)"
    );
    assert!(xml.contains(&format!(
        r#"<testsuite name="ocikit validate" tests="{checked}" failures="2" errors="0" skipped="0">"#
    )));
    assert_eq!(xml.matches("<failure ").count(), 2);
    assert!(xml.contains(
        r#"<testcase classname="descriptors" name="D5 size equals the length of the blob">"#
    ));
    assert!(xml.contains("<system-out>warning: .ocikit-tmp-x: "));
    // The passing test cases (one per rule) are counted above; the snapshot keeps the rest.
    let kept: String = xml
        .lines()
        .filter(|l| !(l.trim_start().starts_with("<testcase ") && l.ends_with("/>")))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace(&format!("tests=\"{checked}\""), "tests=\"[RULES]\"");
    insta::assert_snapshot!(redact(&kept, &layout));
}

#[test]
fn junit_of_a_deep_validation_lists_the_tar_rules() {
    let xml = validate(&sample_layout(), &["--format", "junit", "--deep"], 0);
    assert_well_formed_xml(&xml);
    assert!(xml.contains(r#"failures="0""#));
    assert!(xml.contains(r#"name="T1 "#));
}

// ---- --document ----

#[test]
fn document_mode_uses_the_same_renderers() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("manifest.json");
    fs::write(
        &doc,
        br#"{"schemaVersion":3,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#,
    )
    .unwrap();
    let run = |format: &str| {
        let out = ocikit()
            .args(["validate", "--format", format, "--document"])
            .arg(&doc)
            .assert()
            .code(1)
            .get_output()
            .clone();
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run("text");
    assert!(
        text.starts_with(&format!("{}\n  error[M1] /schemaVersion: ", doc.display())),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with(&format!("in {}", doc.display())),
        "{text}"
    );
    let json: Value = serde_json::from_str(&run("json")).unwrap();
    assert_eq!(json["target"], doc.display().to_string());
    assert!(json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "M1"));
    let sarif: Value = serde_json::from_str(&run("sarif")).unwrap();
    let artifact =
        &sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"];
    assert_eq!(artifact["uri"], format!("file://{}", doc.display()));
    let xml = run("junit");
    assert_well_formed_xml(&xml);
    assert!(
        !xml.contains(r#"name="L11 "#),
        "layout rules are not checked on a document"
    );
    assert!(xml.contains(r#"name="M1 "#));
}

// ---- --list-rules ----

fn list_rules(format: &str) -> String {
    let out = ocikit()
        .args(["validate", "--list-rules", "--format", format])
        .assert()
        .success()
        .get_output()
        .clone();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn list_rules_as_json_lists_every_rule_once() {
    let v: Value = serde_json::from_str(&list_rules("json")).unwrap();
    let rules = v.as_array().unwrap();
    let mut ids = HashSet::new();
    for rule in rules {
        let keys: Vec<&str> = rule
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["id", "level", "strictError", "source", "summary"]);
        assert!(
            ids.insert(rule["id"].as_str().unwrap().to_string()),
            "{} twice",
            rule["id"]
        );
        assert!(["error", "warning", "info"].contains(&rule["level"].as_str().unwrap()));
        assert!(rule["strictError"].is_boolean());
    }
    for id in ["L1", "L10", "L11", "D5", "M5", "T1", "J1"] {
        assert!(ids.contains(id), "{id}");
    }
    // The text table lists the same rules, once each.
    let text = list_rules("text");
    assert!(text.starts_with("ID "));
    for id in &ids {
        let rows = text
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(id))
            .count();
        assert_eq!(rows, 1, "{id}");
    }
    assert_eq!(
        ocikit()
            .args(["validate", "--list-rules"])
            .assert()
            .success()
            .get_output()
            .stdout,
        text.as_bytes(),
        "text is the default"
    );
}

#[test]
fn list_rules_refuses_sarif_and_junit() {
    for format in ["sarif", "junit"] {
        ocikit()
            .args(["validate", "--list-rules", "--format", format])
            .assert()
            .code(2)
            .stderr(predicates::str::contains(
                "--list-rules prints text or json",
            ));
    }
}

// ---- exit status ----

#[test]
fn exit_status_is_0_clean_1_findings_2_could_not_run() {
    let (_dir, layout) = corrupted_layout();
    for format in ["text", "json", "sarif", "junit"] {
        validate(&sample_layout(), &["--format", format], 0);
        validate(&layout, &["--format", format], 1);
        let out = validate(Path::new("/nonexistent/layout"), &["--format", format], 2);
        assert!(out.is_empty(), "nothing on stdout when validate cannot run");
    }
    ocikit()
        .args(["validate", "--format", "xml"])
        .arg(sample_layout())
        .assert()
        .code(2);
}

/// A layout whose only finding is I6 (no `mediaType` in index.json), as every producer writes.
fn layout_without_index_media_type() -> (tempfile::TempDir, PathBuf) {
    let (dir, layout) = sample_layout_copy();
    let mut index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    index.as_object_mut().unwrap().remove("mediaType");
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    (dir, layout)
}

fn validate_json(args: &[&str], layout: &Path, code: i32) -> Value {
    let out = ocikit()
        .arg("validate")
        .args(args)
        .args(["--format", "json"])
        .arg(layout)
        .assert()
        .code(code)
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

/// `--strict` except where a CI job chooses: allowed rules are reported as suppressed and do
/// not count, in every format.
#[test]
fn allowed_rules_are_suppressed_not_counted() {
    let (_dir, layout) = layout_without_index_media_type();
    let strict = validate_json(&["--strict"], &layout, 1);
    assert_eq!(strict["summary"]["errors"], 1);
    assert_eq!(strict["findings"][0]["rule"], "I6");

    for allow in [
        vec!["--allow", "I6"],
        vec!["--allow", "M11,I6"],
        vec!["--allow", "M11", "--allow", "I6"],
    ] {
        let mut args = vec!["--strict"];
        args.extend(allow);
        let report = validate_json(&args, &layout, 0);
        assert_eq!(report["summary"]["errors"], 0);
        assert_eq!(report["summary"]["suppressed"], 1);
        assert_eq!(report["findings"][0]["suppressed"], true);
    }
    // text: not shown, but counted as allowed
    let text = ocikit()
        .args(["validate", "--strict", "--allow", "I6"])
        .arg(&layout)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(text).unwrap();
    assert!(!text.contains("[I6]"), "{text}");
    assert!(
        text.contains("1 finding of allowed rules not shown"),
        "{text}"
    );
    // SARIF: an external suppression
    let sarif = ocikit()
        .args(["validate", "--strict", "--allow", "I6", "--format", "sarif"])
        .arg(&layout)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let sarif: Value = serde_json::from_slice(&sarif).unwrap();
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "I6");
    assert_eq!(result["suppressions"][0]["kind"], "external");
    // JUnit: no failure
    let junit = ocikit()
        .args(["validate", "--strict", "--allow", "I6", "--format", "junit"])
        .arg(&layout)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let junit = String::from_utf8(junit).unwrap();
    assert!(junit.contains(r#"failures="0""#), "{junit}");
    assert!(junit.contains("error (allowed)"), "{junit}");
}

/// `.ocikit.toml` beside the layout (or `--config`) holds the project's allowed rules; a typo
/// in a rule id or a key is an error, never a silent "allow nothing".
#[test]
fn the_configuration_file_allows_rules_and_refuses_typos() {
    let (dir, layout) = layout_without_index_media_type();
    fs::write(
        dir.path().join(".ocikit.toml"),
        "[validate]\nallow = [\"I6\"]\n",
    )
    .unwrap();
    let report = validate_json(&["--strict"], &layout, 0);
    assert_eq!(report["summary"]["suppressed"], 1);

    // an explicit --config wins over the file beside the layout
    let other = dir.path().join("strict.toml");
    fs::write(&other, "[validate]\nallow = []\n").unwrap();
    validate_json(
        &["--strict", "--config", other.to_str().unwrap()],
        &layout,
        1,
    );

    for (text, expected) in [
        (
            "[validate]\nallow = [\"I66\"]\n",
            "\"I66\" is not the id of a validation rule",
        ),
        ("[validate]\nalow = [\"I6\"]\n", "unknown field"),
        ("[validate\n", "is not valid"),
    ] {
        fs::write(dir.path().join(".ocikit.toml"), text).unwrap();
        ocikit()
            .args(["validate", "--strict"])
            .arg(&layout)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(expected));
    }
    fs::remove_file(dir.path().join(".ocikit.toml")).unwrap();
    ocikit()
        .args(["validate", "--allow", "X1"])
        .arg(&layout)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--list-rules"));
}
