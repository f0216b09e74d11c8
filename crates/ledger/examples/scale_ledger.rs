//! Make the scale benchmark's ledger if it is missing, and print its path:
//! `cargo run --release -p eduledger-ledger --example scale_ledger [shanghai|district]`.
//! (target/scale-ledger-shanghai, ≈ 4.6 million events, ≈ 2 minutes to generate; the
//! same seeded history the scale benchmark and the server's load example use.)

use std::path::PathBuf;

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "shanghai".into());
    let scale = match which.as_str() {
        "district" => eduledger_ledger::synthetic::Scale::district(),
        _ => eduledger_ledger::synthetic::Scale::shanghai(),
    };
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target")
        .join(format!("scale-ledger-{which}"));
    if !path.join("COMPLETE").exists() {
        let _ = std::fs::remove_dir_all(&path);
        eprintln!("generating {}", path.display());
        let store = eduledger_store::Store::open(&path).expect("open");
        let n =
            eduledger_ledger::synthetic::write(&store, scale, 2000, &mut |_| {}).expect("generate");
        drop(store);
        std::fs::write(path.join("COMPLETE"), n.to_string()).expect("mark");
    }
    println!("{}", path.canonicalize().unwrap_or(path).display());
}
