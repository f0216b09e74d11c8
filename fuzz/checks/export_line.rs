// One export line as import reads it.
{
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = eduledger_store::parse_line(text);
    }
}
