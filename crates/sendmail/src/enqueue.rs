//! Handing a message to postdrop(1) (Postfix `sendmail.c:enqueue` and
//! `mail_stream_command`).
//!
//! sendmail runs `postdrop -r` with the message as a stream of queue
//! records on its standard input (envelope, `M`, content, `X`, `E`; see
//! [`postern_wire::Rules::Post`]) and reads postdrop's verdict, one
//! attribute list (`status`, `reason`, `queue_id`), from its standard
//! output. postdrop checks everything again: this program runs with the
//! user's privileges only and is not trusted.

use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use postern_config::Config;
use postern_wire::attr::{AttrReader, Mode as AttrMode};
use postern_wire::{Decoder, Encoder, RecordType};

use crate::exit::{EX_TEMPFAIL, EX_UNAVAILABLE, Fatal};

/// The envelope of one submission.
#[derive(Debug, Clone, Default)]
pub(crate) struct Envelope {
    /// The sender in internal form (`""` for `<>`).
    pub(crate) sender: String,
    /// The sender's full name, for cleanup's `From:` header.
    pub(crate) full_name: Option<String>,
    /// Recipients in internal form.
    pub(crate) recipients: Vec<String>,
    /// `-t`: cleanup takes recipients from the headers.
    pub(crate) extract: bool,
    /// `local` or `remote` (`-G`).
    pub(crate) rewrite_context: &'static str,
    /// `7bit` or `8bit` (`-B`, `BODY=`).
    pub(crate) encoding: Option<&'static str>,
    /// DSN envelope id (`-V`, `ENVID=`).
    pub(crate) envid: Option<String>,
    /// DSN `RET=` (`FULL` or `HDRS`).
    pub(crate) ret: Option<&'static str>,
    /// DSN notify bits for every recipient (`-N`), 0 = not given; or one
    /// value per recipient (SMTP `NOTIFY=`), see `notify_each`.
    pub(crate) notify: u8,
    /// Per-recipient notify bits, same order as `recipients`, when known.
    pub(crate) notify_each: Vec<u8>,
}

/// Where postdrop is (see [`command_path`]).
pub(crate) fn postdrop_path(config: &Config) -> PathBuf {
    command_path(config, "postdrop")
}

/// Where the command `name` is: in `command_directory` when that is set
/// explicitly; otherwise next to this program when it is there (a
/// development build, or an installation that keeps both together), else
/// in the default `command_directory`.
pub(crate) fn command_path(config: &Config, name: &str) -> PathBuf {
    let configured = config.path("command_directory").join(name);
    if config.is_explicit("command_directory") {
        return configured;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .filter(|p| p.is_file())
        .unwrap_or(configured)
}

/// A running postdrop that is being fed one message.
#[derive(Debug)]
pub(crate) struct Postdrop {
    child: Child,
    input: Option<BufWriter<ChildStdin>>,
    buf: Vec<u8>,
    /// The first write error: postdrop stopped reading (it said why).
    broken: bool,
}

impl Postdrop {
    /// Starts `postdrop -r`, passing the configuration directory and `-v`.
    pub(crate) fn start(
        program: &Path,
        config_dir: Option<&Path>,
        verbose: bool,
    ) -> Result<Postdrop, Fatal> {
        let mut cmd = Command::new(program);
        cmd.arg("-r");
        if let Some(dir) = config_dir {
            cmd.arg("-c").arg(dir);
        }
        if verbose {
            cmd.arg("-v");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                Fatal::new(
                    EX_UNAVAILABLE,
                    format!("unable to execute {}: {e}", program.display()),
                )
            })?;
        let input = child
            .stdin
            .take()
            .map(|s| BufWriter::with_capacity(64 * 1024, s));
        Ok(Postdrop {
            child,
            input,
            buf: Vec::with_capacity(256),
            broken: false,
        })
    }

    /// Sends one record. After postdrop stops reading, records are
    /// dropped; [`Postdrop::finish`] reports why it stopped.
    pub(crate) fn put(&mut self, kind: RecordType, data: &[u8]) -> Result<(), Fatal> {
        if self.broken {
            return Ok(());
        }
        self.buf.clear();
        Encoder::new(&mut self.buf)
            .put(kind, data)
            .map_err(|e| Fatal::new(EX_UNAVAILABLE, format!("cannot encode record: {e}")))?;
        if let Some(input) = self.input.as_mut()
            && input.write_all(&self.buf).is_err()
        {
            self.broken = true;
        }
        Ok(())
    }

    /// Sends the envelope records and the start of content.
    pub(crate) fn envelope(&mut self, env: &Envelope) -> Result<(), Fatal> {
        let attr = |name: &str, value: &str| format!("{name}={value}");
        self.put(
            RecordType::Attr,
            attr("rewrite_context", env.rewrite_context).as_bytes(),
        )?;
        if let Some(name) = &env.full_name {
            self.put(RecordType::Attr, attr("full_name", name).as_bytes())?;
        }
        self.put(RecordType::Sender, env.sender.as_bytes())?;
        if let Some(enc) = env.encoding {
            self.put(RecordType::Attr, attr("encoding", enc).as_bytes())?;
        }
        if let Some(envid) = &env.envid {
            self.put(RecordType::Attr, attr("envid", envid).as_bytes())?;
        }
        if let Some(ret) = env.ret {
            self.put(RecordType::Attr, attr("ret", ret).as_bytes())?;
        }
        if env.extract {
            self.put(RecordType::Attr, b"extract_recipients=1")?;
        }
        for (i, rcpt) in env.recipients.iter().enumerate() {
            let notify = env.notify_each.get(i).copied().unwrap_or(env.notify);
            if notify != 0 {
                self.put(RecordType::DsnNotify, &[notify])?;
            }
            self.put(RecordType::Recipient, rcpt.as_bytes())?;
        }
        self.put(RecordType::Message, b"")
    }

    /// Ends the content and the message, and waits for postdrop's verdict:
    /// the queue id, or the exit status and reason.
    pub(crate) fn finish(mut self) -> Result<String, Fatal> {
        self.put(RecordType::Xtra, b"")?;
        self.put(RecordType::End, b"")?;
        if let Some(mut input) = self.input.take()
            && input.flush().is_err()
        {
            self.broken = true;
        }
        self.verdict()
    }

    /// Gives up on the message: postdrop sees the input end early and
    /// removes its file.
    pub(crate) fn abort(mut self) {
        // Dropping stdin without an end record makes postdrop refuse the
        // message; its complaint about the premature end is expected.
        self.input = None;
        let _ = self.child.wait();
    }

    fn verdict(mut self) -> Result<String, Fatal> {
        let mut reply = Vec::new();
        if let Some(mut out) = self.child.stdout.take() {
            let _ = out.read_to_end(&mut reply);
        }
        let status = self
            .child
            .wait()
            .map_err(|e| Fatal::new(EX_TEMPFAIL, format!("wait for postdrop: {e}")))?;
        let parsed = parse_reply(&reply);
        match (status.code(), parsed) {
            (Some(0), Some((0, _, id))) => Ok(id),
            (_, Some((code, reason, _))) if code != 0 => Err(Fatal::reported(
                i32::try_from(code).unwrap_or(EX_TEMPFAIL),
                reason,
            )),
            (Some(0), _) => Err(Fatal::new(
                EX_TEMPFAIL,
                "postdrop exited without a status report".into(),
            )),
            (Some(code), _) => Err(Fatal::reported(
                code,
                format!("postdrop exited with status {code}"),
            )),
            (None, _) => Err(Fatal::new(
                EX_TEMPFAIL,
                format!("postdrop terminated abnormally: {status}"),
            )),
        }
    }
}

/// postdrop's `-r` reply: `(status, reason, queue_id)`.
fn parse_reply(bytes: &[u8]) -> Option<(u64, String, String)> {
    let (rec, _) = Decoder::new().feed(bytes).ok()??;
    let mut r = AttrReader::from_record(rec, AttrMode::Lenient).ok()?;
    let status = r.require_u64("status").ok()?;
    let reason = r.take_str("reason").ok()??.to_string();
    let id = r.take_str("queue_id").ok()??.to_string();
    Some((status, reason, id))
}

/// Sends content records produced by `next` until it returns `None`.
pub(crate) fn send_content(
    pd: &mut Postdrop,
    mut next: impl FnMut() -> io::Result<Option<(RecordType, Vec<u8>)>>,
) -> Result<(), io::Error> {
    while let Some((kind, data)) = next()? {
        // An encoding failure cannot happen for records this short; treat
        // it like a read error.
        pd.put(kind, &data).map_err(|f| io::Error::other(f.text))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_wire::attr::AttrList;

    #[test]
    fn reads_postdrop_replies() {
        let mut list = AttrList::new();
        list.put_u64("status", 0)
            .put_str("reason", "")
            .put_str("queue_id", "ABC");
        let mut out = Vec::new();
        list.encode_record(&mut out).unwrap();
        assert_eq!(parse_reply(&out), Some((0, String::new(), "ABC".into())));
        assert_eq!(parse_reply(b""), None);
        assert_eq!(parse_reply(b"garbage"), None);
    }
}
