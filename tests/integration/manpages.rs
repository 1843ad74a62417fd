//! The man pages in `man/` are generated from the clap definitions and must not go stale.

use std::fs;
use std::path::Path;

use crate::helpers::ocikit;

#[test]
fn man_pages_match_the_cli_definitions() {
    let fresh = tempfile::tempdir().unwrap();
    ocikit()
        .args(["generate-man", "--out"])
        .arg(fresh.path())
        .assert()
        .success();
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    if std::env::var_os("UPDATE_MAN").is_some() {
        let _ = fs::remove_dir_all(&committed);
        fs::create_dir_all(&committed).unwrap();
        for entry in fs::read_dir(fresh.path()).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), committed.join(entry.file_name())).unwrap();
        }
        return;
    }
    let names = |dir: &Path| {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(fresh.path()),
        names(&committed),
        "man/ lists other pages than the CLI defines; run `UPDATE_MAN=1 cargo test man_pages`"
    );
    for name in names(fresh.path()) {
        assert_eq!(
            fs::read_to_string(fresh.path().join(&name)).unwrap(),
            fs::read_to_string(committed.join(&name)).unwrap(),
            "man/{name} is stale; run `UPDATE_MAN=1 cargo test man_pages`"
        );
    }
}

#[test]
fn every_command_of_the_contract_has_a_man_page() {
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    for command in ["init", "ls", "inspect", "cat", "tag", "rm", "completions"] {
        assert!(
            man.join(format!("ocikit-{command}.1")).is_file(),
            "man/ocikit-{command}.1 is missing"
        );
    }
    let main = fs::read_to_string(man.join("ocikit.1")).unwrap();
    assert!(
        main.contains("EXIT STATUS"),
        "ocikit.1 documents exit codes"
    );
}
