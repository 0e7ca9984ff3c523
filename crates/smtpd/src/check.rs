//! Access restrictions and recipient validation (Postfix `smtpd_check.c`).
//!
//! A restriction list is evaluated in order; each restriction answers
//! permit (the rest of *that list* is skipped), reject (the command is
//! refused) or "don't know" (go on). At RCPT TO the lists run in Postfix's
//! order: `smtpd_client_restrictions`, `smtpd_helo_restrictions` (only
//! after HELO/EHLO), `smtpd_sender_restrictions`,
//! `smtpd_relay_restrictions`, `smtpd_recipient_restrictions`. A
//! recipient that passes them all is then checked against the recipient
//! tables of its address class ([`check_recipient_maps`], Postfix
//! `check_rcpt_maps`). `smtpd_data_restrictions` run at DATA and at the
//! first BDAT ([`Restrictions::check_data`]); only restrictions that need
//! no recipient are allowed there.
//!
//! Supported restrictions: `permit`, `reject`, `defer`,
//! `permit_mynetworks`, `permit_sasl_authenticated` (never matches: there
//! is no AUTH yet), `permit_auth_destination`, `reject_unauth_destination`,
//! `defer_unauth_destination`, `reject_unlisted_recipient`,
//! `reject_unknown_client_hostname` (also `reject_unknown_client`) and
//! `reject_unknown_reverse_client_hostname`. An unknown
//! name is a configuration error found at startup (Postfix finds it at run
//! time and answers `451 4.3.5 Server configuration error`).
//!
//! An *authorized destination* is a recipient whose domain resolves to the
//! local, virtual alias, virtual mailbox or relay address class, and that
//! was not source-routed (`user%host@local`, `host!user@local`): Postfix
//! `permit_auth_destination` with `allow_untrusted_routing = no`.

use std::net::IpAddr;

use ipnet::IpNet;
use postern_config::Config;
use postern_ipc::rewrite::{Resolved, flags};
use postern_smtp_proto::reply::{EnhancedStatus, Reply, standard};

use crate::peer::Status;

/// One restriction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Restriction {
    Defer,
    DeferUnauthDestination,
    Permit,
    PermitAuthDestination,
    PermitMynetworks,
    PermitSaslAuthenticated,
    Reject,
    RejectUnauthDestination,
    RejectUnknownClientHostname,
    RejectUnknownReverseClientHostname,
    RejectUnlistedRecipient,
}

impl Restriction {
    fn parse(word: &str) -> Option<Restriction> {
        Some(match word.to_ascii_lowercase().as_str() {
            "defer" => Restriction::Defer,
            "defer_unauth_destination" => Restriction::DeferUnauthDestination,
            "permit" => Restriction::Permit,
            "permit_auth_destination" => Restriction::PermitAuthDestination,
            "permit_mynetworks" => Restriction::PermitMynetworks,
            "permit_sasl_authenticated" => Restriction::PermitSaslAuthenticated,
            "reject" => Restriction::Reject,
            "reject_unauth_destination" => Restriction::RejectUnauthDestination,
            "reject_unknown_client_hostname" | "reject_unknown_client" => {
                Restriction::RejectUnknownClientHostname
            }
            "reject_unknown_reverse_client_hostname" => {
                Restriction::RejectUnknownReverseClientHostname
            }
            "reject_unlisted_recipient" | "check_recipient_maps" => {
                Restriction::RejectUnlistedRecipient
            }
            _ => return None,
        })
    }

    /// Whether this restriction judges one recipient (so it cannot be
    /// used in `smtpd_data_restrictions`).
    fn needs_recipient(self) -> bool {
        matches!(
            self,
            Restriction::DeferUnauthDestination
                | Restriction::PermitAuthDestination
                | Restriction::RejectUnauthDestination
                | Restriction::RejectUnlistedRecipient
        )
    }

    /// Whether this restriction can stop open relaying (Postfix's list in
    /// its "specify at least one working instance of" error).
    fn blocks_relaying(self) -> bool {
        matches!(
            self,
            Restriction::Defer
                | Restriction::DeferUnauthDestination
                | Restriction::Reject
                | Restriction::RejectUnauthDestination
        )
    }
}

/// Which list is being evaluated: decides the reject text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Client,
    Helo,
    Recipient,
    Sender,
}

/// The restriction lists of one process.
#[derive(Debug, Clone)]
pub(crate) struct Restrictions {
    client: Vec<Restriction>,
    helo: Vec<Restriction>,
    sender: Vec<Restriction>,
    relay: Vec<Restriction>,
    recipient: Vec<Restriction>,
    data: Vec<Restriction>,
    /// `unknown_client_reject_code`.
    unknown_client_code: u16,
}

impl Default for Restrictions {
    fn default() -> Restrictions {
        Restrictions {
            client: Vec::new(),
            helo: Vec::new(),
            sender: Vec::new(),
            relay: Vec::new(),
            recipient: Vec::new(),
            data: Vec::new(),
            unknown_client_code: 450,
        }
    }
}

/// What a restriction decided.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Dunno,
    Permit,
    Reject(Reply),
}

/// What the restrictions know about the client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client<'a> {
    /// The client's address (None for a non-IP connection).
    pub(crate) ip: Option<IpAddr>,
    /// The printable address.
    pub(crate) addr: &'a str,
    /// `name[addr]`.
    pub(crate) namaddr: &'a str,
    /// How the (forward-confirmed) name lookup came out.
    pub(crate) name_status: Status,
    /// How the PTR lookup came out.
    pub(crate) reverse_name_status: Status,
}

/// What the restrictions get to look at for one RCPT TO.
#[derive(Debug, Clone)]
pub(crate) struct Facts<'a> {
    /// The client.
    pub(crate) client: Client<'a>,
    /// The HELO/EHLO argument, if any.
    pub(crate) helo: Option<&'a str>,
    /// The envelope sender (empty for `<>`).
    pub(crate) sender: &'a str,
    /// The recipient as the client gave it.
    pub(crate) recipient: &'a str,
    /// What trivial-rewrite said about it.
    pub(crate) resolved: &'a Resolved,
    /// AUTH succeeded (never, for now).
    pub(crate) authenticated: bool,
}

impl Restrictions {
    /// Parses the five lists. Unknown names are an error, and so is a
    /// configuration that cannot stop open relaying (Postfix: "specify at
    /// least one working instance of ...").
    pub(crate) fn from_config(config: &Config) -> Result<Restrictions, String> {
        let list = |name: &str| -> Result<Vec<Restriction>, String> {
            config
                .list(name)
                .iter()
                .map(|w| {
                    Restriction::parse(w).ok_or_else(|| {
                        format!("{name}: unknown or unsupported restriction \"{w}\"")
                    })
                })
                .collect()
        };
        let r = Restrictions {
            client: list("smtpd_client_restrictions")?,
            helo: list("smtpd_helo_restrictions")?,
            sender: list("smtpd_sender_restrictions")?,
            relay: list("smtpd_relay_restrictions")?,
            recipient: list("smtpd_recipient_restrictions")?,
            data: list("smtpd_data_restrictions")?,
            unknown_client_code: u16::try_from(config.int("unknown_client_reject_code"))
                .unwrap_or(450),
        };
        r.validate()?;
        Ok(r)
    }

    fn validate(&self) -> Result<(), String> {
        if self.relay.is_empty() && !self.recipient.iter().any(|r| r.blocks_relaying()) {
            return Err(
                "in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, \
                 specify at least one working instance of: reject_unauth_destination, \
                 defer_unauth_destination, reject or defer"
                    .into(),
            );
        }
        if let Some(r) = self.data.iter().find(|r| r.needs_recipient()) {
            return Err(format!(
                "smtpd_data_restrictions: {r:?} needs a recipient and cannot be used here"
            ));
        }
        Ok(())
    }

    /// Runs `smtpd_data_restrictions` (Postfix `smtpd_check_data`).
    pub(crate) fn check_data(
        &self,
        client: &Client<'_>,
        authenticated: bool,
        mynetworks: &[IpNet],
    ) -> Result<(), Reply> {
        for r in &self.data {
            let reject = |code, class| {
                Reply::with_status(
                    code,
                    EnhancedStatus::new(class, 7, 1),
                    "<DATA>: Data command rejected: Access denied",
                )
            };
            let verdict = match r {
                Restriction::Permit => Verdict::Permit,
                Restriction::Reject => Verdict::Reject(reject(554, 5)),
                Restriction::Defer => Verdict::Reject(reject(450, 4)),
                Restriction::PermitMynetworks => permit_if(in_mynetworks(client, mynetworks)),
                Restriction::PermitSaslAuthenticated => permit_if(authenticated),
                Restriction::RejectUnknownClientHostname
                | Restriction::RejectUnknownReverseClientHostname => {
                    self.unknown_client(*r, client)
                }
                // Recipient restrictions were refused at startup.
                _ => Verdict::Dunno,
            };
            match verdict {
                Verdict::Dunno => {}
                Verdict::Permit => return Ok(()),
                Verdict::Reject(reply) => return Err(reply),
            }
        }
        Ok(())
    }

    /// Postfix `reject_unknown_client` and `reject_unknown_reverse_name`:
    /// a temporary DNS failure always gets 450, anything else
    /// `unknown_client_reject_code`.
    fn unknown_client(&self, r: Restriction, client: &Client<'_>) -> Verdict {
        let (status, detail, what) = match r {
            Restriction::RejectUnknownReverseClientHostname => {
                (client.reverse_name_status, 1, "reverse hostname")
            }
            _ => (client.name_status, 25, "hostname"),
        };
        if status == Status::Ok {
            return Verdict::Dunno;
        }
        let code = if status == Status::Temp {
            450
        } else {
            self.unknown_client_code
        };
        let class = if code >= 500 { 5 } else { 4 };
        Verdict::Reject(Reply::with_status(
            code,
            EnhancedStatus::new(class, 7, detail),
            format!(
                "Client host rejected: cannot find your {what}, [{}]",
                client.addr
            ),
        ))
    }

    /// Runs every list for one recipient; the error is the reply.
    pub(crate) fn check_recipient(
        &self,
        facts: &Facts<'_>,
        mynetworks: &[IpNet],
        tables: &Tables,
    ) -> Result<(), Reply> {
        let lists = [
            (Stage::Client, &self.client),
            (Stage::Helo, &self.helo),
            (Stage::Sender, &self.sender),
            (Stage::Recipient, &self.relay),
            (Stage::Recipient, &self.recipient),
        ];
        for (stage, list) in lists {
            if stage == Stage::Helo && facts.helo.is_none() {
                continue;
            }
            for r in list.iter() {
                match evaluate(self, *r, stage, facts, mynetworks, tables) {
                    Verdict::Dunno => continue,
                    Verdict::Permit => break,
                    Verdict::Reject(reply) => return Err(reply),
                }
            }
        }
        Ok(())
    }
}

fn permit_if(yes: bool) -> Verdict {
    if yes { Verdict::Permit } else { Verdict::Dunno }
}

fn in_mynetworks(client: &Client<'_>, mynetworks: &[IpNet]) -> bool {
    client.ip.is_some_and(|ip| in_networks(ip, mynetworks))
}

fn evaluate(
    restrictions: &Restrictions,
    r: Restriction,
    stage: Stage,
    facts: &Facts<'_>,
    mynetworks: &[IpNet],
    tables: &Tables,
) -> Verdict {
    let rcpt = facts.recipient;
    match r {
        Restriction::Permit => Verdict::Permit,
        Restriction::Reject => Verdict::Reject(access_denied(stage, facts, 554, 5)),
        Restriction::Defer => Verdict::Reject(access_denied(stage, facts, 450, 4)),
        Restriction::PermitMynetworks => permit_if(in_mynetworks(&facts.client, mynetworks)),
        Restriction::PermitSaslAuthenticated => permit_if(facts.authenticated),
        Restriction::RejectUnknownClientHostname
        | Restriction::RejectUnknownReverseClientHostname => {
            restrictions.unknown_client(r, &facts.client)
        }
        Restriction::PermitAuthDestination => {
            if is_auth_destination(facts.resolved) {
                Verdict::Permit
            } else {
                Verdict::Dunno
            }
        }
        Restriction::RejectUnauthDestination => {
            if is_auth_destination(facts.resolved) {
                Verdict::Dunno
            } else {
                Verdict::Reject(standard::relay_denied(rcpt))
            }
        }
        Restriction::DeferUnauthDestination => {
            if is_auth_destination(facts.resolved) {
                Verdict::Dunno
            } else {
                Verdict::Reject(Reply::with_status(
                    454,
                    EnhancedStatus::new(4, 7, 1),
                    format!("<{rcpt}>: Relay access denied"),
                ))
            }
        }
        Restriction::RejectUnlistedRecipient => {
            match check_recipient_maps(tables, rcpt, facts.resolved) {
                Ok(()) => Verdict::Dunno,
                Err(reply) => Verdict::Reject(reply),
            }
        }
    }
}

/// Postfix's generic "Access denied" reject for `reject`/`defer`.
fn access_denied(stage: Stage, facts: &Facts<'_>, code: u16, class: u8) -> Reply {
    let (name, what) = match stage {
        Stage::Client => (facts.client.namaddr, "Client host"),
        Stage::Helo => (facts.helo.unwrap_or_default(), "Helo command"),
        Stage::Sender => (facts.sender, "Sender address"),
        Stage::Recipient => (facts.recipient, "Recipient address"),
    };
    Reply::with_status(
        code,
        EnhancedStatus::new(class, 7, 1),
        format!("<{name}>: {what} rejected: Access denied"),
    )
}

/// Whether `ip` is in one of `networks` (IPv4-mapped IPv6 addresses count
/// as IPv4).
pub(crate) fn in_networks(ip: IpAddr, networks: &[IpNet]) -> bool {
    let canonical = ip.to_canonical();
    networks
        .iter()
        .any(|n| n.contains(&ip) || n.contains(&canonical))
}

/// Postfix `permit_auth_destination`: final delivery here (local, virtual
/// alias or virtual mailbox class) or a relay domain, and not routed.
pub(crate) fn is_auth_destination(resolved: &Resolved) -> bool {
    if resolved.flags & flags::ROUTED != 0 {
        return false;
    }
    resolved.flags
        & (flags::CLASS_LOCAL | flags::CLASS_ALIAS | flags::CLASS_VIRTUAL | flags::CLASS_RELAY)
        != 0
}

/// A lookup table that knows addresses, in Postfix `mail_addr_find()`
/// order (`user+ext@domain`, `user@domain`, then for local domains
/// `user+ext`, `user`, then `@domain`).
pub(crate) trait AddressTable {
    /// Whether the table has an entry for `address`; the error (a failed
    /// lookup) means "try again later", never "not found".
    fn contains(&self, address: &str, local_domain: bool) -> Result<bool, String>;
}

/// The recipient tables of one process. `None` means the parameter is
/// empty, which disables that check (Postfix).
#[derive(Default)]
pub(crate) struct Tables {
    /// `local_recipient_maps`.
    pub(crate) local_recipient: Option<Box<dyn AddressTable>>,
    /// `virtual_mailbox_maps`.
    pub(crate) virtual_mailbox: Option<Box<dyn AddressTable>>,
    /// `virtual_alias_maps`.
    pub(crate) virtual_alias: Option<Box<dyn AddressTable>>,
    /// `relay_recipient_maps`.
    pub(crate) relay_recipient: Option<Box<dyn AddressTable>>,
    /// `recipient_canonical_maps` and `canonical_maps`: an address with
    /// an entry there is accepted (Postfix assumes it is rewritten to
    /// something deliverable).
    pub(crate) canonical: Vec<Box<dyn AddressTable>>,
}

/// The local parts that are always accepted in local domains (Postfix:
/// `double-bounce`, absorbed by qmgr; `postmaster`; `MAILER-DAEMON`,
/// generated by bounce).
const ALWAYS_LOCAL: [&str; 3] = ["double-bounce", "postmaster", "mailer-daemon"];

fn local_part(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(l, _)| l)
}

/// Postfix `check_rcpt_maps`: rejects recipients that the tables of their
/// address class don't know. `given` is the address as the client sent it
/// (for the reply); lookups use the resolved address.
pub(crate) fn check_recipient_maps(
    tables: &Tables,
    given: &str,
    resolved: &Resolved,
) -> Result<(), Reply> {
    let temp_fail = || standard::temporary_lookup_failure(&format!("<{given}>"));
    if resolved.flags & flags::FAIL != 0 {
        return Err(temp_fail());
    }
    let address = resolved.recipient.as_str();
    let local = resolved.flags & flags::CLASS_LOCAL != 0;
    let find = |table: &dyn AddressTable| -> Result<bool, Reply> {
        table.contains(address, local).map_err(|e| {
            postern_util::warn!("<{given}>: recipient table lookup failed: {e}");
            temp_fail()
        })
    };
    // An address that canonical or virtual alias maps rewrite is assumed
    // to be deliverable.
    for table in tables.canonical.iter().chain(tables.virtual_alias.iter()) {
        if find(table.as_ref())? {
            return Ok(());
        }
    }
    let rejected = |code: u16, default: EnhancedStatus, text: &str| {
        let (status, text) = split_dsn(text, default);
        Reply::with_status(
            code,
            status,
            format!("<{given}>: Recipient address rejected: {text}"),
        )
    };
    if resolved.transport == "error" || resolved.flags & flags::ERROR != 0 {
        let default = if resolved.flags & flags::ERROR != 0 {
            EnhancedStatus::new(5, 1, 3)
        } else {
            EnhancedStatus::new(5, 1, 1)
        };
        let text = if resolved.transport == "error" && !resolved.nexthop.is_empty() {
            resolved.nexthop.as_str()
        } else {
            "bad address syntax"
        };
        return Err(rejected(550, default, text));
    }
    if resolved.transport == "retry" {
        return Err(rejected(
            450,
            EnhancedStatus::new(4, 1, 1),
            &resolved.nexthop,
        ));
    }
    let class = resolved.flags & flags::CLASS_MASK;
    let unknown = |table: &str| Err(standard::user_unknown(given, table));
    if class & flags::CLASS_LOCAL != 0 {
        let lp = local_part(address);
        if ALWAYS_LOCAL.iter().any(|a| a.eq_ignore_ascii_case(lp)) {
            return Ok(());
        }
        if let Some(table) = &tables.local_recipient
            && !find(table.as_ref())?
        {
            return unknown("local recipient table");
        }
    } else if class & flags::CLASS_VIRTUAL != 0 {
        if let Some(table) = &tables.virtual_mailbox
            && !find(table.as_ref())?
        {
            return unknown("virtual mailbox table");
        }
    } else if class & flags::CLASS_ALIAS != 0 {
        // Known aliases returned above.
        return unknown("virtual alias table");
    } else if class & flags::CLASS_RELAY != 0
        && let Some(table) = &tables.relay_recipient
        && !find(table.as_ref())?
    {
        return unknown("relay recipient table");
    }
    Ok(())
}

/// Postfix `dsn_split`: a leading `x.y.z ` status in `text` replaces
/// `default` when its class agrees.
pub(crate) fn split_dsn(text: &str, default: EnhancedStatus) -> (EnhancedStatus, &str) {
    match EnhancedStatus::parse_prefix(text) {
        Some((status, len)) if status.class == default.class => {
            (status, text.get(len..).unwrap_or_default())
        }
        Some((_, len)) => (default, text.get(len..).unwrap_or_default()),
        None => (default, text),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashSet;

    use super::*;

    /// A table of addresses and bare local parts, for tests.
    pub(crate) struct SetTable(pub(crate) HashSet<String>, pub(crate) bool);

    impl SetTable {
        pub(crate) fn boxed(keys: &[&str]) -> Box<dyn AddressTable> {
            Box::new(SetTable(
                keys.iter().map(|k| k.to_string()).collect(),
                false,
            ))
        }
        pub(crate) fn failing() -> Box<dyn AddressTable> {
            Box::new(SetTable(HashSet::new(), true))
        }
    }

    impl AddressTable for SetTable {
        fn contains(&self, address: &str, local_domain: bool) -> Result<bool, String> {
            if self.1 {
                return Err("fail:test: table lookup failed".into());
            }
            let address = address.to_ascii_lowercase();
            if self.0.contains(&address) {
                return Ok(true);
            }
            let (lp, domain) = address.rsplit_once('@').unwrap_or((&address, ""));
            Ok((local_domain && self.0.contains(lp)) || self.0.contains(&format!("@{domain}")))
        }
    }

    pub(crate) fn resolved(class: u64, recipient: &str) -> Resolved {
        let transport = match class {
            flags::CLASS_LOCAL => "local",
            flags::CLASS_VIRTUAL => "virtual",
            flags::CLASS_ALIAS => "error",
            flags::CLASS_RELAY => "relay",
            _ => "smtp",
        };
        Resolved {
            flags: class,
            transport: transport.into(),
            nexthop: if class == flags::CLASS_ALIAS {
                "5.1.1 User unknown in virtual alias table".into()
            } else {
                "example.test".into()
            },
            recipient: recipient.into(),
        }
    }

    fn lists(relay: &[Restriction], recipient: &[Restriction]) -> Restrictions {
        Restrictions {
            relay: relay.to_vec(),
            recipient: recipient.to_vec(),
            ..Restrictions::default()
        }
    }

    fn default_lists() -> Restrictions {
        lists(
            &[
                Restriction::PermitMynetworks,
                Restriction::PermitSaslAuthenticated,
                Restriction::DeferUnauthDestination,
            ],
            &[],
        )
    }

    fn facts<'a>(ip: &str, rcpt: &'a str, resolved: &'a Resolved) -> Facts<'a> {
        Facts {
            client: Client {
                ip: Some(ip.parse().unwrap()),
                addr: "192.0.2.1",
                namaddr: "unknown[192.0.2.1]",
                name_status: Status::Perm,
                reverse_name_status: Status::Perm,
            },
            helo: Some("client.example"),
            sender: "a@example.org",
            recipient: rcpt,
            resolved,
            authenticated: false,
        }
    }

    fn mynetworks() -> Vec<IpNet> {
        vec!["127.0.0.1/32".parse().unwrap()]
    }

    fn run(r: &Restrictions, f: &Facts<'_>) -> Result<(), String> {
        r.check_recipient(f, &mynetworks(), &Tables::default())
            .map_err(|r| r.to_string())
    }

    #[test]
    fn default_relay_restrictions() {
        let r = default_lists();
        let remote = resolved(flags::CLASS_DEFAULT, "x@remote.example");
        let local = resolved(flags::CLASS_LOCAL, "u@mail.example.test");
        // Inside mynetworks: anything goes.
        assert_eq!(
            run(&r, &facts("127.0.0.1", "x@remote.example", &remote)),
            Ok(())
        );
        // Outside: only our own destinations.
        assert_eq!(
            run(&r, &facts("127.0.0.2", "x@remote.example", &remote)),
            Err("454 4.7.1 <x@remote.example>: Relay access denied".into())
        );
        assert_eq!(
            run(&r, &facts("127.0.0.2", "u@mail.example.test", &local)),
            Ok(())
        );
        // IPv4-mapped IPv6 counts as IPv4.
        assert_eq!(
            run(&r, &facts("::ffff:127.0.0.1", "x@remote.example", &remote)),
            Ok(())
        );
    }

    #[test]
    fn reject_unauth_destination_and_routing() {
        let r = lists(&[Restriction::RejectUnauthDestination], &[]);
        let remote = resolved(flags::CLASS_DEFAULT, "x@remote.example");
        assert_eq!(
            run(&r, &facts("127.0.0.1", "x@remote.example", &remote)),
            Err("554 5.7.1 <x@remote.example>: Relay access denied".into())
        );
        for class in [
            flags::CLASS_LOCAL,
            flags::CLASS_ALIAS,
            flags::CLASS_VIRTUAL,
            flags::CLASS_RELAY,
        ] {
            let ok = resolved(class, "u@here.example");
            assert_eq!(run(&r, &facts("192.0.2.1", "u@here.example", &ok)), Ok(()));
        }
        let mut routed = resolved(flags::CLASS_LOCAL, "x@remote.example");
        routed.flags |= flags::ROUTED;
        assert!(run(&r, &facts("192.0.2.1", "x%remote.example@here", &routed)).is_err());
    }

    #[test]
    fn permit_stops_only_its_own_list() {
        let remote = resolved(flags::CLASS_DEFAULT, "x@remote.example");
        let r = lists(
            &[Restriction::Permit],
            &[Restriction::RejectUnauthDestination],
        );
        assert!(run(&r, &facts("127.0.0.1", "x@remote.example", &remote)).is_err());
        let r = lists(
            &[Restriction::PermitAuthDestination, Restriction::Reject],
            &[],
        );
        let local = resolved(flags::CLASS_LOCAL, "u@here");
        assert_eq!(run(&r, &facts("192.0.2.1", "u@here", &local)), Ok(()));
        assert_eq!(
            run(&r, &facts("192.0.2.1", "x@remote.example", &remote)),
            Err("554 5.7.1 <x@remote.example>: Recipient address rejected: Access denied".into())
        );
    }

    #[test]
    fn client_helo_sender_lists() {
        let local = resolved(flags::CLASS_LOCAL, "u@here");
        let mut r = default_lists();
        r.client = vec![Restriction::PermitMynetworks, Restriction::Reject];
        assert_eq!(
            run(&r, &facts("192.0.2.1", "u@here", &local)),
            Err("554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access denied".into())
        );
        assert_eq!(run(&r, &facts("127.0.0.1", "u@here", &local)), Ok(()));
        let mut r = default_lists();
        r.helo = vec![Restriction::Defer];
        assert_eq!(
            run(&r, &facts("127.0.0.1", "u@here", &local)),
            Err("450 4.7.1 <client.example>: Helo command rejected: Access denied".into())
        );
        let mut f = facts("127.0.0.1", "u@here", &local);
        f.helo = None;
        assert_eq!(run(&r, &f), Ok(()), "no HELO: helo restrictions skipped");
        let mut r = default_lists();
        r.sender = vec![Restriction::Reject];
        assert_eq!(
            run(&r, &facts("127.0.0.1", "u@here", &local)),
            Err("554 5.7.1 <a@example.org>: Sender address rejected: Access denied".into())
        );
    }

    #[test]
    fn data_restrictions() {
        let mut r = default_lists();
        let nets = mynetworks();
        let local = resolved(flags::CLASS_LOCAL, "u@here");
        let inside = facts("127.0.0.1", "u@here", &local).client;
        let outside = facts("192.0.2.1", "u@here", &local).client;
        let (inside, outside) = (&inside, &outside);
        assert_eq!(r.check_data(outside, false, &nets), Ok(()));
        r.data = vec![Restriction::PermitMynetworks, Restriction::Reject];
        assert_eq!(r.check_data(inside, false, &nets), Ok(()));
        assert_eq!(
            r.check_data(outside, false, &nets).unwrap_err().to_string(),
            "554 5.7.1 <DATA>: Data command rejected: Access denied"
        );
        r.data = vec![Restriction::Defer];
        assert_eq!(
            r.check_data(inside, false, &nets).unwrap_err().to_string(),
            "450 4.7.1 <DATA>: Data command rejected: Access denied"
        );
        let cfg = Config::defaults()
            .with_overrides(&["smtpd_data_restrictions=reject_unauth_destination".into()])
            .unwrap();
        let e = Restrictions::from_config(&cfg).unwrap_err();
        assert!(e.contains("smtpd_data_restrictions"), "{e}");
    }

    #[test]
    fn unknown_client_hostnames() {
        let local = resolved(flags::CLASS_LOCAL, "u@here");
        let with = |name: Status, reverse: Status| {
            let mut f = facts("192.0.2.1", "u@here", &local);
            f.client.name_status = name;
            f.client.reverse_name_status = reverse;
            f
        };
        let mut r = default_lists();
        r.client = vec![Restriction::RejectUnknownClientHostname];
        assert_eq!(run(&r, &with(Status::Ok, Status::Ok)), Ok(()));
        let hostname = "Client host rejected: cannot find your hostname, [192.0.2.1]";
        assert_eq!(
            run(&r, &with(Status::Forged, Status::Ok)),
            Err(format!("450 4.7.25 {hostname}"))
        );
        r.unknown_client_code = 550;
        assert_eq!(
            run(&r, &with(Status::Forged, Status::Ok)),
            Err(format!("550 5.7.25 {hostname}"))
        );
        assert_eq!(
            run(&r, &with(Status::Perm, Status::Perm)),
            Err(format!("550 5.7.25 {hostname}"))
        );
        // A temporary DNS failure is always 450.
        assert_eq!(
            run(&r, &with(Status::Temp, Status::Ok)),
            Err(format!("450 4.7.25 {hostname}"))
        );
        // The reverse name alone is enough for the weaker restriction.
        r.client = vec![Restriction::RejectUnknownReverseClientHostname];
        assert_eq!(run(&r, &with(Status::Forged, Status::Ok)), Ok(()));
        let reverse = "Client host rejected: cannot find your reverse hostname, [192.0.2.1]";
        assert_eq!(
            run(&r, &with(Status::Perm, Status::Perm)),
            Err(format!("550 5.7.1 {reverse}"))
        );
        assert_eq!(
            run(&r, &with(Status::Temp, Status::Temp)),
            Err(format!("450 4.7.1 {reverse}"))
        );
        // Allowed at DATA, and the old name parses.
        r.data = vec![Restriction::RejectUnknownReverseClientHostname];
        let f = with(Status::Perm, Status::Perm);
        assert_eq!(
            r.check_data(&f.client, false, &mynetworks())
                .unwrap_err()
                .to_string(),
            format!("550 5.7.1 {reverse}")
        );
        let cfg = Config::defaults()
            .with_overrides(&[
                "smtpd_client_restrictions=reject_unknown_client".into(),
                "unknown_client_reject_code=554".into(),
            ])
            .unwrap();
        let r = Restrictions::from_config(&cfg).unwrap();
        assert_eq!(r.client, [Restriction::RejectUnknownClientHostname]);
        assert_eq!(r.unknown_client_code, 554);
        assert_eq!(Restrictions::default().unknown_client_code, 450);
    }

    #[test]
    fn parsing_and_validation() {
        let cfg = Config::defaults();
        let r = Restrictions::from_config(&cfg).unwrap();
        assert_eq!(r.relay, default_lists().relay);
        let cfg = Config::defaults()
            .with_overrides(&["smtpd_recipient_restrictions=permit_mynetworks, bogus_thing".into()])
            .unwrap();
        let e = Restrictions::from_config(&cfg).unwrap_err();
        assert!(e.contains("bogus_thing"), "{e}");
        let cfg = Config::defaults()
            .with_overrides(&[
                "smtpd_relay_restrictions=".into(),
                "smtpd_recipient_restrictions=permit_mynetworks".into(),
            ])
            .unwrap();
        let e = Restrictions::from_config(&cfg).unwrap_err();
        assert!(e.contains("at least one working instance"), "{e}");
        let cfg = Config::defaults()
            .with_overrides(&[
                "smtpd_relay_restrictions=".into(),
                "smtpd_recipient_restrictions=permit_mynetworks reject_unauth_destination".into(),
            ])
            .unwrap();
        assert!(Restrictions::from_config(&cfg).is_ok());
    }

    fn tables() -> Tables {
        Tables {
            local_recipient: Some(SetTable::boxed(&["alice", "root"])),
            virtual_mailbox: Some(SetTable::boxed(&["v@virt.example"])),
            virtual_alias: Some(SetTable::boxed(&["alias@valias.example"])),
            relay_recipient: Some(SetTable::boxed(&["known@relay"])),
            canonical: vec![SetTable::boxed(&["canon@mail.example.test"])],
        }
    }

    fn maps(class: u64, given: &str, resolved_to: &str) -> Result<(), String> {
        check_recipient_maps(&tables(), given, &resolved(class, resolved_to))
            .map_err(|r| r.to_string())
    }

    #[test]
    fn recipient_maps_per_class() {
        let l = flags::CLASS_LOCAL;
        assert_eq!(
            maps(l, "alice@mail.example.test", "alice@mail.example.test"),
            Ok(())
        );
        assert_eq!(
            maps(l, "bob@mail.example.test", "bob@mail.example.test"),
            Err(
                "550 5.1.1 <bob@mail.example.test>: Recipient address rejected: \
                 User unknown in local recipient table"
                    .into()
            )
        );
        // Always accepted in local domains, any case.
        assert_eq!(
            maps(l, "Postmaster", "Postmaster@mail.example.test"),
            Ok(())
        );
        assert_eq!(maps(l, "MAILER-DAEMON@x", "MAILER-DAEMON@x"), Ok(()));
        // Canonical maps know it.
        assert_eq!(
            maps(l, "canon@mail.example.test", "canon@mail.example.test"),
            Ok(())
        );
        let v = flags::CLASS_VIRTUAL;
        assert_eq!(maps(v, "v@virt.example", "v@virt.example"), Ok(()));
        assert_eq!(
            maps(v, "w@virt.example", "w@virt.example"),
            Err("550 5.1.1 <w@virt.example>: Recipient address rejected: \
                 User unknown in virtual mailbox table"
                .into())
        );
        let a = flags::CLASS_ALIAS;
        assert_eq!(
            maps(a, "alias@valias.example", "alias@valias.example"),
            Ok(())
        );
        assert_eq!(
            maps(a, "nobody@valias.example", "nobody@valias.example"),
            Err(
                "550 5.1.1 <nobody@valias.example>: Recipient address rejected: \
                 User unknown in virtual alias table"
                    .into()
            )
        );
        // Remote domains are not checked here; relay domains against
        // relay_recipient_maps.
        assert_eq!(maps(flags::CLASS_DEFAULT, "x@remote", "x@remote"), Ok(()));
        assert_eq!(
            maps(flags::CLASS_RELAY, "known@relay", "known@relay"),
            Ok(())
        );
        assert!(
            maps(flags::CLASS_RELAY, "x@relay", "x@relay")
                .unwrap_err()
                .starts_with("550 5.1.1 <x@relay>: Recipient address rejected: User unknown in relay recipient table")
        );
    }

    #[test]
    fn empty_local_recipient_maps_accepts_everyone() {
        let t = Tables::default();
        let r = resolved(flags::CLASS_LOCAL, "anyone@mail.example.test");
        assert_eq!(
            check_recipient_maps(&t, "anyone@mail.example.test", &r),
            Ok(())
        );
    }

    #[test]
    fn errors_and_failures() {
        let mut r = resolved(flags::CLASS_DEFAULT, "x@[bad");
        r.flags |= flags::ERROR;
        r.transport = "error".into();
        r.nexthop = "5.1.3 bad address syntax".into();
        assert_eq!(
            check_recipient_maps(&tables(), "x@[bad", &r)
                .unwrap_err()
                .to_string(),
            "550 5.1.3 <x@[bad>: Recipient address rejected: bad address syntax"
        );
        let mut r = resolved(flags::CLASS_LOCAL, "x@here");
        r.flags |= flags::FAIL;
        assert_eq!(
            check_recipient_maps(&tables(), "x@here", &r)
                .unwrap_err()
                .to_string(),
            "451 4.3.0 <x@here>: Temporary lookup failure"
        );
        let t = Tables {
            local_recipient: Some(SetTable::failing()),
            ..Tables::default()
        };
        let r = resolved(flags::CLASS_LOCAL, "x@here");
        assert_eq!(
            check_recipient_maps(&t, "x@here", &r)
                .unwrap_err()
                .to_string(),
            "451 4.3.0 <x@here>: Temporary lookup failure"
        );
        // An error transport chosen by transport_maps, with its own text.
        let mut r = resolved(flags::CLASS_DEFAULT, "x@gone.example");
        r.transport = "error".into();
        r.nexthop = "mailbox moved".into();
        assert_eq!(
            check_recipient_maps(&tables(), "x@gone.example", &r)
                .unwrap_err()
                .to_string(),
            "550 5.1.1 <x@gone.example>: Recipient address rejected: mailbox moved"
        );
    }
}
