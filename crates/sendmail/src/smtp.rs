//! `sendmail -bs`: an SMTP session on standard input and output (Postfix
//! runs `smtpd -S` for this).
//!
//! The session is the sans-I/O [`postern_smtp_proto`] engine with a small
//! policy: the user is local and trusted as much as with plain
//! `sendmail` (any sender, unqualified addresses allowed, no relay
//! checks), and every message goes through postdrop(1) exactly like the
//! normal path, so `250 2.0.0 Ok: queued as ID` names the maildrop file.
//!
//! Input may use bare `<LF>` line endings (people type at this, scripts
//! pipe into it): they are read as `<CR><LF>`. That is harmless here,
//! because the "SMTP smuggling" concern does not apply to a user who may
//! submit any message anyway. Message content is stored with `<LF>` line
//! endings, as the normal sendmail path stores it.

use std::io::{self, Read, Write};

use postern_smtp_proto::reply::{ehlo, standard};
use postern_smtp_proto::{
    Body, Command, DataOptions, DataProgress, DataReceiver, Extension, Mailbox, Notify,
    ParseOptions, Path as SmtpPath, Protocol, Reply, RequestReceiver, Ret, Session,
};
use postern_wire::content::LineSplitter;

use crate::enqueue::{Envelope, Postdrop};
use crate::exit::{EX_DATAERR, EX_TEMPFAIL, EX_UNAVAILABLE, Fatal};

/// What the session needs to know.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `myhostname`.
    pub(crate) hostname: String,
    /// `smtpd_banner` (the greeting text after `220 `).
    pub(crate) banner: String,
    /// `message_size_limit`; 0 = none.
    pub(crate) size_limit: u64,
    /// `smtpd_recipient_limit`; 0 = none.
    pub(crate) recipient_limit: usize,
    /// The full name of the user, for cleanup's `From:`.
    pub(crate) full_name: Option<String>,
}

/// Submits one message; the SMTP session is independent of how.
pub(crate) trait Submit {
    /// Queues a message with `content` (`<LF>` line endings) and returns
    /// the queue id.
    fn submit(&mut self, envelope: &Envelope, content: &[u8]) -> Result<String, Fatal>;
}

/// Submission through postdrop.
pub(crate) struct ViaPostdrop<'a> {
    /// postdrop's path.
    pub(crate) program: &'a std::path::Path,
    /// `-c` to pass on.
    pub(crate) config_dir: Option<&'a std::path::Path>,
    /// `-v` to pass on.
    pub(crate) verbose: bool,
    /// Content record size.
    pub(crate) line_limit: usize,
}

impl Submit for ViaPostdrop<'_> {
    fn submit(&mut self, envelope: &Envelope, content: &[u8]) -> Result<String, Fatal> {
        let mut pd = Postdrop::start(self.program, self.config_dir, self.verbose)?;
        pd.envelope(envelope)?;
        let mut splitter = LineSplitter::new(self.line_limit);
        splitter.feed(content, |kind, data| pd.put(kind, data))?;
        splitter.finish(|kind, data| pd.put(kind, data))?;
        pd.finish()
    }
}

/// `<CR><LF>` → `<LF>`, for storage.
fn crlf_to_lf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while let Some(&b) = data.get(i) {
        if b == b'\r' && data.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Bare `<LF>` → `<CR><LF>`, remembering a `<CR>` at the end of the
/// previous chunk.
fn lf_to_crlf(data: &[u8], last_cr: &mut bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    for &b in data {
        if b == b'\n' && !*last_cr {
            out.push(b'\r');
        }
        out.push(b);
        *last_cr = b == b'\r';
    }
    out
}

/// The internal form of an SMTP path (empty for the null sender).
fn internal(path: &SmtpPath) -> String {
    path.mailbox().map(Mailbox::internal).unwrap_or_default()
}

/// The reply for a failed submission (Postfix `cleanup_stat_detail`).
fn failure_reply(f: &Fatal) -> Reply {
    let status = |c, s, d| postern_smtp_proto::EnhancedStatus::new(c, s, d);
    match f.code {
        EX_UNAVAILABLE if f.text.contains("too big") => standard::message_too_big(),
        EX_DATAERR => Reply::with_status(554, status(5, 6, 0), format!("Error: {}", f.text)),
        EX_TEMPFAIL => standard::queue_write_error(),
        _ => Reply::with_status(451, status(4, 3, 0), format!("Error: {}", f.text)),
    }
}

/// One session: greeting, commands, messages, until QUIT or end of input.
pub(crate) fn session<R: Read, W: Write>(
    settings: &Settings,
    submit: &mut dyn Submit,
    mut input: R,
    mut output: W,
) -> io::Result<()> {
    let mut requests = RequestReceiver::default();
    let mut session = Session::new(Protocol::Smtp);
    let mut envelope = Envelope::default();
    let mut last_cr = false;
    let mut chunk = vec![0u8; 64 * 1024];
    let greeting = Reply::new(220, None, settings.banner.clone());
    output.write_all(&greeting.to_bytes())?;
    output.flush()?;
    let opts_base = ParseOptions {
        allow_unqualified: true,
        ..ParseOptions::default()
    };
    loop {
        // Answer every complete command line.
        let mut data_started = false;
        while let Some(line) = requests.next_line() {
            let reply = match line {
                Err(e) => e.reply(),
                Ok(line) => {
                    let opts = ParseOptions {
                        smtputf8: session.smtputf8(),
                        ..opts_base
                    };
                    match line.parse(&opts) {
                        Err(e) => e.reply(),
                        Ok(command) => match session.check(&command) {
                            Err(reply) => reply,
                            Ok(()) => {
                                let (reply, accept) =
                                    run(settings, &command, &session, &mut envelope);
                                if accept {
                                    session.accept(&command);
                                }
                                if matches!(command, Command::Quit) {
                                    output.write_all(&reply.to_bytes())?;
                                    return output.flush();
                                }
                                if accept && matches!(command, Command::Data) {
                                    data_started = true;
                                }
                                reply
                            }
                        },
                    }
                }
            };
            output.write_all(&reply.to_bytes())?;
            if reply.closes_connection() {
                return output.flush();
            }
            if data_started {
                break;
            }
        }
        output.flush()?;
        if data_started {
            let mut pending = requests.take_buffered();
            let reply =
                match receive_data(settings, &mut input, &mut pending, &mut last_cr, &mut chunk)? {
                    None => return Ok(()),
                    Some(Err(reply)) => reply,
                    Some(Ok(content)) => match submit.submit(&envelope, &content) {
                        Ok(id) => standard::queued(&id),
                        Err(f) => failure_reply(&f),
                    },
                };
            session.end_transaction();
            envelope = Envelope::default();
            output.write_all(&reply.to_bytes())?;
            output.flush()?;
            requests.feed(&std::mem::take(&mut pending));
            continue;
        }
        let n = read_some(&mut input, &mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        requests.feed(&lf_to_crlf(
            chunk.get(..n).unwrap_or_default(),
            &mut last_cr,
        ));
    }
}

fn read_some<R: Read>(input: &mut R, chunk: &mut [u8]) -> io::Result<usize> {
    loop {
        match input.read(chunk) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Reads DATA content. `pending` holds input already read (in CRLF form)
/// and, on return, the input after the terminator. `None`: the input
/// ended inside the message.
fn receive_data<R: Read>(
    settings: &Settings,
    input: &mut R,
    pending: &mut Vec<u8>,
    last_cr: &mut bool,
    chunk: &mut [u8],
) -> io::Result<Option<Result<Vec<u8>, Reply>>> {
    let mut receiver = DataReceiver::new(DataOptions {
        size_limit: settings.size_limit,
        ..DataOptions::default()
    });
    let mut content = Vec::new();
    loop {
        if !pending.is_empty() {
            let progress = receiver.feed(pending, &mut content);
            if let DataProgress::Done(end) = progress {
                pending.drain(..end.consumed.min(pending.len()));
                if let Some(err) = end.error {
                    return Ok(Some(Err(err.reply())));
                }
                return Ok(Some(Ok(crlf_to_lf(&content))));
            }
            pending.clear();
        }
        let n = read_some(input, chunk)?;
        if n == 0 {
            return Ok(None);
        }
        *pending = lf_to_crlf(chunk.get(..n).unwrap_or_default(), last_cr);
    }
}

/// Runs one command that passed the sequencing checks: the reply, and
/// whether the session should record it as accepted.
fn run(
    settings: &Settings,
    command: &Command,
    session: &Session,
    envelope: &mut Envelope,
) -> (Reply, bool) {
    match command {
        Command::Ehlo(_) => {
            *envelope = Envelope::default();
            (ehlo(&settings.hostname, &extensions(settings)), true)
        }
        Command::Helo(_) => {
            *envelope = Envelope::default();
            (standard::helo(&settings.hostname), true)
        }
        Command::Mail { from, params } => {
            if settings.size_limit > 0 && params.size.is_some_and(|s| s > settings.size_limit) {
                return (standard::message_too_big(), false);
            }
            *envelope = Envelope {
                sender: internal(from),
                full_name: settings.full_name.clone(),
                rewrite_context: "local",
                encoding: match params.body {
                    Some(Body::EightBitMime) => Some("8bit"),
                    Some(Body::SevenBit) => Some("7bit"),
                    _ => None,
                },
                envid: params.envid.clone(),
                ret: params.ret.map(|r| match r {
                    Ret::Full => "FULL",
                    Ret::Hdrs => "HDRS",
                }),
                ..Envelope::default()
            };
            (standard::sender_ok(), true)
        }
        Command::Rcpt { to, params } => {
            if settings.recipient_limit > 0 && session.recipients() >= settings.recipient_limit {
                return (standard::too_many_recipients(), false);
            }
            let path = SmtpPath::Mailbox(to.clone());
            envelope.recipients.push(internal(&path));
            envelope
                .notify_each
                .push(params.notify.map_or(0, Notify::bits));
            (standard::recipient_ok(), true)
        }
        Command::Data => (standard::start_data(), true),
        Command::Rset => {
            *envelope = Envelope::default();
            (standard::ok(), true)
        }
        Command::Noop(_) => (standard::ok(), true),
        Command::Quit => (standard::bye(), true),
        Command::Vrfy(what) => (standard::cannot_verify(what), true),
        Command::Help(_)
        | Command::Expn(_)
        | Command::Auth { .. }
        | Command::Starttls
        | Command::Bdat { .. }
        | Command::Lhlo(_) => (standard::not_implemented(), false),
    }
}

fn extensions(settings: &Settings) -> Vec<Extension> {
    vec![
        Extension::Pipelining,
        Extension::Size(Some(settings.size_limit)),
        Extension::Vrfy,
        Extension::EnhancedStatusCodes,
        Extension::EightBitMime,
        Extension::Dsn,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Vec<(Envelope, Vec<u8>)>, Option<Fatal>);

    impl Submit for Collect {
        fn submit(&mut self, envelope: &Envelope, content: &[u8]) -> Result<String, Fatal> {
            if let Some(f) = self.1.clone() {
                return Err(f);
            }
            self.0.push((envelope.clone(), content.to_vec()));
            Ok(format!("QID{}", self.0.len()))
        }
    }

    fn settings() -> Settings {
        Settings {
            hostname: "mail.example.test".into(),
            banner: "mail.example.test ESMTP Postern".into(),
            size_limit: 1000,
            recipient_limit: 2,
            full_name: Some("Local User".into()),
        }
    }

    fn talk(input: &[u8], sink: &mut Collect) -> String {
        let mut out = Vec::new();
        session(&settings(), sink, input, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_pipelined_session_with_two_messages() {
        let mut sink = Collect(Vec::new(), None);
        let out = talk(
            b"EHLO me\r\nMAIL FROM:<\"a b\"@x.test> BODY=8BITMIME ENVID=e1\r\n\
              RCPT TO:<bob@y.test> NOTIFY=SUCCESS,FAILURE\r\nRCPT TO:<carol>\r\nDATA\r\n\
              Subject: one\r\n\r\n..dot\r\nbody\r\n.\r\n\
              MAIL FROM:<>\r\nRCPT TO:<d@z>\r\nDATA\r\nSubject: two\r\n.\r\nQUIT\r\n",
            &mut sink,
        );
        let replies: Vec<&str> = out.lines().collect();
        assert_eq!(replies[0], "220 mail.example.test ESMTP Postern");
        assert!(replies.contains(&"250 2.0.0 Ok: queued as QID1"), "{out}");
        assert!(replies.contains(&"250 2.0.0 Ok: queued as QID2"), "{out}");
        assert_eq!(replies.last(), Some(&"221 2.0.0 Bye"));
        let (env, content) = &sink.0[0];
        assert_eq!(env.sender, "a b@x.test");
        assert_eq!(env.recipients, ["bob@y.test", "carol"]);
        assert_eq!(env.notify_each, [10, 0]);
        assert_eq!(env.encoding, Some("8bit"));
        assert_eq!(env.envid.as_deref(), Some("e1"));
        assert_eq!(env.full_name.as_deref(), Some("Local User"));
        assert_eq!(content, b"Subject: one\n\n.dot\nbody\n");
        let (env, content) = &sink.0[1];
        assert_eq!(env.sender, "");
        assert_eq!(env.recipients, ["d@z"]);
        assert_eq!(content, b"Subject: two\n");
    }

    #[test]
    fn bare_newlines_from_a_terminal_work() {
        let mut sink = Collect(Vec::new(), None);
        let out = talk(
            b"HELO me\nMAIL FROM:<a@x>\nRCPT TO:<b@y>\nDATA\nhello\n.\nQUIT\n",
            &mut sink,
        );
        assert!(out.contains("250 2.0.0 Ok: queued as QID1"), "{out}");
        assert_eq!(sink.0[0].1, b"hello\n");
    }

    #[test]
    fn sequencing_limits_and_failures() {
        let mut sink = Collect(Vec::new(), None);
        let out = talk(
            b"MAIL FROM:<a@x> SIZE=5000\r\nDATA\r\nMAIL FROM:<a@x>\r\nRCPT TO:<1@y>\r\n\
              RCPT TO:<2@y>\r\nRCPT TO:<3@y>\r\nSTARTTLS\r\nRSET\r\nNOOP\r\nVRFY bob\r\n",
            &mut sink,
        );
        let codes: Vec<&str> = out.lines().map(|l| &l[..3]).collect();
        assert_eq!(
            codes,
            [
                "220", "552", "503", "250", "250", "250", "452", "502", "250", "250", "252"
            ],
            "{out}"
        );
        assert!(sink.0.is_empty());

        let mut failing = Collect(
            Vec::new(),
            Some(Fatal::reported(EX_TEMPFAIL, "disk full".into())),
        );
        let out = talk(
            b"HELO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
            &mut failing,
        );
        assert!(out.contains("451 4.3.0"), "{out}");
        // A message over the size limit is read to its end and refused.
        let mut sink = Collect(Vec::new(), None);
        let mut msg = b"HELO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n".to_vec();
        msg.extend(std::iter::repeat_n(b'x', 2000));
        msg.extend_from_slice(b"\r\n.\r\nNOOP\r\n");
        let out = talk(&msg, &mut sink);
        assert!(out.contains("552 5.3.4"), "{out}");
        assert!(out.ends_with("250 2.0.0 Ok\r\n"), "{out}");
        assert!(sink.0.is_empty());
    }

    #[test]
    fn input_ending_early_is_a_lost_connection() {
        let mut sink = Collect(Vec::new(), None);
        let out = talk(
            b"HELO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nhalf",
            &mut sink,
        );
        assert!(out.contains("354"), "{out}");
        assert!(sink.0.is_empty());
    }

    #[test]
    fn line_ending_conversions() {
        let mut cr = false;
        assert_eq!(lf_to_crlf(b"a\nb\r\n", &mut cr), b"a\r\nb\r\n");
        let mut cr = false;
        let first = lf_to_crlf(b"a\r", &mut cr);
        assert!(cr);
        let second = lf_to_crlf(b"\nb\n", &mut cr);
        assert_eq!([first, second].concat(), b"a\r\nb\r\n");
        assert_eq!(crlf_to_lf(b"a\r\nb\rc\r\n"), b"a\nb\rc\n");
    }
}
