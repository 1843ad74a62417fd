//! Every foundation command as a user runs it, one module per subcommand: output, exit status,
//! and bad input. The helpers here serve them all.

use std::fs;
use std::path::Path;

use predicates::prelude::*;
use serde_json::Value;

use crate::helpers::{ocikit, sample_layout, sample_layout_copy};

mod cat;
mod init;
mod inspect;
mod ls;
mod references;
mod tag;

/// Runs ocikit with `args` and returns stdout, asserting success.
fn stdout_of(args: &[&str]) -> String {
    let out = ocikit().args(args).assert().success().get_output().clone();
    String::from_utf8(out.stdout).unwrap()
}

fn json_of(args: &[&str]) -> Value {
    serde_json::from_str(&stdout_of(args)).unwrap()
}

fn sample() -> String {
    sample_layout().display().to_string()
}

fn index_json(layout: &Path) -> Value {
    serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap()
}

fn names(layout: &Path) -> Vec<String> {
    index_json(layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
        .collect()
}

fn manifest_digest(name: &str) -> String {
    json_of(&["inspect", &format!("{}:{name}", sample()), "--json"])["digest"]
        .as_str()
        .unwrap()
        .to_string()
}
