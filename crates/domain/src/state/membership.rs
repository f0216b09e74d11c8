//! The fold of kindergartens and groups: names, membership, leads, categories, designations.

use super::*;

impl State {
    /// Apply an event of this part; false if it belongs elsewhere.
    pub(super) fn fold_membership(&mut self, event: &Event, origin: Origin) -> bool {
        let seq = origin.seq;
        match event {
            Event::KindergartenRegistered(e) => {
                self.reserve_kg_id(e.kindergarten);
                let mut names = Timeline::default();
                names.insert(e.on, seq, (e.name.clone(), e.provisional));
                let mut category = Timeline::default();
                category.insert(e.on, seq, e.category);
                self.kg_names.insert(e.name.clone(), e.kindergarten);
                self.kindergartens.insert(
                    e.kindergarten,
                    Kindergarten {
                        id: e.kindergarten,
                        registered: e.on,
                        names,
                        full_name: e.full_name.clone(),
                        ownership: e.ownership,
                        category,
                        membership: Timeline::default(),
                        high_quality: Timeline::default(),
                        cooperative: {
                            let mut c = Timeline::default();
                            if e.cooperative_principal {
                                c.insert(e.on, seq, true);
                            }
                            c
                        },
                        principal: Timeline::default(),
                    },
                );
            }
            Event::KindergartenRenamed(e) => {
                if let Some(k) = self.kindergartens.get_mut(&e.kindergarten) {
                    k.names
                        .insert(e.on, seq, (e.new_name.clone(), e.provisional));
                    self.kg_names.insert(e.new_name.clone(), e.kindergarten);
                }
            }
            Event::GroupFounded(e) => {
                let mut leads = Timeline::default();
                leads.insert(e.on, seq, e.lead);
                let mut lead_excepted = Timeline::default();
                lead_excepted.insert(e.on, seq, e.exception.is_some());
                self.groups.insert(
                    e.group.clone(),
                    Group {
                        name: e.group.clone(),
                        kind: e.kind,
                        founded: e.on,
                        leads,
                        lead_excepted,
                        secretariat: vec![],
                        documents: vec![],
                        experts: vec![],
                    },
                );
                if let Some(k) = self.kindergartens.get_mut(&e.lead) {
                    k.membership
                        .insert(e.on, seq, Membership::Join(e.group.clone()));
                }
            }
            Event::KindergartenJoined(e) => {
                self.member_step(e.kindergarten, e.on, seq, Membership::Join(e.group.clone()))
            }
            Event::KindergartenLeft(e) => self.member_step(
                e.kindergarten,
                e.on,
                seq,
                Membership::Leave(e.group.clone()),
            ),
            Event::KindergartenTransferred(e) => self.member_step(
                e.kindergarten,
                e.on,
                seq,
                Membership::Transfer {
                    from: e.from_group.clone(),
                    to: e.to_group.clone(),
                },
            ),
            Event::LeadChanged(e) => {
                if let Some(g) = self.groups.get_mut(&e.group) {
                    g.leads.insert(e.on, seq, e.lead);
                    g.lead_excepted.insert(e.on, seq, e.exception.is_some());
                }
            }
            Event::KindergartenRegraded(e) => {
                if let Some(k) = self.kindergartens.get_mut(&e.kindergarten) {
                    k.category.insert(e.on, seq, e.category);
                }
            }
            Event::HighQualityDesignated(e) => {
                if let Some(k) = self.kindergartens.get_mut(&e.kindergarten) {
                    k.high_quality.insert(e.on, seq, (true, origin));
                }
            }
            Event::HighQualityRevoked(e) => {
                if let Some(k) = self.kindergartens.get_mut(&e.kindergarten) {
                    k.high_quality.insert(e.on, seq, (false, origin));
                }
            }
            Event::CooperativePrincipalDesignated(e) => {
                if let Some(k) = self.kindergartens.get_mut(&e.kindergarten) {
                    k.cooperative.insert(e.on, seq, true);
                }
            }
            _ => return false,
        }
        true
    }
}
