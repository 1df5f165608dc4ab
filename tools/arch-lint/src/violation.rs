//! What can be wrong with a crate's architecture, and where: every [`Violation`] names the files,
//! lines and path text involved, so a failing test says what to change.

use std::fmt;
use std::path::PathBuf;

/// One place where a file names an item of another file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The file that names the item, relative to the crate directory (`src/api/mod.rs`).
    pub from: PathBuf,
    /// The file that defines it.
    pub to: PathBuf,
    /// 1-based line of the reference in `from`.
    pub line: usize,
    /// The path as written, without generics (`crate::db::Db`, `super::error::ApiError`).
    pub path: String,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} `{}` -> {}",
            self.from.display(),
            self.line,
            self.path,
            self.to.display()
        )
    }
}

/// A broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A file could not be read or parsed.
    Unreadable { file: PathBuf, problem: String },
    /// `mod x;` names a module with neither `x.rs` nor `x/mod.rs`, or uses `#[path]`.
    ModuleFile {
        file: PathBuf,
        line: usize,
        module: String,
        problem: String,
    },
    /// The crate's doc comment has no `//! ## Layers` section, or it lists no layer.
    NoLayers { file: PathBuf, problem: String },
    /// A numbered line of the Layers section names no module.
    LayerWithoutModules { line: usize, text: String },
    /// The Layers section names a module the crate does not declare.
    UnknownLayerModule { line: usize, module: String },
    /// The Layers section names a module twice.
    ModuleInTwoLayers { line: usize, module: String },
    /// A top-level module is in no layer.
    Unlayered { module: String, file: PathBuf },
    /// A module uses a module of a higher layer.
    UpwardImport {
        reference: Reference,
        from_module: String,
        from_layer: usize,
        to_module: String,
        to_layer: usize,
    },
    /// A module uses a module of the same layer (peers are independent).
    PeerImport {
        reference: Reference,
        from_module: String,
        to_module: String,
        layer: usize,
    },
    /// Files that import each other, directly or through others. `cycle` goes round once, each
    /// step the first reference from one file to the next; `files` is every file of the knot
    /// (the strongly connected component), of which the cycle is one loop.
    Cycle {
        cycle: Vec<Reference>,
        files: Vec<PathBuf>,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Unreadable { file, problem } => {
                write!(f, "{}: cannot be checked: {problem}", file.display())
            }
            Violation::ModuleFile {
                file,
                line,
                module,
                problem,
            } => write!(f, "{}:{line}: module `{module}`: {problem}", file.display()),
            Violation::NoLayers { file, problem } => write!(
                f,
                "{}: {problem}; declare the layers top to bottom in the crate's doc comment \
                 under `//! ## Layers`, one numbered line each (`//! 1. `a`, `b`: what they are`)",
                file.display()
            ),
            Violation::LayerWithoutModules { line, text } => write!(
                f,
                "lib.rs:{line}: layer line {text:?} names no module (write `N. `module`, `other``)"
            ),
            Violation::UnknownLayerModule { line, module } => write!(
                f,
                "lib.rs:{line}: the layers name `{module}`, which is not a module of the crate"
            ),
            Violation::ModuleInTwoLayers { line, module } => write!(
                f,
                "lib.rs:{line}: module `{module}` is already in an earlier layer"
            ),
            Violation::Unlayered { module, file } => write!(
                f,
                "module `{module}` ({}) is in no declared layer",
                file.display()
            ),
            Violation::UpwardImport {
                reference,
                from_module,
                from_layer,
                to_module,
                to_layer,
            } => write!(
                f,
                "upward import: {reference}: `{from_module}` (layer {from_layer}) uses \
                 `{to_module}` (layer {to_layer}); a layer uses only the layers below it"
            ),
            Violation::PeerImport {
                reference,
                from_module,
                to_module,
                layer,
            } => write!(
                f,
                "peer import: {reference}: `{from_module}` and `{to_module}` are both in \
                 layer {layer}; modules of one layer do not use each other"
            ),
            Violation::Cycle { cycle, files } => {
                write!(f, "import cycle:")?;
                for step in cycle {
                    write!(f, "\n    {step}")?;
                }
                if files.len() > cycle.len() {
                    write!(f, "\n    (the knot holds {} files:", files.len())?;
                    for file in files {
                        write!(f, " {}", file.display())?;
                    }
                    write!(f, ")")?;
                }
                Ok(())
            }
        }
    }
}
