// A roster table (TSV).
{
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(on) = eduledger_domain::values::Date::parse("2023-09-01")
    {
        let _ = eduledger_domain::roster::roster_commands(text, on);
    }
}
