//! SQL typed or piped a line at a time (the `doracost sql` prompt): statements end at a `;`
//! outside quotes and comments, so one may span lines and one line may hold several.

/// Lines fed in, statements out.
#[derive(Debug, Default)]
pub struct StatementBuffer {
    text: String,
    scan: Scan,
}

/// Where the scanner stands at the end of the text read so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Scan {
    #[default]
    Code,
    /// Inside `'…'` (a doubled `''` reads as leaving and entering again).
    Single,
    /// Inside `"…"`.
    Double,
    /// Inside `/* … */`.
    Block,
}

impl StatementBuffer {
    /// Adds one line; returns the statements it completed, each without its `;`, trimmed, empty
    /// ones (a lone `;`) left out.
    pub fn push_line(&mut self, line: &str) -> Vec<String> {
        let mut done = Vec::new();
        let mut chars = line.char_indices().peekable();
        let mut start = 0;
        while let Some((i, c)) = chars.next() {
            let next = chars.peek().map(|&(_, n)| n);
            self.scan = match (self.scan, c, next) {
                (Scan::Code, '-', Some('-')) => break,
                (Scan::Code, '/', Some('*')) => {
                    chars.next();
                    Scan::Block
                }
                (Scan::Code, '\'', _) => Scan::Single,
                (Scan::Code, '"', _) => Scan::Double,
                (Scan::Code, ';', _) => {
                    self.text.push_str(&line[start..i]);
                    let statement = std::mem::take(&mut self.text).trim().to_owned();
                    if !statement.is_empty() {
                        done.push(statement);
                    }
                    start = i + 1;
                    Scan::Code
                }
                (Scan::Single, '\'', _) | (Scan::Double, '"', _) => Scan::Code,
                (Scan::Block, '*', Some('/')) => {
                    chars.next();
                    Scan::Code
                }
                (scan, _, _) => scan,
            };
        }
        self.text.push_str(&line[start..]);
        self.text.push('\n');
        done
    }

    /// Nothing but white space is waiting for its `;`.
    pub fn is_empty(&self) -> bool {
        self.text.trim().is_empty()
    }

    /// The unfinished statement, trimmed (the buffer is left empty).
    pub fn take_rest(&mut self) -> String {
        self.scan = Scan::Code;
        std::mem::take(&mut self.text).trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::StatementBuffer;

    fn feed(lines: &[&str]) -> (Vec<String>, String) {
        let mut buffer = StatementBuffer::default();
        let done = lines.iter().flat_map(|l| buffer.push_line(l)).collect();
        (done, buffer.take_rest())
    }

    #[test]
    fn a_statement_ends_at_its_semicolon_across_lines() {
        let (done, rest) = feed(&["SELECT 1", "  AS one;", "SELECT 2; SELECT", "3;  "]);
        assert_eq!(done, ["SELECT 1\n  AS one", "SELECT 2", "SELECT\n3"]);
        assert_eq!(rest, "");
    }

    #[test]
    fn semicolons_in_strings_and_comments_do_not_end_it() {
        let (done, rest) = feed(&[
            "SELECT 'a;b' AS x, \"c;d\" -- e;f",
            "/* g; */ FROM t; SELECT 'it''s;'",
        ]);
        assert_eq!(done, ["SELECT 'a;b' AS x, \"c;d\" -- e;f\n/* g; */ FROM t"]);
        assert_eq!(rest, "SELECT 'it''s;'");
    }

    #[test]
    fn empty_statements_are_dropped() {
        let (done, rest) = feed(&[";", "  ;;", ""]);
        assert!(done.is_empty());
        assert_eq!(rest, "");
    }
}
