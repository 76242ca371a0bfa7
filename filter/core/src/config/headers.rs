//! What the app is told: the identity headers (`set_xauthrequest`, `pass_user_headers`,
//! `claim_headers`, tokens), and whether an unverified email is accepted.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Check;
use crate::claims::ClaimPath;

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub(super) struct RawHeaders {
    pass_user_headers: Option<bool>,
    prefer_email_to_user: Option<bool>,
    claim_headers: Option<BTreeMap<String, String>>,
    insecure_oidc_allow_unverified_email: Option<bool>,
    set_xauthrequest: Option<bool>,
    pass_access_token: Option<bool>,
    set_authorization_header: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct HeaderSettings {
    pub set_xauthrequest: bool,
    pub pass_user_headers: bool,
    pub prefer_email_to_user: bool,
    pub pass_access_token: bool,
    pub set_authorization_header: bool,
    /// (header name in lower case, claim name).
    pub claim_headers: Vec<(String, ClaimPath)>,
    pub allow_unverified_email: bool,
}

pub(super) fn build(raw: RawHeaders, check: &mut Check) -> Option<HeaderSettings> {
    let claim_headers = claim_headers(raw.claim_headers.unwrap_or_default(), check);
    Some(HeaderSettings {
        set_xauthrequest: raw.set_xauthrequest.unwrap_or(true),
        pass_user_headers: raw.pass_user_headers.unwrap_or(false),
        prefer_email_to_user: raw.prefer_email_to_user.unwrap_or(false),
        pass_access_token: raw.pass_access_token.unwrap_or(false),
        set_authorization_header: raw.set_authorization_header.unwrap_or(false),
        claim_headers,
        allow_unverified_email: raw.insecure_oidc_allow_unverified_email.unwrap_or(false),
    })
}

/// Header name → claim name; names must be HTTP tokens and not ones HTTP itself needs.
fn claim_headers(raw: BTreeMap<String, String>, check: &mut Check) -> Vec<(String, ClaimPath)> {
    let mut out = Vec::new();
    for (header, claim) in raw {
        let h = header.to_ascii_lowercase();
        let token = !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        let reserved = matches!(
            h.as_str(),
            "host" | "cookie" | "content-length" | "transfer-encoding" | "connection"
        ) || h.starts_with(':');
        if !token || reserved {
            check.fail("claim_headers", format!("{header:?}: {claim:?} must map a header name (not {h:?} reserved by HTTP) to a claim name"));
            continue;
        }
        match ClaimPath::parse(&claim) {
            Ok(path) => out.push((h, path)),
            Err(e) => check.fail("claim_headers", format!("{header:?}: {e}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::assert_each_refused;
    use serde_json::json;

    #[test]
    fn each_invalid_header_option_is_reported_with_its_key() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            (
                "claim_headers",
                json!({"Host": "email"}),
                "reserved by HTTP",
            ),
            (
                "claim_headers",
                json!({"X Bad": "email"}),
                "must map a header name",
            ),
            ("oidc_email_claim", json!(""), "is empty"),
            ("set_xauthrequest", json!("yes"), "expected a boolean"),
        ];
        assert_each_refused(&cases);
    }
}
