//! Which source formats `generate` writes (`doracost sample generate --formats`).

use std::fmt;
use std::str::FromStr;

/// One source format of the sample organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `events/`: the generic events NDJSON and Apache DevLake payloads.
    Events,
    /// `costs/`: FOCUS 1.0 CSV bills.
    Focus,
    /// `github/`: GitHub REST v3 response bodies and webhook deliveries.
    Github,
    /// `git/<owner>/<name>.git`: a bare git repository per repo.
    Git,
    /// `pagerduty/`: PagerDuty REST API v2 bodies.
    Pagerduty,
}

impl Format {
    /// Every format, in the order they are written.
    pub const ALL: [Format; 5] = [
        Format::Events,
        Format::Focus,
        Format::Github,
        Format::Git,
        Format::Pagerduty,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Events => "events",
            Format::Focus => "focus",
            Format::Github => "github",
            Format::Git => "git",
            Format::Pagerduty => "pagerduty",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of formats. The default, `events,focus`, is what the demo and the checked-in
/// `sample-data/small` use; `doracost.toml` and `truth.json` are written whatever the set.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Formats(u8);

impl Formats {
    /// No format.
    pub const NONE: Formats = Formats(0);

    /// Every format.
    pub fn all() -> Formats {
        Format::ALL.into_iter().collect()
    }

    /// Whether `format` is in the set.
    pub fn contains(self, format: Format) -> bool {
        self.0 & format.bit() != 0
    }

    /// The set with `format` added.
    pub fn with(self, format: Format) -> Formats {
        Formats(self.0 | format.bit())
    }
}

impl Default for Formats {
    fn default() -> Self {
        Formats::NONE.with(Format::Events).with(Format::Focus)
    }
}

impl FromIterator<Format> for Formats {
    fn from_iter<I: IntoIterator<Item = Format>>(formats: I) -> Self {
        formats.into_iter().fold(Formats::NONE, Formats::with)
    }
}

impl fmt::Display for Formats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Format::ALL
            .into_iter()
            .filter(|&format| self.contains(format))
            .map(Format::name)
            .collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Debug for Formats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Formats({self})")
    }
}

/// A `--formats` list naming no known format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown format {0:?}: expected a comma-separated list of events, focus, github, git, pagerduty, or all"
)]
pub struct ParseFormatsError(pub String);

impl FromStr for Formats {
    type Err = ParseFormatsError;

    /// A comma-separated list (`events,focus,git`), or `all`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut formats = Formats::NONE;
        for name in text.split(',').map(str::trim) {
            formats = match name {
                "all" => Formats::all(),
                _ => match Format::ALL.into_iter().find(|f| f.name() == name) {
                    Some(format) => formats.with(format),
                    None => return Err(ParseFormatsError(name.to_string())),
                },
            };
        }
        Ok(formats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_lists_parse_and_print() {
        assert_eq!(Formats::default().to_string(), "events,focus");
        assert_eq!(
            "git, events".parse::<Formats>().map(|f| f.to_string()),
            Ok("events,git".to_string())
        );
        assert_eq!("all".parse::<Formats>(), Ok(Formats::all()));
        assert_eq!(
            Formats::all().to_string(),
            "events,focus,github,git,pagerduty"
        );
        assert!("events,svn".parse::<Formats>().is_err());
        assert!("".parse::<Formats>().is_err());
        assert!(!Formats::default().contains(Format::Git));
    }
}
