//! HTTP call-outs to the IdP, as plain values: the request the host should dispatch and the
//! result it got back.

use std::fmt;
use std::time::Duration;

use crate::config::Endpoint;
use crate::provider::ProviderError;

/// Largest IdP response body the filter reads (discovery, JWKS, token response).
pub const MAX_RESPONSE_BODY: usize = 256 * 1024;

/// A request for the host to dispatch to an Envoy cluster. Its body and `authorization` carry
/// secrets (code, refresh token, client secret): `Debug` leaves them out.
#[derive(Clone, PartialEq, Eq)]
pub struct CallOut {
    pub cluster: String,
    /// Pseudo-headers first (`:method`, `:path`, `:authority`, `:scheme`), then the rest.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

impl fmt::Debug for CallOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| match k.as_str() {
                "authorization" => (k.as_str(), "[redacted]"),
                _ => (k.as_str(), v.as_str()),
            })
            .collect();
        f.debug_struct("CallOut")
            .field("cluster", &self.cluster)
            .field("headers", &headers)
            .field(
                "body",
                &format_args!("[{} bytes redacted]", self.body.len()),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl CallOut {
    fn new(method: &str, endpoint: &Endpoint, timeout: Duration) -> Self {
        Self {
            cluster: endpoint.cluster.clone(),
            headers: vec![
                (":method".into(), method.into()),
                (":path".into(), endpoint.path.clone()),
                (":authority".into(), endpoint.authority.clone()),
                (":scheme".into(), endpoint.url.scheme().into()),
                ("accept".into(), "application/json".into()),
                ("user-agent".into(), "oidc-gate".into()),
            ],
            body: Vec::new(),
            timeout,
        }
    }

    pub fn get(endpoint: &Endpoint, timeout: Duration) -> Self {
        Self::new("GET", endpoint, timeout)
    }

    pub fn post_form(
        endpoint: &Endpoint,
        timeout: Duration,
        form: String,
        extra: Vec<(String, String)>,
    ) -> Self {
        let mut c = Self::new("POST", endpoint, timeout);
        c.headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        c.headers.extend(extra);
        c.body = form.into_bytes();
        c
    }
}

/// What came back from a call-out.
#[derive(Debug, Clone, Copy)]
pub struct CallResult<'a> {
    /// `None` when the call failed (reset, timeout, no such cluster): no HTTP status.
    pub status: Option<u16>,
    /// At most `MAX_RESPONSE_BODY` bytes; empty when the answer was larger.
    pub body: &'a [u8],
    /// The answer was larger than `MAX_RESPONSE_BODY` and was not read.
    pub oversized: bool,
}

impl<'a> CallResult<'a> {
    pub fn status(status: u16, body: &'a [u8]) -> Self {
        Self {
            status: Some(status),
            oversized: body.len() > MAX_RESPONSE_BODY,
            body,
        }
    }

    /// An answer whose body the host did not hand over because of its size.
    pub fn too_large(status: u16) -> Self {
        Self {
            status: Some(status),
            body: &[],
            oversized: true,
        }
    }

    pub fn ok(body: &'a [u8]) -> Self {
        Self::status(200, body)
    }

    pub fn failed() -> Self {
        Self {
            status: None,
            body: &[],
            oversized: false,
        }
    }

    /// The body of a 200 answer of at most `MAX_RESPONSE_BODY` bytes.
    pub fn ok_body(&self) -> Result<&'a [u8], ProviderError> {
        match self.status {
            None => Err(ProviderError::Unreachable),
            Some(200) if self.oversized => Err(ProviderError::TooLarge),
            Some(200) => Ok(self.body),
            Some(s) => Err(ProviderError::Status(s)),
        }
    }
}
