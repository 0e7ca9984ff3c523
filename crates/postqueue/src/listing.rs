//! The two shapes of the queue listing (Postfix `postqueue/showq_compat.c`
//! and `showq_json.c`).
//!
//! The traditional listing, with Postfix's long-queue-id columns (Postern
//! queue ids are always long):
//!
//! ```text
//! ----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------
//! 4Y5Lrq3yTsz1Qwm      1234 Tue Nov 24 17:08:21 alice@example.org
//!                                                          (connect to x: Connection refused)
//!                                                bob@example.org
//!
//! -- 1 Kbytes in 1 Request.
//! ```
//!
//! The id is followed by `*` for the active queue and `!` for the hold
//! queue. A reason line (right-aligned to column 78) comes before a
//! recipient whenever it differs from the previous recipient's, and
//! `(reason unavailable)` when a recipient after one with a reason has
//! none. The null sender shows as `MAILER-DAEMON`.
//!
//! The JSON listing is one object per line (`postqueue -j`), with
//! Postfix's field names: `queue_name`, `queue_id`, `arrival_time`,
//! `message_size`, `force_expired`, `sender`, `recipients` (each
//! `address` and, when there is one, `delay_reason`).

use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};

use postern_ipc::showq::Message;

/// What the null sender is shown as (Postfix `empty_address_recipient`).
const EMPTY_SENDER: &str = "MAILER-DAEMON";

/// `Tue Nov 24 17:08:21` in local time: asctime(3) without the year, as
/// Postfix shows it.
pub(crate) fn short_time(secs: u64) -> String {
    match jiff::Timestamp::try_from(UNIX_EPOCH + Duration::from_secs(secs)) {
        Ok(ts) => ts
            .to_zoned_datetime(postern_util::time::local_zone())
            .strftime("%a %b %e %H:%M:%S")
            .to_string(),
        Err(_) => "???".into(),
    }
}

fn sender(m: &Message) -> &str {
    if m.sender.is_empty() {
        EMPTY_SENDER
    } else {
        &m.sender
    }
}

/// The traditional listing, written as messages arrive.
#[derive(Debug, Default)]
pub(crate) struct Compat {
    count: u64,
    bytes: u64,
}

impl Compat {
    /// Writes one message (and the heading before the first).
    pub(crate) fn message(&mut self, out: &mut impl Write, m: &Message) -> io::Result<()> {
        if self.count == 0 {
            writeln!(
                out,
                "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------"
            )?;
        } else {
            writeln!(out)?;
        }
        let status = match m.queue_name.as_str() {
            "active" => "*",
            "hold" => "!",
            _ => "",
        };
        let expired = if m.force_expired { "#" } else { "" };
        writeln!(
            out,
            "{:<17} {:>8} {:>19.19} {}",
            format!("{}{status}{expired}", m.queue_id),
            m.message_size,
            short_time(m.arrival_time),
            sender(m)
        )?;
        let mut last = "";
        for r in &m.recipients {
            if r.reason != last {
                last = &r.reason;
                let shown = if last.is_empty() {
                    "reason unavailable"
                } else {
                    last
                };
                let pad = 76usize.saturating_sub(shown.chars().count());
                writeln!(out, "{:pad$}({shown})", "")?;
            }
            writeln!(out, "{:<17} {:>8} {:<19} {}", "", "", "", r.address)?;
        }
        self.count += 1;
        self.bytes = self.bytes.saturating_add(m.message_size);
        Ok(())
    }

    /// Writes the summary.
    pub(crate) fn finish(&self, out: &mut impl Write) -> io::Result<()> {
        if self.count == 0 {
            writeln!(out, "Mail queue is empty")
        } else {
            writeln!(
                out,
                "\n-- {} Kbytes in {} Request{}.",
                self.bytes / 1024,
                self.count,
                if self.count == 1 { "" } else { "s" }
            )
        }
    }
}

/// A JSON string body (Postfix `json_quote`): `"` and `\` escaped,
/// control characters as short escapes or `\u00XX`.
pub(crate) fn json_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// One message as a JSON object on one line.
pub(crate) fn json(out: &mut impl Write, m: &Message) -> io::Result<()> {
    write!(
        out,
        "{{\"queue_name\": \"{}\", \"queue_id\": \"{}\", \"arrival_time\": {}, \
         \"message_size\": {}, \"force_expired\": {}, \"sender\": \"{}\", \"recipients\": [",
        json_quote(&m.queue_name),
        json_quote(&m.queue_id),
        m.arrival_time,
        m.message_size,
        m.force_expired,
        json_quote(sender(m))
    )?;
    for (i, r) in m.recipients.iter().enumerate() {
        if i > 0 {
            write!(out, ", ")?;
        }
        write!(out, "{{\"address\": \"{}\"", json_quote(&r.address))?;
        if !r.reason.is_empty() {
            write!(out, ", \"delay_reason\": \"{}\"", json_quote(&r.reason))?;
        }
        write!(out, "}}")?;
    }
    writeln!(out, "]}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_ipc::showq::Recipient;

    fn rcpt(a: &str, r: &str) -> Recipient {
        Recipient {
            address: a.into(),
            reason: r.into(),
        }
    }

    fn sample() -> Vec<Message> {
        vec![
            Message {
                queue_name: "active".into(),
                queue_id: "4Y5Lrq3yTsz1Qwm".into(),
                arrival_time: 1_700_000_000,
                message_size: 1500,
                force_expired: false,
                sender: "alice@example.org".into(),
                recipients: vec![rcpt("bob@example.org", ""), rcpt("carol@example.org", "")],
            },
            Message {
                queue_name: "deferred".into(),
                queue_id: "4Y5Lrq3yTtz1Qwn".into(),
                arrival_time: 1_700_000_000,
                message_size: 600,
                force_expired: false,
                sender: String::new(),
                recipients: vec![
                    rcpt("dave@example.org", "connect to x: Connection refused"),
                    rcpt("erin@example.org", "connect to x: Connection refused"),
                    rcpt("frank@example.org", ""),
                ],
            },
            Message {
                queue_name: "hold".into(),
                queue_id: "4Y5Lrq3yTvz1Qwp".into(),
                arrival_time: 1_700_000_000,
                message_size: 100,
                force_expired: false,
                sender: "x\"y\\z@example.org".into(),
                recipients: vec![rcpt("g@example.org", "tab\there")],
            },
        ]
    }

    #[test]
    fn empty_queue() {
        let mut out = Vec::new();
        Compat::default().finish(&mut out).unwrap();
        assert_eq!(out, b"Mail queue is empty\n");
    }

    #[test]
    fn compat_shape() {
        let mut out = Vec::new();
        let mut c = Compat::default();
        for m in sample() {
            c.message(&mut out, &m).unwrap();
        }
        c.finish(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let when = short_time(1_700_000_000);
        assert_eq!(when.len(), 19);
        let pad = |reason: &str| format!("{}({reason})", " ".repeat(76 - reason.len()));
        let r = |a: &str| format!("{}{a}", " ".repeat(47));
        let expected = [
            "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------".to_string(),
            format!("4Y5Lrq3yTsz1Qwm*      1500 {when} alice@example.org"),
            r("bob@example.org"),
            r("carol@example.org"),
            String::new(),
            format!("4Y5Lrq3yTtz1Qwn        600 {when} MAILER-DAEMON"),
            pad("connect to x: Connection refused"),
            r("dave@example.org"),
            r("erin@example.org"),
            pad("reason unavailable"),
            r("frank@example.org"),
            String::new(),
            format!("4Y5Lrq3yTvz1Qwp!       100 {when} x\"y\\z@example.org"),
            pad("tab\there"),
            r("g@example.org"),
            String::new(),
            "-- 2 Kbytes in 3 Requests.".to_string(),
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), expected);
        // The sender and recipient columns line up under the heading.
        let lines: Vec<&str> = text.lines().collect();
        let col = lines[0].find("--Sender").unwrap();
        assert_eq!(lines[1].find("alice").unwrap(), col);
        assert_eq!(lines[2].find("bob").unwrap(), col);
        // Reasons end in column 78, as in Postfix.
        assert_eq!(pad("x").len(), 78);
    }

    #[test]
    fn json_shape() {
        let mut out = Vec::new();
        for m in sample() {
            json(&mut out, &m).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            "{\"queue_name\": \"active\", \"queue_id\": \"4Y5Lrq3yTsz1Qwm\", \
             \"arrival_time\": 1700000000, \"message_size\": 1500, \"force_expired\": false, \
             \"sender\": \"alice@example.org\", \"recipients\": [{\"address\": \"bob@example.org\"}, \
             {\"address\": \"carol@example.org\"}]}"
        );
        assert!(lines[1].contains("\"sender\": \"MAILER-DAEMON\""));
        assert!(lines[1].contains(
            "{\"address\": \"dave@example.org\", \"delay_reason\": \"connect to x: Connection refused\"}"
        ));
        assert!(lines[2].contains("\"sender\": \"x\\\"y\\\\z@example.org\""));
        assert!(lines[2].contains("\"delay_reason\": \"tab\\there\""));
        assert_eq!(json_quote("a\u{1}b\u{7f}é"), "a\\u0001b\\u007Fé");
    }
}
