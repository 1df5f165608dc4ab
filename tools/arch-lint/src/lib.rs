//! Checks a crate's architecture from its sources: the layers its top-level doc comment
//! declares, and the absence of import cycles between its files.
//!
//! ```no_run
//! // tests/architecture.rs of the crate being checked (arch-lint as a dev-dependency)
//! let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
//! match arch_lint::check(src) {
//!     Ok(report) => println!("{report}"),
//!     Err(violations) => {
//!         let text: Vec<String> = violations.iter().map(ToString::to_string).collect();
//!         panic!("architecture violations:\n{}", text.join("\n"));
//!     }
//! }
//! ```
//!
//! [`check`] reads `src/lib.rs` and every module file it declares (`mod x;` → `x.rs` or
//! `x/mod.rs`, recursively) and holds the crate to three rules:
//!
//! 1. **Layers are declared.** The crate's top-level doc comment has a `//! ## Layers` section
//!    whose numbered lines (`//! 1. `cli`, `server`: comment`) list the layers top to bottom
//!    ([`Layer`]). Every top-level module with a file of its own is in exactly one layer.
//! 2. **Layers point down.** A file of top-level module A names items of module B only if
//!    B is A or B's layer is listed after A's. Modules of one layer (peers) do not use each
//!    other.
//! 3. **No cycles between files.** Each module file but `lib.rs` is a node (`main.rs` and
//!    `src/bin/` are not read); an edge is a reference in code from one file to an item another
//!    defines. No file reaches itself.
//!
//! References come from code, not comments, doc comments or strings (the sources are parsed
//! with [`syn`]): `use` trees with groups, `self`, renames and globs; `crate::`, `self::` and
//! `super::…` paths anywhere; paths through imported names and child modules
//! (`keys::from_config` after `use crate::keys;`, `use child::X` in a `mod.rs`); and `a::b`
//! paths inside macro invocations, `macro_rules!` bodies and attribute arguments. A path
//! resolves to the deepest module it names, then through imports and re-exports to the file
//! that defines the item. A `pub use` of a module's own child (`pub use child::Item;` in a
//! `mod.rs`) is a facade: not an edge itself, while the mod.rs's own uses of the item are.
//! `mod x;` is not an edge, nor is an import of a module as such (its uses are). `#[cfg(test)]`
//! modules count like other code: a test that reaches upward couples the layers too.
//! Method calls (`db.insert()`) name no module; the type's import is the edge.
//!
//! ## Layers
//!
//! 1. `report`: what a passing check found
//! 2. `refs`: which file names which
//! 3. `tree`, `layers`: the module tree and name resolution; the declared layers
//! 4. `graph`, `violation`: cycles in a graph; what can be wrong

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

mod graph;
mod layers;
mod refs;
mod report;
mod tree;
mod violation;

pub use layers::Layer;
pub use report::{Edge, Report};
pub use violation::{Reference, Violation};

use tree::{Tree, ROOT};

/// Checks the crate whose sources are in `src_dir` (the directory holding `lib.rs`): the
/// [`Report`] when every rule holds, else every [`Violation`] found (files that cannot be read
/// or parsed are violations too).
pub fn check(src_dir: impl AsRef<Path>) -> Result<Report, Vec<Violation>> {
    let (tree, mut violations) = Tree::load(src_dir.as_ref());
    let Some(tree) = tree else {
        return Err(violations);
    };
    let lib = tree.file_of(ROOT);
    let layers = declared_layers(&tree, &mut violations);

    let mut layer_of = HashMap::new();
    let top = tree.top_level_modules();
    let top_names: HashSet<&str> = top.iter().map(|(name, _)| name.as_str()).collect();
    for (position, layer) in layers.iter().enumerate() {
        for module in &layer.modules {
            if !top_names.contains(module.as_str()) {
                violations.push(Violation::UnknownLayerModule {
                    line: layer.line,
                    module: module.clone(),
                });
            } else if layer_of.insert(module.clone(), position + 1).is_some() {
                violations.push(Violation::ModuleInTwoLayers {
                    line: layer.line,
                    module: module.clone(),
                });
            }
        }
    }
    for (name, file) in &top {
        if !layer_of.contains_key(name) {
            violations.push(Violation::Unlayered {
                module: name.clone(),
                file: tree.files[*file].rel.clone(),
            });
        }
    }

    let edges = edges(&tree);
    for edge in &edges {
        let (Some(&from_layer), Some(&to_layer)) = (
            layer_of.get(&edge.from_module),
            layer_of.get(&edge.to_module),
        ) else {
            continue;
        };
        if edge.from_module == edge.to_module || to_layer > from_layer {
            continue;
        }
        violations.push(if to_layer < from_layer {
            Violation::UpwardImport {
                reference: edge.first.clone(),
                from_module: edge.from_module.clone(),
                from_layer,
                to_module: edge.to_module.clone(),
                to_layer,
            }
        } else {
            Violation::PeerImport {
                reference: edge.first.clone(),
                from_module: edge.from_module.clone(),
                to_module: edge.to_module.clone(),
                layer: from_layer,
            }
        });
    }
    violations.extend(cycles(&tree, &edges));

    if !violations.is_empty() {
        return Err(violations);
    }
    Ok(Report {
        layers,
        files: (0..tree.files.len())
            .filter(|&f| f != lib)
            .map(|f| tree.files[f].rel.clone())
            .collect(),
        edges,
    })
}

/// The `## Layers` section of `lib.rs`, its own problems added to `violations`.
fn declared_layers(tree: &Tree, violations: &mut Vec<Violation>) -> Vec<Layer> {
    let lib = &tree.files[tree.file_of(ROOT)];
    let missing = |problem: &str| Violation::NoLayers {
        file: lib.rel.clone(),
        problem: problem.to_string(),
    };
    match layers::parse(&layers::doc_lines(&lib.syntax)) {
        None => {
            violations.push(missing("the doc comment has no `//! ## Layers` section"));
            Vec::new()
        }
        Some((layers, problems)) => {
            violations.extend(problems);
            if layers.is_empty() {
                violations.push(missing("the `## Layers` section lists no layer"));
            }
            layers
        }
    }
}

/// The references of `tree`, one [`Edge`] per pair of files.
fn edges(tree: &Tree) -> Vec<Edge> {
    let mut grouped: BTreeMap<(usize, usize), (usize, refs::RawRef)> = BTreeMap::new();
    for r in refs::collect(tree) {
        let entry = grouped.entry((r.from, r.to)).or_insert((0, r.clone()));
        entry.0 += 1;
        if r.line < entry.1.line {
            entry.1 = r;
        }
    }
    let top = |file: usize| {
        let path = &tree.modules[tree.files[file].module].path;
        path.first().cloned().unwrap_or_default()
    };
    let mut edges: Vec<Edge> = grouped
        .into_values()
        .map(|(references, first)| Edge {
            from: tree.files[first.from].rel.clone(),
            to: tree.files[first.to].rel.clone(),
            from_module: top(first.from),
            to_module: top(first.to),
            references,
            first: reference(tree, &first),
        })
        .collect();
    edges.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
    edges
}

fn reference(tree: &Tree, r: &refs::RawRef) -> Reference {
    Reference {
        from: tree.files[r.from].rel.clone(),
        to: tree.files[r.to].rel.clone(),
        line: r.line,
        path: r.path.clone(),
    }
}

/// One [`Violation::Cycle`] per knot of files that reach each other.
fn cycles(tree: &Tree, edges: &[Edge]) -> Vec<Violation> {
    let index: HashMap<&Path, usize> = tree
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.rel.as_path(), i))
        .collect();
    let mut first = HashMap::new();
    let mut pairs = BTreeSet::new();
    for edge in edges {
        let pair = (index[edge.from.as_path()], index[edge.to.as_path()]);
        pairs.insert(pair);
        first.insert(pair, &edge.first);
    }
    graph::knots(tree.files.len(), &pairs)
        .into_iter()
        .map(|knot| {
            let nodes = graph::shortest_loop(&knot, &pairs);
            let cycle = (0..nodes.len())
                .map(|i| first[&(nodes[i], nodes[(i + 1) % nodes.len()])].clone())
                .collect();
            Violation::Cycle {
                cycle,
                files: knot.iter().map(|&f| tree.files[f].rel.clone()).collect(),
            }
        })
        .collect()
}
