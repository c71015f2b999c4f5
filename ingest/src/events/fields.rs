//! Reading typed fields out of one JSON object (an event record, or a CSV row turned into one), with
//! errors that name the file, the line, the field's path and what was expected and found.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;

use super::json::{Json, Object};

use crate::error::IngestError;
use crate::values::parse_timestamp_micros;

/// One step of a field path: the record itself, a key in an object, or an index in an array.
#[derive(Clone, Copy)]
enum Step<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

/// Where a value sits: the input, its line, and the path of keys and indexes from the top.
///
/// Paths are a chain of borrowed steps, rendered only when an error is raised, so reading a valid
/// record allocates nothing for them.
#[derive(Clone, Copy)]
pub(super) struct Place<'a> {
    origin: &'a Path,
    line: Option<u64>,
    parent: Option<&'a Place<'a>>,
    step: Step<'a>,
}

impl<'a> Place<'a> {
    /// The input the record comes from.
    pub(super) fn origin(&self) -> &'a Path {
        self.origin
    }

    /// The top of a record at `origin`, `line`.
    pub(super) fn root(origin: &'a Path, line: Option<u64>) -> Self {
        Place {
            origin,
            line,
            parent: None,
            step: Step::Root,
        }
    }

    /// The value under `key` of this place.
    pub(super) fn key(&'a self, key: &'a str) -> Place<'a> {
        Place {
            origin: self.origin,
            line: self.line,
            parent: Some(self),
            step: Step::Key(key),
        }
    }

    /// The element at `index` of this place.
    pub(super) fn index(&'a self, index: usize) -> Place<'a> {
        Place {
            origin: self.origin,
            line: self.line,
            parent: Some(self),
            step: Step::Index(index),
        }
    }

    /// The field path, e.g. `deployments[3].changes[1].sha`; empty for a record's top.
    pub(super) fn path(&self) -> String {
        let mut steps = Vec::new();
        let mut at = Some(self);
        while let Some(place) = at {
            steps.push(place.step);
            at = place.parent;
        }
        let mut path = String::new();
        for step in steps.iter().rev() {
            match step {
                Step::Root => {}
                Step::Key(key) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                Step::Index(i) => {
                    let _ = write!(path, "[{i}]");
                }
            }
        }
        path
    }

    /// An error at this place.
    pub(super) fn error(&self, message: impl Into<String>) -> IngestError {
        let path = self.path();
        let field = (!path.is_empty()).then_some(path.as_str());
        IngestError::invalid(self.origin, self.line, field, message)
    }
}

/// A short description of a JSON value for "found …" in messages.
pub(super) fn describe(value: &Json<'_>) -> String {
    match value {
        Json::Null => "null".to_owned(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => {
            const MAX: usize = 60;
            if s.chars().count() > MAX {
                let cut: String = s.chars().take(MAX).collect();
                format!("{:?}…", cut)
            } else {
                format!("{s:?}")
            }
        }
        Json::Array(_) => "an array".to_owned(),
        Json::Object(_) => "an object".to_owned(),
    }
}

/// `2020-01-01T12:00:00+0000`, which `date +%Y-%m-%dT%H:%M:%S%z` prints in CI scripts (DevLake's
/// CircleCI example posts it).
fn parse_offset_without_colon(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .map(|t| t.timestamp_micros())
}

/// One JSON object being read as a record of `kind` (used in "required for a …" messages).
/// Values borrow from the document (`'a`), independently of the place's lifetime (`'p`).
pub(super) struct Fields<'a, 'p> {
    /// The object.
    pub(super) object: &'a Object<'a>,
    /// Where it is.
    pub(super) place: &'p Place<'p>,
    /// What it is read as, e.g. "deployment" or "DevLake deployment".
    pub(super) kind: &'p str,
}

impl<'a, 'p> Fields<'a, 'p> {
    /// Reads `value` at `place` as an object of `kind`.
    pub(super) fn new(
        value: &'a Json<'a>,
        place: &'p Place<'p>,
        kind: &'p str,
    ) -> Result<Self, IngestError> {
        match value {
            Json::Object(object) => Ok(Fields {
                object,
                place,
                kind,
            }),
            other => Err(place.error(format!("expected a JSON object, found {}", describe(other)))),
        }
    }

    /// The value of `key`; null and empty strings count as absent (empty CSV cells, `"url": ""`).
    pub(super) fn get(&self, key: &str) -> Option<&'a Json<'a>> {
        match self.object.get(key) {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) if s.is_empty() => None,
            Some(v) => Some(v),
        }
    }

    /// Whether `key` is present at all, even as null (a `changes` list given as null still counts).
    pub(super) fn has(&self, key: &str) -> bool {
        self.object.contains_key(key)
    }

    /// The first of `keys` that is present, with its value (camelCase and snake_case spellings).
    pub(super) fn get_any(&self, keys: &[&'static str]) -> Option<(&'static str, &'a Json<'a>)> {
        keys.iter().find_map(|&k| self.get(k).map(|v| (k, v)))
    }

    /// An error about field `key`.
    pub(super) fn error(&self, key: &str, message: impl Into<String>) -> IngestError {
        self.place.key(key).error(message)
    }

    /// The error for a required field that is absent.
    pub(super) fn missing(&self, keys: &[&str]) -> IngestError {
        let also = if keys.len() > 1 {
            let others: Vec<String> = keys[1..].iter().map(|k| format!("`{k}`")).collect();
            format!(" (also read as {})", others.join(", "))
        } else {
            String::new()
        };
        let first = keys.first().copied().unwrap_or("");
        let article = if self.kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        let found = match self.object.get(first) {
            Some(Json::Null) => "null",
            Some(Json::String(_)) => "empty",
            _ => "missing",
        };
        self.error(
            first,
            format!("required for {article} {}, but {found}{also}", self.kind),
        )
    }

    fn expected(&self, key: &str, what: &str, found: &Json<'_>) -> IngestError {
        self.error(key, format!("expected {what}, found {}", describe(found)))
    }

    /// An optional string field.
    pub(super) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, IngestError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.as_ref())),
            Some(other) => Err(self.expected(key, "a string", other)),
        }
    }

    /// A required string field.
    pub(super) fn req_str(&self, key: &str) -> Result<&'a str, IngestError> {
        self.opt_str(key)?.ok_or_else(|| self.missing(&[key]))
    }

    /// An optional string under the first present of `keys`.
    pub(super) fn opt_str_any(
        &self,
        keys: &[&'static str],
    ) -> Result<Option<&'a str>, IngestError> {
        match self.get_any(keys) {
            None => Ok(None),
            Some((_, Json::String(s))) => Ok(Some(s.as_ref())),
            Some((key, other)) => Err(self.expected(key, "a string", other)),
        }
    }

    /// An identifier: a string, or an integer written as a number.
    pub(super) fn opt_id_any(
        &self,
        keys: &[&'static str],
    ) -> Result<Option<Cow<'a, str>>, IngestError> {
        match self.get_any(keys) {
            None => Ok(None),
            Some((_, Json::String(s))) => Ok(Some(Cow::Borrowed(s.as_ref()))),
            Some((_, Json::Number(n))) if n.is_i64() || n.is_u64() => {
                Ok(Some(Cow::Owned(n.to_string())))
            }
            Some((key, other)) => Err(self.expected(key, "a string or an integer id", other)),
        }
    }

    /// An optional timestamp under the first present of `keys`, in microseconds UTC.
    pub(super) fn opt_ts_any(&self, keys: &[&'static str]) -> Result<Option<i64>, IngestError> {
        match self.get_any(keys) {
            None => Ok(None),
            Some((key, value)) => {
                let micros = match value {
                    Json::String(s) => {
                        parse_timestamp_micros(s).or_else(|| parse_offset_without_colon(s))
                    }
                    _ => None,
                };
                micros
                    .map(Some)
                    .ok_or_else(|| self.expected(key, "an RFC 3339 timestamp", value))
            }
        }
    }

    /// An optional timestamp.
    pub(super) fn opt_ts(&self, key: &'static str) -> Result<Option<i64>, IngestError> {
        self.opt_ts_any(&[key])
    }

    /// A required timestamp.
    pub(super) fn req_ts(&self, key: &'static str) -> Result<i64, IngestError> {
        self.opt_ts(key)?.ok_or_else(|| self.missing(&[key]))
    }

    /// An optional boolean; CSV's `true`/`false`/`1`/`0` (any case) are read too.
    pub(super) fn opt_bool(&self, key: &str) -> Result<Option<bool>, IngestError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(value @ Json::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(Some(true)),
                "false" | "0" | "no" => Ok(Some(false)),
                _ => Err(self.expected(key, "true or false", value)),
            },
            Some(other) => Err(self.expected(key, "true or false", other)),
        }
    }

    /// An optional integer; a string of digits (CSV) is read too.
    pub(super) fn opt_int(&self, key: &str) -> Result<Option<i64>, IngestError> {
        match self.get(key) {
            None => Ok(None),
            Some(value @ Json::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.expected(key, "an integer", value)),
            Some(value @ Json::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.expected(key, "an integer", value)),
            Some(other) => Err(self.expected(key, "an integer", other)),
        }
    }

    /// An optional list of strings (integers are read as their decimal text, for incident ids).
    pub(super) fn opt_list(&self, key: &str) -> Result<Option<Vec<String>>, IngestError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let Json::Array(items) = value else {
            return Err(self.expected(key, "an array of strings", value));
        };
        let place = self.place.key(key);
        let mut list = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Json::String(s) => list.push(s.to_string()),
                Json::Number(n) if n.is_i64() || n.is_u64() => list.push(n.to_string()),
                other => {
                    return Err(place
                        .index(i)
                        .error(format!("expected a string, found {}", describe(other))));
                }
            }
        }
        Ok(Some(list))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Json<'_> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn paths_render_keys_and_indexes() {
        let origin = Path::new("e.json");
        let root = Place::root(origin, None);
        let deployments = root.key("deployments");
        let third = deployments.index(3);
        let changes = third.key("changes");
        let first = changes.index(1);
        assert_eq!(first.key("sha").path(), "deployments[3].changes[1].sha");
        let element = root.index(3);
        assert_eq!(element.key("finished_at").path(), "[3].finished_at");
        assert_eq!(root.path(), "");
    }

    #[test]
    fn typed_reads_name_field_expected_and_found() {
        let value =
            json(r#"{"at": "yesterday", "n": "x", "b": 3, "l": ["a", 1, {}], "empty": ""}"#);
        let origin = Path::new("e.ndjson");
        let place = Place::root(origin, Some(12));
        let fields = Fields::new(&value, &place, "deployment").unwrap();
        let err = fields.opt_ts("at").unwrap_err().to_string();
        assert_eq!(
            err,
            "e.ndjson:12: column `at`: expected an RFC 3339 timestamp, found \"yesterday\""
        );
        let err = fields.opt_int("n").unwrap_err().to_string();
        assert_eq!(
            err,
            "e.ndjson:12: column `n`: expected an integer, found \"x\""
        );
        let err = fields.opt_bool("b").unwrap_err().to_string();
        assert_eq!(
            err,
            "e.ndjson:12: column `b`: expected true or false, found 3"
        );
        let err = fields.opt_list("l").unwrap_err().to_string();
        assert_eq!(
            err,
            "e.ndjson:12: column `l[2]`: expected a string, found an object"
        );
        assert_eq!(fields.opt_str("empty").unwrap(), None);
        let err = fields.req_str("empty").unwrap_err().to_string();
        assert_eq!(
            err,
            "e.ndjson:12: column `empty`: required for a deployment, but empty"
        );
        let value = json(r#"{"at": "2020-01-01T14:00:00+0200"}"#);
        let fields = Fields::new(&value, &place, "deployment").unwrap();
        assert_eq!(fields.opt_ts("at").unwrap(), Some(1_577_880_000_000_000)); // 12:00Z
        let err = fields.req_str("missing").unwrap_err().to_string();
        assert_eq!(
            err,
            "e.ndjson:12: column `missing`: required for a deployment, but missing"
        );
    }
}
