//! smtpd_client_connection_count_limit through anvil.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use postern_tests::{Instance, LineClient, free_port};

fn table(port: u16) -> String {
    format!(
        "[smtp]\ntype = \"inet\"\nlisten = \"127.0.0.1:{port}\"\ncommand = \"smtpd\"\n\n\
         [anvil]\ntype = \"unix\"\nmaxproc = 1\ncommand = \"anvil\"\n"
    )
}

/// The pid of the smtpd serving `port`'s newest session, from the log.
fn session_pids(inst: &Instance) -> Vec<i32> {
    inst.log_text()
        .lines()
        .filter(|l| l.contains("postern/smtpd[") && l.contains("connect from"))
        .filter(|l| !l.contains("disconnect"))
        .filter_map(|l| l.split("smtpd[").nth(1)?.split(']').next()?.parse().ok())
        .collect()
}

/// A new session once a slot has been freed. anvil learns that a session
/// ended when the smtpd's registration connection closes, which it may
/// read after the next client's registration under load: such a client
/// gets 421 and tries again, for at most a few seconds.
fn session_after_slot_freed(port: u16) -> (LineClient, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = LineClient::connect(port);
        let greeting = c.line();
        if !greeting.starts_with("421 ") || std::time::Instant::now() > deadline {
            return (c, greeting);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn too_many_sessions_from_one_client_get_421_and_counts_survive_crashes() {
    let port = free_port();
    let mut inst = Instance::new(
        "alias_maps = \"\"\nlocal_recipient_maps = \"\"\n\
         smtpd_client_connection_count_limit = 2\nsmtpd_client_event_limit_exceptions = \"\"",
        &table(port),
    );
    inst.start();
    let mut a = LineClient::connect(port);
    assert!(a.line().starts_with("220 "));
    let mut b = LineClient::connect(port);
    assert!(b.line().starts_with("220 "));
    let mut c = LineClient::connect(port);
    assert_eq!(
        c.line(),
        "421 4.7.0 mail.example.test Error: too many connections from 127.0.0.1"
    );
    inst.wait_log(
        "warning: Connection concurrency limit exceeded: 3 from unknown[127.0.0.1] for service smtp",
        Duration::from_secs(20),
    );
    // A session that ends frees its slot.
    assert!(a.cmd("QUIT").starts_with("221"));
    inst.wait_log(
        "disconnect from unknown[127.0.0.1] quit=1",
        Duration::from_secs(20),
    );
    let (_d, greeting) = session_after_slot_freed(port);
    assert!(greeting.starts_with("220 "), "{greeting}");
    // So does a session whose smtpd is killed.
    let pids = session_pids(&inst);
    let newest = *pids.last().expect("a session pid");
    kill(Pid::from_raw(newest), Signal::SIGKILL).unwrap();
    inst.wait_log(
        &format!("pid {newest} killed by signal 9"),
        Duration::from_secs(20),
    );
    let (_e, greeting) = session_after_slot_freed(port);
    assert!(greeting.starts_with("220 "), "{greeting}");
    assert!(b.cmd("NOOP").starts_with("250"));
}

#[test]
fn mynetworks_clients_are_not_limited_by_default() {
    let port = free_port();
    let mut inst = Instance::new(
        "alias_maps = \"\"\nlocal_recipient_maps = \"\"\nsmtpd_client_connection_count_limit = 1",
        &table(port),
    );
    inst.start();
    let mut a = LineClient::connect(port);
    assert!(a.line().starts_with("220 "));
    let mut b = LineClient::connect(port);
    assert!(b.line().starts_with("220 "), "127.0.0.1 is in mynetworks");
}
