//! docs/EVENTS.md lists exactly the event types and schema versions the code has.

#[test]
fn events_md_matches_the_code() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/EVENTS.md"))
        .unwrap();
    let rows: Vec<(String, u16)> = doc
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_owned(), cells.get(2)?.parse().ok()?))
        })
        .collect();
    let code: Vec<(String, u16)> = eduledger_domain::Event::CATALOGUE
        .iter()
        .map(|(n, v)| (n.to_string(), *v))
        .collect();
    assert_eq!(rows, code, "docs/EVENTS.md is out of date");
}
