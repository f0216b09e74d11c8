//! A read's answer as data: the JSON document and the tables; rendering is the caller's.

/// A titled table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Title line (may be empty).
    pub title: String,
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with headers.
    pub fn new(title: impl Into<String>, headers: &[&str]) -> Table {
        Table {
            title: title.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: vec![],
        }
    }
    /// Add a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

/// A read's result: JSON for scripts, tables for people.
pub struct Report {
    /// The JSON document.
    pub json: serde_json::Value,
    /// The tables; the first is the one CSV prints.
    pub tables: Vec<Table>,
    /// Lines printed before the tables.
    pub preface: Vec<String>,
}
