//! The one error type of the crate.

/// A table that could not be opened, or a lookup that failed.
///
/// A failed lookup means "try again later" (Postfix `DICT_ERR_RETRY`):
/// callers defer the mail, they never treat it as "not found".
/// [`std::fmt::Display`] names the table (`hash:/etc/postern/transport:
/// open /etc/postern/transport: No such file or directory`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table}: {message}")]
pub struct Error {
    table: String,
    message: String,
}

impl Error {
    pub(crate) fn new(table: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            table: table.into(),
            message: message.into(),
        }
    }

    /// The table, as it was specified (`hash:/etc/aliases`).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// What failed, without the table name.
    pub fn message(&self) -> &str {
        &self.message
    }
}
