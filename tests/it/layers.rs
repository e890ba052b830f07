//! The house's rule inside the worker crate: its modules form layers, so no module uses one
//! that uses it back (across crates, cargo enforces it). A `use crate::x` that closes a
//! circle fails here with the circle named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level modules of `src/` and, for each, the others its code names.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let module = path.extension().is_some_and(|e| e == "rs")
            || (path.is_dir() && path.join("mod.rs").exists());
        if module && !["lib", "main"].contains(&name.as_str()) {
            modules.insert(name);
        }
    }
    let mut graph = BTreeMap::new();
    for m in &modules {
        let mut text = String::new();
        let file = src.join(format!("{m}.rs"));
        if file.exists() {
            text.push_str(&std::fs::read_to_string(file).unwrap());
        }
        for f in walkdir::WalkDir::new(src.join(m)).into_iter().flatten() {
            if f.path().extension().is_some_and(|e| e == "rs") {
                text.push_str(&std::fs::read_to_string(f.path()).unwrap());
            }
        }
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let used: BTreeSet<String> = named_modules(&code)
            .into_iter()
            .filter(|other| other != m && modules.contains(other))
            .collect();
        graph.insert(m.clone(), used);
    }
    graph
}

/// The first path segment of every `crate::` path in `code`, grouped ones
/// (`crate::{journal, walk::WalkEvent}`) included.
fn named_modules(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            names.extend(group.split(',').map(ident));
        } else {
            names.insert(ident(rest));
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

/// A circle through `from`, if its uses lead back to it.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap();
        for next in graph.get(last).into_iter().flatten() {
            if next == from {
                return Some([path.clone(), vec![from.to_string()]].concat());
            }
            if seen.insert(next.clone()) {
                stack.push([path.clone(), vec![next.clone()]].concat());
            }
        }
    }
    None
}

#[test]
fn the_workers_modules_form_layers_without_a_circle() {
    let graph = module_graph();
    assert!(graph.len() >= 10, "the modules were not found: {graph:?}");
    // The bottom layers use no other module of the worker.
    for base in ["journal", "walk", "report", "policy"] {
        assert_eq!(
            graph[base],
            BTreeSet::new(),
            "{base} should stand on its own"
        );
    }
    for m in graph.keys() {
        if let Some(c) = circle(&graph, m) {
            panic!("the modules use each other in a circle: {}", c.join(" -> "));
        }
    }
}

#[test]
fn every_form_of_a_crate_path_is_read() {
    let code = "use crate::journal::Journal;\nuse crate::{report, walk::WalkEvent};\n\
                let x = crate::policy::RetryPolicy::CATALOG; use crate::config;";
    let names: Vec<String> = named_modules(code).into_iter().collect();
    assert_eq!(names, ["config", "journal", "policy", "report", "walk"]);
}

#[test]
fn a_circle_is_found_when_there_is_one() {
    let mut graph = BTreeMap::new();
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    graph.insert("a".to_string(), set(&["b"]));
    graph.insert("b".to_string(), set(&["c"]));
    graph.insert("c".to_string(), set(&["a"]));
    assert_eq!(
        circle(&graph, "a").unwrap().join(" -> "),
        "a -> b -> c -> a"
    );
    graph.insert("c".to_string(), set(&[]));
    assert_eq!(circle(&graph, "a"), None);
}
