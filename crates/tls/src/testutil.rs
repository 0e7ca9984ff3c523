//! Test certificates made with rcgen (no keys are committed).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use crate::MaybeTls;
use crate::client::{ClientTls, Policy, server_name};
use crate::server::{ServerCert, server_config};

/// A certificate (with its chain) and key.
pub(crate) struct TestCert {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    /// Server certificate first.
    pub(crate) chain: Vec<CertificateDer<'static>>,
}

impl TestCert {
    pub(crate) fn self_signed(name: &str) -> TestCert {
        let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        TestCert {
            cert_pem: ck.cert.pem(),
            key_pem: ck.signing_key.serialize_pem(),
            chain: vec![ck.cert.der().clone()],
        }
    }

    /// Writes `cert.pem` and `key.pem` into `dir`.
    pub(crate) fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }

    pub(crate) fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let sc = ServerCert {
            chain: self.chain.clone(),
            key: PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap(),
        };
        server_config(sc, &[&rustls::version::TLS13, &rustls::version::TLS12]).unwrap()
    }
}

/// A test certificate authority.
pub(crate) struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub(crate) fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    pub(crate) fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `name`, chain `[leaf, ca]`.
    pub(crate) fn leaf(&self, name: &str) -> TestCert {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec![name.to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        TestCert {
            cert_pem: format!("{}{}", cert.pem(), self.pem()),
            key_pem: key.serialize_pem(),
            chain: vec![cert.der().clone(), self.der()],
        }
    }

    /// An expired server certificate for `name`.
    pub(crate) fn expired_leaf(&self, name: &str) -> TestCert {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        TestCert {
            cert_pem: format!("{}{}", cert.pem(), self.pem()),
            key_pem: key.serialize_pem(),
            chain: vec![cert.der().clone(), self.der()],
        }
    }
}

/// Runs a TLS server with `cert` on loopback and a client with
/// `policy`; returns the client's result (and checks data flows).
pub(crate) fn handshake(
    cert: &TestCert,
    client: &ClientTls,
    policy: &Policy,
    host: &str,
) -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sc = cert.server_config();
    let server = std::thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let Ok(mut s) = MaybeTls::Plain(sock).accept(sc) else {
            return;
        };
        let mut buf = [0u8; 5];
        if s.read_exact(&mut buf).is_ok() {
            let _ = s.write_all(b"pong!");
            let _ = s.flush();
        }
    });
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let config = client.config(policy).map_err(|e| e.to_string())?;
    let result = MaybeTls::Plain(sock)
        .connect(config, server_name(host).unwrap())
        .map_err(|e| {
            // Every certificate failure must be classifiable for TLS-RPT.
            let kind = crate::stream::tls_error(&e)
                .map(crate::rpt::ResultType::from_tls_error)
                .map_or("io".to_string(), |r| r.to_string());
            format!("{e} [{kind}]")
        })
        .and_then(|mut s| {
            s.write_all(b"ping!").map_err(|e| e.to_string())?;
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).map_err(|e| e.to_string())?;
            assert_eq!(&buf, b"pong!");
            Ok(s.info().unwrap().to_string())
        });
    server.join().unwrap();
    result
}
