//! The small, self-contained pages and JSON bodies of local replies. Everything dynamic is
//! escaped; nothing a page shows comes from a token or a cookie value.

/// HTML-escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// What a page says.
#[derive(Debug, Clone, Default)]
pub struct Page<'a> {
    pub status: u16,
    pub title: &'a str,
    pub message: &'a str,
    pub signed_in_as: Option<&'a str>,
    pub sign_out_url: Option<&'a str>,
    pub retry_url: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

pub fn html(page: &Page<'_>) -> String {
    let mut extra = String::new();
    if let Some(who) = page.signed_in_as {
        extra.push_str(&format!(
            "<p>Signed in as <strong>{}</strong>.</p>",
            escape(who)
        ));
    }
    let mut links = Vec::new();
    if let Some(u) = page.retry_url {
        links.push(format!("<a href=\"{}\">Try again</a>", escape(u)));
    }
    if let Some(u) = page.sign_out_url {
        links.push(format!("<a href=\"{}\">Sign out</a>", escape(u)));
    }
    if !links.is_empty() {
        extra.push_str(&format!("<p>{}</p>", links.join(" &middot; ")));
    }
    if let Some(id) = page.request_id {
        extra.push_str(&format!(
            "<p class=\"id\">Request ID: <code>{}</code></p>",
            escape(id)
        ));
    }
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{status} {title}</title>\
<style>body{{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}}\
main{{background:#fff;border-radius:8px;box-shadow:0 1px 4px #0002;padding:2rem 2.5rem;max-width:32rem}}h1{{font-size:1.25rem;margin:0 0 1rem}}\
.code{{color:#6b7280;font-weight:400}}.id{{color:#6b7280;font-size:.85rem}}a{{color:#2454d6}}</style></head>\
<body><main><h1><span class=\"code\">{status}</span> {title}</h1><p>{message}</p>{extra}</main></body></html>",
        status = page.status,
        title = escape(page.title),
        message = escape(page.message),
    )
}

/// The page that ends a login when the session cookie is `SameSite=Strict`: it moves on to
/// `url` by itself (a same-site navigation), with a link for browsers that do not.
pub fn landing(url: &str) -> String {
    let url = escape(url);
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\">\
<meta http-equiv=\"refresh\" content=\"0;url={url}\"><title>Signed in</title></head>\
<body><p>Signed in. <a href=\"{url}\">Continue</a></p></body></html>"
    )
}

/// The JSON body for API clients: `{"error": code, "message": text}`.
pub fn json(code: &str, message: &str, request_id: Option<&str>) -> String {
    let mut v = serde_json::json!({ "error": code, "message": message });
    if let (Some(id), Some(m)) = (request_id, v.as_object_mut()) {
        m.insert(
            "request_id".into(),
            serde_json::Value::String(id.to_string()),
        );
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_text_is_escaped() {
        let body = html(&Page {
            status: 403,
            title: "Forbidden",
            message: "no",
            signed_in_as: Some("<script>alert(1)</script>@x"),
            sign_out_url: Some("/oauth2/sign_out\"><x"),
            request_id: Some("r1"),
            ..Page::default()
        });
        assert!(!body.contains("<script>"));
        assert!(body.contains("&lt;script&gt;"));
        assert!(body.contains("/oauth2/sign_out&quot;&gt;&lt;x"));
        assert!(body.contains("Request ID: <code>r1</code>"));
    }

    #[test]
    fn the_landing_page_moves_on_to_an_escaped_url() {
        let page = landing("/app?a=1&b=\"><script>");
        assert!(
            page.contains("content=\"0;url=/app?a=1&amp;b=&quot;&gt;&lt;script&gt;\""),
            "{page}"
        );
        assert!(!page.contains("<script>"));
    }

    #[test]
    fn json_body() {
        assert_eq!(
            json("unauthorized", "sign in", None),
            r#"{"error":"unauthorized","message":"sign in"}"#
        );
    }
}
