//! Test certificates for TLS peers, made with rcgen at test time (no key
//! is committed): a self-signed server certificate, or a private CA and
//! server certificates it signs (for `verify`/`secure` and DANE-TA).

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// PEM files of a server certificate and its key.
pub struct TestCert {
    /// The certificate chain (server certificate first), PEM.
    pub cert: PathBuf,
    /// The private key, PEM.
    pub key: PathBuf,
    /// The server certificate, DER (for TLSA records).
    pub der: Vec<u8>,
}

/// A self-signed certificate for `name`, written to `dir/NAME.pem` and
/// `dir/NAME.key`.
pub fn self_signed(dir: &Path, name: &str) -> TestCert {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("rcgen");
    write(
        dir,
        name,
        &ck.cert.pem(),
        &ck.signing_key.serialize_pem(),
        ck.cert.der(),
    )
}

fn write(dir: &Path, name: &str, cert_pem: &str, key_pem: &str, der: &[u8]) -> TestCert {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    fs::write(&cert, cert_pem).expect("write cert");
    fs::write(&key, key_pem).expect("write key");
    TestCert {
        cert,
        key,
        der: der.to_vec(),
    }
}

/// A private certificate authority.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// The CA certificate, PEM (give it to a client as its CA file).
    pub cert: PathBuf,
}

impl TestCa {
    /// A CA called `name`, its certificate written to `dir/NAME-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("rcgen");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca");
        let cert = dir.join(format!("{name}-ca.pem"));
        fs::write(&cert, issuer.pem()).expect("write ca");
        TestCa { issuer, cert }
    }

    /// The CA certificate, DER (for DANE-TA records).
    pub fn der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    /// A server certificate for `name` signed by this CA; the chain file
    /// holds the server certificate and then the CA certificate.
    pub fn issue(&self, dir: &Path, name: &str) -> TestCert {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec![name.to_string()])
            .expect("rcgen")
            .signed_by(&key, &self.issuer)
            .expect("sign");
        let chain = format!("{}{}", cert.pem(), self.issuer.pem());
        write(dir, name, &chain, &key.serialize_pem(), cert.der())
    }
}

/// Python's HTTPS server (`http.server` with `ssl`) serving the files under
/// `root` with the certificate `cert`/`key` on a free loopback port;
/// returns it (killed when dropped) and its port. For MTA-STS policies.
pub fn https_server(root: &Path, cert: &Path, key: &Path) -> (crate::Proc, u16) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    const SERVER: &str = r#"
import http.server, ssl, sys, os
os.chdir(sys.argv[1])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;
    let mut child = Command::new("python3")
        .args(["-c", SERVER])
        .arg(root)
        .args([cert, key])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port from the HTTPS server");
    let port = line.trim().parse().expect("port from the HTTPS server");
    (crate::Proc(child), port)
}
