//! The `## Layers` section of a crate's top-level doc comment: which modules form which layer.
//!
//! The section starts at the line `//! ## Layers` and ends at the next `#` or `##` heading or at
//! the end of the doc comment. Each numbered list item in it declares one layer, top to bottom:
//!
//! ```text
//! //! ## Layers
//! //!
//! //! 1. `cli`, `server`: wiring (anything after the names is a comment)
//! //! 2. [`api`]
//! ```
//!
//! A name is a backticked identifier, optionally as an intra-doc link (`` [`api`] ``); names
//! are separated by commas, and the first text that is not `, `name`` ends the list. Other lines
//! of the section (prose, wrapped comments) are ignored.

use crate::violation::Violation;

/// One declared layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The number as written (`1.`); layers are ordered by position, not by number.
    pub number: u32,
    /// The top-level modules of the layer, as listed.
    pub modules: Vec<String>,
    /// The rest of the line after the names.
    pub comment: String,
    /// 1-based line in `lib.rs`.
    pub line: usize,
}

/// The inner doc comment of a file (`//!` lines, `/*! */` blocks) as (line, text) pairs.
pub(crate) fn doc_lines(file: &syn::File) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    for attr in &file.attrs {
        if !matches!(attr.style, syn::AttrStyle::Inner(_)) || !attr.path().is_ident("doc") {
            continue;
        }
        let syn::Meta::NameValue(nv) = &attr.meta else {
            continue;
        };
        let syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(text),
            ..
        }) = &nv.value
        else {
            continue;
        };
        let first = attr.pound_token.spans[0].start().line;
        for (i, line) in text.value().lines().enumerate() {
            lines.push((first + i, line.to_string()));
        }
    }
    lines
}

/// The layers declared in `doc` (from [`doc_lines`]), top to bottom, with the problems found
/// in the section itself. `None` when there is no `## Layers` heading.
pub(crate) fn parse(doc: &[(usize, String)]) -> Option<(Vec<Layer>, Vec<Violation>)> {
    let start = doc.iter().position(|(_, l)| l.trim() == "## Layers")?;
    let mut layers = Vec::new();
    let mut problems = Vec::new();
    for (line, text) in &doc[start + 1..] {
        let text = text.trim();
        if text.starts_with("# ") || text.starts_with("## ") {
            break;
        }
        let Some((number, rest)) = list_item(text) else {
            continue;
        };
        let (modules, comment) = names(rest);
        if modules.is_empty() {
            problems.push(Violation::LayerWithoutModules {
                line: *line,
                text: text.to_string(),
            });
            continue;
        }
        layers.push(Layer {
            number,
            modules,
            comment: comment.trim().to_string(),
            line: *line,
        });
    }
    Some((layers, problems))
}

/// `N. rest` → (N, rest).
fn list_item(text: &str) -> Option<(u32, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let rest = text[digits..].strip_prefix(". ")?;
    Some((text[..digits].parse().ok()?, rest))
}

/// Leading `` `a`, [`b`] `` names of a layer line and the comment after them.
fn names(mut rest: &str) -> (Vec<String>, &str) {
    let mut names = Vec::new();
    loop {
        let after_separator = if names.is_empty() {
            rest
        } else {
            match rest.trim_start().strip_prefix(',') {
                Some(r) => r,
                None => return (names, rest),
            }
        };
        match name(after_separator.trim_start()) {
            Some((name, tail)) => {
                names.push(name.to_string());
                rest = tail;
            }
            None => return (names, rest),
        }
    }
}

/// `` `name` `` or `` [`name`] `` at the start of `text`.
fn name(text: &str) -> Option<(&str, &str)> {
    let (linked, text) = match text.strip_prefix('[') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let text = text.strip_prefix('`')?;
    let end = text.find('`')?;
    let name = &text[..end];
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !valid {
        return None;
    }
    let tail = &text[end + 1..];
    let tail = if linked {
        tail.strip_prefix(']')?
    } else {
        tail
    };
    Some((name, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Vec<(usize, String)> {
        text.lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.to_string()))
            .collect()
    }

    fn modules(layers: &[Layer]) -> Vec<Vec<&str>> {
        layers
            .iter()
            .map(|l| l.modules.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn numbered_lines_declare_layers_top_to_bottom() {
        let (layers, problems) = parse(&doc(
            " Intro.\n\n ## Layers\n\n Prose before the list.\n\n 1. `cli`, `server`: wiring, \
             `not_a_layer` here\n    a wrapped comment line\n 2. [`api`] (handlers)\n 3. `a`,\
             [`b`],`c` — services\n\n ## Next\n 4. `ignored`\n",
        ))
        .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            modules(&layers),
            vec![vec!["cli", "server"], vec!["api"], vec!["a", "b", "c"]]
        );
        assert_eq!(layers[0].comment, ": wiring, `not_a_layer` here");
        assert_eq!(layers[0].line, 7);
        assert_eq!(layers[2].number, 3);
        assert_eq!(layers[1].comment, "(handlers)");
    }

    #[test]
    fn a_comma_not_followed_by_a_name_starts_the_comment() {
        let (layers, _) = parse(&doc("## Layers\n1. `db`, the database\n")).unwrap();
        assert_eq!(modules(&layers), vec![vec!["db"]]);
        assert_eq!(layers[0].comment, ", the database");
    }

    #[test]
    fn items_without_names_and_missing_sections_are_reported() {
        assert!(parse(&doc("# Crate\n## Other\n1. `x`\n")).is_none());
        let (layers, problems) =
            parse(&doc("## Layers\n1. the top\n2. `crate::x`\n3. `ok`\n")).unwrap();
        assert_eq!(modules(&layers), vec![vec!["ok"]]);
        assert_eq!(
            problems,
            vec![
                Violation::LayerWithoutModules {
                    line: 2,
                    text: "1. the top".into()
                },
                Violation::LayerWithoutModules {
                    line: 3,
                    text: "2. `crate::x`".into()
                },
            ]
        );
    }

    #[test]
    fn a_top_level_heading_also_ends_the_section() {
        let (layers, _) = parse(&doc("## Layers\n1. `a`\n# Examples\n2. `b`\n")).unwrap();
        assert_eq!(modules(&layers), vec![vec!["a"]]);
    }
}
