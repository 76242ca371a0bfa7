//! Bearer tokens (`skip_jwt_bearer_tokens`) and the further issuers whose tokens are accepted
//! (`extra_jwt_issuers`, `issuer=audience`), each with its own discovery unless it is the main
//! issuer.

use serde::Deserialize;

use super::{Check, Endpoint, ProviderSettings};

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub(super) struct RawBearer {
    skip_jwt_bearer_tokens: Option<bool>,
    extra_jwt_issuers: Option<Vec<String>>,
}

/// A further issuer of bearer tokens (`extra_jwt_issuers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraIssuer {
    pub issuer: String,
    pub audience: String,
    /// Its discovery document; `None` when it is the main issuer (same keys).
    pub discovery: Option<Endpoint>,
}

#[derive(Debug, Clone)]
pub struct BearerSettings {
    pub skip_jwt_bearer_tokens: bool,
    pub extra_issuers: Vec<ExtraIssuer>,
}

/// `provider` is the main provider's settings when they were valid (its issuer and cluster).
pub(super) fn build(
    raw: RawBearer,
    provider: Option<&ProviderSettings>,
    check: &mut Check,
) -> Option<BearerSettings> {
    let issuer = provider.map_or("", |p| p.issuer.as_str());
    let cluster = provider.and_then(|p| p.idp_cluster.as_deref());
    let mut extra_issuers = Vec::new();
    for entry in raw.extra_jwt_issuers.unwrap_or_default() {
        let Some((iss, aud)) = entry
            .split_once('=')
            .filter(|(i, a)| !i.is_empty() && !a.is_empty())
        else {
            check.fail(
                "extra_jwt_issuers",
                format!("{entry:?} must be \"issuer=audience\""),
            );
            continue;
        };
        let discovery = if iss == issuer {
            None
        } else {
            let url = format!(
                "{}/.well-known/openid-configuration",
                iss.trim_end_matches('/')
            );
            check.endpoint("extra_jwt_issuers", &url, cluster)
        };
        extra_issuers.push(ExtraIssuer {
            issuer: iss.to_string(),
            audience: aud.to_string(),
            discovery,
        });
    }
    let skip_jwt_bearer_tokens = raw.skip_jwt_bearer_tokens.unwrap_or(false);
    if !extra_issuers.is_empty() && !skip_jwt_bearer_tokens {
        check.fail(
            "extra_jwt_issuers",
            "is only used with skip_jwt_bearer_tokens: true",
        );
    }
    Some(BearerSettings {
        skip_jwt_bearer_tokens,
        extra_issuers,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{minimal, parse, problems, with};
    use serde_json::json;

    #[test]
    fn extra_issuers_are_issuer_equals_audience_and_need_bearer_tokens() {
        let ps = problems(&with("extra_jwt_issuers", json!(["no-audience"])));
        assert!(ps.iter().any(|(k, r)| k == "extra_jwt_issuers" && r.contains("must be \"issuer=audience\"")), "{ps:?}");
        let ps = problems(&with("extra_jwt_issuers", json!(["https://a.example=api"])));
        assert!(
            ps.iter()
                .any(|(_, r)| r.contains("only used with skip_jwt_bearer_tokens")),
            "{ps:?}"
        );
        let mut v = minimal();
        v["skip_jwt_bearer_tokens"] = json!(true);
        v["extra_jwt_issuers"] = json!([
            "https://dev-123456.okta.com/oauth2/default=api://default",
            "https://login.partner.example/t=api://partner",
        ]);
        let Ok(c) = parse(&v) else { unreachable!() };
        let extra = &c.default_provider().bearer.extra_issuers;
        assert!(extra[0].discovery.is_none(), "the main issuer's keys");
        assert_eq!(
            extra[1].discovery.as_ref().map(|d| d.path.as_str()),
            Some("/t/.well-known/openid-configuration")
        );
    }
}
