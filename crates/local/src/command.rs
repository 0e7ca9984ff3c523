//! Delivery to a command (Postfix `local/command.c`, `pipe_command.c`).

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use postern_ipc::deliver::{Action, RcptStatus};
use postern_util::warn;

use crate::{Rcpt, Who, defer, status};

/// How much of a command's output goes into a bounce reason.
const OUTPUT_LIMIT: usize = 200;

/// What a command delivery needs from the request.
#[derive(Clone, Copy)]
pub(crate) struct Env<'a> {
    pub(crate) sender: &'a str,
    pub(crate) content: &'a [u8],
    pub(crate) switch_ids: bool,
    pub(crate) time_limit: Duration,
}

/// Runs `/bin/sh -c cmd` as `who` with the message on standard input.
pub(crate) fn run(env: Env<'_>, rcpt: &Rcpt<'_>, who: &Who, cmd: &str) -> RcptStatus {
    let (mut reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return defer("4.3.0", format!("cannot create pipe: {e}")),
    };
    let writer2 = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return defer("4.3.0", format!("cannot create pipe: {e}")),
    };
    let cwd = if who.home.is_dir() {
        who.home.clone()
    } else {
        "/".into()
    };
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(cmd)
        .env_clear()
        .env("SENDER", env.sender)
        .env("RECIPIENT", rcpt.address)
        .env("LOCAL", &rcpt.local)
        .env("DOMAIN", &rcpt.domain)
        .env("EXTENSION", &rcpt.extension)
        .env("HOME", &who.home)
        .env("USER", &who.name)
        .env("SHELL", &who.shell)
        .env("PATH", "/usr/bin:/bin")
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(writer)
        .stderr(writer2)
        .process_group(0);
    if env.switch_ids {
        c.gid(who.gid).uid(who.uid);
    }
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => return defer("4.3.0", format!("cannot run command: {e}")),
    };
    drop(c); // closes our copies of the output pipe
    let mut message = format!(
        "Return-Path: <{}>\nDelivered-To: {}\n",
        env.sender,
        rcpt.address.to_lowercase()
    )
    .into_bytes();
    message.extend_from_slice(env.content);
    let stdin = child.stdin.take();
    let (fed_tx, fed_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(mut s) = stdin {
            // A command that does not read its input is not an error.
            let _ = s.write_all(&message);
        }
        let _ = fed_tx.send(());
    });
    let (out_tx, out_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        let _ = out_tx.send(kept);
    });
    let pgid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    let kill_group = || {
        // The group may be gone already; nothing to do then.
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    };
    let deadline = Instant::now() + env.time_limit;
    let exit = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => {
                kill_group();
                if let Err(e) = child.wait() {
                    warn!("wait for command: {e}");
                }
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                kill_group();
                return defer("4.3.0", format!("cannot wait for command: {e}"));
            }
        }
    };
    // Background processes of the command may keep its input or output
    // open: wait for them only within the time limit, then kill them.
    let left = deadline.saturating_duration_since(Instant::now());
    let text = match out_rx.recv_timeout(left) {
        Ok(t) => t,
        Err(_) => {
            kill_group();
            out_rx
                .recv_timeout(Duration::from_secs(1))
                .unwrap_or_default()
        }
    };
    if fed_rx.recv_timeout(Duration::from_secs(1)).is_err() {
        kill_group();
    }
    let text = String::from_utf8_lossy(&text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let with_output = |what: String| {
        if text.is_empty() {
            what
        } else {
            format!("{what}. Command output: {text}")
        }
    };
    let Some(exit) = exit else {
        return status(
            Action::Failed,
            "5.3.0",
            with_output("Command time limit exceeded".into()),
        );
    };
    match (exit.code(), exit.signal()) {
        (Some(0), _) => status(
            Action::Delivered,
            "2.0.0",
            format!("delivered to command: {cmd}"),
        ),
        (Some(75), _) => status(
            Action::Delayed,
            "4.3.0",
            with_output("temporary failure".into()),
        ),
        (Some(code), _) => status(
            Action::Failed,
            "5.3.0",
            with_output(format!("Command died with status {code}: \"{cmd}\"")),
        ),
        (None, Some(sig)) => status(
            Action::Delayed,
            "4.3.0",
            with_output(format!("Command died with signal {sig}")),
        ),
        (None, None) => defer("4.3.0", "Command ended abnormally".into()),
    }
}
