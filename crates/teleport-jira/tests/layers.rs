//! The house rules the code's imports must keep, read from the sources themselves (as
//! rust-analyzer's tidy tests keep its architecture invariants):
//!
//! - the product crate's modules sit in layers, and a module imports only from layers below its
//!   own (so siblings such as `jira` and `teleport` never import each other);
//! - no two files import each other, directly or round a circle, in the product crate, the test
//!   kit or the bench harness.
//!
//! A failure names the file, the import and the rule it breaks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The product crate's top-level modules, bottom layer first. ARCHITECTURE.md draws the same.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "shared leaves",
        &[
            "backoff",
            "errors",
            "http_common",
            "lock",
            "secret",
            "version",
            "metrics",
        ],
    ),
    ("config and rules", &["config", "rules"]),
    (
        "clients and listeners",
        &[
            "teleport",
            "jira",
            "jsm",
            "plugin_data",
            "logging",
            "listener",
        ],
    ),
    ("reconciliation and start-up checks", &["sync", "startup"]),
    ("health", &["health"]),
    ("servers", &["webhook", "reload"]),
    ("wiring and commands", &["app", "check", "demo"]),
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn every_product_module_imports_only_from_layers_below_its_own() {
    let src = workspace_root().join("crates/teleport-jira/src");
    let crate_files = CrateFiles::read(&src);
    let mut broken = Vec::new();
    for (file, module) in &crate_files.modules {
        let Some(from) = module.first().and_then(|top| layer_of(top)) else {
            continue;
        };
        for target in crate_files.imports_of(file) {
            let Some(top) = target.first() else { continue };
            if Some(top) == module.first() {
                continue;
            }
            match layer_of(top) {
                Some(to) if to < from => {}
                Some(to) => broken.push(format!(
                    "{}: imports crate::{} ({} may import only from layers below {:?}; {top} is in {:?})",
                    crate_files.show(file),
                    target.join("::"),
                    module[0],
                    LAYERS[from].0,
                    LAYERS[to].0,
                )),
                None => broken.push(format!(
                    "{}: imports crate::{}, a module that has no layer in tests/layers.rs",
                    crate_files.show(file),
                    target.join("::"),
                )),
            }
        }
    }
    assert!(broken.is_empty(), "upward imports:\n{}", broken.join("\n"));
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = workspace_root().join("crates/teleport-jira/src");
    let crate_files = CrateFiles::read(&src);
    let unplaced: BTreeSet<&String> = crate_files
        .modules
        .values()
        .filter_map(|module| module.first())
        .filter(|top| layer_of(top).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules without a layer (add them to LAYERS in tests/layers.rs and to ARCHITECTURE.md): {unplaced:?}"
    );
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let root = workspace_root();
    let mut circles = Vec::new();
    for src in [
        "crates/teleport-jira/src",
        "crates/testkit/src",
        "bench/src",
    ] {
        let crate_files = CrateFiles::read(&root.join(src));
        for circle in crate_files.circles() {
            let names: Vec<String> = circle.iter().map(|f| crate_files.show(f)).collect();
            circles.push(format!("{src}: {}", names.join(" -> ")));
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

fn layer_of(top: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&top))
}

/// One crate's source files, each with its module path, and what each imports.
struct CrateFiles {
    src: PathBuf,
    /// File → its module path (`src/sync/engine.rs` → `["sync", "engine"]`).
    modules: BTreeMap<PathBuf, Vec<String>>,
}

impl CrateFiles {
    fn read(src: &Path) -> Self {
        let mut modules = BTreeMap::new();
        collect_rust_files(src, &mut |file| {
            if let Some(module) = module_path(src, file) {
                modules.insert(file.to_owned(), module);
            }
        });
        assert!(!modules.is_empty(), "no Rust files under {}", src.display());
        Self {
            src: src.to_owned(),
            modules,
        }
    }

    fn show(&self, file: &Path) -> String {
        file.strip_prefix(&self.src)
            .unwrap_or(file)
            .display()
            .to_string()
    }

    /// The crate-absolute module paths `file` imports (`use crate::…`, `use super::…`, and
    /// `crate::…` written inline), comments and string literals aside.
    fn imports_of(&self, file: &Path) -> Vec<Vec<String>> {
        let module = &self.modules[file];
        let text = std::fs::read_to_string(file).expect("reading a source file");
        let code = strip_comments_and_strings(&text);
        let (uses, rest) = split_use_items(&code);
        let mut paths = Vec::new();
        for path in uses.into_iter().chain(inline_crate_paths(&rest)) {
            if let Some(absolute) = absolute(&path, module) {
                paths.push(absolute);
            }
        }
        paths
    }

    /// The file a module path lives in: the longest prefix that is a file of this crate.
    fn file_of(&self, path: &[String]) -> Option<&PathBuf> {
        (1..=path.len()).rev().find_map(|len| {
            self.modules
                .iter()
                .find(|(_, module)| module.as_slice() == &path[..len])
                .map(|(file, _)| file)
        })
    }

    /// Every file → the files it imports (itself and its own submodules aside).
    fn graph(&self) -> BTreeMap<&PathBuf, BTreeSet<&PathBuf>> {
        let mut graph = BTreeMap::new();
        for (file, module) in &self.modules {
            let targets = self
                .imports_of(file)
                .iter()
                .filter_map(|path| self.file_of(path))
                .filter(|target| {
                    let target_module = &self.modules[*target];
                    *target != file && !target_module.starts_with(module)
                })
                .collect();
            graph.insert(file, targets);
        }
        graph
    }

    /// Groups of more than one file that import each other round a circle.
    fn circles(&self) -> Vec<Vec<PathBuf>> {
        let graph = self.graph();
        let mut found: Vec<Vec<PathBuf>> = Vec::new();
        for start in graph.keys() {
            if found.iter().flatten().any(|member| member == *start) {
                continue;
            }
            let members: Vec<PathBuf> = reachable(&graph, start)
                .into_iter()
                .filter(|other| reachable(&graph, other).contains(start))
                .map(|other| other.to_owned())
                .collect();
            if members.len() > 1 {
                found.push(members);
            }
        }
        found
    }
}

fn reachable<'a>(
    graph: &BTreeMap<&'a PathBuf, BTreeSet<&'a PathBuf>>,
    start: &'a PathBuf,
) -> BTreeSet<&'a PathBuf> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![start];
    while let Some(file) = todo.pop() {
        for next in graph.get(file).into_iter().flatten() {
            if seen.insert(*next) {
                todo.push(next);
            }
        }
    }
    seen
}

fn collect_rust_files(dir: &Path, found: &mut impl FnMut(&Path)) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("reading a source folder")
        .map(|entry| entry.expect("a folder entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found(&path);
        }
    }
}

/// `src/a/b.rs` → `[a, b]`; `src/a/mod.rs` → `[a]`; `src/lib.rs` and `src/main.rs` → `[]`; a
/// test module file (`src/a/tests.rs`) belongs to its parent.
fn module_path(src: &Path, file: &Path) -> Option<Vec<String>> {
    let relative = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    Some(parts)
}

/// `crate::…` and `super::…` paths made absolute from the importing module.
fn absolute(path: &[String], module: &[String]) -> Option<Vec<String>> {
    let first = path.first()?;
    match first.as_str() {
        "crate" => Some(path[1..].to_vec()),
        "super" | "self" => {
            // In `a/b.rs` (module a::b), `super` is `a`; in `a/mod.rs` (module a), it is the root.
            let mut base = module.to_vec();
            let mut rest = path;
            if first == "self" {
                rest = &path[1..];
            }
            while rest.first().is_some_and(|p| p == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            base.extend(rest.iter().cloned());
            Some(base)
        }
        _ => None,
    }
}

/// Every path the `use` items name, with `{…}` groups expanded; and the code without them.
fn split_use_items(code: &str) -> (Vec<Vec<String>>, String) {
    let (mut paths, mut others) = (Vec::new(), String::new());
    let mut rest = code;
    while let Some(at) = find_keyword(rest, "use") {
        others.push_str(&rest[..at]);
        let after = &rest[at + 3..];
        let Some(end) = after.find(';') else { break };
        expand_tree(after[..end].trim(), &mut Vec::new(), &mut paths);
        rest = &after[end + 1..];
    }
    others.push_str(rest);
    (paths, others)
}

fn find_keyword(text: &str, word: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find(word) {
        let at = from + found;
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + word.len()).copied();
        let boundary = |b: Option<u8>| b.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_'));
        if boundary(before) && after.is_some_and(|b| b.is_ascii_whitespace()) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

fn expand_tree(tree: &str, prefix: &mut Vec<String>, paths: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = segments(&tree[..open]);
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let depth = prefix.len();
        prefix.extend(head);
        for item in split_top_level(inner) {
            expand_tree(item, prefix, paths);
        }
        prefix.truncate(depth);
    } else {
        let item = tree.split(" as ").next().unwrap_or(tree);
        let mut path = prefix.clone();
        path.extend(segments(item));
        if !path.is_empty() {
            paths.push(path);
        }
    }
}

fn segments(text: &str) -> Vec<String> {
    text.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "*")
        .map(str::to_owned)
        .collect()
}

fn split_top_level(text: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    items.into_iter().filter(|i| !i.trim().is_empty()).collect()
}

/// `crate::a::b` written in code outside `use` items.
fn inline_crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = find_path_start(rest, "crate::") {
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        paths.push(segments(&tail[..len]));
        rest = &tail[len..];
    }
    paths
}

fn find_path_start(text: &str, prefix: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find(prefix) {
        let at = from + found;
        let before = at.checked_sub(1).map(|i| bytes[i]);
        if before.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b':')) {
            return Some(at);
        }
        from = at + prefix.len();
    }
    None
}

/// The code with comments, string and char literals blanked, so a doc link or a message that
/// mentions a path is not read as an import.
fn strip_comments_and_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for next in chars.by_ref() {
                    if next == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut last = ' ';
                for next in chars.by_ref() {
                    if last == '*' && next == '/' {
                        break;
                    }
                    last = next;
                }
            }
            '"' => {
                let mut escaped = false;
                for next in chars.by_ref() {
                    if !escaped && next == '"' {
                        break;
                    }
                    escaped = !escaped && next == '\\';
                }
                out.push_str("\"\"");
            }
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn the_import_reader_sees_grouped_nested_and_relative_paths() {
    let code = strip_comments_and_strings(
        "use crate::{config::Config, sync::{Engine, store::RequestStore}};\n\
         // use crate::app;\n\
         use super::error::StepError;\n\
         fn f() { crate::lock::lock(&m); let s = \"crate::demo\"; }\n",
    );
    let (mut found, rest) = split_use_items(&code);
    found.extend(inline_crate_paths(&rest));
    let found: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        found,
        [
            "crate::config::Config",
            "crate::sync::Engine",
            "crate::sync::store::RequestStore",
            "super::error::StepError",
            "crate::lock::lock",
        ]
    );
    let module = ["sync".to_owned(), "engine".to_owned()];
    let relative = ["super".to_owned(), "error".to_owned()];
    assert_eq!(
        absolute(&relative, &module),
        Some(vec!["sync".to_owned(), "error".to_owned()])
    );
}
