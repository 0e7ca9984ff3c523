//! Many clients per process (Postfix `multi_server.c`), for services whose
//! clients keep a connection open for a long time and ask little (anvil).
//!
//! One process per service (maxproc 1) polls the listener and all client
//! connections. The service consumes bytes from each client's input buffer
//! and answers; when a client goes away (closes, errs, or its process
//! dies) the service is told, so per-client state can be dropped — which
//! is what makes connection counting crash-safe. The process exits when
//! master closes the status channel.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use postern_util::warn;

use crate::conn::Conn;
use crate::context::Context;
use crate::endpoint::Wake;

/// Most clients at once; more are refused (closed at once).
const MAX_CLIENTS: usize = 4096;
/// Most unconsumed input per client before it is dropped.
const MAX_INPUT: usize = 64 * 1024;

/// Identifies a client connection for the life of the process.
pub type ClientId = u64;

/// What a multi-client daemon does.
pub trait MultiService {
    /// New input from `client` is in `input`: consume what forms complete
    /// requests (drain it from the front) and return the reply bytes.
    /// Return `Err` to drop the client (malformed input).
    fn input(
        &mut self,
        ctx: &Context,
        client: ClientId,
        input: &mut Vec<u8>,
    ) -> Result<Vec<u8>, String>;

    /// `client` is gone.
    fn disconnect(&mut self, ctx: &Context, client: ClientId);

    /// Bytes sent to each new client first (the server speaks first).
    fn greeting(&mut self, _ctx: &Context) -> Vec<u8> {
        Vec::new()
    }
}

struct Client {
    conn: Conn,
    input: Vec<u8>,
}

/// Runs a multi-client daemon. `init` runs before privileges are dropped.
pub fn run<I, S>(program: &'static str, init: I) -> !
where
    I: FnOnce(&Context) -> Result<S, String>,
    S: MultiService,
{
    let (ctx, mut service, endpoint) = crate::endpoint::start(program, init);
    let mut clients: HashMap<ClientId, Client> = HashMap::new();
    let mut next_id: ClientId = 0;
    loop {
        let ids: Vec<ClientId> = clients.keys().copied().collect();
        let (wake, ready) = {
            let fds: Vec<_> = ids
                .iter()
                .filter_map(|id| clients.get(id))
                .map(|c| c.conn.as_fd())
                .collect();
            endpoint.wait_with(&fds, None)
        };
        let listeners = match wake {
            Wake::MasterGone => std::process::exit(0),
            Wake::Timeout => Vec::new(),
            Wake::Ready(l) => l,
        };
        for (id, _) in ids.iter().zip(ready).filter(|(_, r)| *r) {
            let gone = match clients.get_mut(id) {
                Some(c) => serve_one(&ctx, &mut service, *id, c),
                None => false,
            };
            if gone {
                clients.remove(id);
                service.disconnect(&ctx, *id);
            }
        }
        for i in listeners {
            match endpoint.accept(i) {
                Ok(Some(mut conn)) if clients.len() < MAX_CLIENTS => {
                    let _ = conn.set_timeout(Some(Duration::from_secs(10)));
                    let hello = service.greeting(&ctx);
                    if !hello.is_empty() && conn.write_all(&hello).is_err() {
                        continue;
                    }
                    next_id += 1;
                    clients.insert(
                        next_id,
                        Client {
                            conn,
                            input: Vec::new(),
                        },
                    );
                }
                Ok(Some(_)) => warn!("too many clients ({MAX_CLIENTS}): refusing one"),
                Ok(None) => {}
                Err(e) => warn!("accept: {e}"),
            }
        }
    }
}

/// Reads what one ready client sent and answers; `true` if it is gone.
fn serve_one<S: MultiService>(
    ctx: &Context,
    service: &mut S,
    id: ClientId,
    c: &mut Client,
) -> bool {
    let mut buf = [0u8; 4096];
    let n = match c.conn.read(&mut buf) {
        Ok(0) => return true,
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::Interrupted || e.kind() == ErrorKind::WouldBlock => {
            return false;
        }
        Err(_) => return true,
    };
    c.input.extend_from_slice(&buf[..n]);
    if c.input.len() > MAX_INPUT {
        warn!("client sent more than {MAX_INPUT} bytes without a complete request");
        return true;
    }
    match service.input(ctx, id, &mut c.input) {
        Ok(reply) => !reply.is_empty() && c.conn.write_all(&reply).is_err(),
        Err(e) => {
            warn!("{e}");
            true
        }
    }
}
