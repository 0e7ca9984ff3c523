//! A small DNS server for tests that, unlike dnsmasq, acts as a
//! DNSSEC-validating resolver would: it sets the AD bit on answers from
//! "signed" names when the query asks for it (AD or EDNS DO set,
//! RFC 6840 §5.7). Smtp's DANE needs that.
//!
//! Usage: `test-dns ZONE_FILE`; it binds UDP and TCP on the same free
//! loopback port and prints the port on stdout. Zone lines:
//! `NAME TYPE DATA`, with TYPE one of `A`, `MX` (`PREF HOST`), `TXT`
//! (the rest of the line), `TLSA` (`USAGE SELECTOR MATCHING HEX`). A
//! line that starts with `!` is an unsigned name (never AD). Names not in
//! the zone are NXDOMAIN; a name with other types, NODATA (AD as its
//! other records). Exits when stdin closes (the test ended).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::str::FromStr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, MX, TLSA, TXT};
use hickory_proto::rr::{Name, RData, Record};

/// Records per lower-case name with trailing dot, and whether signed.
type Zone = HashMap<String, (bool, Vec<RData>)>;

fn fqdn(s: &str) -> String {
    format!("{}.", s.trim_end_matches('.').to_ascii_lowercase())
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn parse(text: &str) -> Zone {
    let mut zone = Zone::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (signed, line) = match line.strip_prefix('!') {
            Some(rest) => (false, rest),
            None => (true, line),
        };
        let mut w = line.split_whitespace();
        let (Some(name), Some(rtype)) = (w.next(), w.next()) else {
            panic!("bad zone line: {line}");
        };
        let rest: Vec<&str> = w.collect();
        let data = match rtype {
            "A" => RData::A(A(Ipv4Addr::from_str(rest[0]).expect("A address"))),
            "MX" => RData::MX(MX::new(
                rest[0].parse().expect("MX preference"),
                Name::from_str(&fqdn(rest[1])).expect("MX host"),
            )),
            "TXT" => RData::TXT(TXT::new(vec![rest.join(" ")])),
            "TLSA" => RData::TLSA(TLSA::new(
                rest[0].parse::<u8>().expect("usage").into(),
                rest[1].parse::<u8>().expect("selector").into(),
                rest[2].parse::<u8>().expect("matching").into(),
                hex(rest[3]),
            )),
            other => panic!("unsupported type {other}"),
        };
        let e = zone.entry(fqdn(name)).or_insert((signed, Vec::new()));
        e.0 &= signed;
        e.1.push(data);
    }
    zone
}

fn answer(zone: &Zone, q: &Message) -> Option<Message> {
    let mut r = Message::response(q.metadata.id, q.metadata.op_code);
    r.metadata.recursion_available = true;
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    let query = q.queries.first().cloned()?;
    r.add_query(query.clone());
    let asks_ad = q.metadata.authentic_data || q.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    let qname = query.name().to_ascii().to_ascii_lowercase();
    match zone.get(&qname) {
        None => r.metadata.response_code = ResponseCode::NXDomain,
        Some((signed, records)) => {
            r.metadata.authentic_data = asks_ad && *signed;
            for d in records {
                if d.record_type() == query.query_type() {
                    r.add_answer(Record::from_rdata(query.name().clone(), 60, d.clone()));
                }
            }
        }
    }
    Some(r)
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: test-dns ZONE_FILE");
    let zone = parse(&std::fs::read_to_string(path).expect("zone file"));
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let addr = udp.local_addr().expect("addr");
    let tcp = TcpListener::bind(addr).expect("bind tcp");
    println!("{}", addr.port());
    let _ = std::io::stdout().flush();
    let z = zone.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((n, peer)) = udp.recv_from(&mut buf) else {
                return;
            };
            let reply = Message::from_vec(&buf[..n])
                .ok()
                .and_then(|q| answer(&z, &q))
                .and_then(|r| r.to_vec().ok());
            if let Some(bytes) = reply {
                let _ = udp.send_to(&bytes, peer);
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
            let Some(bytes) = Message::from_vec(&q)
                .ok()
                .and_then(|q| answer(&zone, &q))
                .and_then(|r| r.to_vec().ok())
            else {
                continue;
            };
            let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(&bytes);
            let _ = s.write_all(&out);
        }
    });
    // Until the test drops its end of stdin.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
