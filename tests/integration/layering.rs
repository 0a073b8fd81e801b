//! The crate's layers, checked: every top-level module under `src/` belongs to a layer in
//! [`LAYERS`], and may name (`crate::x`, `use crate::{x, ..}`) only the modules listed beside it.
//! Each module may use only modules below it in the table, so the graph has no cycles and
//! nothing may use `cli`, the top. Items re-exported at the crate root (`crate::foo`) are not
//! used from inside the crate: import them from their module.
//!
//! The check reads source text. Test code (items under `#[cfg(test)]`), comments (doc comments
//! too) and string and char literals are blanked out first, keeping line numbers, so only real
//! code counts. The same scanner also keeps functions short: see `no_function_over_100_lines`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may use, lowest layer first.
#[rustfmt::skip]
const LAYERS: &[(&str, &[&str])] = &[
    ("domain",    &[]),
    ("catalog",   &["domain"]),
    ("attest",    &["domain"]),
    ("engine",    &["domain"]),
    ("scan",      &["domain", "catalog"]),
    ("admission", &["domain", "engine"]),
    ("config",    &["domain", "catalog", "attest", "engine"]),
    ("app",       &["domain", "catalog", "attest", "engine", "scan", "admission", "config"]),
    ("report",    &["domain", "engine", "app"]),
    ("telemetry", &["domain"]),
    ("infra",     &["domain", "catalog", "attest", "engine", "scan", "config", "app",
                    "telemetry"]),
    ("server",    &["domain", "engine", "admission", "config", "app", "telemetry"]),
    ("cli",       &["domain", "catalog", "attest", "engine", "scan", "admission", "config",
                    "app", "report", "telemetry", "infra", "server"]),
];

/// The longest a function body (opening to closing brace) may be, in lines.
const MAX_FN_LINES: usize = 100;

/// Every `.rs` file under `src/`, sorted, as (`src/...` path, contents).
fn src_files() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    walk(&root.join("src"), &mut paths);
    paths.sort();
    let rel = |p: &Path| p.strip_prefix(root).expect("in root").display().to_string();
    let read =
        |p: &Path| fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    paths.iter().map(|p| (rel(p), read(p))).collect()
}

/// `src/engine/judge.rs` -> `engine`, `src/foo.rs` -> `foo`; `src/lib.rs` and `src/main.rs` -> None.
fn top_module(path: &str) -> Option<String> {
    let first = path.strip_prefix("src/")?.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Where the identifier `word` starts in `c`, as a whole word.
fn words(c: &[char], word: &str) -> Vec<usize> {
    let (mut out, mut i) = (Vec::new(), 0);
    while i < c.len() {
        let end = ident_end(c, i);
        if end > i && c[i..end].iter().copied().eq(word.chars()) {
            out.push(i);
        }
        i = end.max(i + 1);
    }
    out
}

/// The first position from `from` on whose char is not `keep`.
fn skip(c: &[char], from: usize, keep: fn(char) -> bool) -> usize {
    (from..c.len()).find(|&k| !keep(c[k])).unwrap_or(c.len())
}

/// The end of the identifier (or number) starting at `from`.
fn ident_end(c: &[char], from: usize) -> usize {
    skip(c, from, is_ident)
}

fn find(c: &[char], needle: &[char], from: usize) -> Option<usize> {
    (from..c.len()).find(|&k| c[k..].starts_with(needle))
}

fn line_of(c: &[char], at: usize) -> usize {
    1 + c[..at.min(c.len())].iter().filter(|&&x| x == '\n').count()
}

/// Replaces `range` with spaces, keeping newlines (and so line numbers).
fn wipe(c: &mut [char], range: Range<usize>) {
    let end = range.end.min(c.len());
    for ch in &mut c[range.start.min(end)..end] {
        if *ch != '\n' {
            *ch = ' ';
        }
    }
}

/// The source with comments, literal contents and `#[cfg(test)]` items blanked out.
fn blank(src: &str) -> Vec<char> {
    let s: Vec<char> = src.chars().collect();
    let mut out = s.clone();
    let at = |k: usize| s.get(k).copied();
    let mut i = 0;
    while i < s.len() {
        let (c, next) = (s[i], at(i + 1));
        if c == '/' && next == Some('/') {
            let end = find(&s, &['\n'], i).unwrap_or(s.len());
            wipe(&mut out, i..end);
            i = end;
        } else if c == '/' && next == Some('*') {
            let (mut depth, mut j) = (1, i + 2); // block comments nest
            while j < s.len() && depth > 0 {
                match (s[j], at(j + 1)) {
                    ('/', Some('*')) => (depth, j) = (depth + 1, j + 2),
                    ('*', Some('/')) => (depth, j) = (depth - 1, j + 2),
                    _ => j += 1,
                }
            }
            wipe(&mut out, i..j);
            i = j;
        } else if c == '"' {
            let mut j = i + 1;
            while j < s.len() && s[j] != '"' {
                j += if s[j] == '\\' { 2 } else { 1 };
            }
            wipe(&mut out, i + 1..j);
            i = j + 1;
        } else if c == '\'' {
            // `'x'` and `'\n'` are char literals; `'a` is a lifetime or label.
            let end = match next {
                Some('\\') => find(&s, &['\''], i + 3),
                _ => (at(i + 2) == Some('\'')).then_some(i + 2),
            };
            wipe(&mut out, i + 1..end.unwrap_or(i + 1));
            i = end.map_or(i + 1, |e| e + 1);
        } else if is_ident(c) {
            let end = ident_end(&s, i);
            let hashes = skip(&s, end, |x| x == '#') - end;
            let raw = matches!(s[i..end], ['r'] | ['b' | 'c', 'r']);
            i = end;
            if raw && at(end + hashes) == Some('"') {
                // A raw string: r#"..."# ends at a quote followed by as many hashes.
                let close: Vec<char> = format!("\"{}", "#".repeat(hashes)).chars().collect();
                let body = end + hashes + 1;
                let stop = find(&s, &close, body).unwrap_or(s.len());
                wipe(&mut out, body..stop);
                i = stop + close.len();
            }
        } else {
            i += 1;
        }
    }
    let attr: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut from = 0;
    while let Some(start) = find(&out, &attr, from) {
        let end = item(&out, start + attr.len()).1;
        wipe(&mut out, start..end + 1);
        from = end + 1;
    }
    out
}

/// From inside an item's header: (the `{` opening its body, the matching `}`), or (None, the `;`
/// ending an item without a body). The header's `(..)` and `[..]` are skipped, so `-> [u8; 4]`
/// does not end it; in the body every brace counts, closures' too.
fn item(c: &[char], from: usize) -> (Option<usize>, usize) {
    let (mut parens, mut braces, mut open) = (0, 0, None);
    for (k, &ch) in c.iter().enumerate().skip(from) {
        match ch {
            '(' | '[' => parens += 1,
            ')' | ']' => parens -= 1,
            ';' if parens == 0 && open.is_none() => return (None, k),
            '{' if parens == 0 || open.is_some() => {
                open = open.or(Some(k));
                braces += 1;
            }
            '}' if open.is_some() => {
                braces -= 1;
                if braces == 0 {
                    return (open, k);
                }
            }
            _ => {}
        }
    }
    (open, c.len())
}

/// Every `crate::NAME` in non-test code, as (NAME, line). In `crate::{a::X, b::{Y}}` each
/// top-level name (`a`, `b`) counts.
fn scan(src: &str) -> Vec<(String, usize)> {
    let c = blank(src);
    let name = |at: usize| {
        (
            c[at..ident_end(&c, at)].iter().collect::<String>(),
            line_of(&c, at),
        )
    };
    let mut found = Vec::new();
    for start in words(&c, "crate") {
        let j = skip(&c, start + "crate".len(), char::is_whitespace);
        let k = skip(&c, j + 2, char::is_whitespace);
        if !c[j..].starts_with(&[':', ':']) || k == c.len() {
            continue;
        }
        if c[k] != '{' {
            if is_ident(c[k]) {
                found.push(name(k));
            }
            continue;
        }
        let (mut depth, mut want) = (0, true); // want: a name may start here
        let end = item(&c, k).1;
        for (at, &ch) in c.iter().enumerate().take(end).skip(k) {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 1 => want = true,
                _ if is_ident(ch) && want && depth == 1 => {
                    want = false;
                    let (name, line) = name(at);
                    if name != "self" {
                        found.push((name, line));
                    }
                }
                _ => {}
            }
        }
    }
    found
}

/// Every `fn NAME` with a body, as (NAME, line of `fn`, lines from `{` to `}`).
fn functions(src: &str) -> Vec<(String, usize, usize)> {
    let c = blank(src);
    let mut found = Vec::new();
    for start in words(&c, "fn") {
        let name_at = skip(&c, start + 2, char::is_whitespace);
        let name_end = ident_end(&c, name_at);
        if name_end == name_at {
            continue; // `fn(..)`, a pointer type
        }
        if let (Some(open), close) = item(&c, name_end) {
            let lines = line_of(&c, close) - line_of(&c, open) + 1;
            let name = c[name_at..name_end].iter().collect();
            found.push((name, line_of(&c, start), lines));
        }
    }
    found
}

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Cycles in the module graph, found depth-first, each rotated to start at its smallest module.
fn cycles(graph: &Graph) -> BTreeSet<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Vec<Vec<String>> {
        if let Some(pos) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[pos..].to_vec();
            let smallest = (0..cycle.len()).min_by_key(|&k| &cycle[k]).unwrap_or(0);
            cycle.rotate_left(smallest);
            return vec![cycle];
        }
        if !done.insert(node.to_string()) {
            return Vec::new();
        }
        stack.push(node.to_string());
        let mut found = Vec::new();
        for next in graph.get(node).into_iter().flatten() {
            found.extend(visit(next, graph, stack, done));
        }
        stack.pop();
        found
    }
    let (mut done, mut found) = (BTreeSet::new(), BTreeSet::new());
    for node in graph.keys() {
        found.extend(visit(node, graph, &mut Vec::new(), &mut done));
    }
    found
}

#[test]
fn layers_are_respected() {
    let rules: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let files = src_files();
    let in_src: BTreeSet<String> = files.iter().filter_map(|(p, _)| top_module(p)).collect();
    let mut broken: Vec<String> = (in_src.iter())
        .filter(|m| !rules.contains_key(m.as_str()))
        .map(|m| format!("new top-level module {m} has no layer: add it to the table"))
        .collect();
    // (from, to) -> where it first happens, files in sorted order.
    let mut first: BTreeMap<(String, String), String> = BTreeMap::new();
    for (path, text) in &files {
        let Some(from) = top_module(path) else {
            continue;
        };
        for (to, line) in scan(text).into_iter().filter(|(to, _)| *to != from) {
            let at = format!("{path}:{line}");
            first.entry((from.clone(), to)).or_insert(at);
        }
    }
    let mut graph = Graph::new();
    for ((from, to), at) in &first {
        if !in_src.contains(to) && !rules.contains_key(to.as_str()) {
            let msg = "is not allowed (import it from its module)";
            broken.push(format!("{from} -> crate root item {to} {msg}"));
            continue;
        }
        graph.entry(from.clone()).or_default().insert(to.clone());
        let allowed = rules.get(from.as_str()).copied().unwrap_or_default();
        if !allowed.contains(&to.as_str()) {
            broken.push(format!("{from} -> {to} is not allowed ({at})"));
        }
    }
    // Shortest cycles first, and only those through a module not yet named: the edges above
    // already say what to fix, this keeps the list short.
    let mut cycles: Vec<_> = cycles(&graph).into_iter().collect();
    cycles.sort_by_key(Vec::len);
    let mut named = BTreeSet::new();
    for cycle in cycles {
        if cycle.iter().all(|m| named.contains(m)) {
            continue;
        }
        let ring = cycle.join(" -> ");
        broken.push(format!("module cycle: {ring} -> {}", cycle[0]));
        named.extend(cycle);
    }
    if !broken.is_empty() {
        panic!("layering rules broken:\n{}", broken.join("\n"));
    }
}

#[test]
fn no_function_over_100_lines() {
    let mut broken = Vec::new();
    for (path, text) in src_files() {
        for (name, line, lines) in functions(&text).into_iter().filter(|f| f.2 > MAX_FN_LINES) {
            broken.push(format!(
                "{path}:{line}: fn {name} is {lines} lines (at most {MAX_FN_LINES})"
            ));
        }
    }
    if !broken.is_empty() {
        panic!("functions too long:\n{}", broken.join("\n"));
    }
}

#[test]
fn scanner_skips_tests_comments_and_literals() {
    let src = r##"//! See crate::cli.
use crate::engine::Rules; /* crate::cli */
const S: &str = "crate::cli";
const R: &str = r#"crate::cli "quoted" { "#;
fn f<'a>(x: &'a str) -> char { '{' }
#[cfg(test)]
mod tests {
    use crate::cli;
    const B: char = '}';
}
"##;
    assert_eq!(scan(src), vec![("engine".to_string(), 2)]);
    let grouped = "use crate::{domain::X, engine::{Y, Z}, self};\nfn g() { crate::app::run() }";
    let names: Vec<_> = scan(grouped)
        .into_iter()
        .map(|(n, l)| format!("{n}:{l}"))
        .collect();
    assert_eq!(names, ["domain:1", "engine:1", "app:2"]);
    let fns = functions(
        "fn a<T>(x: T) -> [u8; 4]\nwhere\n    T: Fn() -> u8,\n{\n    fn b() {}\n\n}\nfn c();",
    );
    assert_eq!(fns, [("a".to_string(), 1, 4), ("b".to_string(), 5, 1)]);
}
