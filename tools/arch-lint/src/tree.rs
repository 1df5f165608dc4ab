//! The crate's module tree, read from `lib.rs` down through every `mod x;`, and name
//! resolution over it.
//!
//! Each module (a file, or an inline `mod x { … }` inside one) keeps what its scope holds:
//! child modules, the names of items it defines, and its `use` imports (names, renames and
//! globs, whatever their visibility). [`Tree::resolve`] follows a path through that: `crate::`,
//! `self::`, `super::` (any number), or a first segment found in the scope (a child module, an
//! import: so `use child::X` and `keys::from_config` after `use crate::keys` both resolve), then
//! module by module, through re-exports, until it reaches the module that defines the item.
//! A first segment found nowhere (an external crate, a local variable, a prelude name) does not
//! resolve.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use syn::ext::IdentExt;

use crate::violation::Violation;

/// Index of a module in [`Tree::modules`]; the crate root is 0.
pub(crate) type ModuleId = usize;
/// Index of a file in [`Tree::files`]; `lib.rs` is 0.
pub(crate) type FileId = usize;

/// The crate root module, whose file is `lib.rs`.
pub(crate) const ROOT: ModuleId = 0;

/// How many imports one resolution may follow (re-export chains, globs); bounds glob loops.
const MAX_HOPS: usize = 32;

/// A parsed source file.
pub(crate) struct SourceFile {
    /// Relative to the crate directory, e.g. `src/api/mod.rs`.
    pub rel: PathBuf,
    pub syntax: syn::File,
    /// The module the file is (its inline modules are children of it).
    pub module: ModuleId,
}

/// A name brought into scope by `use`: the path as written, read in the scope of `scope`.
#[derive(Debug, Clone)]
pub(crate) struct Import {
    pub scope: ModuleId,
    pub segments: Vec<String>,
}

/// A module and what its scope holds.
pub(crate) struct Module {
    /// From the crate root: `["api", "orgs"]`; empty for the root.
    pub path: Vec<String>,
    pub parent: Option<ModuleId>,
    pub file: FileId,
    /// Where the files of its child modules are.
    dir: PathBuf,
    pub children: HashMap<String, ModuleId>,
    /// Names of items defined here (functions, types, traits, constants, macros, …).
    items: HashSet<String>,
    imports: Imports,
}

/// What the `use` items of a module or a block bring into scope.
#[derive(Default)]
pub(crate) struct Imports {
    /// Imported names, by the name they have here (`as` renames applied).
    aliases: HashMap<String, Import>,
    /// `use path::*` imports.
    globs: Vec<Import>,
}

impl Imports {
    /// Adds what `item`, written in module `scope`, imports.
    pub fn add(&mut self, scope: ModuleId, item: &syn::ItemUse) {
        for leaf in use_leaves(item) {
            let import = Import {
                scope,
                segments: leaf.segments,
            };
            match leaf.alias {
                _ if leaf.glob => self.globs.push(import),
                Some(alias) => {
                    self.aliases.insert(alias, import);
                }
                None => {}
            }
        }
    }

    /// The import that names `name` here, if any.
    pub fn alias(&self, name: &str) -> Option<&Import> {
        self.aliases.get(name)
    }

    /// The glob imports.
    pub fn globs(&self) -> &[Import] {
        &self.globs
    }
}

/// Where a path leads: an item (or module) of `module`, with `rest` segments left after the
/// module path (0 when the path names the module itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub module: ModuleId,
    pub rest: usize,
}

/// One name of a `use` tree, flattened: `use a::{b, c::d as e, f::*}` gives `a::b` (as `b`),
/// `a::c::d` (as `e`) and the glob `a::f::*`.
#[derive(Debug, Clone)]
pub(crate) struct UseLeaf {
    /// The path as written, with `self` in a group folded into its parent (`a::{self}` is `a`).
    pub segments: Vec<String>,
    /// The name it gets in scope; `None` for globs and `as _`.
    pub alias: Option<String>,
    pub glob: bool,
    /// Line of the leaf's last segment.
    pub line: usize,
}

impl UseLeaf {
    /// The path as text, for reports: `crate::db::Db`, `super::*`.
    pub fn text(&self) -> String {
        let mut text = self.segments.join("::");
        if self.glob {
            text.push_str(if text.is_empty() { "*" } else { "::*" });
        }
        text
    }
}

/// What a name means in a module's scope.
enum Found {
    Module(ModuleId),
    Item,
    Import(Import),
    Nothing,
}

/// The modules and files of a crate.
pub(crate) struct Tree {
    pub modules: Vec<Module>,
    pub files: Vec<SourceFile>,
}

impl Tree {
    /// Reads `lib.rs` in `src_dir` and every module file it declares, recursively. Files that
    /// cannot be read or parsed are reported and left out; `None` when `lib.rs` itself cannot.
    pub fn load(src_dir: &Path) -> (Option<Tree>, Vec<Violation>) {
        let display_root = src_dir.parent().unwrap_or(src_dir).to_path_buf();
        let mut loader = Loader {
            display_root,
            tree: Tree {
                modules: Vec::new(),
                files: Vec::new(),
            },
            violations: Vec::new(),
        };
        let lib = src_dir.join("lib.rs");
        let root = loader.new_module(None, Vec::new(), src_dir.to_path_buf());
        let loaded = loader.load_file(root, &lib);
        let Loader {
            tree, violations, ..
        } = loader;
        (loaded.then_some(tree), violations)
    }

    /// The file that defines module `m`'s items.
    pub fn file_of(&self, m: ModuleId) -> FileId {
        self.modules[m].file
    }

    /// The top-level modules declared in `lib.rs` with a file of their own, with that file.
    pub fn top_level_modules(&self) -> Vec<(String, FileId)> {
        let mut top: Vec<(String, FileId)> = self.modules[ROOT]
            .children
            .iter()
            .filter(|(_, &m)| self.modules[m].file != self.modules[ROOT].file)
            .map(|(name, &m)| (name.clone(), self.modules[m].file))
            .collect();
        top.sort();
        top
    }

    /// Resolves `segments` as written in module `scope`.
    pub fn resolve(&self, scope: ModuleId, segments: &[String]) -> Option<Resolved> {
        self.resolve_in(scope, segments, 0)
    }

    /// Resolves a path through an import: the import's own path, then `rest`.
    pub fn resolve_import(&self, import: &Import, rest: &[String]) -> Option<Resolved> {
        self.follow(import, rest, 0)
    }

    /// The import a glob of `globs` provides `name` through, if any: `Import(g + name)`.
    pub fn glob_import(&self, globs: &[Import], name: &str) -> Option<Import> {
        self.glob_provider(globs, name, 0)
    }

    /// True when `segments`, as written in module `scope`, stays inside `scope`: it starts with
    /// `self::`, with a child module of `scope`, or with `crate::` and `scope`'s own path. A
    /// `pub use` of such a path is a facade (the module re-exports its own parts).
    pub fn stays_inside(&self, scope: ModuleId, segments: &[String]) -> bool {
        let module = &self.modules[scope];
        match segments.first().map(String::as_str) {
            Some("self") => segments.get(1).is_none_or(|s| s != "super"),
            Some("crate") => segments[1..].starts_with(&module.path),
            Some(first) => module.children.contains_key(first),
            None => false,
        }
    }

    fn resolve_in(&self, scope: ModuleId, segments: &[String], hops: usize) -> Option<Resolved> {
        let first = segments.first()?;
        match first.as_str() {
            "crate" => self.walk(ROOT, &segments[1..], hops),
            "self" => self.walk(scope, &segments[1..], hops),
            "super" => self.walk(scope, segments, hops),
            "Self" => None,
            name => match self.lookup(scope, name, hops) {
                Found::Module(child) => self.walk(child, &segments[1..], hops),
                Found::Item => Some(Resolved {
                    module: scope,
                    rest: segments.len(),
                }),
                Found::Import(import) => self.follow(&import, &segments[1..], hops + 1),
                Found::Nothing => None,
            },
        }
    }

    /// Walks `segments` down from module `cur`.
    fn walk(&self, mut cur: ModuleId, segments: &[String], hops: usize) -> Option<Resolved> {
        let mut i = 0;
        while i < segments.len() {
            match segments[i].as_str() {
                "super" => cur = self.modules[cur].parent?,
                "self" => {}
                name => match self.lookup(cur, name, hops) {
                    Found::Module(child) => cur = child,
                    Found::Import(import) => {
                        return self.follow(&import, &segments[i + 1..], hops + 1);
                    }
                    // An item here, or a name the scan cannot see (made by a macro): the path
                    // ends in this module.
                    Found::Item | Found::Nothing => break,
                },
            }
            i += 1;
        }
        Some(Resolved {
            module: cur,
            rest: segments.len() - i,
        })
    }

    fn follow(&self, import: &Import, rest: &[String], hops: usize) -> Option<Resolved> {
        if hops > MAX_HOPS {
            return None;
        }
        let mut path = import.segments.clone();
        path.extend_from_slice(rest);
        self.resolve_in(import.scope, &path, hops)
    }

    fn lookup(&self, m: ModuleId, name: &str, hops: usize) -> Found {
        let module = &self.modules[m];
        if let Some(&child) = module.children.get(name) {
            return Found::Module(child);
        }
        if module.items.contains(name) {
            return Found::Item;
        }
        if let Some(import) = module.imports.alias(name) {
            return Found::Import(import.clone());
        }
        match self.glob_provider(module.imports.globs(), name, hops) {
            Some(import) => Found::Import(import),
            None => Found::Nothing,
        }
    }

    fn glob_provider(&self, globs: &[Import], name: &str, hops: usize) -> Option<Import> {
        if hops > MAX_HOPS {
            return None;
        }
        globs.iter().find_map(|glob| {
            let target = self.follow(glob, &[], hops + 1)?;
            if target.rest != 0 {
                return None; // `use Enum::*`: variants, not module items
            }
            match self.lookup(target.module, name, hops + 1) {
                Found::Nothing => None,
                _ => {
                    let mut segments = glob.segments.clone();
                    segments.push(name.to_string());
                    Some(Import {
                        scope: glob.scope,
                        segments,
                    })
                }
            }
        })
    }
}

/// Builds a [`Tree`], collecting violations on the way.
struct Loader {
    display_root: PathBuf,
    tree: Tree,
    violations: Vec<Violation>,
}

impl Loader {
    fn new_module(
        &mut self,
        parent: Option<ModuleId>,
        path: Vec<String>,
        dir: PathBuf,
    ) -> ModuleId {
        self.tree.modules.push(Module {
            path,
            parent,
            file: usize::MAX,
            dir,
            children: HashMap::new(),
            items: HashSet::new(),
            imports: Imports::default(),
        });
        self.tree.modules.len() - 1
    }

    fn rel(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.display_root)
            .unwrap_or(path)
            .to_path_buf()
    }

    /// Parses `path` as the file of module `m` and scans it; false when it cannot be read.
    fn load_file(&mut self, m: ModuleId, path: &Path) -> bool {
        let rel = self.rel(path);
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                self.violations.push(Violation::Unreadable {
                    file: rel,
                    problem: e.to_string(),
                });
                return false;
            }
        };
        let syntax = match syn::parse_file(&text) {
            Ok(syntax) => syntax,
            Err(e) => {
                let at = e.span().start();
                self.violations.push(Violation::Unreadable {
                    file: rel,
                    problem: format!("line {}: {e}", at.line),
                });
                return false;
            }
        };
        let mut own = vec![m];
        self.scan(m, &rel, &syntax.items, &mut own);
        let file = self.tree.files.len();
        for module in own {
            self.tree.modules[module].file = file;
        }
        self.tree.files.push(SourceFile {
            rel,
            syntax,
            module: m,
        });
        true
    }

    /// Records what `items` put in module `m`'s scope; `own` collects the inline modules.
    fn scan(&mut self, m: ModuleId, rel: &Path, items: &[syn::Item], own: &mut Vec<ModuleId>) {
        for item in items {
            match item {
                syn::Item::Mod(item) => self.scan_mod(m, rel, item, own),
                syn::Item::Use(item) => self.tree.modules[m].imports.add(m, item),
                _ => {
                    if let Some(name) = item_name(item) {
                        self.tree.modules[m].items.insert(name);
                    }
                }
            }
        }
    }

    fn scan_mod(&mut self, m: ModuleId, rel: &Path, item: &syn::ItemMod, own: &mut Vec<ModuleId>) {
        let name = item.ident.unraw().to_string();
        let mut path = self.tree.modules[m].path.clone();
        path.push(name.clone());
        let dir = self.tree.modules[m].dir.join(&name);
        let line = item.ident.span().start().line;
        if let Some((_, items)) = &item.content {
            let child = self.new_module(Some(m), path, dir);
            self.tree.modules[m].children.insert(name, child);
            own.push(child);
            self.scan(child, rel, items, own);
            return;
        }
        if item.attrs.iter().any(|a| a.path().is_ident("path")) {
            self.violations.push(Violation::ModuleFile {
                file: rel.to_path_buf(),
                line,
                module: name,
                problem: "#[path] modules are not supported; name the file after the module".into(),
            });
            return;
        }
        let parent_dir = &self.tree.modules[m].dir;
        let candidates = [
            parent_dir.join(format!("{name}.rs")),
            parent_dir.join(&name).join("mod.rs"),
        ];
        let Some(file) = candidates.iter().find(|p| p.is_file()).cloned() else {
            self.violations.push(Violation::ModuleFile {
                file: rel.to_path_buf(),
                line,
                module: name.clone(),
                problem: format!("neither {name}.rs nor {name}/mod.rs exists"),
            });
            return;
        };
        let child = self.new_module(Some(m), path, dir);
        self.tree.modules[m].children.insert(name, child);
        self.load_file(child, &file);
    }
}

/// The name an item defines in its scope (`None` for `impl`, `use`, foreign blocks, …).
pub(crate) fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(i) => &i.ident,
        syn::Item::Enum(i) => &i.ident,
        syn::Item::Fn(i) => &i.sig.ident,
        syn::Item::Macro(syn::ItemMacro {
            ident: Some(ident), ..
        }) => ident,
        syn::Item::Mod(i) => &i.ident,
        syn::Item::Static(i) => &i.ident,
        syn::Item::Struct(i) => &i.ident,
        syn::Item::Trait(i) => &i.ident,
        syn::Item::TraitAlias(i) => &i.ident,
        syn::Item::Type(i) => &i.ident,
        syn::Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.unraw().to_string())
}

/// The leaves of a `use` item, flattened; empty for `use ::external::…`.
pub(crate) fn use_leaves(item: &syn::ItemUse) -> Vec<UseLeaf> {
    let mut leaves = Vec::new();
    if item.leading_colon.is_none() {
        flatten(&item.tree, &mut Vec::new(), &mut leaves);
    }
    leaves
}

fn flatten(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<UseLeaf>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.unraw().to_string());
            flatten(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.unraw().to_string();
            out.push(leaf(prefix, &name, Some(name.clone()), n.ident.span()));
        }
        syn::UseTree::Rename(r) => {
            let name = r.ident.unraw().to_string();
            let alias = r.rename.unraw().to_string();
            let alias = (alias != "_").then_some(alias);
            out.push(leaf(prefix, &name, alias, r.ident.span()));
        }
        syn::UseTree::Glob(g) => out.push(UseLeaf {
            segments: prefix.clone(),
            alias: None,
            glob: true,
            line: g.star_token.spans[0].start().line,
        }),
        syn::UseTree::Group(g) => {
            for tree in &g.items {
                flatten(tree, prefix, out);
            }
        }
    }
}

fn leaf(prefix: &[String], name: &str, alias: Option<String>, span: proc_macro2::Span) -> UseLeaf {
    let mut segments = prefix.to_vec();
    // `a::{self}` imports `a` under its own name (or the rename).
    let alias = if name == "self" {
        alias
            .filter(|a| a != "self")
            .or_else(|| prefix.last().cloned())
    } else {
        segments.push(name.to_string());
        alias
    };
    UseLeaf {
        segments,
        alias,
        glob: false,
        line: span.start().line,
    }
}
