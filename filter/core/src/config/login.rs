//! What the authorization request carries besides the filter's own parameters (`prompt`,
//! `acr_values`, `login_url_parameters`), whether it is pushed first (RFC 9126), and signing
//! out at the IdP.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Check;

/// Parameters the filter sets itself: a configuration cannot override them.
const RESERVED: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "request_uri",
    "login_hint",
];

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub(super) struct RawLogin {
    prompt: Option<String>,
    acr_values: Option<String>,
    login_url_parameters: Option<BTreeMap<String, String>>,
    sign_out_at_idp: Option<bool>,
    pushed_authorization_requests: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct LoginSettings {
    pub prompt: Option<String>,
    /// Space-separated; the ID token's `acr` must be one of them.
    pub acr_values: Option<String>,
    pub login_url_parameters: Vec<(String, String)>,
    pub sign_out_at_idp: bool,
    /// Push the authorization parameters to the provider's PAR endpoint (RFC 9126) and send
    /// the browser with only `client_id` and `request_uri`.
    pub pushed_authorization_requests: bool,
}

pub(super) fn build(raw: RawLogin, check: &mut Check) -> Option<LoginSettings> {
    let mut login_url_parameters = Vec::new();
    for (k, v) in raw.login_url_parameters.unwrap_or_default() {
        if RESERVED.contains(&k.as_str()) || k.is_empty() {
            check.fail(
                "login_url_parameters",
                format!("{k:?} is set by the filter itself and cannot be overridden"),
            );
        } else {
            login_url_parameters.push((k, v));
        }
    }
    Some(LoginSettings {
        prompt: raw.prompt.filter(|p| !p.is_empty()),
        acr_values: raw.acr_values.filter(|a| !a.is_empty()),
        login_url_parameters,
        sign_out_at_idp: raw.sign_out_at_idp.unwrap_or(false),
        pushed_authorization_requests: raw.pushed_authorization_requests.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, problems, with};
    use serde_json::json;

    #[test]
    fn the_filters_own_parameters_cannot_be_overridden() {
        for key in super::RESERVED {
            let ps = problems(&with("login_url_parameters", json!({ *key: "x" })));
            assert!(
                ps.iter().any(|(k, r)| k == "login_url_parameters" && r.contains("cannot be overridden")),
                "{key}: {ps:?}"
            );
        }
        let c = parse(&with("login_url_parameters", json!({"idp": "0oa1"})));
        assert_eq!(
            c.map(|c| c.default_provider().login.login_url_parameters.clone())
                .ok(),
            Some(vec![("idp".to_string(), "0oa1".to_string())])
        );
        let c = parse(&with("prompt", json!("")));
        assert_eq!(
            c.map(|c| c.default_provider().login.prompt.clone()).ok(),
            Some(None),
            "empty means unset"
        );
    }
}
