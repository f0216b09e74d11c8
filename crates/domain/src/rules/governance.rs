//! Governance: principals (the council derives from them), the secretariat, documents, experts, points rules.

use super::*;

/// Checks of this part that read best against the state before the event.
pub(super) fn pre(s: &State, event: &Event) -> R {
    match event {
        Event::PrincipalAppointed(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            teacher_in_service(s, &e.staff_no, e.on)?;
        }
        Event::PrincipalEnded(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            if kg(s, e.kindergarten)?.principal_on(e.on).is_none() {
                return Err(DomainError::NoPrincipal {
                    kindergarten: s.kg_label(e.kindergarten),
                    on: e.on,
                });
            }
        }
        Event::SecretariatAppointed(e) => {
            group_alive(s, &e.group, e.from)?;
            order("to", e.to, "from", e.from)?;
            teacher_in_service(s, &e.staff_no, e.from)?;
        }
        Event::SecretariatDismissed(e) => {
            let g = group(s, &e.group)?;
            let serving = g.secretariat.iter().any(|t| {
                t.staff_no == e.staff_no && t.dismissed.is_none() && t.from <= e.on && e.on <= t.to
            });
            if !serving {
                return Err(DomainError::NoSecretariatTerm {
                    staff_no: e.staff_no.to_string(),
                    group: e.group.to_string(),
                    on: e.on,
                });
            }
        }
        Event::DocumentAdopted(e) => group_alive(s, &e.group, e.on)?,
        Event::ExpertAssigned(e) => {
            group_alive(s, &e.group, e.from)?;
            order("to", e.to, "from", e.from)?;
        }
        Event::PointsRulesAdopted(e) => {
            let set = crate::points::RuleSet::parse(&e.rules)?;
            if set.year != e.year {
                return Err(DomainError::Rules {
                    line: 1,
                    reason: format!(
                        "the rules say year = {}, but they are adopted for {}",
                        set.year, e.year
                    ),
                });
            }
            if crate::points::sha256_hex(&e.rules) != e.sha256 {
                return Err(DomainError::field(
                    "sha256",
                    "does not match the rules text",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}
