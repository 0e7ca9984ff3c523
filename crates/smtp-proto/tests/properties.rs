//! Property tests over the public API: hostile bytes never panic any
//! receiver or parser, results do not depend on how input is chunked, and
//! encoders round-trip through their parsers.
//!
//! Random bytes rarely get past the first token of a text protocol, so the
//! command tests also map bytes onto an SMTP alphabet (the idea of
//! Stalwart's smtp-proto fuzz target).

use postern_smtp_proto::reply::ehlo;
use postern_smtp_proto::{
    BareNewline, BdatReceiver, Capabilities, ChunkProgress, Command, DataEncoder, DataEnd,
    DataOptions, DataProgress, DataReceiver, Domain, EnhancedStatus, Host, Mailbox, ParseOptions,
    Reply, ReplyParser, RequestReceiver, xtext,
};
use proptest::prelude::*;

/// SMTP-ish tokens for the command parser.
const TOKENS: &[&str] = &[
    "MAIL",
    "RCPT",
    "FROM:",
    "TO:",
    "EHLO",
    "HELO",
    "LHLO",
    "DATA",
    "BDAT",
    "LAST",
    "RSET",
    "NOOP",
    "QUIT",
    "VRFY",
    "EXPN",
    "HELP",
    "AUTH",
    "STARTTLS",
    " ",
    " ",
    "\t",
    "<",
    ">",
    "<>",
    "@",
    ".",
    ",",
    ":",
    "\"",
    "\\",
    "[",
    "]",
    "IPv6:",
    "::1",
    "1.2.3.4",
    "user",
    "example.com",
    "=",
    "+2B",
    "+",
    "SIZE",
    "BODY",
    "8BITMIME",
    "BINARYMIME",
    "7BIT",
    "SMTPUTF8",
    "RET",
    "FULL",
    "HDRS",
    "ENVID",
    "NOTIFY",
    "NEVER",
    "SUCCESS",
    "FAILURE",
    "DELAY",
    "ORCPT",
    "rfc822;",
    "utf-8;",
    "\\x{E9}",
    "\u{e9}",
    "123",
    "99999999999999999999999",
    "0",
    "Subject",
    "\r",
    "\n",
    "\0",
    "\u{7f}",
    "GET",
];

fn token_line() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0..TOKENS.len(), 0..24)
        .prop_map(|idx| idx.into_iter().flat_map(|i| TOKENS[i].bytes()).collect())
}

/// Bytes that exercise DATA framing.
fn data_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(vec![b'\r', b'\n', b'.', b'a', b' ', 0x80, 0u8]),
        0..200,
    )
}

/// Cuts `input` into pieces at the given (sorted, deduplicated) points.
fn pieces(input: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut prev = 0;
    for p in points {
        out.push(input[prev..p].to_vec());
        prev = p;
    }
    out.push(input[prev..].to_vec());
    out
}

/// Feeds DATA pieces; returns output, the end (with `consumed` made
/// absolute) and how much input was fed before the end.
fn run_data(opts: DataOptions, parts: &[Vec<u8>]) -> (Vec<u8>, Option<DataEnd>) {
    let mut r = DataReceiver::new(opts);
    let mut out = Vec::new();
    let mut base = 0;
    for part in parts {
        if let DataProgress::Done(mut end) = r.feed(part, &mut out) {
            end.consumed += base;
            return (out, Some(end));
        }
        base += part.len();
    }
    (out, None)
}

fn mode() -> impl Strategy<Value = BareNewline> {
    prop::sample::select(vec![
        BareNewline::Allow,
        BareNewline::Normalize,
        BareNewline::Reject,
    ])
}

/// Request receiver events as owned values.
fn lines(r: &mut RequestReceiver) -> Vec<Result<Vec<u8>, String>> {
    std::iter::from_fn(|| {
        r.next_line()
            .map(|l| l.map(|l| l.bytes.to_vec()).map_err(|e| e.to_string()))
    })
    .collect()
}

proptest! {
    #[test]
    fn command_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Command::parse(&bytes);
    }

    #[test]
    fn command_parser_never_panics_on_tokens(line in token_line(), utf8 in any::<bool>(), lax in any::<bool>()) {
        let opts = ParseOptions {
            smtputf8: utf8,
            allow_unqualified: lax,
            strict_rfc821_envelopes: !lax,
            ..ParseOptions::default()
        };
        match Command::parse_with(&line, &opts) {
            Ok(_) => {}
            Err(e) => {
                // Every error maps to a well-formed reply.
                let reply = e.reply();
                prop_assert!((400..600).contains(&reply.code) || reply.code == 221);
                prop_assert!(Reply::parse(&reply.to_bytes()).is_ok());
            }
        }
    }

    /// Whatever parses, encodes to a line that parses to the same command.
    #[test]
    fn command_encode_parse_round_trip(line in token_line()) {
        let opts = ParseOptions { smtputf8: true, ..ParseOptions::default() };
        if let Ok(command) = Command::parse_with(&line, &opts) {
            let mut wire = Vec::new();
            command.encode(&mut wire);
            prop_assert!(wire.ends_with(b"\r\n"));
            prop_assert_eq!(Command::parse_with(&wire, &opts), Ok(command));
        }
    }

    /// The client's dot-stuffing and the server's DATA receiver are
    /// inverses (for content with CRLF line endings only).
    #[test]
    fn data_encoder_receiver_round_trip(
        lines in prop::collection::vec("[.a \u{e9}]{0,6}", 0..20),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let content: Vec<u8> = lines.iter().flat_map(|l| l.bytes().chain(*b"\r\n")).collect();
        let mut wire = DataEncoder::encode_all(&content);
        wire.extend_from_slice(b"QUIT\r\n");
        let opts = DataOptions { bare_newline: BareNewline::Reject, size_limit: 0 };
        let (out, end) = run_data(opts, &pieces(&wire, &cuts));
        let end = end.unwrap();
        prop_assert_eq!(out, content);
        prop_assert_eq!(end.consumed, wire.len() - 6);
        prop_assert_eq!(end.error, None);
    }

    #[test]
    fn request_receiver_chunking_is_invisible(
        input in prop::collection::vec(
            prop::sample::select(vec![b'\r', b'\n', b'a', b' ', 0u8]), 0..300),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        limit in 0usize..40,
    ) {
        let mut whole = RequestReceiver::new(limit);
        whole.feed(&input);
        let want = lines(&mut whole);
        let mut r = RequestReceiver::new(limit);
        let mut got = Vec::new();
        for part in pieces(&input, &cuts) {
            r.feed(&part);
            got.extend(lines(&mut r));
            // Memory stays bounded by the limit plus one piece.
            prop_assert!(r.buffered().len() <= limit + 1 + part.len());
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(r.buffered(), whole.buffered());
    }

    #[test]
    fn data_receiver_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..500), m in mode(), limit in 0u64..100) {
        let opts = DataOptions { bare_newline: m, size_limit: limit };
        let _ = run_data(opts, &[bytes]);
    }

    #[test]
    fn data_receiver_chunking_is_invisible(
        input in data_bytes(),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
        m in mode(),
        limit in 0u64..150,
    ) {
        let opts = DataOptions { bare_newline: m, size_limit: limit };
        let want = run_data(opts, std::slice::from_ref(&input));
        let got = run_data(opts, &pieces(&input, &cuts));
        prop_assert_eq!(got, want);
    }

    /// The end of data is exactly the first `<CR><LF>.<CR><LF>`, counting
    /// the CRLF that ended the DATA command.
    #[test]
    fn data_ends_only_at_crlf_dot_crlf(input in data_bytes(), m in mode()) {
        let mut framed = b"\r\n".to_vec();
        framed.extend_from_slice(&input);
        let expected = framed.windows(5).position(|w| w == b"\r\n.\r\n").map(|i| i + 3);
        let opts = DataOptions { bare_newline: m, size_limit: 0 };
        let (out, end) = run_data(opts, std::slice::from_ref(&input));
        prop_assert_eq!(end.map(|e| e.consumed), expected);
        // (The stored form may contain a line holding just "." - it was
        // "..", or followed a bare LF - the relaying client stuffs it again.)
        // Without dots or bare newlines to rewrite, content is unchanged.
        // (A trailing CR is held back until the next octet shows whether it
        // starts a CRLF.)
        if expected.is_none() && m == BareNewline::Allow && !input.contains(&b'.') {
            prop_assert_eq!(&out[..], input.strip_suffix(b"\r").unwrap_or(&input));
        }
    }

    #[test]
    fn bdat_takes_exactly_the_chunk(
        input in prop::collection::vec(any::<u8>(), 0..300),
        size in 0u64..300,
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        limit in 0u64..400,
    ) {
        let mut r = BdatReceiver::new(limit);
        let mut out = Vec::new();
        r.start_chunk(size, true);
        let mut base = 0;
        let mut done = None;
        for part in pieces(&input, &cuts) {
            if let ChunkProgress::Done(end) = r.feed(&part, &mut out) {
                done = Some(base + end.consumed);
                break;
            }
            base += part.len();
        }
        let size = usize::try_from(size).unwrap();
        if size <= input.len() {
            prop_assert_eq!(done, Some(size));
            let kept = if limit == 0 { size } else { size.min(usize::try_from(limit).unwrap()) };
            prop_assert_eq!(&out[..], &input[..kept]);
            prop_assert_eq!(r.stats().size, size as u64);
        } else {
            prop_assert_eq!(done, None);
            prop_assert_eq!(r.remaining(), (size - input.len()) as u64);
        }
    }

    #[test]
    fn reply_parser_never_panics_and_ignores_chunking(
        input in prop::collection::vec(
            prop::sample::select(vec![b'2', b'5', b'0', b'-', b' ', b'\r', b'\n', b'.', b'x']), 0..300),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let collect = |parts: Vec<Vec<u8>>| {
            let mut p = ReplyParser::new(64);
            let mut got = Vec::new();
            for part in parts {
                p.feed(&part);
                got.extend(std::iter::from_fn(|| p.next_reply()));
            }
            got
        };
        let want = collect(vec![input.clone()]);
        prop_assert_eq!(collect(pieces(&input, &cuts)), want);
    }

    #[test]
    fn reply_round_trip(
        code in 200u16..600,
        status in (0u16..1000, 0u16..1000),
        with_status in any::<bool>(),
        lines in prop::collection::vec("[A-Za-z][ -~\u{e9}\u{4e2d}]{0,60}", 1..6),
    ) {
        let class = u8::try_from(code / 100).unwrap();
        let enhanced = (with_status && class != 3)
            .then(|| EnhancedStatus::new(class, status.0, status.1));
        let reply = Reply { code, enhanced, lines };
        let bytes = reply.to_bytes();
        prop_assert_eq!(Reply::parse(&bytes), Ok(reply));
    }

    #[test]
    fn ehlo_parsing_never_panics(lines in prop::collection::vec("[ -~]{0,40}", 1..10)) {
        let reply = Reply { code: 250, enhanced: None, lines };
        let caps = Capabilities::from_ehlo(&reply).unwrap();
        // What we parsed, we can announce and parse again.
        let again = Capabilities::from_ehlo(&Reply::parse(&ehlo("x", &caps.extensions).to_bytes()).unwrap()).unwrap();
        prop_assert_eq!(again.extensions, caps.extensions);
    }

    #[test]
    fn xtext_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..100), junk in "[ -~]{0,40}") {
        prop_assert_eq!(xtext::decode(&xtext::encode(&bytes)), Ok(bytes));
        let _ = xtext::decode(&junk);
    }

    #[test]
    fn mailbox_display_round_trip(
        local in "[a-zA-Z0-9 .!#\"\\\\@<>()\u{e9}]{1,30}",
        labels in prop::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..4),
    ) {
        let domain = Domain::parse(&labels.join("."), false).unwrap();
        let mailbox = Mailbox::new(&local, Some(Host::Domain(domain))).unwrap();
        let text = mailbox.to_string();
        prop_assert_eq!(Mailbox::parse(&text, true), Ok(mailbox.clone()));
        // And through a RCPT command.
        let line = format!("RCPT TO:<{text}>");
        let opts = ParseOptions { smtputf8: true, ..ParseOptions::default() };
        match Command::parse_with(line.as_bytes(), &opts) {
            Ok(Command::Rcpt { to, .. }) => prop_assert_eq!(to, mailbox),
            other => prop_assert!(false, "{line}: {other:?}"),
        }
    }
}
