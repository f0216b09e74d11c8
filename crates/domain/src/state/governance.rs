//! The fold of governance: principals, the secretariat, documents, experts, points rules, and the corrections and retractions recorded (as overrides).

use super::*;

impl State {
    /// Apply an event of this part; false if it belongs elsewhere.
    pub(super) fn fold_governance(&mut self, event: &Event, origin: Origin) -> bool {
        let seq = origin.seq;
        match event {
            Event::PrincipalAppointed(e) => {
                if let Some(k) = self.kindergartens.get_mut(&e.kindergarten) {
                    k.principal.insert(e.on, seq, Some(e.staff_no.clone()));
                }
            }
            Event::PrincipalEnded(e) => {
                if let Some(k) = self.kindergartens.get_mut(&e.kindergarten) {
                    k.principal.insert(e.on, seq, None);
                }
            }
            Event::SecretariatAppointed(e) => {
                if let Some(g) = self.groups.get_mut(&e.group) {
                    g.secretariat.push(Term {
                        staff_no: e.staff_no.clone(),
                        role: e.role.clone(),
                        from: e.from,
                        to: e.to,
                        dismissed: None,
                    });
                }
            }
            Event::SecretariatDismissed(e) => {
                if let Some(g) = self.groups.get_mut(&e.group)
                    && let Some(t) = g
                        .secretariat
                        .iter_mut()
                        .filter(|t| {
                            t.staff_no == e.staff_no && t.dismissed.is_none() && t.from <= e.on
                        })
                        .last()
                {
                    t.dismissed = Some(e.on);
                }
            }
            Event::DocumentAdopted(e) => {
                if let Some(g) = self.groups.get_mut(&e.group) {
                    g.documents.push(Document {
                        doc_kind: e.doc_kind,
                        title: e.title.clone(),
                        period: e.period.clone(),
                        sha256: e.sha256.clone(),
                        on: e.on,
                        origin,
                    });
                }
            }
            Event::ExpertAssigned(e) => {
                if let Some(g) = self.groups.get_mut(&e.group) {
                    g.experts.push(ExpertTerm {
                        expert: e.expert.clone(),
                        affiliation: e.affiliation.clone(),
                        from: e.from,
                        to: e.to,
                    });
                }
            }
            Event::PointsRulesAdopted(e) => {
                self.rules.entry(e.year).or_default().push(RulesAdoption {
                    rules: e.rules.clone(),
                    sha256: e.sha256.clone(),
                    on: e.on,
                    origin,
                });
            }
            Event::EventCorrected(e) => {
                self.overrides.insert(
                    seq,
                    Override {
                        target: e.target_seq,
                        replacement: Some((
                            e.replacement_type.clone(),
                            e.replacement_version,
                            e.replacement_payload.clone(),
                        )),
                    },
                );
            }
            Event::EventRetracted(e) => {
                self.overrides.insert(
                    seq,
                    Override {
                        target: e.target_seq,
                        replacement: None,
                    },
                );
            }
            _ => return false,
        }
        true
    }
}
