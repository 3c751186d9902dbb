//! The dashboard page at `/dashboard/` (issue: a page a person can look at):
//! the Laravel package's files (`php/resources/dashboard`, vendored assets
//! included), embedded at build time, so the sidecar alone serves it and it
//! loads nothing from outside this origin. The page reads `/sse` here.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::header::{self, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use include_dir::{include_dir, Dir};

static FILES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../php/resources/dashboard");

/// Everything from this origin only (plus the configured `connect`
/// origins, e.g. a Pusher-protocol server); no framing (a control page).
pub fn content_security_policy(connect: &[String]) -> String {
    let mut connect_src = String::from("'self'");
    for origin in connect {
        // An origin is one token: anything else would add directives.
        if !origin.is_empty()
            && origin
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        {
            connect_src.push(' ');
            connect_src.push_str(origin);
        }
    }
    format!(
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
         connect-src {connect_src}; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
}

/// The dashboard's own state: its policy header, built once.
pub struct Page {
    csp: HeaderValue,
}

impl Page {
    pub fn new(connect: &[String]) -> Arc<Self> {
        let csp = HeaderValue::from_str(&content_security_policy(connect))
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
        Arc::new(Self { csp })
    }
}

/// `/dashboard` → `/dashboard/` (the page's paths are relative), query kept.
pub async fn redirect(RawQuery(query): RawQuery) -> Redirect {
    match query {
        Some(q) => Redirect::permanent(&format!("/dashboard/?{q}")),
        None => Redirect::permanent("/dashboard/"),
    }
}

pub async fn index(State(page): State<Arc<Page>>) -> Response {
    file(&page, "index.html")
}

pub async fn asset(State(page): State<Arc<Page>>, Path(path): Path<String>) -> Response {
    file(&page, &path)
}

/// An embedded file (never the file system: no traversal to guard against).
fn file(page: &Page, path: &str) -> Response {
    let Some(f) = FILES.get_file(path) else {
        return (StatusCode::NOT_FOUND, "no such dashboard file").into_response();
    };
    let Some(kind) = content_type(path) else {
        return (StatusCode::NOT_FOUND, "no such dashboard file").into_response();
    };
    let mut r = f.contents().into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CONTENT_SECURITY_POLICY, page.csp.clone());
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The page's file types; anything else (READMEs, licences) is not served.
fn content_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_assets_are_embedded_and_only_they_are_served() {
        for path in [
            "index.html",
            "js/main.js",
            "dashboard.css",
            "vendor/uPlot.iife.min.js",
        ] {
            assert!(FILES.get_file(path).is_some(), "{path} embedded");
            assert!(content_type(path).is_some(), "{path} served");
        }
        assert_eq!(content_type("vendor/README.txt"), None);
        assert!(FILES.get_file("../Cargo.toml").is_none());
        assert!(FILES.get_file("/etc/passwd").is_none());
    }

    #[test]
    fn configured_origins_join_connect_src_and_nothing_else_can() {
        let csp =
            content_security_policy(&["ws://127.0.0.1:6001".into(), "x; script-src *".into()]);
        assert!(
            csp.contains("connect-src 'self' ws://127.0.0.1:6001;"),
            "{csp}"
        );
        assert!(!csp.contains("script-src"), "{csp}");
    }
}
