// A points rules file (TOML).
{
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = eduledger_domain::points::RuleSet::parse(text);
    }
}
