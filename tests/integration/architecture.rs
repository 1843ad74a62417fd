//! The library's layering, checked: data flows one way, `ops → graph → store → codec → spec`,
//! and no two modules import each other, directly or around a loop (ARCHITECTURE.md §Layers).
//!
//! The check reads `src/` as text: every `crate::…` path in code (not comments) is an import of
//! the module it names. A module is a layer's direct child (`store::layout`, `ops::validate`);
//! a layer's own `mod.rs` is a module too. `error` and `progress` are at the bottom with `spec`:
//! everything may use them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom first. A module may import modules of its own layer or below.
const LAYERS: &[(&str, usize)] = &[
    ("spec", 0),
    ("error", 0),
    ("progress", 0),
    ("codec", 1),
    ("store", 2),
    ("graph", 3),
    ("ops", 4),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module a file belongs to: `spec::digest` for `src/spec/digest.rs` and for everything
/// under `src/spec/document/`; `store` for `src/store/mod.rs` and `src/store/open.rs`'s kin.
fn module_of(relative: &Path) -> Option<String> {
    let parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [top, ..] if top == "cli" || top == "main" || top == "lib" => None,
        [single] => Some(single.clone()),
        [layer, child, ..] if child == "mod" => Some(layer.clone()),
        [layer, child, ..] => Some(format!("{layer}::{child}")),
        [] => None,
    }
}

fn rank(module: &str) -> usize {
    let layer = module.split("::").next().unwrap_or(module);
    LAYERS
        .iter()
        .find(|(name, _)| *name == layer)
        .map(|(_, rank)| *rank)
        .unwrap_or_else(|| panic!("module {module} is in no layer; add its layer to LAYERS"))
}

/// Every `crate::` path in `code`, with `crate::a::{b, c::d}` groups expanded.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[at + "crate::".len()..];
        if !preceded_by_ident {
            expand("", rest, &mut out);
        }
    }
    out
}

/// Reads one path (or brace group) at the start of `text`, prefixed by `prefix`.
fn expand(prefix: &str, text: &str, out: &mut Vec<String>) {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    let path = format!("{prefix}{}", &text[..end]);
    if text[end..].starts_with('{') {
        let mut depth = 0;
        let mut start = end + 1;
        for (i, c) in text[end..].char_indices() {
            let i = end + i;
            match c {
                '{' => depth += 1,
                '}' | ',' if depth == 1 => {
                    let item = text[start..i].trim();
                    if !item.is_empty() && item != "self" {
                        expand(&path, item, out);
                    } else if item == "self" {
                        out.push(path.trim_end_matches("::").to_string());
                    }
                    start = i + 1;
                    if c == '}' {
                        return;
                    }
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
    } else {
        out.push(path.trim_end_matches("::").to_string());
    }
}

/// The module a `crate::` path lands in.
fn module_of_path(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    let two = parts.iter().take(2).copied().collect::<Vec<_>>().join("::");
    if modules.contains(&two) {
        return Some(two);
    }
    parts
        .first()
        .map(|p| p.to_string())
        .filter(|p| modules.contains(p))
}

/// Code without `//` comments (doc comments may name any module).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// module → the modules it imports.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = src();
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(&root) {
        let entry = entry.expect("src/ is readable");
        if entry.path().extension().is_some_and(|e| e == "rs") {
            files.push(entry.path().to_path_buf());
        }
    }
    let mut modules = BTreeSet::new();
    let mut sources = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&root).expect("inside src").to_path_buf();
        if let Some(module) = module_of(&relative) {
            modules.insert(module.clone());
            let text = std::fs::read_to_string(&file).expect("source is UTF-8");
            sources.push((module, relative, code_of(&text)));
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, relative, code) in sources {
        assert!(
            !code.contains("super::super"),
            "{}: name other modules by crate:: paths, not super::super",
            relative.display()
        );
        let imports = graph.entry(module.clone()).or_default();
        for path in crate_paths(&code) {
            if let Some(target) = module_of_path(&path, &modules) {
                if target != module {
                    imports.insert(target);
                }
            }
        }
    }
    graph
}

#[test]
fn no_module_imports_a_higher_layer() {
    let graph = import_graph();
    let upward: Vec<String> = graph
        .iter()
        .flat_map(|(from, targets)| {
            targets
                .iter()
                .filter(|to| rank(to) > rank(from))
                .map(move |to| format!("{from} imports {to}"))
        })
        .collect();
    assert!(
        upward.is_empty(),
        "imports against the layering (ops → graph → store → codec → spec):\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_import_cycle() {
    let graph = import_graph();
    // Depth-first search; a back edge is a cycle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            cycles.push(cycle.join(" → "));
            return;
        }
        if !done.insert(node.to_string()) {
            return;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, stack, done, cycles);
        }
        stack.pop();
    }
    let mut cycles = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_checker_sees_grouped_and_nested_imports() {
    let paths = crate_paths(
        "use crate::spec::{digest::Digest, document::{self, Descriptor}};\nfn f() { crate::store::open(); my_crate::x(); }",
    );
    assert_eq!(
        paths,
        [
            "spec::digest::Digest",
            "spec::document",
            "spec::document::Descriptor",
            "store::open"
        ]
    );
}

/// The module graph as ARCHITECTURE.md shows it, regenerated with
/// `UPDATE_ARCHITECTURE=1 cargo test --test integration architecture::`.
#[test]
fn architecture_md_shows_the_current_module_graph() {
    let graph = import_graph();
    let mut text = String::from("```text\n");
    for (module, imports) in &graph {
        let list: Vec<&str> = imports.iter().map(String::as_str).collect();
        text.push_str(&format!("{module:<18} → {}\n", list.join(", ")));
    }
    text.push_str("```\n");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md");
    let doc = std::fs::read_to_string(&path).expect("ARCHITECTURE.md");
    let begin = "<!-- module-graph:begin -->\n";
    let end = "<!-- module-graph:end -->";
    let (Some(a), Some(b)) = (doc.find(begin), doc.find(end)) else {
        panic!("ARCHITECTURE.md has no {begin:?} … {end:?} block");
    };
    let current = &doc[a + begin.len()..b];
    if current != text {
        if std::env::var_os("UPDATE_ARCHITECTURE").is_some() {
            let updated = format!("{}{text}{}", &doc[..a + begin.len()], &doc[b..]);
            std::fs::write(&path, updated).expect("write ARCHITECTURE.md");
        } else {
            panic!(
                "ARCHITECTURE.md's module graph is stale; run UPDATE_ARCHITECTURE=1 cargo test --test integration architecture::\nwanted:\n{text}"
            );
        }
    }
}
