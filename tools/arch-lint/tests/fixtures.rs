//! `arch_lint::check` on small crates written to a temporary directory: what counts as a
//! reference, what does not, and how each broken rule is reported.

use std::path::{Path, PathBuf};

use arch_lint::{check, Reference, Report, Violation};

/// Layers of most fixtures: `app` above `store`.
const LIB: &str = "//! A fixture.\n//!\n//! ## Layers\n//!\n//! 1. `app`: the top\n//! 2. `store`\n\npub mod app;\npub mod store;\n";

/// Writes `files` (paths under `src/`) into a new temporary crate directory.
fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join("src").join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn run(files: &[(&str, &str)]) -> Result<Report, Vec<Violation>> {
    let dir = fixture(files);
    check(dir.path().join("src"))
}

fn ok(files: &[(&str, &str)]) -> Report {
    run(files).unwrap_or_else(|v| panic!("expected no violations, got {v:#?}"))
}

fn violations(files: &[(&str, &str)]) -> Vec<Violation> {
    match run(files) {
        Ok(report) => panic!("expected violations, got {report}"),
        Err(v) => v,
    }
}

fn edges(report: &Report) -> Vec<(String, String)> {
    report
        .edges
        .iter()
        .map(|e| (path(&e.from), path(&e.to)))
        .collect()
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn reference(from: &str, to: &str, line: usize, text: &str) -> Reference {
    Reference {
        from: PathBuf::from(from),
        to: PathBuf::from(to),
        line,
        path: text.into(),
    }
}

#[test]
fn a_layered_crate_passes_and_reports_its_layers_and_edges() {
    let report = ok(&[
        ("lib.rs", LIB),
        (
            "app.rs",
            "use crate::store::Db;\n\npub fn run(db: &Db) { crate::store::open(db); }\n",
        ),
        ("store.rs", "pub struct Db;\npub fn open(_: &Db) {}\n"),
        (
            "main.rs",
            "fn main() { fixture::app::run(&fixture::store::Db); }\n",
        ),
    ]);
    assert_eq!(report.layer_modules(), vec![vec!["app"], vec!["store"]]);
    assert_eq!(report.layers[0].comment, ": the top");
    assert_eq!(
        report.files,
        vec![PathBuf::from("src/app.rs"), "src/store.rs".into()]
    );
    assert_eq!(
        edges(&report),
        vec![("src/app.rs".into(), "src/store.rs".into())]
    );
    assert_eq!(report.edges[0].references, 3);
    assert_eq!(
        report.edges[0].first,
        reference("src/app.rs", "src/store.rs", 1, "crate::store::Db")
    );
    let modules = report.module_edges();
    assert_eq!(modules.len(), 1);
    assert_eq!(modules[&("app".to_string(), "store".to_string())], 3);
    let text = report.to_string();
    assert!(text.contains("1. app\n  2. store"), "{text}");
    assert!(text.contains("app -> store: 3"), "{text}");
}

#[test]
fn an_upward_import_names_the_file_line_and_path() {
    let found = violations(&[
        ("lib.rs", LIB),
        ("app.rs", "pub struct Config;\n"),
        ("store.rs", "\n\nuse crate::app::Config;\n"),
    ]);
    assert_eq!(
        found,
        vec![Violation::UpwardImport {
            reference: reference("src/store.rs", "src/app.rs", 3, "crate::app::Config"),
            from_module: "store".into(),
            from_layer: 2,
            to_module: "app".into(),
            to_layer: 1,
        }]
    );
    let text = found[0].to_string();
    assert!(
        text.contains("src/store.rs:3 `crate::app::Config` -> src/app.rs"),
        "{text}"
    );
}

#[test]
fn peers_do_not_use_each_other() {
    let found = violations(&[
        ("lib.rs", "//! ## Layers\n//! 1. `a`, `b`\nmod a;\nmod b;\n"),
        ("a.rs", "pub fn f() { crate::b::g() }\n"),
        ("b.rs", "pub fn g() {}\n"),
    ]);
    assert!(
        matches!(&found[..], [Violation::PeerImport { from_module, to_module, layer: 1, .. }]
            if from_module == "a" && to_module == "b"),
        "{found:#?}"
    );
}

#[test]
fn files_that_import_each_other_are_a_cycle() {
    let found = violations(&[
        ("lib.rs", "//! ## Layers\n//! 1. `a`\nmod a;\n"),
        (
            "a/mod.rs",
            "mod child;\nuse child::Helper;\n\npub struct Thing;\npub fn run() { child::go(Helper) }\n",
        ),
        (
            "a/child.rs",
            "use super::Thing;\npub struct Helper;\npub fn go(_: Helper) -> Option<Thing> { None }\n",
        ),
    ]);
    assert_eq!(
        found,
        vec![Violation::Cycle {
            cycle: vec![
                reference("src/a/child.rs", "src/a/mod.rs", 1, "super::Thing"),
                reference("src/a/mod.rs", "src/a/child.rs", 2, "child::Helper"),
            ],
            files: vec!["src/a/child.rs".into(), "src/a/mod.rs".into()],
        }]
    );
    let text = found[0].to_string();
    assert!(
        text.starts_with("import cycle:\n    src/a/child.rs:1"),
        "{text}"
    );
}

#[test]
fn a_longer_cycle_is_reported_once_with_the_whole_knot() {
    let found = violations(&[
        ("lib.rs", "//! ## Layers\n//! 1. `m`\nmod m;\n"),
        ("m/mod.rs", "mod x;\nmod y;\nmod z;\n"),
        ("m/x.rs", "pub struct X(pub super::y::Y);\n"),
        ("m/y.rs", "pub struct Y(pub Box<super::z::Z>);\n"),
        ("m/z.rs", "pub struct Z(pub Option<Box<super::x::X>>);\n"),
    ]);
    let [Violation::Cycle { cycle, files }] = &found[..] else {
        panic!("{found:#?}");
    };
    assert_eq!(cycle.len(), 3);
    assert_eq!(files.len(), 3);
    assert_eq!(cycle[0].path, "super::y::Y");
}

#[test]
fn a_facade_reexport_is_not_an_edge_and_resolves_to_the_defining_file() {
    let files = [
        ("lib.rs", LIB),
        ("app.rs", "use crate::store::Item;\npub fn f(_: Item) {}\n"),
        (
            "store/mod.rs",
            "mod item;\npub use item::Item;\npub(crate) use self::item::LEN as ITEM_LEN;\n\npub const LIMIT: usize = 3;\n",
        ),
        ("store/item.rs", "use super::LIMIT;\npub const LEN: usize = 1;\npub struct Item(pub [u8; LIMIT]);\n"),
    ];
    let report = ok(&files);
    assert_eq!(
        edges(&report),
        vec![
            ("src/app.rs".into(), "src/store/item.rs".into()),
            ("src/store/item.rs".into(), "src/store/mod.rs".into()),
        ]
    );

    // The mod.rs using the re-exported item in its own code is an edge: now a cycle.
    let mut uses_it = files;
    uses_it[2].1 = "mod item;\npub use item::Item;\n\npub const LIMIT: usize = 3;\npub fn make() -> Item { Item([0; LIMIT]) }\n";
    let found = violations(&uses_it);
    assert!(
        matches!(&found[..], [Violation::Cycle { cycle, .. }] if cycle.iter().any(|r| r.path == "Item" && r.line == 5)),
        "{found:#?}"
    );
}

#[test]
fn a_reexport_of_something_outside_the_module_is_an_edge() {
    let found = violations(&[
        ("lib.rs", LIB),
        ("app.rs", "pub struct Config;\n"),
        ("store.rs", "pub use crate::app::Config;\n"),
    ]);
    assert!(
        matches!(&found[..], [Violation::UpwardImport { .. }]),
        "{found:#?}"
    );
}

#[test]
fn grouped_use_trees_self_and_renames_resolve_leaf_by_leaf() {
    let report = ok(&[
        ("lib.rs", LIB),
        (
            "app.rs",
            "use crate::{\n    store::{self, pool::{Pool as P, Size}},\n};\n\npub fn f(_: P, _: Size) { store::open() }\n",
        ),
        ("store/mod.rs", "pub mod pool;\npub fn open() {}\n"),
        ("store/pool.rs", "pub struct Pool;\npub struct Size;\n"),
    ]);
    assert_eq!(
        edges(&report),
        vec![
            ("src/app.rs".into(), "src/store/mod.rs".into()),
            ("src/app.rs".into(), "src/store/pool.rs".into()),
        ]
    );
    let to_pool = &report.edges[1];
    // `Pool as P` and `Size` in the use tree, `P` and `Size` in the signature.
    assert_eq!(to_pool.references, 4);
    assert_eq!(to_pool.first.line, 2);
    assert_eq!(to_pool.first.path, "crate::store::pool::Pool");
    // `use crate::store::{self}` imports a module: only `store::open()` is the edge.
    assert_eq!(report.edges[0].references, 1);
    assert_eq!(report.edges[0].first.path, "store::open");
}

#[test]
fn comments_doc_comments_and_strings_are_not_references() {
    let store = r####"//! Refers to crate::app::Config in prose only.

// use crate::app::Config;
/* crate::app::Config */
/// See [`crate::app::Config`].
pub fn text() -> [&'static str; 4] {
    [
        "crate::app::Config",
        r#"crate::app::Config "quoted", still one string"#,
        r##"crate::app::Config"##,
        concat!("crate::app::", "Config"),
    ]
}
pub const BYTES: &[u8] = b"crate::app::Config";
"####;
    ok(&[
        ("lib.rs", LIB),
        ("app.rs", "pub struct Config;\n"),
        ("store.rs", store),
    ]);
}

#[test]
fn super_paths_climb_any_number_of_modules() {
    let report = ok(&[
        ("lib.rs", LIB),
        ("app.rs", "pub struct Config;\n"),
        ("store/mod.rs", "pub mod deep;\npub struct Root;\n"),
        ("store/deep/mod.rs", "pub mod inner;\n"),
        (
            "store/deep/inner.rs",
            "pub fn f(_: super::super::Root) {}\n",
        ),
    ]);
    assert_eq!(
        edges(&report),
        vec![("src/store/deep/inner.rs".into(), "src/store/mod.rs".into())]
    );
    let found = violations(&[
        ("lib.rs", LIB),
        ("app.rs", "pub struct Config;\n"),
        ("store/mod.rs", "pub mod deep;\n"),
        ("store/deep.rs", "use super::super::app::Config;\n"),
    ]);
    assert!(
        matches!(&found[..], [Violation::UpwardImport { reference, .. }]
            if reference.path == "super::super::app::Config" && path(&reference.from) == "src/store/deep.rs"),
        "{found:#?}"
    );
}

#[test]
fn macro_tokens_attributes_blocks_and_test_modules_count() {
    let store = r#"macro_rules! config {
    () => { $crate::app::MacroBody };
}

#[allow(unused)]
#[my_attr(body = crate::app::InAttribute)]
pub fn f() {
    assert_eq!(crate::app::InMacro, 1);
    {
        use crate::app as up;
        let _ = up::InBlock;
    }
}

#[cfg(test)]
mod tests {
    use crate::app::InTests;
}
"#;
    let found = violations(&[
        ("lib.rs", LIB),
        ("app.rs", "pub struct Config;\n"),
        ("store.rs", store),
    ]);
    let [Violation::UpwardImport { reference, .. }] = &found[..] else {
        panic!("one edge, one violation: {found:#?}");
    };
    assert_eq!(reference.line, 2);
    assert_eq!(reference.path, "crate::app::MacroBody");

    // With `store` above `app` the same file passes, and every one of the five counts.
    let report = ok(&[
        (
            "lib.rs",
            "//! ## Layers\n//! 1. `store`\n//! 2. `app`\nmod app;\nmod store;\n",
        ),
        ("app.rs", "pub struct Config;\n"),
        ("store.rs", store),
    ]);
    let [edge] = &report.edges[..] else {
        panic!("{:?}", report.edges);
    };
    assert_eq!(edge.references, 5, "{edge:?}");
}

#[test]
fn glob_imports_resolve_the_names_used_through_them() {
    let report = ok(&[
        ("lib.rs", LIB),
        (
            "app.rs",
            "use crate::store::*;\npub fn f() -> Thing { Thing }\n",
        ),
        ("store/mod.rs", "mod thing;\npub use thing::*;\n"),
        ("store/thing.rs", "pub struct Thing;\n"),
    ]);
    assert_eq!(
        edges(&report),
        vec![("src/app.rs".into(), "src/store/thing.rs".into())]
    );
}

#[test]
fn mod_declarations_and_module_imports_are_not_edges() {
    let report = ok(&[
        ("lib.rs", LIB),
        (
            "app.rs",
            "use crate::store;\n#[allow(unused)]\npub fn f() {}\n",
        ),
        ("store/mod.rs", "pub mod a;\npub mod b;\n"),
        ("store/a.rs", "pub struct A;\n"),
        ("store/b.rs", "pub struct B;\n"),
    ]);
    assert!(report.edges.is_empty(), "{:?}", report.edges);
    assert_eq!(report.files.len(), 4);
}

#[test]
fn every_module_needs_exactly_one_known_layer() {
    let found = violations(&[
        (
            "lib.rs",
            "//! ## Layers\n//! 1. `app`, `ghost`\n//! 2. `app`\n//! 3. see above\nmod app;\nmod store;\nmod inline { }\n",
        ),
        ("app.rs", ""),
        ("store.rs", ""),
    ]);
    assert_eq!(
        found,
        vec![
            Violation::LayerWithoutModules {
                line: 4,
                text: "3. see above".into()
            },
            Violation::UnknownLayerModule {
                line: 2,
                module: "ghost".into()
            },
            Violation::ModuleInTwoLayers {
                line: 3,
                module: "app".into()
            },
            Violation::Unlayered {
                module: "store".into(),
                file: "src/store.rs".into()
            },
        ]
    );
    assert!(found[3]
        .to_string()
        .contains("module `store` (src/store.rs) is in no declared layer"));
}

#[test]
fn a_crate_without_a_layers_section_fails_loudly() {
    let found = violations(&[
        ("lib.rs", "//! No layers here.\n\nmod app;\n"),
        ("app.rs", ""),
    ]);
    assert!(
        matches!(&found[0], Violation::NoLayers { problem, .. } if problem.contains("no `//! ## Layers` section")),
        "{found:#?}"
    );
    let found = violations(&[("lib.rs", "//! ## Layers\n//! none yet\n")]);
    assert!(
        matches!(&found[..], [Violation::NoLayers { problem, .. }] if problem.contains("lists no layer")),
        "{found:#?}"
    );
}

#[test]
fn missing_files_and_syntax_errors_are_violations() {
    let found = violations(&[
        ("lib.rs", "//! ## Layers\n//! 1. `app`, `broken`, `nowhere`\nmod app;\nmod broken;\nmod nowhere;\n"),
        ("app.rs", ""),
        ("broken.rs", "pub fn f( {\n"),
    ]);
    assert!(
        found.iter().any(
            |v| matches!(v, Violation::Unreadable { file, .. } if path(file) == "src/broken.rs")
        ),
        "{found:#?}"
    );
    assert!(
        found.iter().any(
            |v| matches!(v, Violation::ModuleFile { module, line: 5, .. } if module == "nowhere")
        ),
        "{found:#?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let missing = check(dir.path());
    assert!(
        matches!(&missing, Err(v) if matches!(&v[..], [Violation::Unreadable { .. }])),
        "{missing:?}"
    );
}
