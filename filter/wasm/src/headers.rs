//! Carrying out a header plan on the request going upstream.

use oidc_gate_core::{CookieRewrite, HeaderPlan};

use crate::abi::HostStatus;
use crate::host;

/// Removes the spoofed headers, sets the verified ones, rewrites the `Cookie` header. Stops at
/// the first change the host refuses (the request is then refused, not forwarded).
pub fn apply(plan: &HeaderPlan) -> Result<(), HostStatus> {
    // A header the plan sets is replaced anyway: host calls are the costly part.
    for name in plan.remove.iter().filter(|h| plan.value(h).is_none()) {
        host::remove_request_header(name)?;
    }
    for (name, value) in &plan.set {
        host::set_request_header(name, value.as_bytes())?;
    }
    match &plan.cookie {
        CookieRewrite::Keep => Ok(()),
        CookieRewrite::Remove => host::remove_request_header("cookie"),
        CookieRewrite::Replace(c) => host::set_request_header("cookie", c),
    }
}
