//! master against test services (`test-echo`, `test-trigger`).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::sys::signal::Signal;
use postern_tests::{Instance, LineClient, alive, free_port};

const WAIT: Duration = Duration::from_secs(20);

fn echo_table(port: u16, maxproc: u32) -> String {
    format!(
        "[echo]\ntype = \"inet\"\nlisten = \"127.0.0.1:{port}\"\nunpriv = true\n\
         maxproc = {maxproc}\ncommand = \"test-echo\"\n"
    )
}

/// `220 echo PID GEN` -> PID
fn greeting_pid(line: &str) -> i32 {
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(parts.first(), Some(&"220"), "greeting: {line}");
    parts[2].parse().expect("pid in greeting")
}

#[test]
fn creates_spool_with_postfix_modes_and_logs_start() {
    let port = free_port();
    let mut inst = Instance::new("", &echo_table(port, 2));
    inst.start();
    for (name, mode) in [
        ("active", 0o700),
        ("bounce", 0o700),
        ("corrupt", 0o700),
        ("defer", 0o700),
        ("deferred", 0o700),
        ("hold", 0o700),
        ("incoming", 0o700),
        ("maildrop", 0o730),
        ("pid", 0o755),
        ("private", 0o700),
        ("public", 0o710),
    ] {
        let m = fs::metadata(inst.queue_dir.join(name)).unwrap();
        assert!(m.is_dir(), "{name}");
        assert_eq!(m.mode() & 0o7777, mode, "{name}");
    }
    let pid = fs::read_to_string(inst.queue_dir.join("pid/master.pid")).unwrap();
    assert_eq!(pid.trim().parse::<i32>().unwrap(), inst.master_pid());
    // Postfix's line shape: "Mon dd hh:mm:ss host postern/master[pid]: text".
    let log = inst.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("daemon started"))
        .expect("start line");
    assert!(
        line.contains(&format!(
            "postern/master[{}]: daemon started -- version",
            inst.master_pid()
        )),
        "{line}"
    );
    assert!(
        log.contains(&format!("service echo (inet 127.0.0.1:{port})")),
        "{log}"
    );
}

#[test]
fn serves_restarts_after_kill_9_and_logs_it() {
    let port = free_port();
    let mut inst = Instance::new("", &echo_table(port, 5));
    inst.start();
    let mut c = LineClient::connect(port);
    let first = greeting_pid(&c.line());
    assert_eq!(c.cmd("hello"), "250 hello");
    assert_eq!(c.cmd("GET myhostname"), "250 mail.example.test");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first), Signal::SIGKILL).unwrap();
    inst.wait_log(&format!("pid {first} killed by signal 9"), WAIT);
    let mut c2 = LineClient::connect(port);
    let second = greeting_pid(&c2.line());
    assert_ne!(first, second);
    assert_eq!(c2.cmd("again"), "250 again");
    assert_eq!(c2.cmd("QUIT"), "221 bye");
}

#[test]
fn spawns_up_to_maxproc_and_says_so() {
    let port = free_port();
    let mut inst = Instance::new("", &echo_table(port, 2));
    inst.start();
    let mut a = LineClient::connect(port);
    let mut b = LineClient::connect(port);
    let pa = greeting_pid(&a.line());
    let pb = greeting_pid(&b.line());
    assert_ne!(pa, pb, "two clients, two processes");
    // A third client waits in the backlog until a process is free.
    let mut c = LineClient::connect(port);
    inst.wait_log("(inet) has reached its process limit \"2\"", WAIT);
    assert_eq!(a.cmd("QUIT"), "221 bye");
    let pc = greeting_pid(&c.line());
    assert!(pc == pa || pc == pb, "served by a freed process");
    assert_eq!(b.cmd("x"), "250 x");
}

#[test]
fn reload_keeps_connections_and_applies_new_config() {
    let port = free_port();
    let mut inst = Instance::new("mail_name = \"Before\"", &echo_table(port, 5));
    inst.start();
    let mut old = LineClient::connect(port);
    let old_pid = greeting_pid(&old.line());
    assert_eq!(old.cmd("GET mail_name"), "250 Before");
    inst.rewrite_main("mail_name = \"After\"");
    inst.signal(Signal::SIGHUP);
    inst.wait_log("reload -- version", WAIT);
    // The connection in progress is not dropped and keeps its config.
    assert_eq!(old.cmd("GET mail_name"), "250 Before");
    // New connections get a new process with the new configuration.
    let mut new = LineClient::connect(port);
    let greet = new.line();
    assert_ne!(greeting_pid(&greet), old_pid);
    assert!(greet.ends_with(" 2"), "generation 2: {greet}");
    assert_eq!(new.cmd("GET mail_name"), "250 After");
    // The old process exits once its client is done.
    assert_eq!(old.cmd("QUIT"), "221 bye");
    let deadline = std::time::Instant::now() + WAIT;
    while alive(old_pid) {
        assert!(std::time::Instant::now() < deadline, "old process lingers");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn reload_with_bad_config_keeps_running() {
    let port = free_port();
    let mut inst = Instance::new("", &echo_table(port, 5));
    inst.start();
    inst.rewrite_main("message_size_limit = \"lots\"");
    inst.signal(Signal::SIGHUP);
    let log = inst.wait_log("keeping the old configuration", WAIT);
    assert!(log.contains("main.toml:6"), "names file and line: {log}");
    assert!(log.contains("message_size_limit"), "{log}");
    let mut c = LineClient::connect(port);
    greeting_pid(&c.line());
    assert_eq!(c.cmd("still"), "250 still");
}

#[test]
fn term_stops_everything_without_orphans() {
    let port = free_port();
    let mut inst = Instance::new("", &echo_table(port, 5));
    inst.start();
    let mut pids = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = LineClient::connect(port);
        pids.push(greeting_pid(&c.line()));
        clients.push(c);
    }
    let status = inst.stop();
    assert!(status.success(), "master exit: {status:?}");
    for pid in pids {
        assert!(!alive(pid), "child {pid} survived master");
    }
    assert!(inst.log_text().contains("terminating on signal 15"));
}

#[test]
fn second_master_on_same_spool_is_refused() {
    let port = free_port();
    let mut inst = Instance::new("", &echo_table(port, 5));
    inst.start();
    let out = inst.run_master_expecting_failure();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("already running (pid {})", inst.master_pid())),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(75));
    // `master -t` agrees.
    let t = inst.master_command().arg("-t").output().unwrap();
    assert_eq!(t.status.code(), Some(1));
    // The first one still serves.
    let mut c = LineClient::connect(port);
    greeting_pid(&c.line());
    inst.stop();
    let t = inst.master_command().arg("-t").output().unwrap();
    assert_eq!(t.status.code(), Some(0));
}

#[test]
fn refuses_unsafe_spool() {
    let port = free_port();
    let mut inst = Instance::new("", &echo_table(port, 5));
    inst.start();
    inst.stop();
    let incoming = inst.queue_dir.join("incoming");
    fs::set_permissions(&incoming, fs::Permissions::from_mode(0o777)).unwrap();
    let out = inst.run_master_expecting_failure();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("incoming: mode 0777, expected 0700"), "{err}");
    assert!(err.contains("refusing to run"), "{err}");
}

#[test]
fn bad_configuration_is_refused_with_file_line_and_key() {
    let port = free_port();
    let inst = Instance::new("smtpd_timeout = \"forever\"", &echo_table(port, 5));
    let out = inst.run_master_expecting_failure();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("main.toml:6"), "{err}");
    assert!(err.contains("smtpd_timeout"), "{err}");
    assert_eq!(out.status.code(), Some(78));

    let inst = Instance::new("no_such_parameter = 1", &echo_table(port, 5));
    let err = String::from_utf8_lossy(&inst.run_master_expecting_failure().stderr).to_string();
    assert!(
        err.contains("main.toml:6") && err.contains("no_such_parameter"),
        "{err}"
    );

    let table = "[echo]\ntype = \"inet\"\nlisten = \"127.0.0.1:99999\"\ncommand = \"test-echo\"\n";
    let inst = Instance::new("", table);
    let err = String::from_utf8_lossy(&inst.run_master_expecting_failure().stderr).to_string();
    assert!(
        err.contains("master.toml:3") && err.contains("listen"),
        "{err}"
    );

    let table = "[echo]\ntype = \"inet\"\nlisten = \"127.0.0.1:2\"\ncommand = \"no-such-daemon\"\n";
    let inst = Instance::new("", table);
    let err = String::from_utf8_lossy(&inst.run_master_expecting_failure().stderr).to_string();
    assert!(err.contains("no-such-daemon"), "{err}");
    // Nothing started half-configured: no listener was left behind.
    assert!(!inst.log_text().contains("daemon started"));
}

#[test]
fn wakeup_triggers_a_unix_service_periodically() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("triggers");
    let table = format!(
        "[pickup]\ntype = \"unix\"\nwakeup = \"1s\"\nmaxproc = 1\ncommand = \"test-trigger\"\n\
         args = [\"{}\"]\n",
        out.display()
    );
    let mut inst = Instance::new("", &table);
    inst.start();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let got = fs::read(&out).unwrap_or_default();
        if got.len() >= 3 {
            assert!(got.iter().all(|&b| b == b'W'), "{got:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "wakeups: {got:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Any client may trigger it through the socket too.
    let mut s = UnixStream::connect(inst.queue_dir.join("private/pickup")).unwrap();
    s.write_all(b"I").unwrap();
    drop(s);
    let deadline = std::time::Instant::now() + WAIT;
    while !fs::read(&out).unwrap_or_default().contains(&b'I') {
        assert!(std::time::Instant::now() < deadline, "trigger I not seen");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn pass_service_serves_a_passed_connection() {
    let table = "[echo]\ntype = \"pass\"\nmaxproc = 2\ncommand = \"test-echo\"\n";
    let mut inst = Instance::new("", table);
    inst.start();
    let carrier = UnixStream::connect(inst.queue_dir.join("private/echo")).unwrap();
    let (mut mine, theirs) = UnixStream::pair().unwrap();
    postern_util::fdpass::send_fd(&carrier, theirs.as_fd()).unwrap();
    drop(theirs);
    mine.set_read_timeout(Some(WAIT)).unwrap();
    let mut lines = BufReader::new(mine.try_clone().unwrap());
    let mut greet = String::new();
    lines.read_line(&mut greet).unwrap();
    assert!(greet.starts_with("220 echo "), "{greet}");
    mine.write_all(b"over a passed socket\r\n").unwrap();
    let mut reply = String::new();
    lines.read_line(&mut reply).unwrap();
    assert_eq!(reply, "250 over a passed socket\r\n");
}

#[test]
fn overrides_on_master_command_line_reach_every_daemon() {
    let port = free_port();
    let table = format!(
        "{}args = [\"-o\", \"smtpd_banner=from the table\"]\n",
        echo_table(port, 2)
    );
    let inst = Instance::new("", &table);
    let mut master = inst
        .master_command()
        .args(["-o", "mail_name=Overridden"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    inst.wait_log("daemon started", WAIT);
    let mut c = LineClient::connect(port);
    greeting_pid(&c.line());
    assert_eq!(c.cmd("GET mail_name"), "250 Overridden");
    assert_eq!(c.cmd("GET smtpd_banner"), "250 from the table");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(master.id() as i32),
        Signal::SIGTERM,
    );
    master.wait().unwrap();
}

/// As root outside development mode, the spool belongs to mail_owner and
/// setgid_group, and unprivileged services run as mail_owner (chrooted
/// when asked). Needs root; CI runs as root.
#[test]
fn as_root_services_drop_to_mail_owner_and_chroot() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let port = free_port();
    let port2 = free_port();
    let table = format!(
        "{}\n[jailed]\ntype = \"inet\"\nlisten = \"127.0.0.1:{port2}\"\nchroot = true\n\
         command = \"test-echo\"\n",
        echo_table(port, 2)
    );
    let mut inst = Instance::new(
        "development_mode = false\nmail_owner = \"nobody\"\nsetgid_group = \"mail\"",
        &table,
    );
    inst.start();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let mail = nix::unistd::Group::from_name("mail").unwrap().unwrap();
    let incoming = fs::metadata(inst.queue_dir.join("incoming")).unwrap();
    assert_eq!(incoming.uid(), nobody.uid.as_raw());
    let maildrop = fs::metadata(inst.queue_dir.join("maildrop")).unwrap();
    assert_eq!(
        (maildrop.uid(), maildrop.gid()),
        (nobody.uid.as_raw(), mail.gid.as_raw())
    );
    assert_eq!(fs::metadata(inst.queue_dir.join("pid")).unwrap().uid(), 0);

    let mut c = LineClient::connect(port);
    greeting_pid(&c.line());
    assert_eq!(
        c.cmd("ID"),
        format!("250 uid={} gid={} groups=1", nobody.uid, nobody.gid)
    );
    // Not chrooted: the spool is where it always is.
    let spool_incoming = inst.queue_dir.join("incoming");
    assert_eq!(
        c.cmd(&format!("EXISTS {}", spool_incoming.display())),
        "250 yes"
    );

    let mut j = LineClient::connect(port2);
    greeting_pid(&j.line());
    assert_eq!(
        j.cmd("EXISTS /incoming"),
        "250 yes",
        "chrooted into the spool"
    );
    assert_eq!(
        j.cmd("ID"),
        format!("250 uid={} gid={} groups=1", nobody.uid, nobody.gid)
    );
}

#[test]
fn as_root_a_privileged_mail_owner_is_refused() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let port = free_port();
    let inst = Instance::new(
        "development_mode = false\nmail_owner = \"root\"",
        &echo_table(port, 2),
    );
    let err = String::from_utf8_lossy(&inst.run_master_expecting_failure().stderr).to_string();
    assert!(
        err.contains("mail_owner: user root has privileged user ID 0"),
        "{err}"
    );
    let inst = Instance::new(
        "development_mode = false\nmail_owner = \"no-such-user-here\"",
        &echo_table(port, 2),
    );
    let err = String::from_utf8_lossy(&inst.run_master_expecting_failure().stderr).to_string();
    assert!(
        err.contains("mail_owner: unknown user: no-such-user-here"),
        "{err}"
    );
}
