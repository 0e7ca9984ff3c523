//! 8-bit to 7-bit conversion for servers without 8BITMIME (Postfix
//! `global/mime_state.c` with `disable_mime_output_conversion = no`).
//!
//! The message is walked as MIME: a `multipart/*` entity is split at its
//! boundary lines and each part converted in turn; a `message/rfc822`
//! entity has its inner message converted and its own
//! `Content-Transfer-Encoding: 8bit` relabelled `7bit`; any other entity
//! whose body has 8-bit octets and is not already `base64` or
//! `quoted-printable` gets its body quoted-printable encoded and its
//! `Content-Transfer-Encoding` header replaced. A message without
//! `MIME-Version` that has an 8-bit body is treated as one text part and
//! gets the MIME headers it then needs (`charset=utf-8` when the body is
//! valid UTF-8, else `unknown-8bit`, RFC 1428).
//!
//! Headers are passed through unchanged: 8-bit octets in headers are
//! only legal with SMTPUTF8, which is decided before this runs.
//!
//! Limits: nesting deeper than [`MAX_DEPTH`] is passed through as it
//! is below that depth (Postfix's `mime_nesting_limit` is 100).

/// Deepest multipart/message nesting that is converted.
pub(crate) const MAX_DEPTH: usize = 100;

/// Whether `content` has any octet with the high bit set.
pub(crate) fn has_8bit(content: &[u8]) -> bool {
    content.iter().any(|&b| b >= 0x80)
}

/// Splits content into lines without their line ends (LF or CRLF).
fn lines(content: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = content
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    if content.ends_with(b"\n") {
        out.pop();
    }
    out
}

/// The converted message, CRLF line ends.
pub(crate) fn downgrade(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 8);
    entity(&lines(content), &mut out, 0, true);
    out
}

/// One header field: its raw lines and its unfolded value.
struct Field<'a> {
    raw: Vec<&'a [u8]>,
    name: String,
    value: String,
}

fn parse_headers<'a>(lines: &[&'a [u8]]) -> (Vec<Field<'a>>, usize) {
    let mut fields: Vec<Field<'a>> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.is_empty() {
            return (fields, i + 1);
        }
        if (l[0] == b' ' || l[0] == b'\t')
            && let Some(f) = fields.last_mut()
        {
            f.raw.push(l);
            f.value.push(' ');
            f.value.push_str(String::from_utf8_lossy(l).trim());
        } else if let Some(colon) = l.iter().position(|&b| b == b':') {
            fields.push(Field {
                raw: vec![l],
                name: String::from_utf8_lossy(&l[..colon])
                    .trim()
                    .to_ascii_lowercase(),
                value: String::from_utf8_lossy(&l[colon + 1..]).trim().to_string(),
            });
        } else {
            // Not a header: the body starts here (no empty line).
            return (fields, i);
        }
        i += 1;
    }
    (fields, i)
}

/// `type/subtype` (lower case) and the `boundary` parameter.
fn content_type(value: &str) -> (String, Option<String>) {
    let mut parts = value.split(';');
    let mime = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let mut boundary = None;
    for p in parts {
        if let Some((k, v)) = p.split_once('=')
            && k.trim().eq_ignore_ascii_case("boundary")
        {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            if !v.is_empty() && v.len() <= 200 {
                boundary = Some(v.to_string());
            }
        }
    }
    (mime, boundary)
}

fn push_line(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n");
}

/// Converts one entity (headers, empty line, body).
fn entity(lines: &[&[u8]], out: &mut Vec<u8>, depth: usize, top: bool) {
    let (fields, body_at) = parse_headers(lines);
    let body = &lines[body_at.min(lines.len())..];
    let header_of = |name: &str| fields.iter().find(|f| f.name == name).map(|f| &f.value);
    let ctype = header_of("content-type").cloned();
    let cte = header_of("content-transfer-encoding").map(|v| v.to_ascii_lowercase());
    let (mime, boundary) = ctype
        .as_deref()
        .map_or(("text/plain".to_string(), None), content_type);
    let is_mime = !top || header_of("mime-version").is_some();
    let body_8bit = body.iter().any(|l| has_8bit(l));
    let emit_headers = |out: &mut Vec<u8>, replace_cte: Option<&str>| {
        for f in &fields {
            if f.name == "content-transfer-encoding"
                && let Some(new) = replace_cte
            {
                push_line(out, format!("Content-Transfer-Encoding: {new}").as_bytes());
                continue;
            }
            for l in &f.raw {
                push_line(out, l);
            }
        }
        if let Some(new) = replace_cte
            && cte.is_none()
        {
            push_line(out, format!("Content-Transfer-Encoding: {new}").as_bytes());
        }
    };
    let separator = body_at > 0 && lines.get(body_at - 1).is_some_and(|l| l.is_empty());
    if depth < MAX_DEPTH && is_mime && mime.starts_with("multipart/") && boundary.is_some() {
        let boundary = boundary.unwrap_or_default();
        emit_headers(out, None);
        if separator {
            push_line(out, b"");
        }
        multipart(body, boundary.as_bytes(), out, depth);
        return;
    }
    if depth < MAX_DEPTH && is_mime && mime == "message/rfc822" && body_8bit {
        emit_headers(out, Some("7bit"));
        if separator {
            push_line(out, b"");
        }
        entity(body, out, depth + 1, false);
        return;
    }
    let encoded = matches!(cte.as_deref(), Some("base64" | "quoted-printable"));
    if !body_8bit || encoded {
        emit_headers(out, None);
        if separator {
            push_line(out, b"");
        }
        for l in body {
            push_line(out, l);
        }
        return;
    }
    emit_headers(out, Some("quoted-printable"));
    if !is_mime {
        push_line(out, b"MIME-Version: 1.0");
        if ctype.is_none() {
            let joined: Vec<u8> = body.join(&b"\n"[..]);
            let charset = if std::str::from_utf8(&joined).is_ok() {
                "utf-8"
            } else {
                "unknown-8bit"
            };
            push_line(
                out,
                format!("Content-Type: text/plain; charset={charset}").as_bytes(),
            );
        }
    }
    push_line(out, b"");
    let text = body.join(&b"\r\n"[..]);
    out.extend_from_slice(&quoted_printable::encode(&text));
    out.extend_from_slice(b"\r\n");
}

/// Converts a multipart body: preamble, parts, epilogue.
fn multipart(body: &[&[u8]], boundary: &[u8], out: &mut Vec<u8>, depth: usize) {
    let delim: Vec<u8> = [b"--", boundary].concat();
    let is_delim = |l: &[u8]| l.starts_with(&delim) && l[delim.len()..].trim_ascii().is_empty();
    let is_close = |l: &[u8]| {
        l.starts_with(&delim)
            && l[delim.len()..].starts_with(b"--")
            && l[delim.len() + 2..].trim_ascii().is_empty()
    };
    let mut i = 0;
    // Preamble, as it is.
    while i < body.len() && !is_delim(body[i]) && !is_close(body[i]) {
        push_line(out, body[i]);
        i += 1;
    }
    while i < body.len() {
        if is_close(body[i]) {
            // Closing delimiter and epilogue, as they are.
            for l in &body[i..] {
                push_line(out, l);
            }
            return;
        }
        push_line(out, body[i]);
        i += 1;
        let start = i;
        while i < body.len() && !is_delim(body[i]) && !is_close(body[i]) {
            i += 1;
        }
        entity(&body[start..i], out, depth + 1, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down(s: &str) -> String {
        String::from_utf8(downgrade(s.as_bytes())).unwrap()
    }

    #[test]
    fn plain_message_gets_mime_headers_and_qp() {
        let got = down("Subject: x\n\ncaf\u{e9} cr\u{e8}me\n=sign\n");
        assert_eq!(
            got,
            "Subject: x\r\nContent-Transfer-Encoding: quoted-printable\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\ncaf=C3=A9 cr=C3=A8me\r\n=3Dsign\r\n"
        );
        assert!(!has_8bit(got.as_bytes()));
        let decoded = quoted_printable::decode(
            got.split("\r\n\r\n").nth(1).unwrap(),
            quoted_printable::ParseMode::Strict,
        )
        .unwrap();
        assert_eq!(decoded, "caf\u{e9} cr\u{e8}me\r\n=sign\r\n".as_bytes());
    }

    #[test]
    fn seven_bit_content_is_unchanged_but_for_line_ends() {
        let m = "Subject: x\nMIME-Version: 1.0\n\nplain\n";
        assert_eq!(down(m), m.replace('\n', "\r\n"));
    }

    #[test]
    fn mime_parts_are_converted_one_by_one() {
        let m = "MIME-Version: 1.0\n\
                 Content-Type: multipart/mixed; boundary=\"b1\"\n\
                 \n\
                 preamble\n\
                 --b1\n\
                 Content-Type: text/plain; charset=iso-8859-1\n\
                 Content-Transfer-Encoding: 8bit\n\
                 \n\
                 caf\u{e9}\n\
                 --b1\n\
                 Content-Type: text/plain\n\
                 \n\
                 ascii only\n\
                 --b1\n\
                 Content-Type: message/rfc822\n\
                 Content-Transfer-Encoding: 8bit\n\
                 \n\
                 Subject: inner\n\
                 MIME-Version: 1.0\n\
                 Content-Type: text/plain; charset=utf-8\n\
                 \n\
                 \u{fc}ber\n\
                 --b1--\n\
                 epilogue\n";
        let got = down(m);
        assert!(!has_8bit(got.as_bytes()), "{got}");
        assert!(got.contains(
            "--b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n--b1\r\n"
        ));
        assert!(got.contains("Content-Type: text/plain\r\n\r\nascii only\r\n--b1\r\n"));
        assert!(got.contains(
            "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
             Subject: inner\r\n"
        ));
        assert!(got.contains(
            "charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=C3=BCber\r\n"
        ));
        assert!(got.ends_with("--b1--\r\nepilogue\r\n"));
        assert!(got.starts_with("MIME-Version: 1.0\r\n"));
    }

    #[test]
    fn encoded_parts_and_hostile_input_pass() {
        let m = "MIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\nAAAA\n";
        assert_eq!(down(m), m.replace('\n', "\r\n"));
        // Deep nesting and junk do not panic.
        let mut deep = String::new();
        for i in 0..150 {
            deep.push_str(&format!(
                "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n"
            ));
        }
        deep.push_str("\n\u{e9}\n");
        let _ = downgrade(deep.as_bytes());
        let _ = downgrade(b"\xff\xfe:\n\n\x80");
        let _ = downgrade(b"");
    }
}
