//! The page for people: `/` serves a small app (web/app, compiled in) built on
//! `openvidu-browser`, whose pinned npm build is served from where npm put it
//! (web/node_modules). When that build is missing, the server installs it (`npm ci`) in the
//! background at start-up, so the run command alone gives a working page.

use std::path::PathBuf;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../../../web/app/index.html");
const APP_JS: &str = include_str!("../../../web/app/app.js");
const STYLE: &str = include_str!("../../../web/app/style.css");
const OPENVIDU_BROWSER: &str = "node_modules/openvidu-browser/static/js/openvidu-browser-2.32.2.js";

/// The `web/` folder of the source tree.
fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

pub(crate) fn router() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { page(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/app/app.js",
            get(|| async { page(APP_JS, "text/javascript") }),
        )
        .route("/app/style.css", get(|| async { page(STYLE, "text/css") }))
        .route("/openvidu-browser.js", get(openvidu_browser))
}

fn page(body: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

async fn openvidu_browser() -> Response {
    match tokio::fs::read(web_dir().join(OPENVIDU_BROWSER)).await {
        Ok(js) => ([(header::CONTENT_TYPE, "text/javascript")], js).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "openvidu-browser is not installed yet: the server runs `npm ci --prefix web` at start-up; reload in a moment\n",
        )
            .into_response(),
    }
}

/// Installs the pinned npm packages when the browser library is missing.
pub(crate) fn ensure_installed() {
    let web = web_dir();
    if web.join(OPENVIDU_BROWSER).is_file() || !web.join("package-lock.json").is_file() {
        return;
    }
    tokio::spawn(async move {
        tracing::info!("installing openvidu-browser for the page (npm ci --prefix web)");
        let result = tokio::process::Command::new("npm")
            .args([
                "ci",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
            ])
            .arg(&web)
            .output()
            .await;
        match result {
            Ok(out) if out.status.success() => {
                tracing::info!("openvidu-browser installed; the page is ready")
            }
            Ok(out) => {
                tracing::warn!(stderr = %String::from_utf8_lossy(&out.stderr), "npm ci failed: the page cannot load openvidu-browser")
            }
            Err(e) => {
                tracing::warn!(error = %e, "npm is not available: the page cannot load openvidu-browser")
            }
        }
    });
}
