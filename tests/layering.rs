//! The architecture test: the top-level modules of `src/` import each other
//! in one direction only, in the order declared at the top of `src/lib.rs`,
//! and `unsafe` appears nowhere outside `src/sys/`; no two files import each
//! other, and no file is over 800 lines.
//!
//! It reads the source as text: every `crate::name` path (including the
//! members of `use crate::{a::…, b::…}` groups) and every `super::` path
//! that climbs out of its top-level module, outside comments and string
//! literals, is an edge of the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Where an import was written.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    file: String,
    line: usize,
}

/// The top-level module graph: (from, to) → the first place it is written.
type Graph = BTreeMap<(String, String), Place>;

/// The declared layers, from the ground up: each entry's modules may import
/// only modules of earlier entries (never each other).
fn declared_layers(lib: &str) -> Vec<Vec<String>> {
    let doc: Vec<&str> = lib
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .collect();
    let start = doc
        .iter()
        .position(|line| line.trim() == "```text")
        .expect("src/lib.rs declares its layers in a ```text block");
    let diagram: String = doc[start + 1..]
        .iter()
        .take_while(|line| line.trim() != "```")
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    diagram
        .split('→')
        .map(|layer| {
            layer
                .split('|')
                .map(|module| module.trim().to_string())
                .filter(|module| !module.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|layer| !layer.is_empty())
        .collect()
}

/// The file's text with comments and the contents of string and char
/// literals blanked out (line breaks kept, so line numbers stay right).
fn code_only(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, b: u8| out.push(if b == b'\n' { b'\n' } else { b' ' });
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            while i < bytes.len() {
                if bytes[i..].starts_with(b"/*") {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if bytes[i..].starts_with(b"*/") {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, bytes[i]);
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(rest) {
            // r"…", r#"…"#, br"…": no escapes inside.
            let open = rest.iter().position(|&b| b == b'"').unwrap_or(0) + 1;
            out.extend(std::iter::repeat_n(b' ', open));
            i += open;
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            while i < bytes.len() && !bytes[i..].starts_with(&close) {
                blank(&mut out, bytes[i]);
                i += 1;
            }
            out.extend(std::iter::repeat_n(b' ', close.len().min(bytes.len() - i)));
            i += close.len();
        } else if bytes[i] == b'"' {
            out.push(b' ');
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    blank(&mut out, bytes[i]);
                    i += 1;
                }
                blank(&mut out, bytes[i]);
                i += 1;
            }
            out.push(b' ');
            i += 1;
        } else if bytes[i] == b'\'' {
            // A char literal ('x', '\n', '\u{..}'), else a lifetime ('a).
            let end = if rest.get(1) == Some(&b'\\') {
                rest.iter().skip(2).position(|&b| b == b'\'').map(|p| p + 3)
            } else {
                let width = std::str::from_utf8(&rest[1..rest.len().min(5)])
                    .ok()
                    .or_else(|| std::str::from_utf8(&rest[1..2]).ok())
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8);
                (rest.get(1 + width) == Some(&b'\'')).then_some(width + 2)
            };
            let length = end.unwrap_or(1);
            out.extend(std::iter::repeat_n(b' ', length));
            i += length;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Some(number of #) when `rest` opens a raw string literal.
fn raw_string_start(rest: &[u8]) -> Option<usize> {
    let after_b = rest.strip_prefix(b"b").unwrap_or(rest);
    let after_r = after_b.strip_prefix(b"r")?;
    let hashes = after_r.iter().take_while(|&&b| b == b'#').count();
    (after_r.get(hashes) == Some(&b'"')).then_some(hashes)
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The identifier starting at `at`, skipping leading spaces.
fn ident_at(code: &str, at: usize) -> Option<(&str, usize)> {
    let bytes = code.as_bytes();
    let start = at
        + bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    let end = start + bytes[start..].iter().take_while(|&&b| is_ident(b)).count();
    (end > start).then(|| (&code[start..end], end))
}

/// The top-level modules `code` names, with the byte offset of each mention.
/// `module_path` is the file's own module path (`["worker", "respond"]`), to
/// resolve `super::` chains that climb to the crate root.
fn imports(code: &str, module_path: &[String]) -> Vec<(String, usize)> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let preceded = i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == b':');
        if !preceded && code[i..].starts_with("crate::") {
            let after = i + "crate::".len();
            if bytes.get(after) == Some(&b'{') {
                found.extend(group_members(code, after).into_iter().map(|m| (m, i)));
            } else if let Some((name, _)) = ident_at(code, after) {
                found.push((name.to_string(), i));
            }
            i = after;
            continue;
        }
        if !preceded && code[i..].starts_with("super::") {
            let mut levels = 0;
            let mut at = i;
            while code[at..].starts_with("super::") {
                levels += 1;
                at += "super::".len();
            }
            if levels >= module_path.len()
                && let Some((name, _)) = ident_at(code, at)
            {
                found.push((name.to_string(), i));
            }
            i = at;
            continue;
        }
        i += 1;
    }
    found
}

/// The first path element of each member of the `{…}` group opening at `open`.
fn group_members(code: &str, open: usize) -> Vec<String> {
    let bytes = code.as_bytes();
    let mut members = Vec::new();
    let mut depth = 0;
    let mut expect_member = true;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                depth += 1;
                expect_member = depth == 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            b',' if depth == 1 => expect_member = true,
            b if is_ident(b) && expect_member => {
                if let Some((name, end)) = ident_at(code, i) {
                    if name != "self" {
                        members.push(name.to_string());
                    }
                    expect_member = false;
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    members
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// A file's module path below the crate root: `src/worker/mod.rs` →
/// `["worker"]`, `src/worker/respond.rs` → `["worker", "respond"]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    parts
}

/// The module paths `code` reaches through `crate::…` and `super::…` paths
/// (including `use` groups), each the longest prefix of the path that names
/// one of the crate's files (`known`), with the byte offset of the mention.
fn file_imports(
    code: &str,
    module_path: &[String],
    known: &BTreeSet<Vec<String>>,
) -> Vec<(Vec<String>, usize)> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let preceded = i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == b':');
        let (base, at) = if !preceded && code[i..].starts_with("crate::") {
            (Vec::new(), i + "crate::".len())
        } else if !preceded && code[i..].starts_with("super::") {
            // A file's module is its path; `super` drops one component.
            let mut base = module_path.to_vec();
            let mut at = i;
            while code[at..].starts_with("super::") {
                base.pop();
                at += "super::".len();
            }
            (base, at)
        } else {
            i += 1;
            continue;
        };
        if bytes.get(at) == Some(&b'{') {
            for member in group_members(code, at) {
                let mut path = base.clone();
                path.push(member);
                if known.contains(&path) {
                    found.push((path, i));
                }
            }
        } else {
            for path in longest_known(code, base, at, known) {
                found.push((path, i));
            }
        }
        i = at;
    }
    found
}

/// `path` extended by the `a::b::…` path at `at` (ending, perhaps, in a
/// `{…}` group), cut to the longest prefixes that name files of the crate.
fn longest_known(
    code: &str,
    mut path: Vec<String>,
    mut at: usize,
    known: &BTreeSet<Vec<String>>,
) -> Vec<Vec<String>> {
    let mut reached = known.contains(&path).then(|| path.clone());
    while let Some((name, end)) = ident_at(code, at) {
        path.push(name.to_string());
        if known.contains(&path) {
            reached = Some(path.clone());
        }
        if !code[end..].starts_with("::") {
            break;
        }
        at = end + 2;
        if code.as_bytes().get(at) == Some(&b'{') {
            let members: Vec<Vec<String>> = group_members(code, at)
                .into_iter()
                .map(|member| {
                    let mut longer = path.clone();
                    longer.push(member);
                    longer
                })
                .filter(|longer| known.contains(longer))
                .collect();
            if !members.is_empty() {
                return members;
            }
            break;
        }
    }
    reached.into_iter().collect()
}

/// Files of one module that import each other (neither the other's
/// ancestor): `module_files` maps each file's module path to its shown
/// name and code.
fn file_cycles(module_files: &BTreeMap<Vec<String>, (String, String)>) -> Vec<String> {
    let known: BTreeSet<Vec<String>> = module_files.keys().cloned().collect();
    let mut edges: BTreeMap<(Vec<String>, Vec<String>), Place> = BTreeMap::new();
    for (module, (shown, code)) in module_files {
        for (to, offset) in file_imports(code, module, &known) {
            let related = to.starts_with(module) || module.starts_with(&to);
            if !related {
                let line = code[..offset].matches('\n').count() + 1;
                edges.entry((module.clone(), to)).or_insert(Place {
                    file: shown.clone(),
                    line,
                });
            }
        }
    }
    let mut problems = Vec::new();
    for ((from, to), place) in &edges {
        if from < to
            && let Some(back) = edges.get(&(to.clone(), from.clone()))
        {
            problems.push(format!(
                "{}:{} and {}:{} import each other",
                place.file, place.line, back.file, back.line
            ));
        }
    }
    problems
}

/// Reads the crate under `src`: its import graph and every line naming
/// `unsafe` outside `src/sys/`.
fn read_crate(src: &Path) -> Crate {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Graph::new();
    let mut unsafe_lines = Vec::new();
    let mut module_files = BTreeMap::new();
    for path in files {
        let relative = path.strip_prefix(src).expect("below src").to_path_buf();
        let shown = format!("src/{}", relative.display());
        let source = fs::read_to_string(&path).expect("readable source");
        let module = module_path(&relative);
        let top = module.first().cloned().unwrap_or_default();
        if top != "sys" {
            for (n, line) in source.lines().enumerate() {
                if line.contains("unsafe") {
                    unsafe_lines.push(Place {
                        file: shown.clone(),
                        line: n + 1,
                    });
                }
            }
        }
        let code = code_only(&source);
        for (name, offset) in imports(&code, &module) {
            if name == top {
                continue;
            }
            let line = code[..offset].matches('\n').count() + 1;
            graph.entry((top.clone(), name)).or_insert(Place {
                file: shown.clone(),
                line,
            });
        }
        module_files.insert(module, (shown, code));
    }
    Crate {
        graph,
        unsafe_lines,
        module_files,
    }
}

/// What the tests read from `src/`.
struct Crate {
    graph: Graph,
    unsafe_lines: Vec<Place>,
    /// Each file's module path → its shown name and its code.
    module_files: BTreeMap<Vec<String>, (String, String)>,
}

/// Every way `graph` breaks `layers`, one message per offending edge, plus
/// every cycle. An empty list means the layering holds.
fn violations(graph: &Graph, layers: &[Vec<String>]) -> Vec<String> {
    let rank = |module: &str| {
        layers
            .iter()
            .position(|layer| layer.iter().any(|m| m == module))
    };
    let mut problems = Vec::new();
    for ((from, to), place) in graph {
        let at = format!("{}:{}", place.file, place.line);
        match (rank(from), rank(to)) {
            (None, _) => problems.push(format!(
                "{at}: module '{from}' is not in the layering of src/lib.rs"
            )),
            (_, None) => problems.push(format!(
                "{at}: '{from}' imports '{to}', which is not in the layering of src/lib.rs"
            )),
            (Some(a), Some(b)) if a == b => problems.push(format!(
                "{at}: '{from}' imports '{to}', a module of its own layer"
            )),
            (Some(a), Some(b)) if b > a => problems.push(format!(
                "{at}: '{from}' imports '{to}', which is above it in the layering"
            )),
            _ => {}
        }
    }
    problems.extend(cycles(graph));
    problems
}

/// Each cycle of `graph` once, as `a → b → … → a` with where each edge is written.
fn cycles(graph: &Graph) -> Vec<String> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in graph.keys() {
        next.entry(from).or_default().push(to);
    }
    let mut reported = BTreeSet::new();
    let mut found = Vec::new();
    for &start in next.keys() {
        // Depth-first from `start`, only through modules after it, so each
        // cycle is found once, from its smallest member.
        let mut stack = vec![(start, vec![start])];
        while let Some((at, path)) = stack.pop() {
            for &to in next.get(at).into_iter().flatten() {
                if to == start {
                    let mut members = path.clone();
                    members.sort_unstable();
                    if found.len() < 12 && reported.insert(members) {
                        let mut steps = Vec::new();
                        for pair in path.iter().chain([&start]).collect::<Vec<_>>().windows(2) {
                            let place = &graph[&(pair[0].to_string(), pair[1].to_string())];
                            steps.push(format!(
                                "{} → {} ({}:{})",
                                pair[0], pair[1], place.file, place.line
                            ));
                        }
                        found.push(format!("cycle: {}", steps.join(", ")));
                    }
                } else if to > start && !path.contains(&to) {
                    let mut longer = path.clone();
                    longer.push(to);
                    stack.push((to, longer));
                }
            }
        }
    }
    found
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn the_modules_import_each_other_in_one_direction_only() {
    let src = src();
    let lib = fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let layers = declared_layers(&lib);
    assert!(layers.len() > 5, "the layering of src/lib.rs: {layers:?}");
    let Crate { graph, .. } = read_crate(&src);
    assert!(graph.len() > 20, "the import graph was read: {graph:?}");
    // Every top-level module is placed in the order.
    for entry in fs::read_dir(&src).expect("src/") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let module = name.trim_end_matches(".rs");
        if module != "lib" && !name.ends_with(".lua") {
            assert!(
                layers.iter().flatten().any(|m| m == module),
                "src/{name} is not in the layering of src/lib.rs"
            );
        }
    }
    let problems = violations(&graph, &layers);
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn unsafe_code_is_only_in_sys() {
    let Crate { unsafe_lines, .. } = read_crate(&src());
    let shown: Vec<String> = unsafe_lines
        .iter()
        .map(|place| format!("{}:{}", place.file, place.line))
        .collect();
    assert!(
        shown.is_empty(),
        "`unsafe` outside src/sys/:\n{}",
        shown.join("\n")
    );
}

#[test]
fn no_two_files_import_each_other() {
    let Crate { module_files, .. } = read_crate(&src());
    assert!(module_files.len() > 50, "the files were read");
    let problems = file_cycles(&module_files);
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn two_made_up_files_that_import_each_other_are_reported() {
    let file = |shown: &str, code: &str| (shown.to_string(), code.to_string());
    let path = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    let mut files = BTreeMap::new();
    files.insert(
        path(&["worker"]),
        file("src/worker/mod.rs", "mod a;\nuse a::X;\n"),
    );
    files.insert(
        path(&["worker", "a"]),
        file("src/worker/a.rs", "use super::b::Y;\nuse super::Z;\n"),
    );
    files.insert(
        path(&["worker", "b"]),
        file("src/worker/b.rs", "\n\nuse crate::worker::{a, c};\n"),
    );
    files.insert(
        path(&["worker", "c"]),
        file("src/worker/c.rs", "use super::super::stats;\n"),
    );
    assert_eq!(
        file_cycles(&files),
        ["src/worker/a.rs:1 and src/worker/b.rs:3 import each other"]
    );
}

#[test]
fn a_made_up_graph_with_a_cycle_and_an_upward_import_is_reported() {
    let layers = declared_layers("//! ```text\n//! low → middle | side → high\n//! ```\n");
    assert_eq!(layers, [vec!["low"], vec!["middle", "side"], vec!["high"]]);
    let place = |file: &str, line| Place {
        file: file.to_string(),
        line,
    };
    let mut graph = Graph::new();
    graph.insert(("high".into(), "middle".into()), place("src/high.rs", 3));
    graph.insert(
        ("middle".into(), "low".into()),
        place("src/middle/mod.rs", 4),
    );
    assert!(violations(&graph, &layers).is_empty());

    // low → high closes a cycle high → middle → low → high.
    graph.insert(("low".into(), "high".into()), place("src/low/a.rs", 7));
    let problems = violations(&graph, &layers);
    assert!(
        problems.contains(
            &"src/low/a.rs:7: 'low' imports 'high', which is above it in the layering".to_string()
        ),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("cycle: high → middle (src/high.rs:3), middle → low (src/middle/mod.rs:4), low → high (src/low/a.rs:7)")),
        "{problems:#?}"
    );

    // Two modules of one layer importing each other: both edges and the cycle.
    let mut pair = Graph::new();
    pair.insert(
        ("middle".into(), "side".into()),
        place("src/middle/mod.rs", 9),
    );
    pair.insert(("side".into(), "middle".into()), place("src/side.rs", 2));
    let problems = violations(&pair, &layers);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[2].starts_with("cycle: middle → side"),
        "{problems:#?}"
    );
}

#[test]
fn imports_are_read_from_code_not_from_comments_or_strings() {
    let source = r##"
//! Links to [`crate::doc_only`].
use crate::{http::{self, Status}, media::Timeline, self};
use super::super::stats;
fn f() -> &'static str {
    let _ = crate::cache::MediaCache::new;
    let c = '"'; let _ = crate::after_char;
    /* crate::in_block */ "crate::in_string"; r#"crate::raw"#
}
"##;
    let code = code_only(source);
    let module = vec!["worker".to_string(), "respond".to_string()];
    let mut names: Vec<String> = imports(&code, &module)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.sort();
    assert_eq!(names, ["after_char", "cache", "http", "media", "stats"]);
    // `super::` that stays inside the top-level module is no edge.
    assert!(imports("use super::packaged;", &module).is_empty());
}

#[test]
fn no_source_file_is_over_800_lines() {
    let Crate { module_files, .. } = read_crate(&src());
    let long: Vec<String> = module_files
        .values()
        .filter_map(|(shown, code)| {
            let lines = code.lines().count();
            (lines > 800).then(|| format!("{shown}: {lines} lines"))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these along a seam a reader would name:\n{}",
        long.join("\n")
    );
}
