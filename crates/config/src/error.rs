//! Configuration errors: where the bad value came from and what was wrong.
//!
//! Postfix counterpart: the `msg_fatal("%s, line %d: ...")` calls in
//! `util/dict.c` and `master/master_ent.c`. Every error names its origin
//! (a file and line, or the `-o` argument) and the parameter or key, so that
//! an administrator can find the mistake without reading source code.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a configuration value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A configuration file (`main.toml` or `master.toml`).
    File(PathBuf),
    /// A command-line argument; holds the whole option as typed, for example
    /// `-o message_size_limit=ten` or `-c`.
    CommandLine(String),
    /// The built-in parameter table (an error here is a bug in Postern).
    Builtin,
}

/// A configuration error.
///
/// Displays as `FILE:LINE: KEY: MESSAGE`, for example
/// `/etc/postern/main.toml:12: message_size_limit: expected a size in bytes, found "ten"`,
/// or `command line: -o message_size_limit=ten: expected a size in bytes, found "ten"`
/// for `-o` overrides. Parts that are unknown are left out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct Error {
    /// The file or command-line option that held the bad value.
    pub origin: Origin,
    /// 1-based line number in [`Error::origin`], when it is a file and the
    /// line is known.
    pub line: Option<usize>,
    /// The parameter, or for `master.toml` the `service.key`, that was wrong.
    pub key: Option<String>,
    /// What was expected and what was found.
    pub message: String,
}

impl Error {
    pub(crate) fn file(
        path: impl Into<PathBuf>,
        line: Option<usize>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> Error {
        Error {
            origin: Origin::File(path.into()),
            line,
            key: key.map(str::to_owned),
            message: message.into(),
        }
    }

    pub(crate) fn command_line(option: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            origin: Origin::CommandLine(option.into()),
            line: None,
            key: None,
            message: message.into(),
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut impl fmt::Write) -> fmt::Result {
        match &self.origin {
            Origin::File(path) => {
                write!(out, "{}", path.display())?;
                if let Some(line) = self.line {
                    write!(out, ":{line}")?;
                }
            }
            Origin::CommandLine(option) => write!(out, "command line: {option}")?,
            Origin::Builtin => write!(out, "built-in default")?,
        }
        if let Some(key) = &self.key {
            write!(out, ": {key}")?;
        }
        write!(out, ": {}", self.message)
    }
}

/// Parses the TOML `text` of the file at `path` (main.toml, master.toml);
/// a syntax error names the file and the line.
pub(crate) fn parse_toml<'a>(
    text: &'a str,
    path: &Path,
) -> Result<toml::Spanned<toml::de::DeTable<'a>>, Error> {
    toml::de::DeTable::parse(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        Error::file(
            path,
            line,
            None,
            format!("TOML syntax error: {}", e.message()),
        )
    })
}

/// 1-based line number of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shapes() {
        let e = Error::file(
            "/etc/postern/main.toml",
            Some(12),
            Some("message_size_limit"),
            "expected a size in bytes, found \"ten\"",
        );
        assert_eq!(
            e.to_string(),
            "/etc/postern/main.toml:12: message_size_limit: expected a size in bytes, found \"ten\""
        );
        let e = Error::file("/x/main.toml", None, None, "cannot read");
        assert_eq!(e.to_string(), "/x/main.toml: cannot read");
        let e = Error::command_line("-o a=b", "unknown parameter");
        assert_eq!(e.to_string(), "command line: -o a=b: unknown parameter");
    }

    #[test]
    fn lines() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(line_of("a\nb\nc", 400), 3);
    }
}
