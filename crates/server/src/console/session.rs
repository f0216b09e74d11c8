//! Console sessions: a token is typed once at `/login`; the browser then holds a random
//! session id in a cookie. The server keeps only the id's SHA-256, the principal and the
//! SHA-256 of the token it was opened with — every page checks that token again against the
//! published ledger, so a revocation ends its sessions at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// The cookie's name over plain HTTP (loopback only).
pub const COOKIE: &str = "eduledger_session";
/// The cookie's name over TLS: a browser sets a `__Host-` cookie only if it is Secure, for
/// this host alone and path `/` — a neighbouring intranet host cannot plant one.
pub const SECURE_COOKIE: &str = "__Host-eduledger_session";
/// Sessions held at once; opening one more closes the least recently used.
pub const MAX_SESSIONS: usize = 10_000;
/// Sessions one token may hold; opening one more closes that token's least recently used
/// (so one token cannot push everyone else's sessions out).
pub const MAX_PER_TOKEN: usize = 16;
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
    /// Counts sessions closed: a feed re-checks its session when this moves.
    closed: std::sync::atomic::AtomicU64,
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
        let before = open.by_key.len();
        open.by_key.retain(|_, s| alive(s, now));
        let own: Vec<([u8; 32], u64)> = open
            .by_key
            .iter()
            .filter(|(_, s)| s.token_sha256 == token_sha256)
            .map(|(k, s)| (*k, s.turn))
            .collect();
        if own.len() >= MAX_PER_TOKEN
            && let Some((oldest, _)) = own.iter().min_by_key(|(_, turn)| *turn)
        {
            open.by_key.remove(oldest);
        } else if open.by_key.len() >= MAX_SESSIONS
            && let Some(oldest) = open
                .by_key
                .iter()
                .min_by_key(|(_, s)| s.turn)
                .map(|(k, _)| *k)
        {
            open.by_key.remove(&oldest);
        }
        if open.by_key.len() < before {
            // sessions expired or made room: their feeds must look again
            self.closed
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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

    /// Whether a session is open, without counting this as a use (a live feed asks this
    /// every few seconds; an unattended page must still expire).
    pub fn peek(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.by_key.get(&key(id)).filter(|s| alive(s, now)).cloned()
    }

    /// Close a session (logout, or its token no longer valid).
    pub fn close(&self, id: &str) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        // (only a session that was open moves the count: an unknown id, which anyone can
        // send, makes no feed look again)
        if open.by_key.remove(&key(id)).is_some() {
            self.closed
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// How many sessions were closed so far.
    pub fn closed(&self) -> u64 {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.duration_since(s.used) < IDLE && now.duration_since(s.opened) < LIFETIME
}

fn name(secure: bool) -> &'static str {
    if secure { SECURE_COOKIE } else { COOKIE }
}

/// The session id a request's `Cookie` headers carry, if exactly one cookie of ours is there
/// and it looks like an id (64 hex digits: anything else is not looked up). Two are none:
/// one of them was planted.
pub fn cookie(headers: &axum::http::HeaderMap, secure: bool) -> Option<String> {
    let mut ours = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name(secure))
        .map(|(_, value)| value.trim().to_owned());
    let id = ours.next()?;
    if ours.next().is_some() {
        return None;
    }
    Some(id).filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value for a new session (`__Host-` and Secure when served over TLS).
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        name(secure),
        LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        name(secure),
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
    fn a_peek_is_not_a_use() {
        let s = Sessions::default();
        let a = s.open("a".into()).unwrap();
        let b = s.open("a2".into()).unwrap();
        let before = s.closed();
        // `a` was opened first; peeking at it does not make it the more recent
        assert!(s.peek(&a).is_some());
        let turn = |id: &str| {
            let open = s.open.lock().unwrap();
            open.by_key.get(&key(id)).unwrap().turn
        };
        assert!(turn(&a) < turn(&b));
        s.close(&a);
        assert!(s.peek(&a).is_none());
        assert_eq!(s.closed(), before + 1);
        // closing what is not open moves nothing
        s.close(&a);
        s.close(&"f".repeat(64));
        assert_eq!(s.closed(), before + 1);
    }

    #[test]
    fn one_token_cannot_close_the_sessions_of_another() {
        let s = Sessions::default();
        let victim = s.open("victim".into()).unwrap();
        let mine: Vec<String> = (0..MAX_SESSIONS + 5)
            .map(|_| s.open("attacker".into()).unwrap())
            .collect();
        assert!(s.get(&victim).is_some());
        // the attacker's own oldest went instead: only its newest MAX_PER_TOKEN are open
        let open = mine.iter().filter(|id| s.get(id).is_some()).count();
        assert_eq!(open, MAX_PER_TOKEN);
        assert!(s.get(mine.last().unwrap()).is_some());
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
        assert_eq!(cookie(&h, false), Some(id.clone()));
        // under TLS only the __Host- cookie counts
        assert_eq!(cookie(&h, true), None);
        h.insert(
            axum::http::header::COOKIE,
            format!("{COOKIE}=../../etc").parse().unwrap(),
        );
        assert_eq!(cookie(&h, false), None);
        // two of ours: none (one was planted)
        h.insert(
            axum::http::header::COOKIE,
            format!("{COOKIE}={id}; {COOKIE}={}", "b".repeat(64))
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie(&h, false), None);
        assert!(set_cookie("x", true).starts_with("__Host-eduledger_session=x;"));
        assert!(set_cookie("x", true).contains("; Secure"));
        assert!(!set_cookie("x", false).contains("Secure"));
        assert!(set_cookie("x", false).contains("HttpOnly; SameSite=Strict"));
    }
}
