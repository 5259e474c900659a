//! Page sizes and opaque page tokens.
//!
//! A token carries a position and a fingerprint of the request that produced it, so a token
//! reused with other parameters, truncated or edited is refused rather than silently
//! returning the wrong page. Tokens are not secret; they are checked, not signed.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

const MAGIC: u8 = 0x71;

/// A 64-bit FNV-1a hash of the request's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint(u64);

impl Fingerprint {
    /// Hashes the given parts, separated so that ("ab","c") differs from ("a","bc").
    pub fn of(parts: &[&[u8]]) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in parts {
            for &b in part.iter().chain(&[0xff]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        Fingerprint(h)
    }
}

/// Makes a token for `position`.
pub fn encode(fingerprint: Fingerprint, position: &[u8]) -> String {
    let mut raw = Vec::with_capacity(9 + position.len() + 8);
    raw.push(MAGIC);
    raw.extend_from_slice(&fingerprint.0.to_be_bytes());
    raw.extend_from_slice(position);
    let check = Fingerprint::of(&[&raw]).0;
    raw.extend_from_slice(&check.to_be_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}

/// Reads a token back, checking that it was made for a request with `fingerprint`.
pub fn decode(token: &str, fingerprint: Fingerprint) -> Result<Vec<u8>, String> {
    let invalid = || {
        "is not a page token this server issued for this request; start again with an empty page_token".to_owned()
    };
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    if raw.len() < 17 || raw[0] != MAGIC {
        return Err(invalid());
    }
    let (body, check) = raw.split_at(raw.len() - 8);
    if Fingerprint::of(&[body]).0.to_be_bytes() != check {
        return Err(invalid());
    }
    if body[1..9] != fingerprint.0.to_be_bytes() {
        return Err(
            "was issued for a request with other parameters; keep them unchanged between pages"
                .to_owned(),
        );
    }
    Ok(body[9..].to_vec())
}

/// The page size a request asks for, within `(default, largest)`: 0 is the default, more
/// than the largest is the largest, a negative size is an error (for the `page_size` field).
pub fn size(requested: i32, (default, largest): (usize, usize)) -> Result<usize, String> {
    match requested {
        0 => Ok(default),
        n if n < 0 => Err("must not be negative".to_owned()),
        n => Ok((n as usize).min(largest)),
    }
}

/// A token whose position is a number (an offset, an id or a period).
pub fn encode_number(fingerprint: Fingerprint, position: u64) -> String {
    encode(fingerprint, &position.to_be_bytes())
}

/// The number in a token made by [`encode_number`] for a request with `fingerprint`; an
/// empty token is `None` (the first page).
pub fn decode_number(token: &str, fingerprint: Fingerprint) -> Result<Option<u64>, String> {
    if token.is_empty() {
        return Ok(None);
    }
    let position = decode(token, fingerprint)?;
    let bytes: [u8; 8] = position
        .try_into()
        .map_err(|_| "is not a page token of this method".to_owned())?;
    Ok(Some(u64::from_be_bytes(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn token_for_other_parameters_is_refused() {
        let t = encode(Fingerprint::of(&[b"a"]), b"pos");
        assert!(decode(&t, Fingerprint::of(&[b"b"])).is_err());
        assert_eq!(decode(&t, Fingerprint::of(&[b"a"])).unwrap(), b"pos");
    }

    #[test]
    fn sizes_default_cap_and_refuse_negatives() {
        assert_eq!(size(0, (50, 500)), Ok(50));
        assert_eq!(size(7, (50, 500)), Ok(7));
        assert_eq!(size(9999, (50, 500)), Ok(500));
        assert!(size(-1, (50, 500)).is_err());
        let f = Fingerprint::of(&[b"q"]);
        assert_eq!(decode_number("", f), Ok(None));
        assert_eq!(decode_number(&encode_number(f, 42), f), Ok(Some(42)));
        assert!(decode_number(&encode(f, b"abc"), f).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(pos in proptest::collection::vec(any::<u8>(), 0..64), fp in any::<u64>()) {
            let f = Fingerprint(fp);
            prop_assert_eq!(decode(&encode(f, &pos), f).unwrap(), pos);
        }

        #[test]
        fn tampered_tokens_are_refused(pos in proptest::collection::vec(any::<u8>(), 1..32), i in any::<usize>(), flip in 1u8..=255) {
            let f = Fingerprint(7);
            let mut raw = URL_SAFE_NO_PAD.decode(encode(f, &pos)).unwrap();
            let i = i % raw.len();
            raw[i] ^= flip;
            prop_assert!(decode(&URL_SAFE_NO_PAD.encode(raw), f).is_err());
        }
    }
}
