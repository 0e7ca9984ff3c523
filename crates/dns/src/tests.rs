//! Lookups against a small UDP responder in the test (hickory-proto
//! messages), on a loopback port that is not 53.

use std::net::UdpSocket;
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX, PTR, TLSA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;

/// The answer to `q` from a fixed zone: `mx.test` has two MX records,
/// `null.test` a null MX, `host.test` an A and an AAAA record,
/// `dane.test` a TLSA record (`big.dane.test` too, but truncated over
/// UDP), `fail.test` SERVFAIL, `ad.test` A with the AD bit; any other
/// name under `test` is NXDOMAIN, and a name with other types NODATA.
fn answer(q: &Message, udp: bool) -> Option<Message> {
    let mut r = Message::response(q.metadata.id, q.metadata.op_code);
    r.metadata.recursion_available = true;
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    let query = q.queries.first().cloned()?;
    r.add_query(query.clone());
    let qname = query.name().to_ascii().to_ascii_lowercase();
    let name = query.name().clone();
    let rec = |d: RData| Record::from_rdata(name.clone(), 60, d);
    let n = |s: &str| Name::from_str(s).unwrap();
    let t = query.query_type();
    match (qname.as_str(), t) {
        ("mx.test.", RecordType::MX) => {
            r.add_answer(rec(RData::MX(MX::new(20, n("b.mx.test.")))));
            r.add_answer(rec(RData::MX(MX::new(10, n("A.mx.test.")))));
        }
        ("null.test.", RecordType::MX) => {
            r.add_answer(rec(RData::MX(MX::new(0, n(".")))));
        }
        ("host.test.", RecordType::A) => {
            r.add_answer(rec(RData::A(A::new(127, 0, 0, 7))));
        }
        ("host.test.", RecordType::AAAA) => {
            r.add_answer(rec(RData::AAAA(AAAA::new(0, 0, 0, 0, 0, 0, 0, 1))));
        }
        ("ad.test.", RecordType::A) => {
            r.metadata.authentic_data = true;
            r.add_answer(rec(RData::A(A::new(127, 0, 0, 8))));
        }
        ("_25._tcp.dane.test." | "_25._tcp.big.dane.test.", RecordType::TLSA) => {
            if udp && qname.starts_with("_25._tcp.big") {
                r.metadata.truncation = true;
                return Some(r);
            }
            // A validating resolver: AD only when asked for
            // (RFC 6840 §5.7).
            r.metadata.authentic_data =
                q.metadata.authentic_data || q.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
            r.add_answer(rec(RData::TLSA(TLSA::new(
                3.into(),
                1.into(),
                1.into(),
                vec![0xab; 32],
            ))));
        }
        ("_mta-sts.mx.test.", RecordType::TXT) => {
            r.add_answer(rec(RData::TXT(TXT::new(vec![
                "v=STSv1; ".into(),
                "id=abc1".into(),
            ]))));
        }
        ("secure.test.", RecordType::MX) => {
            r.metadata.authentic_data =
                q.metadata.authentic_data || q.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
            r.add_answer(rec(RData::MX(MX::new(10, n("host.test.")))));
        }
        ("7.0.0.127.in-addr.arpa.", RecordType::PTR) => {
            r.add_answer(rec(RData::PTR(PTR(n("Host.test.")))));
            r.add_answer(rec(RData::PTR(PTR(n("alias.test.")))));
        }
        (
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
            RecordType::PTR,
        ) => {
            r.add_answer(rec(RData::PTR(PTR(n("host.test.")))));
        }
        ("8.0.0.127.in-addr.arpa.", _) => r.metadata.response_code = ResponseCode::ServFail,
        ("fail.test.", _) => r.metadata.response_code = ResponseCode::ServFail,
        ("mx.test." | "null.test." | "host.test." | "ad.test." | "secure.test.", _)
        | ("_25._tcp.dane.test." | "_25._tcp.big.dane.test.", _) => {}
        _ => r.metadata.response_code = ResponseCode::NXDomain,
    }
    Some(r)
}

/// A responder for [`answer`] on UDP and TCP (same port).
fn responder() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let tcp = std::net::TcpListener::bind(addr).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                return;
            };
            let Some(r) = Message::from_vec(&buf[..n])
                .ok()
                .and_then(|q| answer(&q, true))
            else {
                continue;
            };
            if let Ok(bytes) = r.to_vec() {
                let _ = sock.send_to(&bytes, peer);
            }
        }
    });
    std::thread::spawn(move || {
        for s in tcp.incoming() {
            let Ok(mut s) = s else { return };
            let mut len = [0u8; 2];
            if s.read_exact(&mut len).is_err() {
                continue;
            }
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if s.read_exact(&mut q).is_err() {
                continue;
            }
            let Some(r) = Message::from_vec(&q).ok().and_then(|q| answer(&q, false)) else {
                continue;
            };
            let bytes = r.to_vec().unwrap();
            let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(&bytes);
            let _ = s.write_all(&out);
        }
    });
    addr
}

fn dns() -> Dns {
    Dns::new(&[responder()], Duration::from_secs(2)).unwrap()
}

#[test]
fn mx_records_and_null_mx() {
    let d = dns();
    let mut got = d.mx("mx.test").unwrap().records;
    got.sort_by_key(|m| m.preference);
    assert_eq!(
        got,
        [
            Mx {
                preference: 10,
                exchange: "a.mx.test".into()
            },
            Mx {
                preference: 20,
                exchange: "b.mx.test".into()
            }
        ]
    );
    let null = d.mx("null.test.").unwrap();
    assert_eq!(null.records[0].exchange, "");
    assert_eq!(d.mx("host.test"), Err(Error::NoData));
    assert_eq!(d.mx("nowhere.test"), Err(Error::NotFound));
}

#[test]
fn addresses_and_classes_of_failure() {
    let d = dns();
    let a = d.addresses("host.test", Families::ALL).unwrap();
    assert_eq!(
        a.records,
        [
            "::1".parse::<IpAddr>().unwrap(),
            "127.0.0.7".parse().unwrap()
        ]
    );
    assert!(!a.authentic);
    let v4 = Families {
        ipv4: true,
        ipv6: false,
    };
    assert_eq!(d.addresses("host.test", v4).unwrap().records.len(), 1);
    assert!(d.a("ad.test").unwrap().authentic);
    assert_eq!(d.a("nowhere.test"), Err(Error::NotFound));
    let e = d.a("fail.test").unwrap_err();
    assert!(e.is_temporary(), "{e:?}");
    assert!(matches!(d.a("a..b"), Err(Error::BadName(_))));
    assert!(matches!(d.a(""), Err(Error::BadName(_))));
}

#[test]
fn ptr_records_and_reverse_names() {
    let d = dns();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let names = d.ptr(ip("127.0.0.7")).unwrap();
    assert_eq!(names.records, ["host.test", "alias.test"]);
    assert_eq!(d.ptr(ip("::1")).unwrap().records, ["host.test"]);
    // An IPv4-mapped address is asked as IPv4.
    assert_eq!(
        d.ptr(ip("::ffff:127.0.0.7")).unwrap().records[0],
        "host.test"
    );
    assert_eq!(d.ptr(ip("127.0.0.9")), Err(Error::NotFound));
    assert!(d.ptr(ip("127.0.0.8")).unwrap_err().is_temporary());
    assert_eq!(reverse_name(ip("192.0.2.10")), "10.2.0.192.in-addr.arpa");
    assert_eq!(
        reverse_name(ip("2001:db8::567:89ab")),
        "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    );
}

#[test]
fn tlsa_records() {
    let d = dns();
    let t = d.tlsa("_25._tcp.dane.test").unwrap();
    assert!(t.authentic, "the query asks for the AD bit");
    assert_eq!(d.tlsa("_25._tcp.host.test"), Err(Error::NotFound));
    assert_eq!(d.tlsa("_25._tcp.dane.test.x"), Err(Error::NotFound));
    assert!(d.tlsa("fail.test").unwrap_err().is_temporary());
    // Truncated over UDP: asked again over TCP.
    let big = d.tlsa("_25._tcp.big.dane.test").unwrap();
    assert_eq!(big.records.len(), 1);
    assert!(big.authentic);
    assert_eq!(
        t.records,
        [Tlsa {
            usage: 3,
            selector: 1,
            matching: 1,
            data: vec![0xab; 32]
        }]
    );
}

#[test]
fn txt_records_and_signed_rrsets() {
    let d = dns();
    let t = d.txt("_mta-sts.mx.test").unwrap();
    assert_eq!(t.records, ["v=STSv1; id=abc1"]);
    assert_eq!(d.txt("_mta-sts.none.test"), Err(Error::NotFound));
    assert_eq!(d.is_secure("secure.test", "MX"), Ok(true));
    assert_eq!(d.is_secure("mx.test", "MX"), Ok(false));
    assert!(d.is_secure("fail.test", "MX").unwrap_err().is_temporary());
}

#[test]
fn an_unanswering_server_is_a_temporary_failure_within_the_limit() {
    // Bound but never answering.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let d = Dns::new(&[silent.local_addr().unwrap()], Duration::from_millis(600)).unwrap();
    let start = std::time::Instant::now();
    let e = d.mx("mx.test").unwrap_err();
    assert!(e.is_temporary(), "{e:?}");
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn server_addresses() {
    assert_eq!(
        parse_server("127.0.0.1"),
        Some("127.0.0.1:53".parse().unwrap())
    );
    assert_eq!(
        parse_server("127.0.0.1:5353"),
        Some("127.0.0.1:5353".parse().unwrap())
    );
    assert_eq!(parse_server("[::1]:54"), Some("[::1]:54".parse().unwrap()));
    assert_eq!(parse_server("[::1]"), Some("[::1]:53".parse().unwrap()));
    assert_eq!(parse_server("::1"), Some("[::1]:53".parse().unwrap()));
    assert_eq!(parse_server("localhost"), None);
}
