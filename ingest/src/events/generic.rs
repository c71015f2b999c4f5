//! The generic event records of docs/events.md (`deployment`, `change`, `incident`) mapped to
//! canonical rows; records that look like DevLake payloads are handed to [`super::devlake`].

use super::json::Json;

use super::devlake;
use super::fields::{Fields, Place, describe};
use super::rows::{
    ChangeRow, Collector, DeploymentRow, IncidentRow, Status, change_id, deployment_id, incident_id,
};
use crate::error::IngestError;

/// The source that qualifies keys when a record names none (docs/events.md).
const DEFAULT_SOURCE: &str = "events";

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Deployment,
    Change,
    Incident,
}

impl Kind {
    fn parse(text: &str) -> Option<Kind> {
        [
            ("deployment", Kind::Deployment),
            ("change", Kind::Change),
            ("incident", Kind::Incident),
        ]
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, kind)| kind)
    }
}

/// The fields that carry a record's own id: `id` in JSON; `deployment_id`/`incident_id` in CSV.
pub(super) struct IdKeys {
    deployment: &'static [&'static str],
    incident: &'static [&'static str],
}

/// Ids as JSON records name them.
pub(super) const JSON_IDS: IdKeys = IdKeys {
    deployment: &["id"],
    incident: &["id"],
};
/// Ids as CSV headers name them (`id` is read too).
pub(super) const CSV_IDS: IdKeys = IdKeys {
    deployment: &["deployment_id", "id"],
    incident: &["incident_id", "id"],
};

/// Reads one record at `place`. `kind` is what the surrounding shape says (the array it sits in,
/// the CSV header); otherwise the record's `type` decides.
pub(super) fn read_record(
    value: &Json<'_>,
    place: &Place<'_>,
    kind: Option<Kind>,
    ids: &IdKeys,
    out: &mut Collector,
    ingested_at: i64,
) -> Result<(), IngestError> {
    read_one(value, place, kind, ids, out, ingested_at)?;
    out.record_done(place.origin())
}

fn read_one(
    value: &Json<'_>,
    place: &Place<'_>,
    kind: Option<Kind>,
    ids: &IdKeys,
    out: &mut Collector,
    ingested_at: i64,
) -> Result<(), IngestError> {
    let fields = Fields::new(value, place, "record")?;
    if let Some(shape) = devlake::shape_of(&fields, kind.is_some()) {
        return devlake::read(&fields, shape, out, ingested_at);
    }
    let kind = match kind {
        Some(kind) => kind,
        None => match fields.get("type") {
            Some(Json::String(text)) => Kind::parse(text).ok_or_else(|| {
                fields.error(
                    "type",
                    format!("expected deployment, change or incident, found {text:?}"),
                )
            })?,
            Some(other) => {
                return Err(fields.error(
                    "type",
                    format!(
                        "expected deployment, change or incident, found {}",
                        describe(other)
                    ),
                ));
            }
            None => {
                return Err(fields.error(
                    "type",
                    "required (deployment, change or incident), but missing; \
                     the record is not a DevLake payload either",
                ));
            }
        },
    };
    match kind {
        Kind::Deployment => read_deployment(
            &Fields {
                kind: "deployment",
                ..fields
            },
            ids,
            out,
        ),
        Kind::Change => read_standalone_change(
            &Fields {
                kind: "change",
                ..fields
            },
            out,
        ),
        Kind::Incident => read_incident(
            &Fields {
                kind: "incident",
                ..fields
            },
            ids,
            out,
        ),
    }
}

fn status(fields: &Fields<'_, '_>, key: &str) -> Result<Status, IngestError> {
    let text = fields.req_str(key)?;
    Status::parse(text).ok_or_else(|| {
        fields.error(
            key,
            format!(
                "expected success, failure or cancelled (or succeeded, failed, error, canceled), found {text:?}"
            ),
        )
    })
}

fn read_deployment(
    fields: &Fields<'_, '_>,
    ids: &IdKeys,
    out: &mut Collector,
) -> Result<(), IngestError> {
    let source = fields.opt_str("source")?.unwrap_or(DEFAULT_SOURCE);
    let id = fields
        .opt_id_any(ids.deployment)?
        .ok_or_else(|| fields.missing(ids.deployment))?;
    let service = fields.opt_str("service")?;
    let repo = fields.opt_str("repo")?;
    let environment = fields.req_str("environment")?;
    let git_ref = fields.opt_str("ref")?;
    let commit_sha = fields.req_str("commit_sha")?;
    let started_at = fields.opt_ts("started_at")?;
    let finished_at = fields.req_ts("finished_at")?;
    let status = status(fields, "status")?;
    let is_rollback = fields.opt_bool("is_rollback")?.unwrap_or(false);
    let url = fields.opt_str("url")?;
    if service.is_none() && repo.is_none() {
        return Err(fields.error(
            "repo",
            "required for a deployment without `service`, but missing",
        ));
    }

    // A `changes` list, even empty, is the full list of what shipped; without one the source
    // named only the head commit (DESIGN §4, lead-time coverage).
    let mut shipped = Vec::new();
    let commits_listed = match fields.get("changes") {
        Some(Json::Array(items)) => {
            let Some(repo) = repo else {
                return Err(fields.error(
                    "repo",
                    "required for a deployment with `changes`, but missing",
                ));
            };
            let list_place = fields.place.key("changes");
            shipped.reserve(items.len());
            for (i, item) in items.iter().enumerate() {
                let item_place = list_place.index(i);
                let change = Fields::new(item, &item_place, "change")?;
                let row = read_change(&change, source, Some(repo))?;
                shipped.push(out.change(row));
            }
            true
        }
        Some(other) => {
            return Err(fields.error(
                "changes",
                format!("expected an array of changes, found {}", describe(other)),
            ));
        }
        None => {
            if let Some(repo) = repo {
                let head = ChangeRow::minimal(source, repo, commit_sha);
                shipped.push(out.change(head));
            }
            false
        }
    };
    out.deployment(DeploymentRow {
        deployment_id: deployment_id(source, &id),
        source: source.to_owned(),
        service: service.map(str::to_owned),
        repo: repo.map(str::to_owned),
        environment: environment.to_owned(),
        git_ref: git_ref.map(str::to_owned),
        commit_sha: Some(commit_sha.to_owned()),
        started_at,
        finished_at: Some(finished_at),
        status,
        is_rollback,
        url: url.map(str::to_owned),
        commits_listed,
        deployment_group: None,
        shipped,
    });
    Ok(())
}

/// A change object; `default_repo` is the deployment's repo for changes listed under it.
fn read_change(
    fields: &Fields<'_, '_>,
    source: &str,
    default_repo: Option<&str>,
) -> Result<ChangeRow, IngestError> {
    let source = fields.opt_str("source")?.unwrap_or(source);
    let repo = match fields.opt_str("repo")?.or(default_repo) {
        Some(repo) => repo,
        None => return Err(fields.missing(&["repo"])),
    };
    let sha = fields.req_str("sha")?;
    Ok(ChangeRow {
        change_id: change_id(repo, sha),
        source: source.to_owned(),
        service: fields.opt_str("service")?.map(str::to_owned),
        repo: repo.to_owned(),
        sha: sha.to_owned(),
        authored_at: fields.opt_ts("authored_at")?,
        committed_at: Some(fields.req_ts("committed_at")?),
        paths: fields.opt_list("paths")?,
        pr_number: fields.opt_int("pr_number")?,
        pr_first_commit_at: fields.opt_ts("pr_first_commit_at")?,
        pr_opened_at: fields.opt_ts("pr_opened_at")?,
        pr_first_review_at: fields.opt_ts("pr_first_review_at")?,
        pr_merged_at: fields.opt_ts("pr_merged_at")?,
        pr_head_branch: fields.opt_str("pr_head_branch")?.map(str::to_owned),
        labels: fields.opt_list("labels")?,
        incident_refs: fields.opt_list("incident_refs")?,
    })
}

fn read_standalone_change(fields: &Fields<'_, '_>, out: &mut Collector) -> Result<(), IngestError> {
    let source = fields.opt_str("source")?.unwrap_or(DEFAULT_SOURCE);
    let row = read_change(fields, source, None)?;
    let deployment = fields.opt_id_any(&["deployment_id"])?;
    let change = out.change(row);
    if let Some(deployment) = deployment {
        out.link(
            deployment_id(source, &deployment),
            change,
            source.to_owned(),
        );
    }
    Ok(())
}

fn read_incident(
    fields: &Fields<'_, '_>,
    ids: &IdKeys,
    out: &mut Collector,
) -> Result<(), IngestError> {
    let source = fields.opt_str("source")?.unwrap_or(DEFAULT_SOURCE);
    let id = fields
        .opt_id_any(ids.incident)?
        .ok_or_else(|| fields.missing(ids.incident))?;
    let caused_by = fields.opt_id_any(&["caused_by_deployment_id"])?;
    out.incident(IncidentRow {
        incident_id: incident_id(source, &id),
        source: source.to_owned(),
        service: Some(fields.req_str("service")?.to_owned()),
        title: fields.opt_str("title")?.map(str::to_owned),
        severity: fields.opt_id_any(&["severity"])?.map(|s| s.into_owned()),
        started_at: fields.req_ts("started_at")?,
        resolved_at: fields.opt_ts("resolved_at")?,
        caused_by_deployment_id: caused_by.map(|d| deployment_id(source, &d)),
        caused_by_sha: fields.opt_str("caused_by_sha")?.map(str::to_owned),
        url: fields.opt_str("url")?.map(str::to_owned),
    });
    Ok(())
}
