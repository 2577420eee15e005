//! The durable webhook outbox: every event is written to SQLite when it happens and deleted
//! only once the receiver has answered 2xx. A delivery task sends the oldest event first, one
//! at a time, so the receiver sees events in order; failures are retried with exponential
//! back-off (1 s doubling to 60 s). A receiver outage or a server restart loses nothing.
//!
//! Each POST carries `X-Phonebridge-Event-Id` (the outbox id, for receivers to drop
//! duplicates after a retry) and, when a webhook secret is set, `X-Phonebridge-Signature:
//! t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use tokio::sync::{watch, Notify};

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(60);
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// An event waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) id: i64,
    pub(crate) created_at: u64,
    pub(crate) body: String,
    pub(crate) attempts: u32,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct OutboxStats {
    pub(crate) queued: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) retries: AtomicU64,
}

pub(crate) struct Outbox {
    db: Mutex<rusqlite::Connection>,
    wake: Notify,
    pub(crate) stats: OutboxStats,
}

impl Outbox {
    /// Opens (or creates) the outbox in the database file at `path`.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Arc<Outbox>> {
        let db = rusqlite::Connection::open(path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS webhook_outbox (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 created_at INTEGER NOT NULL,
                 body TEXT NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 last_error TEXT
             );",
        )
        .with_context(|| format!("cannot set up the webhook outbox in {}", path.display()))?;
        Ok(Arc::new(Outbox {
            db: Mutex::new(db),
            wake: Notify::new(),
            stats: OutboxStats::default(),
        }))
    }

    fn db(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        // A panic while holding the lock leaves SQLite consistent (each call is one statement).
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores an event for delivery.
    pub(crate) fn push(&self, now_ms: u64, body: &str) -> rusqlite::Result<i64> {
        let db = self.db();
        db.execute(
            "INSERT INTO webhook_outbox (created_at, body) VALUES (?1, ?2)",
            rusqlite::params![now_ms as i64, body],
        )?;
        let id = db.last_insert_rowid();
        drop(db);
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
        Ok(id)
    }

    /// Events not yet delivered, oldest first.
    pub(crate) fn pending(&self, limit: usize) -> rusqlite::Result<Vec<Pending>> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT id, created_at, body, attempts FROM webhook_outbox ORDER BY id LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(Pending {
                id: r.get(0)?,
                created_at: r.get::<_, i64>(1)? as u64,
                body: r.get(2)?,
                attempts: r.get::<_, i64>(3)? as u32,
            })
        })?;
        rows.collect()
    }

    pub(crate) fn count(&self) -> u64 {
        self.db()
            .query_row("SELECT COUNT(*) FROM webhook_outbox", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .unwrap_or(0)
    }

    fn oldest(&self) -> rusqlite::Result<Option<Pending>> {
        Ok(self.pending(1)?.into_iter().next())
    }

    fn delivered(&self, id: i64) -> rusqlite::Result<()> {
        self.db()
            .execute("DELETE FROM webhook_outbox WHERE id = ?1", [id])?;
        self.stats.delivered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn failed(&self, id: i64, error: &str) -> rusqlite::Result<()> {
        self.db().execute(
            "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
            rusqlite::params![id, error],
        )?;
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Where and how events are delivered.
#[derive(Clone)]
pub(crate) struct Delivery {
    pub(crate) endpoint: hyper::Uri,
    pub(crate) secret: Option<String>,
}

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

fn client() -> anyhow::Result<Client> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .context("cannot load the system's TLS roots for webhooks")?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https),
    )
}

/// The signature header value for `body` at unix time `t`.
pub(crate) fn signature(secret: &str, t: u64, body: &str) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body.as_bytes());
    let tag = ctx.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

#[allow(clippy::disallowed_methods)] // the shell reads the wall clock
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Delivers events until `shutdown` fires.
pub(crate) async fn run(
    outbox: Arc<Outbox>,
    delivery: Delivery,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = match client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks cannot be delivered");
            return;
        }
    };
    let mut backoff = FIRST_RETRY;
    loop {
        let next = match outbox.oldest() {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "webhook outbox unreadable");
                None
            }
        };
        let Some(event) = next else {
            tokio::select! {
                _ = outbox.wake.notified() => continue,
                _ = shutdown.changed() => return,
            }
        };
        let result = tokio::select! {
            r = post(&client, &delivery, &event) => r,
            _ = shutdown.changed() => return,
        };
        match result {
            Ok(()) => {
                if let Err(e) = outbox.delivered(event.id) {
                    tracing::error!(error = %e, "webhook outbox unwritable");
                }
                backoff = FIRST_RETRY;
            }
            Err(why) => {
                tracing::warn!(id = event.id, attempts = event.attempts + 1, %why, retry_in = ?backoff, "webhook not delivered");
                let _ = outbox.failed(event.id, &why);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(LAST_RETRY);
            }
        }
    }
}

async fn post(client: &Client, delivery: &Delivery, event: &Pending) -> Result<(), String> {
    let mut req = hyper::Request::post(delivery.endpoint.clone())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("x-phonebridge-event-id", event.id.to_string());
    if let Some(secret) = &delivery.secret {
        req = req.header(
            "x-phonebridge-signature",
            signature(secret, unix_now(), &event.body),
        );
    }
    let req = req
        .body(Full::new(Bytes::from(event.body.clone())))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(POST_TIMEOUT, client.request(req))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    // Read the body so the connection can be reused.
    let _ = resp.into_body().collect().await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_reopening_in_order() {
        let dir = std::env::temp_dir().join(format!("pb-outbox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("test.db");
        {
            let o = Outbox::open(&path).unwrap();
            for i in 0..3 {
                o.push(i, &format!("{{\"n\":{i}}}")).unwrap();
            }
            let first = o.oldest().unwrap().unwrap();
            o.delivered(first.id).unwrap();
            o.failed(first.id + 1, "HTTP 503").unwrap();
        }
        let o = Outbox::open(&path).unwrap();
        let p = o.pending(10).unwrap();
        assert_eq!(
            p.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(),
            ["{\"n\":1}", "{\"n\":2}"]
        );
        assert_eq!(p[0].attempts, 1);
        assert_eq!(o.count(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Expected values computed with Python's hmac module.
        assert_eq!(
            signature("key", 1_700_000_000, "{\"event\":\"sessionCreated\"}"),
            "t=1700000000,v1=4b1bde22489be1b0eed0882eb91f8c44175f24c581818ad4e5ee7cc759ff6f9d"
        );
        assert_eq!(
            signature("Jefe", 0, "what do ya want for nothing?"),
            "t=0,v1=37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc"
        );
    }
}
