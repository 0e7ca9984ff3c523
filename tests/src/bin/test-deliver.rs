//! test-deliver - a delivery agent for qmgr's tests, on the single-server
//! skeleton, speaking `ipc::deliver::Server`.
//!
//! It decides from each recipient's local part: `bounce-*` fails (5.1.1),
//! `defer-*` is delayed (4.2.0) while the file `defer-flag` exists next to
//! the spool (the instance directory), `slow-*` is delivered after 3
//! seconds, `conc-*` is delivered after 300 ms during which the agent
//! counts itself in `busy/` (the number of agents busy at its start goes to
//! `concurrency`), anything else is delivered. Final recipients are
//! marked done in the queue file first, as real agents do, and each
//! delivery is appended to `delivered` in the instance directory as `ID
//! address`; each request to `requests` as `ID recipient-count`.

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
        let append = |name: &str, line: String| {
            if let Ok(mut f) = OpenOptions::new()
                .create(true)
                .append(true)
                .open(top.join(name))
            {
                // One write(2) per line: O_APPEND keeps concurrent agents'
                // lines whole (writeln! may split a line into two writes).
                let _ = f.write_all(format!("{line}\n").as_bytes());
            }
        };
        if req.recipients.first().is_some_and(|f| f.offset == r.offset) {
            append(
                "requests",
                format!("{} {}", req.queue_id, req.recipients.len()),
            );
        }
        let local = r.address.split('@').next().unwrap_or("");
        if local.starts_with("conc-") {
            let busy = top.join("busy");
            let _ = std::fs::create_dir_all(&busy);
            let me = busy.join(std::process::id().to_string());
            let _ = std::fs::write(&me, "");
            let n = std::fs::read_dir(&busy).map_or(0, |d| d.count());
            append("concurrency", n.to_string());
            std::thread::sleep(Duration::from_millis(300));
            let _ = std::fs::remove_file(&me);
        }
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
        if action == Action::Delivered {
            append("delivered", format!("{} {}", req.queue_id, r.address));
        }
        RcptStatus::new(action, dsn, reason)
    });
}

fn main() {
    single::run("test-deliver", |_ctx| Ok(serve))
}
