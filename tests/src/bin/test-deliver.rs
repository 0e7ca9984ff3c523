//! test-deliver - a delivery agent for qmgr's tests, on the single-server
//! skeleton, speaking `ipc::deliver::Server`.
//!
//! It decides from each recipient's local part: `bounce-*` fails (5.1.1),
//! `defer-*` is delayed (4.2.0) while the file `defer-flag` exists next to
//! the spool (the instance directory), `slow-*` is delivered after 3
//! seconds, anything else is delivered. Final recipients are marked done
//! in the queue file first, as real agents do, and each delivery is
//! appended to `delivered` in the instance directory as `ID address`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use postern_ipc::deliver::{Action, RcptStatus};
use postern_server::{Conn, Context, agent, single};

fn serve(conn: Conn, ctx: &Context) {
    let spool = ctx.config.path("queue_directory");
    let top = spool.parent().unwrap_or(Path::new("/")).to_path_buf();
    // The shared agent loop marks final recipients done, keeps the trace
    // log for NOTIFY=SUCCESS, logs and reports, as the real agents do.
    agent::serve(conn, ctx, "test", |req, _content, r| {
        let local = r.address.split('@').next().unwrap_or("");
        let (action, dsn, reason) = if local.starts_with("bounce-") {
            (Action::Failed, "5.1.1", "unknown user".to_string())
        } else if local.starts_with("defer-") && top.join("defer-flag").exists() {
            (Action::Delayed, "4.2.0", "mailbox busy".to_string())
        } else {
            if local.starts_with("slow-") {
                std::thread::sleep(Duration::from_secs(3));
            }
            (Action::Delivered, "2.0.0", "delivered".to_string())
        };
        if action == Action::Delivered
            && let Ok(mut log) = OpenOptions::new()
                .create(true)
                .append(true)
                .open(top.join("delivered"))
        {
            let _ = writeln!(log, "{} {}", req.queue_id, r.address);
        }
        RcptStatus::new(action, dsn, reason)
    });
}

fn main() {
    single::run("test-deliver", |_ctx| Ok(serve))
}
