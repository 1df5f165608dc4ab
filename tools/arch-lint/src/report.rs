//! What a passing check found: the declared layers and the edges between files, for a test to
//! assert on and to print.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::layers::Layer;
use crate::violation::Reference;

/// The crate as the check saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The declared layers, top to bottom.
    pub layers: Vec<Layer>,
    /// The files of the graph (every module file but `lib.rs`), relative to the crate directory.
    pub files: Vec<PathBuf>,
    /// One edge per pair of files where the first names items of the second, sorted.
    pub edges: Vec<Edge>,
}

/// File `from` names items of file `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: PathBuf,
    pub to: PathBuf,
    /// The top-level modules the two files belong to.
    pub from_module: String,
    pub to_module: String,
    /// How many references make the edge.
    pub references: usize,
    /// The first of them.
    pub first: Reference,
}

impl Report {
    /// The module names of each layer, top to bottom.
    pub fn layer_modules(&self) -> Vec<Vec<&str>> {
        self.layers
            .iter()
            .map(|l| l.modules.iter().map(String::as_str).collect())
            .collect()
    }

    /// Edges between different top-level modules, summed: (from, to) → references.
    pub fn module_edges(&self) -> BTreeMap<(String, String), usize> {
        let mut summed = BTreeMap::new();
        for edge in self.edges.iter().filter(|e| e.from_module != e.to_module) {
            *summed
                .entry((edge.from_module.clone(), edge.to_module.clone()))
                .or_default() += edge.references;
        }
        summed
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "layers, top to bottom:")?;
        for (position, layer) in self.layers.iter().enumerate() {
            writeln!(f, "  {}. {}", position + 1, layer.modules.join(", "))?;
        }
        let references: usize = self.edges.iter().map(|e| e.references).sum();
        writeln!(
            f,
            "{} files, {} edges between them ({references} references)",
            self.files.len(),
            self.edges.len()
        )?;
        writeln!(f, "between top-level modules:")?;
        for ((from, to), count) in self.module_edges() {
            writeln!(f, "  {from} -> {to}: {count}")?;
        }
        Ok(())
    }
}
