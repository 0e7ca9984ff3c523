//! Errors.

use std::path::PathBuf;

/// What went wrong while setting TLS up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or CA file could not be read or holds nothing
    /// usable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A parameter value makes no sense (names the parameter).
    #[error("{param}: {reason}")]
    Param {
        /// The parameter, e.g. `smtpd_tls_protocols`.
        param: &'static str,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration (e.g. the key does not match the
    /// certificate).
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsError {
    pub(crate) fn file(path: &std::path::Path, reason: impl std::fmt::Display) -> TlsError {
        TlsError::File {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}
