//! The edge keeps the layers `src/lib.rs` declares (each layer uses only the layers below it,
//! peers do not use each other), no file of `src/` reaches itself through imports, and Pingora's
//! request and response types stay in `http/` (the phases) and `app/` (the server), except
//! where a lower part builds its own request to a peer.

use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn the_edge_keeps_its_declared_layers_and_has_no_import_cycles() {
    let report = arch_lint::check(src()).unwrap_or_else(|violations| {
        let text: Vec<String> = violations.iter().map(ToString::to_string).collect();
        panic!(
            "{} architecture violations:\n{}",
            violations.len(),
            text.join("\n")
        );
    });
    println!("{report}");
    // The layers as lib.rs declares them: a broken `## Layers` section fails here, loudly.
    assert_eq!(
        report.layer_modules(),
        vec![
            vec!["explain"],
            vec!["app"],
            vec!["http"],
            vec!["licensing", "records"],
            vec!["access"],
            vec!["gate", "delivery", "control_plane", "transport"],
            vec!["core"],
            vec!["config"],
        ]
    );
}

/// Pingora names that belong to the request pipeline, and the files below `http/` allowed to
/// use each (a request the edge itself sends to a peer; the cache's stored response meta).
const PIPELINE_NAMES: &[(&str, &[&str])] = &[
    ("proxy", &[]),
    ("Session", &[]),
    (
        "RequestHeader",
        &[
            // the health check's own request to each origin
            "delivery/origin/http.rs",
            // the request to the Widevine / PlayReady provider
            "licensing/upstream.rs",
        ],
    ),
    (
        "ResponseHeader",
        // pingora-cache stores responses as their headers
        &["delivery/cache/mod.rs", "delivery/cache/storage.rs"],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of `text` without `//` comments (doc comments included).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path into Pingora that `code` writes: a whole `use pingora...;` item (groups
/// included), or a `pingora::a::B` path in an expression or a type.
fn pingora_paths(code: &str) -> Vec<String> {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut paths = Vec::new();
    for (at, _) in code.match_indices("pingora") {
        if word(code[..at].chars().next_back()) {
            continue;
        }
        let rest = &code[at..];
        let is_use = code[..at].trim_end().ends_with("use");
        let end = if is_use {
            rest.find(';').unwrap_or(rest.len())
        } else {
            rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len())
        };
        paths.push(rest[..end].to_string());
    }
    paths
}

/// `true` when `path` names `name` as a whole segment.
fn names(path: &str, name: &str) -> bool {
    path.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|segment| segment == name)
}

#[test]
fn pingora_request_types_stay_in_the_pipeline() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut found = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file
            .strip_prefix(&root)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if relative.starts_with("http/") || relative.starts_with("app/") || relative == "main.rs" {
            continue;
        }
        checked += 1;
        let text = std::fs::read_to_string(file).expect("read");
        for path in pingora_paths(&code(&text)) {
            for (name, allowed) in PIPELINE_NAMES {
                if names(&path, name) && !allowed.contains(&relative.as_str()) {
                    found.push(format!("src/{relative}: {name} in `{path}`"));
                }
            }
        }
    }
    assert!(checked > 30, "only {checked} files below http/ were read");
    assert!(
        found.is_empty(),
        "Pingora's pipeline types outside http/ and app/:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_pingora_path_check_sees_imports_and_paths_and_skips_comments() {
    let text = "//! a Session of playback\nuse pingora::proxy::{ProxyHttp,\n    Session};\n\
                fn f() { let h = pingora::http::RequestHeader::build(); }\n\
                // pingora::http::ResponseHeader in a comment\n\
                use playback::Session;\n";
    let paths = pingora_paths(&code(text));
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(names(&paths[0], "Session") && names(&paths[0], "proxy"));
    assert!(names(&paths[1], "RequestHeader"));
    assert!(!paths.iter().any(|p| names(p, "ResponseHeader")));
    assert!(!names("pingora::cache::Sessions", "Session"));
}
