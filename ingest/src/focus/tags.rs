//! FOCUS `Tags`: a JSON object of tag keys to values, read straight into the `tags` map column.
//!
//! A small hand-written reader rather than `serde_json::Value`, because the map must keep the JSON's
//! own key order and exact keys (including the sample's `" org"` with its leading space:
//! normalisation happens at allocation, not here), non-string values must keep their JSON text,
//! and a bill has millions of rows: keys and values without escapes are copied once, into the
//! builders, and never allocated on their own.

use std::borrow::Cow;

use arrow::array::StringBuilder;

/// Appends the entries of the JSON object `text` to `keys` (each mapped through `key_of`) and
/// `values`, in the object's order.
///
/// String values are stored unescaped; `null` as a null value; numbers, booleans, arrays and
/// objects as their JSON text. Returns what was wrong when `text` is not one JSON object.
pub(crate) fn append_json_object(
    text: &str,
    key_of: fn(&str) -> &str,
    keys: &mut StringBuilder,
    values: &mut StringBuilder,
) -> Result<(), String> {
    let mut json = Json { text, at: 0 };
    json.skip_whitespace();
    json.expect(b'{')?;
    json.skip_whitespace();
    if json.peek() == Some(b'}') {
        json.at += 1;
    } else {
        loop {
            json.skip_whitespace();
            let key = json.string()?;
            json.skip_whitespace();
            json.expect(b':')?;
            json.skip_whitespace();
            match json.peek() {
                Some(b'"') => {
                    let value = json.string()?;
                    keys.append_value(key_of(&key));
                    values.append_value(value);
                }
                _ => {
                    let raw = json.raw_value()?;
                    keys.append_value(key_of(&key));
                    if raw == "null" {
                        values.append_null();
                    } else {
                        values.append_value(raw);
                    }
                }
            }
            json.skip_whitespace();
            match json.next() {
                Some(b',') => continue,
                Some(b'}') => break,
                _ => return Err(json.unexpected("`,` or `}` after a tag")),
            }
        }
    }
    json.skip_whitespace();
    if json.at < text.len() {
        return Err(json.unexpected("the end after the tags object"));
    }
    Ok(())
}

/// A cursor over JSON text.
struct Json<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Json<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        if c.is_some() {
            self.at += 1;
        }
        c
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, wanted: u8) -> Result<(), String> {
        if self.peek() == Some(wanted) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{}`", wanted as char)))
        }
    }

    fn unexpected(&self, wanted: &str) -> String {
        let found = match self.text.get(self.at..) {
            Some(rest) if !rest.is_empty() => {
                format!("{:?}", rest.chars().take(20).collect::<String>())
            }
            _ => "the end of the text".to_owned(),
        };
        format!(
            "expected a JSON object of tags: expected {wanted} at byte {}, found {found}",
            self.at
        )
    }

    /// A JSON string at the cursor, unescaped; borrowed when it has no escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, String> {
        self.expect(b'"')?;
        let bytes = self.bytes();
        let start = self.at;
        let mut i = start;
        while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\\' {
            i += 1;
        }
        if i == bytes.len() {
            self.at = i;
            return Err(self.unexpected("the closing `\"` of a string"));
        }
        // Slicing at ASCII quotes and backslashes keeps UTF-8 boundaries.
        let plain = &self.text[start..i];
        if bytes[i] == b'"' {
            self.at = i + 1;
            return Ok(Cow::Borrowed(plain));
        }
        let mut owned = String::with_capacity(plain.len() + 16);
        owned.push_str(plain);
        self.at = i;
        loop {
            let run_start = self.at;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' {
                    break;
                }
                self.at += 1;
            }
            owned.push_str(&self.text[run_start..self.at]);
            match self.next() {
                Some(b'"') => return Ok(Cow::Owned(owned)),
                Some(b'\\') => self.escape(&mut owned)?,
                _ => return Err(self.unexpected("the closing `\"` of a string")),
            }
        }
    }

    /// One escape sequence after its backslash.
    fn escape(&mut self, out: &mut String) -> Result<(), String> {
        let c = match self.next() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let high = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&high) {
                    if self.next() != Some(b'\\') || self.next() != Some(b'u') {
                        return Err(self.unexpected("the low half of a \\u surrogate pair"));
                    }
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(self.unexpected("the low half of a \\u surrogate pair"));
                    }
                    0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    high
                };
                char::from_u32(code).ok_or_else(|| self.unexpected("a valid \\u escape"))?
            }
            _ => return Err(self.unexpected("a valid escape after `\\`")),
        };
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .and_then(|h| u32::from_str_radix(h, 16).ok());
        match digits {
            Some(v) => {
                self.at += 4;
                Ok(v)
            }
            None => Err(self.unexpected("four hex digits after \\u")),
        }
    }

    /// The exact text of a non-string JSON value at the cursor.
    fn raw_value(&mut self) -> Result<&'a str, String> {
        let start = self.at;
        match self.peek() {
            Some(b'{' | b'[') => {
                self.skip_nested()?;
                let raw = &self.text[start..self.at];
                // Nested values are rare in tags; let serde_json check them fully.
                serde_json::from_str::<serde::de::IgnoredAny>(raw)
                    .map_err(|e| format!("expected a JSON object of tags: {e}"))?;
                Ok(raw)
            }
            _ => {
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.at += 1;
                }
                let raw = &self.text[start..self.at];
                let is_number = raw
                    .bytes()
                    .next()
                    .is_some_and(|c| c == b'-' || c.is_ascii_digit())
                    && raw.parse::<f64>().is_ok();
                if matches!(raw, "true" | "false" | "null") || is_number {
                    Ok(raw)
                } else {
                    self.at = start;
                    Err(self.unexpected("a JSON value"))
                }
            }
        }
    }

    /// Skips a balanced array or object, minding strings.
    fn skip_nested(&mut self) -> Result<(), String> {
        let mut depth = 0usize;
        while let Some(c) = self.next() {
            match c {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                b'"' => {
                    self.at -= 1;
                    self.string()?;
                }
                _ => {}
            }
        }
        Err(self.unexpected("the end of a nested value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

    fn entries(text: &str) -> Result<Vec<(String, Option<String>)>, String> {
        let mut keys = StringBuilder::new();
        let mut values = StringBuilder::new();
        append_json_object(text, |k| k, &mut keys, &mut values)?;
        let (keys, values) = (keys.finish(), values.finish());
        Ok((0..keys.len())
            .map(|i| {
                let value = values.is_valid(i).then(|| values.value(i).to_owned());
                (keys.value(i).to_owned(), value)
            })
            .collect())
    }

    fn pair(k: &str, v: &str) -> (String, Option<String>) {
        (k.to_owned(), Some(v.to_owned()))
    }

    #[test]
    fn keeps_order_exact_keys_and_json_text() {
        assert_eq!(
            entries(r#"{"zeta": "1", " org": "x", "alpha": 2.50, "on": true, "n": null}"#),
            Ok(vec![
                pair("zeta", "1"),
                pair(" org", "x"),
                pair("alpha", "2.50"),
                pair("on", "true"),
                ("n".to_owned(), None),
            ])
        );
        assert_eq!(entries(" { } "), Ok(vec![]));
        assert_eq!(
            entries(r#"{"a\"b\u00e9\ud83d\ude00": "line\nnext", "list": [1, "]", {"x": 1}]}"#),
            Ok(vec![
                pair("a\"b\u{e9}\u{1F600}", "line\nnext"),
                pair("list", r#"[1, "]", {"x": 1}]"#)
            ])
        );
        assert_eq!(
            entries(r#"{"k": "v", "k": "w"}"#),
            Ok(vec![pair("k", "v"), pair("k", "w")])
        );
    }

    #[test]
    fn rejects_what_is_not_one_object() {
        for bad in [
            "",
            "[]",
            r#"{"a": "b""#,
            r#"{"a": "b"} x"#,
            r#"{"a": nope}"#,
            r#"{"a" "b"}"#,
            r#"{"a": "\x"}"#,
            r#"{a: "b"}"#,
            r#"{"a": [1, }"#,
        ] {
            let result = entries(bad);
            assert!(result.is_err(), "{bad:?} gave {result:?}");
        }
    }
}
