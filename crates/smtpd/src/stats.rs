//! Per-command counters for the `disconnect from` log line (Postfix
//! `smtpd.c:smtpd_format_cmd_stats`).
//!
//! Each command known to the server counts its successes and its total;
//! the line lists the commands in Postfix's table order as `name=ok` or,
//! when some failed, `name=ok/total`. Anything else counts as `unknown`.
//! `commands=` sums them all (`commands=0/0` for a client that sent
//! nothing).

/// Command names in Postfix's table order (plus HELP, which Postfix does
/// not implement), then `unknown`.
const NAMES: [&str; 13] = [
    "helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat", "rset", "noop", "vrfy",
    "quit", "help",
];
const UNKNOWN: usize = NAMES.len();

/// The counters of one session.
#[derive(Debug, Clone, Default)]
pub(crate) struct CommandStats {
    ok: [u32; NAMES.len() + 1],
    total: [u32; NAMES.len() + 1],
}

impl CommandStats {
    /// Counts one command by its verb (any case); `ok` says whether it
    /// succeeded.
    pub(crate) fn count(&mut self, verb: &str, ok: bool) {
        let i = NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(verb))
            .unwrap_or(UNKNOWN);
        self.total[i] = self.total[i].saturating_add(1);
        if ok {
            self.ok[i] = self.ok[i].saturating_add(1);
        }
    }

    /// ` ehlo=1 mail=1 rcpt=0/1 commands=2/3`, with the leading space.
    pub(crate) fn format(&self) -> String {
        let mut out = String::new();
        let (mut ok, mut total) = (0u32, 0u32);
        let names = NAMES.iter().chain(std::iter::once(&"unknown"));
        for (i, name) in names.enumerate() {
            if self.total[i] == 0 {
                continue;
            }
            out.push_str(&format!(" {name}={}", self.ok[i]));
            if self.ok[i] != self.total[i] {
                out.push_str(&format!("/{}", self.total[i]));
            }
            ok = ok.saturating_add(self.ok[i]);
            total = total.saturating_add(self.total[i]);
        }
        out.push_str(&format!(" commands={ok}"));
        if ok != total || total == 0 {
            out.push_str(&format!("/{total}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postfix_format() {
        let mut s = CommandStats::default();
        assert_eq!(s.format(), " commands=0/0");
        for (verb, ok) in [
            ("EHLO", true),
            ("MAIL", true),
            ("RCPT", true),
            ("DATA", true),
            ("QUIT", true),
        ] {
            s.count(verb, ok);
        }
        assert_eq!(s.format(), " ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5");
        s.count("RCPT", false);
        s.count("XYZZY", false);
        assert_eq!(
            s.format(),
            " ehlo=1 mail=1 rcpt=1/2 data=1 quit=1 unknown=0/1 commands=5/7"
        );
    }
}
