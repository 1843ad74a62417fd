//! The mutation suite: a valid fixture with one corruption each, every one of which must fire
//! its rule where it should, at the level it should, and nothing else it does not explain;
//! one file per rule family.

use super::*;

mod annotations;
mod configs;
mod descriptors;
mod digests;
mod docker;
mod indexes;
mod json;
mod layout;
mod manifests;
mod referrers;

/// Every mutation, family by family.
fn mutations() -> Vec<Mutation> {
    [
        layout::mutations(),
        digests::mutations(),
        descriptors::mutations(),
        manifests::mutations(),
        json::mutations(),
        indexes::mutations(),
        configs::mutations(),
        annotations::mutations(),
        referrers::mutations(),
        docker::mutations(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The sample layout is clean, even under `--strict`: not one finding.
#[test]
fn the_sample_is_clean() {
    let report = validate(&sample_layout(), true, false);
    assert!(report.findings.is_empty(), "{}", describe(&report.findings));
    assert!(report.stats.blobs > 0 && report.stats.manifests > 0);
}

/// Each corruption fires its rule, where it should, at the level it should — and nothing
/// else at warning or error level that it does not explain.
#[test]
fn mutations_fire_their_rules() {
    let mutations = mutations();
    let names: BTreeSet<&str> = mutations.iter().map(|m| m.name).collect();
    assert_eq!(names.len(), mutations.len(), "mutation names are unique");
    let failures: Vec<String> = mutations.iter().filter_map(Mutation::check).collect();
    assert!(
        failures.is_empty(),
        "{} of {} mutations failed:\n\n{}",
        failures.len(),
        mutations.len(),
        failures.join("\n\n")
    );
}

/// The suite covers every rule family the issue lists, and at least 40 corruptions.
#[test]
fn mutations_cover_every_rule_family() {
    let mutations = mutations();
    assert!(mutations.len() >= 40, "only {} mutations", mutations.len());
    let covered: BTreeSet<&str> = mutations
        .iter()
        .map(|m| m.rule)
        .chain(super::archives::ambiguous_archives().iter().map(|a| a.rule))
        // archives::an_entry_beside_the_layout_in_an_archive_is_l16
        .chain(["L16"])
        .collect();
    for family in ["L", "G", "D", "M", "I", "C", "A", "R", "K"] {
        assert!(
            covered.iter().any(|r| r
                .strip_prefix(family)
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))),
            "no mutation fires a {family} rule"
        );
    }
    // Every rule outside --deep (T) has a mutation or a conformance case.
    let conformance: BTreeSet<&str> = super::conformance::CASE_RULES
        .iter()
        .flat_map(|(_, r)| r.iter().copied())
        .collect();
    let untested: Vec<&str> = RULES
        .iter()
        .map(|r| r.id)
        .filter(|id| !id.starts_with('T'))
        .filter(|id| !covered.contains(id) && !conformance.contains(id))
        .collect();
    assert!(untested.is_empty(), "rules without a test: {untested:?}");
}
