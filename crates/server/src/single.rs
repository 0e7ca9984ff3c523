//! One connection at a time per process (Postfix `single_server.c`).
//!
//! master starts more processes when all are busy, up to the service's
//! `maxproc`. A process exits after `max_use` connections, after
//! `max_idle` without one, or when master closes the status channel
//! (reload or stop): never in the middle of a connection.

use std::time::{Duration, Instant};

use postern_util::{info, warn};

use crate::conn::Conn;
use crate::context::Context;
use crate::endpoint::Wake;
use crate::proto::Status;

/// What to do just before the daemon exits on its own (idle, `max_use`,
/// master gone): log totals kept in memory, say.
static ON_EXIT: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>> = std::sync::OnceLock::new();

/// Registers the exit action (the first registration wins).
pub fn on_exit(f: impl Fn() + Send + Sync + 'static) {
    let _ = ON_EXIT.set(Box::new(f));
}

/// What to do once the daemon has waited this long for a connection (it
/// waits on, up to `max_idle`).
type IdleHook = (Duration, Box<dyn Fn() + Send + Sync>);
static ON_IDLE: std::sync::OnceLock<IdleHook> = std::sync::OnceLock::new();

/// Registers `f` to run once the daemon has been idle for `after` in a
/// row (cleanup gives back the pool files it placed for its next
/// messages); the first registration wins.
pub fn on_idle(after: Duration, f: impl Fn() + Send + Sync + 'static) {
    let _ = ON_IDLE.set((after, Box::new(f)));
}

fn exit() -> ! {
    if let Some(f) = ON_EXIT.get() {
        f();
    }
    std::process::exit(0);
}

/// Runs a single-connection daemon. `init` runs before privileges are
/// dropped (open protected files there) and returns the service function.
pub fn run<I, S>(program: &'static str, init: I) -> !
where
    I: FnOnce(&Context) -> Result<S, String>,
    S: FnMut(Conn, &Context),
{
    let (ctx, mut service, endpoint) = crate::endpoint::start(program, init);
    let max_idle = ctx.config.time("max_idle");
    let max_use = u64::try_from(ctx.config.int("max_use")).unwrap_or(0);
    let mut used: u64 = 0;
    loop {
        let idle_since = Instant::now();
        let mut hook = ON_IDLE.get();
        let ready = loop {
            let left = max_idle.saturating_sub(idle_since.elapsed());
            let wait = hook.map_or(left, |(after, _)| left.min(*after));
            match endpoint.wait(Some(wait)) {
                Wake::Timeout => {
                    if let Some((_, f)) = hook.take() {
                        f();
                        if idle_since.elapsed() < max_idle {
                            continue;
                        }
                    }
                    postern_util::debug!("idle timeout -- exiting");
                    exit();
                }
                Wake::MasterGone => {
                    postern_util::debug!("master disconnect -- exiting");
                    exit();
                }
                Wake::Ready(ready) => break ready,
            }
        };
        let Some(conn) = ready.iter().find_map(|&i| match endpoint.accept(i) {
            Ok(c) => c,
            Err(e) => {
                warn!("accept connection: {e}");
                // Out of descriptors or memory: don't spin.
                std::thread::sleep(Duration::from_millis(100));
                None
            }
        }) else {
            continue;
        };
        if !endpoint.report(Status::Taken) {
            info!("master went away -- exiting after this connection");
        }
        service(conn, &ctx);
        used += 1;
        if max_use > 0 && used >= max_use {
            exit();
        }
        if !endpoint.report(Status::Avail) {
            exit();
        }
    }
}
