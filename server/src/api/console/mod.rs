//! The web console at `/ui`: a page and its script and style, embedded in
//! the binary (no CDN, nothing fetched at run time). It signs in with the
//! same bearer tokens as the API and calls the API from the browser, so it
//! can never show more than the API would give that token.
//!
//! Why a bearer header and not a cookie: the token lives in the tab's
//! `sessionStorage` and travels in `Authorization` on each `fetch`, which a
//! page on another site cannot make the browser send (no ambient
//! credential), so cross-site request forgery has nothing to ride on. The
//! script builds every element with `textContent` — no HTML is ever parsed
//! from data — and the Content-Security-Policy allows only this origin's own
//! script and style, no inline code, no framing (clickjacking), no form
//! posts and no base-URI changes.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::state::AppState;

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");

/// The policy every console response carries
/// (https://www.w3.org/TR/CSP3/): this origin's own script, style and API
/// calls only; nothing inline, nothing framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; form-action 'none'; \
     frame-ancestors 'none'; base-uri 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `/ui`, `/ui/app.js`, `/ui/app.css`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/ui",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/ui/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/ui/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}
