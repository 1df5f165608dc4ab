//! Segment template identifiers (ISO/IEC 23009-1 §5.3.9.4.4), checked so that an origin MPD a
//! player cannot expand is refused at the edge with a clear reason instead of failing inside
//! every viewer's player.
//!
//! A template may contain `$$` (a literal `$`) and `$RepresentationID$`, `$Number$`,
//! `$Bandwidth$`, `$Time$` and `$SubNumber$`; the numeric ones may carry a `%0<width>d` format
//! tag (`$Number%05d$`). Rewriting never touches what is between the `$` signs.

/// Why a template cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown identifier `${0}$`")]
    UnknownIdentifier(String),
    #[error("a `$` is not closed")]
    Unterminated,
}

/// Longest identifier echoed back in an error.
const MAX_ECHO: usize = 40;

/// Checks every `$...$` of `template`.
pub fn check_template(template: &str) -> Result<(), TemplateError> {
    let mut rest = template;
    while let Some(open) = rest.find('$') {
        let after = &rest[open + 1..];
        let close = after.find('$').ok_or(TemplateError::Unterminated)?;
        let identifier = &after[..close];
        if !is_known(identifier) {
            let mut echo: String = identifier.chars().take(MAX_ECHO).collect();
            if echo.len() < identifier.len() {
                echo.push('…');
            }
            return Err(TemplateError::UnknownIdentifier(echo));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

fn is_known(identifier: &str) -> bool {
    if identifier.is_empty() || identifier == "RepresentationID" {
        return true;
    }
    let (name, format) = match identifier.find('%') {
        Some(i) => (&identifier[..i], Some(&identifier[i..])),
        None => (identifier, None),
    };
    matches!(name, "Number" | "Bandwidth" | "Time" | "SubNumber") && format.is_none_or(is_width_tag)
}

/// `%0<width>d`, the only format tag the standard allows.
fn is_width_tag(tag: &str) -> bool {
    let Some(width) = tag.strip_prefix("%0").and_then(|t| t.strip_suffix('d')) else {
        return false;
    };
    !width.is_empty() && width.len() <= 2 && width.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_identifiers_pass() {
        for t in [
            "seg_$Number$.m4s",
            "$RepresentationID$/seg_$Number%05d$.m4s",
            "t_$Time$_$Bandwidth$.mp4",
            "cost$$_$SubNumber$.m4s",
            "init.mp4",
        ] {
            assert_eq!(check_template(t), Ok(()), "{t}");
        }
    }

    #[test]
    fn unknown_or_broken_identifiers_fail() {
        assert_eq!(
            check_template("seg_$Segment$.m4s"),
            Err(TemplateError::UnknownIdentifier("Segment".into()))
        );
        assert_eq!(
            check_template("seg_$Number%5x$.m4s"),
            Err(TemplateError::UnknownIdentifier("Number%5x".into()))
        );
        assert_eq!(
            check_template("$RepresentationID%03d$"),
            Err(TemplateError::UnknownIdentifier(
                "RepresentationID%03d".into()
            ))
        );
        assert_eq!(
            check_template("seg_$Number.m4s"),
            Err(TemplateError::Unterminated)
        );
        let long = format!("${}$", "x".repeat(100));
        match check_template(&long) {
            Err(TemplateError::UnknownIdentifier(echo)) => assert!(echo.chars().count() <= 41),
            other => panic!("{other:?}"),
        }
    }
}
