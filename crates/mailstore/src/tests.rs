use super::*;
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;

const BODY: &[u8] = b"Subject: hi\n\nFrom the start\n>From quoted already\nbinary \x00\xff\r\nend";

fn delivery(limit: u64) -> Delivery<'static> {
    Delivery {
        sender: "a@example.test",
        recipient: "Dev@Example.test",
        content: BODY,
        limit,
    }
}

fn fast() -> LockOptions {
    LockOptions {
        attempts: 3,
        delay: Duration::from_millis(10),
        stale_after: Duration::from_secs(500),
    }
}

#[test]
fn maildir_is_created_and_the_file_is_byte_exact() {
    // Both ways: an unnamed file where the system has them, and a named
    // one in tmp/.
    for unnamed in [true, false] {
        maildir_file_is_byte_exact(unnamed);
    }
}

fn maildir_file_is_byte_exact(unnamed: bool) {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("dev/Maildir");
    let path = write_maildir_as(&md, &delivery(0), unnamed).unwrap();
    for sub in ["tmp", "new", "cur"] {
        let m = fs::metadata(md.join(sub)).unwrap();
        assert!(m.is_dir());
        assert_eq!(m.permissions().mode() & 0o777, 0o700, "{sub}");
    }
    assert_eq!(path.parent().unwrap(), md.join("new"));
    let mut want = b"Return-Path: <a@example.test>\nDelivered-To: dev@example.test\n".to_vec();
    want.extend_from_slice(BODY);
    assert_eq!(fs::read(&path).unwrap(), want);
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.ends_with(&format!(",S={}", want.len())), "{name}");
    let pid = std::process::id();
    assert!(name.contains(&format!(".{pid}_")), "{name}");
    assert_eq!(fs::read_dir(md.join("tmp")).unwrap().count(), 0);
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn a_maildir_removed_after_a_delivery_is_made_again() {
    for unnamed in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("Maildir");
        write_maildir_as(&md, &delivery(0), unnamed).unwrap();
        // Gone while this process remembers it whole.
        fs::remove_dir_all(&md).unwrap();
        let path = write_maildir_as(&md, &delivery(0), unnamed).unwrap();
        assert!(path.starts_with(md.join("new")));
        for sub in ["tmp", "new", "cur"] {
            assert!(md.join(sub).is_dir(), "{sub}");
        }
        // Only cur/ gone: the delivery does not need it and succeeds
        // (cur/ comes back at the next look, within the minute).
        fs::remove_dir(md.join("cur")).unwrap();
        write_maildir_as(&md, &delivery(0), unnamed).unwrap();
    }
}

#[test]
fn maildir_names_are_unique_under_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("Maildir");
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let md = md.clone();
            std::thread::spawn(move || {
                (0..25)
                    .map(|_| write_maildir(&md, &delivery(0)).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut names = HashSet::new();
    for t in threads {
        for p in t.join().unwrap() {
            assert!(names.insert(p));
        }
    }
    assert_eq!(names.len(), 200);
    assert_eq!(fs::read_dir(md.join("new")).unwrap().count(), 200);
}

#[test]
fn maildir_over_the_limit_is_permanent_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("Maildir");
    let err = write_maildir(&md, &delivery(20)).unwrap_err();
    assert!(!err.temporary);
    assert_eq!(err.dsn, "5.2.2");
    assert_eq!(fs::read_dir(md.join("tmp")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(md.join("new")).unwrap().count(), 0);
}

#[test]
fn maildir_permission_problem_is_permanent() {
    if nix::unistd::Uid::effective().is_root() {
        return; // root ignores the mode
    }
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("Maildir");
    fs::create_dir(&md).unwrap();
    fs::set_permissions(&md, fs::Permissions::from_mode(0o500)).unwrap();
    let err = write_maildir(&md, &delivery(0)).unwrap_err();
    assert_eq!((err.temporary, err.dsn), (false, "5.2.0"));
}

#[test]
fn errno_classification() {
    let t = |n| {
        let e = Error::io(&io::Error::from_raw_os_error(n), "x");
        (e.temporary, e.dsn)
    };
    assert_eq!(t(libc::EDQUOT), (true, "4.2.2"));
    assert_eq!(t(libc::ENOSPC), (true, "4.3.0"));
    assert_eq!(t(libc::EAGAIN), (true, "4.3.0"));
    assert_eq!(t(libc::EFBIG), (false, "5.2.2"));
    assert_eq!(t(libc::EACCES), (false, "5.2.0"));
}

fn mbox_message(sender_line: &str) -> Vec<u8> {
    let mut want =
        format!("{sender_line}Return-Path: <a@example.test>\nDelivered-To: dev@example.test\n")
            .into_bytes();
    want.extend_from_slice(
        b"Subject: hi\n\n>From the start\n>From quoted already\nbinary \x00\xff\r\nend\n\n",
    );
    want
}

#[test]
fn mbox_appends_with_from_line_escaping_and_blank_line() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("dev");
    write_mbox(&mbox, &delivery(0), &fast()).unwrap();
    write_mbox(&mbox, &delivery(0), &fast()).unwrap();
    let got = fs::read(&mbox).unwrap();
    assert_eq!(
        fs::metadata(&mbox).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Two messages, each starting with "From a@example.test  <date>\n".
    let text = got.clone();
    let first_nl = text.iter().position(|&b| b == b'\n').unwrap();
    let from_line = String::from_utf8(text[..=first_nl].to_vec()).unwrap();
    assert!(
        from_line.starts_with("From a@example.test  "),
        "{from_line}"
    );
    // asctime: "Tue Nov 24 18:30:51 2026\n"
    assert_eq!(
        from_line.len(),
        "From a@example.test  ".len() + 25,
        "{from_line}"
    );
    let one = mbox_message(&from_line);
    assert_eq!(got.len(), 2 * one.len());
    assert_eq!(&got[..one.len()], &one[..]);
    assert!(got[one.len()..].starts_with(b"From a@example.test  "));
    assert!(!dir.path().join("dev.lock").exists());
}

#[test]
fn mbox_null_sender_is_mailer_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("dev");
    let d = Delivery {
        sender: "",
        content: b"Subject: x\n\nbody\n",
        ..delivery(0)
    };
    write_mbox(&mbox, &d, &fast()).unwrap();
    let got = String::from_utf8(fs::read(&mbox).unwrap()).unwrap();
    assert!(got.starts_with("From MAILER-DAEMON  "), "{got}");
    assert!(got.contains("\nReturn-Path: <>\n"), "{got}");
    assert!(got.ends_with("\nbody\n\n"), "{got}");
}

#[test]
fn locked_mbox_is_a_temporary_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("dev");
    fs::write(&mbox, b"old\n").unwrap();
    fs::write(dir.path().join("dev.lock"), b"").unwrap();
    let err = write_mbox(&mbox, &delivery(0), &fast()).unwrap_err();
    assert!(err.temporary);
    assert!(err.reason.contains("mailbox locked"), "{}", err.reason);
    assert_eq!(fs::read(&mbox).unwrap(), b"old\n");
    // Someone else's lock stays.
    assert!(dir.path().join("dev.lock").exists());
}

#[test]
fn stale_dotlock_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("dev");
    let lock = dir.path().join("dev.lock");
    fs::write(&lock, b"").unwrap();
    let old = SystemTime::now() - Duration::from_secs(600);
    File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(old)
        .unwrap();
    write_mbox(&mbox, &delivery(0), &fast()).unwrap();
    assert!(!lock.exists());
    assert!(fs::read(&mbox).unwrap().starts_with(b"From a@example.test"));
}

#[test]
fn fcntl_locked_mbox_is_a_temporary_failure() {
    // fcntl locks belong to processes: hold one in a child.
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("dev");
    fs::write(&mbox, b"old\n").unwrap();
    let script = "import fcntl,sys,time\nf=open(sys.argv[1],'a')\n\
                  fcntl.lockf(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\ntime.sleep(5)\n";
    let Ok(mut child) = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&mbox)
        .stdout(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("no python3: skipped");
        return;
    };
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "locked\n");
    let err = write_mbox(&mbox, &delivery(0), &fast()).unwrap_err();
    let _ = child.kill();
    let _ = child.wait();
    assert!(err.temporary);
    assert!(
        err.reason.contains("mailbox locked (fcntl)"),
        "{}",
        err.reason
    );
    assert_eq!(fs::read(&mbox).unwrap(), b"old\n");
    assert!(!dir.path().join("dev.lock").exists());
}

#[test]
fn mbox_error_truncates_to_the_original_size() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("dev");
    let old = b"From x  Thu Jan  1 00:00:00 1970\n\nold\n\n";
    fs::write(&mbox, old).unwrap();
    // A message bigger than the write buffer, so part of it reaches the
    // file before the limit stops it.
    let big = vec![b'x'; 200 * 1024];
    let mut content = b"Subject: big\n\n".to_vec();
    content.extend_from_slice(&big);
    content.push(b'\n');
    let d = Delivery {
        content: &content,
        limit: 150 * 1024,
        ..delivery(0)
    };
    let err = write_mbox(&mbox, &d, &fast()).unwrap_err();
    assert_eq!((err.temporary, err.dsn), (false, "5.2.2"));
    assert_eq!(fs::read(&mbox).unwrap(), old);
    // Within the limit it goes through.
    let d = Delivery {
        limit: 300 * 1024,
        ..d
    };
    write_mbox(&mbox, &d, &fast()).unwrap();
    assert!(fs::metadata(&mbox).unwrap().len() > 200 * 1024);
}

#[test]
fn mbox_that_cannot_be_opened_defers() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("missing/dev");
    let err = write_mbox(&mbox, &delivery(0), &fast()).unwrap_err();
    assert_eq!((err.temporary, err.dsn), (true, "4.2.0"), "{err}");
}

#[test]
fn deliver_says_how_and_names_the_failed_kind() {
    let dir = tempfile::tempdir().unwrap();
    let md = Mailbox::Maildir(dir.path().join("Maildir"));
    let mbox = Mailbox::Mbox(dir.path().join("mbox"));
    assert_eq!(
        deliver(&md, &delivery(0), &fast()).unwrap(),
        "delivered to maildir"
    );
    assert_eq!(
        deliver(&mbox, &delivery(0), &fast()).unwrap(),
        "delivered to mailbox"
    );
    let err = deliver(&md, &delivery(20), &fast()).unwrap_err();
    assert_eq!(err.dsn, "5.2.2");
    assert!(
        err.reason.starts_with("maildir delivery failed: "),
        "{}",
        err.reason
    );
    let err = deliver(&mbox, &delivery(20), &fast()).unwrap_err();
    assert!(
        err.reason.starts_with("mailbox delivery failed: "),
        "{}",
        err.reason
    );
}
