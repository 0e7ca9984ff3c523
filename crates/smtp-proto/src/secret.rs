//! A wrapper that keeps credentials out of `Debug` output and logs.
//!
//! Same idea as imap-types' `Secret`: the AUTH initial response carries
//! base64 credentials (PLAIN), which must never reach a log line through a
//! stray `{:?}`.

use std::fmt;

/// A value that is redacted in `Debug` output.
///
/// Use [`Secret::expose`] where the value is really needed (the SASL layer).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Gives access to the wrapped value.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new(String::from("AGFsaWNlAHNlY3JldA=="));
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), "AGFsaWNlAHNlY3JldA==");
    }
}
