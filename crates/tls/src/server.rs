//! The server side (Postfix `tls_server.c`): the certificate and key, and
//! the rustls configuration smtpd hands to [`MaybeTls::accept`].
//!
//! Keys are read once at startup, before privileges are dropped, like
//! Postfix does. Encrypted keys are not supported (neither by Postfix).
//!
//! [`MaybeTls::accept`]: crate::MaybeTls::accept

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::SupportedProtocolVersion;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{TlsError, provider};

/// A certificate chain (server certificate first) and its private key.
#[derive(Debug)]
pub struct ServerCert {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl ServerCert {
    /// Postfix `smtpd_tls_cert_file` (the server certificate, optionally
    /// followed by its intermediates) and `smtpd_tls_key_file` (which may
    /// be the same file).
    pub fn from_files(cert_file: &Path, key_file: &Path) -> Result<ServerCert, TlsError> {
        let chain = read_certs(cert_file)?;
        let key = PrivateKeyDer::from_pem_file(key_file)
            .map_err(|e| TlsError::file(key_file, format!("no private key: {e}")))?;
        Ok(ServerCert { chain, key })
    }

    /// Postfix `smtpd_tls_chain_files`: files holding, in order, the
    /// private key, then the server certificate, then its intermediates.
    /// Postfix allows several key/chain pairs (RSA and ECDSA); Postern
    /// takes one and refuses more, rather than silently using the first.
    pub fn from_chain_files(files: &[PathBuf]) -> Result<ServerCert, TlsError> {
        let mut chain = Vec::new();
        let mut key: Option<PrivateKeyDer<'static>> = None;
        for file in files {
            let pem = std::fs::read(file).map_err(|e| TlsError::file(file, e))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                chain.push(cert.map_err(|e| TlsError::file(file, e))?);
            }
            if let Ok(k) = PrivateKeyDer::from_pem_slice(&pem) {
                if key.is_some() {
                    return Err(TlsError::file(
                        file,
                        "more than one private key (only one key/chain pair is supported)",
                    ));
                }
                key = Some(k);
            }
        }
        let first = files.first().map_or(Path::new(""), PathBuf::as_path);
        let key = key.ok_or_else(|| TlsError::file(first, "no private key"))?;
        if chain.is_empty() {
            return Err(TlsError::file(first, "no certificate"));
        }
        Ok(ServerCert { chain, key })
    }

    /// The certificate chain, server certificate first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }
}

/// Reads every certificate in a PEM file; at least one is required.
pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::file(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::file(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::file(path, "no certificate"));
    }
    Ok(certs)
}

/// The rustls configuration for an SMTP server: no client certificates
/// (Postfix `smtpd_tls_ask_ccert = no`), the given protocol versions, and
/// the server's own cipher order (TLS 1.3 suites first, AES-256 first, as
/// the ring provider lists them).
pub fn server_config(
    cert: ServerCert,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Arc<ServerConfig>, TlsError> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_single_cert(cert.chain, cert.key)?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TestCert;

    #[test]
    fn loads_pem_files() {
        let dir = tempfile::tempdir().unwrap();
        let c = TestCert::self_signed("mail.example.test");
        let (cert, key) = c.write(dir.path());
        let sc = ServerCert::from_files(&cert, &key).unwrap();
        assert_eq!(sc.chain().len(), 1);
        server_config(sc, &[&rustls::version::TLS13]).unwrap();

        // A chain file: key, then certificate.
        let both = dir.path().join("both.pem");
        std::fs::write(&both, format!("{}{}", c.key_pem, c.cert_pem)).unwrap();
        let sc = ServerCert::from_chain_files(std::slice::from_ref(&both)).unwrap();
        assert_eq!(sc.chain().len(), 1);
        server_config(sc, &[&rustls::version::TLS12]).unwrap();
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let c = TestCert::self_signed("mail.example.test");
        let (cert, _) = c.write(dir.path());
        let missing = dir.path().join("missing.pem");
        let e = ServerCert::from_files(&missing, &missing).unwrap_err();
        assert!(e.to_string().contains("missing.pem"), "{e}");
        // The certificate file holds no key.
        let e = ServerCert::from_files(&cert, &cert).unwrap_err();
        assert!(e.to_string().contains("no private key"), "{e}");
        // A key that does not belong to the certificate.
        let other = TestCert::self_signed("other.example.test");
        let other_key = dir.path().join("other.key");
        std::fs::write(&other_key, &other.key_pem).unwrap();
        let sc = ServerCert::from_files(&cert, &other_key).unwrap();
        assert!(server_config(sc, &[&rustls::version::TLS13]).is_err());
        let e = ServerCert::from_chain_files(std::slice::from_ref(&cert)).unwrap_err();
        assert!(e.to_string().contains("no private key"), "{e}");
    }
}
