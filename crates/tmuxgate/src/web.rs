//! The browser UI: files of `web/dist`, embedded at build time (`build.rs`), served with
//! validators, long-lived caching for content-hashed assets, gzip when the client takes it,
//! and the security headers a terminal page needs (a strict CSP: scripts only from here,
//! WebSockets only back here and to the fleet's other gateways; HSTS under TLS).

use axum::Router;
use axum::extract::State;
use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, VARY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// URL path, e.g. `/index.html`, `/assets/app-3f2a.js`.
    pub path: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Strong ETag (quoted) of the uncompressed bytes.
    pub etag: &'static str,
    /// ETag of the gzip representation (a strong ETag names one representation).
    pub gzip_etag: &'static str,
    /// Under `/assets/`: the name carries a content hash, so it never changes.
    pub immutable: bool,
    /// The file.
    pub body: &'static [u8],
    /// Its gzip encoding, when that is smaller.
    pub gzip: Option<&'static [u8]>,
}

/// Every file of `web/dist`, sorted by path.
pub static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// What the page may load: everything from its own origin, WebSockets back to it
/// (`'self'` covers `ws:`/`wss:` to the same host), no inline or foreign scripts, no framing.
/// xterm.js sets inline styles, hence `'unsafe-inline'` for styles only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// HSTS for a gateway serving TLS: browsers use `https://` for this host for a year, even if
/// a link or a typed address says `http://`. No `includeSubDomains`: the gateway cannot
/// vouch for other hosts under its name.
pub const HSTS: &str = "max-age=31536000";

const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Pages and unhashed files: revalidate every time (cheap: a 304 on the ETag).
const CACHE_REVALIDATE: &str = "no-cache";

/// The asset at `path` (`/` is the UI page).
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS
        .binary_search_by(|a| a.path.cmp(path))
        .ok()
        .map(|i| &ASSETS[i])
}

/// `GET`/`HEAD` of any path that is not an API: an embedded file or 404.
pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    respond(uri.path(), &headers)
}

/// The response for `path` given the request's headers.
pub fn respond(path: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = find(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let packed = asset.gzip.filter(|_| accepts_gzip(headers));
    let etag = match packed {
        Some(_) => asset.gzip_etag,
        None => asset.etag,
    };
    // Either representation's tag validates: both are the same content.
    let mut response = if not_modified(headers, &[asset.etag, asset.gzip_etag]) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match packed {
            Some(packed) => {
                let mut r = packed.into_response();
                r.headers_mut()
                    .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            }
            None => asset.body.into_response(),
        }
    };
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(ETAG, HeaderValue::from_static(etag));
    let cache = match asset.immutable {
        true => CACHE_IMMUTABLE,
        false => CACHE_REVALIDATE,
    };
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    if asset.gzip.is_some() {
        h.insert(VARY, HeaderValue::from_static("accept-encoding"));
    }
    security_headers(h, asset.content_type.starts_with("text/html"));
    response
}

fn security_headers(h: &mut HeaderMap, page: bool) {
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if page {
        h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        );
    }
}

/// Lets the page open WebSockets to the fleet's other gateways too (`FLEET_URLS`: the UI
/// fails over to them): their origins join `connect-src` in the page's CSP. Without a fleet,
/// `app` is returned as it is.
pub fn allow_fleet(app: Router, fleet_urls: &[String]) -> Router {
    match fleet_csp(fleet_urls) {
        Some(csp) => app.layer(axum::middleware::map_response_with_state(csp, with_csp)),
        None => app,
    }
}

/// [`CSP`] with `scheme://host[:port]` of each fleet URL added to `connect-src`; `None`
/// without a fleet. Only the origins: a validated URL's authority cannot end the directive.
fn fleet_csp(fleet_urls: &[String]) -> Option<HeaderValue> {
    let mut origins: Vec<String> = Vec::new();
    for url in fleet_urls {
        let (scheme, rest) = url.split_once("://")?;
        let authority = rest.split('/').next().unwrap_or_default();
        let origin = format!("{scheme}://{authority}").to_ascii_lowercase();
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    if origins.is_empty() {
        return None;
    }
    let connect = format!("connect-src 'self' {}", origins.join(" "));
    HeaderValue::from_str(&CSP.replacen("connect-src 'self'", &connect, 1)).ok()
}

/// Replaces the page's CSP with `csp` (an `axum::middleware::map_response_with_state`).
async fn with_csp(State(csp): State<HeaderValue>, mut response: Response) -> Response {
    if let Some(value) = response.headers_mut().get_mut(CONTENT_SECURITY_POLICY) {
        *value = csp;
    }
    response
}

/// Adds [`HSTS`] to a response of the TLS listener (an `axum::middleware::map_response`).
pub async fn with_hsts(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    response
}

/// `If-None-Match` lists one of `etags` (or is `*`).
fn not_modified(headers: &HeaderMap, etags: &[&str]) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || etags.contains(&t))
}

/// `Accept-Encoding` names gzip (or `*`) without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn hashed_script() -> &'static Asset {
        ASSETS
            .iter()
            .find(|a| a.immutable && a.path.ends_with(".js"))
            .expect("the build emits a hashed script under /assets/")
    }

    #[test]
    fn table_is_sorted_and_holds_the_page() {
        assert!(ASSETS.windows(2).all(|w| w[0].path < w[1].path));
        let page = find("/").expect("index.html");
        assert_eq!(page.path, "/index.html");
        assert!(
            std::str::from_utf8(page.body)
                .unwrap()
                .contains(hashed_script().path.trim_start_matches('/'))
        );
    }

    #[test]
    fn a_fleet_joins_connect_src_by_origin() {
        let urls = [
            "ws://10.0.0.2:8080/ws".to_owned(),
            "WSS://Term.Example.com/tmux/ws".to_owned(),
            "ws://10.0.0.2:8080/other/ws".to_owned(),
        ];
        let csp = fleet_csp(&urls).expect("a CSP");
        let csp = csp.to_str().unwrap_or_default();
        assert!(
            csp.contains(
                "; connect-src 'self' ws://10.0.0.2:8080 wss://term.example.com; font-src"
            ),
            "{csp}"
        );
        assert!(
            csp.starts_with("default-src 'self'; script-src 'self';"),
            "{csp}"
        );
        assert_eq!(fleet_csp(&[]), None);
    }

    #[test]
    fn page_gets_csp_and_revalidation() {
        let r = respond("/", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers();
        assert!(
            h[CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        assert_eq!(h[CACHE_CONTROL], CACHE_REVALIDATE);
        assert_eq!(h[CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(h[X_FRAME_OPTIONS], "DENY");
    }

    #[test]
    fn hashed_assets_are_immutable_and_gzipped_on_request() {
        let js = hashed_script();
        let plain = respond(js.path, &HeaderMap::new());
        assert_eq!(plain.headers()[CACHE_CONTROL], CACHE_IMMUTABLE);
        assert!(plain.headers().get(CONTENT_ENCODING).is_none());
        assert!(plain.headers().get(CONTENT_SECURITY_POLICY).is_none());
        let packed = respond(js.path, &headers(&[("accept-encoding", "br, gzip;q=0.8")]));
        assert_eq!(packed.headers()[CONTENT_ENCODING], "gzip");
        assert_eq!(packed.headers()[ETAG], js.gzip_etag);
        assert_ne!(js.gzip_etag, js.etag);
        let revalidate = [("accept-encoding", "gzip"), ("if-none-match", js.gzip_etag)];
        assert_eq!(
            respond(js.path, &headers(&revalidate)).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(packed.headers()[VARY], "accept-encoding");
        let refused = respond(js.path, &headers(&[("accept-encoding", "gzip;q=0, br")]));
        assert!(refused.headers().get(CONTENT_ENCODING).is_none());
    }

    #[test]
    fn etag_revalidation_answers_304() {
        let page = find("/").unwrap();
        let mut h = HeaderMap::new();
        h.insert(IF_NONE_MATCH, HeaderValue::from_static(page.etag));
        let r = respond("/", &h);
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(r.headers()[ETAG], page.etag);
        let stale = respond("/", &headers(&[("if-none-match", "\"0000000000000000\"")]));
        assert_eq!(stale.status(), StatusCode::OK);
    }

    #[test]
    fn unknown_and_hostile_paths_are_404() {
        for path in [
            "/nope",
            "/../Cargo.toml",
            "/assets/",
            "/index.html/..",
            "//etc/passwd",
        ] {
            assert_eq!(
                respond(path, &HeaderMap::new()).status(),
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
    }
}
