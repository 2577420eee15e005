//! The HTTP service. For now: `/health` and `/metrics` (Prometheus text); the OpenVidu REST
//! API and WebSocket join this router as they are built.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::sip_driver::SharedMetrics;

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) sip: SharedMetrics,
}

pub(crate) fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = state.sip.lock().map(|m| m.clone()).unwrap_or_default();
    let s = m.stats;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = write!(out, "# HELP phonebridge_{name} {help}\n# TYPE phonebridge_{name} counter\nphonebridge_{name} {v}\n");
    };
    counter(
        "sip_messages_received_total",
        "SIP messages received.",
        s.received,
    );
    counter(
        "sip_retransmissions_absorbed_total",
        "Retransmitted requests absorbed by a transaction.",
        s.retransmissions_absorbed,
    );
    counter(
        "sip_responses_retransmitted_total",
        "2xx responses retransmitted while waiting for ACK.",
        s.responses_retransmitted,
    );
    counter(
        "sip_rejected_malformed_total",
        "Requests answered with an error before processing.",
        s.rejected_malformed,
    );
    counter(
        "sip_dropped_malformed_total",
        "Messages dropped as unusable.",
        s.dropped_malformed,
    );
    counter(
        "sip_dropped_flood_total",
        "Messages dropped by the per-source rate limit.",
        s.dropped_flood,
    );
    counter(
        "sip_dropped_scanner_total",
        "Requests dropped for a scanner User-Agent.",
        s.dropped_scanner,
    );
    counter(
        "sip_auth_challenges_total",
        "INVITEs from authenticating trunks answered with a digest challenge.",
        s.auth_challenges,
    );
    counter(
        "sip_rejected_busy_total",
        "INVITEs refused with 503 at the call limit.",
        s.rejected_busy,
    );
    counter(
        "sip_unmatched_responses_total",
        "Responses matching no transaction.",
        s.unmatched_responses,
    );
    counter(
        "sip_calls_started_total",
        "Calls received.",
        s.calls_started,
    );
    counter("sip_calls_ended_total", "Calls ended.", s.calls_ended);
    counter(
        "panics_contained_total",
        "Bugs (panics) contained by the SIP driver; each lost one input, not the server.",
        m.panics,
    );
    let mut gauge = |name: &str, help: &str, v: usize| {
        let _ = write!(out, "# HELP phonebridge_{name} {help}\n# TYPE phonebridge_{name} gauge\nphonebridge_{name} {v}\n");
    };
    gauge("sip_active_calls", "Calls in progress.", m.active_calls);
    gauge(
        "sip_active_transactions",
        "Live SIP transactions.",
        m.active_transactions,
    );
    gauge(
        "sip_tcp_connections",
        "Open SIP TCP connections.",
        m.tcp_connections,
    );
    gauge(
        "echo_active_calls",
        "Calls to the echo user in progress.",
        m.echo_calls,
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn metrics_lists_sip_counters() {
        let state = AppState {
            sip: SharedMetrics::default(),
        };
        state.sip.lock().unwrap().stats.calls_started = 3;
        let resp = app(state)
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.contains("phonebridge_sip_calls_started_total 3\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE phonebridge_sip_active_calls gauge"));
    }
}
