//! Header lists in the proxy-wasm wire format, the form in which the host hands over a request's
//! headers and takes a call-out's or a local reply's: a little-endian `u32` count, then a `u32`
//! name length and a `u32` value length per pair, then each name and each value followed by a
//! NUL byte. Reading never trusts the lengths and never decodes a byte: names and values stay
//! `&[u8]`, so a header with bytes that are not UTF-8 can be looked at without a panic.

/// The most pairs read from one map (Envoy's own limit on a serialized map is 1024).
pub const MAX_PAIRS: usize = 1024;

/// The map could not be read: shorter than its lengths say, or with more pairs than allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedMap;

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let end = at.checked_add(4)?;
    let word: [u8; 4] = bytes.get(at..end)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(word)).ok()
}

/// Header pairs borrowed from a serialized map: (name, value), both bytes.
pub type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;

/// The pairs of a serialized map, borrowed from it. An empty input is an empty map.
pub fn parse(bytes: &[u8]) -> Result<Pairs<'_>, MalformedMap> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let count = read_u32(bytes, 0).ok_or(MalformedMap)?;
    if count > MAX_PAIRS {
        return Err(MalformedMap);
    }
    let mut data = count
        .checked_mul(8)
        .and_then(|n| n.checked_add(4))
        .ok_or(MalformedMap)?;
    let mut pairs = Vec::with_capacity(count);
    let mut lengths = bytes.get(4..data).ok_or(MalformedMap)?.chunks_exact(8);
    for _ in 0..count {
        let (name_len, value_len) = lengths
            .next()
            .and_then(|l| Some((read_u32(l, 0)?, read_u32(l, 4)?)))
            .ok_or(MalformedMap)?;
        let (name, after) = field(bytes, data, name_len)?;
        let (value, after) = field(bytes, after, value_len)?;
        pairs.push((name, value));
        data = after;
    }
    Ok(pairs)
}

/// `len` bytes at `at`, then the NUL that ends them; the slice and where the next one starts.
fn field(bytes: &[u8], at: usize, len: usize) -> Result<(&[u8], usize), MalformedMap> {
    let end = at.checked_add(len).ok_or(MalformedMap)?;
    let slice = bytes.get(at..end).ok_or(MalformedMap)?;
    match bytes.get(end) {
        Some(0) => Ok((slice, end.saturating_add(1))),
        _ => Err(MalformedMap),
    }
}

/// Serializes pairs for the host (a call-out's headers, a local reply's headers).
pub fn serialize<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> Vec<u8> {
    let size = pairs.iter().fold(4usize, |n, (k, v)| {
        n.saturating_add(10)
            .saturating_add(k.as_ref().len())
            .saturating_add(v.as_ref().len())
    });
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&len32(pairs.len()).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&len32(k.as_ref().len()).to_le_bytes());
        out.extend_from_slice(&len32(v.as_ref().len()).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

/// Lengths the filter writes are its own (headers, cookies): far below 4 GiB.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_bytes_that_are_not_utf8() {
        let pairs: Vec<(&[u8], &[u8])> = vec![
            (b":path", b"/caf\xe9"),
            (b"user-agent", b"\xff\xfe crawler"),
            (b"empty", b""),
        ];
        let wire = serialize(&pairs);
        assert_eq!(parse(&wire), Ok(pairs));
        assert_eq!(parse(b""), Ok(Vec::new()));
        assert_eq!(parse(&serialize::<&[u8], &[u8]>(&[])), Ok(Vec::new()));
    }

    #[test]
    fn lengths_that_lie_are_refused_not_trusted() {
        let wire = serialize(&[("a", "b"), ("cookie", "x=1")]);
        for cut in 1..wire.len() {
            assert_eq!(
                parse(wire.get(..cut).unwrap_or_default()),
                Err(MalformedMap),
                "{cut}"
            );
        }
        let mut huge = wire.clone();
        huge.splice(0..4, u32::MAX.to_le_bytes());
        assert_eq!(parse(&huge), Err(MalformedMap));
        let mut long_name = wire.clone();
        long_name.splice(4..8, u32::MAX.to_le_bytes());
        assert_eq!(parse(&long_name), Err(MalformedMap));
        let mut no_nul = wire;
        if let Some(last) = no_nul.last_mut() {
            *last = b'x';
        }
        assert_eq!(parse(&no_nul), Err(MalformedMap));
    }
}
