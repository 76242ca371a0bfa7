//! RSA signature verification (RFC 8017) for JWS RS256/384/512 (RSASSA-PKCS1-v1_5) and
//! PS256/384/512 (RSASSA-PSS, MGF1 with the same hash, salt as long as the hash), over a public
//! key prepared once when the JWKS is read.
//!
//! Why not jwt-simple's own RSA: its pure-Rust backend rebuilds the key and runs the public
//! operation on `num-bigint-dig` with 64-bit digits, which costs ~0.2 ms natively and ~2.5 ms in
//! Wasm (every 64×64-bit product becomes a 128-bit multiply in software on wasm32). Here the
//! public operation is `crypto-bigint`'s Montgomery arithmetic with the parameters computed
//! once per key; only the padding checks, which RFC 8017 spells out byte by byte, are ours.
//!
//! The keys accepted are exactly those jwt-simple 0.15 accepts (`RSAPublicKey::from_components`):
//! a modulus of 2048 to 4096 bits, odd, and the public exponent 65537. A test holds the two
//! policies side by side.

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// Smallest modulus accepted, in bits (jwt-simple's `MIN_RSA_MODULUS_BITS`).
pub(crate) const MIN_MODULUS_BITS: u32 = 2048;
/// Largest modulus accepted, in bits (jwt-simple's `MAX_RSA_MODULUS_BITS`).
pub(crate) const MAX_MODULUS_BITS: u32 = 4096;
/// The only public exponent accepted, 65537 = 2^16 + 1, big-endian.
const EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];

/// The hash of a JWS RSA algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            Self::Sha256 => run::<Sha256>(parts),
            Self::Sha384 => run::<Sha384>(parts),
            Self::Sha512 => run::<Sha512>(parts),
        }
    }

    /// The DER `DigestInfo` that precedes the hash in EMSA-PKCS1-v1_5 (RFC 8017 §9.2, note 1):
    /// `SEQUENCE { SEQUENCE { OID, NULL }, OCTET STRING (hash) }`.
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Self::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Self::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Self::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// The signature scheme of a JWS RSA algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Padding {
    /// RSASSA-PKCS1-v1_5 (RS256, RS384, RS512).
    Pkcs1v15,
    /// RSASSA-PSS with MGF1 of the same hash and a salt as long as the hash (PS256, PS384, PS512).
    Pss,
}

/// An RSA public key ready for verification: the Montgomery parameters of its modulus.
#[derive(Clone)]
pub(crate) struct RsaPublicKey {
    params: BoxedMontyParams,
    /// The modulus length in bits, and in octets (`k` in RFC 8017).
    bits: u32,
    len: usize,
}

fn trim_leading_zeros(x: &[u8]) -> &[u8] {
    let first = x.iter().position(|&b| b != 0).unwrap_or(x.len());
    x.get(first..).unwrap_or_default()
}

impl RsaPublicKey {
    /// The key of a JWK's big-endian `n` and `e` (leading zero octets tolerated), if it is one
    /// this filter accepts.
    pub(crate) fn from_components(n: &[u8], e: &[u8]) -> Option<Self> {
        let n = trim_leading_zeros(n);
        if trim_leading_zeros(e) != EXPONENT {
            return None;
        }
        let len = n.len();
        let top = n.first()?;
        // The bit length: 8 per octet, less the top octet's leading zero bits.
        let bits = u32::try_from(len)
            .ok()?
            .checked_mul(8)?
            .checked_sub(top.leading_zeros())?;
        if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits) {
            return None;
        }
        let modulus = BoxedUint::from_be_slice(n, bits).ok()?;
        // Odd is checked here; the Montgomery form needs it and RSA moduli are odd.
        let modulus = Odd::new(modulus).into_option()?;
        Some(Self {
            params: BoxedMontyParams::new_vartime(modulus),
            bits,
            len,
        })
    }

    /// Whether `signature` is this key's signature of `message` under `padding` and `hash`.
    pub(crate) fn verify(
        &self,
        padding: Padding,
        hash: Hash,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let Some(em) = self.public_operation(signature) else {
            return false;
        };
        let digest = hash.digest(&[message]);
        match padding {
            Padding::Pkcs1v15 => self
                .pkcs1v15_encoding(hash, &digest)
                .is_some_and(|e| e == em),
            Padding::Pss => self.pss_consistent(hash, &digest, &em),
        }
    }

    /// RSAVP1 and I2OSP (RFC 8017 §8.2.2 steps 1–2, §8.1.2 step 1–2): the signature must be
    /// exactly `k` octets and, as an integer `s`, below the modulus; the result is `s^65537 mod
    /// n` as `k` octets.
    fn public_operation(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if signature.len() != self.len {
            return None;
        }
        let precision = self.params.bits_precision();
        let s = BoxedUint::from_be_slice(signature, precision).ok()?;
        if s >= *self.params.modulus().as_ref() {
            return None;
        }
        // s^65537 = s^(2^16) · s: sixteen squarings and one multiplication.
        let base = BoxedMontyForm::new(s, &self.params);
        let mut m = base.clone();
        for _ in 0..16 {
            m = m.square();
        }
        let m = m.mul(&base).retrieve().to_be_bytes();
        // `to_be_bytes` has the precision's length (whole limbs): the value is below n, so any
        // octets before the last `k` are zero.
        let (high, low) = m.split_at_checked(m.len().checked_sub(self.len)?)?;
        high.iter().all(|&b| b == 0).then(|| low.to_vec())
    }

    /// EMSA-PKCS1-v1_5-ENCODE (RFC 8017 §9.2): `00 01 FF…FF 00 || DigestInfo || H`, `k` octets.
    fn pkcs1v15_encoding(&self, hash: Hash, digest: &[u8]) -> Option<Vec<u8>> {
        let prefix = hash.digest_info_prefix();
        let t_len = prefix.len().checked_add(digest.len())?;
        // At least eight octets of 0xFF (step 3); always true for moduli of 2048 bits or more.
        let ps_len = self.len.checked_sub(t_len)?.checked_sub(3)?;
        if ps_len < 8 {
            return None;
        }
        let mut em = Vec::with_capacity(self.len);
        em.extend_from_slice(&[0x00, 0x01]);
        em.resize(ps_len.checked_add(2)?, 0xff);
        em.push(0x00);
        em.extend_from_slice(prefix);
        em.extend_from_slice(digest);
        Some(em)
    }

    /// EMSA-PSS-VERIFY (RFC 8017 §9.1.2) with `sLen = hLen`, on the `k`-octet representative.
    fn pss_consistent(&self, hash: Hash, m_hash: &[u8], representative: &[u8]) -> bool {
        self.pss_check(hash, m_hash, representative).is_some()
    }

    fn pss_check(&self, hash: Hash, m_hash: &[u8], representative: &[u8]) -> Option<()> {
        let h_len = m_hash.len();
        let s_len = h_len;
        // emBits = modBits − 1; EM = I2OSP(m, emLen) (§8.1.2 step 2c), so when emLen < k the
        // representative's first octet must be zero.
        let em_bits = self.bits.checked_sub(1)?;
        let em_len = usize::try_from(em_bits.div_ceil(8)).ok()?;
        let (zero, em) = representative.split_at_checked(self.len.checked_sub(em_len)?)?;
        if zero.iter().any(|&b| b != 0) {
            return None;
        }
        // Step 3.
        if em_len < h_len.checked_add(s_len)?.checked_add(2)? {
            return None;
        }
        // Steps 4–5: EM = maskedDB || H || 0xbc.
        let (trailer, rest) = em.split_last()?;
        if *trailer != 0xbc {
            return None;
        }
        let (masked_db, h) = rest.split_at_checked(em_len.checked_sub(h_len)?.checked_sub(1)?)?;
        // Steps 6 and 9: the leftmost 8·emLen − emBits bits of DB are zero.
        let unused_bits = u32::try_from(em_len.checked_mul(8)?)
            .ok()?
            .checked_sub(em_bits)?;
        let top_mask = 0xffu8.checked_shr(unused_bits)?;
        if masked_db.first()? & !top_mask != 0 {
            return None;
        }
        // Steps 7–8: DB = maskedDB ⊕ MGF1(H, emLen − hLen − 1).
        let mut db = mgf1(hash, h, masked_db.len())?;
        for (d, m) in db.iter_mut().zip(masked_db) {
            *d ^= m;
        }
        if let Some(first) = db.first_mut() {
            *first &= top_mask;
        }
        // Step 10: DB = 00…00 || 01 || salt.
        let (padding, salt) = db.split_at_checked(db.len().checked_sub(s_len)?)?;
        let (one, zeros) = padding.split_last()?;
        if *one != 0x01 || zeros.iter().any(|&b| b != 0) {
            return None;
        }
        // Steps 11–14: H = Hash(00×8 || mHash || salt).
        (hash.digest(&[&[0u8; 8], m_hash, salt]) == h).then_some(())
    }
}

/// MGF1 (RFC 8017 §B.2.1): `len` octets of `Hash(seed || C)` for the counters C = 0, 1, ….
fn mgf1(hash: Hash, seed: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut counter: u32 = 0;
    while out.len() < len {
        out.extend(hash.digest(&[seed, &counter.to_be_bytes()]));
        counter = counter.checked_add(1)?;
    }
    out.truncate(len);
    Some(out)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Raw RSA signing with the test key's private exponent, so that tests can sign any
    //! encoded message, well-formed or not.
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use jwt_simple::prelude::RS256KeyPair;

    /// The DigestInfo prefixes, written out again here so the tests do not trust the code under
    /// test for them (RFC 8017 §9.2 note 1).
    pub const SHA256_PREFIX: &str = "3031300d060960864801650304020105000420";
    pub const SHA384_PREFIX: &str = "3041300d060960864801650304020205000430";

    pub fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    pub struct RawSigner {
        pub n: Vec<u8>,
        d: Vec<u8>,
    }

    impl RawSigner {
        pub fn from_pem(pem: &str) -> Self {
            let jwk: serde_json::Value =
                serde_json::from_str(&RS256KeyPair::from_pem(pem).unwrap().to_jwk()).unwrap();
            let get = |k: &str| URL_SAFE_NO_PAD.decode(jwk[k].as_str().unwrap()).unwrap();
            Self {
                n: get("n"),
                d: get("d"),
            }
        }

        /// `em^d mod n` as `k` octets (`em` is taken as a big-endian integer below n).
        pub fn sign_raw(&self, em: &[u8]) -> Vec<u8> {
            let bits = u32::try_from(self.n.len() * 8).unwrap();
            let n = BoxedUint::from_be_slice(&self.n, bits).unwrap();
            let params = BoxedMontyParams::new(Odd::new(n).into_option().unwrap());
            let precision = params.bits_precision();
            let m = BoxedUint::from_be_slice(em, precision).unwrap();
            let d = BoxedUint::from_be_slice(&self.d, precision).unwrap();
            let s = BoxedMontyForm::new(m, &params)
                .pow(&d)
                .retrieve()
                .to_be_bytes();
            s[s.len() - self.n.len()..].to_vec()
        }

        /// EMSA-PKCS1-v1_5 of `digest` under `prefix`, `k` octets, built independently of the
        /// code under test.
        pub fn pkcs1(&self, prefix: &[u8], digest: &[u8]) -> Vec<u8> {
            let mut em = vec![0x00, 0x01];
            em.resize(self.n.len() - prefix.len() - digest.len() - 1, 0xff);
            em.push(0x00);
            em.extend_from_slice(prefix);
            em.extend_from_slice(digest);
            em
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use jwt_simple::prelude::*;

    const PEM: &str = include_str!("../../testdata/rsa-test-key.pem");

    fn key() -> RsaPublicKey {
        let c = RS256KeyPair::from_pem(PEM)
            .unwrap()
            .public_key()
            .to_components();
        RsaPublicKey::from_components(&c.n, &c.e).unwrap()
    }

    /// The signing input and signature of a token.
    fn parts(token: &str) -> (Vec<u8>, Vec<u8>) {
        let (input, sig) = token.rsplit_once('.').unwrap();
        (
            input.as_bytes().to_vec(),
            URL_SAFE_NO_PAD.decode(sig).unwrap(),
        )
    }

    fn claims() -> JWTClaims<NoCustomClaims> {
        Claims::create(jwt_simple::prelude::Duration::from_secs(60))
    }

    #[test]
    fn the_key_policy_is_jwt_simples() {
        // An odd number of exactly `bits` bits, as a big-endian modulus.
        let modulus = |bits: usize, odd: bool| {
            let mut n = vec![0xa5u8; bits.div_ceil(8)];
            n[0] = 1u8 << ((bits - 1) % 8) | 0x01;
            *n.last_mut().unwrap() = if odd { 0x01 } else { 0x02 };
            n
        };
        let with_zero = |mut v: Vec<u8>| {
            v.insert(0, 0);
            v
        };
        let mut cases = Vec::new();
        for bits in [1024, 2047, 2048, 2049, 3072, 4095, 4096, 4097, 8192] {
            for e in [
                &[1u8, 0, 1][..],
                &[0, 1, 0, 1],
                &[3],
                &[1, 0, 0, 1],
                &[],
                &[0],
            ] {
                cases.push((modulus(bits, true), e.to_vec()));
            }
            cases.push((modulus(bits, false), vec![1, 0, 1]));
            cases.push((with_zero(modulus(bits, true)), vec![1, 0, 1]));
        }
        cases.push((vec![], vec![1, 0, 1]));
        let mut accepted = 0;
        for (n, e) in &cases {
            let ours = RsaPublicKey::from_components(n, e).is_some();
            let theirs = RS256PublicKey::from_components(n, e).is_ok();
            assert_eq!(ours, theirs, "{} bits, e {e:?}", n.len() * 8);
            accepted += usize::from(ours);
        }
        // 2048, 2049, 3072, 4095 and 4096 bits, each with e 65537 bare and zero-led, and with a
        // zero-led modulus.
        assert_eq!(accepted, 15);
        assert!(RsaPublicKey::from_components(&modulus(2047, true), &[1, 0, 1]).is_none());
    }

    #[test]
    fn pkcs1v15_signatures_verify_only_with_their_own_hash() {
        let key = key();
        let (m256, s256) = parts(&RS256KeyPair::from_pem(PEM).unwrap().sign(claims()).unwrap());
        let (m384, s384) = parts(&RS384KeyPair::from_pem(PEM).unwrap().sign(claims()).unwrap());
        let (m512, s512) = parts(&RS512KeyPair::from_pem(PEM).unwrap().sign(claims()).unwrap());
        let pk = Padding::Pkcs1v15;
        assert!(key.verify(pk, Hash::Sha256, &m256, &s256));
        assert!(key.verify(pk, Hash::Sha384, &m384, &s384));
        assert!(key.verify(pk, Hash::Sha512, &m512, &s512));
        // An RS384 or RS512 signature presented as RS256, and the other way round.
        assert!(!key.verify(pk, Hash::Sha256, &m384, &s384));
        assert!(!key.verify(pk, Hash::Sha256, &m512, &s512));
        assert!(!key.verify(pk, Hash::Sha384, &m256, &s256));
        assert!(!key.verify(Padding::Pss, Hash::Sha256, &m256, &s256));
        // Another message.
        assert!(!key.verify(pk, Hash::Sha256, &m384, &s256));
    }

    #[test]
    fn pss_signatures_verify_only_with_their_own_hash() {
        let key = key();
        let (m256, s256) = parts(&PS256KeyPair::from_pem(PEM).unwrap().sign(claims()).unwrap());
        let (m384, s384) = parts(&PS384KeyPair::from_pem(PEM).unwrap().sign(claims()).unwrap());
        let (m512, s512) = parts(&PS512KeyPair::from_pem(PEM).unwrap().sign(claims()).unwrap());
        let ps = Padding::Pss;
        assert!(key.verify(ps, Hash::Sha256, &m256, &s256));
        assert!(key.verify(ps, Hash::Sha384, &m384, &s384));
        assert!(key.verify(ps, Hash::Sha512, &m512, &s512));
        assert!(!key.verify(ps, Hash::Sha256, &m384, &s384));
        assert!(!key.verify(ps, Hash::Sha512, &m256, &s256));
        assert!(!key.verify(Padding::Pkcs1v15, Hash::Sha256, &m256, &s256));
        assert!(!key.verify(ps, Hash::Sha256, b"another message", &s256));
        // A salt of another length than the hash's is refused (jwt-simple signs and verifies
        // with sLen = hLen): a PS256 signature with a 48-octet salt, built from the spec.
        let signer = RawSigner::from_pem(PEM);
        let em = pss_encode(&m256, 48, signer.n.len(), 2047);
        assert!(!key.verify(ps, Hash::Sha256, &m256, &signer.sign_raw(&em)));
        let em = pss_encode(&m256, 32, signer.n.len(), 2047);
        assert!(key.verify(ps, Hash::Sha256, &m256, &signer.sign_raw(&em)));
    }

    /// EMSA-PSS-ENCODE with SHA-256 and a fixed salt (RFC 8017 §9.1.1), `k` octets.
    fn pss_encode(message: &[u8], s_len: usize, k: usize, em_bits: usize) -> Vec<u8> {
        use sha2::{Digest, Sha256};
        let em_len = em_bits.div_ceil(8);
        let salt = vec![0x5a; s_len];
        let m_hash = Sha256::digest(message);
        let h = Sha256::new()
            .chain_update([0u8; 8])
            .chain_update(m_hash)
            .chain_update(&salt)
            .finalize();
        let mut db = vec![0u8; em_len - s_len - 32 - 2];
        db.push(0x01);
        db.extend_from_slice(&salt);
        let mut mask = Vec::new();
        for counter in 0u32.. {
            if mask.len() >= db.len() {
                break;
            }
            mask.extend(
                Sha256::new()
                    .chain_update(h)
                    .chain_update(counter.to_be_bytes())
                    .finalize(),
            );
        }
        for (d, m) in db.iter_mut().zip(mask) {
            *d ^= m;
        }
        db[0] &= 0xff >> (8 * em_len - em_bits);
        let mut em = vec![0u8; k - em_len];
        em.extend_from_slice(&db);
        em.extend_from_slice(&h);
        em.push(0xbc);
        em
    }

    #[test]
    fn only_the_exact_pkcs1v15_encoding_verifies() {
        use sha2::{Digest, Sha256};
        let key = key();
        let signer = RawSigner::from_pem(PEM);
        let message = b"header.payload";
        let digest = Sha256::digest(message).to_vec();
        let prefix = hex(SHA256_PREFIX);
        let good = signer.pkcs1(&prefix, &digest);
        let verifies = |em: &[u8]| {
            key.verify(
                Padding::Pkcs1v15,
                Hash::Sha256,
                message,
                &signer.sign_raw(em),
            )
        };
        assert!(verifies(&good), "the well-formed encoding");

        let mut bad = Vec::new();
        // Block type 2 (encryption), and a non-FF octet in the padding.
        let mut em = good.clone();
        em[1] = 0x02;
        bad.push(("block type 2", em));
        let mut em = good.clone();
        em[10] = 0xfe;
        bad.push(("padding octet", em));
        // No zero separator.
        let sep = good.len() - prefix.len() - digest.len() - 1;
        let mut em = good.clone();
        em[sep] = 0xff;
        bad.push(("separator", em));
        // The DigestInfo without the NULL parameters (the "absent parameters" encoding).
        let absent = hex("302f300b0609608648016503040201");
        let mut no_null = absent.clone();
        no_null.extend_from_slice(&[0x04, 0x20]);
        bad.push(("absent parameters", signer.pkcs1(&no_null, &digest)));
        // SHA-384's DigestInfo around a SHA-256 hash.
        bad.push(("SHA-384 prefix", signer.pkcs1(&hex(SHA384_PREFIX), &digest)));
        // Garbage after the hash, with the padding shortened to make room.
        let mut em = signer.pkcs1(&prefix, &[digest.clone(), vec![0xab; 8]].concat());
        em.truncate(good.len());
        em.splice(2..10, []);
        em.extend_from_slice(&[0xab; 8]);
        bad.push(("trailing garbage", em));
        // The hash of another message.
        bad.push(("other hash", signer.pkcs1(&prefix, &Sha256::digest(b"x"))));
        for (what, em) in bad {
            assert_eq!(em.len(), good.len(), "{what}");
            assert!(!verifies(&em), "{what}");
        }
    }

    #[test]
    fn signature_length_and_range_are_checked() {
        let key = key();
        let (m, s) = parts(&RS256KeyPair::from_pem(PEM).unwrap().sign(claims()).unwrap());
        let pk = Padding::Pkcs1v15;
        assert!(key.verify(pk, Hash::Sha256, &m, &s));
        // One octet more (a leading zero) or less, empty.
        assert!(!key.verify(pk, Hash::Sha256, &m, &[&[0u8][..], &s].concat()));
        assert!(!key.verify(pk, Hash::Sha256, &m, &s[1..]));
        assert!(!key.verify(pk, Hash::Sha256, &m, &[]));
        let mut flipped = s.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(!key.verify(pk, Hash::Sha256, &m, &flipped));
        // s + n: the same residue, but not below the modulus. A message whose signature leaves
        // room for the sum in k octets is looked for (the same one each run: the key is fixed).
        use sha2::{Digest, Sha256};
        let signer = RawSigner::from_pem(PEM);
        let n = &signer.n;
        let found = (0..64u32).find_map(|i| {
            let m = format!("message {i}").into_bytes();
            let s = signer.sign_raw(&signer.pkcs1(&hex(SHA256_PREFIX), &Sha256::digest(&m)));
            let (mut sum, mut carry) = (vec![0u8; n.len()], 0u16);
            for i in (0..n.len()).rev() {
                let v = u16::from(s[i]) + u16::from(n[i]) + carry;
                sum[i] = (v & 0xff) as u8;
                carry = v >> 8;
            }
            (carry == 0).then_some((m, s, sum))
        });
        let (m2, s2, sum) = found.unwrap();
        assert!(key.verify(pk, Hash::Sha256, &m2, &s2));
        assert!(!key.verify(pk, Hash::Sha256, &m2, &sum));
        assert!(!key.verify(pk, Hash::Sha256, &m, n));
    }
}
