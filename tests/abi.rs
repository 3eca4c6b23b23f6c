//! Mechanical checks on the C ABI: the committed header matches the code, every export goes
//! through the boundary macro, and the version agrees everywhere.

use std::path::Path;

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
}

#[test]
fn committed_header_matches_the_generated_one() {
    let generated = read(Path::new(env!("OUT_DIR")).join("node_lifecycle.h"));
    let committed = read(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/node_lifecycle.h"));
    assert!(
        generated == committed,
        "include/node_lifecycle.h is out of date with src/ffi: run `make header`, review the \
         diff, and commit it"
    );
}

/// Every `extern "C" fn` in src/ffi must start its body with `ffi_boundary!`.
#[test]
fn every_export_goes_through_the_boundary_macro() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
    let mut exports = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let src = read(&path);
        let mut rest = src.as_str();
        while let Some(pos) = rest.find("extern \"C\" fn ") {
            let after = &rest[pos..];
            let name: String = after["extern \"C\" fn ".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // The signature ends at the first line that ends with `{`; the body's first
            // statement must be the macro. Plain `let` bindings of locals the macro writes
            // (an err_out for a getter, the result slots of a by-value call) may come first:
            // they cannot panic.
            let sig_end = after
                .lines()
                .scan(0usize, |pos, l| {
                    let start = *pos;
                    *pos += l.len() + 1;
                    Some((start, l))
                })
                .find(|(_, l)| l.trim_end().ends_with('{'))
                .map(|(start, l)| start + l.len() + 1)
                .unwrap();
            let first: Vec<&str> = after[sig_end..]
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .take(5)
                .collect();
            let lets = first
                .iter()
                .take_while(|l| l.starts_with("let ") && !l.contains("ffi_boundary!"))
                .count();
            let plain_lets = first[..lets].iter().all(|l| {
                l.starts_with("let err_out")
                    || l.starts_with("let mut error: *mut nl_error = std::ptr::null_mut();")
                    || l.ends_with("::default();")
            });
            let ok = plain_lets
                && first.get(lets).is_some_and(|l| {
                    l.starts_with("ffi_boundary!(") || l.starts_with("let result = ffi_boundary!(")
                });
            assert!(
                ok,
                "{}: export {name} does not start with ffi_boundary!: {first:?}",
                path.display()
            );
            assert!(
                name.starts_with("nl_"),
                "export {name} lacks the nl_ prefix"
            );
            exports += 1;
            rest = &after[1..];
        }
    }
    assert!(
        exports >= 40,
        "found only {exports} exports; the scan is broken"
    );
}

/// Every name the header declares (functions, types, enum values, macros) has the prefix;
/// parameter and field names are scoped and may be anything.
#[test]
fn every_declared_name_has_the_prefix() {
    let header = read(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/node_lifecycle.h"));
    let mut declared = Vec::new();
    for line in header.lines() {
        let t = line.trim();
        if t.starts_with("//")
            || t.starts_with("/*")
            || t.starts_with('#') && !t.starts_with("#define")
        {
            continue;
        }
        let ident = |s: &str| -> String {
            s.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        };
        if let Some(rest) = t.strip_prefix("#define ") {
            declared.push(ident(rest));
        } else if let Some(rest) = t.strip_prefix("enum ") {
            declared.push(ident(rest));
        } else if let Some(rest) = t.strip_prefix("} ") {
            declared.push(ident(rest));
        } else if let Some(rest) = t.strip_prefix("typedef struct ") {
            declared.push(ident(rest));
        } else if line.starts_with("  ") && t.contains(" = ") && t.ends_with(',') {
            declared.push(ident(t));
        } else if !line.starts_with(' ') && t.contains('(') {
            // A function declaration: the name is the identifier before '('.
            let before = &t[..t.find('(').unwrap()];
            declared.push(before.rsplit([' ', '*']).next().unwrap().to_string());
        }
    }
    declared.retain(|n| !n.is_empty() && n != "NODE_LIFECYCLE_H");
    assert!(
        declared.len() > 80,
        "scan found only {} names",
        declared.len()
    );
    for name in declared {
        assert!(
            name.starts_with("nl_") || name.starts_with("NL_"),
            "unprefixed name {name:?}"
        );
    }
}

#[test]
fn versions_agree() {
    let version = env!("CARGO_PKG_VERSION");
    let header = read(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/node_lifecycle.h"));
    assert!(header.contains(&format!("#define NL_VERSION \"{version}\"")));
    // The numeric parts as Cargo reads them (a pre-release such as "0.3.0-dev" has patch 0).
    for (name, part) in [
        ("MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        let want = format!("#define NL_VERSION_{name} {part}");
        assert!(header.contains(&want), "missing {want}");
    }
    let runtime = unsafe { std::ffi::CStr::from_ptr(node_lifecycle::ffi::nl_version()) };
    assert_eq!(runtime.to_str().unwrap(), version);
}

/// The flat structures bindings read field by field (the Go package decodes them from bytes, on
/// both of its backends) have one layout on every target: fixed-width fields, no pointers.
#[test]
fn flat_structures_have_a_fixed_layout() {
    use node_lifecycle::ffi::*;
    use std::mem::{offset_of, size_of};
    assert_eq!(size_of::<nl_str_ref>(), 16);
    assert_eq!(size_of::<nl_verdict>(), 40);
    assert_eq!(
        (
            offset_of!(nl_verdict, state),
            offset_of!(nl_verdict, reasons_mask),
            offset_of!(nl_verdict, has_retry_after),
            offset_of!(nl_verdict, retry_after_ms)
        ),
        (4, 16, 24, 32)
    );
    assert_eq!(size_of::<nl_node_verdict>(), 56);
    assert_eq!(offset_of!(nl_node_verdict, verdict), 16);
    assert_eq!(size_of::<nl_container_outcome>(), 16);
    assert_eq!(size_of::<nl_state_snapshot>(), 176);
    assert_eq!(offset_of!(nl_state_snapshot, hourly_cost_eur), 112);
    assert_eq!(offset_of!(nl_state_snapshot, flags), 120);
    assert_eq!(offset_of!(nl_state_snapshot, instance_type), 128);
    assert_eq!(offset_of!(nl_state_snapshot, names_json), 160);
    assert_eq!(size_of::<nl_audit_item>(), 328);
    assert_eq!(offset_of!(nl_audit_item, flags), 36);
    assert_eq!(offset_of!(nl_audit_item, ram_mb), 40);
    assert_eq!(offset_of!(nl_audit_item, node_id), 56);
    assert_eq!(offset_of!(nl_audit_item, related_node_id), 136);
    assert_eq!(offset_of!(nl_audit_item, snapshot), 152);
}

#[test]
fn the_library_says_which_source_it_was_built_from() {
    let f = unsafe { std::ffi::CStr::from_ptr(node_lifecycle::ffi::nl_source_fingerprint()) };
    let f = f.to_str().unwrap();
    assert_eq!(f.len(), 64, "{f}");
    assert!(f.bytes().all(|b| b.is_ascii_hexdigit()));
}

/// The JSON operations `nl_fleet_call` dispatches (the variants of `enum Request` in
/// src/ffi/call.rs, in their snake_case wire names).
fn dispatched_operations() -> std::collections::BTreeSet<String> {
    let src = read(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi/call.rs"));
    let start = src.find("enum Request {").expect("enum Request in call.rs");
    let body = &src[start..];
    let body = &body[..body.find("\n}\n").expect("end of enum Request")];
    let mut ops = std::collections::BTreeSet::new();
    for line in body.lines().skip(1) {
        // A variant is a line indented by exactly four spaces that starts with a capital.
        let Some(rest) = line.strip_prefix("    ") else {
            continue;
        };
        if !rest.starts_with(|c: char| c.is_ascii_uppercase()) {
            continue;
        }
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric()).collect();
        let mut snake = String::new();
        for (i, c) in name.chars().enumerate() {
            if c.is_ascii_uppercase() {
                if i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            } else {
                snake.push(c);
            }
        }
        ops.insert(snake);
    }
    ops
}

/// Every operation the code dispatches has a row in docs/C-API.md, and every row names one
/// that exists.
#[test]
fn every_json_operation_is_documented() {
    let ops = dispatched_operations();
    assert!(ops.len() >= 50, "the parser found only {ops:?}");
    assert!(ops.contains("begin_decommission") && ops.contains("tick"));
    let doc = read(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/C-API.md"));
    let documented: std::collections::BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |"))
        .map(|(op, _)| op.to_owned())
        .filter(|op| op.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    let missing: Vec<_> = ops.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&ops).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/C-API.md does not document {missing:?} and documents operations that do not \
         exist: {unknown:?}"
    );
}
