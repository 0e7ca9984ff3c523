//! MTA-STS policy fetching (`postern_tls::sts`) from a real HTTPS server
//! (Python's http.server behind OpenSSL) with a certificate from a test
//! CA, and the on-disk cache in front of it.

use std::fs;
use std::net::TcpStream;
use std::time::Duration;

use postern_tests::tls::TestCa;
use postern_tls::client::ClientTls;
use postern_tls::sts::{self, Cache, FetchError, Lookup, Mode, Source};

#[test]
fn fetch_and_cache_from_python_https() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "STS");
    let cert = ca.issue(dir.path(), "mta-sts.example.com");
    let root = dir.path().join("www");
    fs::create_dir_all(root.join(".well-known")).unwrap();
    fs::write(
        root.join(".well-known/mta-sts.txt"),
        "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.mx.example.com\r\n\
         max_age: 86400\r\n",
    )
    .unwrap();
    let (server, port) = postern_tests::tls::https_server(&root, &cert.cert, &cert.key);
    let versions = postern_tls::parse_protocols("smtp_tls_protocols", "").unwrap();
    let client = ClientTls::new(&versions, Some(&ca.cert)).unwrap();
    let connect = move |host: &str, p: u16, t: Duration| {
        assert_eq!(p, 443);
        assert!(host.starts_with("mta-sts."), "{host}");
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), t)
    };
    let timeout = Duration::from_secs(10);

    let (_, policy) = sts::fetch("example.com", &client, timeout, connect).unwrap();
    assert_eq!(policy.mode, Mode::Enforce);
    assert!(policy.matches_mx("a.mx.example.com"));
    assert!(!policy.matches_mx("evil.example.net"));

    // The certificate is for mta-sts.example.com only.
    let e = sts::fetch("example.org", &client, timeout, connect).unwrap_err();
    assert!(matches!(e, FetchError::Certificate(_)), "{e}");

    // A missing policy file is an HTTP error, not a policy.
    fs::remove_file(root.join(".well-known/mta-sts.txt")).unwrap();
    let e = sts::fetch("example.com", &client, timeout, connect).unwrap_err();
    assert!(e.to_string().contains("HTTP status 404"), "{e}");
    fs::write(
        root.join(".well-known/mta-sts.txt"),
        "version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 86400\n",
    )
    .unwrap();

    // Through the cache: fetched once, then answered from disk even with
    // the server gone.
    let cache = Cache::new(&dir.path().join("data/mta-sts")).unwrap();
    let id = sts::txt_id(&["v=STSv1; id=2026120701;".to_string()]);
    let lookup = cache.get("example.com", id.as_deref(), || {
        sts::fetch("example.com", &client, timeout, connect)
    });
    assert!(
        matches!(&lookup, Lookup::Found(p, Source::Fetched) if p.mode == Mode::Testing),
        "{lookup:?}"
    );
    drop(server);
    let lookup = cache.get("example.com", id.as_deref(), || {
        sts::fetch("example.com", &client, Duration::from_secs(1), connect)
    });
    assert!(
        matches!(&lookup, Lookup::Found(p, Source::Cache) if p.mode == Mode::Testing),
        "{lookup:?}"
    );
}
