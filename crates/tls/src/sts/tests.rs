use std::net::TcpListener;

use super::*;
use crate::testutil::TestCa;

const POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n\
                      mx: *.example.net\r\nmax_age: 604800\r\n";

#[test]
fn parses_the_rfc_example() {
    let p = Policy::parse(POLICY).unwrap();
    assert_eq!(p.mode, Mode::Enforce);
    assert_eq!(p.mx, ["mail.example.com", "*.example.net"]);
    assert_eq!(p.max_age, 604_800);
}

#[test]
fn policy_edge_cases() {
    // LF line ends, blanks around values, unknown keys, a trailing dot.
    let p = Policy::parse(
        "version:STSv1\nmode:   testing\t\nfoo: bar\nmx: MX.Example.COM.\nmax_age:0\n",
    )
    .unwrap();
    assert_eq!((p.mode, p.max_age), (Mode::Testing, 0));
    assert_eq!(p.mx, ["mx.example.com"]);
    // max_age is capped at a year.
    let p = Policy::parse("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 9999999999\n")
        .unwrap();
    assert_eq!(p.max_age, MAX_AGE_LIMIT);
    // mode none needs no mx.
    let p = Policy::parse("version: STSv1\nmode: none\nmax_age: 86400\n").unwrap();
    assert_eq!((p.mode, p.mx.len()), (Mode::None, 0));
    // The first of repeated fields counts (except mx).
    let p = Policy::parse(
        "version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmax_age: 5\nmax_age: 9\n",
    )
    .unwrap();
    assert_eq!((p.mode, p.max_age), (Mode::Testing, 5));
    for bad in [
        "",
        "version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n",
        "mode: enforce\nmx: a\nmax_age: 1\n",
        "version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n",
        "version: STSv1\nmx: a\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmx: a\n",
        "version: STSv1\nmode: enforce\nmx: a\nmax_age: -1\n",
        "version: STSv1\nmode: enforce\nmx: a\nmax_age: 1d\n",
        "version: STSv1\nmode: enforce\nmx: a b\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmx: a\nmax_age: 1\njunk line\n",
        "<html>oops</html>",
    ] {
        assert!(Policy::parse(bad).is_err(), "{bad:?}");
    }
    let huge = format!("{POLICY}{}", "x: y\n".repeat(MAX_POLICY_SIZE / 5 + 1));
    assert!(Policy::parse(&huge).is_err());
}

#[test]
fn mx_matching() {
    let p = Policy::parse(POLICY).unwrap();
    assert!(p.matches_mx("mail.example.com"));
    assert!(p.matches_mx("MAIL.example.com."));
    assert!(!p.matches_mx("mail2.example.com"));
    assert!(!p.matches_mx("example.com"));
    // A wildcard stands for exactly one label.
    assert!(p.matches_mx("mx1.example.net"));
    assert!(!p.matches_mx("a.mx1.example.net"));
    assert!(!p.matches_mx("example.net"));
    assert!(!p.matches_mx(".example.net"));
    assert!(!p.matches_mx("mx1.example.net.evil"));
}

#[test]
fn txt_records() {
    let txt = |r: &[&str]| txt_id(&r.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        txt(&["v=STSv1; id=20160831085700Z;"]).as_deref(),
        Some("20160831085700Z")
    );
    assert_eq!(txt(&["v=STSv1;id=abc"]).as_deref(), Some("abc"));
    assert_eq!(txt(&["v=spf1 -all", "v=STSv1; id=1"]).as_deref(), Some("1"));
    // Two STS records: no policy (§3.1).
    assert_eq!(txt(&["v=STSv1; id=1", "v=STSv1; id=2"]), None);
    assert_eq!(txt(&["v=STSv1;"]), None);
    assert_eq!(txt(&["v=STSv1; id=bad-id"]), None);
    assert_eq!(txt(&[&format!("v=STSv1; id={}", "a".repeat(33))]), None);
    assert_eq!(txt(&["id=1; v=STSv1"]), None);
    assert_eq!(txt(&["v=STSv10; id=1"]), None);
    assert_eq!(txt(&[]), None);
}

#[test]
fn http_responses() {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\nhelloextra";
    assert_eq!(parse_response(ok).unwrap(), b"hello");
    let chunked = b"HTTP/1.1 200 OK\r\ncontent-type: TEXT/PLAIN\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
    assert_eq!(parse_response(chunked).unwrap(), b"hello world");
    let close = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close";
    assert_eq!(parse_response(close).unwrap(), b"until close");
    for bad in [
        &b"HTTP/1.1 301 Moved\r\nLocation: https://x/\r\nContent-Type: text/plain\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\n\r\nno type",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 99\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"SMTP 220 hello\r\n\r\n",
        b"HTTP/1.1 200 OK",
    ] {
        assert!(
            parse_response(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

/// A one-shot HTTPS server on loopback with a certificate from `ca` for
/// `name`; answers with `response` after reading the request.
fn https_server(ca: &TestCa, name: &str, response: Vec<u8>, delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = ca.leaf(name).server_config();
    let name = name.to_string();
    std::thread::spawn(move || {
        let Ok((sock, _)) = listener.accept() else {
            return;
        };
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let Ok(mut s) = MaybeTls::Plain(sock).accept(config) else {
            return;
        };
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while find(&req, b"\r\n\r\n").is_none() {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        let req = String::from_utf8_lossy(&req).into_owned();
        assert!(
            req.starts_with("GET /.well-known/mta-sts.txt HTTP/1.1\r\n"),
            "{req}"
        );
        assert!(req.contains(&format!("\r\nHost: {name}\r\n")), "{req}");
        std::thread::sleep(delay);
        let _ = s.write_all(&response);
        s.close_notify();
    });
    port
}

fn client_trusting(ca: &TestCa) -> ClientTls {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ca.pem");
    fs::write(&f, ca.pem()).unwrap();
    ClientTls::new(&crate::parse_protocols("p", "").unwrap(), Some(&f)).unwrap()
}

fn fetch_from(
    port: u16,
    client: &ClientTls,
    timeout: Duration,
) -> Result<(String, Policy), FetchError> {
    fetch("example.com.", client, timeout, |host, p, t| {
        assert_eq!((host, p), ("mta-sts.example.com", 443));
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), t)
    })
}

fn ok_response(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn fetch_over_https() {
    let ca = TestCa::new("STS CA");
    let client = client_trusting(&ca);
    let port = https_server(
        &ca,
        "mta-sts.example.com",
        ok_response(POLICY),
        Duration::ZERO,
    );
    let (text, policy) = fetch_from(port, &client, Duration::from_secs(5)).unwrap();
    assert_eq!(text, POLICY);
    assert_eq!(policy.mode, Mode::Enforce);
}

#[test]
fn fetch_failures() {
    let ca = TestCa::new("STS CA");
    let client = client_trusting(&ca);
    let t = Duration::from_secs(5);
    // A certificate for another name.
    let port = https_server(&ca, "www.example.com", ok_response(POLICY), Duration::ZERO);
    let e = fetch_from(port, &client, t).unwrap_err();
    assert!(matches!(e, FetchError::Certificate(_)), "{e}");
    // A certificate from a CA the client does not trust.
    let other = TestCa::new("Other CA");
    let port = https_server(
        &other,
        "mta-sts.example.com",
        ok_response(POLICY),
        Duration::ZERO,
    );
    assert!(matches!(
        fetch_from(port, &client, t),
        Err(FetchError::Certificate(_))
    ));
    // A redirect is not followed.
    let port = https_server(
        &ca,
        "mta-sts.example.com",
        b"HTTP/1.1 302 Found\r\nLocation: https://elsewhere/\r\nContent-Length: 0\r\n\r\n".to_vec(),
        Duration::ZERO,
    );
    let e = fetch_from(port, &client, t).unwrap_err();
    assert!(e.to_string().contains("HTTP status 302"), "{e}");
    // A body that is not a policy.
    let port = https_server(
        &ca,
        "mta-sts.example.com",
        ok_response("hello"),
        Duration::ZERO,
    );
    assert!(matches!(
        fetch_from(port, &client, t),
        Err(FetchError::Policy(_))
    ));
    // Too slow.
    let port = https_server(
        &ca,
        "mta-sts.example.com",
        ok_response(POLICY),
        Duration::from_secs(2),
    );
    let started = Instant::now();
    assert!(matches!(
        fetch_from(port, &client, Duration::from_millis(300)),
        Err(FetchError::Io(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
    // Too big.
    let big = format!("{POLICY}{}", "x".repeat(MAX_POLICY_SIZE));
    let port = https_server(
        &ca,
        "mta-sts.example.com",
        ok_response(&big),
        Duration::ZERO,
    );
    assert!(matches!(
        fetch_from(port, &client, t),
        Err(FetchError::Http(_))
    ));
}

#[test]
fn cache_follows_rfc_8461_section_5_1() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(&dir.path().join("mta-sts")).unwrap();
    let fetched = |text: &'static str| move || Ok((text.to_string(), Policy::parse(text).unwrap()));
    let fails = || Err(FetchError::Http("HTTP status 500".into()));
    let never = || -> Result<(String, Policy), FetchError> { panic!("fetched") };

    // Nothing announced, nothing cached.
    assert!(matches!(
        cache.get("example.com", None, never),
        Lookup::NoPolicy
    ));
    // Announced but unreachable, nothing cached.
    assert!(matches!(
        cache.get("example.com", Some("1"), fails),
        Lookup::FetchFailed(_)
    ));
    // Fetched and cached; the same id is answered from the cache.
    assert!(matches!(
        cache.get("example.com", Some("1"), fetched(POLICY)),
        Lookup::Found(_, Source::Fetched)
    ));
    assert!(matches!(
        cache.get("Example.COM.", Some("1"), never),
        Lookup::Found(_, Source::Cache)
    ));
    // The TXT record vanished: the cached policy stays until max_age.
    assert!(matches!(
        cache.get("example.com", None, never),
        Lookup::Found(_, Source::Cache)
    ));
    // A new id: fetch again; if that fails, the fresh old policy holds.
    assert!(matches!(
        cache.get("example.com", Some("2"), fails),
        Lookup::Found(_, Source::StaleCache)
    ));
    let testing = "version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 100\n";
    match cache.get("example.com", Some("2"), fetched(testing)) {
        Lookup::Found(p, Source::Fetched) => assert_eq!(p.mode, Mode::Testing),
        other => panic!("{other:?}"),
    }
    // Expired (max_age 100): fetched again even with the same id, and
    // gone when nothing is announced.
    cache.age("example.com", 101);
    assert!(matches!(
        cache.get("example.com", None, never),
        Lookup::NoPolicy
    ));
    assert!(matches!(
        cache.get("example.com", Some("2"), fetched(POLICY)),
        Lookup::Found(_, Source::Fetched)
    ));
    // Hostile domain names never become paths.
    assert!(cache.path("../etc/passwd").is_none());
    assert!(cache.path("a/b").is_none());
    assert!(cache.path("").is_none());
    assert!(matches!(
        cache.get("../x", Some("1"), fetched(POLICY)),
        Lookup::Found(_, _)
    ));
    assert!(!dir.path().join("x").exists());
}
