// One JSON command line as submit reads it.
{
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = eduledger_domain::parse_submission(text);
    }
}
