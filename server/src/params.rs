//! The API's query-string parameters: declared once per route ([`RouteSpec`]), read and checked
//! by [`Params`] (an unknown parameter, a bad date or a name the config does not know is a 400
//! naming it), and listed in the OpenAPI document from the same declarations.

use chrono::NaiveDate;
use query::reports::Scope;

use crate::error::ServerError;
use crate::state::AppState;

/// What a parameter's value must look like.
#[derive(Debug, Clone, Copy)]
pub enum ParamKind {
    /// `YYYY-MM-DD`.
    Date,
    /// `YYYY-MM`.
    Month,
    /// A configured name (service, team).
    Name,
    /// One of these words.
    Choice(&'static [&'static str]),
}

/// One query-string parameter of a route.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// Its name.
    pub name: &'static str,
    /// Its form.
    pub kind: ParamKind,
    /// What it selects.
    pub description: &'static str,
}

/// One route of the API, as the router mounts it and the OpenAPI document lists it.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path (axum's form).
    pub path: &'static str,
    /// One line on what it answers.
    pub summary: &'static str,
    /// Its query-string parameters.
    pub params: &'static [ParamSpec],
    /// Needs the bearer token when one is configured.
    pub needs_token: bool,
    /// The response's media type.
    pub answers: &'static str,
}

impl RouteSpec {
    /// A `GET` route answering JSON, open to every caller.
    pub const fn get(
        path: &'static str,
        summary: &'static str,
        params: &'static [ParamSpec],
    ) -> RouteSpec {
        RouteSpec {
            method: "GET",
            path,
            summary,
            params,
            needs_token: false,
            answers: "application/json",
        }
    }
}

pub(crate) const SERVICE: ParamSpec = ParamSpec {
    name: "service",
    kind: ParamKind::Name,
    description: "one service of [[services]] (not with team)",
};
pub(crate) const TEAM: ParamSpec = ParamSpec {
    name: "team",
    kind: ParamKind::Name,
    description: "one team of [[services]], its services pooled (not with service)",
};
pub(crate) const MONTH: ParamSpec = ParamSpec {
    name: "month",
    kind: ParamKind::Month,
    description: "the month, YYYY-MM",
};
pub(crate) const FROM: ParamSpec = ParamSpec {
    name: "from",
    kind: ParamKind::Date,
    description: "the first period: the one holding this date",
};
pub(crate) const TO: ParamSpec = ParamSpec {
    name: "to",
    kind: ParamKind::Date,
    description: "the last period: the one holding this date",
};
pub(crate) const PERIOD: ParamSpec = ParamSpec {
    name: "period",
    kind: ParamKind::Choice(&["day", "week", "month"]),
    description: "the period kind (default month)",
};

/// A query string's parameters, taken one by one; whatever is left is unknown.
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
    route: &'static RouteSpec,
}

impl Params {
    pub(crate) fn new(route: &'static RouteSpec, pairs: Vec<(String, String)>) -> Params {
        Params { pairs, route }
    }

    /// The value of `name` (empty counts as absent); given twice is an error.
    pub(crate) fn text(&mut self, spec: ParamSpec) -> Result<Option<String>, ServerError> {
        debug_assert!(self.route.params.iter().any(|p| p.name == spec.name));
        let mut found = None;
        let mut rest = Vec::with_capacity(self.pairs.len());
        for (key, value) in self.pairs.drain(..) {
            if key == spec.name {
                if found.is_some() {
                    return Err(ServerError::bad(spec.name, "given more than once"));
                }
                found = Some(value);
            } else {
                rest.push((key, value));
            }
        }
        self.pairs = rest;
        Ok(found.filter(|v| !v.trim().is_empty()))
    }

    pub(crate) fn date(&mut self, spec: ParamSpec) -> Result<Option<NaiveDate>, ServerError> {
        self.text(spec)?
            .map(|text| {
                NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
                    ServerError::bad(
                        spec.name,
                        format!("expected a date as YYYY-MM-DD, found `{text}`"),
                    )
                })
            })
            .transpose()
    }

    pub(crate) fn month(&mut self, spec: ParamSpec) -> Result<Option<NaiveDate>, ServerError> {
        self.text(spec)?
            .map(|text| {
                NaiveDate::parse_from_str(&format!("{}-01", text.trim()), "%Y-%m-%d").map_err(
                    |_| {
                        ServerError::bad(
                            spec.name,
                            format!("expected a month as YYYY-MM (e.g. 2025-11), found `{text}`"),
                        )
                    },
                )
            })
            .transpose()
    }

    /// `service` or `team` (not both), checked against the config.
    pub(crate) fn scope(
        &mut self,
        state: &AppState,
        allow_unallocated: bool,
    ) -> Result<Scope, ServerError> {
        let service = self.text(SERVICE)?;
        let team = self.text(TEAM)?;
        let scope = match (service, team) {
            (Some(_), Some(_)) => {
                return Err(ServerError::bad("team", "give service or team, not both"));
            }
            (Some(service), None) => Scope::Service(service),
            (None, Some(team)) => Scope::Team(team),
            (None, None) => Scope::Everything,
        };
        Ok(scope.checked(state.config(), allow_unallocated)?)
    }

    /// Every parameter was taken: one left over is unknown.
    pub(crate) fn finish(self) -> Result<(), ServerError> {
        match self.pairs.into_iter().next() {
            None => Ok(()),
            Some((key, _)) => {
                let known: Vec<&str> = self.route.params.iter().map(|p| p.name).collect();
                let expected = if known.is_empty() {
                    "this route takes no parameters".to_owned()
                } else {
                    format!("expected: {}", known.join(", "))
                };
                Err(ServerError::bad(
                    key,
                    format!("unknown parameter ({expected})"),
                ))
            }
        }
    }
}
