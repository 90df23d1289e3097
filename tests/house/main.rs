//! The house rules of `docs/architecture.md` ("House rules"), checked on
//! the source itself so that a change that breaks one fails the suite:
//!
//! * the core's areas (the top-level modules of `src/`) stand in layers, and
//!   each imports only the layers below it: no import cycle between areas;
//! * no area reaches into another area's store (`crate::wallet::store::…`
//!   from outside `src/wallet/`); an area offers what others need through
//!   its own exports (the wallet's `MoneyConn`, the ads area's `AssetSource`),
//!   and only the composition root (`src/app.rs`) opens stores;
//! * no source file outside the tests grows past [`MAX_LINES`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The core's areas, lowest first: an area may import only those before it.
const LAYERS: &[&str] = &[
    "domain", "config", "platform", "events", "lock", "shards", "wallet", "ads", "display",
    "billing", "app", "ops",
];

/// What `src/lib.rs` re-exports at the crate root, and the area each comes from.
const ROOT_EXPORTS: &[(&str, &str)] = &[
    ("Backends", "app"),
    ("Probe", "app"),
    ("Config", "config"),
    ("now_ms", "domain"),
];

/// Past this many lines a source file is split along its seams.
const MAX_LINES: usize = 500;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a readable source file");
                out.push((path, text));
            }
        }
    }
    out.sort();
    out
}

/// The area a core file belongs to: `src/wallet/store/mod.rs` → `wallet`,
/// `src/app.rs` → `app`; `None` for `src/lib.rs`.
fn area_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).expect("under src/");
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    match first.strip_suffix(".rs") {
        Some("lib") => None,
        Some(stem) => Some(stem.to_owned()),
        None => Some(first),
    }
}

/// The names a file takes from the crate root: `crate::wallet::…` → `wallet`.
fn crate_paths(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        // `$crate::` in a macro is the same crate.
        let rest = &text[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let next: String = rest[name.len()..]
            .trim_start_matches("::")
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push((name, next));
        }
    }
    out
}

fn layer(area: &str) -> usize {
    LAYERS
        .iter()
        .position(|a| *a == area)
        .unwrap_or_else(|| panic!("area {area:?} is not in LAYERS: add it where it stands"))
}

#[test]
fn each_area_imports_only_the_layers_below_it() {
    let src = root().join("src");
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (file, text) in sources(&src) {
        let Some(area) = area_of(&src, &file) else {
            continue;
        };
        let own = layer(&area);
        for (name, _) in crate_paths(&text) {
            let target = ROOT_EXPORTS
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(name.clone(), |(_, a)| (*a).to_owned());
            if target == area || !LAYERS.contains(&target.as_str()) {
                continue;
            }
            if layer(&target) > own {
                wrong
                    .entry(format!("{} ({area})", file.display()))
                    .or_default()
                    .push(target);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "these files import an area above their own (an import cycle between areas in the making; see docs/architecture.md, House rules): {wrong:#?}"
    );
}

#[test]
fn no_area_reaches_into_another_areas_store() {
    let src = root().join("src");
    let mut wrong = Vec::new();
    for (file, text) in sources(&src) {
        let area = area_of(&src, &file);
        if matches!(area.as_deref(), Some("app") | None) {
            continue; // the composition root opens every store
        }
        for (name, next) in crate_paths(&text) {
            if next == "store" && area.as_deref() != Some(name.as_str()) {
                wrong.push(format!("{} uses crate::{name}::store", file.display()));
            }
        }
    }
    // The services' HTTP sides likewise: each only its own area's store.
    for service in ["wallet", "ads", "display"] {
        for (file, text) in sources(&root().join("daemon/src").join(service)) {
            for other in LAYERS.iter().filter(|a| **a != service) {
                if text.contains(&format!("walletctl_core::{other}::store")) {
                    wrong.push(format!(
                        "{} uses walletctl_core::{other}::store",
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn no_source_file_outgrows_one_head() {
    let mut long = Vec::new();
    for dir in ["src", "daemon/src", "cmd/src"] {
        for (file, text) in sources(&root().join(dir)) {
            // A file's own unit tests do not count against it.
            let code = text.split("\n#[cfg(test)]").next().unwrap_or_default();
            let n = code.lines().count();
            if n > MAX_LINES {
                long.push(format!("{}: {n} lines", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these along their seams (docs/architecture.md, House rules): {long:#?}"
    );
}

#[test]
fn the_rules_see_the_tree() {
    // The checks above must not pass by reading nothing.
    let src = root().join("src");
    let files = sources(&src);
    assert!(files.len() > 50, "only {} files under src/", files.len());
    let areas: std::collections::BTreeSet<String> =
        files.iter().filter_map(|(f, _)| area_of(&src, f)).collect();
    for a in LAYERS {
        assert!(areas.contains(*a), "area {a} has no file");
    }
    for a in &areas {
        layer(a);
    }
    assert!(
        crate_paths("use crate::wallet::store::X; crate::now_ms()")
            == vec![
                ("wallet".to_owned(), "store".to_owned()),
                ("now_ms".to_owned(), String::new())
            ]
    );
}
