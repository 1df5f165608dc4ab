//! Which file names which: every reference from one file of the crate to an item another file
//! defines.
//!
//! References are read from code only: `use` trees (braces, nested groups, `self`, `as`
//! renames, globs), paths in expressions, types, patterns, trait bounds and attribute paths
//! (through [`syn::visit`]), and paths inside macro invocations, `macro_rules!` bodies (`$crate`
//! is `crate`) and attribute arguments (`#[utoipa::path(body = crate::x::Y)]`), found in their
//! tokens as `a::b` sequences. Comments, doc comments and string literals (raw ones too) are
//! not tokens, so nothing in them counts. `#[cfg(test)]` code counts like any other.
//!
//! What is not an edge: `mod x;`; a `use` that imports a module (its uses in code are the
//! edges); a glob import (the names used through it are); a `pub use` of a path inside the
//! module's own subtree (a facade: the re-exported item resolves to its defining file for
//! whoever names it, and only the module's own uses of it are edges from it); a reference to
//! the file itself or to `lib.rs`. Method calls resolve through nothing (syntax has no types),
//! so `db.insert()` counts as a use of wherever `db`'s type was named, not of the `impl`'s file.

use std::collections::HashSet;

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::visit::{self, Visit};

use crate::tree::{item_name, use_leaves, FileId, Imports, ModuleId, Resolved, Tree, ROOT};

/// One reference: file `from` names an item of file `to` at `line` with `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRef {
    pub from: FileId,
    pub to: FileId,
    pub line: usize,
    pub path: String,
}

/// Every reference between two different files of `tree`, `lib.rs` left out, in file order.
pub(crate) fn collect(tree: &Tree) -> Vec<RawRef> {
    let lib = tree.file_of(ROOT);
    let mut refs = Vec::new();
    for (id, file) in tree.files.iter().enumerate() {
        if id == lib {
            continue;
        }
        let mut collector = Collector {
            tree,
            file: id,
            module: file.module,
            blocks: Vec::new(),
            refs: Vec::new(),
        };
        collector.visit_file(&file.syntax);
        refs.extend(
            collector
                .refs
                .into_iter()
                .filter(|r| r.to != lib && r.to != r.from),
        );
    }
    refs
}

/// Names a block (`{ … }`) brings into scope: its own `use`s, and items that shadow others.
#[derive(Default)]
struct BlockScope {
    imports: Imports,
    local_items: HashSet<String>,
}

struct Collector<'t> {
    tree: &'t Tree,
    file: FileId,
    /// The module the visitor is in (the file's, or an inline module of it).
    module: ModuleId,
    /// Block scopes from the outermost to the innermost.
    blocks: Vec<BlockScope>,
    refs: Vec<RawRef>,
}

impl Collector<'_> {
    /// Resolves a path written here and records the file it leads to (items only).
    fn record(&mut self, segments: &[String], line: usize, text: String) {
        let Some(target) = self.resolve(segments) else {
            return;
        };
        if target.rest == 0 {
            return; // the path names a module, not an item of it
        }
        self.refs.push(RawRef {
            from: self.file,
            to: self.tree.file_of(target.module),
            line,
            path: text,
        });
    }

    /// Block scopes first (innermost wins), then the module's.
    fn resolve(&self, segments: &[String]) -> Option<Resolved> {
        let first = segments.first()?;
        if !matches!(first.as_str(), "crate" | "self" | "super" | "Self") {
            for block in self.blocks.iter().rev() {
                if block.local_items.contains(first) {
                    return None;
                }
                if let Some(import) = block.imports.alias(first) {
                    return self.tree.resolve_import(import, &segments[1..]);
                }
                if let Some(import) = self.tree.glob_import(block.imports.globs(), first) {
                    return self.tree.resolve_import(&import, &segments[1..]);
                }
            }
        }
        self.tree.resolve(self.module, segments)
    }

    /// Finds `a::b…` paths in macro or attribute tokens (`$crate` read as `crate`).
    fn scan_tokens(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(group) => {
                    self.scan_tokens(group.stream());
                    i += 1;
                }
                TokenTree::Punct(p) if p.as_char() == '$' && ident_at(&tokens, i + 1).is_some() => {
                    // `$crate::…` is a path; `$name` is a macro variable, not one.
                    let (segments, next) = read_path(&tokens, i + 1);
                    if segments[0] == "crate" {
                        self.record_tokens(&tokens[i + 1], segments);
                    }
                    i = next;
                }
                TokenTree::Punct(p) if is_path_sep(&tokens, i) && p.as_char() == ':' => {
                    // `::external::path`, or the tail of a path after generics: skip it whole.
                    i = match ident_at(&tokens, i + 2) {
                        Some(_) => read_path(&tokens, i + 2).1,
                        None => i + 2,
                    };
                }
                TokenTree::Ident(_) => {
                    let after_dot = i > 0
                        && matches!(&tokens[i - 1], TokenTree::Punct(p) if p.as_char() == '.');
                    let (segments, next) = read_path(&tokens, i);
                    if !after_dot && segments.len() > 1 {
                        self.record_tokens(&tokens[i], segments);
                    }
                    i = next;
                }
                _ => i += 1,
            }
        }
    }

    fn record_tokens(&mut self, first: &TokenTree, segments: Vec<String>) {
        let line = first.span().start().line;
        let text = segments.join("::");
        self.record(&segments, line, text);
    }

    fn record_use(&mut self, item: &syn::ItemUse) {
        let public = !matches!(item.vis, syn::Visibility::Inherited);
        for leaf in use_leaves(item) {
            if leaf.glob || (public && self.tree.stays_inside(self.module, &leaf.segments)) {
                continue;
            }
            let text = leaf.text();
            self.record(&leaf.segments, leaf.line, text);
        }
    }
}

/// The identifier at `i`, unraw (`r#type` is `type`).
fn ident_at(tokens: &[TokenTree], i: usize) -> Option<String> {
    match tokens.get(i)? {
        TokenTree::Ident(ident) => Some(ident.unraw().to_string()),
        _ => None,
    }
}

/// True when tokens `i` and `i + 1` are `::`.
fn is_path_sep(tokens: &[TokenTree], i: usize) -> bool {
    let colon = |t: Option<&TokenTree>, spacing: Option<Spacing>| {
        matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ':'
            && spacing.is_none_or(|s| p.spacing() == s))
    };
    colon(tokens.get(i), Some(Spacing::Joint)) && colon(tokens.get(i + 1), None)
}

/// `ident (:: ident)*` from `start` (an identifier): its segments and the index after it.
fn read_path(tokens: &[TokenTree], start: usize) -> (Vec<String>, usize) {
    let mut segments = vec![ident_at(tokens, start).unwrap_or_default()];
    let mut i = start + 1;
    while is_path_sep(tokens, i) {
        match ident_at(tokens, i + 2) {
            Some(name) => {
                segments.push(name);
                i += 3;
            }
            None => break,
        }
    }
    (segments, i)
}

/// A `syn::Path` as segments (generics dropped); `None` for `::external` paths.
fn segments(path: &syn::Path) -> Option<Vec<String>> {
    if path.leading_colon.is_some() {
        return None;
    }
    Some(
        path.segments
            .iter()
            .map(|s| s.ident.unraw().to_string())
            .collect(),
    )
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        for attr in &item.attrs {
            self.visit_attribute(attr);
        }
        let Some((_, items)) = &item.content else {
            return; // `mod x;` is not an edge; its file is visited on its own
        };
        let name = item.ident.unraw().to_string();
        let Some(&child) = self.tree.modules[self.module].children.get(&name) else {
            return;
        };
        let outer = std::mem::replace(&mut self.module, child);
        let blocks = std::mem::take(&mut self.blocks);
        for item in items {
            self.visit_item(item);
        }
        self.blocks = blocks;
        self.module = outer;
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        for attr in &item.attrs {
            self.visit_attribute(attr);
        }
        self.record_use(item);
    }

    fn visit_block(&mut self, block: &'ast syn::Block) {
        let mut scope = BlockScope::default();
        for stmt in &block.stmts {
            let syn::Stmt::Item(item) = stmt else {
                continue;
            };
            if let syn::Item::Use(u) = item {
                scope.imports.add(self.module, u);
            } else if let Some(name) = item_name(item) {
                scope.local_items.insert(name);
            }
        }
        self.blocks.push(scope);
        visit::visit_block(self, block);
        self.blocks.pop();
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if let Some(segments) = segments(path) {
            let line = path
                .segments
                .first()
                .map_or(0, |s| s.ident.span().start().line);
            let text = segments.join("::");
            self.record(&segments, line, text);
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.scan_tokens(mac.tokens.clone());
    }

    fn visit_meta_list(&mut self, list: &'ast syn::MetaList) {
        self.visit_path(&list.path);
        if !list.path.is_ident("doc") {
            self.scan_tokens(list.tokens.clone());
        }
    }
}
