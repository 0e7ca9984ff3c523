//! trivial-rewrite through master: `ipc::rewrite::Client` requests
//! against the real daemon on `private/rewrite`.

use std::fs;
use std::path::Path;
use std::time::Duration;

use postern_ipc::rewrite::{Client, Rule, flags};
use postern_tests::Instance;

const WAIT: Duration = Duration::from_secs(20);

const TABLE: &str = "[rewrite]\ntype = \"unix\"\nmaxproc = 2\ncommand = \"trivial-rewrite\"\n";

fn start(main_extra: &str) -> Instance {
    let mut inst = Instance::new(main_extra, TABLE);
    inst.start();
    inst
}

fn write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

#[test]
fn rewrites_and_resolves_many_requests_on_one_connection() {
    let tables = tempfile::tempdir().unwrap();
    let transport = tables.path().join("transport");
    write(&transport, "special.test  smtp:[192.0.2.1]:2525\n");
    let inst = start(&format!(
        "mydomain = \"example.test\"\nrelay_domains = \"partner.test\"\n\
         virtual_mailbox_domains = \"virtual.test\"\n\
         transport_maps = \"hash:{}\"\n",
        transport.display()
    ));
    let mut c = Client::new(&inst.queue_dir, WAIT);

    assert_eq!(
        c.rewrite(Rule::Local, "joe").unwrap(),
        "joe@mail.example.test"
    );
    assert_eq!(c.rewrite(Rule::Remote, "joe").unwrap(), "joe");
    assert_eq!(
        c.rewrite(Rule::Local, "@hop.test:Joe@Remote.TEST.")
            .unwrap(),
        "Joe@remote.test"
    );
    assert_eq!(c.rewrite(Rule::Local, "").unwrap(), "");

    let local = c.resolve("", "joe@mail.example.test").unwrap();
    assert_eq!(local.class(), flags::CLASS_LOCAL);
    assert_eq!(local.transport, "local");
    assert_eq!(local.nexthop, "mail.example.test");
    assert_eq!(local.recipient, "joe@mail.example.test");

    let relay = c.resolve("", "x@partner.test").unwrap();
    assert_eq!(
        (
            relay.class(),
            relay.transport.as_str(),
            relay.nexthop.as_str()
        ),
        (flags::CLASS_RELAY, "relay", "partner.test")
    );
    let virt = c.resolve("", "x@virtual.test").unwrap();
    assert_eq!(
        (virt.class(), virt.transport.as_str()),
        (flags::CLASS_VIRTUAL, "virtual")
    );
    let other = c.resolve("", "x@elsewhere.test").unwrap();
    assert_eq!(
        (
            other.class(),
            other.transport.as_str(),
            other.nexthop.as_str()
        ),
        (flags::CLASS_DEFAULT, "smtp", "elsewhere.test")
    );
    let special = c.resolve("", "x@special.test").unwrap();
    assert_eq!(special.nexthop, "[192.0.2.1]:2525");
    let routed = c.resolve("", "x%elsewhere.test@mail.example.test").unwrap();
    assert_eq!(routed.recipient, "x@elsewhere.test");
    assert_eq!(routed.class(), flags::CLASS_DEFAULT);
    let bad = c.resolve("", "x@bad..test").unwrap();
    assert_eq!(bad.flags & flags::ERROR, flags::ERROR);
    assert_eq!(bad.transport, "error");

    // The table is reread when it changes (checked at most once a second).
    write(&transport, "special.test  relay:[192.0.2.2]\n");
    std::thread::sleep(Duration::from_millis(1200));
    let changed = c.resolve("", "x@special.test").unwrap();
    assert_eq!(
        (changed.transport.as_str(), changed.nexthop.as_str()),
        ("relay", "[192.0.2.2]")
    );
    inst.wait_log("table has changed; reloaded", WAIT);
    assert!(!inst.log_text().contains("warning:"), "{}", inst.log_text());
}

#[test]
fn one_process_serves_many_open_connections() {
    // One process only, a multi-server: the second client is served while
    // the first keeps its connection open.
    let table = TABLE.replace("maxproc = 2", "maxproc = 1");
    let mut inst = Instance::new("", &table);
    inst.start();
    let mut first = Client::new(&inst.queue_dir, WAIT);
    assert_eq!(
        first.rewrite(Rule::Local, "a").unwrap(),
        "a@mail.example.test"
    );
    let mut second = Client::new(&inst.queue_dir, Duration::from_secs(10));
    assert_eq!(
        second.rewrite(Rule::Local, "b").unwrap(),
        "b@mail.example.test"
    );
    // The first client's connection still works.
    assert_eq!(
        first.rewrite(Rule::Local, "c").unwrap(),
        "c@mail.example.test"
    );
}

#[test]
fn lookup_failure_is_reported_as_fail() {
    let inst = start("transport_maps = \"fail:transport\"\n");
    let mut c = Client::new(&inst.queue_dir, WAIT);
    let r = c.resolve("", "x@elsewhere.test").unwrap();
    assert_eq!(r.flags & flags::FAIL, flags::FAIL);
    inst.wait_log("fail:transport: table lookup failed", WAIT);
    // Rewriting does not use the table and still works.
    assert_eq!(c.rewrite(Rule::Remote, "x@Y.test").unwrap(), "x@y.test");
}

#[test]
fn missing_table_file_is_fatal_at_start() {
    let inst = start("transport_maps = \"hash:/nonexistent/postern/transport\"\n");
    // The connection waits in master's listen queue while the daemon
    // keeps failing: a short timeout ends the wait.
    let mut c = Client::new(&inst.queue_dir, Duration::from_secs(2));
    assert!(c.resolve("", "x@elsewhere.test").is_err());
    inst.wait_log(
        "fatal: hash:/nonexistent/postern/transport: open /nonexistent/postern/transport",
        WAIT,
    );
}
