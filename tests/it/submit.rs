//! Local submission: `sendmail` → `postdrop` → `maildrop/` → `pickup` →
//! `cleanup` (with the real trivial-rewrite) → `incoming/`, plus `mailq`,
//! `newaliases`, `sendmail -bs` and `postcat`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use postern_queue::{
    Entry, NewRecipient, Notify, Queue, QueueFile, QueueFileWriter, QueueId, ReadOptions,
};
use postern_tests::{Instance, bin_dir};

const WAIT: Duration = Duration::from_secs(30);

const TABLE: &str = "\
[cleanup]
type = \"unix\"
maxproc = 2
command = \"cleanup\"

[rewrite]
type = \"unix\"
command = \"trivial-rewrite\"

[pickup]
type = \"unix\"
private = false
wakeup = \"60s\"
maxproc = 1
command = \"pickup\"
";

fn instance() -> Instance {
    Instance::new("myorigin = \"example.test\"", TABLE)
}

/// An instance whose spool exists but whose master is down.
fn stopped_instance() -> Instance {
    let mut inst = instance();
    inst.start();
    inst.stop();
    inst
}

fn running_instance() -> Instance {
    let mut inst = instance();
    inst.start();
    inst
}

/// Runs a tool from the build directory with `stdin` as input.
fn run_tool(tool: &str, argv0: Option<&str>, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(bin_dir().join(tool));
    if let Some(name) = argv0 {
        cmd.arg0(name);
    }
    let mut child = cmd
        .args(args)
        .env_remove("MAIL_CONFIG")
        .env_remove("NAME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    // The tool may exit before reading everything (a lone "." ends input).
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("wait")
}

/// `sendmail -C <config> args...` with the message on standard input.
fn sendmail(inst: &Instance, args: &[&str], message: &[u8]) -> Output {
    let dir = inst.config_dir.to_str().expect("utf-8 path");
    let mut all = vec!["-C", dir];
    all.extend_from_slice(args);
    run_tool("sendmail", None, &all, message)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ready queue files of `queue`.
fn ready(inst: &Instance, queue: Queue) -> Vec<QueueId> {
    let Ok(scan) = postern_queue::scan(&inst.queue_dir, queue) else {
        return Vec::new();
    };
    let mut ids: Vec<QueueId> = scan
        .filter_map(|e| match e {
            Ok(Entry::Ready { id, .. }) => Some(id),
            _ => None,
        })
        .collect();
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    ids
}

/// Waits until maildrop is empty and `incoming` holds `n` messages.
fn wait_incoming(inst: &Instance, n: usize) -> Vec<QueueFile> {
    let deadline = Instant::now() + WAIT;
    loop {
        let incoming = ready(inst, Queue::Incoming);
        if incoming.len() >= n && ready(inst, Queue::Maildrop).is_empty() {
            assert_eq!(incoming.len(), n, "more messages than expected");
            return incoming
                .iter()
                .map(|id| QueueFile::open(&id.path(&inst.queue_dir, Queue::Incoming)).unwrap())
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "maildrop {:?}, incoming {:?}; log:\n{}",
            ready(inst, Queue::Maildrop),
            incoming,
            inst.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn recipients(qf: &QueueFile) -> Vec<String> {
    let mut v: Vec<String> = qf.recipients().iter().map(|r| r.address.clone()).collect();
    v.sort();
    v
}

fn content(qf: &QueueFile) -> String {
    String::from_utf8_lossy(&qf.content_to_vec()).into_owned()
}

#[test]
fn mail_waits_in_maildrop_until_master_starts() {
    let mut inst = stopped_instance();
    let out = sendmail(
        &inst,
        &[
            "-f",
            "alice@example.test",
            "-F",
            "Alice Example",
            "bob@example.test",
        ],
        b"Subject: waiting\n\nqueued while the mail system was down\n",
    );
    ok(&out);
    let dropped = ready(&inst, Queue::Maildrop);
    assert_eq!(dropped.len(), 1, "one file in maildrop");
    let path = dropped[0].path(&inst.queue_dir, Queue::Maildrop);
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o744,
        "ready, and readable by pickup"
    );
    // mailq shows it while it waits, in Postfix's shape.
    let listing = ok(&run_tool(
        "sendmail",
        Some("mailq"),
        &["-C", inst.config_dir.to_str().unwrap()],
        b"",
    ));
    // (Through postqueue, which reads the spool directly, as root or the
    // spool's owner may, when the mail system is down.)
    assert!(listing.starts_with("----Queue ID----- "), "{listing}");
    assert!(listing.contains(&format!("{} ", dropped[0])), "{listing}");
    assert!(listing.contains(" alice@example.test\n"), "{listing}");
    assert!(listing.contains(" bob@example.test\n"), "{listing}");
    assert!(
        listing.ends_with("-- 0 Kbytes in 1 Request.\n"),
        "{listing}"
    );
    assert!(ready(&inst, Queue::Incoming).is_empty());

    inst.start();
    let queued = wait_incoming(&inst, 1);
    let qf = &queued[0];
    assert_eq!(qf.sender(), "alice@example.test");
    assert_eq!(recipients(qf), ["bob@example.test"]);
    let text = content(qf);
    assert!(text.contains("Subject: waiting\n"), "{text}");
    assert!(
        text.contains("queued while the mail system was down\n"),
        "{text}"
    );
    assert!(
        text.contains("Alice Example"),
        "cleanup's From: uses -F: {text}"
    );
    let log = inst.wait_log("from=<alice@example.test>", WAIT);
    let uid = nix::unistd::Uid::current();
    assert!(
        log.lines().any(|l| l.contains("/pickup[")
            && l.contains(&format!(": uid={uid} from=<alice@example.test>"))),
        "{log}"
    );

    // postcat -q finds it in incoming.
    let id = ready(&inst, Queue::Incoming).remove(0);
    let shown = ok(&run_tool(
        "postcat",
        None,
        &["-c", inst.config_dir.to_str().unwrap(), "-q", id.as_str()],
        b"",
    ));
    assert!(
        shown.starts_with(&format!("*** ENVELOPE RECORDS incoming/{id} ***\n")),
        "{shown}"
    );
    assert!(shown.contains("\nsender: alice@example.test\n"), "{shown}");
    assert!(shown.contains("\nrecipient: bob@example.test\n"), "{shown}");
    assert!(shown.contains("\nSubject: waiting\n"), "{shown}");
    assert!(shown.ends_with(&format!("*** MESSAGE FILE END incoming/{id} ***\n")));
}

#[test]
fn dash_t_takes_to_cc_and_bcc_and_drops_bcc() {
    let inst = running_instance();
    let out = sendmail(
        &inst,
        &["-t", "-oi", "-f", "list@example.test"],
        b"From: List <list@example.test>\nTo: Ann <ann@example.test>\n\
          Cc: ben@example.test\nBcc: hidden@example.test\nSubject: extract\n\n\
          first\n.\nafter a lone dot\n",
    );
    ok(&out);
    let queued = wait_incoming(&inst, 1);
    let qf = &queued[0];
    assert_eq!(
        recipients(qf),
        [
            "ann@example.test",
            "ben@example.test",
            "hidden@example.test"
        ]
    );
    let text = content(qf);
    assert!(!text.to_ascii_lowercase().contains("bcc:"), "{text}");
    assert!(text.contains("To: Ann <ann@example.test>\n"), "{text}");
    assert!(
        text.contains("\nfirst\n.\nafter a lone dot\n"),
        "-oi keeps the dot: {text}"
    );
}

#[test]
fn dash_t_without_recipient_headers_is_a_usage_error() {
    let inst = stopped_instance();
    let out = sendmail(&inst, &["-t"], b"Subject: nobody\n\nbody\n");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("No recipient addresses found in message header"),
        "{err}"
    );
    let out = sendmail(&inst, &[], b"Subject: nobody\n\nbody\n");
    assert_eq!(out.status.code(), Some(64));
    assert!(ready(&inst, Queue::Maildrop).is_empty());
}

#[test]
fn sender_full_name_lone_dot_and_ignored_flags() {
    let inst = running_instance();
    // Flags that programs pass out of habit do no harm; a lone "." ends
    // the message without -i.
    let out = sendmail(
        &inst,
        &[
            "-m",
            "-n",
            "-U",
            "-x",
            "-Z",
            "-oem",
            "-h",
            "5",
            "-L",
            "x",
            "-R",
            "hdrs",
            "-Fcron daemon",
            "-fRoot <root@example.test>",
            "Dee <dee@example.test>, eve",
        ],
        b"Subject: cron\n\noutput\n.\nnot part of the message\n",
    );
    ok(&out);
    let queued = wait_incoming(&inst, 1);
    let qf = &queued[0];
    assert_eq!(qf.sender(), "root@example.test");
    assert_eq!(recipients(qf), ["dee@example.test", "eve@example.test"]);
    let text = content(qf);
    assert!(text.contains("cron daemon"), "{text}");
    assert!(text.ends_with("\noutput\n"), "{text}");
    assert!(!text.contains("not part"), "{text}");
}

#[test]
fn cron_and_mailx_style_messages_without_headers() {
    let inst = running_instance();
    // What cron runs: sendmail -FCronDaemon -i -B8BITMIME -oem user
    let out = sendmail(
        &inst,
        &["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"],
        b"just the output of a job\n.\nwith a dot line\n",
    );
    ok(&out);
    let queued = wait_incoming(&inst, 1);
    let qf = &queued[0];
    assert_eq!(recipients(qf), ["root@example.test"]);
    assert_eq!(qf.attr("encoding"), Some(&b"8bit"[..]));
    let text = content(qf);
    assert!(text.contains("CronDaemon"), "cleanup added From: {text}");
    assert!(
        text.ends_with("\njust the output of a job\n.\nwith a dot line\n"),
        "{text}"
    );
}

#[test]
fn dash_bs_speaks_smtp_on_stdin_and_stdout() {
    let inst = running_instance();
    let out = sendmail(
        &inst,
        &["-bs"],
        b"EHLO client\r\nMAIL FROM:<sam@example.test>\r\nRCPT TO:<tom@example.test>\r\n\
          DATA\r\nSubject: smtp\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n",
    );
    let replies = ok(&out);
    let lines: Vec<&str> = replies.lines().collect();
    assert!(
        lines[0].starts_with("220 mail.example.test ESMTP"),
        "{replies}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("250 2.0.0 Ok: queued as ")),
        "{replies}"
    );
    assert_eq!(lines.last(), Some(&"221 2.0.0 Bye"));
    let queued = wait_incoming(&inst, 1);
    assert_eq!(queued[0].sender(), "sam@example.test");
    assert_eq!(recipients(&queued[0]), ["tom@example.test"]);
    let text = content(&queued[0]);
    assert!(text.contains("Subject: smtp\n"), "{text}");
    assert!(text.contains("\n.leading dot\n"), "{text}");
}

#[test]
fn corrupt_maildrop_file_goes_to_corrupt() {
    let inst = running_instance();
    let id = QueueId::from_parts(1_700_000_000, 1, 42);
    let path = id.path(&inst.queue_dir, Queue::Maildrop);
    fs::write(&path, b"H\x0bPOSTERN\x01\x00\x00\x00C\x05trunc").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o744)).unwrap();
    postern_ipc::trigger::send(&inst.queue_dir, postern_ipc::service::PICKUP, b"W").unwrap();
    let deadline = Instant::now() + WAIT;
    while !id.path(&inst.queue_dir, Queue::Corrupt).exists() {
        assert!(Instant::now() < deadline, "log:\n{}", inst.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!path.exists());
    inst.wait_log(&format!("maildrop/{id}: "), WAIT);
    // postcat shows what it can and fails clearly.
    let out = run_tool(
        "postcat",
        None,
        &[id.path(&inst.queue_dir, Queue::Corrupt).to_str().unwrap()],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("postcat: fatal: ") && err.contains("corrupt queue file"),
        "{err}"
    );
}

#[test]
fn queue_commands_without_a_mail_system() {
    let inst = stopped_instance();
    let dir = inst.config_dir.to_str().unwrap();
    assert_eq!(
        ok(&run_tool("sendmail", None, &["-C", dir, "-bp"], b"")),
        "Mail queue is empty\n"
    );
    // -q asks qmgr to flush; with nothing running that fails softly.
    let out = run_tool("sendmail", None, &["-C", dir, "-q"], b"");
    assert_eq!(out.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mail system is down"));
    // Modes that are not there say so.
    assert_eq!(
        run_tool("sendmail", None, &["-C", dir, "-bv", "x"], b"")
            .status
            .code(),
        Some(69)
    );
    assert_eq!(
        run_tool("sendmail", None, &["-C", dir, "-bp", "x"], b"")
            .status
            .code(),
        Some(64)
    );
}

/// The queue file behind `tests/data/queue/basic.ref` (the same as in
/// postcat's unit tests).
fn golden_file(spool: &Path) -> PathBuf {
    fs::create_dir_all(spool.join("incoming")).unwrap();
    let mut w = QueueFileWriter::create(spool, Queue::Incoming).unwrap();
    w.set_line_chunk(40).unwrap();
    w.time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .unwrap();
    w.sender("alice@example.org").unwrap();
    w.attr("rewrite_context", b"local").unwrap();
    w.attr("full_name", b"Alice Example").unwrap();
    w.recipient(&NewRecipient {
        orcpt: Some("Bob@Example.org"),
        dsn_orcpt: Some("rfc822;Bob@Example.org"),
        notify: Notify::from_bits(10),
        ..NewRecipient::new("bob@example.org")
    })
    .unwrap();
    let done = w
        .recipient(&NewRecipient::new("carol@example.org"))
        .unwrap();
    w.warn(Some(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_014_400),
    ))
    .unwrap();
    w.begin_content().unwrap();
    w.write_content(
        b"Received: from localhost\n\tby mail.example.org\nSubject: golden\n\
          From: Alice <alice@example.org>\n\nHello Bob,\n\
          this line is much longer than forty bytes, so it is split.\n\n\
          Bye\nno final newline",
    )
    .unwrap();
    w.end_content().unwrap();
    w.attr("sendmail_t", b"1").unwrap();
    w.recipient(&NewRecipient::new("dave@example.org")).unwrap();
    let path = w.path().to_path_buf();
    w.finish().unwrap();
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    postern_queue::mark_done(&file, done).unwrap();
    QueueFile::open_with(&path, &ReadOptions::default()).unwrap();
    path
}

#[test]
fn postcat_golden_output() {
    let tmp = tempfile::tempdir().unwrap();
    let written = golden_file(tmp.path());
    fs::copy(&written, tmp.path().join("test-queue-file")).unwrap();
    let refs = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/queue");
    for (args, reference) in [
        (&[][..], "basic.ref"),
        (&["-h"][..], "basic-h.ref"),
        (&["-b"][..], "basic-b.ref"),
        (&["-eo"][..], "basic-eo.ref"),
    ] {
        let out = Command::new(bin_dir().join("postcat"))
            .args(args)
            .arg("test-queue-file")
            .current_dir(tmp.path())
            .env("TZ", "UTC")
            .output()
            .unwrap();
        let want = fs::read_to_string(refs.join(reference)).unwrap();
        assert_eq!(ok(&out), want, "postcat {args:?} vs {reference}");
    }
}
