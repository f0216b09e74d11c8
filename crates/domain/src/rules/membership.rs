//! Kindergartens and groups: registration, names, membership, leads, categories, designations.

use std::collections::BTreeSet;

use super::*;

/// Checks of this part that read best against the state before the event.
pub(super) fn pre(s: &State, event: &Event) -> R {
    match event {
        Event::KindergartenRegistered(e) => {
            if s.kindergartens.contains_key(&e.kindergarten) {
                return Err(DomainError::AlreadyExists {
                    kind: "kindergarten id",
                    name: e.kindergarten.to_string(),
                });
            }
            if s.kg_names.contains_key(&e.name) {
                return Err(DomainError::AlreadyExists {
                    kind: "kindergarten name",
                    name: e.name.to_string(),
                });
            }
        }
        Event::KindergartenRenamed(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            if s.kg_names.contains_key(&e.new_name) {
                return Err(DomainError::AlreadyExists {
                    kind: "kindergarten name",
                    name: e.new_name.to_string(),
                });
            }
        }
        Event::GroupFounded(e) => {
            if s.groups.contains_key(&e.group) {
                return Err(DomainError::AlreadyExists {
                    kind: "group",
                    name: e.group.to_string(),
                });
            }
            kg_alive(s, e.lead, e.on)?;
            if let Some(g) = kg(s, e.lead)?.group_on(e.on) {
                return Err(DomainError::AlreadyInGroup {
                    kindergarten: s.kg_label(e.lead),
                    group: g.to_string(),
                    on: e.on,
                });
            }
            lead_eligible(s, e.lead, e.on, e.exception.is_some())?;
        }
        Event::KindergartenJoined(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            group_alive(s, &e.group, e.on)?;
            if let Some(g) = kg(s, e.kindergarten)?.group_on(e.on) {
                return Err(DomainError::AlreadyInGroup {
                    kindergarten: s.kg_label(e.kindergarten),
                    group: g.to_string(),
                    on: e.on,
                });
            }
        }
        Event::KindergartenLeft(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            group(s, &e.group)?;
            if kg(s, e.kindergarten)?.group_on(e.on) != Some(&e.group) {
                return Err(DomainError::NotInGroup {
                    kindergarten: s.kg_label(e.kindergarten),
                    group: e.group.to_string(),
                    on: e.on,
                });
            }
        }
        Event::KindergartenTransferred(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            group_alive(s, &e.to_group, e.on)?;
            if kg(s, e.kindergarten)?.group_on(e.on) != Some(&e.from_group) {
                return Err(DomainError::NotInGroup {
                    kindergarten: s.kg_label(e.kindergarten),
                    group: e.from_group.to_string(),
                    on: e.on,
                });
            }
            if e.from_group == e.to_group {
                return Err(DomainError::AlreadyInGroup {
                    kindergarten: s.kg_label(e.kindergarten),
                    group: e.to_group.to_string(),
                    on: e.on,
                });
            }
        }
        Event::LeadChanged(e) => {
            group_alive(s, &e.group, e.on)?;
            kg_alive(s, e.lead, e.on)?;
            if kg(s, e.lead)?.group_on(e.on) != Some(&e.group) {
                return Err(DomainError::LeadNotMember {
                    kindergarten: s.kg_label(e.lead),
                    group: e.group.to_string(),
                    on: e.on,
                });
            }
            lead_eligible(s, e.lead, e.on, e.exception.is_some())?;
        }
        Event::CooperativePrincipalDesignated(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            if kg(s, e.kindergarten)?
                .cooperative
                .at(e.on)
                .copied()
                .unwrap_or(false)
            {
                return Err(DomainError::field(
                    "kindergarten",
                    format!(
                        "{} is already a cooperative principal on {}",
                        s.kg_label(e.kindergarten),
                        e.on
                    ),
                ));
            }
        }
        Event::KindergartenRegraded(e) => kg_alive(s, e.kindergarten, e.on)?,
        Event::HighQualityDesignated(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            if kg(s, e.kindergarten)?.high_quality_on(e.on) {
                return Err(DomainError::HighQuality {
                    kindergarten: s.kg_label(e.kindergarten),
                    detail: "is already designated high-quality",
                    on: e.on,
                });
            }
        }
        Event::HighQualityRevoked(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            if !kg(s, e.kindergarten)?.high_quality_on(e.on) {
                return Err(DomainError::HighQuality {
                    kindergarten: s.kg_label(e.kindergarten),
                    detail: "is not designated high-quality",
                    on: e.on,
                });
            }
        }
        _ => {}
    }
    Ok(())
}

pub(super) fn kg_invariants(
    s: &State,
    id: KgId,
    deep: bool,
    groups: &mut BTreeSet<GroupName>,
    teachers: &mut BTreeSet<StaffNo>,
    rotations: &mut BTreeSet<RecordId>,
    activities: &mut BTreeSet<RecordId>,
) -> R {
    let k = kg(s, id)?;
    let name = k.current_name().to_string();
    let mut current: Option<&GroupName> = None;
    for step in k.membership.iter() {
        kg_alive(s, id, step.on)?;
        let broken = |detail: String| DomainError::MembershipHistory {
            kindergarten: name.clone(),
            on: step.on,
            detail,
        };
        match &step.value {
            Membership::Join(g) => {
                group_alive(s, g, step.on)?;
                if let Some(c) = current {
                    return Err(broken(format!("it would join {g} while still in {c}")));
                }
                groups.insert(g.clone());
            }
            Membership::Leave(g) => {
                if current != Some(g) {
                    return Err(broken(format!(
                        "it would leave {g} while in {}",
                        group_label(current)
                    )));
                }
            }
            Membership::Transfer { from, to } => {
                group_alive(s, to, step.on)?;
                if current != Some(from) {
                    return Err(broken(format!(
                        "it would transfer out of {from} while in {}",
                        group_label(current)
                    )));
                }
                groups.insert(from.clone());
                groups.insert(to.clone());
            }
        }
        current = step.value.group_after();
    }
    let mut designated = false;
    for step in k.high_quality.iter() {
        kg_alive(s, id, step.on)?;
        let (now, _) = step.value;
        if now == designated {
            return Err(DomainError::HighQuality {
                kindergarten: name.clone(),
                detail: if now {
                    "would be designated high-quality twice"
                } else {
                    "would lose a high-quality designation it does not have"
                },
                on: step.on,
            });
        }
        designated = now;
    }
    for step in k.principal.iter() {
        kg_alive(s, id, step.on)?;
    }
    for step in k.names.iter() {
        kg_alive(s, id, step.on)?;
    }
    for step in k.category.iter() {
        kg_alive(s, id, step.on)?;
    }
    if !deep {
        return Ok(());
    }
    if let Some(a) = s.activities_by_kg.get(&id) {
        activities.extend(a.iter().cloned());
    }
    if let Some(r) = s.rotations_by_host.get(&id) {
        rotations.extend(r.iter().cloned());
    }
    if let Some(t) = s.teachers_by_home.get(&id) {
        teachers.extend(t.iter().cloned());
    }
    Ok(())
}

pub(super) fn group_invariants(s: &State, g: &GroupName) -> R {
    let gr = group(s, g)?;
    let leads = &gr.leads.0;
    for (i, lead) in leads.iter().enumerate() {
        group_alive(s, g, lead.on)?;
        let k = kg(s, lead.value)?;
        // eligibility holds on the day a lead is named, whatever is recorded later about
        // that day (a back-dated regrade, a retracted designation)
        let excepted = gr.lead_excepted.0.get(i).is_none_or(|d| d.value);
        lead_eligible(s, lead.value, lead.on, excepted)?;
        if k.group_on(lead.on) != Some(g) {
            return Err(DomainError::LeadNotMember {
                kindergarten: k.current_name().to_string(),
                group: g.to_string(),
                on: lead.on,
            });
        }
        let until = leads.get(i + 1).map(|n| n.on);
        for step in k.membership.iter() {
            if step.on > lead.on
                && until.is_none_or(|u| step.on < u)
                && k.group_on(step.on) != Some(g)
            {
                return Err(DomainError::LeadCannotLeave {
                    kindergarten: k.current_name().to_string(),
                    group: g.to_string(),
                    on: step.on,
                });
            }
        }
    }
    for t in &gr.secretariat {
        group_alive(s, g, t.from)?;
    }
    for d in &gr.documents {
        group_alive(s, g, d.on)?;
    }
    Ok(())
}

/// 1+X (§三(一)): a lead is a 市示范园 or a 合作办园主体园 on the day it is named, unless the
/// command carries an approved exception (the roster's leads carry the plan itself).
fn lead_eligible(s: &State, lead: KgId, on: Date, excepted: bool) -> R {
    let k = kg(s, lead)?;
    if excepted || k.lead_eligible_on(on) {
        return Ok(());
    }
    Err(DomainError::LeadNotEligible {
        kindergarten: s.kg_label(lead),
        category: k.category_on(on).code(),
        on,
    })
}
