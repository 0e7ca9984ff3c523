//! SMTP commands: one line in, one [`Command`] or one [`CommandError`] out.
//!
//! The parser takes a command line without its line ending (what
//! [`RequestReceiver`](crate::RequestReceiver) yields) and works in three
//! steps:
//!
//! 1. *Line checks.* Control characters other than TAB, including NUL, give
//!    `500 5.5.2 Error: bad syntax`; invalid UTF-8 gives
//!    `500 5.5.2 Error: bad UTF-8 syntax` (Postfix with `smtputf8_enable`).
//! 2. *Verb.* Case-insensitive. A first word that looks like a message
//!    header (`Subject:`) or an HTTP/proxy verb, or does not start with a
//!    letter, is [`CommandError::NonSmtp`] (Postfix `smtpd_forbid_cmds` and
//!    `is_header()`: reply 221 and hang up). Anything else unknown is
//!    `502 5.5.2 Error: command not recognized`.
//! 3. *Arguments*, per verb, with Postfix's replies for each error.
//!
//! Leniency, where Postfix has it and it is harmless: runs of spaces or
//! tabs between words; leading and trailing white space; a space after
//! `FROM:`/`TO:` (`MAIL FROM: <a@b>`); an address without angle brackets
//! unless [`ParseOptions::strict_rfc821_envelopes`] is set; extra words
//! after HELO/EHLO are kept as part of the name; QUIT arguments are
//! ignored.
//!
//! Postfix counterparts: `smtpd.c` (`*_cmd` functions), `smtpd_token.c`.

use std::fmt;

use thiserror::Error;

use crate::address::{self, AddressError, AddressLiteral, Domain, Mailbox, Path};
use crate::reply::{EnhancedStatus, Reply, standard};
use crate::secret::Secret;
use crate::xtext;

/// Default cap on the number of MAIL/RCPT parameters.
pub const DEFAULT_MAX_PARAMS: usize = 16;
/// Longest single MAIL/RCPT parameter (`KEYWORD=value`), in octets.
pub const MAX_PARAM_LEN: usize = 1024;
/// Longest decoded ENVID (RFC 3461 §4.4).
const MAX_ENVID: usize = 100;
/// Longest ORCPT parameter value (RFC 3461 §4.2).
const MAX_ORCPT: usize = 500;
/// Longest HELO/EHLO/LHLO argument (Postfix `VALID_HOSTNAME_LEN`).
const MAX_HELO: usize = 255;
/// Longest SASL mechanism name (RFC 4422 §3.1).
const MAX_MECHANISM: usize = 20;

/// Context the parser needs from the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseOptions {
    /// The MAIL command of the current transaction carried `SMTPUTF8`, so
    /// RCPT (and VRFY/EXPN) may use UTF-8 addresses (RFC 6531 §3.4). A
    /// MAIL command is judged by its own parameters.
    pub smtputf8: bool,
    /// Postfix `strict_rfc821_envelopes`: require `<...>` around addresses.
    /// Default `false`, as in Postfix.
    pub strict_rfc821_envelopes: bool,
    /// Accept addresses without `@domain` (Postfix then appends
    /// `$myorigin`; `reject_non_fqdn_*` is policy). Default `false`: only
    /// `RCPT TO:<Postmaster>` may be unqualified (RFC 5321 §4.1.1.3).
    pub allow_unqualified: bool,
    /// Most parameters accepted on one MAIL or RCPT command.
    pub max_params: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            smtputf8: false,
            strict_rfc821_envelopes: false,
            allow_unqualified: false,
            max_params: DEFAULT_MAX_PARAMS,
        }
    }
}

/// A parsed SMTP (or LMTP) command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `AUTH mechanism [initial-response]` (RFC 4954). The mechanism is
    /// upper-cased; the initial response is passed on undecoded (`=` means
    /// an empty response).
    Auth {
        /// SASL mechanism name, upper case.
        mechanism: String,
        /// Initial response (base64 or `=`), redacted in `Debug`.
        initial: Option<Secret<String>>,
    },
    /// `BDAT size [LAST]` (RFC 3030). The chunk's `size` octets follow the
    /// command line and must be read (or drained) before the next command.
    Bdat {
        /// Chunk size in octets.
        size: u64,
        /// `LAST` was given.
        last: bool,
    },
    /// `DATA`.
    Data,
    /// `EHLO name`.
    Ehlo(HeloName),
    /// `EXPN list`.
    Expn(String),
    /// `HELO name`.
    Helo(HeloName),
    /// `HELP [topic]`.
    Help(Option<String>),
    /// `LHLO name` (LMTP, RFC 2033).
    Lhlo(HeloName),
    /// `MAIL FROM:<reverse-path> [params]`.
    Mail {
        /// The sender, or the null path `<>`.
        from: Path,
        /// ESMTP parameters.
        params: MailParams,
    },
    /// `NOOP [string]`.
    Noop(Option<String>),
    /// `QUIT`.
    Quit,
    /// `RCPT TO:<forward-path> [params]`. A source route is dropped.
    Rcpt {
        /// The recipient.
        to: Mailbox,
        /// ESMTP parameters.
        params: RcptParams,
    },
    /// `RSET`.
    Rset,
    /// `STARTTLS` (RFC 3207).
    Starttls,
    /// `VRFY string`.
    Vrfy(String),
}

impl Command {
    /// Parses one command line (without CRLF; a trailing CRLF or LF is
    /// tolerated) with default options.
    pub fn parse(line: &[u8]) -> Result<Self, CommandError> {
        Self::parse_with(line, &ParseOptions::default())
    }

    /// Parses one command line with the session's options.
    pub fn parse_with(line: &[u8], opts: &ParseOptions) -> Result<Self, CommandError> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(CommandError::BadSyntax);
        }
        let line = std::str::from_utf8(line).map_err(|_| CommandError::BadUtf8)?;
        let line = line.trim_matches(is_wsp);
        if line.is_empty() {
            return Err(CommandError::BadSyntax);
        }
        let (verb, args) = match line.find(is_wsp) {
            Some(i) => (&line[..i], line[i..].trim_start_matches(is_wsp)),
            None => (line, ""),
        };
        let upper = verb.to_ascii_uppercase();
        match upper.as_str() {
            "AUTH" => parse_auth(args),
            "BDAT" => parse_bdat(args),
            "DATA" => no_args(args, Command::Data, Usage::Data),
            "EHLO" => HeloName::parse(args)
                .map(Command::Ehlo)
                .ok_or(CommandError::Syntax(Usage::Ehlo)),
            "EXPN" => required(args, Usage::Expn).map(Command::Expn),
            "HELO" => HeloName::parse(args)
                .map(Command::Helo)
                .ok_or(CommandError::Syntax(Usage::Helo)),
            "HELP" => Ok(Command::Help(optional(args))),
            "LHLO" => HeloName::parse(args)
                .map(Command::Lhlo)
                .ok_or(CommandError::Syntax(Usage::Lhlo)),
            "MAIL" => parse_mail(args, opts),
            "NOOP" => Ok(Command::Noop(optional(args))),
            "QUIT" => Ok(Command::Quit),
            "RCPT" => parse_rcpt(args, opts),
            "RSET" => no_args(args, Command::Rset, Usage::Rset),
            "STARTTLS" => no_args(args, Command::Starttls, Usage::Starttls),
            "VRFY" => required(args, Usage::Vrfy).map(Command::Vrfy),
            _ if is_non_smtp(verb) => Err(CommandError::NonSmtp),
            _ => Err(CommandError::Unrecognized),
        }
    }

    /// Appends the command line in wire form, with CRLF (the client
    /// side). Addresses and parameters are written in canonical form
    /// (quoting as needed, xtext for ENVID/ORCPT/AUTH=), so parsing the
    /// output gives back an equal command.
    ///
    /// This writes the AUTH initial response in clear: keep encoded
    /// commands out of logs.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let line = match self {
            Self::Auth { mechanism, initial } => match initial {
                Some(initial) => format!("AUTH {mechanism} {}", initial.expose()),
                None => format!("AUTH {mechanism}"),
            },
            Self::Bdat { size, last: true } => format!("BDAT {size} LAST"),
            Self::Bdat { size, last: false } => format!("BDAT {size}"),
            Self::Data => "DATA".to_owned(),
            Self::Ehlo(name) => format!("EHLO {name}"),
            Self::Expn(arg) => format!("EXPN {arg}"),
            Self::Helo(name) => format!("HELO {name}"),
            Self::Help(Some(arg)) => format!("HELP {arg}"),
            Self::Help(None) => "HELP".to_owned(),
            Self::Lhlo(name) => format!("LHLO {name}"),
            Self::Mail { from, params } => {
                format!("MAIL FROM:{from}{}", encode_mail_params(params))
            }
            Self::Noop(Some(arg)) => format!("NOOP {arg}"),
            Self::Noop(None) => "NOOP".to_owned(),
            Self::Quit => "QUIT".to_owned(),
            Self::Rcpt { to, params } => format!("RCPT TO:<{to}>{}", encode_rcpt_params(params)),
            Self::Rset => "RSET".to_owned(),
            Self::Starttls => "STARTTLS".to_owned(),
            Self::Vrfy(arg) => format!("VRFY {arg}"),
        };
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    /// The verb, upper case, for logs (Postfix `state->where`).
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Auth { .. } => "AUTH",
            Self::Bdat { .. } => "BDAT",
            Self::Data => "DATA",
            Self::Ehlo(_) => "EHLO",
            Self::Expn(_) => "EXPN",
            Self::Helo(_) => "HELO",
            Self::Help(_) => "HELP",
            Self::Lhlo(_) => "LHLO",
            Self::Mail { .. } => "MAIL",
            Self::Noop(_) => "NOOP",
            Self::Quit => "QUIT",
            Self::Rcpt { .. } => "RCPT",
            Self::Rset => "RSET",
            Self::Starttls => "STARTTLS",
            Self::Vrfy(_) => "VRFY",
        }
    }
}

fn encode_mail_params(p: &MailParams) -> String {
    let mut out = String::new();
    if let Some(size) = p.size {
        out.push_str(&format!(" SIZE={size}"));
    }
    if let Some(body) = p.body {
        out.push_str(match body {
            Body::SevenBit => " BODY=7BIT",
            Body::EightBitMime => " BODY=8BITMIME",
            Body::BinaryMime => " BODY=BINARYMIME",
        });
    }
    if p.smtputf8 {
        out.push_str(" SMTPUTF8");
    }
    if let Some(ret) = p.ret {
        out.push_str(match ret {
            Ret::Full => " RET=FULL",
            Ret::Hdrs => " RET=HDRS",
        });
    }
    if let Some(envid) = &p.envid {
        out.push_str(&format!(" ENVID={}", xtext::encode(envid.as_bytes())));
    }
    match &p.auth {
        Some(MailAuth::Anonymous) => out.push_str(" AUTH=<>"),
        Some(MailAuth::Identity(id)) => {
            out.push_str(&format!(" AUTH={}", xtext::encode(id.as_bytes())));
        }
        None => {}
    }
    out
}

fn encode_rcpt_params(p: &RcptParams) -> String {
    let mut out = String::new();
    match p.notify {
        Some(Notify::Never) => out.push_str(" NOTIFY=NEVER"),
        Some(Notify::On {
            delay,
            failure,
            success,
        }) => {
            let items: Vec<&str> = [(success, "SUCCESS"), (failure, "FAILURE"), (delay, "DELAY")]
                .into_iter()
                .filter_map(|(on, name)| on.then_some(name))
                .collect();
            out.push_str(&format!(" NOTIFY={}", items.join(",")));
        }
        None => {}
    }
    if let Some(orcpt) = &p.orcpt {
        out.push_str(&format!(" ORCPT={}", orcpt.encode()));
    }
    out
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Postfix `smtpd_forbid_cmds = CONNECT GET POST regexp:{{/^[^A-Z]/ Bogus}}`
/// plus `is_header()`: someone is talking HTTP, or pasting a message.
fn is_non_smtp(verb: &str) -> bool {
    const HTTP: [&str; 7] = ["CONNECT", "GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE"];
    if HTTP.iter().any(|v| verb.eq_ignore_ascii_case(v)) {
        return true;
    }
    if !verb.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return true;
    }
    // A header: field-name ":" (RFC 5322 ftext is printable ASCII but ':').
    match verb.split_once(':') {
        Some((name, _)) => !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b)),
        None => false,
    }
}

fn no_args(args: &str, command: Command, usage: Usage) -> Result<Command, CommandError> {
    if args.is_empty() {
        Ok(command)
    } else {
        Err(CommandError::Syntax(usage))
    }
}

fn required(args: &str, usage: Usage) -> Result<String, CommandError> {
    if args.is_empty() {
        Err(CommandError::Syntax(usage))
    } else {
        Ok(args.to_owned())
    }
}

fn optional(args: &str) -> Option<String> {
    (!args.is_empty()).then(|| args.to_owned())
}

fn parse_auth(args: &str) -> Result<Command, CommandError> {
    let mut words = args.split(is_wsp).filter(|w| !w.is_empty());
    let (Some(mechanism), initial, None) = (words.next(), words.next(), words.next()) else {
        return Err(CommandError::Syntax(Usage::Auth));
    };
    let valid = mechanism.len() <= MAX_MECHANISM
        && mechanism
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(CommandError::Syntax(Usage::Auth));
    }
    Ok(Command::Auth {
        mechanism: mechanism.to_ascii_uppercase(),
        initial: initial.map(|s| Secret::new(s.to_owned())),
    })
}

fn parse_bdat(args: &str) -> Result<Command, CommandError> {
    let mut words = args.split(is_wsp).filter(|w| !w.is_empty());
    let (Some(size), last, None) = (words.next(), words.next(), words.next()) else {
        return Err(CommandError::BadBdat);
    };
    if !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CommandError::BadBdat);
    }
    let size = size.parse::<u64>().map_err(|_| CommandError::BadBdat)?;
    let last = match last {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(CommandError::BadBdat),
    };
    Ok(Command::Bdat { size, last })
}

/// The argument of HELO, EHLO or LHLO.
///
/// Postfix accepts any text here and leaves the judgement to
/// `reject_invalid_helo_hostname` and friends, so the parser classifies
/// rather than rejects. It does reject an empty or overlong argument.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HeloName {
    /// A syntactically valid domain name (this includes a bare dotted
    /// IPv4 address, which is a valid domain by syntax).
    Domain(Domain),
    /// An address literal such as `[192.0.2.1]`.
    Literal(AddressLiteral),
    /// Anything else: a policy decision for the caller.
    Other(String),
}

impl HeloName {
    fn parse(args: &str) -> Option<Self> {
        if args.is_empty() || args.len() > MAX_HELO {
            return None;
        }
        if args.starts_with('[')
            && let Ok(literal) = AddressLiteral::parse(args)
        {
            return Some(Self::Literal(literal));
        }
        if let Ok(domain) = Domain::parse(args, true) {
            return Some(Self::Domain(domain));
        }
        Some(Self::Other(args.to_owned()))
    }
}

impl fmt::Display for HeloName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(d) => d.fmt(f),
            Self::Literal(l) => l.fmt(f),
            Self::Other(s) => f.write_str(s),
        }
    }
}

/// `BODY=` values (RFC 6152, RFC 3030).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Body {
    /// `BODY=7BIT`
    SevenBit,
    /// `BODY=8BITMIME`
    EightBitMime,
    /// `BODY=BINARYMIME` (requires BDAT)
    BinaryMime,
}

/// `RET=` values (RFC 3461 §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    /// Return the full message in a DSN.
    Full,
    /// Return only the headers.
    Hdrs,
}

/// `AUTH=` on MAIL (RFC 4954 §5).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MailAuth {
    /// `AUTH=<>`: the submitter is not known or not trusted.
    Anonymous,
    /// The xtext-decoded identity of the original submitter.
    Identity(String),
}

/// Parameters of MAIL FROM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `AUTH=` (RFC 4954).
    pub auth: Option<MailAuth>,
    /// `BODY=` (RFC 6152).
    pub body: Option<Body>,
    /// `ENVID=`, xtext-decoded, printable ASCII (RFC 3461).
    pub envid: Option<String>,
    /// `RET=` (RFC 3461).
    pub ret: Option<Ret>,
    /// `SIZE=` (RFC 1870).
    pub size: Option<u64>,
    /// `SMTPUTF8` was given (RFC 6531).
    pub smtputf8: bool,
}

/// `NOTIFY=` (RFC 3461 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Notify {
    /// `NOTIFY=NEVER`.
    Never,
    /// Some combination of SUCCESS, FAILURE and DELAY (at least one set).
    On {
        /// `DELAY`
        delay: bool,
        /// `FAILURE`
        failure: bool,
        /// `SUCCESS`
        success: bool,
    },
}

impl Notify {
    /// As the queue keeps it (Postfix `DSN_NOTIFY_*`): never 1, success 2,
    /// delay 4, failure 8.
    pub fn bits(self) -> u8 {
        match self {
            Notify::Never => 1,
            Notify::On {
                delay,
                failure,
                success,
            } => u8::from(success) * 2 + u8::from(delay) * 4 + u8::from(failure) * 8,
        }
    }
}

/// `ORCPT=addr-type;xtext` (RFC 3461 §4.2), decoded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Orcpt {
    /// Address type as sent (`rfc822`, `utf-8`, ...).
    pub addr_type: String,
    /// The decoded original recipient.
    pub address: String,
}

impl Orcpt {
    /// Encodes for relaying: `rfc822;` + xtext, or for `utf-8` the
    /// RFC 6533 `\x{HEX}` form (which is also valid xtext).
    pub fn encode(&self) -> String {
        if self.addr_type.eq_ignore_ascii_case("utf-8") {
            let mut out = format!("{};", self.addr_type);
            for c in self.address.chars() {
                if c.is_ascii_graphic() && !matches!(c, '+' | '=' | '\\') {
                    out.push(c);
                } else {
                    out.push_str(&format!("\\x{{{:X}}}", u32::from(c)));
                }
            }
            out
        } else {
            format!(
                "{};{}",
                self.addr_type,
                xtext::encode(self.address.as_bytes())
            )
        }
    }
}

/// Parameters of RCPT TO.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RcptParams {
    /// `NOTIFY=` (RFC 3461).
    pub notify: Option<Notify>,
    /// `ORCPT=` (RFC 3461).
    pub orcpt: Option<Orcpt>,
}

/// Which parameter had bad syntax; selects Postfix's reply text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Param {
    /// MAIL `AUTH=`
    Auth,
    /// MAIL `ENVID=`
    Envid,
    /// RCPT `NOTIFY=`
    Notify,
    /// RCPT `ORCPT=`
    Orcpt,
    /// MAIL `RET=`
    Ret,
    /// MAIL `SIZE=`
    Size,
}

/// The usage text a `501 Syntax:` reply shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Usage {
    /// `AUTH mechanism`
    Auth,
    /// `DATA`
    Data,
    /// `EHLO hostname`
    Ehlo,
    /// `EXPN mailing-list`
    Expn,
    /// `HELO hostname`
    Helo,
    /// `LHLO hostname`
    Lhlo,
    /// `MAIL FROM:<address>`
    Mail,
    /// `RCPT TO:<address>`
    Rcpt,
    /// `RSET`
    Rset,
    /// `STARTTLS`
    Starttls,
    /// `VRFY address`
    Vrfy,
}

impl Usage {
    fn text(self) -> &'static str {
        match self {
            Self::Auth => "AUTH mechanism",
            Self::Data => "DATA",
            Self::Ehlo => "EHLO hostname",
            Self::Expn => "EXPN mailing-list",
            Self::Helo => "HELO hostname",
            Self::Lhlo => "LHLO hostname",
            Self::Mail => "MAIL FROM:<address>",
            Self::Rcpt => "RCPT TO:<address>",
            Self::Rset => "RSET",
            Self::Starttls => "STARTTLS",
            Self::Vrfy => "VRFY address",
        }
    }
}

/// Why a command line was rejected. [`CommandError::reply`] gives the
/// reply to send; if that reply [closes the
/// connection](Reply::closes_connection) (`NonSmtp`, `BadBdat`), the
/// server must hang up after sending it.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Malformed BDAT: the chunk size is unknown, so the command stream
    /// cannot be resynchronised. `521 5.5.4 Syntax: BDAT count [LAST]`,
    /// then disconnect (Postfix does the same).
    #[error("malformed BDAT command")]
    BadBdat,
    /// A parameter value is malformed (`501 5.5.4 Bad ... syntax`).
    #[error("bad {0:?} parameter syntax")]
    BadParameter(Param),
    /// The RCPT address is malformed (`501 5.1.3`).
    #[error("bad recipient address: {0}")]
    BadRecipient(AddressError),
    /// The MAIL address is malformed (`501 5.1.7`).
    #[error("bad sender address: {0}")]
    BadSender(AddressError),
    /// Empty line or control characters (`500 5.5.2 Error: bad syntax`).
    #[error("bad syntax")]
    BadSyntax,
    /// Not UTF-8 (`500 5.5.2 Error: bad UTF-8 syntax`).
    #[error("bad UTF-8 syntax")]
    BadUtf8,
    /// A header line or HTTP request instead of a command: reply 221 and
    /// hang up.
    #[error("non-SMTP command")]
    NonSmtp,
    /// The SIZE value does not fit in 64 bits
    /// (`552 5.3.4 Message size exceeds file system imposed limit`).
    #[error("SIZE value overflows")]
    SizeOverflow,
    /// Wrong arguments for the verb (`501 [5.5.4] Syntax: ...`).
    #[error("syntax: {}", .0.text())]
    Syntax(Usage),
    /// More than [`ParseOptions::max_params`] parameters, or one longer
    /// than [`MAX_PARAM_LEN`].
    #[error("too many or too long parameters")]
    TooManyParameters,
    /// Unknown verb (`502 5.5.2 Error: command not recognized`).
    #[error("command not recognized")]
    Unrecognized,
    /// An unknown or duplicated parameter
    /// (`555 5.5.4 Unsupported option: ...`).
    #[error("unsupported option: {0}")]
    UnsupportedOption(String),
    /// A UTF-8 address without SMTPUTF8 on MAIL
    /// (`553 5.6.7 Must declare SMTPUTF8 to send unicode address`).
    #[error("UTF-8 address without SMTPUTF8")]
    Utf8NotDeclared,
}

impl CommandError {
    /// The reply to send, worded as Postfix words it.
    pub fn reply(&self) -> Reply {
        let syntax = |text: &str| Reply::with_status(501, EnhancedStatus::new(5, 5, 4), text);
        match self {
            Self::BadBdat => Reply::with_status(
                521,
                EnhancedStatus::new(5, 5, 4),
                "Syntax: BDAT count [LAST]",
            ),
            Self::BadParameter(param) => syntax(match param {
                Param::Auth => "Bad AUTH parameter syntax",
                Param::Envid => "Bad ENVID parameter syntax",
                Param::Notify => "Error: Bad NOTIFY parameter syntax",
                Param::Orcpt => "Error: Bad ORCPT parameter syntax",
                Param::Ret => "Bad RET parameter syntax",
                Param::Size => "Bad message size syntax",
            }),
            Self::BadRecipient(_) => Reply::with_status(
                501,
                EnhancedStatus::new(5, 1, 3),
                "Bad recipient address syntax",
            ),
            Self::BadSender(_) => Reply::with_status(
                501,
                EnhancedStatus::new(5, 1, 7),
                "Bad sender address syntax",
            ),
            Self::BadSyntax => standard::bad_syntax(),
            Self::BadUtf8 => standard::bad_utf8(),
            Self::NonSmtp => standard::non_smtp_command(),
            Self::SizeOverflow => Reply::with_status(
                552,
                EnhancedStatus::new(5, 3, 4),
                "Message size exceeds file system imposed limit",
            ),
            // RFC 2034: no status code in replies to HELO/EHLO.
            Self::Syntax(usage @ (Usage::Helo | Usage::Ehlo | Usage::Lhlo)) => {
                Reply::new(501, None, format!("Syntax: {}", usage.text()))
            }
            Self::Syntax(usage) => syntax(&format!("Syntax: {}", usage.text())),
            Self::TooManyParameters => syntax("Error: too many parameters"),
            Self::Unrecognized => standard::unrecognized(),
            Self::UnsupportedOption(param) => standard::unsupported_option(param),
            Self::Utf8NotDeclared => standard::smtputf8_required(),
        }
    }
}

/// Which address is being parsed, for error mapping.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Recipient,
    Sender,
}

/// Splits `FROM:<path> params` into the path text (with brackets, if any)
/// and the parameter text. `prefix` is `FROM:` or `TO:`.
fn split_path<'a>(
    args: &'a str,
    prefix: &str,
    usage: Usage,
    role: Role,
    opts: &ParseOptions,
) -> Result<(&'a str, &'a str), CommandError> {
    let bad = |e| match role {
        Role::Sender => CommandError::BadSender(e),
        Role::Recipient => CommandError::BadRecipient(e),
    };
    let head = args
        .get(..prefix.len())
        .ok_or(CommandError::Syntax(usage))?;
    if !head.eq_ignore_ascii_case(prefix) {
        return Err(CommandError::Syntax(usage));
    }
    let rest = args[prefix.len()..].trim_start_matches(is_wsp);
    if rest.is_empty() {
        return Err(CommandError::Syntax(usage));
    }
    if rest.starts_with('<') {
        let (inner, after) = address::split_bracketed(rest).map_err(bad)?;
        if !after.is_empty() && !after.starts_with(is_wsp) {
            return Err(bad(AddressError::BadPath));
        }
        Ok((inner, after))
    } else if opts.strict_rfc821_envelopes {
        Err(bad(AddressError::BadPath))
    } else {
        Ok(rest.split_at(rest.find(is_wsp).unwrap_or(rest.len())))
    }
}

/// Splits the parameter text into words, enforcing the caps.
fn param_words<'a>(text: &'a str, opts: &ParseOptions) -> Result<Vec<&'a str>, CommandError> {
    let mut words = Vec::new();
    for word in text.split(is_wsp).filter(|w| !w.is_empty()) {
        if words.len() >= opts.max_params || word.len() > MAX_PARAM_LEN {
            return Err(CommandError::TooManyParameters);
        }
        words.push(word);
    }
    Ok(words)
}

fn parse_mail(args: &str, opts: &ParseOptions) -> Result<Command, CommandError> {
    let (path, rest) = split_path(args, "FROM:", Usage::Mail, Role::Sender, opts)?;
    let words = param_words(rest, opts)?;
    // The address is checked before the parameters, as Postfix does, but
    // whether UTF-8 is allowed depends on a parameter.
    let utf8 = words.iter().any(|w| w.eq_ignore_ascii_case("SMTPUTF8"));
    let from = if path.is_empty() {
        Path::Null
    } else {
        let mailbox = address::parse_path_inner(path, utf8).map_err(|e| match e {
            AddressError::Utf8NotAllowed => CommandError::Utf8NotDeclared,
            e => CommandError::BadSender(e),
        })?;
        if mailbox.domain().is_none() && !opts.allow_unqualified {
            return Err(CommandError::BadSender(AddressError::MissingDomain));
        }
        Path::Mailbox(mailbox)
    };
    let params = parse_mail_params(&words)?;
    Ok(Command::Mail { from, params })
}

fn parse_rcpt(args: &str, opts: &ParseOptions) -> Result<Command, CommandError> {
    let (path, rest) = split_path(args, "TO:", Usage::Rcpt, Role::Recipient, opts)?;
    let to = address::parse_path_inner(path, opts.smtputf8).map_err(|e| match e {
        AddressError::Utf8NotAllowed => CommandError::Utf8NotDeclared,
        e => CommandError::BadRecipient(e),
    })?;
    if to.domain().is_none() && !opts.allow_unqualified && !to.is_bare_postmaster() {
        return Err(CommandError::BadRecipient(AddressError::MissingDomain));
    }
    let params = parse_rcpt_params(&param_words(rest, opts)?)?;
    Ok(Command::Rcpt { to, params })
}

/// Splits `KEY=value` into an upper-case key and the value.
fn split_param(word: &str) -> (String, Option<&str>) {
    match word.split_once('=') {
        Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
        None => (word.to_ascii_uppercase(), None),
    }
}

fn unsupported(word: &str) -> CommandError {
    CommandError::UnsupportedOption(word.to_owned())
}

fn parse_mail_params(words: &[&str]) -> Result<MailParams, CommandError> {
    let mut p = MailParams::default();
    for &word in words {
        let (key, value) = split_param(word);
        match (key.as_str(), value) {
            ("SIZE", value) => {
                let digits =
                    value.filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
                let Some(digits) = digits else {
                    return Err(CommandError::BadParameter(Param::Size));
                };
                if p.size.is_some() {
                    return Err(CommandError::BadParameter(Param::Size));
                }
                p.size = Some(digits.parse().map_err(|_| CommandError::SizeOverflow)?);
            }
            ("BODY", Some(v)) if p.body.is_none() => {
                p.body = Some(match v.to_ascii_uppercase().as_str() {
                    "7BIT" => Body::SevenBit,
                    "8BITMIME" => Body::EightBitMime,
                    "BINARYMIME" => Body::BinaryMime,
                    _ => return Err(unsupported(word)),
                });
            }
            ("SMTPUTF8", None) if !p.smtputf8 => p.smtputf8 = true,
            ("RET", v) => {
                let ret = match v.map(str::to_ascii_uppercase).as_deref() {
                    Some("FULL") => Ret::Full,
                    Some("HDRS") => Ret::Hdrs,
                    _ => return Err(CommandError::BadParameter(Param::Ret)),
                };
                if p.ret.replace(ret).is_some() {
                    return Err(CommandError::BadParameter(Param::Ret));
                }
            }
            ("ENVID", v) => {
                let envid = v
                    .and_then(|v| xtext::decode(v).ok())
                    .filter(|d| !d.is_empty() && d.len() <= MAX_ENVID)
                    .filter(|d| d.iter().all(|b| (0x20..=0x7e).contains(b)))
                    .and_then(|d| String::from_utf8(d).ok())
                    .ok_or(CommandError::BadParameter(Param::Envid))?;
                if p.envid.replace(envid).is_some() {
                    return Err(CommandError::BadParameter(Param::Envid));
                }
            }
            ("AUTH", v) => {
                let auth = match v {
                    Some("<>") => MailAuth::Anonymous,
                    v => v
                        .and_then(|v| xtext::decode(v).ok())
                        .filter(|d| !d.is_empty())
                        .and_then(|d| String::from_utf8(d).ok())
                        .filter(|s| !s.chars().any(char::is_control))
                        .map(MailAuth::Identity)
                        .ok_or(CommandError::BadParameter(Param::Auth))?,
                };
                if p.auth.replace(auth).is_some() {
                    return Err(CommandError::BadParameter(Param::Auth));
                }
            }
            _ => return Err(unsupported(word)),
        }
    }
    Ok(p)
}

fn parse_rcpt_params(words: &[&str]) -> Result<RcptParams, CommandError> {
    let mut p = RcptParams::default();
    for &word in words {
        let (key, value) = split_param(word);
        match key.as_str() {
            "NOTIFY" => {
                let notify = value
                    .and_then(parse_notify)
                    .ok_or(CommandError::BadParameter(Param::Notify))?;
                if p.notify.replace(notify).is_some() {
                    return Err(CommandError::BadParameter(Param::Notify));
                }
            }
            "ORCPT" => {
                let orcpt = value
                    .and_then(parse_orcpt)
                    .ok_or(CommandError::BadParameter(Param::Orcpt))?;
                if p.orcpt.replace(orcpt).is_some() {
                    return Err(CommandError::BadParameter(Param::Orcpt));
                }
            }
            _ => return Err(unsupported(word)),
        }
    }
    Ok(p)
}

fn parse_notify(value: &str) -> Option<Notify> {
    if value.eq_ignore_ascii_case("NEVER") {
        return Some(Notify::Never);
    }
    let (mut success, mut failure, mut delay) = (false, false, false);
    for item in value.split(',') {
        match item.to_ascii_uppercase().as_str() {
            "SUCCESS" => success = true,
            "FAILURE" => failure = true,
            "DELAY" => delay = true,
            _ => return None,
        }
    }
    Some(Notify::On {
        delay,
        failure,
        success,
    })
}

fn parse_orcpt(value: &str) -> Option<Orcpt> {
    if value.len() > MAX_ORCPT {
        return None;
    }
    let (addr_type, encoded) = value.split_once(';')?;
    let type_ok = !addr_type.is_empty()
        && addr_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !type_ok || encoded.is_empty() {
        return None;
    }
    let address = if addr_type.eq_ignore_ascii_case("utf-8") {
        decode_utf8_addr(encoded)?
    } else {
        String::from_utf8(xtext::decode(encoded).ok()?).ok()?
    };
    if address.chars().any(char::is_control) {
        return None;
    }
    Some(Orcpt {
        addr_type: addr_type.to_owned(),
        address,
    })
}

/// RFC 6533 `utf-8-addr-xtext` / `utf-8-addr-unitext`: printable ASCII
/// except `+ = \`, raw UTF-8, and `\x{HEXPOINT}` escapes.
fn decode_utf8_addr(encoded: &str) -> Option<String> {
    let mut out = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(c) = rest.chars().next() {
        if c == '\\' {
            let hex = rest.strip_prefix("\\x{")?;
            let end = hex.find('}')?;
            let digits = &hex[..end];
            if digits.is_empty()
                || digits.len() > 6
                || !digits.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return None;
            }
            out.push(char::from_u32(u32::from_str_radix(digits, 16).ok()?)?);
            rest = &hex[end + 1..];
        } else if (c.is_ascii_graphic() && c != '+' && c != '=') || !c.is_ascii() {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        } else {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Host;

    fn parse(line: &str) -> Result<Command, CommandError> {
        Command::parse(line.as_bytes())
    }

    fn reply_line(line: &str) -> String {
        let err = parse(line).unwrap_err();
        String::from_utf8(err.reply().to_bytes()).unwrap()
    }

    fn mailbox(s: &str) -> Mailbox {
        Mailbox::parse(s, true).unwrap()
    }

    #[test]
    fn simple_verbs_any_case() {
        assert_eq!(parse("DATA"), Ok(Command::Data));
        assert_eq!(parse("data\r\n"), Ok(Command::Data));
        assert_eq!(parse("rSeT"), Ok(Command::Rset));
        assert_eq!(parse("QUIT now"), Ok(Command::Quit));
        assert_eq!(parse("NOOP"), Ok(Command::Noop(None)));
        assert_eq!(
            parse("NOOP hello there"),
            Ok(Command::Noop(Some("hello there".into())))
        );
        assert_eq!(parse("HELP mail"), Ok(Command::Help(Some("mail".into()))));
        assert_eq!(parse("StartTLS"), Ok(Command::Starttls));
        assert_eq!(
            parse("VRFY postmaster"),
            Ok(Command::Vrfy("postmaster".into()))
        );
        assert_eq!(parse("EXPN staff"), Ok(Command::Expn("staff".into())));
        assert_eq!(parse("  DATA  "), Ok(Command::Data));
    }

    #[test]
    fn helo_names() {
        assert_eq!(
            parse("EHLO mail.example.com"),
            Ok(Command::Ehlo(HeloName::Domain(
                Domain::parse("mail.example.com", false).unwrap()
            )))
        );
        assert!(matches!(
            parse("HELO [192.0.2.1]"),
            Ok(Command::Helo(HeloName::Literal(_)))
        ));
        assert!(matches!(
            parse("LHLO localhost"),
            Ok(Command::Lhlo(HeloName::Domain(_)))
        ));
        assert_eq!(
            parse("EHLO my_pc two"),
            Ok(Command::Ehlo(HeloName::Other("my_pc two".into())))
        );
        assert_eq!(reply_line("EHLO"), "501 Syntax: EHLO hostname\r\n");
        assert_eq!(reply_line("HELO   "), "501 Syntax: HELO hostname\r\n");
        assert!(parse(&format!("EHLO {}", "a".repeat(300))).is_err());
    }

    #[test]
    fn mail_from_forms() {
        let Ok(Command::Mail { from, params }) = parse("MAIL FROM:<user@example.com>") else {
            panic!()
        };
        assert_eq!(from, Path::Mailbox(mailbox("user@example.com")));
        assert_eq!(params, MailParams::default());
        // Postfix leniency: space after the colon, lower case, no brackets.
        for line in [
            "MAIL FROM: <user@example.com>",
            "mail from:<user@example.com>",
            "MAIL FROM:user@example.com",
            "MAIL\tFROM:\t<user@example.com>  ",
        ] {
            assert!(matches!(parse(line), Ok(Command::Mail { .. })), "{line}");
        }
        assert!(matches!(
            parse("MAIL FROM:<>"),
            Ok(Command::Mail {
                from: Path::Null,
                ..
            })
        ));
        let Ok(Command::Mail { from, .. }) = parse("MAIL FROM:<@a.example,@b.example:u@c.example>")
        else {
            panic!()
        };
        assert_eq!(from.to_string(), "<u@c.example>");
    }

    #[test]
    fn mail_syntax_errors() {
        assert_eq!(
            reply_line("MAIL"),
            "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
        );
        assert_eq!(
            reply_line("MAIL TO:<a@b>"),
            "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
        );
        assert_eq!(
            reply_line("MAIL FROM:"),
            "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
        );
        assert_eq!(
            reply_line("MAIL FROM:<a@b"),
            "501 5.1.7 Bad sender address syntax\r\n"
        );
        assert_eq!(
            reply_line("MAIL FROM:<a@b>x"),
            "501 5.1.7 Bad sender address syntax\r\n"
        );
        assert_eq!(
            reply_line("MAIL FROM:<user>"),
            "501 5.1.7 Bad sender address syntax\r\n"
        );
        assert_eq!(
            reply_line("MAIL FROM:<a b@c>"),
            "501 5.1.7 Bad sender address syntax\r\n"
        );
        let strict = ParseOptions {
            strict_rfc821_envelopes: true,
            ..ParseOptions::default()
        };
        assert_eq!(
            Command::parse_with(b"MAIL FROM:a@b.c", &strict),
            Err(CommandError::BadSender(AddressError::BadPath))
        );
    }

    #[test]
    fn mail_params() {
        let Ok(Command::Mail { params, .. }) = parse(
            "MAIL FROM:<a@b.example> SIZE=12345 BODY=8bitmime RET=HDRS ENVID=QQ314159+2B AUTH=<>",
        ) else {
            panic!()
        };
        assert_eq!(
            params,
            MailParams {
                auth: Some(MailAuth::Anonymous),
                body: Some(Body::EightBitMime),
                envid: Some("QQ314159+".into()),
                ret: Some(Ret::Hdrs),
                size: Some(12345),
                smtputf8: false,
            }
        );
        let Ok(Command::Mail { params, .. }) =
            parse("MAIL FROM:<a@b.example> AUTH=e+2Bf@example.com BODY=BINARYMIME")
        else {
            panic!()
        };
        assert_eq!(
            params.auth,
            Some(MailAuth::Identity("e+f@example.com".into()))
        );
        assert_eq!(params.body, Some(Body::BinaryMime));
    }

    #[test]
    fn mail_param_errors() {
        let cases = [
            ("SIZE=abc", "501 5.5.4 Bad message size syntax"),
            ("SIZE=", "501 5.5.4 Bad message size syntax"),
            ("SIZE", "501 5.5.4 Bad message size syntax"),
            (
                "SIZE=99999999999999999999999",
                "552 5.3.4 Message size exceeds file system imposed limit",
            ),
            ("RET=ALL", "501 5.5.4 Bad RET parameter syntax"),
            ("RET=FULL RET=FULL", "501 5.5.4 Bad RET parameter syntax"),
            ("ENVID=a=b", "501 5.5.4 Bad ENVID parameter syntax"),
            ("ENVID=+0A", "501 5.5.4 Bad ENVID parameter syntax"),
            ("AUTH=+zz", "501 5.5.4 Bad AUTH parameter syntax"),
            ("BODY=9BIT", "555 5.5.4 Unsupported option: BODY=9BIT"),
            ("SMTPUTF8=yes", "555 5.5.4 Unsupported option: SMTPUTF8=yes"),
            ("XFOO=1", "555 5.5.4 Unsupported option: XFOO=1"),
            ("NOTIFY=NEVER", "555 5.5.4 Unsupported option: NOTIFY=NEVER"),
        ];
        for (param, want) in cases {
            let got = reply_line(&format!("MAIL FROM:<a@b.example> {param}"));
            assert_eq!(got, format!("{want}\r\n"), "{param}");
        }
        let many = format!("MAIL FROM:<a@b.example>{}", " SMTPUTF8".repeat(20));
        assert_eq!(parse(&many), Err(CommandError::TooManyParameters));
    }

    #[test]
    fn smtputf8_rules() {
        assert_eq!(
            reply_line("MAIL FROM:<jos\u{e9}@example.com>"),
            "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n"
        );
        let Ok(Command::Mail { from, params }) =
            parse("MAIL FROM:<jos\u{e9}@b\u{fc}cher.example> SMTPUTF8")
        else {
            panic!()
        };
        assert!(params.smtputf8);
        assert!(!from.mailbox().unwrap().is_ascii());
        assert_eq!(
            parse("RCPT TO:<\u{e9}@x.example>"),
            Err(CommandError::Utf8NotDeclared)
        );
        let opts = ParseOptions {
            smtputf8: true,
            ..ParseOptions::default()
        };
        assert!(Command::parse_with("RCPT TO:<\u{e9}@x.example>".as_bytes(), &opts).is_ok());
        assert_eq!(Command::parse(b"NOOP \xff"), Err(CommandError::BadUtf8));
    }

    #[test]
    fn rcpt_forms_and_params() {
        let Ok(Command::Rcpt { to, params }) = parse(
            "RCPT TO:<\"john q\"@[IPv6:2001:db8::1]> NOTIFY=SUCCESS,delay ORCPT=rfc822;john+20q@example.org",
        ) else {
            panic!()
        };
        assert_eq!(to.local_part(), "john q");
        assert!(matches!(
            to.domain(),
            Some(Host::Literal(AddressLiteral::Ipv6(_)))
        ));
        assert_eq!(
            params.notify,
            Some(Notify::On {
                delay: true,
                failure: false,
                success: true
            })
        );
        let orcpt = params.orcpt.unwrap();
        assert_eq!(orcpt.address, "john q@example.org");
        assert_eq!(orcpt.encode(), "rfc822;john+20q@example.org");
        let Ok(Command::Rcpt { to, .. }) = parse("RCPT TO:<Postmaster>") else {
            panic!()
        };
        assert!(to.is_bare_postmaster());
        let Ok(Command::Rcpt { params, .. }) =
            parse("RCPT TO:<a@b.c> ORCPT=utf-8;j\\x{E9}r\\x{F4}me@example.org NOTIFY=never")
        else {
            panic!()
        };
        let orcpt = params.orcpt.unwrap();
        assert_eq!(orcpt.address, "j\u{e9}r\u{f4}me@example.org");
        assert_eq!(orcpt.encode(), "utf-8;j\\x{E9}r\\x{F4}me@example.org");
        assert_eq!(params.notify, Some(Notify::Never));
    }

    #[test]
    fn rcpt_errors() {
        let cases = [
            ("RCPT", "501 5.5.4 Syntax: RCPT TO:<address>"),
            ("RCPT FROM:<a@b.c>", "501 5.5.4 Syntax: RCPT TO:<address>"),
            ("RCPT TO:<>", "501 5.1.3 Bad recipient address syntax"),
            ("RCPT TO:<user>", "501 5.1.3 Bad recipient address syntax"),
            (
                "RCPT TO:<a@b.c> NOTIFY=NEVER,SUCCESS",
                "501 5.5.4 Error: Bad NOTIFY parameter syntax",
            ),
            (
                "RCPT TO:<a@b.c> NOTIFY=",
                "501 5.5.4 Error: Bad NOTIFY parameter syntax",
            ),
            (
                "RCPT TO:<a@b.c> ORCPT=rfc822",
                "501 5.5.4 Error: Bad ORCPT parameter syntax",
            ),
            (
                "RCPT TO:<a@b.c> ORCPT=;x@y",
                "501 5.5.4 Error: Bad ORCPT parameter syntax",
            ),
            (
                "RCPT TO:<a@b.c> ORCPT=rfc822;a+zz",
                "501 5.5.4 Error: Bad ORCPT parameter syntax",
            ),
            (
                "RCPT TO:<a@b.c> SIZE=1",
                "555 5.5.4 Unsupported option: SIZE=1",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(reply_line(line), format!("{want}\r\n"), "{line}");
        }
        let lax = ParseOptions {
            allow_unqualified: true,
            ..ParseOptions::default()
        };
        assert!(Command::parse_with(b"RCPT TO:<user>", &lax).is_ok());
    }

    #[test]
    fn bdat() {
        assert_eq!(
            parse("BDAT 1000"),
            Ok(Command::Bdat {
                size: 1000,
                last: false
            })
        );
        assert_eq!(
            parse("bdat 0 last"),
            Ok(Command::Bdat {
                size: 0,
                last: true
            })
        );
        for bad in [
            "BDAT",
            "BDAT x",
            "BDAT -1",
            "BDAT 10 FIRST",
            "BDAT 1 LAST x",
            "BDAT 99999999999999999999999",
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err, CommandError::BadBdat, "{bad}");
            assert!(err.reply().closes_connection());
        }
        assert_eq!(
            reply_line("BDAT x"),
            "521 5.5.4 Syntax: BDAT count [LAST]\r\n"
        );
    }

    #[test]
    fn auth() {
        let Ok(Command::Auth { mechanism, initial }) = parse("AUTH plain AGFsaWNlAHNlY3JldA==")
        else {
            panic!()
        };
        assert_eq!(mechanism, "PLAIN");
        assert_eq!(initial.unwrap().expose(), "AGFsaWNlAHNlY3JldA==");
        assert!(!format!("{:?}", parse("AUTH PLAIN AGFsaWNl")).contains("AGFsaWNl"));
        assert_eq!(reply_line("AUTH"), "501 5.5.4 Syntax: AUTH mechanism\r\n");
        assert_eq!(
            reply_line("AUTH a b c"),
            "501 5.5.4 Syntax: AUTH mechanism\r\n"
        );
    }

    #[test]
    fn argument_checks() {
        assert_eq!(reply_line("DATA now"), "501 5.5.4 Syntax: DATA\r\n");
        assert_eq!(reply_line("RSET x"), "501 5.5.4 Syntax: RSET\r\n");
        assert_eq!(reply_line("STARTTLS x"), "501 5.5.4 Syntax: STARTTLS\r\n");
        assert_eq!(reply_line("VRFY"), "501 5.5.4 Syntax: VRFY address\r\n");
    }

    #[test]
    fn encode_is_canonical_and_round_trips() {
        let cases = [
            (
                "mail from: <@r.example:A@B.example> size=10 body=8bitmime ret=full envid=x+2By auth=a+3Db smtputf8",
                "MAIL FROM:<A@B.example> SIZE=10 BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=x+2By AUTH=a+3Db",
            ),
            (
                "RCPT TO:<\"a b\"@[1.2.3.4]> notify=delay,success ORCPT=rfc822;a+20b@x",
                "RCPT TO:<\"a b\"@[1.2.3.4]> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+20b@x",
            ),
            (
                "RCPT TO:<x@y.z> ORCPT=UTF-8;\u{e9}@x",
                "RCPT TO:<x@y.z> ORCPT=UTF-8;\\x{E9}@x",
            ),
            ("bdat 7 last", "BDAT 7 LAST"),
            ("auth plain =", "AUTH PLAIN ="),
            ("ehlo [IPv6:0::1]", "EHLO [IPv6:::1]"),
            ("MAIL FROM:<>", "MAIL FROM:<>"),
        ];
        for (input, canonical) in cases {
            let command = parse(input).unwrap();
            let mut wire = Vec::new();
            command.encode(&mut wire);
            assert_eq!(
                String::from_utf8(wire.clone()).unwrap(),
                format!("{canonical}\r\n")
            );
            assert_eq!(Command::parse(&wire), Ok(command), "{input}");
        }
    }

    #[test]
    fn junk() {
        assert_eq!(reply_line(""), "500 5.5.2 Error: bad syntax\r\n");
        assert_eq!(reply_line("   "), "500 5.5.2 Error: bad syntax\r\n");
        assert_eq!(reply_line("NOOP\0"), "500 5.5.2 Error: bad syntax\r\n");
        assert_eq!(reply_line("NOOP a\rb"), "500 5.5.2 Error: bad syntax\r\n");
        assert_eq!(
            reply_line("XYZZY"),
            "502 5.5.2 Error: command not recognized\r\n"
        );
        for line in [
            "GET / HTTP/1.1",
            "CONNECT x:25",
            "Subject: hi",
            "From:<a@b>",
            "123 go",
        ] {
            let err = parse(line).unwrap_err();
            assert_eq!(err, CommandError::NonSmtp, "{line}");
            assert!(err.reply().closes_connection());
        }
    }
}
