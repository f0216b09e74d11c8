//! A seeded synthetic history at any scale, for benchmarks: kindergartens in groups,
//! teachers, rotations, trainings with attendance and recognition, activities, projects,
//! designations, transfers — the same shapes the bureau records, generated in date order so
//! that every rule holds (a test folds a small one through `check` to prove it).
//!
//! Shanghai scale (`Scale::shanghai()`): about 1,600 kindergartens in 110 groups, 60,000
//! staff, 10 years, about 5 million events (most of them attendance records).

use eduledger_domain::event::*;
use eduledger_domain::values::*;
use eduledger_store::{
    Durability, ExpectedVersion, Metadata, NewEvent, Store, StoreError, StreamAppend,
};

/// How big a history to make.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Kindergartens.
    pub kindergartens: u32,
    /// Groups.
    pub groups: u32,
    /// Teachers.
    pub teachers: u32,
    /// Years, from 2016.
    pub years: i32,
    /// Trainings each teacher attends per year, on average.
    pub trainings_per_teacher: u32,
    /// Seed.
    pub seed: u64,
}

impl Scale {
    /// All of Shanghai on one machine: ≈ 5 million events.
    pub fn shanghai() -> Scale {
        Scale {
            kindergartens: 1600,
            groups: 110,
            teachers: 60_000,
            years: 10,
            trainings_per_teacher: 7,
            seed: 2023,
        }
    }
    /// A district: ≈ 70 kindergartens, a few thousand teachers.
    pub fn district() -> Scale {
        Scale {
            kindergartens: 70,
            groups: 7,
            teachers: 2000,
            years: 3,
            trainings_per_teacher: 4,
            seed: 7,
        }
    }
    /// A small history for tests.
    pub fn tiny() -> Scale {
        Scale {
            kindergartens: 24,
            groups: 3,
            teachers: 120,
            years: 2,
            trainings_per_teacher: 2,
            seed: 1,
        }
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

fn d(y: i32, m: u32, day: u32) -> Date {
    Date::ymd(y, m, day).unwrap_or(Date::jan1(y))
}

fn text(s: String) -> Text {
    Text::new(s).unwrap_or_else(|_| Text::new("x").unwrap_or_else(|_| unreachable!()))
}

fn rid(s: String) -> RecordId {
    RecordId::new(s).unwrap_or_else(|_| RecordId::new("x").unwrap_or_else(|_| unreachable!()))
}

/// Generate the history, in the order it would be recorded; `emit` receives each event.
pub fn generate(scale: Scale, emit: &mut dyn FnMut(Event)) {
    let mut rng = Rng(scale.seed.max(1));
    let start = d(2016, 1, 1);
    let kgs: Vec<KgId> = (1..=scale.kindergartens).map(KgId).collect();
    let groups: Vec<GroupName> = (0..scale.groups)
        .map(|g| {
            GroupName::new(format!("第{:03}学前教育集团", g + 1)).unwrap_or_else(|_| unreachable!())
        })
        .collect();
    // group of each kindergarten, and each group's lead (never transferred)
    let mut group_of: Vec<usize> = (0..kgs.len()).map(|i| i % groups.len()).collect();
    let leads: Vec<usize> = (0..groups.len()).collect();
    for (i, k) in kgs.iter().enumerate() {
        let cats = [
            Category::FirstClass,
            Category::SecondClass,
            Category::SecondClass,
            Category::NewBuilt,
            Category::MunicipalDemonstration,
        ];
        emit(Event::KindergartenRegistered(KindergartenRegistered {
            kindergarten: *k,
            name: KgName::new(format!("园{:04}", i + 1)).unwrap_or_else(|_| unreachable!()),
            full_name: None,
            category: cats[(rng.below(cats.len() as u64)) as usize],
            ownership: if i % 9 == 8 {
                Ownership::Private
            } else {
                Ownership::Public
            },
            provisional: false,
            on: start,
            cooperative_principal: false,
        }));
    }
    for (g, name) in groups.iter().enumerate() {
        emit(Event::GroupFounded(GroupFounded {
            group: name.clone(),
            kind: GroupKind::Group,
            lead: kgs[leads[g]],
            on: start,
            // like the roster's: named by the plan
            exception: Some(eduledger_domain::roster::roster_lead_authority()),
        }));
    }
    for (i, k) in kgs.iter().enumerate() {
        if i >= groups.len() {
            emit(Event::KindergartenJoined(KindergartenJoined {
                kindergarten: *k,
                group: groups[group_of[i]].clone(),
                on: start,
            }));
        }
    }
    let staff: Vec<StaffNo> = (0..scale.teachers)
        .map(|t| StaffNo::new(format!("S{:06}", t + 1)).unwrap_or_else(|_| unreachable!()))
        .collect();
    let mut home: Vec<usize> = (0..staff.len())
        .map(|_| rng.below(kgs.len() as u64) as usize)
        .collect();
    for (t, s) in staff.iter().enumerate() {
        emit(Event::TeacherRegistered(TeacherRegistered {
            staff_no: s.clone(),
            name: text(format!("教师{t}")),
            home: kgs[home[t]],
            on: start,
        }));
    }
    for (i, k) in kgs.iter().enumerate() {
        let p = staff[(i * 37) % staff.len()].clone();
        emit(Event::PrincipalAppointed(PrincipalAppointed {
            kindergarten: *k,
            staff_no: p,
            on: start,
        }));
    }
    let mut designated = vec![false; kgs.len()];
    let mut training_no = 0u64;
    let mut rotation_no = 0u64;
    for y in 2016..2016 + scale.years {
        emit(Event::PointsRulesAdopted(PointsRulesAdopted {
            year: y,
            rules: format!(
                "year = {y}\n[[rule]]\nid = \"all\"\nfact = \"activity_held\"\npoints = 1\ncap = 40\n[[rule]]\nid = \"projects\"\nfact = \"project_completed\"\npoints = 10\n[[rule]]\nid = \"rotations\"\nfact = \"rotation_completed\"\npoints = 3\n[[rule]]\nid = \"hq\"\nfact = \"high_quality_designated\"\npoints = 8\n"
            ),
            sha256: String::new(),
            on: d(y, 1, 5),
        }));
        // projects: proposed and approved in February, completed in December
        for (g, name) in groups.iter().enumerate() {
            for p in 0..2 {
                let id = rid(format!("P{y}-{g:03}-{p}"));
                emit(Event::ProjectProposed(ProjectProposed {
                    project: id.clone(),
                    group: name.clone(),
                    kind: ProjectKind::KeyProject,
                    title: text("项目".into()),
                    year: y,
                    members: vec![],
                    on: d(y, 2, 1),
                }));
                emit(Event::ProjectApproved(ProjectApproved {
                    project: id.clone(),
                    on: d(y, 2, 10),
                    budget_fen: Fen::new(1_000_000).unwrap_or_else(|_| unreachable!()),
                }));
                emit(Event::ProjectCompleted(ProjectCompleted {
                    project: id,
                    on: d(y, 12, 10),
                    rating: [Rating::Excellent, Rating::Good, Rating::Pass][rng.below(3) as usize],
                }));
            }
        }
        // trainings across the year, each with its attendance recorded one teacher at a time
        let trainings = (scale.teachers as u64 * scale.trainings_per_teacher as u64).div_ceil(40);
        for t in 0..trainings {
            training_no += 1;
            let id = rid(format!("TR{training_no}"));
            let month = 2 + (t % 10) as u32;
            let (on, end) = (d(y, month, 10), d(y, month, 11));
            let g = (t % groups.len() as u64) as usize;
            let group_tier = t % 3 != 0;
            emit(Event::TrainingHeld(TrainingHeld {
                training: id.clone(),
                title: text(format!("培训{training_no}")),
                tier: if group_tier {
                    TrainingTier::Group
                } else {
                    TrainingTier::District
                },
                organizer: if group_tier {
                    Organizer::Group(groups[g].clone())
                } else {
                    Organizer::Body(text("区教师进修学院".into()))
                },
                start: on,
                end,
                hours: Hours::from_tenths(60),
            }));
            // 40 different teachers: a teacher is recorded once per training
            let base = rng.below(staff.len() as u64) as usize;
            for k in 0..40.min(staff.len()) {
                let who = staff[(base + k) % staff.len()].clone();
                emit(Event::AttendanceRecorded(AttendanceRecorded {
                    training: id.clone(),
                    staff_nos: vec![who],
                }));
            }
            if group_tier {
                emit(Event::RecognitionApplied(RecognitionApplied {
                    training: id.clone(),
                    on: d(y, month, 20),
                }));
                emit(Event::RecognitionDecided(RecognitionDecided {
                    training: id,
                    granted: rng.below(4) != 0,
                    on: d(y, month, 28),
                    reviewer: text("区教育局".into()),
                }));
            }
        }
        // first-half activities, among the members of that day (before the July transfers)
        emit_activities(
            &groups,
            &kgs,
            &group_of,
            y,
            &[
                (ActivityKind::JointResearch, 3),
                (ActivityKind::ClassShowcase, 5),
                (ActivityKind::ExpertGuidance, 6),
            ],
            0,
            emit,
        );
        // designations mid-year
        for _ in 0..(kgs.len() / 16).max(1) {
            let k = rng.below(kgs.len() as u64) as usize;
            if !designated[k] {
                designated[k] = true;
                emit(Event::HighQualityDesignated(HighQualityDesignated {
                    kindergarten: kgs[k],
                    on: d(y, 6, 30),
                }));
            }
        }
        // transfers on July 1 (never a lead)
        for _ in 0..(kgs.len() / 80).max(1) {
            let k = rng.below(kgs.len() as u64) as usize;
            if leads.contains(&k) {
                continue;
            }
            let to = (group_of[k] + 1 + rng.below(groups.len() as u64 - 1) as usize) % groups.len();
            if to == group_of[k] {
                continue;
            }
            emit(Event::KindergartenTransferred(KindergartenTransferred {
                kindergarten: kgs[k],
                from_group: groups[group_of[k]].clone(),
                to_group: groups[to].clone(),
                on: d(y, 7, 1),
            }));
            group_of[k] = to;
        }
        // second-half activities, after the transfers
        emit_activities(
            &groups,
            &kgs,
            &group_of,
            y,
            &[
                (ActivityKind::Competition, 10),
                (ActivityKind::JointResearch, 11),
                (ActivityKind::Publicity, 12),
            ],
            3,
            emit,
        );
        // rotations: September 1 to June 30, within the group of that day
        let mut busy = std::collections::HashSet::new();
        for _ in 0..(staff.len() / 20) {
            let t = rng.below(staff.len() as u64) as usize;
            if !busy.insert(t) {
                continue;
            }
            let g = group_of[home[t]];
            let candidates: Vec<usize> = (0..kgs.len())
                .filter(|i| group_of[*i] == g && *i != home[t])
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let host = candidates[rng.below(candidates.len() as u64) as usize];
            rotation_no += 1;
            let id = rid(format!("R{rotation_no}"));
            emit(Event::RotationStarted(RotationStarted {
                rotation: id.clone(),
                staff_no: staff[t].clone(),
                host: kgs[host],
                mode: RotationMode::Shadowing,
                start: d(y, 9, 1),
                planned_end: d(y + 1, 6, 30),
                exception: None,
            }));
            emit(Event::RotationEnded(RotationEnded {
                rotation: id,
                end: d(y + 1, 6, 30),
                assessment: [
                    Assessment::Excellent,
                    Assessment::Qualified,
                    Assessment::BasicallyQualified,
                ][rng.below(3) as usize],
            }));
        }
        // titles and home changes (not for teachers on rotation this year)
        for _ in 0..(staff.len() / 30) {
            let t = rng.below(staff.len() as u64) as usize;
            emit(Event::TitleAwarded(TitleAwarded {
                staff_no: staff[t].clone(),
                title: Title::Backbone,
                on: d(y, 12, 20),
            }));
        }
        for _ in 0..(staff.len() / 60) {
            let t = rng.below(staff.len() as u64) as usize;
            if busy.contains(&t) {
                continue;
            }
            let to = rng.below(kgs.len() as u64) as usize;
            home[t] = to;
            emit(Event::HomeChanged(HomeChanged {
                staff_no: staff[t].clone(),
                home: kgs[to],
                on: d(y, 8, 15),
            }));
        }
    }
}

fn emit_activities(
    groups: &[GroupName],
    kgs: &[KgId],
    group_of: &[usize],
    y: i32,
    plan: &[(ActivityKind, u32)],
    first_no: usize,
    emit: &mut dyn FnMut(Event),
) {
    for (g, name) in groups.iter().enumerate() {
        let members: Vec<KgId> = (0..kgs.len())
            .filter(|i| group_of[*i] == g)
            .map(|i| kgs[i])
            .collect();
        for (n, (kind, month)) in plan.iter().enumerate() {
            let visit: Vec<KgId> = if *kind == ActivityKind::ExpertGuidance {
                members.clone()
            } else {
                members.iter().copied().take(3).collect()
            };
            emit(Event::ActivityHeld(ActivityHeld {
                activity: rid(format!("A{y}-{g:03}-{}", first_no + n)),
                group: name.clone(),
                kind: *kind,
                title: text("教研".into()),
                on: d(y, *month, 15),
                kindergartens: visit,
            }));
        }
    }
}

/// Write a generated history into `store`, `batch` events per transaction (buffered; one
/// sync at the end). Returns the number of events.
pub fn write(
    store: &Store,
    scale: Scale,
    batch: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, StoreError> {
    let mut parts: Vec<StreamAppend> = Vec::with_capacity(batch);
    let mut n = 0u64;
    let mut failed = None;
    let flush = |parts: &mut Vec<StreamAppend>, failed: &mut Option<StoreError>| {
        if failed.is_none()
            && !parts.is_empty()
            && let Err(e) = store.append_many(parts, Durability::Buffered)
        {
            *failed = Some(e);
        }
        parts.clear();
    };
    generate(scale, &mut |mut e| {
        if let Event::PointsRulesAdopted(r) = &mut e {
            r.sha256 = eduledger_domain::points::sha256_hex(&r.rules);
        }
        n += 1;
        let stream = e
            .primary()
            .map(|p| p.stream())
            .unwrap_or_else(|| crate::CORRECTIONS_STREAM.into());
        let mut tail = [0u8; 10];
        tail[2..].copy_from_slice(&n.to_be_bytes());
        parts.push(StreamAppend {
            stream,
            expected: ExpectedVersion::Any,
            events: vec![NewEvent {
                event_id: uuid::Builder::from_unix_timestamp_millis(1_451_606_400_000 + n, &tail)
                    .into_uuid(),
                event_type: e.event_type().to_owned(),
                schema_version: e.schema_version(),
                payload: e.encode(),
                meta: Metadata {
                    actor: "synthetic".into(),
                    reason: None,
                    source: None,
                },
            }],
        });
        if parts.len() >= batch {
            flush(&mut parts, &mut failed);
            progress(n);
        }
    });
    flush(&mut parts, &mut failed);
    if let Some(e) = failed {
        return Err(e);
    }
    store.sync()?;
    Ok(n)
}
