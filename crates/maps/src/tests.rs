//! Tests of [`Maps`]: every table type through `open`, the address lookup
//! order, reloads and errors.

use std::path::{Path, PathBuf};

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn specs(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn open(list: &[&str]) -> Maps {
    Maps::open(&specs(list), Syntax::Postmap).unwrap()
}

#[test]
fn empty_list_has_no_tables() {
    let m = Maps::open(&[], Syntax::Postmap).unwrap();
    assert!(m.is_empty());
    assert_eq!(m.lookup("x").unwrap(), None);
    assert_eq!(m.lookup_address("a@b", "+", true).unwrap(), None);
}

#[test]
fn hash_btree_texthash_read_the_source_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "t", "Example.com  smtp:[mx.example.net]\n");
    for kind in ["hash", "btree", "texthash", "lmdb", "cdb", "proxy:hash"] {
        let m = open(&[&format!("{kind}:{}", p.display())]);
        assert!(!m.is_empty());
        assert_eq!(
            m.lookup("EXAMPLE.COM").unwrap().as_deref(),
            Some("smtp:[mx.example.net]"),
            "{kind}"
        );
        assert_eq!(m.lookup("other.com").unwrap(), None);
    }
}

#[test]
fn aliases_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "aliases",
        "postmaster: root\nlist: a, \"|/bin/cmd x\",\n  /tmp/file, :include:/etc/l\n",
    );
    let m = Maps::open(&[format!("hash:{}", p.display())], Syntax::Aliases).unwrap();
    assert_eq!(m.lookup("Postmaster").unwrap().as_deref(), Some("root"));
    assert_eq!(
        m.lookup("list").unwrap().as_deref(),
        Some("a, \"|/bin/cmd x\",  /tmp/file, :include:/etc/l")
    );
}

#[test]
fn first_table_with_the_key_wins() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a", "k1 from-a\n");
    let b = write(dir.path(), "b", "k1 from-b\nk2 from-b\n");
    let m = open(&[
        &format!("hash:{}", a.display()),
        &format!("texthash:{}", b.display()),
    ]);
    assert_eq!(m.lookup("k1").unwrap().as_deref(), Some("from-a"));
    assert_eq!(m.lookup("k2").unwrap().as_deref(), Some("from-b"));
    assert_eq!(
        m.to_string(),
        format!("hash:{}, texthash:{}", a.display(), b.display())
    );
}

#[test]
fn regexp_pcre_and_cidr_tables() {
    let dir = tempfile::tempdir().unwrap();
    let r = write(dir.path(), "r", "/^(.*)@Example\\.com$/ $1\n");
    let c = write(dir.path(), "c", "10.0.0.0/8 REJECT\n");
    let re = open(&[&format!("regexp:{}", r.display())]);
    assert_eq!(
        re.lookup("Joe@example.COM").unwrap().as_deref(),
        Some("Joe")
    );
    let pc = open(&[&format!("pcre:{}", r.display())]);
    assert_eq!(pc.lookup("x@EXAMPLE.com").unwrap().as_deref(), Some("x"));
    let ci = open(&[&format!("cidr:{}", c.display())]);
    assert_eq!(ci.lookup("10.1.2.3").unwrap().as_deref(), Some("REJECT"));
    assert_eq!(ci.lookup("11.1.2.3").unwrap(), None);
}

#[test]
fn inline_and_static() {
    let m = open(&["inline:{ Joe=j@x, { bob = b b } }", "static:catch-all"]);
    assert_eq!(m.lookup("JOE").unwrap().as_deref(), Some("j@x"));
    assert_eq!(m.lookup("bob").unwrap().as_deref(), Some("b b"));
    assert_eq!(m.lookup("anyone").unwrap().as_deref(), Some("catch-all"));
    let s = open(&["static:{ text with spaces }"]);
    assert_eq!(s.lookup("k").unwrap().as_deref(), Some("text with spaces"));
}

#[test]
fn unix_passwd_and_group() {
    let m = open(&["unix:passwd.byname"]);
    assert_eq!(m.lookup("root").unwrap().as_deref(), Some("root"));
    assert_eq!(m.lookup("ROOT").unwrap().as_deref(), Some("root"));
    assert_eq!(m.lookup("no-such-user-postern").unwrap(), None);
    assert_eq!(m.lookup("root@localhost").unwrap(), None);
    assert_eq!(m.lookup("@localhost").unwrap(), None);
    assert_eq!(m.lookup("").unwrap(), None);
    assert_eq!(
        m.lookup_address("root@localhost", "+", true)
            .unwrap()
            .as_deref(),
        Some("root"),
        "an address finds the account by its local part"
    );
    let g = open(&["unix:group.byname"]);
    assert_eq!(g.lookup("root").unwrap().as_deref(), Some("root"));
    assert!(Maps::open(&specs(&["unix:shadow"]), Syntax::Postmap).is_err());
}

#[test]
fn fail_table_fails_lookups_and_stops_the_search() {
    let m = open(&["inline:{ a=1 }", "fail:test", "static:never"]);
    assert_eq!(m.lookup("a").unwrap().as_deref(), Some("1"));
    let e = m.lookup("b").unwrap_err();
    assert_eq!(e.table(), "fail:test");
    assert_eq!(e.to_string(), "fail:test: table lookup failed");
    assert!(m.lookup_address("b@c", "+", true).is_err());
}

#[test]
fn open_errors_name_the_table() {
    let e = Maps::open(&specs(&["ldap:/etc/x"]), Syntax::Postmap).unwrap_err();
    assert_eq!(e.table(), "ldap:/etc/x");
    assert!(
        e.to_string().contains("unsupported dictionary type: ldap"),
        "{e}"
    );

    let e = Maps::open(&specs(&["hash:/nonexistent/postern/t"]), Syntax::Postmap).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("hash:/nonexistent/postern/t: open /nonexistent/postern/t: "),
        "{e}"
    );

    let e = Maps::open(&specs(&["/etc/aliases"]), Syntax::Postmap).unwrap_err();
    assert!(e.to_string().contains("type:name"), "{e}");
    assert!(Maps::open(&specs(&["inline:a=b"]), Syntax::Postmap).is_err());
    assert!(Maps::open(&specs(&["hash:"]), Syntax::Postmap).is_err());
}

#[test]
fn address_lookup_order() {
    // Each key form maps to its own name, so the result tells which key
    // matched; removing entries one by one walks down the order.
    let mut entries = vec![
        ("joe+ext@example.com", "full"),
        ("joe@example.com", "user@domain"),
        ("joe+ext", "user+ext"),
        ("joe", "user"),
        ("@example.com", "@domain"),
    ];
    while !entries.is_empty() {
        let body: Vec<String> = entries.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let m = open(&[&format!("inline:{{ {} }}", body.join(", "))]);
        let got = m.lookup_address("Joe+Ext@Example.COM", "+", true).unwrap();
        assert_eq!(got.as_deref(), Some(entries[0].1));
        entries.remove(0);
    }
}

#[test]
fn address_lookup_skips_localpart_forms_for_remote_domains() {
    let m = open(&["inline:{ joe=user, joe+ext=user+ext }"]);
    assert_eq!(
        m.lookup_address("joe+ext@example.com", "+", false).unwrap(),
        None
    );
    assert_eq!(
        m.lookup_address("joe+ext@example.com", "+", true)
            .unwrap()
            .as_deref(),
        Some("user+ext")
    );
}

#[test]
fn address_lookup_without_delimiter_keeps_the_extension() {
    let m = open(&["inline:{ joe@example.com=bare, joe=user }"]);
    assert_eq!(
        m.lookup_address("joe+x@example.com", "", true).unwrap(),
        None
    );
    assert_eq!(
        m.lookup_address("joe+x@example.com", "+", false)
            .unwrap()
            .as_deref(),
        Some("bare")
    );
    // Several delimiter characters: any of them splits.
    assert_eq!(
        m.lookup_address("joe-x@example.com", "+-", false)
            .unwrap()
            .as_deref(),
        Some("bare")
    );
    // A bare local part.
    assert_eq!(
        m.lookup_address("joe+x", "+", false).unwrap().as_deref(),
        Some("user")
    );
}

#[test]
fn address_lookup_gives_pattern_tables_only_the_full_address() {
    let dir = tempfile::tempdir().unwrap();
    let r = write(
        dir.path(),
        "r",
        "/^joe$/ localpart\n/^@example\\.com$/ at-domain\n",
    );
    let m = open(&[&format!("regexp:{}", r.display())]);
    assert_eq!(
        m.lookup_address("joe@example.com", "+", true).unwrap(),
        None
    );
    let r2 = write(dir.path(), "r2", "/^(joe)\\+.*@/ $1 full\n");
    let m = open(&[&format!("regexp:{}", r2.display())]);
    assert_eq!(
        m.lookup_address("joe+x@example.com", "+", true)
            .unwrap()
            .as_deref(),
        Some("joe full")
    );
}

#[test]
fn split_extension_rules() {
    assert_eq!(split_extension("joe+list", "+"), Some(("joe", "+list")));
    assert_eq!(split_extension("joe+a+b", "+"), Some(("joe", "+a+b")));
    assert_eq!(split_extension("joe-x+y", "+-"), Some(("joe", "-x+y")));
    assert_eq!(split_extension("joe", "+"), None);
    assert_eq!(split_extension("+joe", "+"), None);
    assert_eq!(split_extension("joe+x", ""), None);
    assert_eq!(split_extension("Postmaster", "+"), None);
    assert_eq!(split_extension("owner-list", "-"), None);
    assert_eq!(split_extension("list-request", "-"), None);
    assert_eq!(split_extension("owner-list", "+"), None);
    assert_eq!(split_extension("a-b", "-"), Some(("a", "-b")));
}

/// Rewrites a file so that its identity surely changes (new size and a
/// new inode via rename).
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn file_tables_reload_when_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(dir.path(), "h", "k old\n");
    let r = write(dir.path(), "r", "/^k$/ old\n");
    let c = write(dir.path(), "c", "10.0.0.0/8 old\n");
    let m = Maps::open_with(
        &[
            format!("hash:{}", h.display()),
            format!("regexp:{}", r.display()),
            format!("cidr:{}", c.display()),
        ],
        Syntax::Postmap,
        Duration::ZERO,
    )
    .unwrap();
    assert_eq!(m.lookup("k").unwrap().as_deref(), Some("old"));
    assert_eq!(m.lookup("10.1.1.1").unwrap().as_deref(), Some("old"));

    replace(&h, "k new-hash\n");
    assert_eq!(m.lookup("k").unwrap().as_deref(), Some("new-hash"));
    replace(&h, "other x\n");
    assert_eq!(m.lookup("k").unwrap().as_deref(), Some("old"));
    replace(&r, "/^k$/ new-regexp\n");
    assert_eq!(m.lookup("k").unwrap().as_deref(), Some("new-regexp"));
    replace(&c, "10.0.0.0/8 new-cidr\n");
    assert_eq!(m.lookup("10.1.1.1").unwrap().as_deref(), Some("new-cidr"));

    // A file that disappears keeps the old contents.
    std::fs::remove_file(&h).unwrap();
    assert_eq!(m.lookup("other").unwrap().as_deref(), Some("x"));
    // And comes back.
    write(dir.path(), "h", "other back\n");
    assert_eq!(m.lookup("other").unwrap().as_deref(), Some("back"));
}

#[test]
fn reload_is_checked_at_most_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(dir.path(), "h", "k old\n");
    let m = Maps::open_with(
        &[format!("hash:{}", h.display())],
        Syntax::Postmap,
        Duration::from_secs(3600),
    )
    .unwrap();
    replace(&h, "k new\n");
    assert_eq!(m.lookup("k").unwrap().as_deref(), Some("old"));
}

#[test]
fn default_interval_reload() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(dir.path(), "h", "k old\n");
    let m = open(&[&format!("hash:{}", h.display())]);
    replace(&h, "k newer\n");
    std::thread::sleep(source::RECHECK + Duration::from_millis(100));
    assert_eq!(m.lookup("k").unwrap().as_deref(), Some("newer"));
}

#[test]
fn clones_share_tables() {
    let m = open(&["inline:{ a=1 }"]);
    let c = m.clone();
    assert_eq!(c.lookup("a").unwrap().as_deref(), Some("1"));
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    assert_send_sync(&m);
}

#[test]
fn lookup_fixed_skips_pattern_tables() {
    let dir = tempfile::tempdir().unwrap();
    let r = write(dir.path(), "r", "/example/ from-regexp\n");
    let m = open(&[
        &format!("regexp:{}", r.display()),
        "inline:{ .example.com=from-inline }",
    ]);
    assert_eq!(
        m.lookup(".example.com").unwrap().as_deref(),
        Some("from-regexp")
    );
    assert_eq!(
        m.lookup_fixed(".example.com").unwrap().as_deref(),
        Some("from-inline")
    );
}

#[test]
fn check_collects_problems_and_lists_entries() {
    let dir = tempfile::tempdir().unwrap();
    let t = write(dir.path(), "t", "b 2\nA 1\nlonely\n");
    let spec = format!("hash:{}", t.display());
    let c = check(&spec, Syntax::Postmap).unwrap();
    assert_eq!(
        c.entries,
        Some(vec![("a".into(), "1".into()), ("b".into(), "2".into())])
    );
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    assert!(
        c.problems[0].starts_with(&format!("{}, line 3: ", t.display())),
        "{:?}",
        c.problems
    );
    let a = write(dir.path(), "aliases", "root: admin\nbad line\n");
    let c = check(&format!("hash:{}", a.display()), Syntax::Aliases).unwrap();
    assert_eq!(c.entries, Some(vec![("root".into(), "admin".into())]));
    assert_eq!(c.problems.len(), 1);
    let r = write(dir.path(), "re", "/^a/ x\n/(unclosed/ y\n");
    let c = check(&format!("regexp:{}", r.display()), Syntax::Postmap).unwrap();
    assert_eq!(c.entries, None);
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    let c = check("inline:{ k=v }", Syntax::Postmap).unwrap();
    assert_eq!(c.entries, Some(vec![("k".into(), "v".into())]));
    assert!(check("static:x", Syntax::Postmap).is_err());
    assert!(check("hash:/nonexistent/file", Syntax::Postmap).is_err());
    assert!(check("nosuch:/x", Syntax::Postmap).is_err());
}
