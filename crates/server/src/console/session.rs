//! Console sessions: a token is typed once at `/login`; the browser then holds a random
//! session id in a cookie. The server keeps only the id's SHA-256, the principal and the
//! SHA-256 of the token it was opened with — every page checks that token again against the
//! published ledger, so a revocation ends its sessions at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// The cookie's name.
pub const COOKIE: &str = "eduledger_session";
/// Sessions held at once; opening one more closes the least recently used.
pub const MAX_SESSIONS: usize = 10_000;
/// A session unused this long is closed.
pub const IDLE: Duration = Duration::from_secs(8 * 3600);
/// No session outlives this, used or not (a working day and then some).
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// One open session.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 (hex) of the token the session was opened with.
    pub token_sha256: String,
    opened: Instant,
    used: Instant,
    /// When it was last used, as a count (instants can tie; this orders the eviction).
    turn: u64,
}

/// Every open session, by the SHA-256 of its id (the id itself is never kept).
#[derive(Default)]
pub struct Sessions {
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    by_key: HashMap<[u8; 32], Session>,
    turns: u64,
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Open a session for a token already checked; the id for the cookie.
    pub fn open(&self, token_sha256: String) -> Result<String, String> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| format!("no random bytes for a session: {e}"))?;
        let id = hex::encode(secret);
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.by_key.retain(|_, s| alive(s, now));
        if open.by_key.len() >= MAX_SESSIONS
            && let Some(oldest) = open
                .by_key
                .iter()
                .min_by_key(|(_, s)| s.turn)
                .map(|(k, _)| *k)
        {
            open.by_key.remove(&oldest);
        }
        open.turns += 1;
        let turn = open.turns;
        open.by_key.insert(
            key(&id),
            Session {
                token_sha256,
                opened: now,
                used: now,
                turn,
            },
        );
        Ok(id)
    }

    /// The session an id names, if open and not expired (then marked as used).
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let k = key(id);
        open.turns += 1;
        let turn = open.turns;
        match open.by_key.get_mut(&k) {
            Some(s) if alive(s, now) => {
                s.used = now;
                s.turn = turn;
                Some(s.clone())
            }
            Some(_) => {
                open.by_key.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Close a session (logout, or its token no longer valid).
    pub fn close(&self, id: &str) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.by_key.remove(&key(id));
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.duration_since(s.used) < IDLE && now.duration_since(s.opened) < LIFETIME
}

/// The session id a request's `Cookie` headers carry, if it looks like one of ours (64 hex
/// digits: anything else is not looked up).
pub fn cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value for a new session (Secure when served over TLS).
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_session_is_gone_and_another_id_is_not_found() {
        let s = Sessions::default();
        let id = s.open("abc".into()).unwrap();
        assert_eq!(s.get(&id).unwrap().token_sha256, "abc");
        assert!(s.get(&"0".repeat(64)).is_none());
        s.close(&id);
        assert!(s.get(&id).is_none());
    }

    #[test]
    fn the_least_recently_used_session_makes_room() {
        let s = Sessions::default();
        let first = s.open("first".into()).unwrap();
        let ids: Vec<String> = (1..MAX_SESSIONS)
            .map(|i| s.open(format!("t{i}")).unwrap())
            .collect();
        // the first is used again, so the second is now the least recently used
        assert!(s.get(&first).is_some());
        let _ = s.open("one more".into()).unwrap();
        assert!(s.get(&first).is_some());
        assert!(s.get(&ids[0]).is_none());
        assert!(s.get(&ids[1]).is_some());
    }

    #[test]
    fn only_our_cookie_with_a_well_formed_id_is_read() {
        let mut h = axum::http::HeaderMap::new();
        let id = "a".repeat(64);
        h.insert(
            axum::http::header::COOKIE,
            format!("other=1; {COOKIE}={id}").parse().unwrap(),
        );
        assert_eq!(cookie(&h), Some(id));
        h.insert(
            axum::http::header::COOKIE,
            format!("{COOKIE}=../../etc").parse().unwrap(),
        );
        assert_eq!(cookie(&h), None);
        assert!(set_cookie("x", true).contains("; Secure"));
        assert!(!set_cookie("x", false).contains("Secure"));
        assert!(set_cookie("x", false).contains("HttpOnly; SameSite=Strict"));
    }
}
