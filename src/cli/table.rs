//! Plain-text tables for the terminal.

/// Left-aligned columns separated by two spaces; the first row is the header. Rows are arrays
/// (a fixed table) or vectors (a table with optional columns, `-o wide`).
pub fn render_table<R: AsRef<[String]>>(rows: &[R]) -> String {
    let columns = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.as_ref()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let row = row.as_ref();
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `key: value` lines with the values aligned, indented by `indent` spaces.
pub fn render_fields(fields: &[(&str, String)], indent: usize) -> String {
    let width = fields
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 1;
    let mut out = String::new();
    for (k, v) in fields {
        let key = format!("{k}:");
        let line = format!("{:indent$}{key:<width$} {v}", "");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
