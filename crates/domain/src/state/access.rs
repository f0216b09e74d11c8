//! Access: who may act through the server, from when, as what (SERVER.md "Who may do what").

use super::*;

impl State {
    pub(super) fn fold_access(&mut self, event: &Event, origin: Origin) -> bool {
        match event {
            Event::AccessGranted(e) => {
                self.principals
                    .entry(e.principal.clone())
                    .or_default()
                    .push(Grant {
                        role: e.role,
                        groups: e.groups.clone(),
                        token_sha256: e.token_sha256.clone(),
                        from: e.on,
                        until: None,
                        origin,
                    });
            }
            Event::AccessRevoked(e) => {
                if let Some(grant) = self
                    .principals
                    .get_mut(&e.principal)
                    .and_then(|grants| grants.iter_mut().rev().find(|g| g.in_force(e.on)))
                {
                    grant.until = Some(e.on);
                }
            }
            _ => return false,
        }
        true
    }

    /// The grant `principal` holds on `date`, if any.
    pub fn grant_on(&self, principal: &PrincipalName, date: Date) -> Option<&Grant> {
        self.principals
            .get(principal)
            .and_then(|grants| grants.iter().rev().find(|g| g.in_force(date)))
    }

    /// Who holds the token whose SHA-256 is `token_sha256` on `date`, and as what. To
    /// authenticate a request, `date` is today in the ledger's zone — never a command's own
    /// date, or a revoked token could still record back-dated facts.
    pub fn principal_by_token(
        &self,
        token_sha256: &str,
        date: Date,
    ) -> Option<(&PrincipalName, &Grant)> {
        self.principals.iter().find_map(|(name, grants)| {
            grants
                .iter()
                .find(|g| g.token_sha256.as_str() == token_sha256 && g.in_force(date))
                .map(|g| (name, g))
        })
    }
}
