//! Apache DevLake webhook payloads: deployments (head commit only) and incident issues, each file
//! a JSON array with one payload per line.

use serde::Serialize;

use crate::GenerateError;
use crate::calendar::format_timestamp;
use crate::delivery::{Deployment, Incident, RepoHistory, Status};
use crate::org::Org;
use crate::writers::OutFile;

#[derive(Serialize)]
struct DeploymentPayload<'a> {
    id: String,
    commit_sha: &'a str,
    repo_url: String,
    start_time: String,
    end_time: String,
    environment: &'static str,
    result: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IssuePayload<'a> {
    issue_key: String,
    title: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    status: &'static str,
    created_date: String,
    resolution_date: Option<String>,
    severity: &'static str,
    /// DevLake's component field carries the service; `service` repeats it for the generic reader.
    component: &'a str,
    service: &'a str,
}

/// A JSON array written one element per line.
pub struct JsonArrayFile {
    out: OutFile,
    elements: u64,
}

impl JsonArrayFile {
    /// Creates the file and opens the array.
    pub fn create(path: &std::path::Path) -> Result<Self, GenerateError> {
        let mut out = OutFile::create(path)?;
        out.write(b"[")?;
        Ok(JsonArrayFile { out, elements: 0 })
    }

    fn push<T: Serialize>(&mut self, value: &T) -> Result<(), GenerateError> {
        self.out
            .write(if self.elements == 0 { b"\n" } else { b",\n" })?;
        self.elements += 1;
        self.out.write_json(value)
    }

    /// Closes the array and the file.
    pub fn finish(mut self) -> Result<std::path::PathBuf, GenerateError> {
        self.out.write(b"\n]\n")?;
        self.out.finish()
    }

    /// Appends a production deployment as a DevLake deployment payload.
    pub fn push_deployment(
        &mut self,
        org: &Org,
        history: &RepoHistory,
        deployment: &Deployment,
    ) -> Result<(), GenerateError> {
        let payload = DeploymentPayload {
            id: deployment.id.to_string(),
            commit_sha: &history.changes[deployment.head].sha,
            repo_url: format!("https://github.com/{}", org.repos[history.repo].name),
            start_time: format_timestamp(deployment.started_at),
            end_time: format_timestamp(deployment.finished_at),
            environment: "PRODUCTION",
            result: if deployment.status == Status::Success {
                "SUCCESS"
            } else {
                "FAILURE"
            },
        };
        self.push(&payload)
    }

    /// Appends an incident as a DevLake issue of type INCIDENT.
    pub fn push_incident(&mut self, org: &Org, incident: &Incident) -> Result<(), GenerateError> {
        let service = &org.services[incident.service].name;
        let payload = IssuePayload {
            issue_key: format!("INC-{}", incident.id),
            title: &incident.title,
            kind: "INCIDENT",
            status: if incident.resolved_at.is_some() {
                "DONE"
            } else {
                "IN_PROGRESS"
            },
            created_date: format_timestamp(incident.started_at),
            resolution_date: incident.resolved_at.map(format_timestamp),
            severity: incident.severity,
            component: service,
            service,
        };
        self.push(&payload)
    }
}
