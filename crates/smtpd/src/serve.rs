//! The socket side of a session (Postfix `smtpd.c:smtpd_service` and
//! `smtpd_chat.c`): read what the client sent, let the session process
//! all of it, then write the replies out. Replies are therefore flushed
//! exactly when the input buffer runs dry, as Postfix does with
//! PIPELINING.
//!
//! Every read and every write has `smtpd_timeout`; a read that times out
//! gets `421 4.4.2 ... Error: timeout exceeded`, a write that times out or
//! fails ends the session as a lost connection.
//!
//! TLS: after the session accepted STARTTLS (and threw away any plaintext
//! pipelined behind it), the `220` is flushed and the handshake runs here
//! with `smtpd_starttls_timeout`; in `smtpd_tls_wrappermode` it runs
//! before the greeting. A failed handshake ends the session.

use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use postern_ipc::anvil;
use postern_server::Conn;
use postern_tls::{MaybeTls, TlsInfo};
use postern_util::{info, warn};

use crate::backend::Backend;
use crate::check::in_networks;
use crate::peer::{self, Peer};
use crate::session::Session;
use crate::settings::Env;

/// Read size; DATA content is streamed on in pieces of at most this.
const READ_SIZE: usize = 64 * 1024;

/// How long a cleanup connection kept after a message waits for the
/// client's next command: a client sending message after message sends
/// it within a round trip; one that pauses longer gives the cleanup
/// process back to smtpd's other sessions, pickup and qmgr (Postfix
/// holds cleanup from MAIL to the end of DATA only).
const KEEP_WAIT: Duration = Duration::from_millis(50);

/// Serves one client connection to its end.
pub(crate) fn serve<B: Backend>(mut conn: Conn, service: &str, env: &Env, backend: &mut B) {
    let peer = match &conn {
        Conn::Tcp(s) => match s.peer_addr() {
            Ok(a) => lookup_names(Peer::inet(a.ip(), a.port()), env),
            Err(e) => {
                // The client is already gone.
                warn!("getpeername: {e}");
                return;
            }
        },
        Conn::Unix(_) => Peer::local(),
    };
    if let Err(e) = conn.set_timeout(Some(env.settings.timeout)) {
        warn!("set timeout: {e}");
    }
    // Held for the whole session: anvil counts it until this is dropped.
    let Some(registration) = admit(&mut conn, service, env, &peer) else {
        return;
    };
    let mut session = Session::new(env, backend, peer);
    info!("connect from {}", session.namaddr());
    let mut stream = MaybeTls::Plain(conn);
    if env.tls.wrapper {
        if env.tls.config.is_none() {
            warn!(
                "Wrapper-mode request dropped from {} for service {service}. \
                 TLS context initialization failed. For details see earlier warnings \
                 in your logs.",
                session.namaddr()
            );
            session.end();
            return;
        }
        stream = match handshake(stream, env) {
            Ok((s, info)) => {
                session.tls_started(info);
                s
            }
            Err(e) => {
                session.tls_failed(&e);
                session.end();
                return;
            }
        };
    }
    session.greet();
    run(stream, &mut session, env);
    // Free anvil's slot before the disconnect line: a client that
    // reconnects as soon as it sees the session end must not be counted
    // twice.
    drop(registration);
    session.end();
}

/// The client's names (Postfix `smtpd_peer_init`, before the greeting):
/// left `unknown` with `smtpd_peername_lookup = no`.
fn lookup_names(peer: Peer, env: &Env) -> Peer {
    let Some(ip) = peer.ip.filter(|_| env.settings.peername_lookup) else {
        return peer;
    };
    let files = peer::FilesThenDns {
        hosts: &env.hosts,
        dns: env.dns.as_ref(),
    };
    peer.with_names(peer::lookup(Some(&files), ip))
}

/// Runs the server side of the TLS handshake with
/// `smtpd_starttls_timeout`.
fn handshake(stream: MaybeTls<Conn>, env: &Env) -> io::Result<(MaybeTls<Conn>, TlsInfo)> {
    let Some(config) = env.tls.config.clone() else {
        // Session::starttls answers 454 without a configuration.
        return Err(io::Error::other("no TLS configuration"));
    };
    let t = &env.tls;
    stream.get_ref().set_timeout(Some(t.handshake_timeout))?;
    let stream = stream.accept(config)?;
    stream.get_ref().set_timeout(Some(env.settings.timeout))?;
    let info = stream
        .info()
        .ok_or_else(|| io::Error::other("handshake incomplete"))?;
    Ok((stream, info))
}

/// `smtpd_client_connection_count_limit` (Postfix `smtpd.c` with
/// anvil): registers the session with anvil and refuses a client with too
/// many sessions open with `421 4.7.0`. Clients in
/// `smtpd_client_event_limit_exceptions` are not counted. When anvil
/// cannot be reached the session goes ahead unlimited, with a warning (as
/// Postfix does).
fn admit(
    conn: &mut Conn,
    service: &str,
    env: &Env,
    peer: &Peer,
) -> Option<Option<anvil::Registration>> {
    let s = &env.settings;
    let Some(ip) = peer.ip else {
        return Some(None);
    };
    if s.connection_count_limit == 0 || in_networks(ip, &s.limit_exceptions) {
        return Some(None);
    }
    let reg = match anvil::connect(&s.queue_dir, s.ipc_timeout, service, &peer.addr) {
        Ok(r) => r,
        Err(e) => {
            warn!("connection limit not enforced: anvil: {e}");
            return Some(None);
        }
    };
    if reg.count <= s.connection_count_limit {
        return Some(Some(reg));
    }
    let namaddr = peer.namaddr();
    warn!(
        "Connection concurrency limit exceeded: {} from {namaddr} for service {service}",
        reg.count
    );
    let reply = format!(
        "421 4.7.0 {} Error: too many connections from {}\r\n",
        s.myhostname, peer.addr
    );
    let _ = conn.write_all(reply.as_bytes());
    info!("disconnect from {namaddr} commands=0/0");
    None
}

/// Whether the client has sent something, or does within
/// [`KEEP_WAIT`]. Under TLS, no: a record may wait decrypted in the
/// session where poll cannot see it.
fn readable_soon(conn: &MaybeTls<Conn>) -> bool {
    let MaybeTls::Plain(c) = conn else {
        return false;
    };
    let mut fds = [PollFd::new(c.as_fd(), PollFlags::POLLIN)];
    let wait = PollTimeout::try_from(KEEP_WAIT.as_millis()).unwrap_or(PollTimeout::ZERO);
    matches!(poll(&mut fds, wait), Ok(n) if n > 0)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// The read-process-write loop.
fn run<B: Backend>(mut conn: MaybeTls<Conn>, session: &mut Session<'_, B>, env: &Env) {
    let mut buf = vec![0u8; READ_SIZE];
    loop {
        let out = session.take_output();
        if !out.is_empty()
            && let Err(e) = conn.write_all(&out).and_then(|()| conn.flush())
        {
            if is_timeout(&e) {
                session.timeout();
            } else {
                session.lost();
            }
            return;
        }
        if session.is_closed() {
            conn.close_notify();
            return;
        }
        if session.wants_tls() {
            conn = match handshake(conn, env) {
                Ok((tls, info)) => {
                    session.tls_started(info);
                    tls
                }
                Err(e) => {
                    session.tls_failed(&e);
                    return;
                }
            };
            continue;
        }
        if session.holds_idle_queue() && !readable_soon(&conn) {
            session.release_idle_queue();
        }
        match conn.read(&mut buf) {
            Ok(0) => {
                session.lost();
                return;
            }
            Ok(n) => session.feed(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => {
                session.timeout();
                // Best effort: the client may not be reading either.
                let _ = conn.write_all(&session.take_output());
                return;
            }
            Err(_) => {
                session.lost();
                return;
            }
        }
    }
}
