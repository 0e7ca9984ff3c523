//! Just enough DER (X.690) to find a certificate's SubjectPublicKeyInfo,
//! which DANE selector 1 hashes (RFC 6698 §2.1.2). Never panics on bad
//! input; anything unexpected is `None`.

/// One TLV: tag, whole encoding, contents, rest of input.
type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

fn tlv(input: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    let header = input.len() - rest.len();
    Some((tag, input.get(..header)?, contents, rest))
}

const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;

/// The DER of the certificate's SubjectPublicKeyInfo.
pub(crate) fn spki(cert: &[u8]) -> Option<&[u8]> {
    let (tag, _, cert, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, _, tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    let (tag, _, _, after) = tlv(rest)?;
    if tag == VERSION {
        rest = after;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        rest = tlv(rest)?.3;
    }
    let (tag, whole, _, _) = tlv(rest)?;
    (tag == SEQUENCE).then_some(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_key_rcgen_put_there() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        use rcgen::PublicKeyData;
        assert_eq!(
            spki(cert.der()),
            Some(key.subject_public_key_info().as_slice())
        );
    }

    #[test]
    fn garbage_is_none() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        for n in 0..der.len() {
            // Truncations never panic (and rarely parse).
            let _ = spki(&der[..n]);
        }
        assert_eq!(spki(b""), None);
        assert_eq!(spki(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(spki(&[0x02, 0x01, 0x00]), None);
    }
}
