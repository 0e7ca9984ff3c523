//! Queue tools against a running instance: showq and postqueue (`-p`,
//! `-j`, `-f`, `-i`, `-s`), mailq and sendmail `-bp`/`-q`, flush, and
//! postsuper (`-d`, `-h`, `-H`, `-r`, `-s`, `-p`, `-`), with messages in
//! the hold queue (header_checks HOLD), the deferred queue (the test
//! agent's `defer-*` recipients, or a transport that does not exist) and
//! the active queue (the test agent's slow `slow-*` recipients); also as
//! an ordinary user through the public sockets, and with master down.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use postern_ipc::cleanup::{Client, Recipient};
use postern_queue::{Queue, QueueFile, QueueId};
use postern_tests::{Instance, bin_dir};

const WAIT: Duration = Duration::from_secs(30);

const TABLE: &str = "\
[cleanup]\ntype = \"unix\"\nmaxproc = 4\ncommand = \"cleanup\"\n\
[rewrite]\ntype = \"unix\"\ncommand = \"trivial-rewrite\"\n\
[qmgr]\ntype = \"unix\"\nprivate = false\nwakeup = \"300s\"\nmaxproc = 1\ncommand = \"qmgr\"\n\
[pickup]\ntype = \"unix\"\nprivate = false\nwakeup = \"60s\"\nmaxproc = 1\ncommand = \"pickup\"\n\
[showq]\ntype = \"unix\"\nprivate = false\ncommand = \"showq\"\n\
[flush]\ntype = \"unix\"\nprivate = false\ncommand = \"flush\"\n\
[testagent]\ntype = \"unix\"\ncommand = \"test-deliver\"\n";

/// Local domains go to the test agent, others to a transport that does
/// not exist (deferred); a long backoff keeps deferred mail put.
fn start() -> Instance {
    let inst = Instance::new("", TABLE);
    let checks = inst.dir.path().join("header_checks");
    fs::write(&checks, "/^Subject: hold/ HOLD held by test\n").unwrap();
    let main = format!(
        "local_transport = \"testagent\"\ndefault_transport = \"nowhere\"\n\
         minimal_backoff_time = \"3600s\"\nmaximal_backoff_time = \"7200s\"\n\
         queue_run_delay = \"3600s\"\nfast_flush_domains = \"remote.test\"\n\
         header_checks = \"regexp:{}\"\n",
        checks.display()
    );
    inst.rewrite_main(&main);
    let mut inst = inst;
    inst.start();
    inst
}

/// Hands a message to cleanup; returns its queue id.
fn submit(inst: &Instance, sender: &str, rcpts: &[&str], subject: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let attempt = (|| {
            let mut c = Client::connect(&inst.queue_dir, WAIT, 0)?;
            c.sender(sender)?;
            for r in rcpts {
                c.recipient(&Recipient {
                    address: r,
                    ..Recipient::default()
                })?;
            }
            c.begin_content()?;
            c.write_content(format!("From: a@b\nSubject: {subject}\n\nhello\n").as_bytes())?;
            c.end_content()?;
            c.finish()
        })();
        match attempt {
            Ok(o) => {
                assert!(o.accepted(), "{o:?}");
                return o.queue_id;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "submit: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn run(tool: &str, args: &[&str], stdin: &[u8]) -> Output {
    run_as(Command::new(bin_dir().join(tool)), args, stdin)
}

fn run_as(mut cmd: Command, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = cmd
        .args(args)
        .env_remove("MAIL_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    let _ = input.write_all(stdin);
    drop(input);
    // Nothing here may hang: a tool that does is a failure.
    let deadline = Instant::now() + WAIT;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(out: &Output) -> String {
    let (o, e) = text(out);
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {o}\nstderr: {e}",
        out.status
    );
    o
}

fn postqueue(inst: &Instance, args: &[&str]) -> Output {
    let dir = inst.config_dir.to_str().unwrap();
    let mut all = vec!["-c", dir];
    all.extend_from_slice(args);
    run("postqueue", &all, b"")
}

fn postsuper(inst: &Instance, args: &[&str], stdin: &[u8]) -> Output {
    let dir = inst.config_dir.to_str().unwrap();
    let mut all = vec!["-c", dir];
    all.extend_from_slice(args);
    run("postsuper", &all, stdin)
}

fn exists(inst: &Instance, queue: Queue, id: &str) -> bool {
    inst.queue_dir.join(queue.dir_name()).join(id).exists()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn delivered(inst: &Instance) -> String {
    fs::read_to_string(inst.dir.path().join("delivered")).unwrap_or_default()
}

/// Parses `postqueue -j` output with python3's json module; returns one
/// line per message: `queue_name queue_id sender rcpt=reason,...`.
fn json_summary(json: &str) -> Vec<String> {
    let script = r#"
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    assert set(m) == {'queue_name', 'queue_id', 'arrival_time', 'message_size',
                      'force_expired', 'sender', 'recipients'}, m
    assert isinstance(m['arrival_time'], int) and isinstance(m['message_size'], int)
    assert m['force_expired'] is False
    r = ','.join(x['address'] + '=' + x.get('delay_reason', '') for x in m['recipients'])
    print(m['queue_name'], m['queue_id'], m['sender'], r)
"#;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (o, e) = text(&out);
    assert!(out.status.success(), "python3: {e}\ninput:\n{json}");
    let mut lines: Vec<String> = o.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn listing_json_and_flushing_one_message() {
    let inst = start();
    let flag = inst.dir.path().join("defer-flag");
    fs::write(&flag, "").unwrap();
    let deferred = submit(
        &inst,
        "alice@mail.example.test",
        &["defer-a@mail.example.test"],
        "d",
    );
    let held = submit(&inst, "", &["bob@mail.example.test"], "hold me");
    wait_for("deferral", || exists(&inst, Queue::Deferred, &deferred));
    assert!(exists(&inst, Queue::Hold, &held));
    // A slow delivery keeps a message in the active queue for 3 seconds.
    let active = submit(
        &inst,
        "carol@mail.example.test",
        &["slow-c@mail.example.test"],
        "s",
    );
    wait_for("active", || exists(&inst, Queue::Active, &active));
    let listing = ok(&postqueue(&inst, &["-p"]));
    assert!(
        listing.starts_with(
            "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------\n"
        ),
        "{listing}"
    );
    let line = |id: &str, status: &str, sender: &str| {
        listing
            .lines()
            .find(|l| {
                l.starts_with(&format!("{id}{status} ")) && l.ends_with(&format!(" {sender}"))
            })
            .unwrap_or_else(|| panic!("no {id}{status} line for {sender}:\n{listing}"))
            .to_string()
    };
    line(&active, "*", "carol@mail.example.test");
    line(&held, "!", "MAILER-DAEMON");
    line(&deferred, "", "alice@mail.example.test");
    let reason = format!("{}(mailbox busy)", " ".repeat(76 - "mailbox busy".len()));
    assert!(
        listing.contains(&format!(
            "{reason}\n{}defer-a@mail.example.test\n",
            " ".repeat(47)
        )),
        "{listing}"
    );
    assert!(
        listing.ends_with("\n-- 0 Kbytes in 3 Requests.\n"),
        "{listing}"
    );

    let json = ok(&postqueue(&inst, &["-j"]));
    let got = json_summary(&json);
    let mut want = vec![
        format!("active {active} carol@mail.example.test slow-c@mail.example.test="),
        format!(
            "deferred {deferred} alice@mail.example.test defer-a@mail.example.test=mailbox busy"
        ),
        format!("hold {held} MAILER-DAEMON bob@mail.example.test="),
    ];
    want.sort();
    assert_eq!(got, want);

    // mailq and sendmail -bp are postqueue -p.
    wait_for("slow delivery", || !exists(&inst, Queue::Active, &active));
    let dir = inst.config_dir.to_str().unwrap();
    let p = ok(&postqueue(&inst, &["-p"]));
    let mut mailq = Command::new(bin_dir().join("sendmail"));
    mailq.arg0("mailq");
    assert_eq!(ok(&run_as(mailq, &["-C", dir], b"")), p);
    assert_eq!(ok(&run("sendmail", &["-C", dir, "-bp"], b"")), p);
    assert!(p.ends_with("-- 0 Kbytes in 2 Requests.\n"), "{p}");

    // postqueue -i: the deferred message is tried again at once.
    fs::remove_file(&flag).unwrap();
    ok(&postqueue(&inst, &["-i", &deferred]));
    inst.wait_log(&format!("{deferred}: removed"), WAIT);
    assert!(delivered(&inst).contains(&format!("{deferred} defer-a@mail.example.test")));
    assert!(
        inst.log_text()
            .contains(&format!("{deferred}: flush requested"))
    );
    // An unknown id is fine (as in Postfix), a malformed one is not.
    ok(&postqueue(&inst, &["-i", "4Y5Lrq3yTsz1Qwm"]));
    let out = postqueue(&inst, &["-i", "../etc/passwd"]);
    assert_eq!(out.status.code(), Some(64), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("invalid queue id"),
        "{:?}",
        text(&out)
    );

    // Released from hold into deferred, then postqueue -f.
    let out = postsuper(&inst, &["-H", &held], b"");
    ok(&out);
    let said = text(&out).1;
    assert!(
        said.contains(&format!("postsuper: {held}: released from hold\n")),
        "{said}"
    );
    assert!(
        said.contains("postsuper: Released from hold: 1 message\n"),
        "{said}"
    );
    assert!(
        exists(&inst, Queue::Deferred, &held)
            || exists(&inst, Queue::Active, &held)
            || delivered(&inst).contains(&held)
    );
    ok(&postqueue(&inst, &["-f"]));
    inst.wait_log(&format!("{held}: removed"), WAIT);
    assert_eq!(ok(&postqueue(&inst, &["-p"])), "Mail queue is empty\n");
    assert_eq!(ok(&postqueue(&inst, &["-j"])), "");
}

#[test]
fn flushing_a_site_and_sendmail_q() {
    let inst = start();
    let remote = submit(&inst, "alice@mail.example.test", &["x@remote.test"], "r");
    let other = submit(&inst, "alice@mail.example.test", &["y@other.test"], "o");
    for id in [&remote, &other] {
        wait_for("deferral", || exists(&inst, Queue::Deferred, id));
    }
    let listing = ok(&postqueue(&inst, &["-p"]));
    assert!(
        listing.contains("(delivery temporarily suspended: nowhere: "),
        "{listing}"
    );
    let attempts = |id: &str| inst.log_text().matches(&format!("{id}: to=<")).count();
    let before = (attempts(&remote), attempts(&other));
    ok(&postqueue(&inst, &["-s", "remote.test"]));
    inst.wait_log(&format!("{remote}: flush requested"), WAIT);
    wait_for("second attempt", || attempts(&remote) > before.0);
    wait_for("deferred again", || exists(&inst, Queue::Deferred, &remote));
    assert_eq!(attempts(&other), before.1);
    // Not in fast_flush_domains; not a site at all.
    let out = postqueue(&inst, &["-s", "other.test"]);
    assert_eq!(out.status.code(), Some(69));
    assert!(
        text(&out)
            .1
            .contains("Flush service is not configured for destination \"other.test\""),
        "{:?}",
        text(&out)
    );
    let out = postqueue(&inst, &["-s", "bad site"]);
    assert_eq!(out.status.code(), Some(64));
    // sendmail -qR is postqueue -s; sendmail -q is postqueue -f.
    let dir = inst.config_dir.to_str().unwrap();
    let n = attempts(&remote);
    ok(&run("sendmail", &["-C", dir, "-qRremote.test"], b""));
    wait_for("third attempt", || attempts(&remote) > n);
    wait_for("deferred again", || exists(&inst, Queue::Deferred, &remote));
    let n = (attempts(&remote), attempts(&other));
    ok(&run("sendmail", &["-C", dir, "-q"], b""));
    wait_for("flush of everything", || {
        attempts(&remote) > n.0 && attempts(&other) > n.1
    });
}

#[test]
fn master_down_and_usage_errors() {
    let mut inst = start();
    let held = submit(
        &inst,
        "alice@mail.example.test",
        &["bob@mail.example.test"],
        "hold",
    );
    wait_for("hold", || exists(&inst, Queue::Hold, &held));
    inst.stop();
    // The spool's owner (or root) still gets the listing, directly.
    let out = postqueue(&inst, &["-p"]);
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}{e}");
    assert!(
        e.contains("postqueue: warning: Mail system is down -- accessing queue directly"),
        "{e}"
    );
    assert!(o.contains(&format!("{held}! ")), "{o}");
    assert_eq!(json_summary(&ok(&postqueue(&inst, &["-j"]))).len(), 1);
    for args in [&["-f"][..], &["-i", &held], &["-s", "remote.test"]] {
        let out = postqueue(&inst, args);
        assert_eq!(out.status.code(), Some(69), "{args:?}");
        assert!(
            text(&out)
                .1
                .contains("postqueue: fatal: Cannot flush mail queue - mail system is down"),
            "{:?}",
            text(&out)
        );
    }
    let dir = inst.config_dir.to_str().unwrap();
    assert_eq!(
        run("sendmail", &["-C", dir, "-q"], b"").status.code(),
        Some(69)
    );
    // Usage, help and configuration errors.
    for bad in [&[][..], &["-p", "-f"], &["-x"]] {
        let out = postqueue(&inst, bad);
        assert_eq!(out.status.code(), Some(64), "{bad:?}");
        assert!(
            text(&out).1.contains("postqueue: fatal: usage: postqueue"),
            "{:?}",
            text(&out)
        );
    }
    for tool in ["postqueue", "postsuper"] {
        let out = run(tool, &["--help"], b"");
        assert!(ok(&out).starts_with(&format!("usage: {tool}")));
    }
    let out = postqueue(&inst, &["-o", "queue_run_delay=soon", "-p"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out).1.contains("queue_run_delay"), "{:?}", text(&out));
    let out = postsuper(&inst, &["-s", "nonsense"], b"");
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out).1.contains("invalid directory name: nonsense"));
    // postsuper works without master.
    let out = postsuper(&inst, &["-d", &held], b"");
    assert!(
        text(&out).1.contains("postsuper: Deleted: 1 message\n"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn postsuper_hold_requeue_delete_and_stdin() {
    let inst = start();
    let flag = inst.dir.path().join("defer-flag");
    fs::write(&flag, "").unwrap();
    let ids: Vec<String> = (0..4)
        .map(|i| {
            submit(
                &inst,
                "alice@mail.example.test",
                &[&format!("defer-{i}@mail.example.test")],
                "d",
            )
        })
        .collect();
    for id in &ids {
        wait_for("deferral", || exists(&inst, Queue::Deferred, id));
        assert!(exists(&inst, Queue::Defer, id));
    }
    // -h ALL deferred, -H one, -h - (stdin).
    let out = postsuper(&inst, &["-h", "ALL", "deferred"], b"");
    assert!(
        text(&out).1.contains("Placed on hold: 4 messages"),
        "{:?}",
        text(&out)
    );
    let out = postsuper(&inst, &["-H", "ALL"], b"");
    assert!(
        text(&out).1.contains("Released from hold: 4 messages"),
        "{:?}",
        text(&out)
    );
    let out = postsuper(
        &inst,
        &["-h", "-"],
        format!("{}\n{}\nnot-an-id\n", ids[0], ids[1]).as_bytes(),
    );
    let said = text(&out).1;
    assert!(said.contains("Placed on hold: 2 messages"), "{said}");
    assert!(
        said.contains("warning: invalid mail queue id: not-an-id"),
        "{said}"
    );
    let listing = ok(&postqueue(&inst, &["-p"]));
    assert_eq!(listing.matches("! ").count(), 2, "{listing}");

    // -r: back through pickup and cleanup as a new message, delivered now
    // that the agent accepts it; the old file and its defer log are gone.
    fs::remove_file(&flag).unwrap();
    let out = postsuper(&inst, &["-r", &ids[2]], b"");
    let said = text(&out).1;
    assert!(said.contains("Requeued: 1 message"), "{said}");
    assert!(!exists(&inst, Queue::Deferred, &ids[2]) && !exists(&inst, Queue::Defer, &ids[2]));
    wait_for("delivery of the requeued message", || {
        delivered(&inst).contains(" defer-2@mail.example.test")
    });
    assert!(!delivered(&inst).contains(&ids[2]), "a new queue id");

    // -d with queue ids from stdin and a queue name, then -d ALL.
    let out = postsuper(
        &inst,
        &["-d", "-", "hold"],
        format!("{}\n{}\n", ids[0], ids[3]).as_bytes(),
    );
    let said = text(&out).1;
    assert!(
        said.contains(&format!("postsuper: {}: removed\n", ids[0])),
        "{said}"
    );
    assert!(said.contains("Deleted: 1 message\n"), "{said}");
    assert!(!exists(&inst, Queue::Defer, &ids[0]));
    assert!(exists(&inst, Queue::Deferred, &ids[3]), "not in hold: kept");
    // In the mail log too, as Postfix logs it.
    let log = inst.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("/postsuper[") && l.ends_with(&format!(": {}: removed", ids[0]))),
        "{log}"
    );
    let out = postsuper(&inst, &["-d", "ALL"], b"");
    assert!(
        text(&out).1.contains("Deleted: 2 messages"),
        "{:?}",
        text(&out)
    );
    assert_eq!(ok(&postqueue(&inst, &["-p"])), "Mail queue is empty\n");
    for q in [Queue::Defer, Queue::Bounce, Queue::Hold, Queue::Deferred] {
        assert_eq!(
            fs::read_dir(inst.queue_dir.join(q.dir_name()))
                .unwrap()
                .count(),
            0,
            "{q}"
        );
    }
}

#[test]
fn postsuper_structure_check_and_purge() {
    let mut inst = start();
    let held = submit(
        &inst,
        "alice@mail.example.test",
        &["bob@mail.example.test"],
        "hold",
    );
    wait_for("hold", || exists(&inst, Queue::Hold, &held));
    inst.stop();
    let q = &inst.queue_dir;
    // Restored from elsewhere: in a hashed subdirectory, under a name that
    // does not match its inode; plus junk and a crashed writer's file.
    fs::create_dir(q.join("hold/A")).unwrap();
    let old = QueueId::parse(&held).unwrap();
    let wrong = QueueId::from_parts(1_700_000_000, 7, 424242);
    fs::rename(
        old.path(q, Queue::Hold),
        q.join("hold/A").join(wrong.as_str()),
    )
    .unwrap();
    fs::write(q.join("deferred/README"), "junk").unwrap();
    let stale = q
        .join("incoming")
        .join(QueueId::from_parts(1_700_000_000, 9, 9).as_str());
    fs::write(&stale, "partial").unwrap();
    fs::set_permissions(&stale, fs::Permissions::from_mode(0o600)).unwrap();
    let two_days = SystemTime::now() - Duration::from_secs(2 * 86400);
    fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(two_days)
        .unwrap();
    // Killed mid-message ten minutes ago: no writer holds it any more.
    let killed = q
        .join("incoming")
        .join(QueueId::from_parts(1_700_000_000, 11, 11).as_str());
    fs::write(&killed, "partial").unwrap();
    fs::set_permissions(&killed, fs::Permissions::from_mode(0o600)).unwrap();
    let minutes = SystemTime::now() - Duration::from_secs(600);
    fs::File::options()
        .write(true)
        .open(&killed)
        .unwrap()
        .set_modified(minutes)
        .unwrap();
    let out = postsuper(&inst, &[], b"");
    let said = ok(&out) + &text(&out).1;
    assert!(
        said.contains("Renamed to match inode number: 1 message"),
        "{said}"
    );
    assert!(
        said.contains("bogus file name: deferred/README: moved to corrupt"),
        "{said}"
    );
    assert!(q.join("corrupt/README").exists());
    assert!(!stale.exists(), "{said}");
    assert!(!killed.exists(), "{said}");
    assert!(!q.join("hold/A").exists());
    let files: Vec<_> = fs::read_dir(q.join("hold"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let qf = QueueFile::open(&files[0]).unwrap();
    assert_eq!(qf.sender(), "alice@mail.example.test");
    // Clean now: a second run has nothing to say.
    let out = postsuper(&inst, &["-s", "-p"], b"");
    assert_eq!(text(&out).1, "", "{:?}", text(&out));
    inst.start();
    let listing = ok(&postqueue(&inst, &["-p"]));
    assert!(listing.contains("! "), "{listing}");
}

/// postsuper -d ALL while messages arrive: every message accepted is
/// either reported removed or still whole in the queue; nothing half.
#[test]
fn delete_during_load_never_leaves_half_a_message() {
    let inst = start();
    let total = 40;
    let submitter = {
        let dir = inst.queue_dir.clone();
        std::thread::spawn(move || {
            let mut ids = Vec::new();
            for i in 0..total {
                let mut c = Client::connect(&dir, WAIT, 0).expect("connect");
                c.sender("alice@mail.example.test").unwrap();
                c.recipient(&Recipient {
                    address: "bob@mail.example.test",
                    ..Recipient::default()
                })
                .unwrap();
                c.begin_content().unwrap();
                let body = format!("Subject: hold {i}\n\n{}\n", "x".repeat(20_000));
                c.write_content(body.as_bytes()).unwrap();
                c.end_content().unwrap();
                let o = c.finish().unwrap();
                assert!(o.accepted(), "{o:?}");
                ids.push(o.queue_id);
            }
            ids
        })
    };
    // Wait for cleanup to be up, then delete while the rest arrives.
    wait_for("first message", || {
        fs::read_dir(inst.queue_dir.join("hold")).unwrap().count() > 0
    });
    let mut removed = String::new();
    while !submitter.is_finished() {
        removed += &text(&postsuper(&inst, &["-d", "ALL", "hold", "incoming"], b"")).1;
    }
    let ids = submitter.join().unwrap();
    assert_eq!(ids.len(), total);
    let mut gone = 0;
    let mut kept = 0;
    for id in &ids {
        let in_hold = exists(&inst, Queue::Hold, id);
        let was_removed = removed.contains(&format!("postsuper: {id}: removed\n"));
        assert!(
            in_hold != was_removed,
            "{id}: in hold {in_hold}, removed {was_removed}"
        );
        if in_hold {
            let qf = QueueFile::open(
                &QueueId::parse(id)
                    .unwrap()
                    .path(&inst.queue_dir, Queue::Hold),
            )
            .expect("a whole queue file");
            let body = String::from_utf8_lossy(&qf.content_to_vec()).into_owned();
            assert!(
                body.ends_with(&format!("\n\n{}\n", "x".repeat(20_000))),
                "{id}"
            );
            kept += 1;
        } else {
            gone += 1;
        }
    }
    assert_eq!(gone + kept, total);
    assert!(gone > 0, "nothing was deleted during the load");
    // Whatever is left goes too, and nothing else remains.
    ok(&postsuper(&inst, &["-d", "ALL"], b""));
    for q in [Queue::Incoming, Queue::Hold, Queue::Defer, Queue::Bounce] {
        assert_eq!(
            fs::read_dir(inst.queue_dir.join(q.dir_name()))
                .unwrap()
                .count(),
            0,
            "{q}"
        );
    }
}

/// An ordinary user lists the queue through the public showq socket with
/// an installed (set-group-id) postqueue; root only (setpriv).
#[test]
fn ordinary_user_through_the_public_socket() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root to run postqueue as nobody");
        return;
    }
    let mut inst = start();
    let held = submit(
        &inst,
        "alice@mail.example.test",
        &["bob@mail.example.test"],
        "hold",
    );
    wait_for("hold", || exists(&inst, Queue::Hold, &held));
    // Installed as Postfix installs it: set-group-id setgid_group, which
    // in development mode is the group of the user who started master.
    let installed = inst.dir.path().join("postqueue");
    fs::copy(bin_dir().join("postqueue"), &installed).unwrap();
    let spool_gid =
        std::os::unix::fs::MetadataExt::gid(&fs::metadata(inst.queue_dir.join("public")).unwrap());
    nix::unistd::chown(
        &installed,
        Some(nix::unistd::Uid::from_raw(0)),
        Some(nix::unistd::Gid::from_raw(spool_gid)),
    )
    .unwrap();
    fs::set_permissions(&installed, fs::Permissions::from_mode(0o2755)).unwrap();
    let config_dir = inst.config_dir.clone();
    let as_nobody = |args: &[&str]| {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            "--",
        ]);
        cmd.arg(&installed);
        cmd.arg("-c").arg(&config_dir);
        run_as(cmd, args, b"")
    };
    let listing = ok(&as_nobody(&["-p"]));
    assert!(listing.contains(&format!("{held}! ")), "{listing}");
    assert_eq!(json_summary(&ok(&as_nobody(&["-j"]))).len(), 1);
    ok(&as_nobody(&["-f"]));
    ok(&as_nobody(&["-i", &held]));
    let out = as_nobody(&["-s", "elsewhere.test"]);
    assert_eq!(
        out.status.code(),
        Some(69),
        "flush(8) answered: {:?}",
        text(&out)
    );
    assert!(text(&out).1.contains("not configured for destination"));
    // Not allowed: -o, and postsuper at all.
    let out = as_nobody(&["-o", "queue_directory=/tmp", "-p"]);
    assert_eq!(out.status.code(), Some(77), "{:?}", text(&out));
    let mut ps = Command::new("setpriv");
    ps.args([
        "--reuid",
        "nobody",
        "--regid",
        "nogroup",
        "--clear-groups",
        "--",
    ]);
    ps.arg(bin_dir().join("postsuper"));
    let out = run_as(
        ps,
        &["-c", inst.config_dir.to_str().unwrap(), "-d", "ALL"],
        b"",
    );
    assert_eq!(out.status.code(), Some(77), "{:?}", text(&out));
    assert!(text(&out).1.contains("reserved for the superuser"));
    assert!(exists(&inst, Queue::Hold, &held));
    // With master down an ordinary user is told, without hanging.
    inst.stop();
    let out = as_nobody(&["-p"]);
    assert_eq!(out.status.code(), Some(69), "{:?}", text(&out));
    assert!(
        text(&out)
            .1
            .contains("postqueue: fatal: Queue report unavailable - mail system is down"),
        "{:?}",
        text(&out)
    );
}
