//! A browser-like HTTP client: a cookie jar per host (cookies ignore ports, as in browsers),
//! redirects followed by hand so tests can look at each hop.

use std::collections::BTreeMap;
use std::time::Duration;

use url::Url;

use crate::echo::Seen;
use crate::idp::User;

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub url: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The absolute URL of `Location`.
    pub fn location(&self) -> Option<String> {
        let loc = self.header("location")?;
        Url::parse(&self.url)
            .ok()?
            .join(loc)
            .ok()
            .map(|u| u.to_string())
    }

    /// What the echo upstream received, when the request reached it.
    pub fn seen(&self) -> Option<Seen> {
        Seen::parse(&self.body)
    }
}

#[derive(Clone)]
pub struct Browser {
    agent: ureq::Agent,
    /// host → name → value
    pub jar: BTreeMap<String, BTreeMap<String, String>>,
    /// Headers sent with every request (e.g. `accept`).
    pub extra: Vec<(String, String)>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        // Names under .test (RFC 2606) are this machine: tests use them as virtual hosts.
        let resolver = |addr: &str| -> std::io::Result<Vec<std::net::SocketAddr>> {
            let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "80"));
            if host.ends_with(".test") {
                let port: u16 = port.parse().unwrap_or(80);
                return Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))]);
            }
            std::net::ToSocketAddrs::to_socket_addrs(addr).map(|a| a.collect())
        };
        Self {
            agent: ureq::AgentBuilder::new()
                .redirects(0)
                .timeout(Duration::from_secs(20))
                .resolver(resolver)
                .build(),
            jar: BTreeMap::new(),
            extra: vec![(
                "accept".into(),
                "text/html,application/xhtml+xml,*/*;q=0.8".into(),
            )],
        }
    }

    /// A client that is not a browser: no `text/html` in `Accept`.
    pub fn api() -> Self {
        let mut b = Self::new();
        b.extra = vec![("accept".into(), "application/json".into())];
        b
    }

    fn host(url: &str) -> String {
        Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The cookies sent to `url`: host-only ones of its host, and those whose `Domain` covers it
    /// (kept under `.domain`).
    pub fn cookies(&self, url: &str) -> BTreeMap<String, String> {
        let host = Self::host(url);
        let mut out = BTreeMap::new();
        for (key, cookies) in &self.jar {
            let applies = match key.strip_prefix('.') {
                Some(domain) => host == domain || host.ends_with(key.as_str()),
                None => *key == host,
            };
            if applies {
                out.extend(cookies.clone());
            }
        }
        out
    }

    pub fn set_cookie(&mut self, url: &str, name: &str, value: &str) {
        self.jar
            .entry(Self::host(url))
            .or_default()
            .insert(name.into(), value.into());
    }

    fn store(&mut self, url: &str, set_cookies: &[&str]) {
        let host = Self::host(url);
        for c in set_cookies {
            let mut attrs = c.split(';');
            let Some((name, value)) = attrs.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let attrs: Vec<String> = attrs.map(|a| a.trim().to_ascii_lowercase()).collect();
            let expired = attrs.iter().any(|a| {
                a == "max-age=0"
                    || a.starts_with("max-age=-")
                    || a.starts_with("expires=thu, 01 jan 1970")
            });
            // A Domain cookie is kept under ".domain" and sent to that domain and below.
            let key = attrs
                .iter()
                .find_map(|a| a.strip_prefix("domain="))
                .map(|d| format!(".{}", d.trim_start_matches('.')))
                .unwrap_or_else(|| host.clone());
            let jar = self.jar.entry(key).or_default();
            if expired {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_string(), value.trim().to_string());
            }
        }
    }

    /// Sends one request; `headers` are added to the browser's own.
    pub fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        form: Option<&[(&str, &str)]>,
    ) -> Reply {
        let mut req = self.agent.request(method, url);
        for (k, v) in &self.extra {
            if !headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(k)) {
                req = req.set(k, v);
            }
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let cookies = self.cookies(url);
        if !cookies.is_empty()
            && !headers
                .iter()
                .any(|(h, _)| h.eq_ignore_ascii_case("cookie"))
        {
            let line: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.set("cookie", &line.join("; "));
        }
        let result = match form {
            Some(f) => req.send_form(f),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {url}: {e}"),
        };
        let status = resp.status();
        let headers: Vec<(String, String)> = resp
            .headers_names()
            .iter()
            .flat_map(|n| {
                resp.all(n)
                    .into_iter()
                    .map(move |v| (n.to_ascii_lowercase(), v.to_string()))
            })
            .collect();
        let body = resp.into_string().unwrap_or_default();
        let set: Vec<&str> = headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        self.store(url, &set);
        Reply {
            url: url.to_string(),
            status,
            headers,
            body,
        }
    }

    pub fn get(&mut self, url: &str) -> Reply {
        self.send("GET", url, &[], None)
    }

    /// Follows redirects from the last hop until a non-redirect answer or `max` hops.
    fn follow_on(&mut self, mut hops: Vec<Reply>, max: usize) -> Vec<Reply> {
        while hops.len() <= max {
            let Some(next) = hops
                .last()
                .filter(|r| (300..400).contains(&r.status))
                .and_then(Reply::location)
            else {
                break;
            };
            hops.push(self.get(&next));
        }
        hops
    }

    /// GET, then follow redirects (at most `max` hops); returns every hop.
    pub fn follow(&mut self, url: &str, max: usize) -> Vec<Reply> {
        let first = self.get(url);
        self.follow_on(vec![first], max)
    }

    /// Submits the IdP's sign-in form found at `form_url`.
    pub fn sign_in(&mut self, form_url: &str, username: &str, password: &str) -> Reply {
        self.send(
            "POST",
            form_url,
            &[],
            Some(&[("username", username), ("password", password)]),
        )
    }

    /// Navigates to `url` and follows to the IdP's sign-in form; returns the form's URL.
    fn open_sign_in_form(&mut self, url: &str) -> String {
        let to_form = self.follow(url, 10);
        let form = to_form.last().expect("a reply");
        assert_eq!(
            form.status, 200,
            "expected the IdP's sign-in form, got {form:?}"
        );
        assert!(
            form.body.contains("name=\"username\""),
            "not the sign-in form: {}",
            form.body
        );
        form.url.clone()
    }

    /// The whole browser login: navigate to `url` on the gateway, follow to the IdP's form, sign
    /// in, follow back through the callback until a non-redirect answer. Returns every hop after
    /// the sign-in POST.
    pub fn login(&mut self, url: &str, username: &str, password: &str) -> Vec<Reply> {
        let form = self.open_sign_in_form(url);
        let posted = self.sign_in(&form, username, password);
        self.follow_on(vec![posted], 11)
    }

    /// Logs in as `user` from `url` and returns what the app saw: the login must end at the app
    /// (200, the upstream's answer).
    pub fn signs_in(&mut self, url: &str, user: &User) -> Seen {
        let hops = self.login(url, user.username, user.password);
        let last = hops.last().expect("a reply");
        assert_eq!(
            last.status, 200,
            "{} did not sign in: {hops:#?}",
            user.username
        );
        last.seen()
            .unwrap_or_else(|| panic!("the login did not reach the app: {last:?}"))
    }

    /// A login up to the IdP's redirect back: returns the callback URL, not yet requested (to
    /// deliver it elsewhere, or after breaking something).
    pub fn login_until_callback(&mut self, url: &str, username: &str, password: &str) -> String {
        let form = self.open_sign_in_form(url);
        let mut hop = self.sign_in(&form, username, password);
        for _ in 0..10 {
            let next = hop
                .location()
                .unwrap_or_else(|| panic!("expected a redirect, got {hop:?}"));
            if next.contains("/oauth2/callback") {
                return next;
            }
            hop = self.get(&next);
        }
        panic!("no callback after 10 redirects");
    }
}
