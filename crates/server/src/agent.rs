//! The agent side of a delivery request (Postfix `deliver_request.c`):
//! what every delivery agent (local, virtual, ...) does before it
//! delivers — accept qmgr's request and open the queue file it names.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::SystemTime;

use postern_ipc::deliver::{Request, Server};
use postern_queue::{Queue, QueueFile, QueueId};
use postern_util::warn;

use crate::conn::Conn;
use crate::context::Context;

/// Greets qmgr on a new connection and reads its request; logs and
/// returns `None` when that fails. Also returns when the request came in
/// (for the `delays=` in log lines).
pub fn accept(conn: Conn, ctx: &Context) -> Option<(Server, Request, SystemTime)> {
    let stream = match conn {
        Conn::Unix(s) => s,
        Conn::Tcp(_) => {
            warn!("unexpected TCP connection from {}", conn.peer());
            return None;
        }
    };
    let conn = match postern_ipc::Conn::new(stream, ctx.config.time("ipc_timeout")) {
        Ok(c) => c,
        Err(e) => {
            warn!("delivery connection: {e}");
            return None;
        }
    };
    match Server::accept(conn) {
        Ok((server, req)) => Some((server, req, SystemTime::now())),
        Err(e) => {
            warn!("delivery request: {e}");
            None
        }
    }
}

/// Opens the queue file a request names, read-write (to mark recipients
/// done) and parsed. Errors are logged; the text is for the recipients'
/// deferral reason.
pub fn open_queue_file(spool: &Path, req: &Request) -> Result<(File, QueueFile), String> {
    let (Some(queue), Ok(id)) = (
        Queue::from_dir_name(&req.queue_name),
        QueueId::parse(&req.queue_id),
    ) else {
        warn!(
            "bad queue file name in request: {}/{}",
            req.queue_name, req.queue_id
        );
        return Err("bad queue file name in delivery request".into());
    };
    let path = id.path(spool, queue);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| {
            warn!("{}: open queue file {}: {e}", req.queue_id, path.display());
            format!("cannot open queue file: {e}")
        })?;
    let qf = QueueFile::open(&path).map_err(|e| {
        warn!("{}: read queue file {}: {e}", req.queue_id, path.display());
        format!("cannot read queue file: {e}")
    })?;
    Ok((file, qf))
}
