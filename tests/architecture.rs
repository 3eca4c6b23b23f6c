//! The shape of the core, checked mechanically: the top-level modules of `src/` form no import
//! circle (so each can be read, tested and replaced on its own, from the bottom up), and the
//! storage test doubles stay behind the `testing` feature.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level module a source file belongs to (`src/fleet/tx.rs` -> `fleet`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix("src").expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_owned()
}

/// The code of a file without comments and without its unit tests (which by convention are the
/// `#[cfg(test)] mod tests` at the end of the file and may use anything).
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// module -> the modules it names through `crate::`.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut paths = Vec::new();
    files(Path::new("src"), &mut paths);
    let modules: BTreeSet<String> = paths
        .iter()
        .map(|p| module_of(p))
        .filter(|m| m != "lib")
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in &paths {
        let from = module_of(p);
        if from == "lib" {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(p).unwrap());
        let edges = graph.entry(from.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name != from && modules.contains(&name) {
                edges.insert(name);
            }
        }
    }
    graph
}

/// A circle through `start`, if there is one (depth-first search for a path back).
fn circle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    at: &str,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    for next in graph.get(at).into_iter().flatten() {
        if next == start {
            let mut c = path.clone();
            c.push(start.to_owned());
            return Some(c);
        }
        if seen.insert(next.clone()) {
            path.push(next.clone());
            if let Some(c) = circle_from(graph, start, next, path, seen) {
                return Some(c);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn the_core_modules_form_no_import_circle() {
    let graph = import_graph();
    assert!(graph.contains_key("fleet") && graph.contains_key("safety"));
    // Sanity of the parser: edges that exist.
    assert!(graph["fleet"].contains("safety"), "{graph:?}");
    assert!(graph["error"].contains("verdict"), "{graph:?}");
    let mut circles = Vec::new();
    for m in graph.keys() {
        let mut path = vec![m.clone()];
        if let Some(c) = circle_from(&graph, m, m, &mut path, &mut BTreeSet::new()) {
            circles.push(c.join(" -> "));
        }
    }
    assert!(
        circles.is_empty(),
        "import circles between core modules:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_circle_check_finds_a_circle() {
    // The checker itself must be able to fail.
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default().insert("a".into());
    let mut path = vec!["a".to_owned()];
    let c = circle_from(&g, "a", "a", &mut path, &mut BTreeSet::new()).unwrap();
    assert_eq!(c.join(" -> "), "a -> b -> c -> a");
    assert_eq!(
        code_of("use crate::x; // crate::y\n#[cfg(test)]\nmod tests { crate::z }"),
        "use crate::x; "
    );
}

#[test]
fn the_test_doubles_are_compiled_only_for_tests() {
    let m = std::fs::read_to_string("src/storage/mod.rs").unwrap();
    assert!(m.contains("#[cfg(feature = \"testing\")]\npub mod testing;"));
    assert!(m.contains("#[cfg(feature = \"testing\")]\npub use testing::"));
    for p in [
        "src/storage/fs.rs",
        "src/storage/open.rs",
        "src/storage/mod.rs",
    ] {
        let code = code_of(&std::fs::read_to_string(p).unwrap());
        for double in ["struct SimFs", "struct FaultFs"] {
            assert!(!code.contains(double), "{p} defines {double}");
        }
    }
}
