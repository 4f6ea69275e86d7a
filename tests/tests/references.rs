//! The repository is self-contained: no comment or document points outside it, and every repository path
//! a comment or document names exists (a file moved or renamed without its mentions fails here), with its
//! `#section` when it names a Markdown heading. Plain file reading: no card stack needed (seconds).

use std::path::{Path, PathBuf};

/// Top-level folders whose paths comments and documents name.
const ROOTS: &[&str] = &[
    "agent",
    "docs",
    "drivers",
    "fuzz",
    "installer",
    "relying-party",
    "scripts",
    "src-tauri",
    "tests",
    "ui",
];
/// Files read: source, scripts, documents, configuration.
const EXTENSIONS: &[&str] =
    &["rs", "md", "sh", "toml", "yaml", "yml", "js", "html", "css", "py", "ps1", "wxs"];
/// Folders not read: build products, fuzzing inputs, pictures.
const SKIPPED: &[&str] = &["target", ".git", "node_modules", "corpus", "artifacts", "screenshots"];
/// Named but made by a run, not kept in the repository: build products and fuzzing findings; a test's
/// agent folder under its output directory (`agent/logs`).
const MADE_BY_A_RUN: &[&str] = &["fuzz/target", "fuzz/artifacts", "fuzz/corpus", "agent/logs"];

fn root() -> PathBuf {
    cpx_tests::root()
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !SKIPPED.contains(&name.as_str()) {
                files(&path, out);
            }
        } else if path.extension().is_some_and(|e| EXTENSIONS.contains(&e.to_string_lossy().as_ref())) {
            out.push(path);
        }
    }
}

/// Every text file of the repository with its path relative to the root.
fn repository_files() -> Vec<(String, String)> {
    let root = root();
    let mut paths = Vec::new();
    files(&root, &mut paths);
    paths
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            Some((p.strip_prefix(&root).unwrap().to_string_lossy().into_owned(), text))
        })
        .collect()
}

/// GitHub's anchor of a Markdown heading: lower case, spaces to `-`, punctuation other than `-`/`_` dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    markdown.lines().filter_map(|l| l.strip_prefix('#')).map(|h| slug(h.trim_start_matches('#'))).collect()
}

/// The repository paths named in `text`: a top-level folder of [`ROOTS`] followed by `/` and path
/// characters, not inside a longer word or path (a URL, `../x`, `target/…`); with its `#anchor`, if any.
fn named_paths(text: &str) -> Vec<(String, Option<String>)> {
    let bytes = text.as_bytes();
    let path_char = |b: u8| b.is_ascii_alphanumeric() || b"_-./".contains(&b);
    let mut found = Vec::new();
    for top in ROOTS {
        let needle = format!("{top}/");
        for (at, _) in text.match_indices(&needle) {
            if at > 0 && (path_char(bytes[at - 1]) || bytes[at - 1] == b'~' || bytes[at - 1] == b'$') {
                continue;
            }
            let mut end = at + needle.len();
            while end < bytes.len() && path_char(bytes[end]) {
                end += 1;
            }
            // Patterns and placeholders (`tests/*.rs`, `{a,b}`, `<name>`, `${x}`, `…`) are not paths.
            if bytes.get(end).is_some_and(|b| b"*{<$\xe2".contains(b)) {
                continue;
            }
            let path = text[at..end].trim_end_matches(['.', '-', '_']).to_owned();
            // A placeholder segment in capitals (`fuzz/corpus/TARGET`) or a folder made by a run.
            let placeholder =
                path.split('/').any(|s| s.len() > 1 && s.bytes().all(|b| b.is_ascii_uppercase()));
            if placeholder || MADE_BY_A_RUN.iter().any(|m| path == *m || path.starts_with(&format!("{m}/"))) {
                continue;
            }
            let anchor = (bytes.get(end) == Some(&b'#')).then(|| {
                text[end + 1..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                    .collect()
            });
            found.push((path, anchor));
        }
    }
    found
}

/// What `path#anchor` fails to resolve to, if it does.
fn unresolved(root: &Path, path: &str, anchor: Option<&str>) -> Option<String> {
    let target = root.join(path);
    if !target.exists() {
        return Some("no such file or folder".into());
    }
    let anchor = anchor.filter(|a| !a.is_empty())?;
    let text = std::fs::read_to_string(&target).ok()?;
    (path.ends_with(".md") && !anchors(&text).iter().any(|a| a == anchor))
        .then(|| format!("no heading #{anchor} in it"))
}

#[test]
fn nothing_points_outside_the_repository() {
    // Spelt in pieces so that this file does not name them itself.
    let outside = [
        ["..", "/shared"].concat(),
        ["/work", "/shared"].concat(),
        ["cpx-card", ".md"].concat(),
        ["test-stack", ".md"].concat(),
        ["peers", ".md"].concat(),
        ["ARCHITECTURE", ".md"].concat(),
    ];
    let mut problems = Vec::new();
    for (file, text) in repository_files() {
        for (n, line) in text.lines().enumerate() {
            for o in &outside {
                if line.contains(o.as_str()) {
                    problems.push(format!("{file}:{}: names {o}, which is not in the repository", n + 1));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_repository_path_named_exists() {
    let root = root();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (file, text) in repository_files() {
        for (n, line) in text.lines().enumerate() {
            for (path, anchor) in named_paths(line) {
                checked += 1;
                if let Some(why) = unresolved(&root, &path, anchor.as_deref()) {
                    let shown = anchor.map_or(path.clone(), |a| format!("{path}#{a}"));
                    problems.push(format!("{file}:{}: {shown}: {why}", n + 1));
                }
            }
        }
        // Relative Markdown links of a document: [text](other.md#section).
        if file.ends_with(".md") {
            let dir = Path::new(&file).parent().unwrap_or(Path::new(""));
            for link in text.split("](").skip(1).filter_map(|r| r.split(')').next()) {
                if link.contains("://") || link.starts_with("mailto:") || link.is_empty() {
                    continue;
                }
                let (path, anchor) = link.split_once('#').map_or((link, None), |(p, a)| (p, Some(a)));
                let path = if path.is_empty() { Path::new(&file).to_path_buf() } else { dir.join(path) };
                checked += 1;
                if let Some(why) = unresolved(&root, &path.to_string_lossy(), anchor) {
                    problems.push(format!("{file}: link ({link}): {why}"));
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} references found: is the scan broken?");
    assert!(problems.is_empty(), "{} broken references:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn the_scan_finds_paths_and_anchors_and_skips_what_is_not_one() {
    assert_eq!(
        named_paths("see docs/card-facts.md#recognition, and tests/src/lib.rs."),
        [
            ("docs/card-facts.md".to_owned(), Some("recognition".to_owned())),
            ("tests/src/lib.rs".to_owned(), None)
        ]
    );
    assert!(named_paths("https://github.com/x/docs/a.md ../docs/x target/debug/agent tests/*.rs").is_empty());
    assert_eq!(slug(" Files of the MF "), "files-of-the-mf");
    assert_eq!(slug("PC/SC errors (pcsc-lite)"), "pcsc-errors-pcsc-lite");
    let root = root();
    assert!(unresolved(&root, "docs/card-facts.md", Some("recognition")).is_none());
    assert!(unresolved(&root, "docs/card-facts.md", Some("no-such-section")).is_some());
    let missing = format!("{}/no-such-file.md", "docs");
    assert!(unresolved(&root, &missing, None).is_some());
    assert!(named_paths("fuzz/corpus/TARGET fuzz/target/x").is_empty());
}
