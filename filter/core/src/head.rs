//! The request head as the core reads it from the host's header list. Only the headers the
//! filter needs are decoded, each where it is read: the pseudo-headers must be UTF-8 (else the
//! request is refused with 400); `authorization`, `accept` and the like count as absent when they
//! are not; the `Cookie` header stays bytes. Every other header is only looked at by name, to
//! find spoofed identity headers.

use std::borrow::Cow;
use std::fmt;

use crate::flow::Request;
use crate::pairs::{self, MalformedMap};

/// Why a request head cannot be used: the request is answered 400 (500 for a broken map).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The host's header list did not parse.
    Malformed,
    /// A header the filter needs is not UTF-8.
    NotUtf8(&'static str),
    /// A header that must appear once appears several times.
    Repeated(&'static str),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("the host's header list is malformed"),
            Self::NotUtf8(h) => write!(f, "the {h} header is not valid UTF-8"),
            Self::Repeated(h) => write!(f, "the {h} header appears more than once"),
        }
    }
}

impl From<MalformedMap> for HeadError {
    fn from(_: MalformedMap) -> Self {
        Self::Malformed
    }
}

/// A request value as a log line shows it: control characters replaced, at most `max` chars.
pub fn for_log(value: &str, max: usize) -> String {
    value
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A request's headers, borrowed from the host's serialized map.
#[derive(Debug)]
pub struct Head<'a> {
    pairs: Vec<(&'a [u8], &'a [u8])>,
    names: Vec<&'a [u8]>,
    /// HTTP/2 may split `Cookie` into several headers (RFC 9113 §8.2.3): joined with `; `.
    cookie: Option<Cow<'a, [u8]>>,
}

impl<'a> Head<'a> {
    /// Reads the host's serialized header map.
    pub fn parse(map: &'a [u8]) -> Result<Self, HeadError> {
        Ok(Self::from_pairs(pairs::parse(map)?))
    }

    pub fn from_pairs(pairs: Vec<(&'a [u8], &'a [u8])>) -> Self {
        let names = pairs.iter().map(|(n, _)| *n).collect();
        let mut cookie: Option<Cow<'a, [u8]>> = None;
        for (_, v) in pairs.iter().filter(|(n, _)| *n == b"cookie") {
            cookie = Some(match cookie {
                None => Cow::Borrowed(*v),
                Some(joined) => {
                    let mut joined = joined.into_owned();
                    joined.extend_from_slice(b"; ");
                    joined.extend_from_slice(v);
                    Cow::Owned(joined)
                }
            });
        }
        Self {
            pairs,
            names,
            cookie,
        }
    }

    fn values(&self, name: &'static str) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.pairs
            .iter()
            .filter(move |(n, _)| *n == name.as_bytes())
            .map(|(_, v)| *v)
    }

    /// The one value of a header the request cannot do without, decoded.
    fn required(&self, name: &'static str) -> Result<Option<&'a str>, HeadError> {
        let mut values = self.values(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(HeadError::Repeated(name));
        }
        first
            .map(|v| std::str::from_utf8(v).map_err(|_| HeadError::NotUtf8(name)))
            .transpose()
    }

    /// The first value of an optional header, when it is UTF-8.
    fn optional(&self, name: &'static str) -> Option<&'a str> {
        self.values(name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The request as the core decides on it.
    pub fn request(&self) -> Result<Request<'_>, HeadError> {
        Ok(Request {
            method: self.required(":method")?.unwrap_or(""),
            scheme: self.required(":scheme")?.unwrap_or("https"),
            authority: self.required(":authority")?.unwrap_or(""),
            path: self.required(":path")?.unwrap_or(""),
            cookie: self.cookie.as_deref(),
            // Two Authorization headers never count as one good one.
            authorization: match self.required("authorization") {
                Ok(v) => v,
                Err(HeadError::NotUtf8(_)) => None,
                Err(e) => return Err(e),
            },
            accept: self.optional("accept"),
            x_requested_with: self.optional("x-requested-with"),
            sec_fetch_mode: self.optional("sec-fetch-mode"),
            access_control_request_method: self.optional("access-control-request-method"),
            request_id: self.optional("x-request-id"),
            header_names: &self.names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(pairs: &[(&'static [u8], &'static [u8])]) -> Head<'static> {
        Head::from_pairs(pairs.to_vec())
    }

    #[test]
    fn reads_what_the_filter_needs_and_leaves_other_bytes_alone() {
        let h = head(&[
            (b":method", b"GET"),
            (b":authority", b"app.example.com"),
            (b":path", b"/x?y=1"),
            (b"user-agent", b"crawler \xff\xfe"),
            (b"referer", b"https://ex\xe4mple.org/"),
            (b"cookie", b"a=1"),
            (b"cookie", b"b=\xe9"),
            (b"accept", b"text/html"),
        ]);
        let r = h.request();
        let Ok(r) = r else { unreachable!("{r:?}") };
        assert_eq!(
            (r.method, r.authority, r.path),
            ("GET", "app.example.com", "/x?y=1")
        );
        assert_eq!(r.scheme, "https");
        assert_eq!(r.cookie, Some(&b"a=1; b=\xe9"[..]));
        assert_eq!(r.accept, Some("text/html"));
        assert_eq!(r.header_names.len(), 8);
    }

    #[test]
    fn a_needed_header_that_is_not_utf8_is_refused_or_absent() {
        assert_eq!(
            head(&[(b":path", b"/caf\xe9")]).request().err(),
            Some(HeadError::NotUtf8(":path"))
        );
        assert_eq!(
            head(&[(b":authority", b"\xff")]).request().err(),
            Some(HeadError::NotUtf8(":authority"))
        );
        let h = head(&[(b"authorization", b"Bearer \xff"), (b"accept", b"\xfe")]);
        let r = h.request();
        assert_eq!(r.map(|r| (r.authorization, r.accept)), Ok((None, None)));
        assert_eq!(
            head(&[
                (b"authorization", b"Bearer a"),
                (b"authorization", b"Bearer b")
            ])
            .request()
            .err(),
            Some(HeadError::Repeated("authorization"))
        );
    }

    #[test]
    fn log_fields_cannot_forge_lines() {
        assert_eq!(for_log("/a\nb\u{1b}[31m", 100), "/a?b?[31m");
        assert_eq!(for_log(&"x".repeat(500), 10).len(), 10);
    }

    #[test]
    fn a_broken_map_is_malformed() {
        assert_eq!(
            Head::parse(b"\x05\x00\x00\x00").err(),
            Some(HeadError::Malformed)
        );
    }
}
