//! Table results that are actions: `header_checks(5)`/`body_checks` and
//! the `access(5)` results smtpd uses (Postfix `cleanup_message.c:
//! cleanup_act()`, `smtpd_check.c:check_table_result()`).

/// What a `header_checks`, `body_checks` or `access` result asks for.
///
/// The text of an action keeps its case; the keyword does not matter
/// (`reject`, `REJECT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `DUNNO`, and every result that is not understood: go on as if the
    /// table had no entry. The caller logs a warning for the latter
    /// (compare the text with `dunno`).
    Dunno,
    /// `OK`, and an all-numerical result (access(5): "act as if the
    /// lookup result was OK").
    Ok,
    /// `REJECT optional text` (the text after the keyword), or `5NN
    /// text` (the whole text, status code included: callers that build a
    /// reply check for a leading three-digit code).
    Reject(String),
    /// `DEFER optional text`, or `4NN text` (the whole text, as for
    /// [`Action::Reject`]).
    Defer(String),
    /// `HOLD optional text`: keep the message in the hold queue.
    Hold(String),
    /// `DISCARD optional text`: claim delivery, then drop the message.
    Discard(String),
    /// `WARN optional text`: log and go on.
    Warn(String),
    /// `IGNORE`: delete the header line (or body line).
    Ignore,
    /// `PREPEND text`: insert a line before the current one.
    Prepend(String),
    /// `REPLACE text`: replace the current line.
    Replace(String),
    /// `REDIRECT user@domain`: send the message to this address only.
    Redirect(String),
}

impl Action {
    /// Parses a table result.
    pub fn parse(text: &str) -> Action {
        let text = text.trim();
        let (word, rest) = match text.find(char::is_whitespace) {
            Some(i) => (&text[..i], text[i..].trim_start()),
            None => (text, ""),
        };
        if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) {
            return match word.as_bytes() {
                [b'4', _, _] if !rest.is_empty() => Action::Defer(text.to_owned()),
                [b'5', _, _] if !rest.is_empty() => Action::Reject(text.to_owned()),
                _ => Action::Ok,
            };
        }
        let rest = rest.to_owned();
        match word.to_ascii_uppercase().as_str() {
            "DUNNO" => Action::Dunno,
            "OK" => Action::Ok,
            "REJECT" => Action::Reject(rest),
            "DEFER" => Action::Defer(rest),
            "HOLD" => Action::Hold(rest),
            "DISCARD" => Action::Discard(rest),
            "WARN" => Action::Warn(rest),
            "IGNORE" => Action::Ignore,
            "PREPEND" => Action::Prepend(rest),
            "REPLACE" => Action::Replace(rest),
            "REDIRECT" => Action::Redirect(rest),
            _ => Action::Dunno,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_with_and_without_text() {
        assert_eq!(Action::parse("DUNNO"), Action::Dunno);
        assert_eq!(Action::parse(" ok "), Action::Ok);
        assert_eq!(Action::parse("REJECT"), Action::Reject(String::new()));
        assert_eq!(
            Action::parse("reject  No Spam Here"),
            Action::Reject("No Spam Here".into())
        );
        assert_eq!(
            Action::parse("DEFER try later"),
            Action::Defer("try later".into())
        );
        assert_eq!(Action::parse("HOLD"), Action::Hold(String::new()));
        assert_eq!(Action::parse("Discard why"), Action::Discard("why".into()));
        assert_eq!(Action::parse("WARN look"), Action::Warn("look".into()));
        assert_eq!(Action::parse("IGNORE"), Action::Ignore);
        assert_eq!(
            Action::parse("PREPEND X-Seen: yes"),
            Action::Prepend("X-Seen: yes".into())
        );
        assert_eq!(
            Action::parse("REPLACE Subject: [x]"),
            Action::Replace("Subject: [x]".into())
        );
        assert_eq!(
            Action::parse("REDIRECT abuse@example.com"),
            Action::Redirect("abuse@example.com".into())
        );
    }

    #[test]
    fn numeric_results() {
        assert_eq!(
            Action::parse("550 5.7.1 go away"),
            Action::Reject("550 5.7.1 go away".into())
        );
        assert_eq!(
            Action::parse("450 4.7.1 later"),
            Action::Defer("450 4.7.1 later".into())
        );
        assert_eq!(Action::parse("1234567"), Action::Ok);
        assert_eq!(Action::parse("550"), Action::Ok);
    }

    #[test]
    fn unknown_is_dunno() {
        assert_eq!(Action::parse("FILTER smtp:[x]"), Action::Dunno);
        assert_eq!(Action::parse(""), Action::Dunno);
        assert_eq!(Action::parse("relay.example.com"), Action::Dunno);
    }
}
