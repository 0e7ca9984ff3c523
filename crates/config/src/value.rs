//! Parsers for parameter values in Postfix syntax.
//!
//! Postfix counterparts: `global/conf_time.c` (`conv_time`), `conf_bool.c`,
//! `conf_int.c`/`conf_long.c`, `util/mystrtok.c` (list splitting) and
//! `util/cidr_match.c` (network addresses). These functions take a value
//! that has already been through `$name` expansion ([`crate::expand`]).

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

/// A value that does not parse: what was expected and what was found.
///
/// Displays as `expected a size in bytes, found "ten"`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, found {found:?}")]
pub struct ValueError {
    /// What a valid value looks like, e.g. `a size in bytes`.
    pub expected: String,
    /// The offending text.
    pub found: String,
}

impl ValueError {
    pub(crate) fn new(expected: impl Into<String>, found: &str) -> ValueError {
        ValueError {
            expected: expected.into(),
            found: found.to_owned(),
        }
    }
}

pub(crate) const TIME_EXPECTED: &str = "a time (a number with an optional unit s, m, h, d or w)";

/// Parse a Postfix time value, where a bare number means seconds.
///
/// Syntax: a decimal number followed by an optional unit `s` (seconds), `m`
/// (minutes), `h` (hours), `d` (days) or `w` (weeks), as in `300s` or `5d`.
pub fn parse_time(text: &str) -> Result<Duration, ValueError> {
    parse_time_unit(text, 's')
}

/// Parse a Postfix time value where a bare number is in `default_unit`
/// (one of `s`, `m`, `h`, `d`, `w`).
///
/// Postfix takes the unit of a bare number from the parameter's default
/// value: `maximal_queue_lifetime = 5` means five days because the default is
/// `5d` (`global/conf_time.c`).
pub fn parse_time_unit(text: &str, default_unit: char) -> Result<Duration, ValueError> {
    let bad = || ValueError::new(TIME_EXPECTED, text);
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    if number.is_empty() {
        return Err(bad());
    }
    let unit = match unit {
        "" => default_unit,
        u if u.len() == 1 => u.chars().next().ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    let scale: u64 = match unit.to_ascii_lowercase() {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return Err(bad()),
    };
    let number: u64 = number.parse().map_err(|_| bad())?;
    let secs = number.checked_mul(scale).ok_or_else(bad)?;
    Ok(Duration::from_secs(secs))
}

/// Parse a size in bytes (a plain decimal number, as Postfix's
/// `message_size_limit`).
pub fn parse_size(text: &str) -> Result<u64, ValueError> {
    let trimmed = text.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::new("a size in bytes", text));
    }
    trimmed
        .parse()
        .map_err(|_| ValueError::new("a size in bytes", text))
}

/// Parse a boolean: `yes`, `no`, `true` or `false` (any case).
pub fn parse_bool(text: &str) -> Result<bool, ValueError> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("yes") || trimmed.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if trimmed.eq_ignore_ascii_case("no") || trimmed.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ValueError::new("yes or no", text))
    }
}

/// Parse a decimal integer within `min..=max`.
pub fn parse_int(text: &str, min: i64, max: i64) -> Result<i64, ValueError> {
    let expected = if max == i64::MAX {
        format!("an integer of at least {min}")
    } else {
        format!("an integer from {min} to {max}")
    };
    let value: i64 = text
        .trim()
        .parse()
        .map_err(|_| ValueError::new(expected.clone(), text))?;
    if value < min || value > max {
        return Err(ValueError::new(expected, text));
    }
    Ok(value)
}

/// Split a Postfix list into its elements.
///
/// Elements are separated by commas and/or whitespace; empty elements are
/// dropped. As in Postfix (`util/mystrtok.c:mystrtokq`), text in `{ }` is
/// one element even when it contains separators, and is returned with its
/// braces so that the caller can tell it apart.
pub fn split_list(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '{' => {
                depth += 1;
                current.push(c);
            }
            '}' if depth > 0 => {
                depth -= 1;
                current.push(c);
            }
            ',' | ' ' | '\t' | '\r' | '\n' if depth == 0 => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

pub(crate) const NETWORK_EXPECTED: &str =
    "a network address (a.b.c.d/n, a.b.c.d, [ipv6]/n, ipv6/n or [ipv6])";

/// Parse one network: `a.b.c.d/n`, `a.b.c.d`, `[v6]/n`, `[v6]`, `v6/n` or
/// `v6`. An address without a prefix length is a host route (/32 or /128).
///
/// As in Postfix (`util/cidr_match.c`), bits set beyond the prefix length
/// (`10.1.2.3/8`) are an error.
pub fn parse_network(text: &str) -> Result<IpNet, ValueError> {
    let bad = || ValueError::new(NETWORK_EXPECTED, text);
    let trimmed = text.trim();
    let (addr, prefix) = match trimmed.rsplit_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (trimmed, None),
    };
    let addr = match addr.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?,
        None => addr,
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let max_prefix = if ip.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = match prefix {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse().map_err(|_| bad())?
        }
        Some(_) => return Err(bad()),
        None => max_prefix,
    };
    let net = IpNet::new(ip, prefix).map_err(|_| bad())?;
    if net.network() != ip {
        return Err(ValueError::new(
            format!(
                "a network address with no host bits set (perhaps {})",
                net.trunc()
            ),
            text,
        ));
    }
    Ok(net)
}

/// Parse a list of networks (see [`split_list`] and [`parse_network`]).
pub fn parse_netlist(text: &str) -> Result<Vec<IpNet>, ValueError> {
    split_list(text).iter().map(|s| parse_network(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_time("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_time("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_time("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_time("5d"), Ok(Duration::from_secs(5 * 86_400)));
        assert_eq!(parse_time("1w"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_time("0"), Ok(Duration::ZERO));
        assert_eq!(parse_time_unit("5", 'd'), Ok(Duration::from_secs(432_000)));
        for bad in [
            "",
            "s",
            "5x",
            "5ss",
            "-5s",
            "5 5",
            "1.5h",
            "99999999999999999999w",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_time("soon").unwrap_err().to_string(),
            "expected a time (a number with an optional unit s, m, h, d or w), found \"soon\""
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10240000"), Ok(10_240_000));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in ["", "ten", "-1", "10k", "1 0", "+5"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_size("ten").unwrap_err().to_string(),
            "expected a size in bytes, found \"ten\""
        );
    }

    #[test]
    fn bools() {
        assert_eq!(parse_bool("yes"), Ok(true));
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert_eq!(parse_bool("no"), Ok(false));
        assert_eq!(parse_bool("false"), Ok(false));
        assert_eq!(
            parse_bool("maybe").unwrap_err().to_string(),
            "expected yes or no, found \"maybe\""
        );
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int("5", 1, 10), Ok(5));
        assert_eq!(
            parse_int("11", 1, 10).unwrap_err().to_string(),
            "expected an integer from 1 to 10, found \"11\""
        );
        assert_eq!(
            parse_int("0", 1, i64::MAX).unwrap_err().to_string(),
            "expected an integer of at least 1, found \"0\""
        );
        assert!(parse_int("x", 0, 1).is_err());
    }

    #[test]
    fn lists() {
        assert_eq!(split_list("a, b  c,,d\n\te"), ["a", "b", "c", "d", "e"]);
        assert!(split_list(" ,, ").is_empty());
        assert_eq!(
            split_list("check_policy_service { inet:x:1, timeout=10s }, permit"),
            [
                "check_policy_service",
                "{ inet:x:1, timeout=10s }",
                "permit"
            ]
        );
    }

    #[test]
    fn networks() {
        let n = |s: &str| parse_network(s).map(|n| n.to_string());
        assert_eq!(n("127.0.0.0/8").as_deref(), Ok("127.0.0.0/8"));
        assert_eq!(n("10.1.2.3").as_deref(), Ok("10.1.2.3/32"));
        assert_eq!(n("[::1]/128").as_deref(), Ok("::1/128"));
        assert_eq!(n("[::1]").as_deref(), Ok("::1/128"));
        assert_eq!(n("2001:db8::/32").as_deref(), Ok("2001:db8::/32"));
        assert_eq!(
            n("[::ffff:127.0.0.0]/104").as_deref(),
            Ok("::ffff:127.0.0.0/104")
        );
        for bad in [
            "",
            "x",
            "10.0.0.0/33",
            "[::1",
            "::1]/3",
            "10.0.0.0/",
            "1.2.3.4/-1",
        ] {
            assert!(parse_network(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_network("10.1.2.3/8").unwrap_err().to_string(),
            "expected a network address with no host bits set (perhaps 10.0.0.0/8), found \"10.1.2.3/8\""
        );
        assert_eq!(
            parse_netlist("127.0.0.0/8 [::1]/128").map(|v| v.len()),
            Ok(2)
        );
    }
}
