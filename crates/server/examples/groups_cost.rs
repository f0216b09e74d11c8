//! Where `/v1/groups` spends its time at Shanghai scale, piece by piece, in process:
//! `cargo run --release -p eduledger-server --example groups_cost [LEDGER]`.
use std::sync::Arc;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/scale-ledger-shanghai"
        )
        .to_owned()
    });
    let ledger = eduledger_ledger::Ledger::open(&path, Arc::new(eduledger_store::SystemClock))
        .expect("open");
    let view = ledger.view().expect("view");
    let q = eduledger_query::Query::default();
    let mut whole = vec![];
    let mut render = vec![];
    for _ in 0..30 {
        let t = Instant::now();
        let r = eduledger_query::groups(&view, &q).expect("groups");
        whole.push(t.elapsed());
        let t = Instant::now();
        let s = eduledger_query::render::render(&r, eduledger_query::render::Format::Json);
        render.push(t.elapsed());
        std::hint::black_box(s);
    }
    let on = eduledger_ledger::clock::today();
    let mut views = vec![];
    let mut values = vec![];
    for _ in 0..30 {
        let t = Instant::now();
        let gs = eduledger_projection::views::groups(view.state(), on);
        views.push(t.elapsed());
        let t = Instant::now();
        let v = serde_json::to_value(&gs).expect("json");
        values.push(t.elapsed());
        std::hint::black_box((gs, v));
    }
    println!(
        "query::groups {:?}, of which the view alone {:?} and its JSON value {:?}; rendering the JSON {:?}",
        median(whole),
        median(views),
        median(values),
        median(render)
    );
}
