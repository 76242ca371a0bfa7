//! ES256 signature verification (ECDSA over P-256 with SHA-256, FIPS 186-5 §6.4.2) with tables
//! of multiples of the public key computed once, when the JWKS is read.
//!
//! Why not jwt-simple's own ES256 (the `p256` and `ecdsa` crates): each verification computes
//! `u1·G + u2·Q` from scratch, 256 point doublings and about 100 additions, ~0.25 ms natively
//! and ~0.7 ms in Wasm. With fixed-base tables for `G` (shared) and for each key `Q`, the same
//! sum is about 120 additions of a table point and no doubling. The field, scalar and point
//! arithmetic and the signature decoding are still the `p256` crate's; only the combination of
//! the multiples is ours. Everything here handles public data: variable time is fine.

// The `+` and `*` below are point additions and products of scalars modulo the group order,
// which cannot overflow; the lint is meant for integer arithmetic on outside input.
#![allow(clippy::arithmetic_side_effects)]

use std::sync::{Arc, OnceLock};

use p256::ecdsa::Signature;
use p256::elliptic_curve::group::Group as _;
use p256::elliptic_curve::ops::{Invert as _, Reduce as _};
use p256::elliptic_curve::point::AffineCoordinates as _;
use p256::elliptic_curve::BatchNormalize as _;
use p256::{AffinePoint, ProjectivePoint, PublicKey, Scalar, U256};
use sha2::{Digest, Sha256};

/// Radix-16 windows of a 256-bit scalar.
const WINDOWS: usize = 64;
/// Non-zero digits of a window.
const DIGITS: usize = 15;

/// `j·16^i·P` for every window `i` and digit `j` in 1..=15, affine: `k·P` is then the sum of one
/// table point per non-zero hexadecimal digit of `k`.
struct FixedBase {
    multiples: Vec<[AffinePoint; DIGITS]>,
}

impl FixedBase {
    fn new(point: ProjectivePoint) -> Self {
        let mut projective = Vec::with_capacity(WINDOWS.saturating_mul(DIGITS));
        let mut base = point;
        for _ in 0..WINDOWS {
            let mut multiple = base;
            for _ in 0..DIGITS {
                projective.push(multiple);
                multiple += base;
            }
            // After 15 additions `multiple` is 16·base, the next window's base.
            base = multiple;
        }
        let affine = ProjectivePoint::batch_normalize(projective.as_slice());
        let multiples = affine
            .chunks_exact(DIGITS)
            .filter_map(|w| <[AffinePoint; DIGITS]>::try_from(w).ok())
            .collect();
        Self { multiples }
    }

    /// `k·P`, in variable time.
    fn mul(&self, k: &Scalar) -> ProjectivePoint {
        let bytes = k.to_bytes();
        // Window i is the i-th hexadecimal digit from the least significant end.
        let digits = bytes.iter().rev().flat_map(|b| [b & 0x0f, b >> 4]);
        let mut sum = ProjectivePoint::IDENTITY;
        for (window, digit) in self.multiples.iter().zip(digits) {
            if let Some(m) = usize::from(digit)
                .checked_sub(1)
                .and_then(|j| window.get(j))
            {
                sum += m;
            }
        }
        sum
    }
}

/// The generator's table, built at the first ES256 key.
fn generator() -> &'static FixedBase {
    static TABLE: OnceLock<FixedBase> = OnceLock::new();
    TABLE.get_or_init(|| FixedBase::new(ProjectivePoint::GENERATOR))
}

/// A P-256 public key ready for ES256 verification (its table is shared by clones).
#[derive(Clone)]
pub(crate) struct Es256PublicKey {
    table: Arc<FixedBase>,
}

impl Es256PublicKey {
    /// The key of an uncompressed SEC1 point, if it is a point of the curve other than the
    /// identity (`p256`'s own checks, as jwt-simple's `ES256PublicKey::from_bytes`).
    pub(crate) fn from_sec1(point: &[u8]) -> Option<Self> {
        let key = PublicKey::from_sec1_bytes(point).ok()?;
        // Build the generator's table now rather than in the first verification.
        generator();
        Some(Self {
            table: Arc::new(FixedBase::new(key.to_projective())),
        })
    }

    /// Whether `signature` (`r || s`, 64 octets) is this key's ES256 signature of `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        // `r` and `s` must be in [1, n − 1]: `Signature` refuses anything else.
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        let (r, s) = signature.split_scalars();
        // A SHA-256 hash is as long as the group order: z is the hash, reduced mod n.
        let z = Scalar::reduce(&U256::from_be_slice(&Sha256::digest(message)));
        let s_inv = *s.invert_vartime();
        let (u1, u2) = (z * s_inv, *r * s_inv);
        let point = generator().mul(&u1) + self.table.mul(&u2);
        if bool::from(point.is_identity()) {
            return false;
        }
        let x = point.to_affine().x();
        Scalar::reduce(&U256::from_be_slice(&x)) == *r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use jwt_simple::prelude::*;

    #[test]
    fn table_products_match_p256s() {
        let g = ProjectivePoint::GENERATOR;
        let table = FixedBase::new(g);
        let mut scalars = vec![
            Scalar::ZERO,
            Scalar::ONE,
            Scalar::from(15u64),
            Scalar::from(16u64),
            Scalar::from(u64::MAX),
            -Scalar::ONE,
        ];
        // Scalars spread over the whole range: hashes of counters, reduced.
        scalars
            .extend((0u8..32).map(|i| Scalar::reduce(&U256::from_be_slice(&Sha256::digest([i])))));
        for k in scalars {
            assert_eq!(table.mul(&k), g * k);
        }
    }

    /// Our verdict and jwt-simple's (the `p256` crate's ECDSA) on a token with `signature`.
    fn verdicts(pair: &ES256KeyPair, token: &str, signature: &[u8]) -> (bool, bool) {
        let point = pair.public_key().public_key().to_bytes_uncompressed();
        let ours = Es256PublicKey::from_sec1(&point).unwrap();
        let (input, _) = token.rsplit_once('.').unwrap();
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
        let theirs = pair
            .public_key()
            .verify_token::<NoCustomClaims>(&forged, None)
            .is_ok();
        (ours.verify(input.as_bytes(), signature), theirs)
    }

    #[test]
    fn verdicts_match_jwt_simples_on_valid_and_altered_signatures() {
        let order_minus_one = (-Scalar::ONE).to_bytes();
        for _ in 0..8 {
            let pair = ES256KeyPair::generate();
            let token = pair.sign(Claims::create(Duration::from_secs(60))).unwrap();
            let sig = URL_SAFE_NO_PAD
                .decode(token.rsplit_once('.').unwrap().1)
                .unwrap();
            let (r, s) = sig.split_at(32);
            let neg_s = -Scalar::reduce(&U256::from_be_slice(s));
            let mut variants = vec![
                (true, sig.clone()),
                // (r, n − s) is as valid as (r, s): P-256 ECDSA does not require a low s.
                (true, [r, &neg_s.to_bytes()].concat()),
                (false, [s, r].concat()),
                (false, [r, &[0; 32]].concat()),
                (false, [&[0; 32], s].concat()),
                (false, [r, &order_minus_one].concat()),
                (false, vec![0xff; 64]),
                (false, sig[..63].to_vec()),
                (false, [&sig[..], &[0]].concat()),
            ];
            for bit in [0, 100, 255, 256, 300, 511] {
                let mut flipped = sig.clone();
                flipped[bit / 8] ^= 1 << (bit % 8);
                variants.push((false, flipped));
            }
            for (i, (valid, variant)) in variants.iter().enumerate() {
                assert_eq!(
                    verdicts(&pair, &token, variant),
                    (*valid, *valid),
                    "variant {i}"
                );
            }
            // Another key's signature.
            let other = ES256KeyPair::generate();
            assert_eq!(verdicts(&other, &token, &sig), (false, false));
        }
    }

    #[test]
    fn points_off_the_curve_and_the_identity_are_refused() {
        let pair = ES256KeyPair::generate();
        let mut point = pair.public_key().public_key().to_bytes_uncompressed();
        assert!(Es256PublicKey::from_sec1(&point).is_some());
        point[64] ^= 1;
        assert!(Es256PublicKey::from_sec1(&point).is_none());
        assert!(Es256PublicKey::from_sec1(&[0]).is_none());
        assert!(Es256PublicKey::from_sec1(&[0x04; 65]).is_none());
    }
}
