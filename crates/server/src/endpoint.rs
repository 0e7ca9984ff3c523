//! The inherited listeners and status channel, shared by the skeletons.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use postern_util::{fatal, fdpass};

use crate::args::Transport;
use crate::conn::Conn;
use crate::context::Context;
use crate::proto::{self, LISTEN_FD, STATUS_FD, Status};

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l) => l.as_fd(),
        }
    }
}

/// What woke a waiting daemon.
pub(crate) enum Wake {
    /// A connection may be waiting on these listeners (another process
    /// may take it first).
    Ready(Vec<usize>),
    /// Nothing happened within the timeout.
    Timeout,
    /// master closed the status channel: reload, stop or master death.
    MasterGone,
}

pub(crate) struct Endpoint {
    listeners: Vec<Listener>,
    transport: Transport,
    status: Option<OwnedFd>,
    generation: u32,
    /// The listeners (exclusive) and the status channel, for
    /// [`Endpoint::wait`]; `None` where epoll is missing.
    epoll: Option<Epoll>,
}

/// The epoll data of the status channel (listeners have their index).
const STATUS_DATA: u64 = u64::MAX;

/// A wait's limit as poll(2) and epoll_wait(2) take it (`None`: forever).
fn poll_timeout(timeout: Option<Duration>) -> PollTimeout {
    match timeout {
        None => PollTimeout::NONE,
        Some(t) => PollTimeout::try_from(t).unwrap_or(PollTimeout::MAX),
    }
}

/// An epoll set for `listeners` and `status`. The listeners are added
/// with `EPOLLEXCLUSIVE`: of the processes of a service waiting for a
/// connection, the kernel wakes one, not all of them (with poll(2) every
/// idle cleanup or delivery agent woke for each connection, and all but
/// one found nothing to accept).
fn epoll_set(listeners: &[Listener], status: Option<&OwnedFd>) -> nix::Result<Epoll> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    for (i, l) in listeners.iter().enumerate() {
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE;
        epoll.add(l.fd(), EpollEvent::new(flags, i as u64))?;
    }
    if let Some(s) = status {
        epoll.add(s.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, STATUS_DATA))?;
    }
    Ok(epoll)
}

impl Endpoint {
    /// Takes over the descriptors master placed for us.
    pub(crate) fn inherit(
        transport: Transport,
        sockets: usize,
        generation: u32,
    ) -> io::Result<Endpoint> {
        let mut listeners = Vec::with_capacity(sockets);
        for n in 0..sockets {
            let fd = LISTEN_FD + n as i32;
            let listen = fdpass::inherited(fd).ok_or_else(|| {
                io::Error::other(format!(
                    "no listening socket on descriptor {fd}: this daemon must be started by master"
                ))
            })?;
            listeners.push(match transport {
                Transport::Inet => Listener::Tcp(TcpListener::from(listen)),
                Transport::Unix | Transport::Pass => Listener::Unix(UnixListener::from(listen)),
            });
        }
        let status = fdpass::inherited(STATUS_FD);
        let epoll = epoll_set(&listeners, status.as_ref()).ok();
        Ok(Endpoint {
            listeners,
            transport,
            status,
            generation,
            epoll,
        })
    }

    /// Waits for a connection, a timeout, or master going away.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Wake {
        let Some(epoll) = &self.epoll else {
            return self.wait_with(&[], timeout).0;
        };
        let timeout = poll_timeout(timeout);
        let mut events = [EpollEvent::empty(); 8];
        let n = loop {
            match epoll.wait(&mut events, timeout) {
                Ok(0) => return Wake::Timeout,
                Ok(n) => break n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return Wake::MasterGone,
            }
        };
        let fired = &events[..n];
        // Master never writes to us: readable means end-of-file.
        if fired.iter().any(|e| e.data() == STATUS_DATA) {
            return Wake::MasterGone;
        }
        Wake::Ready(
            fired
                .iter()
                .filter_map(|e| usize::try_from(e.data()).ok())
                .collect(),
        )
    }

    /// Waits for `timeout` or master going away, not for connections
    /// (see [`crate::trigger::TriggerService::quiet`]).
    pub(crate) fn wait_quiet(&self, timeout: Duration) -> Wake {
        let Some(status) = &self.status else {
            std::thread::sleep(timeout);
            return Wake::Timeout;
        };
        let mut fds = [PollFd::new(status.as_fd(), PollFlags::POLLIN)];
        loop {
            match poll(&mut fds, poll_timeout(Some(timeout))) {
                Ok(0) => return Wake::Timeout,
                // Master never writes to us: readable means end-of-file.
                Ok(_) => return Wake::MasterGone,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return Wake::MasterGone,
            }
        }
    }

    /// Like [`Endpoint::wait`], also watching `extra` descriptors for
    /// input; returns which of them are ready. Client readiness alone
    /// yields `Wake::Ready` with no listener.
    pub(crate) fn wait_with(
        &self,
        extra: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> (Wake, Vec<bool>) {
        let timeout = poll_timeout(timeout);
        let mut fds: Vec<PollFd<'_>> = self
            .listeners
            .iter()
            .map(|l| PollFd::new(l.fd(), PollFlags::POLLIN))
            .collect();
        let nl = fds.len();
        if let Some(s) = &self.status {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        let ns = fds.len();
        fds.extend(extra.iter().map(|fd| PollFd::new(*fd, PollFlags::POLLIN)));
        let none = vec![false; extra.len()];
        loop {
            match poll(&mut fds, timeout) {
                Ok(0) => return (Wake::Timeout, none),
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                // poll on our own descriptors cannot fail otherwise; treat
                // it as master trouble rather than spin.
                Err(_) => return (Wake::MasterGone, none),
            }
        }
        let fired = |f: &PollFd<'_>| f.revents().is_some_and(|r| !r.is_empty());
        if ns > nl && fds.get(nl).is_some_and(fired) {
            // Master never writes to us: readable means end-of-file.
            return (Wake::MasterGone, none);
        }
        let extra_ready = fds.iter().skip(ns).map(fired).collect();
        let listeners = fds
            .iter()
            .take(nl)
            .enumerate()
            .filter(|(_, f)| fired(f))
            .map(|(i, _)| i)
            .collect();
        (Wake::Ready(listeners), extra_ready)
    }

    /// Accepts one connection from listener `i`; `Ok(None)` when another
    /// process was faster.
    pub(crate) fn accept(&self, i: usize) -> io::Result<Option<Conn>> {
        let Some(listener) = self.listeners.get(i) else {
            return Ok(None);
        };
        let res = match listener {
            Listener::Tcp(l) => l.accept().map(|(s, _)| Conn::Tcp(s)),
            Listener::Unix(l) => l.accept().map(|(s, _)| Conn::Unix(s)),
        };
        let conn = match res {
            Ok(c) => c,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionAborted
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        // Accepted sockets do not inherit O_NONBLOCK on Linux, but be sure.
        match &conn {
            Conn::Tcp(s) => s.set_nonblocking(false)?,
            Conn::Unix(s) => s.set_nonblocking(false)?,
        }
        if self.transport == Transport::Pass {
            let Conn::Unix(carrier) = &conn else {
                return Err(io::Error::other("pass service with an inet listener"));
            };
            carrier.set_read_timeout(Some(Duration::from_secs(10)))?;
            let fd = fdpass::recv_fd(carrier)?;
            return Conn::from_passed(fd).map(Some);
        }
        Ok(Some(conn))
    }

    /// Tells master whether we are busy; `false` if master is gone.
    pub(crate) fn report(&self, status: Status) -> bool {
        let Some(fd) = &self.status else {
            return true;
        };
        let rec = proto::encode(postern_util::msg::pid(), self.generation, status);
        matches!(nix::unistd::write(fd, &rec), Ok(n) if n == rec.len())
    }
}

/// The start every skeleton shares: configuration and logging, the
/// service's own setup (still privileged), the privilege drop, then the
/// inherited descriptors. Any failure is fatal: master throttles restarts.
pub(crate) fn start<I, S>(program: &'static str, init: I) -> (Context, S, Endpoint)
where
    I: FnOnce(&Context) -> Result<S, String>,
{
    let ctx = Context::init(program);
    let service = match init(&ctx) {
        Ok(s) => s,
        Err(e) => fatal!("{e}"),
    };
    ctx.drop_privileges();
    let endpoint =
        match Endpoint::inherit(ctx.args.transport, ctx.args.sockets, ctx.args.generation) {
            Ok(e) => e,
            Err(e) => fatal!("{e}"),
        };
    (ctx, service, endpoint)
}
