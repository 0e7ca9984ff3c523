//! One-byte wake-up requests to the queue manager.
//!
//! Postfix counterparts: the `QMGR_REQ_*` codes in `global/mail_proto.h`
//! and the TRIGGERS section of `qmgr/qmgr.c`.
//!
//! A trigger is a single byte written to a FIFO or a unix socket. The
//! receiver reads a whole buffer of them at once; [`collapse`] folds
//! repeated requests into one and orders them so that [`Trigger::ScanAll`]
//! and [`Trigger::FlushDead`] act before the scans they modify. To force a
//! deferred queue run a client sends `A F D`; to announce new mail, `I`.
//!
//! ```
//! use postern_wire::trigger::{collapse, Trigger};
//!
//! let got = collapse(b"DIDAxF");
//! assert_eq!(
//!     got.triggers,
//!     [Trigger::ScanAll, Trigger::FlushDead, Trigger::ScanDeferred, Trigger::ScanIncoming]
//! );
//! assert_eq!(got.ignored, b"x");
//! ```

/// A queue manager request.
///
/// Variants are listed in the order in which [`collapse`] returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Trigger {
    /// `A`: ignore deferred-queue file time stamps in the next deferred
    /// queue scan (Postfix `QMGR_REQ_SCAN_ALL`).
    ScanAll = b'A',
    /// `F`: forget which transports and destinations are dead (Postfix
    /// `QMGR_REQ_FLUSH_DEAD`).
    FlushDead = b'F',
    /// `D`: start a deferred queue scan (Postfix `QMGR_REQ_SCAN_DEFERRED`).
    ScanDeferred = b'D',
    /// `I`: start an incoming queue scan (Postfix `QMGR_REQ_SCAN_INCOMING`).
    ScanIncoming = b'I',
    /// `W`: wakeup from master; the queue manager treats it as an incoming
    /// queue scan (Postfix `QMGR_REQ_WAKEUP`).
    Wakeup = b'W',
}

impl Trigger {
    /// Every trigger, in processing order.
    pub const ALL: [Trigger; 5] = [
        Trigger::ScanAll,
        Trigger::FlushDead,
        Trigger::ScanDeferred,
        Trigger::ScanIncoming,
        Trigger::Wakeup,
    ];

    /// The trigger for a request byte.
    pub const fn from_byte(byte: u8) -> Option<Trigger> {
        Some(match byte {
            b'A' => Trigger::ScanAll,
            b'F' => Trigger::FlushDead,
            b'D' => Trigger::ScanDeferred,
            b'I' => Trigger::ScanIncoming,
            b'W' => Trigger::Wakeup,
            _ => return None,
        })
    }

    /// The request byte.
    pub const fn as_byte(self) -> u8 {
        self as u8
    }
}

/// What [`collapse`] made of a buffer of requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collapsed {
    /// Each distinct request once, in processing order.
    pub triggers: Vec<Trigger>,
    /// Each distinct unknown byte once, in order of first appearance; the
    /// receiver logs and ignores them (at most 256 entries).
    pub ignored: Vec<u8>,
}

/// Folds a buffer of request bytes into distinct requests in processing
/// order: `A` and `F` before `D`, `I` and `W`.
pub fn collapse(input: &[u8]) -> Collapsed {
    let mut seen = [false; 256];
    let mut ignored = Vec::new();
    for &byte in input {
        let Some(slot) = seen.get_mut(usize::from(byte)) else {
            continue;
        };
        if *slot {
            continue;
        }
        *slot = true;
        if Trigger::from_byte(byte).is_none() {
            ignored.push(byte);
        }
    }
    let triggers = Trigger::ALL
        .into_iter()
        .filter(|t| seen.get(usize::from(t.as_byte())).copied().unwrap_or(false))
        .collect();
    Collapsed { triggers, ignored }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn bytes_round_trip() {
        for t in Trigger::ALL {
            assert_eq!(Trigger::from_byte(t.as_byte()), Some(t));
        }
        assert_eq!(Trigger::from_byte(b'a'), None);
    }

    #[test]
    fn collapses_and_orders() {
        assert_eq!(collapse(b""), Collapsed::default());
        assert_eq!(collapse(b"IIII").triggers, [Trigger::ScanIncoming]);
        assert_eq!(
            collapse(b"WDIFA").triggers,
            [
                Trigger::ScanAll,
                Trigger::FlushDead,
                Trigger::ScanDeferred,
                Trigger::ScanIncoming,
                Trigger::Wakeup
            ]
        );
        assert_eq!(collapse(b"zz\0z").ignored, b"z\0");
    }

    proptest! {
        #[test]
        fn output_is_sorted_and_distinct(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let got = collapse(&input);
            let rank = |t: &Trigger| Trigger::ALL.iter().position(|a| a == t);
            prop_assert!(got.triggers.windows(2).all(|w| rank(&w[0]) < rank(&w[1])));
            for t in &got.triggers {
                prop_assert!(input.contains(&t.as_byte()));
            }
            for b in &input {
                prop_assert!(
                    Trigger::from_byte(*b).map_or(got.ignored.contains(b), |t| got.triggers.contains(&t))
                );
            }
        }
    }
}
