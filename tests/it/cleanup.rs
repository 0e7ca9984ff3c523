//! cleanup through master: a client hands messages over with
//! `ipc::cleanup::Client`, and the queue files are read back from the
//! spool. A small rewrite service in the test stands in for
//! trivial-rewrite (local context: `user` -> `user@example.test`), so
//! these tests exercise cleanup alone.

use std::fs;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use postern_ipc::Conn;
use postern_ipc::cleanup::{Client, Outcome, Recipient, flags, status};
use postern_ipc::rewrite::{Request, Resolved, Rule, Server as RewriteServer};
use postern_queue::{Queue, QueueFile, QueueId};
use postern_tests::Instance;

const WAIT: Duration = Duration::from_secs(20);

const TABLE: &str = "[cleanup]\ntype = \"unix\"\nmaxproc = 2\ncommand = \"cleanup\"\n";

/// Serves `private/rewrite` from a thread for the rest of the process.
fn serve_rewrite(queue_dir: &Path) {
    let listener = UnixListener::bind(queue_dir.join("private/rewrite")).expect("bind rewrite");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let conn = Conn::new(stream, WAIT).expect("conn");
                let mut server = RewriteServer::accept(conn).expect("greet");
                while let Ok(Some(request)) = server.next_request() {
                    let sent = match request {
                        Request::Rewrite { rule, address } => {
                            let address = match rule {
                                Rule::Local if !address.is_empty() && !address.contains('@') => {
                                    format!("{address}@example.test")
                                }
                                _ => address,
                            };
                            server.reply_rewrite(&address)
                        }
                        Request::Resolve { address, .. } => server.reply_resolve(&Resolved {
                            recipient: address,
                            ..Resolved::default()
                        }),
                    };
                    if sent.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// An instance running cleanup, with `main_extra` in main.toml.
fn start(main_extra: &str) -> Instance {
    let mut inst = Instance::new(main_extra, TABLE);
    inst.start();
    serve_rewrite(&inst.queue_dir);
    inst
}

/// Hands one message to cleanup.
fn submit(inst: &Instance, flags: u64, sender: &str, rcpts: &[&str], content: &[u8]) -> Outcome {
    let mut c = Client::connect(&inst.queue_dir, WAIT, flags).expect("connect to cleanup");
    c.sender(sender).unwrap();
    c.attr("protocol", "ESMTP").unwrap();
    for r in rcpts {
        c.recipient(&Recipient {
            address: r,
            ..Default::default()
        })
        .unwrap();
    }
    c.begin_content().unwrap();
    c.write_content(content).unwrap();
    c.end_content().unwrap();
    c.finish().expect("cleanup's verdict")
}

fn queue_file(inst: &Instance, queue: Queue, id: &str) -> QueueFile {
    let id = QueueId::parse(id).expect("queue id");
    QueueFile::open(&id.path(&inst.queue_dir, queue)).expect("queue file")
}

fn files_in(inst: &Instance, queue: Queue) -> Vec<PathBuf> {
    fs::read_dir(inst.queue_dir.join(queue.dir_name()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn local_submission_is_queued_rewritten_and_logged() {
    let inst = start("");
    let out = submit(
        &inst,
        flags::LOCAL,
        "joe",
        &["ann", "bob@example.net"],
        b"Subject: hi\r\nBcc: hidden@example.net\r\n\r\nbody\r\n",
    );
    assert_eq!(out.status, status::OK, "{out:?}");
    assert_eq!(out.smtp_reply().0, 250);
    let qf = queue_file(&inst, Queue::Incoming, &out.queue_id);
    assert_eq!(qf.sender(), "joe@example.test");
    let rcpts: Vec<(&str, Option<&str>)> = qf
        .recipients()
        .iter()
        .map(|r| (r.address.as_str(), r.orcpt.as_deref()))
        .collect();
    assert_eq!(
        rcpts,
        [("ann@example.test", Some("ann")), ("bob@example.net", None)]
    );
    assert_eq!(qf.attr("protocol"), Some(&b"ESMTP"[..]));
    let text = String::from_utf8(qf.content_to_vec()).unwrap();
    let message_id = format!("<{}@mail.example.test>", out.queue_id);
    assert!(text.starts_with("Subject: hi\n"), "{text}");
    assert!(
        text.contains(&format!("\nMessage-ID: {message_id}\n")),
        "{text}"
    );
    assert!(text.contains("\nDate: "), "{text}");
    assert!(text.contains("\nFrom: joe@example.test\n"), "{text}");
    assert!(!text.contains("Bcc"), "{text}");
    assert!(text.ends_with("\n\nbody\n"), "{text}");
    assert!(!text.contains('\r'), "{text}");
    inst.wait_log(&format!("{}: message-id={message_id}", out.queue_id), WAIT);
}

#[test]
fn header_checks_and_virtual_aliases_from_real_tables() {
    let tables = tempfile::tempdir().unwrap();
    let checks = tables.path().join("header_checks");
    fs::write(
        &checks,
        "/^Subject:.*viagra/ REJECT no pills here\n/^Subject:.*review/ HOLD\n\
         /^Subject:.*newsletter/ DISCARD bulk\n",
    )
    .unwrap();
    let aliases = tables.path().join("virtual");
    fs::write(
        &aliases,
        "team@example.test ann@example.test, bob@example.test\n",
    )
    .unwrap();
    let inst = start(&format!(
        "header_checks = \"regexp:{}\"\nvirtual_alias_maps = \"hash:{}\"",
        checks.display(),
        aliases.display()
    ));

    let out = submit(
        &inst,
        0,
        "spammer@example.net",
        &["team@example.test"],
        b"Subject: cheap viagra\r\n\r\nbuy\r\n",
    );
    assert_eq!(out.status, status::CONT, "{out:?}");
    assert_eq!(out.reason, "5.7.1 no pills here");
    assert!(!out.accepted());
    inst.wait_log(
        &format!(
            "{}: reject: header Subject: cheap viagra from local; from=<spammer@example.net> \
             to=<ann@example.test> proto=ESMTP: 5.7.1 no pills here",
            out.queue_id
        ),
        WAIT,
    );
    assert!(files_in(&inst, Queue::Incoming).is_empty());

    let out = submit(
        &inst,
        0,
        "a@example.net",
        &["team@example.test"],
        b"Subject: please review\r\n\r\nx\r\n",
    );
    assert_eq!(out.status, status::OK, "{out:?}");
    let qf = queue_file(&inst, Queue::Hold, &out.queue_id);
    let rcpts: Vec<&str> = qf.recipients().iter().map(|r| r.address.as_str()).collect();
    assert_eq!(rcpts, ["ann@example.test", "bob@example.test"]);
    assert!(files_in(&inst, Queue::Incoming).is_empty());
    inst.wait_log(
        &format!(
            "{}: hold: header Subject: please review from local; from=<a@example.net> \
             to=<ann@example.test> proto=ESMTP",
            out.queue_id
        ),
        WAIT,
    );

    let out = submit(
        &inst,
        0,
        "list@example.net",
        &["b@example.net"],
        b"Subject: weekly newsletter\r\n\r\nx\r\n",
    );
    assert_eq!(out.status, status::DISCARD, "{out:?}");
    assert!(out.accepted());
    inst.wait_log(
        &format!("{}: discard: header Subject: weekly", out.queue_id),
        WAIT,
    );
    assert!(files_in(&inst, Queue::Incoming).is_empty());
    assert_eq!(files_in(&inst, Queue::Hold).len(), 1);
}

#[test]
fn limits_and_a_client_that_gives_up_leave_no_queue_file() {
    let inst = start("message_size_limit = 1000");
    let big = vec![b'x'; 2000];
    let out = submit(&inst, 0, "a@example.net", &["b@example.net"], &big);
    assert_eq!(out.status, status::SIZE, "{out:?}");
    assert_eq!(out.smtp_reply().0, 552);

    let out = submit(&inst, 0, "a@example.net", &[], b"Subject: x\r\n\r\ny\r\n");
    assert_eq!(out.status, status::RCPT, "{out:?}");

    // A client that hangs up in the middle of the content.
    let mut c = Client::connect(&inst.queue_dir, WAIT, 0).unwrap();
    c.sender("a@example.net").unwrap();
    c.recipient(&Recipient {
        address: "b@example.net",
        ..Default::default()
    })
    .unwrap();
    c.begin_content().unwrap();
    c.write_content(b"Subject: x\r\n\r\npartial").unwrap();
    let id = c.queue_id().to_string();
    drop(c);
    let deadline = Instant::now() + WAIT;
    while !files_in(&inst, Queue::Incoming).is_empty() {
        assert!(Instant::now() < deadline, "queue file {id} left behind");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn addresses_go_through_the_real_trivial_rewrite() {
    let tables = tempfile::tempdir().unwrap();
    let aliases = tables.path().join("virtual");
    fs::write(&aliases, "staff@mail.example.test ann, root\n").unwrap();
    let table =
        format!("{TABLE}[rewrite]\ntype = \"unix\"\nmaxproc = 1\ncommand = \"trivial-rewrite\"\n");
    let mut inst = Instance::new(
        &format!("virtual_alias_maps = \"hash:{}\"", aliases.display()),
        &table,
    );
    inst.start();
    let out = submit(
        &inst,
        0,
        "Joe@Example.NET.",
        &["staff", "@hop.test:Bob@Remote.TEST."],
        b"Subject: via trivial-rewrite\r\n\r\nx\r\n",
    );
    assert_eq!(out.status, status::OK, "{out:?}");
    let qf = queue_file(&inst, Queue::Incoming, &out.queue_id);
    assert_eq!(qf.sender(), "Joe@example.net");
    let rcpts: Vec<(&str, Option<&str>)> = qf
        .recipients()
        .iter()
        .map(|r| (r.address.as_str(), r.orcpt.as_deref()))
        .collect();
    assert_eq!(
        rcpts,
        [
            ("ann@mail.example.test", Some("staff")),
            ("root@mail.example.test", Some("staff")),
            ("Bob@remote.test", Some("@hop.test:Bob@Remote.TEST.")),
        ]
    );
}
