//! `$name` expansion with loop detection.
//!
//! Postfix counterpart: `util/mac_expand.c` and `util/mac_parse.c`. The
//! forms understood are:
//!
//! | form | expands to |
//! |---|---|
//! | `$name`, `${name}`, `$(name)` | the (recursively expanded) value of `name` |
//! | `${name?value}`, `${name?{value}}` | `value` if `name` expands to non-empty text, else nothing |
//! | `${name:value}`, `${name:{value}}` | `value` if `name` expands to empty text, else nothing |
//! | `${name?{value1}:{value2}}` | `value1` if `name` is non-empty, else `value2` |
//! | `$$` | a literal `$` |
//!
//! Parameter names are made of ASCII letters, digits and `_`. The `value`
//! parts are expanded too, but only the branch that is chosen. A `$` that is
//! followed by anything else is an error (write `$$`).
//!
//! Unlike Postfix, a name that the [`Lookup`] does not know is an error, also
//! inside `${name?value}`: it is nearly always a typing mistake.

use std::borrow::Cow;

/// Upper bound on the size of one expanded value, so that
/// `a = $b$b$b$b`, `b = $c$c$c$c`, ... cannot exhaust memory.
const MAX_EXPANSION: usize = 1 << 20;

/// A source of unexpanded parameter values.
pub trait Lookup {
    /// The unexpanded value of `name`, or `None` if there is no such
    /// parameter.
    fn raw(&self, name: &str) -> Option<Cow<'_, str>>;

    /// Whether `name`'s value is inserted as-is rather than expanded
    /// (Postfix's "raw" parameters such as `mailbox_command`, whose `$`
    /// macros belong to the program that uses them).
    fn is_literal(&self, _name: &str) -> bool {
        false
    }
}

/// Why a value could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// A `$name` refers to a parameter that does not exist.
    #[error("unknown parameter ${name}")]
    UnknownName {
        /// The unknown name.
        name: String,
    },
    /// Expanding a parameter needs its own value; `chain` starts and ends
    /// with the same name.
    #[error("expansion loop: {}", chain.join(" -> "))]
    Loop {
        /// The parameters in the loop, in expansion order.
        chain: Vec<String>,
    },
    /// The text is not well-formed.
    #[error("{message}")]
    Syntax {
        /// What is wrong.
        message: String,
    },
    /// The result would be unreasonably long.
    #[error("expanded value is longer than {MAX_EXPANSION} bytes")]
    TooLong,
}

/// Expand the value of parameter `name`.
///
/// The name itself counts for loop detection, so `myorigin = $myorigin`
/// reports `myorigin -> myorigin`.
pub fn expand_param(name: &str, lookup: &dyn Lookup) -> Result<String, ExpandError> {
    Expander::new(lookup).param(name)
}

/// Expand arbitrary text, such as a `master.toml` argument.
pub fn expand_str(text: &str, lookup: &dyn Lookup) -> Result<String, ExpandError> {
    let mut out = String::new();
    Expander::new(lookup).text(text, &mut out)?;
    Ok(out)
}

/// Expand the value of `name` as if `outer` were already being expanded.
/// Used to compute `mydomain`'s default from `myhostname`.
pub(crate) fn expand_param_within(
    outer: &str,
    name: &str,
    lookup: &dyn Lookup,
) -> Result<String, ExpandError> {
    let mut expander = Expander::new(lookup);
    expander.stack.push(outer.to_owned());
    expander.param(name)
}

/// Whether `c` may appear in a parameter name.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Escape `$` as `$$`, so that `text` expands to itself.
pub fn escape(text: &str) -> String {
    text.replace('$', "$$")
}

struct Expander<'a> {
    lookup: &'a dyn Lookup,
    stack: Vec<String>,
}

fn syntax(message: impl Into<String>) -> ExpandError {
    ExpandError::Syntax {
        message: message.into(),
    }
}

/// Split `text` (which follows an opening `open`) at its matching `close`.
/// Returns (inside, after).
fn split_balanced(text: &str, open: char, close: char) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            if depth == 0 {
                return Some((&text[..i], &text[i + c.len_utf8()..]));
            }
            depth -= 1;
        }
    }
    None
}

impl<'a> Expander<'a> {
    fn new(lookup: &'a dyn Lookup) -> Expander<'a> {
        Expander {
            lookup,
            stack: Vec::new(),
        }
    }

    fn param(&mut self, name: &str) -> Result<String, ExpandError> {
        if let Some(first) = self.stack.iter().position(|n| n == name) {
            let mut chain = self.stack[first..].to_vec();
            chain.push(name.to_owned());
            return Err(ExpandError::Loop { chain });
        }
        let raw = self
            .lookup
            .raw(name)
            .ok_or_else(|| ExpandError::UnknownName {
                name: name.to_owned(),
            })?;
        if self.lookup.is_literal(name) {
            return Ok(raw.into_owned());
        }
        self.stack.push(name.to_owned());
        let mut out = String::new();
        let result = self.text(&raw, &mut out);
        self.stack.pop();
        result.map(|()| out)
    }

    fn push(out: &mut String, text: &str) -> Result<(), ExpandError> {
        if out.len() + text.len() > MAX_EXPANSION {
            return Err(ExpandError::TooLong);
        }
        out.push_str(text);
        Ok(())
    }

    fn text(&mut self, text: &str, out: &mut String) -> Result<(), ExpandError> {
        let mut rest = text;
        while let Some(pos) = rest.find('$') {
            Self::push(out, &rest[..pos])?;
            rest = &rest[pos + 1..];
            let mut chars = rest.chars();
            match chars.next() {
                Some('$') => {
                    Self::push(out, "$")?;
                    rest = chars.as_str();
                }
                Some(open @ ('{' | '(')) => {
                    let close = if open == '{' { '}' } else { ')' };
                    let (inner, after) = split_balanced(chars.as_str(), open, close)
                        .ok_or_else(|| syntax(format!("missing '{close}' after \"${open}\"")))?;
                    rest = after;
                    self.macro_body(inner, out)?;
                }
                Some(c) if is_name_char(c) => {
                    let end = rest.find(|c| !is_name_char(c)).unwrap_or(rest.len());
                    let value = self.param(&rest[..end])?;
                    Self::push(out, &value)?;
                    rest = &rest[end..];
                }
                _ => {
                    return Err(syntax(
                        "'$' must be followed by a parameter name, '{', '(' or '$' (write $$ for a literal '$')",
                    ));
                }
            }
        }
        Self::push(out, rest)
    }

    /// The text between `${` and `}`: `name`, `name?value` or `name:value`.
    fn macro_body(&mut self, inner: &str, out: &mut String) -> Result<(), ExpandError> {
        let trimmed = inner.trim_start();
        let end = trimmed.find(|c| !is_name_char(c)).unwrap_or(trimmed.len());
        let (name, tail) = trimmed.split_at(end);
        if name.is_empty() {
            return Err(syntax(format!(
                "missing parameter name in \"${{{inner}}}\""
            )));
        }
        let tail = tail.trim_start();
        let mut tail_chars = tail.chars();
        let op = tail_chars.next();
        let body = tail_chars.as_str();
        match op {
            None => {
                let value = self.param(name)?;
                Self::push(out, &value)
            }
            Some(op @ ('?' | ':')) => {
                let set = !self.param(name)?.is_empty();
                let (if_set, if_unset) = Self::branches(op, body)?;
                let chosen = if set { if_set } else { if_unset };
                match chosen {
                    Some(text) => self.text(text, out),
                    None => Ok(()),
                }
            }
            Some(c) => Err(syntax(format!(
                "unexpected '{c}' after parameter name in \"${{{inner}}}\""
            ))),
        }
    }

    /// Return the (non-empty, empty) branches of a conditional.
    fn branches(op: char, body: &str) -> Result<(Option<&str>, Option<&str>), ExpandError> {
        let braced = body.trim_start();
        let Some(after_open) = braced.strip_prefix('{') else {
            // Plain form: the whole rest is the value.
            return Ok(if op == '?' {
                (Some(body), None)
            } else {
                (None, Some(body))
            });
        };
        let (first, rest) = split_balanced(after_open, '{', '}')
            .ok_or_else(|| syntax(format!("missing '}}' in \"{body}\"")))?;
        let rest = rest.trim();
        if rest.is_empty() {
            return Ok(if op == '?' {
                (Some(first), None)
            } else {
                (None, Some(first))
            });
        }
        if op == '?'
            && let Some(second) = rest.strip_prefix(':')
            && let Some(second) = second.trim_start().strip_prefix('{')
            && let Some((second, "")) = split_balanced(second, '{', '}').map(|(a, b)| (a, b.trim()))
        {
            return Ok((Some(first), Some(second)));
        }
        Err(syntax(format!("unexpected text after '}}' in \"{body}\"")))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Map(BTreeMap<&'static str, &'static str>);

    impl Lookup for Map {
        fn raw(&self, name: &str) -> Option<Cow<'_, str>> {
            self.0.get(name).map(|v| Cow::Borrowed(*v))
        }
        fn is_literal(&self, name: &str) -> bool {
            name == "literal"
        }
    }

    fn map() -> Map {
        Map(BTreeMap::from([
            ("a", "A"),
            ("empty", ""),
            ("indirect_empty", "$empty"),
            ("b", "[$a]"),
            ("loop1", "x $loop2"),
            ("loop2", "${loop3}"),
            ("loop3", "$(loop1)"),
            ("self", "$self"),
            ("literal", "$user@$domain"),
            ("bad", "$nosuch"),
            ("boom", "$boom1$boom1$boom1$boom1$boom1$boom1$boom1$boom1"),
            ("boom1", "$boom2$boom2$boom2$boom2$boom2$boom2$boom2$boom2"),
            ("boom2", "$boom3$boom3$boom3$boom3$boom3$boom3$boom3$boom3"),
            ("boom3", "$boom4$boom4$boom4$boom4$boom4$boom4$boom4$boom4"),
            ("boom4", "$boom5$boom5$boom5$boom5$boom5$boom5$boom5$boom5"),
            ("boom5", "$boom6$boom6$boom6$boom6$boom6$boom6$boom6$boom6"),
            ("boom6", "$boom7$boom7$boom7$boom7$boom7$boom7$boom7$boom7"),
            (
                "boom7",
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            ),
        ]))
    }

    fn x(text: &str) -> Result<String, ExpandError> {
        expand_str(text, &map())
    }

    #[test]
    fn simple_forms() {
        assert_eq!(x("$a ${a} $(a) $b.").as_deref(), Ok("A A A [A]."));
        assert_eq!(x("no dollars").as_deref(), Ok("no dollars"));
        assert_eq!(x("$$a costs $$5").as_deref(), Ok("$a costs $5"));
        assert_eq!(
            x("a$a_").unwrap_err(),
            ExpandError::UnknownName { name: "a_".into() }
        );
        assert_eq!(x("$a-$a").as_deref(), Ok("A-A"));
        assert_eq!(x("$literal").as_deref(), Ok("$user@$domain"));
    }

    #[test]
    fn conditionals() {
        assert_eq!(x("${a?yes}").as_deref(), Ok("yes"));
        assert_eq!(x("${empty?yes}").as_deref(), Ok(""));
        assert_eq!(x("${a:no}").as_deref(), Ok(""));
        assert_eq!(x("${empty:no}").as_deref(), Ok("no"));
        assert_eq!(x("${indirect_empty:no}").as_deref(), Ok("no"));
        assert_eq!(x("${a?got $a}").as_deref(), Ok("got A"));
        assert_eq!(x("${a?${b}}").as_deref(), Ok("[A]"));
        assert_eq!(x("${a?{x}}").as_deref(), Ok("x"));
        assert_eq!(x("${empty:{y}}").as_deref(), Ok("y"));
        assert_eq!(x("${a?{x}:{y}}").as_deref(), Ok("x"));
        assert_eq!(x("${empty?{x} : {y}}").as_deref(), Ok("y"));
        // The branch that is not chosen is not expanded.
        assert_eq!(x("${empty?$nosuch}").as_deref(), Ok(""));
        assert_eq!(x("$(a?p)").as_deref(), Ok("p"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            x("$nosuch").unwrap_err().to_string(),
            "unknown parameter $nosuch"
        );
        assert_eq!(
            x("$bad").unwrap_err(),
            ExpandError::UnknownName {
                name: "nosuch".into()
            }
        );
        assert_eq!(
            expand_param("loop1", &map()).unwrap_err().to_string(),
            "expansion loop: loop1 -> loop2 -> loop3 -> loop1"
        );
        assert_eq!(
            x("$loop2").unwrap_err().to_string(),
            "expansion loop: loop2 -> loop3 -> loop1 -> loop2"
        );
        assert_eq!(
            expand_param("self", &map()).unwrap_err().to_string(),
            "expansion loop: self -> self"
        );
        for bad in [
            "$",
            "a $ b",
            "${a",
            "$(a",
            "${}",
            "${a!x}",
            "${a?{x}:y}",
            "${a?{x",
            "$-",
        ] {
            assert!(matches!(x(bad), Err(ExpandError::Syntax { .. })), "{bad:?}");
        }
        assert_eq!(x("$boom"), Err(ExpandError::TooLong));
    }

    #[test]
    fn within() {
        assert_eq!(
            expand_param_within("b", "b", &map())
                .unwrap_err()
                .to_string(),
            "expansion loop: b -> b"
        );
        assert_eq!(expand_param_within("z", "b", &map()).as_deref(), Ok("[A]"));
    }

    #[test]
    fn escape_round_trips() {
        assert_eq!(x(&escape("a$b$$")).as_deref(), Ok("a$b$$"));
    }
}
