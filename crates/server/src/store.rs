//! The durable store (SQLite in `data-dir`): dial-in codes of sessions and call records. Codes
//! are kept across restarts, unique across every session that has one, and never written to
//! logs above debug. A call record is written at every change of its status.

use std::path::Path;
use std::sync::Mutex;

use anyhow::Context as _;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A session's dial-in code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DialIn {
    pub(crate) session_id: String,
    pub(crate) pin: String,
    pub(crate) created_at: u64,
}

/// Why a code was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PinError {
    /// Another session has this code.
    Taken,
    /// Not 4 to 16 digits.
    Invalid,
    Storage(String),
}

/// Length of generated codes.
const GENERATED_DIGITS: usize = 6;

pub(crate) struct Store {
    db: Mutex<rusqlite::Connection>,
    rng: Mutex<SmallRng>,
}

impl Store {
    pub(crate) fn open(path: &Path, seed: u64) -> anyhow::Result<Store> {
        let db = rusqlite::Connection::open(path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS dialin (
                 session_id TEXT PRIMARY KEY,
                 pin TEXT NOT NULL UNIQUE,
                 created_at INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS calls (
                 id TEXT PRIMARY KEY,
                 session_id TEXT NOT NULL,
                 status TEXT NOT NULL,
                 created_at INTEGER NOT NULL,
                 doc TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS calls_by_session ON calls (session_id, created_at);",
        )
        .with_context(|| format!("cannot set up the database {}", path.display()))?;
        Ok(Store {
            db: Mutex::new(db),
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
        })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        // Each call is one statement: a poisoned lock leaves SQLite consistent.
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets a session's code: `pin` as given, or a fresh one.
    pub(crate) fn set_pin(
        &self,
        session_id: &str,
        pin: Option<&str>,
        now_ms: u64,
    ) -> Result<DialIn, PinError> {
        if let Some(p) = pin {
            if !(4..=16).contains(&p.len()) || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PinError::Invalid);
            }
        }
        let db = self.db();
        for _ in 0..50 {
            let candidate = match pin {
                Some(p) => p.to_owned(),
                None => {
                    let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
                    (0..GENERATED_DIGITS)
                        .map(|i| {
                            // No leading zero: codes read back the same as numbers.
                            let d = if i == 0 {
                                rng.gen_range(1..10)
                            } else {
                                rng.gen_range(0..10)
                            };
                            char::from(b'0' + d as u8)
                        })
                        .collect()
                }
            };
            let r = db.execute(
                "INSERT INTO dialin (session_id, pin, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(session_id) DO UPDATE SET pin = excluded.pin, created_at = excluded.created_at",
                rusqlite::params![session_id, candidate, now_ms as i64],
            );
            match r {
                Ok(_) => {
                    return Ok(DialIn {
                        session_id: session_id.to_owned(),
                        pin: candidate,
                        created_at: now_ms,
                    })
                }
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    if pin.is_some() {
                        return Err(PinError::Taken);
                    }
                    // A generated code collided: draw another.
                }
                Err(e) => return Err(PinError::Storage(e.to_string())),
            }
        }
        Err(PinError::Storage("no free code found".into()))
    }

    pub(crate) fn pin(&self, session_id: &str) -> Option<DialIn> {
        self.db()
            .query_row(
                "SELECT pin, created_at FROM dialin WHERE session_id = ?1",
                [session_id],
                |r| {
                    Ok(DialIn {
                        session_id: session_id.to_owned(),
                        pin: r.get(0)?,
                        created_at: r.get::<_, i64>(1)? as u64,
                    })
                },
            )
            .ok()
    }

    /// Removes a session's code; false when it had none.
    pub(crate) fn delete_pin(&self, session_id: &str) -> bool {
        self.db()
            .execute("DELETE FROM dialin WHERE session_id = ?1", [session_id])
            .map(|n| n > 0)
            .unwrap_or(false)
    }

    /// Writes a call record (new, or its latest state).
    pub(crate) fn put_call(&self, c: &crate::calls::CallRecord) {
        let doc = match serde_json::to_string(c) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "call record not encodable");
                return;
            }
        };
        let r = self.db().execute(
            "INSERT INTO calls (id, session_id, status, created_at, doc) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET status = excluded.status, doc = excluded.doc",
            rusqlite::params![c.id, c.session_id, c.status.as_str(), c.created_at as i64, doc],
        );
        if let Err(e) = r {
            tracing::error!(error = %e, call = %c.id, "call record not stored");
        }
    }

    /// Call records, oldest first; only `session_id`'s when given.
    pub(crate) fn calls(&self, session_id: Option<&str>) -> Vec<crate::calls::CallRecord> {
        let db = self.db();
        let rows = match session_id {
            Some(s) => db
                .prepare_cached(
                    "SELECT doc FROM calls WHERE session_id = ?1 ORDER BY created_at, id",
                )
                .and_then(|mut st| {
                    st.query_map([s], |r| r.get::<_, String>(0))?
                        .collect::<Result<Vec<_>, _>>()
                }),
            None => db
                .prepare_cached("SELECT doc FROM calls ORDER BY created_at, id")
                .and_then(|mut st| {
                    st.query_map([], |r| r.get::<_, String>(0))?
                        .collect::<Result<Vec<_>, _>>()
                }),
        };
        rows.unwrap_or_default()
            .iter()
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect()
    }

    pub(crate) fn call(&self, id: &str) -> Option<crate::calls::CallRecord> {
        let doc: String = self
            .db()
            .query_row("SELECT doc FROM calls WHERE id = ?1", [id], |r| r.get(0))
            .ok()?;
        serde_json::from_str(&doc).ok()
    }

    /// Calls a previous run left live: recorded as ended with `serverRestart`; returned.
    pub(crate) fn end_stale_calls(&self, now_ms: u64) -> Vec<crate::calls::CallRecord> {
        let docs: Vec<String> = {
            let db = self.db();
            db.prepare("SELECT doc FROM calls WHERE status != 'ended' ORDER BY created_at, id")
                .and_then(|mut st| {
                    st.query_map([], |r| r.get::<_, String>(0))?
                        .collect::<Result<Vec<_>, _>>()
                })
                .unwrap_or_default()
        };
        let mut ended = Vec::new();
        for d in docs {
            let Ok(mut c) = serde_json::from_str::<crate::calls::CallRecord>(&d) else {
                continue;
            };
            c.end(now_ms, crate::calls::EndReason::ServerRestart, None);
            self.put_call(&c);
            ended.push(c);
        }
        ended
    }

    /// The session a code belongs to.
    pub(crate) fn session_for_pin(&self, pin: &str) -> Option<String> {
        self.db()
            .query_row("SELECT session_id FROM dialin WHERE pin = ?1", [pin], |r| {
                r.get(0)
            })
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_durable_and_validated() {
        let dir = std::env::temp_dir().join(format!("pb-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        {
            let s = Store::open(&path, 7).unwrap();
            let a = s.set_pin("a", None, 1).unwrap();
            assert_eq!(a.pin.len(), 6);
            assert!(!a.pin.starts_with('0'));
            assert_eq!(s.set_pin("b", Some(&a.pin), 2), Err(PinError::Taken));
            assert_eq!(s.set_pin("b", Some("12a4"), 2), Err(PinError::Invalid));
            assert_eq!(s.set_pin("b", Some("123"), 2), Err(PinError::Invalid));
            s.set_pin("b", Some("4829130"), 3).unwrap();
            // Setting again replaces the session's code.
            s.set_pin("b", Some("4829131"), 4).unwrap();
            assert_eq!(s.session_for_pin("4829130"), None);
        }
        let s = Store::open(&path, 8).unwrap();
        assert_eq!(s.session_for_pin("4829131").as_deref(), Some("b"));
        assert_eq!(s.pin("b").unwrap().created_at, 4);
        assert!(s.delete_pin("b"));
        assert!(!s.delete_pin("b"));
        assert_eq!(s.pin("b"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
