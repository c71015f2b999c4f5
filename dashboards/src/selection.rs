//! What a page shows: the month, service, team, period and date range chosen in its form (the
//! query string), checked against the config and bound into every panel's SQL as values, never
//! written into it.

use chrono::{Datelike, Months, NaiveDate};
use datafusion::scalar::ScalarValue;
use model::Config;
use query::reports::{BoundQuery, Period};

/// The placeholders a panel's SQL may use, and what each holds.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("month", "DATE: the first day of the month shown"),
    ("month_end", "DATE: the first day of the month after it"),
    (
        "previous_month",
        "DATE: the first day of the month before it",
    ),
    (
        "trend_from",
        "DATE: the first day of the 12-month trend ending with the month shown",
    ),
    (
        "from",
        "DATE: the first day of the date range (default: `trend_from`)",
    ),
    (
        "to",
        "DATE: the last day of the date range (default: the month's last day)",
    ),
    (
        "service",
        "VARCHAR: the service chosen, or NULL for all of them",
    ),
    ("team", "VARCHAR: the team chosen, or NULL for all of them"),
    (
        "budget",
        "VARCHAR: the `[[budgets]]` entry chosen, or NULL (budget charts then pick one by scope)",
    ),
    (
        "period",
        "VARCHAR: `day`, `week` or `month` (default `month`)",
    ),
];

/// A page's choices, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The month shown: its first day.
    pub month: NaiveDate,
    /// Whether the month was chosen (else it is the latest complete month).
    pub month_chosen: bool,
    /// One service, or all.
    pub service: Option<String>,
    /// One team, or all.
    pub team: Option<String>,
    /// One budget (budget charts), or none.
    pub budget: Option<String>,
    /// The period kind of trends.
    pub period: Period,
    /// The date range's first day.
    pub from: NaiveDate,
    /// The date range's last day.
    pub to: NaiveDate,
    /// Whether the range was chosen.
    pub range_chosen: bool,
}

/// A query-string parameter that is malformed or names nothing the config knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {message}")]
pub struct SelectionError {
    /// The parameter.
    pub parameter: String,
    /// What was expected.
    pub message: String,
}

fn bad(parameter: &str, message: impl Into<String>) -> SelectionError {
    SelectionError {
        parameter: parameter.to_owned(),
        message: message.into(),
    }
}

/// The first day of `date`'s month.
pub fn first_of_month(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

impl Selection {
    /// The choices in `pairs` (a query string's), checked against `config`; the month is
    /// `default_month` when not chosen. Unknown parameters are errors, so a mistyped filter
    /// is not silently ignored.
    pub fn parse(
        pairs: &[(String, String)],
        config: &Config,
        default_month: NaiveDate,
    ) -> Result<Selection, SelectionError> {
        let mut month = None;
        let mut service = None;
        let mut team = None;
        let mut budget = None;
        let mut period = Period::Month;
        let mut from = None;
        let mut to = None;
        for (name, value) in pairs {
            let value = value.trim();
            // An empty value is a form's "all": the same as leaving the parameter out.
            if value.is_empty() {
                continue;
            }
            match name.as_str() {
                "month" => {
                    let date = NaiveDate::parse_from_str(&format!("{value}-01"), "%Y-%m-%d")
                        .map_err(|_| bad("month", format!("`{value}`: expected YYYY-MM")))?;
                    month = Some(date);
                }
                "service" => {
                    if !config.services.iter().any(|s| s.name == value) {
                        return Err(bad(
                            "service",
                            format!("`{value}` is not a service in the config"),
                        ));
                    }
                    service = Some(value.to_owned());
                }
                "team" => {
                    if !config
                        .services
                        .iter()
                        .any(|s| s.team.as_deref() == Some(value))
                    {
                        return Err(bad(
                            "team",
                            format!("`{value}` is not the team of any service in the config"),
                        ));
                    }
                    team = Some(value.to_owned());
                }
                "budget" => {
                    if !config.budgets.iter().any(|b| b.name == value) {
                        return Err(bad(
                            "budget",
                            format!("`{value}` is not a budget in the config"),
                        ));
                    }
                    budget = Some(value.to_owned());
                }
                "period" => {
                    period = value
                        .parse::<Period>()
                        .map_err(|message| bad("period", format!("`{value}`: {message}")))?;
                }
                "from" | "to" => {
                    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d")
                        .map_err(|_| bad(name, format!("`{value}`: expected YYYY-MM-DD")))?;
                    if name == "from" {
                        from = Some(date);
                    } else {
                        to = Some(date);
                    }
                }
                other => {
                    return Err(bad(
                        other,
                        "unknown parameter: expected month, service, team, budget, period, from or to",
                    ));
                }
            }
        }
        let month_chosen = month.is_some();
        let month = month.unwrap_or_else(|| first_of_month(default_month));
        let month_end = month + Months::new(1);
        let trend_from = month - Months::new(11);
        let range_chosen = from.is_some() || to.is_some();
        let from = from.unwrap_or(trend_from);
        let to = to.unwrap_or(month_end.pred_opt().unwrap_or(month_end));
        if from > to {
            return Err(bad("from", format!("{from} is after to={to}")));
        }
        Ok(Selection {
            month,
            month_chosen,
            service,
            team,
            budget,
            period,
            from,
            to,
            range_chosen,
        })
    }

    /// The first day of the month after the one shown.
    pub fn month_end(&self) -> NaiveDate {
        self.month + Months::new(1)
    }

    /// `sql` with the values of the placeholders it uses.
    pub fn bind(&self, sql: &str) -> BoundQuery {
        let date = |d: NaiveDate| {
            ScalarValue::Date32(Some(arrow::datatypes::Date32Type::from_naive_date(d)))
        };
        let text = |t: &Option<String>| ScalarValue::Utf8(t.clone());
        let params = crate::spec::placeholders(sql)
            .into_iter()
            .filter_map(|name| {
                let value = match name.as_str() {
                    "month" => date(self.month),
                    "month_end" => date(self.month_end()),
                    "previous_month" => date(self.month - Months::new(1)),
                    "trend_from" => date(self.month - Months::new(11)),
                    "from" => date(self.from),
                    "to" => date(self.to),
                    "service" => text(&self.service),
                    "team" => text(&self.team),
                    "budget" => text(&self.budget),
                    "period" => ScalarValue::Utf8(Some(self.period.as_str().to_owned())),
                    _ => return None,
                };
                Some((name, value))
            })
            .collect();
        BoundQuery {
            sql: sql.to_owned(),
            params,
        }
    }

    /// The choices as a query string (`?month=2026-03&service=checkout`), only those made.
    pub fn query_string(&self) -> String {
        let mut pairs = Vec::new();
        if self.month_chosen {
            pairs.push(format!("month={}", self.month.format("%Y-%m")));
        }
        if let Some(service) = &self.service {
            pairs.push(format!("service={}", encode(service)));
        }
        if let Some(team) = &self.team {
            pairs.push(format!("team={}", encode(team)));
        }
        if let Some(budget) = &self.budget {
            pairs.push(format!("budget={}", encode(budget)));
        }
        if self.period != Period::Month {
            pairs.push(format!("period={}", self.period.as_str()));
        }
        if self.range_chosen {
            pairs.push(format!("from={}&to={}", self.from, self.to));
        }
        if pairs.is_empty() {
            String::new()
        } else {
            format!("?{}", pairs.join("&"))
        }
    }
}

/// Percent-encodes a query-string value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(
            "[[services]]\nname = \"checkout\"\nteam = \"payments\"\n[[services]]\nname = \"search\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_and_choices() {
        let default = NaiveDate::from_ymd_opt(2026, 3, 17).unwrap();
        let s = Selection::parse(&[], &config(), default).unwrap();
        assert_eq!(s.month, NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
        // 12 months ending with March 2026: April 2025 to 31 March 2026.
        assert_eq!(s.from, NaiveDate::from_ymd_opt(2025, 4, 1).unwrap());
        assert_eq!(s.to, NaiveDate::from_ymd_opt(2026, 3, 31).unwrap());
        assert_eq!(s.query_string(), "");

        let s = Selection::parse(
            &pairs(&[("month", "2025-12"), ("service", "checkout"), ("team", "")]),
            &config(),
            default,
        )
        .unwrap();
        assert_eq!(s.month_end(), NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        assert_eq!(s.team, None);
        assert_eq!(s.query_string(), "?month=2025-12&service=checkout");
    }

    #[test]
    fn bad_choices_name_the_parameter() {
        let default = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        for (query, parameter) in [
            (("month", "2026-13"), "month"),
            (("service", "nope"), "service"),
            (("team", "nobody"), "team"),
            (("period", "year"), "period"),
            (("from", "yesterday"), "from"),
            (("sevrice", "checkout"), "sevrice"),
        ] {
            let err = Selection::parse(&pairs(&[query]), &config(), default).unwrap_err();
            assert_eq!(err.parameter, parameter, "{err}");
        }
        let err = Selection::parse(
            &pairs(&[("from", "2026-02-01"), ("to", "2026-01-01")]),
            &config(),
            default,
        )
        .unwrap_err();
        assert_eq!(err.parameter, "from");
    }

    #[test]
    fn only_the_placeholders_used_are_bound() {
        let default = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let s = Selection::parse(&pairs(&[("team", "payments")]), &config(), default).unwrap();
        let bound = s.bind("SELECT * FROM t WHERE ($team IS NULL OR team = $team) AND m = $month");
        let names: Vec<&str> = bound.params.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["team", "month"]);
        assert_eq!(
            bound.params[0].1,
            ScalarValue::Utf8(Some("payments".into()))
        );
    }
}
