//! Which claims carry the identity (`oidc_email_claim`, `oidc_groups_claim`, `user_id_claim`):
//! a provider's own, as each provider names its claims.

use serde::Deserialize;

use super::Check;

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub(super) struct RawClaims {
    oidc_email_claim: Option<String>,
    oidc_groups_claim: Option<String>,
    user_id_claim: Option<String>,
}

/// Which claims carry the identity.
#[derive(Debug, Clone)]
pub struct ClaimNames {
    pub email: String,
    pub groups: String,
    pub user_id: String,
}

pub(super) fn build(raw: RawClaims, check: &mut Check) -> Option<ClaimNames> {
    let mut claim = |key: &str, v: Option<String>, default: &str| {
        let v = v.unwrap_or_else(|| default.to_string());
        if v.is_empty() {
            check.fail(key, "is empty");
        }
        v
    };
    Some(ClaimNames {
        email: claim("oidc_email_claim", raw.oidc_email_claim, "email"),
        groups: claim("oidc_groups_claim", raw.oidc_groups_claim, "groups"),
        user_id: claim("user_id_claim", raw.user_id_claim, "sub"),
    })
}
