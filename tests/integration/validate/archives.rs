//! Layout archives that tar readers read differently: reported by validate, refused by every
//! other command.

use super::*;

// ---------------------------------------------------------------------------------------------
// Layout archives that tar readers read differently (L14, L15)
// ---------------------------------------------------------------------------------------------

/// An archive of the sample layout with entries appended that tar readers read differently.
pub(super) struct AmbiguousArchive {
    name: &'static str,
    pub(super) rule: &'static str,
    /// How many findings of `rule` (and nothing else) validate gives.
    findings: usize,
    /// The entries appended.
    extra: fn(&Fx) -> Vec<Extra>,
}

/// An entry appended to an archive: (type, raw name, link target, data, declared size).
type Extra = (tar::EntryType, String, Option<&'static str>, Vec<u8>, u64);

pub(super) fn ambiguous_archives() -> Vec<AmbiguousArchive> {
    use tar::EntryType::{Directory, Link, Regular};
    fn index(fx: &Fx) -> Vec<u8> {
        fs::read(fx.path("index.json")).unwrap()
    }
    fn file(
        name: &str,
        data: Vec<u8>,
    ) -> (tar::EntryType, String, Option<&'static str>, Vec<u8>, u64) {
        let len = data.len() as u64;
        (Regular, name.to_string(), None, data, len)
    }
    vec![
        AmbiguousArchive {
            name: "index.json twice, as ./index.json",
            rule: "L14",
            findings: 1,
            extra: |fx| vec![file("./index.json", index(fx))],
        },
        AmbiguousArchive {
            name: "a hard link to an entry replaced later",
            rule: "L14",
            findings: 1,
            extra: |fx| {
                vec![
                    file("spare", index(fx)),
                    (Link, "linked".into(), Some("spare"), Vec::new(), 0),
                    file("spare", b"other".to_vec()),
                ]
            },
        },
        AmbiguousArchive {
            name: "an absolute name",
            rule: "L15",
            findings: 1,
            extra: |_| vec![file("/notes.txt", b"x".to_vec())],
        },
        AmbiguousArchive {
            name: "a directory that declares data",
            rule: "L15",
            findings: 1,
            extra: |_| vec![(Directory, "extra/".into(), None, vec![0u8; 512], 512)],
        },
    ]
}

impl AmbiguousArchive {
    /// Writes the archive next to the layout.
    fn write(&self, fx: &Fx) -> PathBuf {
        let path = fx.root.with_file_name("ambiguous.tar");
        let mut builder = tar::Builder::new(fs::File::create(&path).unwrap());
        builder.follow_symlinks(false);
        builder.append_dir_all(".", &fx.root).unwrap();
        for (kind, name, link, data, size) in (self.extra)(fx) {
            let mut header = tar::Header::new_gnu();
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(link) = link {
                header.set_link_name_literal(link).unwrap();
            }
            header.set_entry_type(kind);
            header.set_mode(0o644);
            header.set_size(size);
            header.set_cksum();
            builder.append(&header, &data[..]).unwrap();
        }
        builder.finish().unwrap();
        path
    }
}

#[test]
fn archives_that_tar_readers_read_differently_are_l14_l15_and_refused_by_other_commands() {
    let mut failures = Vec::new();
    for case in ambiguous_archives() {
        let fx = sample();
        let path = case.write(&fx);
        let archive = ocikit::store::archive::Archive::open_unchecked(&path, &Default::default())
            .expect("validate opens it");
        let report = validate_layout(&archive, &Options::default(), &NoProgress).unwrap();
        let rules: Vec<&str> = report
            .findings
            .iter()
            .filter(|f| f.level != Level::Info)
            .map(|f| f.rule)
            .collect();
        if rules != vec![case.rule; case.findings]
            || report
                .findings
                .iter()
                .any(|f| f.rule == case.rule && f.entry.is_none())
        {
            failures.push(format!("{}: {}", case.name, describe(&report.findings)));
        }
        let ls = ocikit().arg("ls").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&ls.stderr);
        if ls.status.code() != Some(2) || !stderr.contains("tar readers disagree") {
            failures.push(format!("{}: ls did not refuse it: {stderr}", case.name));
        }
        let validate = ocikit().arg("validate").arg(&path).output().unwrap();
        if validate.status.code() != Some(1) || !stdout_of(&validate).contains(case.rule) {
            failures.push(format!("{}: validate: {}", case.name, stdout_of(&validate)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn an_entry_beside_the_layout_in_an_archive_is_l16() {
    let fx = sample();
    let path = fx.root.with_file_name("wrapped.tar");
    let mut builder = tar::Builder::new(fs::File::create(&path).unwrap());
    builder.follow_symlinks(false);
    builder.append_dir_all("wrap", &fx.root).unwrap();
    for name in ["payload/run.sh", "notes.txt"] {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(2);
        builder.append_data(&mut header, name, &b"x\n"[..]).unwrap();
    }
    builder.finish().unwrap();
    drop(builder);
    let archive = ocikit::store::archive::Archive::open_unchecked(&path, &Default::default())
        .expect("validate opens it");
    let report = validate_layout(&archive, &Options::default(), &NoProgress).unwrap();
    let l16: Vec<_> = report.findings.iter().filter(|f| f.rule == "L16").collect();
    assert_eq!(l16.len(), 2, "{}", describe(&report.findings));
    assert!(l16.iter().all(|f| f.level == Level::Warning));
    let validate = ocikit().arg("validate").arg(&path).output().unwrap();
    let out = stdout_of(&validate);
    assert!(
        out.contains("L16") && out.contains("payload/run.sh"),
        "{out}"
    );
    // The layout itself is read as usual.
    ocikit().arg("ls").arg(&path).assert().success();
}
