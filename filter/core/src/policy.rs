//! Who may pass: `email_domains` and `allowed_groups`, decided on every request from the session
//! (so a rule change applies without a new login).

use crate::config::Config;

/// Why a signed-in user is refused. The status is 403; the session is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    EmailDomain,
    Group,
}

impl Denial {
    pub fn code(self) -> &'static str {
        match self {
            Self::EmailDomain => "email_domain_not_allowed",
            Self::Group => "group_not_allowed",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::EmailDomain => "Your email domain is not allowed to use this application.",
            Self::Group => "You are not in a group that may use this application.",
        }
    }
}

/// `*` allows any email; `example.com` exactly that domain; `*.example.com` or `.example.com`
/// its subdomains. Comparison ignores case.
pub fn email_domain_allowed(domains: &[String], email: &str) -> bool {
    if domains.iter().any(|d| d == "*") {
        return true;
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || domain.is_empty() {
        return false;
    }
    let domain = domain.to_ascii_lowercase();
    domains.iter().any(|allowed| {
        match allowed
            .strip_prefix("*.")
            .or_else(|| allowed.strip_prefix('.'))
        {
            Some(parent) => domain.ends_with(&format!(".{parent}")),
            None => domain == *allowed,
        }
    })
}

/// No `allowed_groups` allows everyone; otherwise one shared group is enough.
pub fn groups_allowed(allowed: &[String], groups: &[String]) -> bool {
    allowed.is_empty() || groups.iter().any(|g| allowed.contains(g))
}

pub fn authorize(config: &Config, email: &str, groups: &[String]) -> Result<(), Denial> {
    if !email_domain_allowed(&config.email_domains, email) {
        return Err(Denial::EmailDomain);
    }
    if !groups_allowed(&config.allowed_groups, groups) {
        return Err(Denial::Group);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn email_domains() {
        assert!(email_domain_allowed(&v(&["*"]), ""));
        let d = v(&["example.com", "*.corp.example"]);
        assert!(email_domain_allowed(&d, "alice@example.com"));
        assert!(email_domain_allowed(&d, "alice@EXAMPLE.com"));
        assert!(email_domain_allowed(&d, "bob@eu.corp.example"));
        assert!(!email_domain_allowed(&d, "bob@corp.example"));
        assert!(!email_domain_allowed(&d, "eve@example.com.evil.io"));
        assert!(!email_domain_allowed(&d, "eve@evilexample.com"));
        assert!(!email_domain_allowed(&d, "example.com"));
        assert!(!email_domain_allowed(&d, "@example.com"));
        assert!(!email_domain_allowed(&d, ""));
        assert!(email_domain_allowed(
            &v(&[".example.com"]),
            "a@x.example.com"
        ));
    }

    #[test]
    fn groups() {
        assert!(groups_allowed(&[], &[]));
        assert!(groups_allowed(&v(&["admins"]), &v(&["everyone", "admins"])));
        assert!(!groups_allowed(&v(&["admins"]), &v(&["everyone"])));
        assert!(!groups_allowed(&v(&["admins"]), &v(&["Admins"])));
        assert!(!groups_allowed(&v(&["admins"]), &[]));
    }
}
