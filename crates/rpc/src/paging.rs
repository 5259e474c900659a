//! Opaque page tokens.
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
