//! Access: a principal holds one grant at a time, a token is given once, and only a
//! recorder is limited to groups (SERVER.md "Who may do what").

use super::*;

fn refused(principal: &PrincipalName, detail: String) -> DomainError {
    DomainError::Access {
        principal: principal.to_string(),
        detail,
    }
}

/// Checks of this part that read best against the state before the event.
pub(super) fn pre(s: &State, event: &Event) -> R {
    match event {
        Event::AccessGranted(e) => {
            if e.role != Role::Recorder && !e.groups.is_empty() {
                return Err(refused(
                    &e.principal,
                    format!(
                        "only a recorder is limited to groups; an {} acts on every group",
                        e.role
                    ),
                ));
            }
            let mut seen = BTreeSet::new();
            for g in &e.groups {
                group_alive(s, g, e.on)?;
                if !seen.insert(g) {
                    return Err(refused(&e.principal, format!("group {g} is listed twice")));
                }
            }
            if let Some(held) = s
                .principals
                .get(&e.principal)
                .and_then(|grants| grants.iter().find(|g| g.until.is_none_or(|u| u > e.on)))
            {
                return Err(refused(
                    &e.principal,
                    match held.until {
                        None => format!(
                            "it holds access as {} from {}; revoke that first",
                            held.role, held.from
                        ),
                        Some(until) => format!(
                            "a grant from {} would overlap the one it held as {} from {} to {}: grants of one principal do not overlap",
                            e.on, held.role, held.from, until
                        ),
                    },
                ));
            }
            let reused = s.tokens_retired.contains(&e.token_sha256)
                || s.principals
                    .values()
                    .flatten()
                    .any(|g| g.token_sha256 == e.token_sha256);
            if reused {
                return Err(refused(
                    &e.principal,
                    "this token was given before; every grant needs a new token".into(),
                ));
            }
        }
        Event::AccessRevoked(e) => {
            let held = s
                .principals
                .get(&e.principal)
                .and_then(|grants| grants.iter().find(|g| g.until.is_none()));
            match held {
                None => {
                    return Err(refused(&e.principal, "it holds no access to revoke".into()));
                }
                Some(g) if e.on < g.from => {
                    return Err(refused(
                        &e.principal,
                        format!("its access begins on {}, after {}", g.from, e.on),
                    ));
                }
                Some(_) => {}
            }
        }
        _ => {}
    }
    Ok(())
}
