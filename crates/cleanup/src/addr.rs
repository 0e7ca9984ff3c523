//! Address processing: canonical mapping and virtual alias expansion
//! (Postfix `cleanup_addr.c`, `cleanup_map11.c`, `cleanup_map1n.c`,
//! `global/mail_addr_map.c`, `global/mail_addr_crunch.c`).
//!
//! Every address goes through trivial-rewrite first (the canonical form:
//! `user` becomes `user@$myorigin` in the local context), then through
//! the one-to-one canonical tables, and a recipient finally through the
//! one-to-many `virtual_alias_maps`. Every address a table returns is
//! rewritten again in the local context, as Postfix's `mail_addr_crunch`
//! does. A table or the rewrite service failing makes the whole message
//! fail temporarily ([`Failed`]); the caller turns that into
//! `status::DEFER`.

use postern_ipc::rewrite::Rule;
use postern_util::warn;

use crate::tables::{AddrMap, Rewriter};

/// How deep a one-to-one (canonical) mapping may nest (Postfix
/// `cleanup_map11.c` `MAX_RECURSION`).
const MAP11_MAX_RECURSION: usize = 10;

/// Reason given to the client when a canonical table failed.
pub(crate) const CANONICAL_ERROR: &str = "4.6.0 Canonical mapping error";
/// Reason given to the client when alias expansion failed.
pub(crate) const ALIAS_ERROR: &str = "4.6.0 Alias expansion error";
/// Reason given to the client when trivial-rewrite could not be asked.
pub(crate) const REWRITE_ERROR: &str = "4.3.0 address rewriting service unavailable";

/// The address could not be processed now: the message must be deferred
/// with this reason (the warning is already logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failed(pub(crate) &'static str);

/// Limits of the one-to-many expansion.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExpansionLimits {
    /// `virtual_alias_recursion_limit`.
    pub(crate) recursion: usize,
    /// `virtual_alias_expansion_limit`.
    pub(crate) expansion: usize,
}

/// trivial-rewrite in the context `rule` (Postfix
/// `cleanup_rewrite_internal`).
pub(crate) fn rewrite(
    rw: &mut dyn Rewriter,
    id: &str,
    rule: Rule,
    addr: &str,
) -> Result<String, Failed> {
    rw.rewrite(rule, addr).map_err(|e| {
        warn!("{id}: {e} -- message not accepted, try again later");
        Failed(REWRITE_ERROR)
    })
}

/// One-to-one mapping through `map` (Postfix `cleanup_map11_internal`):
/// applied again to its own result until the address maps to itself or
/// not at all, at most [`MAP11_MAX_RECURSION`] times. A multi-valued
/// result is logged and its first address used.
pub(crate) fn map11(
    rw: &mut dyn Rewriter,
    map: &dyn AddrMap,
    id: &str,
    addr: &str,
) -> Result<String, Failed> {
    let mut current = addr.to_string();
    for _ in 0..MAP11_MAX_RECURSION {
        let found = map.lookup_address(&current).map_err(|e| {
            warn!(
                "{id}: {} map lookup problem for {current}: {e} -- message not accepted, try again later",
                map.title()
            );
            Failed(CANONICAL_ERROR)
        })?;
        let Some(found) = found else {
            return Ok(current);
        };
        let list = crunch(&current, &found);
        if list.len() > 1 {
            warn!("{id}: multi-valued {} entry for {current}", map.title());
        }
        let Some(first) = list.into_iter().next() else {
            return Ok(current);
        };
        let next = rewrite(rw, id, Rule::Local, &first)?;
        if next.eq_ignore_ascii_case(&current) {
            return Ok(next);
        }
        current = next;
    }
    warn!(
        "{id}: unreasonable {} map nesting for {addr} -- using {current}",
        map.title()
    );
    Ok(current)
}

/// One-to-many expansion through `map` (Postfix
/// `cleanup_map1n_internal`).
///
/// Each address of the list is looked up again and replaced by its
/// expansion (the first address in its place, the others appended, so
/// they are expanded in turn). An address may expand into itself once:
/// that stops its expansion. A loop (`a` → `b` → `a`) runs until
/// `virtual_alias_recursion_limit` and defers the message, as does a list
/// longer than `virtual_alias_expansion_limit`.
pub(crate) fn map1n(
    rw: &mut dyn Rewriter,
    map: &dyn AddrMap,
    id: &str,
    addr: &str,
    limits: ExpansionLimits,
) -> Result<Vec<String>, Failed> {
    let mut list = vec![addr.to_string()];
    // Addresses that expanded into themselves (Postfix `been_here`).
    let mut final_addrs: Vec<String> = Vec::new();
    let mut arg = 0;
    while arg < list.len() {
        if list.len() > limits.expansion {
            warn!(
                "{id}: unreasonable {} map expansion size for {addr} -- message not accepted, try again later",
                map.title()
            );
            return Err(Failed(ALIAS_ERROR));
        }
        let mut count = 0;
        while let Some(current) = list.get(arg).cloned() {
            let key = current.to_ascii_lowercase();
            if final_addrs.contains(&key) {
                break;
            }
            if count >= limits.recursion {
                warn!(
                    "{id}: unreasonable {} map nesting for {addr} -- message not accepted, try again later",
                    map.title()
                );
                return Err(Failed(ALIAS_ERROR));
            }
            count += 1;
            let found = map.lookup_address(&current).map_err(|e| {
                warn!(
                    "{id}: {} map lookup problem for {current}: {e} -- message not accepted, try again later",
                    map.title()
                );
                Failed(ALIAS_ERROR)
            })?;
            let Some(found) = found else {
                break;
            };
            let results = crunch(&current, &found);
            if results.is_empty() {
                break;
            }
            for (i, result) in results.into_iter().enumerate() {
                let result = rewrite(rw, id, Rule::Local, &result)?;
                if result.eq_ignore_ascii_case(&current) {
                    final_addrs.push(key.clone());
                }
                if i == 0 {
                    if let Some(slot) = list.get_mut(arg) {
                        *slot = result;
                    }
                } else {
                    list.push(result);
                }
            }
        }
        arg += 1;
    }
    if list.len() > limits.expansion {
        warn!(
            "{id}: unreasonable {} map expansion size for {addr} -- message not accepted, try again later",
            map.title()
        );
        return Err(Failed(ALIAS_ERROR));
    }
    Ok(list)
}

/// Splits a table result into addresses (Postfix `mail_addr_crunch`):
/// comma-separated, each optionally in `<...>` with a display name
/// before it. A result `@domain` keeps the local part of `key` (Postfix
/// `mail_addr_map`: "prepend the original user to @otherdomain").
pub(crate) fn crunch(key: &str, result: &str) -> Vec<String> {
    let result = result.trim();
    let owned;
    let result = if result.starts_with('@') {
        let local = key.rsplit_once('@').map_or(key, |(l, _)| l);
        owned = format!("{local}{result}");
        owned.as_str()
    } else {
        result
    };
    split_addresses(result)
        .into_iter()
        .filter_map(|part| {
            let part = part.trim();
            let addr = match (part.rfind('<'), part.rfind('>')) {
                (Some(open), Some(close)) if open < close => part.get(open + 1..close)?,
                _ => part,
            };
            let addr = addr.trim();
            (!addr.is_empty()).then(|| addr.to_string())
        })
        .collect()
}

/// Splits at commas outside double quotes and angle brackets.
fn split_addresses(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut angle = 0u32;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle += 1,
            '>' if !quoted => angle = angle.saturating_sub(1),
            ',' if !quoted && angle == 0 => {
                parts.push(text.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text.get(start..).unwrap_or_default());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crunch_splits_lists_and_strips_names() {
        assert_eq!(
            crunch("x", "a@x, \"Smith, J\" <b@y>,c"),
            ["a@x", "b@y", "c"]
        );
        assert_eq!(crunch("joe@old.test", "@new.test"), ["joe@new.test"]);
        assert!(crunch("x", " , ").is_empty());
    }
}
