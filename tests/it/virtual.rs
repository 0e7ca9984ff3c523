//! virtual(8): delivery requests as qmgr sends them, against queue files
//! written into `active/`; mailboxes and queue files checked.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postern_ipc::deliver::{Action, RcptStatus, Recipient, Request};
use postern_queue::{QueueFile, RecipientStatus};
use postern_tests::{Instance, agent};

const WAIT: Duration = Duration::from_secs(20);
const TABLE: &str = "[virtual]\ntype = \"unix\"\nunpriv = false\ncommand = \"virtual\"\n";
const CONTENT: &[u8] =
    b"From: a@example.test\nSubject: test\n\nFrom the top\nbinary \xff\x00 ok\r\nlast line\n";

fn start(base: &Path, maps: &str) -> Instance {
    let main = format!(
        "virtual_mailbox_base = \"{}\"\nvirtual_mailbox_maps = \"{maps}\"\n\
         recipient_delimiter = \"+\"\n",
        base.display()
    );
    let mut inst = Instance::new(&main, TABLE);
    inst.start();
    inst
}

fn queue_file(inst: &Instance, sender: &str, rcpts: &[&str]) -> (String, Vec<Recipient>) {
    agent::queue_file(&inst.queue_dir, sender, rcpts, CONTENT)
}

fn request(id: &str, sender: &str, recipients: Vec<Recipient>) -> Request {
    agent::request(id, "example.test", sender, recipients)
}

fn send(inst: &Instance, req: &Request) -> Vec<RcptStatus> {
    agent::send(&inst.queue_dir, "virtual", req)
}

fn statuses(inst: &Instance, id: &str) -> Vec<(String, RecipientStatus)> {
    let qf = QueueFile::open(&inst.queue_dir.join("active").join(id)).unwrap();
    qf.recipients()
        .iter()
        .map(|r| (r.address.clone(), r.status))
        .collect()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn delivers_to_maildir_and_mbox_and_bounces_unknown_users() {
    let base = tempfile::tempdir().unwrap();
    let inst = start(
        base.path(),
        "inline:{ dev@example.test=dev/Maildir/, @other.test=other/catchall }",
    );
    // mbox files are created, their directories are not (as in Postfix).
    fs::create_dir(base.path().join("other")).unwrap();
    let (id, rcpts) = queue_file(
        &inst,
        "a@example.test",
        &[
            "dev+tag@example.test",
            "x@other.test",
            "nobody@example.test",
        ],
    );
    let got = send(&inst, &request(&id, "a@example.test", rcpts.clone()));
    assert_eq!(got.len(), 3, "{got:?}");

    assert_eq!(got[0].offset, rcpts[0].offset);
    assert_eq!(got[0].action, Action::Delivered);
    assert_eq!(got[0].dsn, "2.0.0");
    assert_eq!(got[0].reason, "delivered to maildir");
    assert_eq!(got[1].action, Action::Delivered, "{got:?}");
    assert_eq!(got[1].reason, "delivered to mailbox");
    assert_eq!(got[2].action, Action::Failed);
    assert_eq!(got[2].dsn, "5.1.1");
    assert_eq!(got[2].reason, "unknown user: \"nobody@example.test\"");

    // The Maildir file, byte for byte.
    let md = base.path().join("dev/Maildir");
    let new = files_in(&md.join("new"));
    assert_eq!(new.len(), 1, "{new:?}");
    let mut want = b"Return-Path: <a@example.test>\nDelivered-To: dev+tag@example.test\n".to_vec();
    want.extend_from_slice(CONTENT);
    assert_eq!(fs::read(&new[0]).unwrap(), want);
    assert!(files_in(&md.join("tmp")).is_empty());
    assert!(md.join("cur").is_dir());

    // The mbox file.
    let mbox = fs::read(base.path().join("other/catchall")).unwrap();
    let text = String::from_utf8_lossy(&mbox);
    assert!(text.starts_with("From a@example.test  "), "{text}");
    let body = &mbox[mbox.iter().position(|&b| b == b'\n').unwrap() + 1..];
    let mut want = b"Return-Path: <a@example.test>\nDelivered-To: x@other.test\n".to_vec();
    want.extend_from_slice(
        b"From: a@example.test\nSubject: test\n\n>From the top\nbinary \xff\x00 ok\r\nlast line\n\n",
    );
    assert_eq!(body, &want[..]);

    // All three are final: done in the queue file.
    assert_eq!(
        statuses(&inst, &id),
        vec![
            ("dev+tag@example.test".to_string(), RecipientStatus::Done),
            ("x@other.test".to_string(), RecipientStatus::Done),
            ("nobody@example.test".to_string(), RecipientStatus::Done),
        ]
    );

    let log = inst.wait_log("to=<nobody@example.test>", WAIT);
    let line = log
        .lines()
        .find(|l| l.contains("to=<dev+tag@example.test>"))
        .expect("delivery line");
    assert!(line.contains("/virtual["), "{line}");
    assert!(
        line.contains(&format!(
            "{id}: to=<dev+tag@example.test>, relay=virtual, delay="
        )),
        "{line}"
    );
    assert!(
        line.contains(", dsn=2.0.0, status=sent (delivered to maildir)"),
        "{line}"
    );
    assert!(line.contains(", delays="), "{line}");
    assert!(
        log.contains("to=<nobody@example.test>, relay=virtual, delay=")
            && log.contains("dsn=5.1.1, status=bounced (unknown user: \"nobody@example.test\")"),
        "{log}"
    );
}

#[test]
fn lookup_failure_defers_and_leaves_the_recipient_pending() {
    let base = tempfile::tempdir().unwrap();
    let inst = start(base.path(), "fail:boxes");
    let (id, rcpts) = queue_file(&inst, "", &["dev@example.test"]);
    let got = send(&inst, &request(&id, "", rcpts));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].action, Action::Delayed);
    assert_eq!(got[0].dsn, "4.3.0");
    assert_eq!(
        statuses(&inst, &id),
        vec![("dev@example.test".to_string(), RecipientStatus::Pending)]
    );
    assert!(fs::read_dir(base.path()).unwrap().next().is_none());
    let log = inst.wait_log("status=deferred", WAIT);
    assert!(
        log.contains("to=<dev@example.test>, relay=virtual, delay=")
            && log.contains("dsn=4.3.0, status=deferred (virtual_mailbox_maps lookup failure)"),
        "{log}"
    );
}
