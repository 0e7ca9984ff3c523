//! smtpd's TLS parameters (Postfix `smtpd.c` TLS set-up and
//! `tls_server.c`), read once per process before privileges are dropped,
//! because the key file is usually readable by root only.
//!
//! A level that asks for TLS without a usable certificate does not stop
//! the server, as in Postfix: it warns, and STARTTLS is then answered
//! with `454 4.7.0 TLS not available due to local problem` (at `may`,
//! STARTTLS is simply not announced).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postern_config::Config;
use postern_tls::rustls::ServerConfig;
use postern_tls::server::{ServerCert, server_config};
use postern_util::warn;

/// `smtpd_tls_security_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// No STARTTLS.
    None,
    /// STARTTLS announced.
    May,
    /// STARTTLS announced and required before mail commands.
    Encrypt,
}

/// What a session needs to know about TLS.
#[derive(Debug, Clone)]
pub(crate) struct TlsSettings {
    pub(crate) level: Level,
    /// The server configuration; `None` when no certificate could be
    /// loaded (or the level is `none`).
    pub(crate) config: Option<Arc<ServerConfig>>,
    /// `smtpd_tls_wrappermode`.
    pub(crate) wrapper: bool,
    /// `smtpd_tls_received_header`.
    pub(crate) received_header: bool,
    /// `smtpd_tls_loglevel`.
    pub(crate) loglevel: i64,
    /// `smtpd_starttls_timeout`.
    pub(crate) handshake_timeout: Duration,
}

impl TlsSettings {
    /// Reads the parameters and loads the certificate. Errors are
    /// configuration errors that Postfix treats as fatal (an unknown
    /// security level); a missing or broken certificate only disables
    /// TLS, with a warning.
    pub(crate) fn from_config(config: &Config) -> Result<TlsSettings, String> {
        let wrapper = config.bool("smtpd_tls_wrappermode");
        let level = match config.str("smtpd_tls_security_level").trim() {
            "" | "none" if wrapper => Level::Encrypt,
            "" | "none" => Level::None,
            "may" => Level::May,
            "encrypt" => Level::Encrypt,
            other => {
                return Err(format!(
                    "smtpd_tls_security_level: unsupported value \"{other}\" \
                     (use none, may or encrypt)"
                ));
            }
        };
        let server = match level {
            Level::None => None,
            Level::May | Level::Encrypt => load(config, level).unwrap_or_else(|e| {
                warn!("{e}");
                warn!("No server certs available. TLS won't be enabled");
                None
            }),
        };
        Ok(TlsSettings {
            level,
            config: server,
            wrapper,
            received_header: config.bool("smtpd_tls_received_header"),
            loglevel: config.int("smtpd_tls_loglevel"),
            handshake_timeout: config.time("smtpd_starttls_timeout"),
        })
    }

    /// Whether EHLO announces STARTTLS (before TLS is active).
    pub(crate) fn offered(&self) -> bool {
        match self.level {
            Level::None => false,
            Level::May => self.config.is_some(),
            // Announced even without a certificate, so that clients get
            // 454 rather than a 530 they cannot do anything about.
            Level::Encrypt => true,
        }
    }
}

/// Loads the certificate and makes the rustls configuration; `None`
/// when no certificate is configured.
fn load(config: &Config, level: Level) -> Result<Option<Arc<ServerConfig>>, String> {
    let chain_files: Vec<PathBuf> = config
        .list("smtpd_tls_chain_files")
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let cert_file = config.path("smtpd_tls_cert_file");
    let cert = if !chain_files.is_empty() {
        ServerCert::from_chain_files(&chain_files)
    } else if cert_file.as_os_str().is_empty() {
        return Ok(None);
    } else {
        ServerCert::from_files(&cert_file, &config.path("smtpd_tls_key_file"))
    }
    .map_err(|e| format!("cannot load TLS certificate and key: {e}"))?;
    let param = match level {
        Level::Encrypt => "smtpd_tls_mandatory_protocols",
        _ => "smtpd_tls_protocols",
    };
    let versions =
        postern_tls::parse_protocols(param, &config.str(param)).map_err(|e| e.to_string())?;
    server_config(cert, &versions)
        .map(Some)
        .map_err(|e| format!("cannot use TLS certificate and key: {e}"))
}
