//! pickup(8): local mail pickup (Postfix `pickup.c`).
//!
//! SYNOPSIS: `pickup [generic daemon options]`, started by master for the
//! `public/pickup` trigger service:
//!
//! ```toml
//! [pickup]
//! type = "unix"
//! private = false
//! wakeup = "60s"
//! maxproc = 1
//! command = "pickup"
//! ```
//!
//! DESCRIPTION: pickup waits for a hint that new mail was dropped into
//! the `maildrop` queue (postdrop writes `W` to `public/pickup`; master
//! writes `W` every `wakeup` interval), then copies every ready maildrop
//! file to cleanup(8) and removes it once cleanup has queued it. The
//! request to cleanup is a local submission (`flags::LOCAL`, plus
//! `EXTRACT_RECIPIENTS | DROP_BCC` for `sendmail -t`) with the attributes
//! `rewrite_context`, `full_name`, `submission_uid` and the DSN
//! `envid`/`ret`, and each recipient with its DSN notify flags. The log
//! line is Postfix's: `QUEUEID: uid=1000 from=<user>`. See
//! [`maildrop`] for what happens when cleanup refuses a message or a file
//! is damaged, and for the removal of abandoned files.
//!
//! SECURITY: pickup is moderately security sensitive: it reads files
//! written by potentially hostile local users. Files are read with the
//! narrow record rules for submissions ([`postern_wire::Rules::Post`]),
//! never following symbolic links, and every check of the queue reader
//! applies; a file that fails them goes to `corrupt/`. pickup runs as
//! `mail_owner` (master's `unpriv`).
//!
//! DIAGNOSTICS: problems are logged as warnings. pickup does not bounce
//! mail: a message cleanup refuses for good is logged and dropped (there
//! is no bounce service yet).
//!
//! CONFIGURATION PARAMETERS: `queue_directory`, `ipc_timeout`.
//!
//! SEE ALSO: cleanup(8), sendmail(1), postdrop(1), master(8).

mod maildrop;

use std::time::{Duration, Instant, SystemTime};

use postern_server::Context;
use postern_server::trigger::{self, TriggerService};
use postern_util::debug;

use crate::maildrop::{Maildrop, STALE_AGE, Step};

/// Scan this often even without a trigger (master's `wakeup` normally
/// comes first).
const RESCAN: Duration = Duration::from_secs(60);
/// Look for abandoned files this often.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

struct Pickup {
    maildrop: Maildrop,
    next_scan: Instant,
    next_sweep: Instant,
}

impl Pickup {
    fn run(&mut self) {
        let now = Instant::now();
        if now >= self.next_sweep {
            self.maildrop.sweep(SystemTime::now(), STALE_AGE);
            self.next_sweep = now + SWEEP_EVERY;
        }
        let steps = self.maildrop.scan();
        for (id, step) in &steps {
            debug!("maildrop/{id}: {step:?}");
        }
        // Retry sooner when cleanup could not take everything.
        let stopped = steps.iter().any(|(_, s)| *s == Step::Stop);
        self.next_scan = Instant::now() + if stopped { RESCAN / 6 } else { RESCAN };
    }
}

impl TriggerService for Pickup {
    fn trigger(&mut self, _ctx: &Context, _request: &[u8]) {
        self.run();
    }

    fn deadline(&self) -> Option<Instant> {
        Some(self.next_scan)
    }

    fn timer(&mut self, _ctx: &Context) {
        self.run();
    }
}

fn main() {
    trigger::run("pickup", |ctx| {
        let now = Instant::now();
        Ok(Pickup {
            maildrop: Maildrop::new(
                ctx.config.path("queue_directory"),
                ctx.config.time("ipc_timeout"),
            ),
            next_scan: now,
            next_sweep: now,
        })
    })
}
