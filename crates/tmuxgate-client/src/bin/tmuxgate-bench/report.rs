//! Results: one [`Row`] per measured case, printed as a readable table per scenario and as
//! one JSON object per line (`--json` prints only the lines), so a script can collect them.

use std::io::Write;

use serde_json::Value;

/// One result: the scenario, the case within it, and named values in display order.
#[derive(Clone, Debug)]
pub struct Row {
    scenario: &'static str,
    case: String,
    fields: Vec<(&'static str, Value)>,
}

impl Row {
    /// An empty row of `scenario`, case `case` (e.g. `gateway`, `baseline`, `pipelined-64`).
    pub fn new(scenario: &'static str, case: impl Into<String>) -> Row {
        Row {
            scenario,
            case: case.into(),
            fields: Vec::new(),
        }
    }

    /// Adds (or replaces) a field.
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Row {
        self.set(key, value);
        self
    }

    /// Adds (or replaces) a field in place.
    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        let value = value.into();
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key, value)),
        }
    }

    /// Adds several fields (e.g. a latency summary).
    pub fn extend(mut self, fields: impl IntoIterator<Item = (&'static str, Value)>) -> Row {
        for (key, value) in fields {
            self.set(key, value);
        }
        self
    }

    /// A field's value, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The row as one JSON object, fields in display order.
    pub fn json_line(&self) -> String {
        let mut out = format!(
            "{{\"scenario\":{},\"case\":{}",
            Value::from(self.scenario),
            Value::from(self.case.as_str())
        );
        for (key, value) in &self.fields {
            out.push_str(&format!(",{}:{}", Value::from(*key), value));
        }
        out.push('}');
        out
    }
}

/// Collects a scenario's rows and notes, then prints them.
pub struct Report {
    json_only: bool,
}

impl Report {
    /// `json_only`: print JSON lines only (no tables, notes on stderr).
    pub fn new(json_only: bool) -> Report {
        Report { json_only }
    }

    /// Whether only JSON lines are printed (`--json`).
    pub fn json_only(&self) -> bool {
        self.json_only
    }

    /// Prints one scenario: its table and notes (unless `--json`), then its JSON lines.
    pub fn print(&self, title: &str, rows: &[Row], notes: &[String]) {
        let mut out = std::io::stdout().lock();
        if !self.json_only {
            let _ = writeln!(out, "\n== {title}");
            for group in same_fields(rows) {
                let _ = write!(out, "{}", table(group));
            }
            for note in notes {
                let _ = writeln!(out, "note: {note}");
            }
        } else {
            for note in notes {
                eprintln!("note: {title}: {note}");
            }
        }
        for row in rows {
            let _ = writeln!(out, "{}", row.json_line());
        }
        let _ = out.flush();
    }
}

/// Runs of consecutive rows with the same field names: one table each, so a scenario's
/// different kinds of rows do not share one very wide table.
fn same_fields(rows: &[Row]) -> Vec<&[Row]> {
    let keys = |row: &Row| row.fields.iter().map(|(k, _)| *k).collect::<Vec<_>>();
    let mut groups = Vec::new();
    let mut start = 0;
    for i in 1..=rows.len() {
        if i == rows.len() || keys(&rows[i]) != keys(&rows[start]) {
            groups.push(&rows[start..i]);
            start = i;
        }
    }
    groups
}

/// A text table: one line per row, one column per field name seen (in first-seen order).
fn table(rows: &[Row]) -> String {
    let mut columns: Vec<&'static str> = vec!["case"];
    for row in rows {
        for (key, _) in &row.fields {
            if !columns.contains(key) {
                columns.push(key);
            }
        }
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|&c| match c {
                    "case" => row.case.clone(),
                    _ => row.get(c).map(display).unwrap_or_default(),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r[i].len())
                .chain([columns[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<&str>| {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (v, w))| match i {
                0 => format!("{v:<w$}"),
                _ => format!("{v:>w$}"),
            })
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(columns.clone());
    for row in &cells {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// A value for the table: floats rounded to a readable precision.
pub fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            match f.abs() {
                a if a >= 100.0 => format!("{f:.0}"),
                a if a >= 10.0 => format!("{f:.1}"),
                _ => format!("{f:.2}"),
            }
        }
        other => other.to_string(),
    }
}

/// Rounds to `digits` decimals (JSON lines stay readable, precision stays meaningful).
pub fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_keeps_field_order() {
        let row = Row::new("echo", "gateway")
            .with("p50_us", 12.5)
            .with("n", 3);
        assert_eq!(
            row.json_line(),
            r#"{"scenario":"echo","case":"gateway","p50_us":12.5,"n":3}"#
        );
    }

    #[test]
    fn table_aligns_columns_and_fills_missing_fields() {
        let rows = [
            Row::new("x", "a").with("n", 1),
            Row::new("x", "longer").with("rate", 1234.56),
        ];
        let text = table(&rows);
        assert_eq!(text, "case    n  rate\na       1\nlonger     1235\n");
        assert_eq!(same_fields(&rows).len(), 2);
        assert_eq!(same_fields(&rows[..1]).len(), 1);
    }
}
