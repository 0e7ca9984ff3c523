//! Sans-I/O SMTP and LMTP protocol pieces shared by Postern's SMTP server
//! (`smtpd`) and SMTP/LMTP client (`smtp`).
//!
//! This crate does no I/O: no sockets, no files, no clocks. Bytes go in,
//! commands, message content and replies come out (rustls' model). It is
//! the Rust counterpart of the tokenizing and chat code in Postfix
//! `src/smtpd/` and `src/smtp/smtp_proto.c`, organised like Stalwart's
//! smtp-proto: one receiver per phase of the session.
//!
//! # The server flow
//!
//! ```text
//!  bytes ─▶ RequestReceiver ─▶ Line ─▶ Command::parse_with ─▶ Command
//!                                          │ Err: CommandError::reply()
//!                                          ▼
//!                         Session::check ─▶ Err(Reply): 503/554 sequencing
//!                                          │ Ok
//!                         (smtpd policy: relay, user lookup, limits)
//!                                          │
//!                         Session::accept ─▶ Reply::encode ─▶ bytes
//!
//!  after DATA:  take_buffered() ─▶ DataReceiver ─▶ message + DataEnd
//!  after BDAT:  take_buffered() ─▶ BdatReceiver ─▶ chunk   + ChunkEnd
//!               the bytes after the end go back to the RequestReceiver
//! ```
//!
//! ```
//! use postern_smtp_proto::reply::{ehlo, standard};
//! use postern_smtp_proto::{Command, Extension, ParseOptions, Protocol, RequestReceiver, Session};
//!
//! let mut input = RequestReceiver::default();
//! let mut session = Session::new(Protocol::Smtp);
//! let mut output = Vec::new();
//!
//! // A pipelining client sends everything at once.
//! input.feed(b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nDATA\r\n");
//! while let Some(line) = input.next_line() {
//!     let reply = match line {
//!         Err(e) => e.reply(),
//!         Ok(line) => {
//!             let opts = ParseOptions { smtputf8: session.smtputf8(), ..ParseOptions::default() };
//!             match line.parse(&opts) {
//!                 Err(e) => e.reply(),
//!                 Ok(command) => match session.check(&command) {
//!                     Err(reply) => reply,
//!                     Ok(()) => {
//!                         // ... the server's policy decides here ...
//!                         session.accept(&command);
//!                         match command {
//!                             Command::Ehlo(_) => ehlo("mx.example.net", &[Extension::Pipelining]),
//!                             Command::Mail { .. } => standard::sender_ok(),
//!                             _ => standard::ok(),
//!                         }
//!                     }
//!                 },
//!             }
//!         }
//!     };
//!     reply.encode(&mut output);
//! }
//! assert_eq!(
//!     output,
//!     b"250-mx.example.net\r\n250 PIPELINING\r\n250 2.1.0 Ok\r\n554 5.5.1 Error: no valid recipients\r\n"
//! );
//! ```
//!
//! # What lives where
//!
//! - [`request`]: [`Command`] and its parser, ESMTP parameters, the reply
//!   for each syntax error ([`CommandError::reply`]).
//! - [`address`]: RFC 5321 paths and mailboxes, SMTPUTF8.
//! - [`receiver`]: [`RequestReceiver`], [`DataReceiver`], [`BdatReceiver`].
//! - [`reply`]: [`Reply`] encoder, [`ReplyParser`] for the client,
//!   EHLO [`ehlo`](reply::ehlo) builder and [`Capabilities`] parser, and
//!   Postfix's standard replies in [`reply::standard`].
//! - [`session`]: [`Session`], the RFC 5321 sequencing rules.
//! - [`encoder`]: [`DataEncoder`], dot-stuffing for the client side;
//!   commands are sent with [`Command::encode`].
//! - [`xtext`]: RFC 3461 xtext.
//!
//! # Security notes
//!
//! Nothing here panics on input from the peer, and nothing allocates in
//! proportion to a length the peer claims: command lines are capped
//! ([`DEFAULT_LINE_LIMIT`]), reply size is capped, DATA and BDAT content is
//! written only up to the message size limit and drained after that, and
//! parameters are counted and length-checked. The end of DATA is only
//! `<CR><LF>.<CR><LF>` (CVE-2023-51764 "SMTP smuggling"); see
//! [`BareNewline`]. After STARTTLS the caller must discard buffered
//! plaintext ([`RequestReceiver::clear`]).
//!
//! # Deviations from Postfix, on purpose
//!
//! - An overlong command line is rejected (`500 5.5.2 Error: line too
//!   long`) rather than truncated and executed.
//! - [`BareNewline::Allow`] passes bare LFs through but, unlike Postfix's
//!   `smtpd_forbid_bare_newline = no`, never ends DATA on them.
//! - Unqualified addresses are refused unless
//!   [`ParseOptions::allow_unqualified`]; `RCPT TO:<Postmaster>` is always
//!   allowed.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod address;
pub mod encoder;
mod framing;
pub mod receiver;
pub mod reply;
pub mod request;
mod secret;
pub mod session;
pub mod xtext;

pub use address::{AddressError, AddressLiteral, Domain, Host, Mailbox, Path};
pub use encoder::DataEncoder;
pub use framing::LineEnding;
pub use receiver::{
    BareNewline, BdatReceiver, ChunkEnd, ChunkProgress, ContentStats, DEFAULT_LINE_LIMIT,
    DEFAULT_MESSAGE_SIZE_LIMIT, DataEnd, DataError, DataOptions, DataProgress, DataReceiver, Line,
    LineError, RequestReceiver,
};
pub use reply::{
    Capabilities, EnhancedStatus, Extension, Reply, ReplyError, ReplyParser, Severity,
};
pub use request::{
    Body, Command, CommandError, HeloName, MailAuth, MailParams, Notify, Orcpt, Param,
    ParseOptions, RcptParams, Ret, Usage,
};
pub use secret::Secret;
pub use session::{Greeting, Protocol, Session, State};
