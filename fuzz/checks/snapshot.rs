// A snapshot file: its frame, then its state as a fold decodes it.
{
    if let Ok((_, _, _, payload)) = eduledger_store::snapshot::parse_file(data) {
        let _ = eduledger_ledger::decode_snapshot_payload(payload);
    }
    let _ = eduledger_ledger::decode_snapshot_payload(data);
}
