//! `mailq` / `sendmail -bp`: the queue listing in Postfix's shape (Postfix
//! `showq.c`, `postqueue -p`).
//!
//! ```text
//! -Queue ID-      --Size-- ----Arrival Time---- -Sender/Recipient-------
//! 4Yq7Zz1AbcDEF*      1234 Tue Nov 24 17:08:21  alice@example.org
//!                                               bob@example.org
//!
//! -- 1 Kbytes in 1 Request.
//! ```
//!
//! The status character after the id is `*` for the active queue and `!`
//! for the hold queue. Only recipients still to be delivered are listed.
//!
//! XXX: Postfix lists the queue through the showq service so that
//! `mailq` works for every user; Postern has no showq yet, so this reads
//! the queue directories directly and needs the rights to do so (the
//! queue owner, or development mode). Deferral reasons are not shown.

use std::io::{self, Write};
use std::path::Path;
use std::time::SystemTime;

use postern_queue::{Entry, Queue, QueueFile, QueueId, ReadOptions, RecipientStatus};
use postern_wire::Rules;

use crate::exit::{EX_NOPERM, EX_TEMPFAIL, Fatal};

/// The queues listed, in order (Postfix showq).
const QUEUES: [Queue; 5] = [
    Queue::Incoming,
    Queue::Active,
    Queue::Deferred,
    Queue::Hold,
    Queue::Maildrop,
];

/// One listed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    /// Queue id.
    pub(crate) id: String,
    /// `*` active, `!` hold, else space.
    pub(crate) status: char,
    /// Message size in bytes.
    pub(crate) size: u64,
    /// Arrival time.
    pub(crate) arrival: SystemTime,
    /// Envelope sender (empty for `<>`).
    pub(crate) sender: String,
    /// Recipients not yet delivered.
    pub(crate) recipients: Vec<String>,
}

/// `Tue Nov 24 17:08:21` in local time (the first 19 characters of
/// asctime(3), as Postfix shows them).
pub(crate) fn short_time(at: SystemTime) -> String {
    match jiff::Timestamp::try_from(at) {
        Ok(ts) => ts
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%a %b %e %H:%M:%S")
            .to_string(),
        Err(_) => "???".into(),
    }
}

/// Formats the listing.
pub(crate) fn format(items: &[Item], out: &mut impl Write) -> io::Result<()> {
    if items.is_empty() {
        return writeln!(out, "Mail queue is empty");
    }
    let width = items.iter().map(|i| i.id.len()).max().unwrap_or(0).max(10);
    writeln!(
        out,
        "{:<width$}  --Size-- ----Arrival Time---- -Sender/Recipient-------",
        "-Queue ID-"
    )?;
    let indent = width + 32;
    let mut total: u64 = 0;
    for item in items {
        let sender = if item.sender.is_empty() {
            "MAILER-DAEMON"
        } else {
            &item.sender
        };
        writeln!(
            out,
            "{:<width$}{} {:>8} {:<20} {}",
            item.id,
            item.status,
            item.size,
            short_time(item.arrival),
            sender
        )?;
        for rcpt in &item.recipients {
            writeln!(out, "{:indent$}{}", "", rcpt)?;
        }
        writeln!(out)?;
        total = total.saturating_add(item.size);
    }
    writeln!(
        out,
        "-- {} Kbytes in {} Request{}.",
        total / 1024,
        items.len(),
        if items.len() == 1 { "" } else { "s" }
    )
}

/// Reads the queues under `queue_dir`. Damaged or vanished files are
/// skipped (with a note on standard error for damaged ones).
pub(crate) fn collect(queue_dir: &Path) -> Result<Vec<Item>, Fatal> {
    let mut items = Vec::new();
    for queue in QUEUES {
        let scan = match postern_queue::scan(queue_dir, queue) {
            Ok(s) => s,
            Err(postern_queue::Error::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                continue;
            }
            Err(e) => return Err(access_error(queue_dir, queue, &e)),
        };
        let mut ids: Vec<QueueId> = Vec::new();
        for entry in scan {
            match entry {
                Ok(Entry::Ready { id, .. }) => ids.push(id),
                Ok(_) => {}
                Err(e) => return Err(access_error(queue_dir, queue, &e)),
            }
        }
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let opts = ReadOptions {
            rules: if queue == Queue::Maildrop {
                Rules::Post
            } else {
                Rules::Queue
            },
            ..ReadOptions::default()
        };
        for id in ids {
            let qf = match QueueFile::open_with(&id.path(queue_dir, queue), &opts) {
                Ok(qf) => qf,
                Err(postern_queue::Error::Io { source, .. })
                    if source.kind() == io::ErrorKind::NotFound =>
                {
                    continue;
                }
                Err(e) => {
                    eprintln!("mailq: warning: {queue}/{id}: {e}");
                    continue;
                }
            };
            items.push(Item {
                id: id.to_string(),
                status: match queue {
                    Queue::Active => '*',
                    Queue::Hold => '!',
                    _ => ' ',
                },
                size: qf.size().content_length,
                arrival: qf.arrival(),
                sender: qf.sender().to_string(),
                recipients: qf
                    .recipients()
                    .iter()
                    .filter(|r| r.status == RecipientStatus::Pending)
                    .map(|r| r.address.clone())
                    .collect(),
            });
        }
    }
    Ok(items)
}

fn access_error(queue_dir: &Path, queue: Queue, e: &postern_queue::Error) -> Fatal {
    let denied = matches!(e, postern_queue::Error::Io { source, .. }
        if source.kind() == io::ErrorKind::PermissionDenied);
    if denied {
        Fatal::new(
            EX_NOPERM,
            format!(
                "cannot read the {queue} queue in {}: permission denied \
                 (the queue listing service is not implemented yet; run mailq as the queue owner)",
                queue_dir.display()
            ),
        )
    } else {
        Fatal::new(EX_TEMPFAIL, format!("read the {queue} queue: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn empty_queue() {
        let mut out = Vec::new();
        format(&[], &mut out).unwrap();
        assert_eq!(out, b"Mail queue is empty\n");
    }

    #[test]
    fn listing_shape() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let items = vec![
            Item {
                id: "4Yq7Zz1AbcDEF".into(),
                status: '*',
                size: 1500,
                arrival: at,
                sender: "alice@example.org".into(),
                recipients: vec!["bob@example.org".into(), "carol@example.org".into()],
            },
            Item {
                id: "4Yq7Zz1AbcXYZ".into(),
                status: ' ',
                size: 600,
                arrival: at,
                sender: String::new(),
                recipients: vec!["dave@example.org".into()],
            },
        ];
        let mut out = Vec::new();
        format(&items, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "-Queue ID-     --Size-- ----Arrival Time---- -Sender/Recipient-------"
        );
        let when = short_time(at);
        assert_eq!(when.len(), 19);
        assert_eq!(
            lines[1],
            format!("4Yq7Zz1AbcDEF*     1500 {when}  alice@example.org")
        );
        let col = lines[1].find("alice").unwrap();
        assert_eq!(lines[2].find("bob").unwrap(), col);
        assert_eq!(lines[3].find("carol").unwrap(), col);
        assert_eq!(lines[4], "");
        assert!(lines[5].ends_with(" MAILER-DAEMON"));
        assert_eq!(lines[0].find("-Sender").unwrap(), col);
        assert_eq!(lines.last().unwrap(), &"-- 2 Kbytes in 2 Requests.");
    }
}
