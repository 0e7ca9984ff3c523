//! Write → read round trips, patches, scans and hostile files, on a
//! temporary spool.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postern_wire::{Encoder, RecordType, Rules, Segment};
use proptest::prelude::*;

use crate::*;

fn spool() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for d in spool_layout() {
        fs::create_dir(dir.path().join(d.name)).unwrap();
    }
    dir
}

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_700_000_000, 250_000_000)
}

/// Writes a minimal file with the given content and line chunk.
fn write_content(spool: &Path, chunk: usize, pieces: &[&[u8]]) -> QueueId {
    let mut w = QueueFileWriter::create(spool, Queue::Incoming).unwrap();
    w.set_line_chunk(chunk).unwrap();
    w.time(t0()).unwrap();
    w.sender("").unwrap();
    w.recipient(&NewRecipient::new("bob@example.org")).unwrap();
    w.begin_content().unwrap();
    for p in pieces {
        w.write_content(p).unwrap();
    }
    w.end_content().unwrap();
    w.finish().unwrap()
}

fn read(spool: &Path, id: &QueueId) -> QueueFile {
    QueueFile::open(&id.path(spool, Queue::Incoming)).unwrap()
}

#[test]
fn round_trip_every_field() {
    let spool = spool();
    let mut w = QueueFileWriter::create(spool.path(), Queue::Incoming).unwrap();
    let id = w.id().clone();
    let path = w.path().to_owned();
    assert_eq!(path, id.path(spool.path(), Queue::Incoming));
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(!is_ready(&meta));

    w.time(t0()).unwrap();
    w.sender("alice@example.org").unwrap();
    w.attr("client_name", b"mail.example.org").unwrap();
    w.attr("client_address", b"192.0.2.1").unwrap();
    w.attr("helo_name", b"mail.example.org").unwrap();
    w.attr("protocol_name", b"ESMTP").unwrap();
    w.attr("sasl_username", b"").unwrap();
    w.attr("envid", b"QQ314159").unwrap();
    w.attr("ret", b"\x02").unwrap();
    let r1 = w
        .recipient(&NewRecipient {
            address: "bob@example.org",
            orcpt: Some("Bob@Example.ORG"),
            dsn_orcpt: Some("rfc822;Bob@Example.ORG"),
            notify: Notify::SUCCESS.union(Notify::FAILURE),
        })
        .unwrap();
    let r2 = w
        .recipient(&NewRecipient::new("carol@example.org"))
        .unwrap();
    // Warning times are whole seconds.
    let warn_at = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 4 * 3600);
    let warn_offset = w.warn(Some(warn_at)).unwrap();
    w.set_qmgr_flags(0x15);
    w.begin_content().unwrap();
    w.write_content(b"Subject: test\r\n\r\nbody\r\n").unwrap();
    w.end_content().unwrap();
    let r3 = w
        .recipient(&NewRecipient {
            address: "dave@example.org",
            orcpt: None,
            dsn_orcpt: None,
            notify: Some(Notify::NEVER),
        })
        .unwrap();
    w.attr("envid", b"extracted-may-repeat-envelope-names")
        .unwrap();
    assert_eq!(w.finish().unwrap(), id);

    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    assert!(is_ready(&meta));
    // Only the committed file is left: no temporary names.
    let names: Vec<_> = fs::read_dir(spool.path().join("incoming"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [id.as_str()]);

    let qf = QueueFile::open(&path).unwrap();
    assert_eq!(qf.version(), FORMAT_VERSION);
    assert_eq!(qf.arrival(), t0());
    assert_eq!(qf.sender(), "alice@example.org");
    assert_eq!(qf.attr("client_name"), Some(&b"mail.example.org"[..]));
    assert_eq!(qf.attr("sasl_username"), Some(&b""[..]));
    assert_eq!(qf.attr("envid"), Some(&b"QQ314159"[..]));
    assert_eq!(qf.attr("ret"), Some(&b"\x02"[..]));
    assert_eq!(qf.attr("nonexistent"), None);
    assert_eq!(qf.attrs().len(), 8);
    let extracted = qf.attrs().last().unwrap();
    assert_eq!(extracted.segment, Segment::Extracted);
    assert_eq!(extracted.name, "envid");

    let rcpts = qf.recipients();
    assert_eq!(rcpts.len(), 3);
    assert_eq!(rcpts[0].address, "bob@example.org");
    assert_eq!(rcpts[0].orcpt.as_deref(), Some("Bob@Example.ORG"));
    assert_eq!(
        rcpts[0].dsn_orcpt.as_deref(),
        Some("rfc822;Bob@Example.ORG")
    );
    assert_eq!(rcpts[0].notify, Notify::SUCCESS.union(Notify::FAILURE));
    assert_eq!(rcpts[0].offset, r1);
    assert_eq!(rcpts[0].status, RecipientStatus::Pending);
    assert_eq!(rcpts[0].segment, Segment::Envelope);
    assert_eq!(rcpts[1].address, "carol@example.org");
    assert_eq!(rcpts[1].orcpt, None);
    assert_eq!(rcpts[1].offset, r2);
    assert_eq!(rcpts[2].address, "dave@example.org");
    assert_eq!(rcpts[2].notify, Some(Notify::NEVER));
    assert_eq!(rcpts[2].offset, r3);
    assert_eq!(rcpts[2].segment, Segment::Extracted);

    let warn = qf.warn().unwrap();
    assert_eq!(warn.offset, warn_offset);
    assert_eq!(warn.at, Some(warn_at));

    let size = qf.size();
    assert_eq!(size.recipient_count, 3);
    assert_eq!(size.qmgr_flags, 0x15);
    assert_eq!(size.content_length, 23);
    assert_eq!(qf.content_to_vec(), b"Subject: test\r\n\r\nbody\r\n");
    let bytes = qf.as_bytes();
    let data = usize::try_from(size.data_offset).unwrap();
    let xtra = usize::try_from(size.extracted_offset).unwrap();
    assert_eq!(bytes[data - 2], b'M');
    assert_eq!(bytes[xtra], b'X');
    let mut sink = Vec::new();
    assert_eq!(qf.write_content(&mut sink).unwrap(), 23);
    assert_eq!(sink, qf.content_to_vec());
}

/// The exact bytes of a small file, so that a format change is a visible
/// decision.
#[test]
fn known_answer_file_bytes() {
    let spool = spool();
    let mut w = QueueFileWriter::create(spool.path(), Queue::Incoming).unwrap();
    w.time(UNIX_EPOCH + Duration::new(0x0102, 3_000)).unwrap();
    w.sender("a@b").unwrap();
    w.attr("k", b"v").unwrap();
    w.recipient(&NewRecipient::new("c@d")).unwrap();
    w.begin_content().unwrap();
    w.write_content(b"hi\nx").unwrap();
    let id = w.finish().unwrap();
    let bytes = fs::read(id.path(spool.path(), Queue::Incoming)).unwrap();
    let mut want: Vec<u8> = Vec::new();
    want.extend_from_slice(b"H\x0bPOSTERN\x01\x00\x00\x00");
    want.extend_from_slice(b"C\x28");
    for field in [4u64, 86, 1, 0, 93] {
        want.extend_from_slice(&field.to_le_bytes());
    }
    want.extend_from_slice(b"T\x0c\x02\x01\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00");
    want.extend_from_slice(b"S\x03a@b");
    want.extend_from_slice(b"A\x03k=v");
    want.extend_from_slice(b"R\x03c@d");
    want.extend_from_slice(b"M\x00");
    want.extend_from_slice(b"N\x02hi");
    want.extend_from_slice(b"L\x01x");
    want.extend_from_slice(b"X\x00");
    want.extend_from_slice(b"E\x00");
    assert_eq!(bytes, want);
}

#[test]
fn content_awkward_bytes() {
    let spool = spool();
    let long = vec![b'y'; 5000];
    let mut long_lines = long.clone();
    long_lines.push(b'\n');
    long_lines.extend_from_slice(&long);
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\n".to_vec(),
        b"\n\n\n".to_vec(),
        b"no trailing newline".to_vec(),
        b"crlf\r\nlines\r\n".to_vec(),
        b"lone\rcr\r".to_vec(),
        b"\r\n".to_vec(),
        b"8-bit \xe9\xff\x80 and NUL \x00 bytes\n".to_vec(),
        b".\n..dot\n.\r\n".to_vec(),
        long.clone(),
        long_lines,
    ];
    for chunk in [1, 2, 7, 8, DEFAULT_LINE_CHUNK] {
        for case in &cases {
            let id = write_content(spool.path(), chunk, &[case]);
            let qf = read(spool.path(), &id);
            assert_eq!(&qf.content_to_vec(), case, "chunk {chunk}");
            assert_eq!(qf.size().content_length, case.len() as u64);
            // Split at every byte: same file bytes.
            if case.len() < 40 {
                for split in 0..=case.len() {
                    let (a, b) = case.split_at(split);
                    let id2 = write_content(spool.path(), chunk, &[a, b]);
                    let qf2 = read(spool.path(), &id2);
                    assert_eq!(qf.as_bytes(), qf2.as_bytes(), "split {split}");
                }
            }
        }
    }
}

#[test]
fn line_of_exactly_chunk_length_is_one_record() {
    let spool = spool();
    let id = write_content(spool.path(), 4, &[b"abcd", b"\nefgh"]);
    let qf = read(spool.path(), &id);
    let data = usize::try_from(qf.size().data_offset).unwrap();
    assert_eq!(&qf.as_bytes()[data..data + 6], b"N\x04abcd");
    assert_eq!(&qf.as_bytes()[data + 6..data + 12], b"L\x04efgh");
    assert_eq!(qf.content_to_vec(), b"abcd\nefgh");
}

#[test]
fn mark_done_then_reread() {
    let spool = spool();
    let mut w = QueueFileWriter::create(spool.path(), Queue::Incoming).unwrap();
    w.time(t0()).unwrap();
    w.sender("a@example.org").unwrap();
    let first = w.recipient(&NewRecipient::new("b@example.org")).unwrap();
    w.recipient(&NewRecipient::new("c@example.org")).unwrap();
    let warn = w.warn(None).unwrap();
    let id = w.finish().unwrap();
    let path = id.path(spool.path(), Queue::Incoming);
    let before = fs::read(&path).unwrap();

    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    mark_done(&file, first).unwrap();
    mark_done(&file, first).unwrap(); // idempotent
    assert!(matches!(
        mark_done(&file, first + 1),
        Err(Error::NotPatchable { .. })
    ));
    let later = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 3600);
    set_warn_time(&file, warn, Some(later)).unwrap();
    assert!(set_warn_time(&file, first, None).is_err());
    set_qmgr_flags(&file, 7).unwrap();

    let after = fs::read(&path).unwrap();
    assert_eq!(before.len(), after.len());
    let qf = QueueFile::open(&path).unwrap();
    assert_eq!(qf.recipients()[0].status, RecipientStatus::Done);
    assert_eq!(qf.recipients()[1].status, RecipientStatus::Pending);
    assert_eq!(qf.warn().unwrap().at, Some(later));
    assert_eq!(qf.size().qmgr_flags, 7);
    // Only the patched bytes changed.
    let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    assert!(changed <= 1 + 8 + 8, "{changed}");
}

#[test]
fn truncated_at_every_length_is_corrupt() {
    let spool = spool();
    let id = write_content(spool.path(), 4, &[b"one\ntwo three\nfour"]);
    let bytes = fs::read(id.path(spool.path(), Queue::Incoming)).unwrap();
    assert!(QueueFile::read(&bytes).is_ok());
    for len in 0..bytes.len() {
        let err = QueueFile::read(&bytes[..len]).unwrap_err();
        assert!(err.is_corrupt(), "length {len}: {err}");
    }
    let mut longer = bytes.clone();
    longer.push(b'E');
    assert!(matches!(
        QueueFile::read(&longer),
        Err(Error::Corrupt {
            kind: Corruption::TrailingData,
            ..
        })
    ));
    // Every single-byte change either reads or fails cleanly.
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[i] ^= flip;
            if let Ok(qf) = QueueFile::read(&damaged) {
                let _ = qf.content_to_vec();
            }
        }
    }
}

/// A valid file built record by record, for hostile variants.
fn raw_file(body: &[(RecordType, &[u8])], size: Option<[u64; 5]>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out);
    enc.put(RecordType::Header, b"POSTERN\x01\x00\x00\x00")
        .unwrap();
    let mut size_payload = Vec::new();
    for f in size.unwrap_or_default() {
        size_payload.extend_from_slice(&f.to_le_bytes());
    }
    enc.put(RecordType::Size, &size_payload).unwrap();
    for (kind, data) in body {
        enc.put(*kind, data).unwrap();
    }
    out
}

fn time_payload() -> Vec<u8> {
    let mut t = 1_700_000_000u64.to_le_bytes().to_vec();
    t.extend_from_slice(&0u32.to_le_bytes());
    t
}

fn corruption(bytes: &[u8], rules: Rules) -> Corruption {
    let opts = ReadOptions {
        rules,
        ..ReadOptions::default()
    };
    match QueueFile::read_with(bytes, &opts) {
        Err(Error::Corrupt { kind, .. }) => kind,
        other => panic!("expected corrupt, got {other:?}"),
    }
}

type Body<'a> = Vec<(RecordType, &'a [u8])>;

fn with_base<'a>(time: &'a [u8], extra: &[(RecordType, &'a [u8])]) -> Vec<(RecordType, &'a [u8])> {
    let mut body: Vec<(RecordType, &'a [u8])> =
        vec![(RecordType::Time, time), (RecordType::Sender, b"a@b")];
    body.extend_from_slice(extra);
    body
}

#[test]
fn hostile_files() {
    let t = time_payload();
    let base = |extra: &[(RecordType, &'static [u8])]| with_base(&t, extra);
    let good = base(&[
        (RecordType::Recipient, b"c@d"),
        (RecordType::Message, b""),
        (RecordType::Xtra, b""),
        (RecordType::End, b""),
    ]);
    let probe = raw_file(&good, None);
    let fixed = |bytes: &[u8]| -> [u64; 5] {
        // data offset = after M; extracted offset = offset of X.
        let x = bytes.len() - 4;
        [0, x as u64, 1, 0, x as u64]
    };
    let size = fixed(&probe);
    let ok = raw_file(&good, Some(size));
    assert!(QueueFile::read(&ok).is_ok());

    // Wrong size record fields.
    let mut bad = size;
    bad[2] = 2;
    assert!(matches!(
        corruption(&raw_file(&good, Some(bad)), Rules::Queue),
        Corruption::SizeMismatch {
            field: "recipient_count",
            ..
        }
    ));
    // Bad magic and versions.
    let mut wrong = ok.clone();
    wrong[2] = b'p';
    assert_eq!(corruption(&wrong, Rules::Queue), Corruption::BadHeader);
    let mut wrong = ok.clone();
    wrong[9] = 2;
    assert_eq!(
        corruption(&wrong, Rules::Queue),
        Corruption::UnsupportedVersion { version: 2 }
    );
    // Unknown record type.
    let mut wrong = ok;
    let s = wrong.windows(5).position(|w| w == b"S\x03a@b").unwrap();
    wrong[s] = b'?';
    assert!(matches!(
        corruption(&wrong, Rules::Queue),
        Corruption::Record(postern_wire::Error::UnknownRecordType { byte: b'?' })
    ));
    // Done recipient is fine in a queue file but not from a submitter.
    let done = base(&[
        (RecordType::Done, b"c@d"),
        (RecordType::Message, b""),
        (RecordType::Xtra, b""),
        (RecordType::End, b""),
    ]);
    let done = raw_file(&done, Some(size));
    assert!(QueueFile::read(&done).is_ok());
    assert!(matches!(
        corruption(&done, Rules::Post),
        Corruption::Record(postern_wire::Error::UnexpectedRecord { .. })
    ));
    // Variants that must each fail, with the same layout length.
    let variants: Vec<(Body<'_>, &str)> = vec![
        (
            base(&[
                (RecordType::Attr, b"noequals"),
                (RecordType::Message, b""),
                (RecordType::Xtra, b""),
                (RecordType::End, b""),
            ]),
            "attr",
        ),
        (
            base(&[
                (RecordType::Attr, b"=v"),
                (RecordType::Message, b""),
                (RecordType::Xtra, b""),
                (RecordType::End, b""),
            ]),
            "attr name",
        ),
        (
            base(&[
                (RecordType::Orcpt, b"x"),
                (RecordType::Message, b""),
                (RecordType::Xtra, b""),
                (RecordType::End, b""),
            ]),
            "dangling orcpt",
        ),
        (
            base(&[
                (RecordType::DsnNotify, b"\x03"),
                (RecordType::Recipient, b"c"),
                (RecordType::Message, b""),
                (RecordType::Xtra, b""),
                (RecordType::End, b""),
            ]),
            "bad notify",
        ),
        (
            base(&[
                (RecordType::Sender, b"again"),
                (RecordType::Message, b""),
                (RecordType::Xtra, b""),
                (RecordType::End, b""),
            ]),
            "duplicate sender",
        ),
        (
            base(&[
                (RecordType::Recipient, b"\xff\xfe"),
                (RecordType::Message, b""),
                (RecordType::Xtra, b""),
                (RecordType::End, b""),
            ]),
            "not utf-8",
        ),
        (
            base(&[
                (RecordType::Warn, b"1234"),
                (RecordType::Message, b""),
                (RecordType::Xtra, b""),
                (RecordType::End, b""),
            ]),
            "short warn",
        ),
        (
            base(&[
                (RecordType::Message, b""),
                (RecordType::Recipient, b"c@d"),
                (RecordType::Xtra, b""),
                (RecordType::End, b""),
            ]),
            "recipient in content",
        ),
        (
            base(&[(RecordType::Message, b""), (RecordType::Xtra, b"")]),
            "no end",
        ),
        (
            vec![
                (RecordType::Sender, b"a@b"),
                (RecordType::Message, b""),
                (RecordType::Xtra, b""),
                (RecordType::End, b""),
            ],
            "no time",
        ),
    ];
    for (body, what) in variants {
        let bytes = raw_file(&body, Some(size));
        assert!(QueueFile::read(&bytes).unwrap_err().is_corrupt(), "{what}");
    }
}

#[test]
fn scan_skips_unready_and_reports_junk() {
    let spool = spool();
    let ready = write_content(spool.path(), 80, &[b"x\n"]);
    let unfinished = QueueFileWriter::create(spool.path(), Queue::Incoming).unwrap();
    let dir = spool.path().join("incoming");
    fs::write(dir.join("not-a-queue-id"), b"junk").unwrap();
    fs::write(dir.join(".hidden"), b"").unwrap();
    let fake = QueueId::from_parts(1_700_000_000, 1, 99);
    std::os::unix::fs::symlink("/etc/passwd", dir.join(fake.as_str())).unwrap();
    let sub = QueueId::from_parts(1_700_000_000, 2, 98);
    fs::create_dir(dir.join(sub.as_str())).unwrap();

    let mut entries: Vec<Entry> = scan(spool.path(), Queue::Incoming)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    entries.sort_by_key(|e| format!("{e:?}"));
    let ready_ids: Vec<_> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Ready { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ready_ids, std::slice::from_ref(&ready));
    assert!(entries.contains(&Entry::NotReady {
        id: unfinished.id().clone()
    }));
    assert!(entries.contains(&Entry::Rejected {
        name: "not-a-queue-id".into(),
        reason: Rejection::InvalidName
    }));
    assert!(entries.contains(&Entry::Rejected {
        name: fake.as_str().into(),
        reason: Rejection::NotRegularFile
    }));
    assert!(entries.contains(&Entry::Rejected {
        name: sub.as_str().into(),
        reason: Rejection::NotRegularFile
    }));
    assert_eq!(entries.len(), 5);

    // A skipped id is left out, whatever its file is.
    let skipped: Vec<Entry> = scan(spool.path(), Queue::Incoming)
        .unwrap()
        .skipping(|id| *id == ready || *id == fake)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(skipped.len(), 3);
    assert!(!skipped.iter().any(|e| matches!(e, Entry::Ready { .. })));

    // The reader refuses to follow the symlink.
    assert!(matches!(
        QueueFile::open(&fake.path(spool.path(), Queue::Incoming)),
        Err(Error::Corrupt {
            kind: Corruption::NotRegularFile,
            ..
        })
    ));
    drop(unfinished);
}

#[test]
fn dropping_an_unfinished_writer_removes_the_file() {
    let spool = spool();
    let w = QueueFileWriter::create(spool.path(), Queue::Incoming).unwrap();
    let path = w.path().to_owned();
    assert!(path.exists());
    drop(w);
    assert!(!path.exists());

    let mut w = QueueFileWriter::create(spool.path(), Queue::Incoming).unwrap();
    let path = w.path().to_owned();
    w.time(t0()).unwrap();
    assert!(matches!(
        w.finish(),
        Err(Error::Incomplete {
            missing: RecordType::Sender
        })
    ));
    assert!(!path.exists());
    assert_eq!(
        fs::read_dir(spool.path().join("incoming")).unwrap().count(),
        0
    );
}

#[test]
fn calls_out_of_order_are_refused() {
    let spool = spool();
    let mut w = QueueFileWriter::create(spool.path(), Queue::Incoming).unwrap();
    assert!(w.write_content(b"x").is_err());
    assert!(w.end_content().is_err());
    w.time(t0()).unwrap();
    assert!(w.time(t0()).is_err());
    assert!(matches!(
        w.attr("bad=name", b""),
        Err(Error::InvalidAttrName { .. })
    ));
    w.attr("a", b"1").unwrap();
    assert!(matches!(
        w.attr("a", b"2"),
        Err(Error::DuplicateAttr { .. })
    ));
    w.sender("s").unwrap();
    w.begin_content().unwrap();
    assert!(w.sender("t").is_err());
    assert!(w.recipient(&NewRecipient::new("r")).is_err());
    assert!(w.set_line_chunk(10).is_err());
    w.end_content().unwrap();
    assert!(w.warn(None).is_err());
    assert!(w.begin_content().is_err());
    let id = w.finish().unwrap();
    let qf = read(spool.path(), &id);
    assert!(qf.recipients().is_empty());
    assert!(qf.content_to_vec().is_empty());
}

#[test]
fn queue_ids_are_unique_across_quick_creates() {
    let spool = spool();
    let mut seen = std::collections::HashSet::new();
    let mut keep = Vec::new();
    for i in 0..300 {
        let w = QueueFileWriter::create(spool.path(), Queue::Incoming).unwrap();
        assert!(seen.insert(w.id().clone()), "duplicate id {}", w.id());
        assert_eq!(QueueId::parse(w.id().as_str()).unwrap(), *w.id());
        // Keep some open, drop others so inodes get reused.
        if i % 3 == 0 {
            keep.push(w);
        }
    }
}

#[test]
fn move_between_queues() {
    let spool = spool();
    let id = write_content(spool.path(), 80, &[b"x\n"]);
    move_file(spool.path(), &id, Queue::Incoming, Queue::Active).unwrap();
    assert!(!id.path(spool.path(), Queue::Incoming).exists());
    let qf = QueueFile::open(&id.path(spool.path(), Queue::Active)).unwrap();
    assert_eq!(qf.content_to_vec(), b"x\n");
    move_file(spool.path(), &id, Queue::Active, Queue::Active).unwrap();
    move_file(spool.path(), &id, Queue::Active, Queue::Deferred).unwrap();
    let file = fs::File::open(id.path(spool.path(), Queue::Deferred)).unwrap();
    let next = t0() + Duration::from_secs(600);
    set_next_attempt(&file, next).unwrap();
    let entries: Vec<_> = scan(spool.path(), Queue::Deferred)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        entries,
        [Entry::Ready {
            id: id.clone(),
            modified: next
        }]
    );
    remove(spool.path(), &id, Queue::Deferred).unwrap();
    assert!(move_file(spool.path(), &id, Queue::Deferred, Queue::Active).is_err());
}

#[test]
fn oversized_files_and_records_are_refused() {
    let spool = spool();
    let id = write_content(spool.path(), 80, &[b"hello\n"]);
    let path = id.path(spool.path(), Queue::Incoming);
    let opts = ReadOptions {
        max_file_len: 10,
        ..ReadOptions::default()
    };
    assert!(matches!(
        QueueFile::open_with(&path, &opts),
        Err(Error::Corrupt {
            kind: Corruption::TooLarge { .. },
            ..
        })
    ));
    let opts = ReadOptions {
        max_record_len: 4,
        ..ReadOptions::default()
    };
    assert!(QueueFile::open_with(&path, &opts).unwrap_err().is_corrupt());
    let mut w = QueueFileWriter::create(spool.path(), Queue::Incoming).unwrap();
    let huge = "x".repeat(postern_wire::DEFAULT_MAX_RECORD_LEN as usize + 1);
    assert!(matches!(w.sender(&huge), Err(Error::RecordTooLong { .. })));
}

fn content_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::sample::select(b"ab.\r\n".to_vec()),
            1 => any::<u8>(),
        ],
        0..200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn content_round_trip(
        content in content_bytes(),
        chunk in 1usize..12,
        splits in proptest::collection::vec(0usize..200, 0..4),
    ) {
        let spool = spool();
        let mut cuts: Vec<usize> = splits.into_iter().map(|s| s.min(content.len())).collect();
        cuts.sort_unstable();
        let mut pieces: Vec<&[u8]> = Vec::new();
        let mut last = 0;
        for cut in cuts {
            pieces.push(&content[last..cut]);
            last = cut;
        }
        pieces.push(&content[last..]);
        let id = write_content(spool.path(), chunk, &pieces);
        let qf = read(spool.path(), &id);
        prop_assert_eq!(qf.content_to_vec(), content.clone());
        prop_assert_eq!(qf.size().content_length, content.len() as u64);
        let whole = write_content(spool.path(), chunk, &[&content]);
        let again = read(spool.path(), &whole);
        prop_assert_eq!(again.as_bytes(), qf.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut input = b"H\x0bPOSTERN\x01\x00\x00\x00".to_vec();
        input.extend_from_slice(&bytes);
        if let Ok(qf) = QueueFile::read(&input) {
            let _ = qf.content_to_vec();
        }
        let _ = QueueFile::read(&bytes);
    }
}

#[test]
fn extra_mode_adds_only_read_bits_to_the_ready_mode() {
    let dir = spool();
    let mut w = QueueFileWriter::create(dir.path(), Queue::Maildrop).unwrap();
    w.set_extra_mode(0o777);
    w.time(t0()).unwrap();
    w.sender("a").unwrap();
    let path = w.path().to_path_buf();
    let id = w.finish().unwrap();
    assert_eq!(path, id.path(dir.path(), Queue::Maildrop));
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o744);
    assert!(is_ready(&fs::metadata(&path).unwrap()));
}

#[test]
fn a_file_being_written_is_in_use_until_committed_or_dropped() {
    let dir = spool();
    let mut w = QueueFileWriter::create(dir.path(), Queue::Incoming).unwrap();
    let path = w.path().to_path_buf();
    assert!(crate::in_use(&path).unwrap());
    w.time(t0()).unwrap();
    w.sender("a@b").unwrap();
    w.recipient(&NewRecipient::new("c@d")).unwrap();
    w.begin_content().unwrap();
    let id = w.finish().unwrap();
    assert!(!crate::in_use(&id.path(dir.path(), Queue::Incoming)).unwrap());
    // Abandoned (a crashed writer leaves the file; here it is recreated
    // by hand): not in use.
    std::fs::write(&path, b"partial").unwrap();
    assert!(!crate::in_use(&path).unwrap());
}

#[test]
fn the_envelope_alone_reads_like_the_whole_file() {
    let spool = spool();
    let mut w = QueueFileWriter::create(spool.path(), Queue::Incoming).unwrap();
    w.time(t0()).unwrap();
    w.sender("alice@example.org").unwrap();
    w.attr("envid", b"E1").unwrap();
    w.recipient(&NewRecipient {
        orcpt: Some("Orig@example.org"),
        notify: Some(Notify::FAILURE),
        ..NewRecipient::new("bob@example.org")
    })
    .unwrap();
    w.warn(Some(t0())).unwrap();
    w.begin_content().unwrap();
    let body = "x".repeat(100_000) + "\n";
    w.write_content(format!("Subject: big\n\n{body}").as_bytes())
        .unwrap();
    w.end_content().unwrap();
    w.attr("extracted", b"yes").unwrap();
    w.recipient(&NewRecipient::new("carol@example.org"))
        .unwrap();
    let id = w.finish().unwrap();
    let path = id.path(spool.path(), Queue::Incoming);
    let whole = QueueFile::open(&path).unwrap();
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    mark_done(&f, whole.recipients()[0].offset).unwrap();
    let whole = QueueFile::open(&path).unwrap();
    let env = QueueFile::open_envelope(&path, &ReadOptions::default()).unwrap();
    assert_eq!(&env.size, whole.size());
    assert_eq!(env.arrival, whole.arrival());
    assert_eq!(env.sender, whole.sender());
    assert_eq!(env.attrs, whole.attrs());
    assert_eq!(env.recipients, whole.recipients(), "offsets included");
    assert_eq!(env.warn, whole.warn());
    assert_eq!(env.recipients[0].status, RecipientStatus::Done);
    assert_eq!(env.recipients[1].segment, Segment::Extracted);

    // A size record whose offsets do not fit the file is corruption.
    let mut bytes = fs::read(&path).unwrap();
    let bad = spool.path().join("incoming/bad");
    let mut size = *whole.size();
    size.extracted_offset += 3;
    let at = usize::try_from(crate::format::SIZE_PAYLOAD_OFFSET).unwrap();
    bytes[at..at + crate::format::SIZE_PAYLOAD_LEN].copy_from_slice(&size.encode());
    fs::write(&bad, &bytes).unwrap();
    let e = QueueFile::open_envelope(&bad, &ReadOptions::default()).unwrap_err();
    assert!(e.is_corrupt(), "{e}");
    size.extracted_offset = u64::MAX;
    bytes[at..at + crate::format::SIZE_PAYLOAD_LEN].copy_from_slice(&size.encode());
    fs::write(&bad, &bytes).unwrap();
    assert!(
        QueueFile::open_envelope(&bad, &ReadOptions::default())
            .unwrap_err()
            .is_corrupt()
    );
    // Truncated, empty, and not a queue file at all.
    let whole_bytes = fs::read(&path).unwrap();
    for cut in [0, 10, 60, whole_bytes.len() - 1] {
        fs::write(&bad, &whole_bytes[..cut]).unwrap();
        let e = QueueFile::open_envelope(&bad, &ReadOptions::default()).unwrap_err();
        assert!(e.is_corrupt(), "cut at {cut}: {e}");
    }
}

/// The envelope reader reads a small file at once, and what lies beyond
/// its first read where it is: an envelope longer than that read, and a
/// small file's extracted segment.
#[test]
fn long_envelopes_and_small_files_read_like_the_whole_file() {
    let spool = spool();
    for (rcpts, body) in [(300, "short\n"), (1, "short\n"), (2, "y\n")] {
        let mut w = QueueFileWriter::create(spool.path(), Queue::Incoming).unwrap();
        w.time(t0()).unwrap();
        w.sender("alice@example.org").unwrap();
        for i in 0..rcpts {
            w.recipient(&NewRecipient::new(&format!("rcpt{i}@example.org")))
                .unwrap();
        }
        w.begin_content().unwrap();
        w.write_content(format!("Subject: s\n\n{body}").as_bytes())
            .unwrap();
        w.end_content().unwrap();
        w.recipient(&NewRecipient::new("extracted@example.org"))
            .unwrap();
        let id = w.finish().unwrap();
        let path = id.path(spool.path(), Queue::Incoming);
        let len = fs::metadata(&path).unwrap().len();
        assert_eq!(len > 4096, rcpts == 300, "{len}");
        let whole = QueueFile::open(&path).unwrap();
        let env = QueueFile::open_envelope(&path, &ReadOptions::default()).unwrap();
        assert_eq!(env.recipients, whole.recipients());
        assert_eq!(env.recipients.len(), rcpts + 1);
        assert_eq!(env.recipients[rcpts].segment, Segment::Extracted);
        assert_eq!(&env.size, whole.size());
        fs::remove_file(&path).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn envelope_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, &bytes).unwrap();
        let _ = QueueFile::open_envelope(&path, &ReadOptions::default());
    }

    #[test]
    fn envelope_reader_survives_damaged_files(pos in 0usize..400, byte in any::<u8>()) {
        static VALID: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
            let spool = spool();
            let id = write_content(spool.path(), 64, &[b"Subject: s\n\nbody\n"]);
            fs::read(id.path(spool.path(), Queue::Incoming)).unwrap()
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut bytes = VALID.clone();
        let i = pos % bytes.len();
        bytes[i] = byte;
        fs::write(&path, &bytes).unwrap();
        // Whatever it says, it does not panic, and a file it accepts
        // agrees with the whole-file reader on what both read.
        if let (Ok(env), Ok(whole)) = (
            QueueFile::open_envelope(&path, &ReadOptions::default()),
            QueueFile::open(&path),
        ) {
            prop_assert_eq!(env.recipients, whole.recipients().to_vec());
            prop_assert_eq!(env.sender, whole.sender());
        }
    }
}
