//! The operator's HTTP routes: `/health` and `/metrics` (Prometheus text). The OpenVidu REST
//! API (`rest`) and the signalling WebSocket (`ws`) are merged into the same router at start-up.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::media::{totals, SharedLegStats};
use crate::sip_driver::SharedMetrics;

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) sip: SharedMetrics,
    pub(crate) media: SharedLegStats,
    pub(crate) outbox: Option<std::sync::Arc<crate::outbox::Outbox>>,
    pub(crate) sfu: crate::sessions::SharedSfuStats,
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
        "sip_rejected_merged_total",
        "Copies of an INVITE that arrived by a second path (fork or loop), refused with 482.",
        s.rejected_merged,
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

    if !m.trunks.is_empty() {
        out.push_str(
            "# HELP phonebridge_trunk_up Whether the trunk answered its last OPTIONS probe.\n\
             # TYPE phonebridge_trunk_up gauge\n",
        );
        for (name, h) in &m.trunks {
            let _ = writeln!(
                out,
                "phonebridge_trunk_up{{trunk=\"{name}\"}} {}",
                u8::from(h.up)
            );
        }
        out.push_str(
            "# HELP phonebridge_trunk_ping_rtt_seconds Round trip of the trunk's last answered probe.\n\
             # TYPE phonebridge_trunk_ping_rtt_seconds gauge\n",
        );
        for (name, h) in m.trunks.iter().filter(|(_, h)| h.up) {
            let _ = writeln!(
                out,
                "phonebridge_trunk_ping_rtt_seconds{{trunk=\"{name}\"}} {:.6}",
                h.rtt.as_secs_f64()
            );
        }
    }
    media_metrics(&state.media, &mut out);
    if let Ok(s) = state.sfu.lock() {
        let _ = write!(
            out,
            "# HELP phonebridge_sfu_publishers Browser streams published.\n# TYPE phonebridge_sfu_publishers gauge\nphonebridge_sfu_publishers {}\n\
             # HELP phonebridge_sfu_subscriptions Browser subscriptions.\n# TYPE phonebridge_sfu_subscriptions gauge\nphonebridge_sfu_subscriptions {}\n\
             # HELP phonebridge_sfu_packets_in_total RTP packets received from publishers.\n# TYPE phonebridge_sfu_packets_in_total counter\nphonebridge_sfu_packets_in_total {}\n\
             # HELP phonebridge_sfu_packets_forwarded_total RTP packets written to subscriptions.\n# TYPE phonebridge_sfu_packets_forwarded_total counter\nphonebridge_sfu_packets_forwarded_total {}\n\
             # HELP phonebridge_sfu_keyframe_requests_total Key frames asked of publishers.\n# TYPE phonebridge_sfu_keyframe_requests_total counter\nphonebridge_sfu_keyframe_requests_total {}\n",
            s.publishers, s.subscriptions, s.packets_in, s.packets_forwarded, s.keyframe_requests
        );
    }
    if let Some(o) = &state.outbox {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &o.stats;
        let _ = write!(
            out,
            "# HELP phonebridge_webhook_queued_total Webhook events stored for delivery.\n# TYPE phonebridge_webhook_queued_total counter\nphonebridge_webhook_queued_total {}\n# HELP phonebridge_webhook_delivered_total Webhook events the receiver accepted.\n# TYPE phonebridge_webhook_delivered_total counter\nphonebridge_webhook_delivered_total {}\n# HELP phonebridge_webhook_retries_total Failed webhook deliveries (each retried).\n# TYPE phonebridge_webhook_retries_total counter\nphonebridge_webhook_retries_total {}\n",
            s.queued.load(Relaxed),
            s.delivered.load(Relaxed),
            s.retries.load(Relaxed)
        );
        let _ = write!(
            out,
            "# HELP phonebridge_webhook_pending Webhook events stored and not yet delivered.\n# TYPE phonebridge_webhook_pending gauge\nphonebridge_webhook_pending {}\n",
            o.count()
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// Phone-leg media: counters over every leg, and per live call the RTCP health figures.
fn media_metrics(media: &SharedLegStats, out: &mut String) {
    let Ok(stats) = media.lock() else { return };
    let t = totals(&stats);
    let _ = write!(
        out,
        "# HELP phonebridge_rtp_port_pairs_resting RTP port pairs of ended calls kept open for reuse (two descriptors each).\n# TYPE phonebridge_rtp_port_pairs_resting gauge\nphonebridge_rtp_port_pairs_resting {}\n",
        stats.resting_pairs.load(std::sync::atomic::Ordering::Relaxed)
    );
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = write!(out, "# HELP phonebridge_{name} {help}\n# TYPE phonebridge_{name} counter\nphonebridge_{name} {v}\n");
    };
    let (tr, j) = (&t.transport, &t.jitter);
    counter(
        "rtp_packets_received_total",
        "RTP packets accepted from phones.",
        tr.packets_received,
    );
    counter(
        "rtp_packets_sent_total",
        "RTP packets sent to phones.",
        tr.packets_sent,
    );
    counter(
        "rtp_malformed_total",
        "Datagrams on RTP ports that were not RTP.",
        tr.malformed,
    );
    counter(
        "rtp_srtp_failures_total",
        "SRTP packets that failed authentication or replay checks.",
        tr.srtp_failures,
    );
    counter(
        "rtcp_srtcp_failures_total",
        "SRTCP packets refused (also plain RTCP on a secure leg).",
        tr.srtcp_failures,
    );
    counter(
        "rtp_ignored_source_total",
        "RTP packets from addresses the call does not use (old or foreign).",
        tr.ignored_source,
    );
    counter(
        "rtp_latched_total",
        "Times a leg latched to a media source address.",
        tr.latched,
    );
    counter(
        "rtp_late_total",
        "RTP packets that arrived after their playout time.",
        j.late,
    );
    counter(
        "rtp_lost_total",
        "RTP packets never received (concealed).",
        j.lost,
    );
    counter(
        "rtp_duplicates_total",
        "Duplicate RTP packets dropped.",
        j.duplicates,
    );
    counter(
        "rtp_underruns_total",
        "Jitter-buffer underruns (delay grew).",
        j.underruns,
    );
    counter(
        "rtp_shrinks_total",
        "Frames dropped to shrink the jitter buffer.",
        j.shrinks,
    );
    counter(
        "rtp_ssrc_switches_total",
        "New SSRCs mid-call.",
        j.source.ssrc_switches,
    );
    counter(
        "rtp_timestamp_jumps_total",
        "Timestamp base jumps with the same SSRC.",
        j.source.timestamp_jumps,
    );
    counter(
        "rtp_sequence_restarts_total",
        "Sequence number restarts.",
        j.source.sequence_restarts,
    );
    counter(
        "rtp_stale_total",
        "Late packets of a source that was switched away from.",
        j.source.stale,
    );
    counter(
        "rtp_unknown_payload_type_total",
        "RTP packets with a payload type not negotiated.",
        t.unknown_payload_type,
    );
    counter(
        "rtp_comfort_noise_total",
        "Comfort-noise packets received.",
        t.comfort_noise,
    );
    counter(
        "dtmf_digits_total",
        "Digits received from phones (all routes, merged).",
        t.digits,
    );
    counter(
        "rtcp_received_total",
        "RTCP packets received.",
        tr.rtcp_received,
    );
    counter("rtcp_sent_total", "RTCP packets sent.", tr.rtcp_sent);
    let m = crate::media::mixing_totals(&stats);
    counter(
        "mix_frames_up_total",
        "20 ms frames of phones sent to their sessions (Opus).",
        m.session.frames_up,
    );
    counter(
        "mix_packets_passed_total",
        "Packets of Opus phones passed to their sessions without transcoding.",
        m.session.packets_passed,
    );
    counter(
        "mix_packets_down_total",
        "Session audio packets phones' mixes received.",
        m.session.packets_down,
    );
    counter(
        "mix_concealed_total",
        "Session audio packets lost and concealed in phones' mixes.",
        m.session.concealed,
    );
    counter(
        "mix_frames_dropped_total",
        "Mixer frames dropped because they came too late to play.",
        m.session.dropped,
    );
    counter(
        "mix_starvations_total",
        "Mixer ticks a playing source had nothing to give.",
        m.session.starvations,
    );
    counter(
        "leg_ticks_late_total",
        "20 ms media ticks that ran more than a frame late.",
        m.ticks_late,
    );
    let _ = write!(out, "# HELP phonebridge_media_legs Phone legs with live media.\n# TYPE phonebridge_media_legs gauge\nphonebridge_media_legs {}\n", stats.live.len());
    let mut calls: Vec<_> = stats.live.iter().collect();
    calls.sort_by_key(|(c, _)| **c);
    type Figure = fn(&phonebridge_bridge::PhoneAudioStats) -> Option<f64>;
    let gauges: [(&str, &str, Figure); 5] = [
        ("call_rtt_ms", "Round-trip time from RTCP, per call.", |s| {
            s.transport.rtt_ms
        }),
        (
            "call_jitter_ms",
            "Interarrival jitter of the phone's stream, per call.",
            |s| Some(s.transport.jitter_ms),
        ),
        (
            "call_loss_received_total",
            "Packets lost on the phone's stream, per call.",
            |s| Some(s.transport.local_lost as f64),
        ),
        (
            "call_loss_reported_percent",
            "Loss the phone reports about our stream, per call.",
            |s| Some(s.transport.remote_loss_pct),
        ),
        (
            "call_jitter_buffer_ms",
            "Jitter-buffer target delay, per call.",
            |s| Some(s.jitter.target_ms as f64),
        ),
    ];
    for (name, help, f) in gauges {
        let _ = write!(
            out,
            "# HELP phonebridge_{name} {help}\n# TYPE phonebridge_{name} gauge\n"
        );
        for (call, s) in &calls {
            if let Some(v) = f(s) {
                let _ = writeln!(out, "phonebridge_{name}{{call=\"{}\"}} {v}", call.0);
            }
        }
    }
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
            media: SharedLegStats::default(),
            outbox: None,
            sfu: Default::default(),
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
