//! Which claims carry the identity (`oidc_email_claim`, `oidc_groups_claim`, `user_id_claim`):
//! a provider's own, as each provider names its claims; each a name or a dotted path into
//! nested claims (`realm_access.roles`). And when the provider's UserInfo endpoint fills in
//! what its ID tokens leave out (`oidc_userinfo`).

use serde::Deserialize;

use super::Check;
use crate::claims::ClaimPath;

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub(super) struct RawClaims {
    oidc_email_claim: Option<String>,
    oidc_groups_claim: Option<String>,
    user_id_claim: Option<String>,
    oidc_userinfo: Option<String>,
}

/// When the UserInfo endpoint is asked for claims (`oidc_userinfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserInfoMode {
    Never,
    /// When the ID token lacks a claim the configuration reads (the default).
    WhenMissing,
    /// At every login and refresh; its values replace the ID token's for the claims read.
    Always,
}

/// Which claims carry the identity.
#[derive(Debug, Clone)]
pub struct ClaimNames {
    pub email: ClaimPath,
    pub groups: ClaimPath,
    pub user_id: ClaimPath,
    pub userinfo: UserInfoMode,
}

pub(super) fn build(raw: RawClaims, check: &mut Check) -> Option<ClaimNames> {
    let mut claim = |key: &str, v: Option<String>, default: &str| {
        let v = v.unwrap_or_else(|| default.to_string());
        ClaimPath::parse(&v).map_err(|e| check.fail(key, e)).ok()
    };
    let email = claim("oidc_email_claim", raw.oidc_email_claim, "email");
    let groups = claim("oidc_groups_claim", raw.oidc_groups_claim, "groups");
    let user_id = claim("user_id_claim", raw.user_id_claim, "sub");
    let userinfo = match raw.oidc_userinfo.as_deref() {
        None | Some("when_missing") => UserInfoMode::WhenMissing,
        Some("never") => UserInfoMode::Never,
        Some("always") => UserInfoMode::Always,
        Some(other) => {
            check.fail(
                "oidc_userinfo",
                format!("{other:?} must be \"never\", \"when_missing\" or \"always\""),
            );
            UserInfoMode::Never
        }
    };
    Some(ClaimNames {
        email: email?,
        groups: groups?,
        user_id: user_id?,
        userinfo,
    })
}
