-- The DORA metrics as DataFusion views (DESIGN §4). Each view says which part of §4 it implements.
--
-- Registered by `query::Engine` over the lake tables (`deployments`, `changes`,
-- `deployment_changes`, `incidents`) and the config tables (`services`, `reporting`, `targets`,
-- `dora_levels`). The one template value is {{time_zone}}, the IANA name from
-- `[reporting] time_zone` (a type literal must be constant); every other setting is read from the
-- `reporting` table, so `SELECT * FROM reporting` shows what the views used.
--
-- Durations are hours as DOUBLE, computed from exact microsecond differences. Local calendar keys
-- (`day`, `week` = ISO week's Monday, `month`) are DATEs in the reporting time zone.
--
-- Statements are separated by a line holding only `;`. A view marked `-- @cached` is computed once
-- per session, on first use, and kept in memory: the views above read the per-row views many
-- times, and a plain view would be recomputed at every reference. A view marked `-- @persisted` is
-- cached and also kept in the lake (`_derived/<view>`), recomputed by each ingest and read by new
-- sessions while it is fresh (same SQL, config and lake table versions; query/src/derived.rs), so
-- the period views start from it instead of from the canonical tables.

-- §4 "Service attribution": one row per service, repo and path prefix; `path_prefix` NULL means the
-- whole repo belongs to the service.
-- @internal
-- @cached
CREATE VIEW dora_service_map AS
WITH s AS (SELECT service, team, unnest(repos) AS repo, paths FROM services)
SELECT service, team, repo, CAST(NULL AS VARCHAR) AS path_prefix FROM s WHERE cardinality(paths) = 0
UNION ALL
SELECT service, team, repo, unnest(paths) AS path_prefix FROM s WHERE cardinality(paths) > 0
;
-- §4 "Service attribution", for changes: the service the source names; else every service whose
-- repo the change is in, and, for path-mapped (monorepo) services, one of whose prefixes a touched
-- path starts with. A change touching two services has two rows. A change no rule maps has none,
-- and then counts for the service of whichever deployment ships it.
-- @internal
-- @cached
CREATE VIEW dora_change_services AS
SELECT change_id, service FROM changes WHERE service IS NOT NULL
UNION
SELECT c.change_id, m.service
FROM changes c JOIN dora_service_map m ON c.repo = m.repo AND m.path_prefix IS NULL
WHERE c.service IS NULL
UNION
SELECT p.change_id, m.service
FROM (SELECT change_id, repo, unnest(paths) AS path FROM changes WHERE service IS NULL) p
JOIN dora_service_map m
  ON p.repo = m.repo AND m.path_prefix IS NOT NULL AND starts_with(p.path, m.path_prefix)
;
-- §4 "Only deployments to an environment that config names as production count", successful
-- ones only, each attributed to its services (§4 "Service attribution"): the service the source
-- names; else the services owning the whole repo, and the services whose paths the changes it
-- lists touch; else `unattributed`. Local calendar keys of `finished_at`.
--
-- One row per lake row (`part_id`) and service. A source that splits one deployment across repos
-- into a row per repo (a DevLake payload listing several repos' commits) marks its rows with one
-- `deployment_group`: they are one deployment (`deployment_id` is the group's, else the row's own
-- id), counted once per service in `dora_deployments` and above, while each row keeps its repo,
-- head commit and times for shipping, rollbacks and lead time. Such a deployment finished when
-- its last row did (`deployment_finished_at`; DevLake's dashboards take the latest
-- `finished_date` of a deployment's commits); `grouped` marks the rows of such deployments. `deployment_seq` numbers a service's deployments in
-- the order they finished; `seq` numbers its rows in that order (a deployment's rows in a row).
-- @internal
-- @cached
CREATE VIEW dora_production AS
WITH d AS (
  SELECT * FROM deployments
  WHERE status = 'success' AND finished_at IS NOT NULL
    AND lower(environment) IN (SELECT unnest(production_environments) FROM reporting)
),
unnamed AS (SELECT deployment_id, repo FROM d WHERE service IS NULL),
candidates AS (
  SELECT deployment_id, service, min(attributed_by) AS attributed_by FROM (
    SELECT u.deployment_id, m.service, 'repo' AS attributed_by
    FROM unnamed u JOIN dora_service_map m ON u.repo = m.repo AND m.path_prefix IS NULL
    UNION ALL
    SELECT u.deployment_id, cs.service, 'path' AS attributed_by
    FROM unnamed u
    JOIN deployment_changes dc ON dc.deployment_id = u.deployment_id
    JOIN dora_change_services cs ON cs.change_id = dc.change_id
    JOIN dora_service_map m ON m.service = cs.service AND m.repo = u.repo AND m.path_prefix IS NOT NULL
    UNION ALL
    SELECT deployment_id, 'unattributed' AS service, 'none' AS attributed_by FROM unnamed
  ) x GROUP BY deployment_id, service
),
complete AS (
  SELECT deployment_id, service, 'source' AS attributed_by FROM d WHERE service IS NOT NULL
  UNION ALL
  SELECT deployment_id, service, attributed_by FROM (
    SELECT *, count(*) OVER (PARTITION BY deployment_id) AS n FROM candidates
  ) y WHERE service <> 'unattributed' OR n = 1
),
teams AS (SELECT service, min(team) AS team FROM services GROUP BY service),
-- The deployments made of several rows: every row of a group, and a row whose own id is a group's
-- (the same deployment posted again as one row).
group_ids AS (SELECT DISTINCT deployment_group AS id FROM d WHERE deployment_group IS NOT NULL),
group_finish AS (
  SELECT gi.id, max(d.finished_at) AS finished_at
  FROM d JOIN group_ids gi ON gi.id = COALESCE(d.deployment_group, d.deployment_id)
  GROUP BY gi.id
),
localized AS (
  SELECT COALESCE(d.deployment_group, d.deployment_id) AS deployment_id, d.deployment_id AS part_id,
         a.service, t.team, a.attributed_by, d.repo, d.environment, d."ref",
         d.commit_sha, d.started_at, d.finished_at,
         COALESCE(g.finished_at, d.finished_at) AS deployment_finished_at,
         g.id IS NOT NULL AS grouped,
         d.is_rollback AS flagged_rollback, d.commits_listed, d.source,
         to_local_time(arrow_cast(d.finished_at, 'Timestamp(Microsecond, Some("{{time_zone}}"))')) AS local_finished
  FROM d JOIN complete a ON a.deployment_id = d.deployment_id
  LEFT JOIN teams t ON t.service = a.service
  LEFT JOIN group_finish g ON g.id = COALESCE(d.deployment_group, d.deployment_id)
)
SELECT deployment_id, part_id, service, team, attributed_by, repo, environment, "ref", commit_sha,
       started_at, finished_at, deployment_finished_at, grouped, flagged_rollback, commits_listed, source,
       CAST(date_trunc('day', local_finished) AS DATE) AS day,
       CAST(date_trunc('week', local_finished) AS DATE) AS week,
       CAST(date_trunc('month', local_finished) AS DATE) AS month,
       CAST(row_number() OVER (PARTITION BY service
         ORDER BY deployment_finished_at, deployment_id, finished_at, part_id) AS BIGINT) AS seq,
       CAST(dense_rank() OVER (PARTITION BY service
         ORDER BY deployment_finished_at, deployment_id) AS BIGINT) AS deployment_seq
FROM localized
;
-- §4 "Lead time for changes", the shipping rule: a deployment ships the changes its source lists
-- (`deployment_changes`; for a source that names only its head commit, that commit, which the
-- ingest records as its one listed change). A change counts for a deployment's service when it maps
-- to that service, or maps to none. Its first successful production deployment of that service is
-- the one that shipped it: a redeploy of a shipped sha, a later listing or a rollback ships nothing
-- new. One row per change and service, with the deployment and the row of it (`part_id`) that
-- listed it. (`seq` orders a service's rows by finish, so the first shipment is the listing with
-- the lowest `seq`: an aggregate, not a sort of every listing.)
-- @internal
-- @cached
CREATE VIEW dora_first_shipments AS
WITH shipped AS (
  SELECT dc.change_id, p.service, min(p.seq) AS seq
  FROM dora_production p JOIN deployment_changes dc ON dc.deployment_id = p.part_id
  GROUP BY dc.change_id, p.service
),
mapped AS (
  SELECT change_id, array_agg(service) AS services FROM dora_change_services GROUP BY change_id
)
SELECT s.change_id, s.service, p.deployment_id, p.part_id
FROM shipped s
JOIN dora_production p ON p.service = s.service AND p.seq = s.seq
LEFT JOIN mapped m ON m.change_id = s.change_id
WHERE m.change_id IS NULL OR array_has(m.services, s.service)
;
-- §4 "Lead time for changes": one row per change and service with its first successful production
-- deployment. Start = the PR's first commit when PR data exists (so squash merges, whose commits
-- are not in the deployed history, do not hide the PR's age), else `committed_at`. A negative span
-- (clock skew) gives NULL and `negative_lead_time = true`: dropped from medians, counted. PR
-- breakdown: coding (first commit → opened), pickup (opened → first review), review (first review →
-- merged), deploy (merged → deployed); each NULL when its ends are missing or it is negative.
-- Deployed = when the row that shipped it finished (for a deployment across repos, its repo's
-- row: DevLake takes each deployment commit's own finish too).
-- Columns:
-- - change_id: the change (`repo:sha`), as in `changes`
-- - service: the service it counts for (one row per service it maps to)
-- - team: the service's team from config (NULL when none)
-- - repo, sha: the change's repository and commit
-- - pr_number: its pull request (NULL without PR data)
-- - deployment_id: its first successful production deployment of this service
-- - deployed_at: when that deployment's row that shipped it finished (the end of the lead time)
-- - day, week, month: calendar keys of `deployed_at` in the reporting time zone (`week`: the ISO
--   week's Monday)
-- - lead_time_start: the start of the lead time: the PR's first commit, else `committed_at`
-- - start_kind: which start was used: `pr_first_commit` or `commit` (NULL with neither)
-- - lead_time_hours: `deployed_at` − `lead_time_start` in hours; NULL when negative or unknown
-- - negative_lead_time: the span was negative (clock skew): dropped from medians, counted
-- - coding_hours: PR's first commit → PR opened, hours (NULL when an end is missing or negative)
-- - pickup_hours: PR opened → first review by someone other than the author, hours
-- - review_hours: first review → merged, hours
-- - deploy_hours: merged → deployed, hours
-- - pr_head_branch, labels, incident_refs: the PR's branch, labels and incident references (the
--   rework rule reads them)
-- @persisted
CREATE VIEW dora_changes AS
WITH j AS (
  SELECT c.change_id, f.service, p.team, c.repo, c.sha, c.pr_number, c.committed_at,
         c.pr_first_commit_at, c.pr_opened_at, c.pr_first_review_at, c.pr_merged_at,
         c.pr_head_branch, c.labels, c.incident_refs,
         f.deployment_id, p.finished_at AS deployed_at, p.day, p.week, p.month,
         CASE WHEN c.pr_first_commit_at IS NOT NULL THEN c.pr_first_commit_at ELSE c.committed_at END AS lead_time_start,
         CASE WHEN c.pr_first_commit_at IS NOT NULL THEN 'pr_first_commit' WHEN c.committed_at IS NOT NULL THEN 'commit' END AS start_kind
  FROM dora_first_shipments f
  JOIN changes c ON c.change_id = f.change_id
  JOIN dora_production p ON p.part_id = f.part_id AND p.service = f.service
),
spans AS (
  SELECT j.*,
    (CAST(deployed_at AS BIGINT) - CAST(lead_time_start AS BIGINT)) / 3600000000.0 AS lead_span,
    (CAST(pr_opened_at AS BIGINT) - CAST(pr_first_commit_at AS BIGINT)) / 3600000000.0 AS coding_span,
    (CAST(pr_first_review_at AS BIGINT) - CAST(pr_opened_at AS BIGINT)) / 3600000000.0 AS pickup_span,
    (CAST(pr_merged_at AS BIGINT) - CAST(pr_first_review_at AS BIGINT)) / 3600000000.0 AS review_span,
    (CAST(deployed_at AS BIGINT) - CAST(pr_merged_at AS BIGINT)) / 3600000000.0 AS deploy_span
  FROM j
)
SELECT change_id, service, team, repo, sha, pr_number, deployment_id, deployed_at, day, week, month,
       lead_time_start, start_kind,
       CASE WHEN lead_span >= 0 THEN lead_span END AS lead_time_hours,
       COALESCE(lead_span < 0, false) AS negative_lead_time,
       CASE WHEN coding_span >= 0 THEN coding_span END AS coding_hours,
       CASE WHEN pickup_span >= 0 THEN pickup_span END AS pickup_hours,
       CASE WHEN review_span >= 0 THEN review_span END AS review_hours,
       CASE WHEN deploy_span >= 0 AND pr_merged_at IS NOT NULL THEN deploy_span END AS deploy_hours,
       pr_head_branch, labels, incident_refs
FROM spans
;
-- §4 "Change failure rate" (c): rollbacks. A rollback is a deployment flagged as one, or a redeploy
-- of an earlier sha of the service (not the sha already in production). It undoes every successful
-- production deployment of the service made since that sha was last deployed; a flagged rollback
-- to a sha never deployed before undoes the deployment it replaced. `undo_from`..`undo_to` are the
-- `deployment_seq` numbers undone (none when `undo_from` is NULL). Counted in deployments, not
-- rows: a deployment across repos is a rollback when one of its rows is (undoing from the
-- earliest any of them undoes), and a repo it leaves at the sha already in production (the same
-- sha in the deployment before) rolls nothing back.
-- @internal
-- @cached
CREATE VIEW dora_rollbacks AS
WITH l AS (
  -- The previous deployment of the same sha: the row before in (sha, seq) order within the
  -- service, when it has the same sha (one window per service: a window per (service, sha) is a
  -- partition per deployment, slow in DataFusion).
  SELECT deployment_id, service, deployment_seq, deployment_finished_at, flagged_rollback,
    CASE WHEN lag(commit_sha) OVER (PARTITION BY service ORDER BY commit_sha, seq) = commit_sha
         THEN lag(deployment_seq) OVER (PARTITION BY service ORDER BY commit_sha, seq) END AS prev_same_sha_seq
  FROM dora_production
),
r AS (
  SELECT deployment_id, service, deployment_seq, deployment_finished_at, flagged_rollback,
         CASE WHEN prev_same_sha_seq IS NOT NULL AND prev_same_sha_seq < deployment_seq - 1 THEN prev_same_sha_seq + 1
              WHEN flagged_rollback AND prev_same_sha_seq IS NULL AND deployment_seq > 1 THEN deployment_seq - 1 END AS undo_from,
         prev_same_sha_seq IS NOT NULL AND prev_same_sha_seq < deployment_seq - 1 AS redeploys_earlier_sha
  FROM l
  WHERE flagged_rollback OR (prev_same_sha_seq IS NOT NULL AND prev_same_sha_seq < deployment_seq - 1)
)
SELECT deployment_id, service, deployment_seq AS seq, max(deployment_finished_at) AS finished_at,
       bool_or(flagged_rollback) AS flagged_rollback, min(undo_from) AS undo_from,
       deployment_seq - 1 AS undo_to, bool_or(redeploys_earlier_sha) AS redeploys_earlier_sha
FROM r GROUP BY deployment_id, service, deployment_seq
;
-- §4 "Change failure rate": every failure signal on a successful production deployment.
-- (a) `incident`: an incident names it by `caused_by_deployment_id` (its id, or the id of one of
--     its rows for a deployment across repos; for a deployment attributed to several services,
--     the row of the incident's service when there is one, else all its rows),
--     or by `caused_by_sha` (the deployment of the incident's service that first shipped that
--     commit, else the first one whose head it was; a short sha of 7+ characters matches its
--     prefix). An explicit link that matches no successful production deployment attributes the
--     incident to none: it still counts for time to restore.
-- (b) `attribution_window`: an incident with no link goes to the deployment of its service that was
--     in production when it began (the last to finish at or before its start), only when that
--     deployment finished at most `attribution_window_days` before.
-- (c) `rollback`: a rollback undoes it (see `dora_rollbacks`).
-- Signal start/end: the incident's `started_at`/`resolved_at` (NULL while open); for a rollback the
-- undone deployment's `finished_at` and the rollback's `finished_at`. Signals are of deployments
-- (`deployment_id`), not of their rows: one rollback undoing a deployment across repos is one
-- signal.
-- @internal
-- @cached
CREATE VIEW dora_failure_signals AS
WITH explicit_id AS (
  SELECT i.incident_id, i.service AS incident_service, p.deployment_id, p.service,
         i.started_at, i.resolved_at
  FROM incidents i JOIN dora_production p ON p.deployment_id = i.caused_by_deployment_id
  UNION
  SELECT i.incident_id, i.service AS incident_service, p.deployment_id, p.service,
         i.started_at, i.resolved_at
  FROM incidents i JOIN dora_production p ON p.part_id = i.caused_by_deployment_id
  WHERE p.part_id <> p.deployment_id
),
explicit_id_kept AS (
  SELECT e.* FROM explicit_id e
  LEFT JOIN (SELECT DISTINCT incident_id FROM explicit_id WHERE service = incident_service) m
    ON m.incident_id = e.incident_id
  WHERE e.service = e.incident_service OR m.incident_id IS NULL
),
by_sha AS (
  SELECT incident_id, deployment_id, service, started_at, resolved_at, rank FROM (
    SELECT i.incident_id, f.deployment_id, f.service, i.started_at, i.resolved_at, 1 AS rank, p.seq
    FROM incidents i
    JOIN changes c ON left(c.sha, 7) = left(i.caused_by_sha, 7)
      AND starts_with(c.sha, i.caused_by_sha) AND (length(i.caused_by_sha) >= 7 OR c.sha = i.caused_by_sha)
    JOIN dora_first_shipments f ON f.change_id = c.change_id AND f.service = i.service
    JOIN dora_production p ON p.part_id = f.part_id AND p.service = f.service
    WHERE i.caused_by_deployment_id IS NULL AND i.caused_by_sha IS NOT NULL
    UNION ALL
    SELECT i.incident_id, p.deployment_id, p.service, i.started_at, i.resolved_at, 2 AS rank, p.seq
    FROM incidents i
    JOIN dora_production p ON p.service = i.service AND left(p.commit_sha, 7) = left(i.caused_by_sha, 7)
      AND starts_with(p.commit_sha, i.caused_by_sha) AND (length(i.caused_by_sha) >= 7 OR p.commit_sha = i.caused_by_sha)
    WHERE i.caused_by_deployment_id IS NULL AND i.caused_by_sha IS NOT NULL
  ) x
),
by_sha_first AS (
  SELECT incident_id, deployment_id, service, started_at, resolved_at FROM (
    SELECT *, row_number() OVER (PARTITION BY incident_id ORDER BY rank, started_at, deployment_id) AS n FROM (
      SELECT b.*, p.seq FROM by_sha b JOIN dora_production p ON p.deployment_id = b.deployment_id AND p.service = b.service
    ) y
  ) z WHERE n = 1
),
timeline AS (
  SELECT service, CAST(finished_at AS BIGINT) AS t, 0 AS ord, seq, CAST(NULL AS VARCHAR) AS incident_id
  FROM dora_production
  UNION ALL
  SELECT service, CAST(started_at AS BIGINT) AS t, 1 AS ord, CAST(NULL AS BIGINT) AS seq, incident_id
  FROM incidents
  WHERE caused_by_deployment_id IS NULL AND caused_by_sha IS NULL AND service IS NOT NULL
),
in_production AS (
  SELECT incident_id, service, in_production_seq FROM (
    SELECT incident_id, service, ord,
           max(seq) OVER (PARTITION BY service ORDER BY t, ord ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS in_production_seq
    FROM timeline
  ) x WHERE ord = 1 AND in_production_seq IS NOT NULL
),
windowed AS (
  SELECT i.incident_id, p.deployment_id, p.service, i.started_at, i.resolved_at
  FROM in_production w
  JOIN incidents i ON i.incident_id = w.incident_id
  JOIN dora_production p ON p.service = w.service AND p.seq = w.in_production_seq
  CROSS JOIN reporting r
  WHERE CAST(i.started_at AS BIGINT) - CAST(p.finished_at AS BIGINT) <= r.attribution_window_days * 86400000000
)
SELECT deployment_id, service, 'incident' AS reason, incident_id AS cause, started_at AS signal_start, resolved_at AS signal_end
FROM explicit_id_kept
UNION ALL
SELECT deployment_id, service, 'incident' AS reason, incident_id AS cause, started_at, resolved_at FROM by_sha_first
UNION ALL
SELECT deployment_id, service, 'attribution_window' AS reason, incident_id AS cause, started_at, resolved_at FROM windowed
UNION ALL
SELECT DISTINCT u.deployment_id, u.service, 'rollback' AS reason, r.deployment_id AS cause,
       u.deployment_finished_at, r.finished_at
FROM dora_rollbacks r
JOIN dora_production u ON u.service = r.service
  AND u.deployment_seq >= r.undo_from AND u.deployment_seq <= r.undo_to
WHERE r.undo_from IS NOT NULL
;
-- §4 "Failed deployment recovery time": one row per failed deployment (and service), from its first
-- failure signal (earliest start; on a tie an incident before a window match before a rollback,
-- then the earliest end) to that signal's end. Open: `recovered_at` NULL, `is_open`, and no
-- duration (never 0). Calendar keys of the recovery (periods count recoveries completed in them).
-- Columns:
-- - deployment_id, service: the failed deployment and the service it failed for
-- - team: the service's team
-- - failure_reason: the first signal's kind: `incident`, `attribution_window` or `rollback`
-- - cause: the incident's id, or for a rollback the rolling-back deployment's id
-- - signals: how many failure signals the deployment has (several make one failure)
-- - failed_at: the first signal's start (the incident's `started_at`; for a rollback the failed
--   deployment's finish)
-- - recovered_at: that signal's end (`resolved_at`, or the rollback's finish); NULL while open
-- - is_open: not recovered yet
-- - recovery_hours: `recovered_at` − `failed_at` in hours; NULL while open (never 0)
-- - day, week, month: calendar keys of `recovered_at` (a recovery counts in the period it completed)
-- @persisted
CREATE VIEW dora_recoveries AS
WITH ranked AS (
  SELECT s.*,
    row_number() OVER (PARTITION BY deployment_id, service ORDER BY signal_start,
      CASE reason WHEN 'incident' THEN 1 WHEN 'attribution_window' THEN 2 ELSE 3 END,
      signal_end NULLS LAST, cause) AS n,
    count(*) OVER (PARTITION BY deployment_id, service) AS signals
  FROM dora_failure_signals s
),
teams AS (SELECT service, min(team) AS team FROM services GROUP BY service),
firsts AS (
  SELECT r.*, t.team,
         to_local_time(arrow_cast(r.signal_end, 'Timestamp(Microsecond, Some("{{time_zone}}"))')) AS local_end
  FROM ranked r LEFT JOIN teams t ON t.service = r.service
  WHERE n = 1
)
SELECT deployment_id, service, team, reason AS failure_reason, cause, signals,
       signal_start AS failed_at, signal_end AS recovered_at, signal_end IS NULL AS is_open,
       CASE WHEN signal_end >= signal_start
            THEN (CAST(signal_end AS BIGINT) - CAST(signal_start AS BIGINT)) / 3600000000.0 END AS recovery_hours,
       CAST(date_trunc('day', local_end) AS DATE) AS day,
       CAST(date_trunc('week', local_end) AS DATE) AS week,
       CAST(date_trunc('month', local_end) AS DATE) AS month
FROM firsts
;
-- §4 "Rework rate", the rework rule: a deployment is rework when it is a rollback, or a change it
-- ships carries a configured hotfix label or branch prefix (case-insensitive), or a change's PR
-- references an incident, or it finished while an incident of its service was open. `rework_reason`
-- is the first that applies, in that order.
-- @internal
-- @cached
CREATE VIEW dora_rework AS
WITH prefixes AS (SELECT unnest(hotfix_branch_prefixes) AS prefix FROM reporting),
labels AS (SELECT unnest(hotfix_labels) AS label FROM reporting),
change_labels AS (SELECT deployment_id, service, lower(unnest(labels)) AS label FROM dora_changes),
by_change AS (
  SELECT cl.deployment_id, cl.service, 2 AS rank FROM change_labels cl JOIN labels l ON cl.label = l.label
  UNION ALL
  SELECT c.deployment_id, c.service, 3 AS rank FROM dora_changes c JOIN prefixes x
    ON starts_with(lower(c.pr_head_branch), x.prefix)
  UNION ALL
  SELECT deployment_id, service, 4 AS rank FROM dora_changes WHERE cardinality(incident_refs) > 0
),
-- Open at a deployment's finish (a deployment across repos: its last row's): started at or before
-- it, not resolved at or before it. Swept per service in time order: +1 at a start, -1 at a
-- resolution, both before a deployment at the same instant; a deployment with a positive running
-- count finished during an incident. (An incident resolved before it started is never open and is
-- left out.)
during_incident AS (
  SELECT deployment_id, service, 5 AS rank FROM (
    SELECT deployment_id, service, ord,
           sum(delta) OVER (PARTITION BY service ORDER BY t, ord ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS open_incidents
    FROM (
      SELECT deployment_id, service, CAST(deployment_finished_at AS BIGINT) AS t, 1 AS ord, 0 AS delta FROM dora_production
      UNION ALL
      SELECT CAST(NULL AS VARCHAR), service, CAST(started_at AS BIGINT), 0, 1 FROM incidents
      WHERE service IS NOT NULL AND started_at IS NOT NULL AND (resolved_at IS NULL OR resolved_at >= started_at)
      UNION ALL
      SELECT CAST(NULL AS VARCHAR), service, CAST(resolved_at AS BIGINT), 0, -1 FROM incidents
      WHERE service IS NOT NULL AND started_at IS NOT NULL AND resolved_at >= started_at
    ) events
  ) x WHERE ord = 1 AND open_incidents > 0
),
reasons AS (
  SELECT deployment_id, service, 1 AS rank FROM dora_production
  WHERE flagged_rollback OR deployment_id IN (SELECT deployment_id FROM dora_rollbacks WHERE redeploys_earlier_sha)
  UNION ALL SELECT * FROM by_change
  UNION ALL SELECT * FROM during_incident
)
SELECT deployment_id, service,
       CASE min(rank) WHEN 1 THEN 'rollback' WHEN 2 THEN 'hotfix_label' WHEN 3 THEN 'hotfix_branch'
                      WHEN 4 THEN 'incident_reference' ELSE 'during_incident' END AS rework_reason
FROM reasons GROUP BY deployment_id, service
;
-- §4, per deployment: successful production deployments with service, team, calendar keys, whether
-- it is a rollback (flagged or a redeploy of an earlier sha), how many changes it shipped for the
-- first time, whether the source listed its commits (lead-time coverage), whether it failed and
-- why (the first failure signal, see `dora_recoveries`), and whether it is rework and why.
-- One row per deployment and service: a deployment across repos (`deployment_group`, see
-- `dora_production`) is one row of each service it deployed, with its repos and head commits
-- listed in repo order (`repo`, `commit_sha`, comma-separated), started at its first row's start,
-- finished at its last row's finish (`first_finished_at` is its first row's), its commits listed
-- when every row listed them.
-- Columns:
-- - deployment_id: the deployment (its group's id for a deployment across repos)
-- - service: the service it counts for (one row per service it deployed)
-- - team: the service's team from config
-- - attributed_by: how the service was found: `source` (named by it), `repo`, `path` or `none`
--   (`unattributed`)
-- - repo, commit_sha: its repository and head commit (comma-separated lists, in repo order, for a
--   deployment across repos)
-- - environment, ref: the production environment it went to and the ref deployed (NULL when a
--   deployment across repos deployed several refs)
-- - started_at: when it started (its first row's start)
-- - finished_at: when it finished (its last row's finish); periods count it here
-- - first_finished_at: when its first row finished (= `finished_at` but across repos)
-- - day, week, month: calendar keys of `finished_at` in the reporting time zone
-- - commits_listed: the source listed the commits it shipped (else only its head commit is known:
--   lead-time coverage)
-- - changes_shipped: changes it shipped for the first time to this service
-- - is_rollback: flagged as a rollback, or a redeploy of an earlier sha
-- - deployments_undone: how many of the service's deployments this rollback undid (0 if none)
-- - is_failed: it failed (an incident, the attribution window or a rollback)
-- - failure_reason, failure_cause: its first failure signal's kind and cause (see `dora_recoveries`)
-- - failure_signals: how many failure signals it has
-- - is_rework: it is rework (§4 "Rework rate")
-- - rework_reason: `rollback`, `hotfix_label`, `hotfix_branch`, `incident_reference` or
--   `during_incident`: the first that applies
-- - seq: its number among the service's deployments, in the order they finished
-- @persisted
CREATE VIEW dora_deployments AS
WITH units AS (
  SELECT deployment_id, service, team, attributed_by, repo, environment, "ref", commit_sha,
         started_at, finished_at, finished_at AS first_finished_at, day, week, month,
         commits_listed, flagged_rollback, deployment_seq AS seq
  FROM dora_production WHERE NOT grouped
  UNION ALL
  SELECT deployment_id, service, team, attributed_by, repo, environment, "ref", commit_sha,
         started_at, finished_at, first_finished_at,
         CAST(date_trunc('day', local_finished) AS DATE) AS day,
         CAST(date_trunc('week', local_finished) AS DATE) AS week,
         CAST(date_trunc('month', local_finished) AS DATE) AS month,
         commits_listed, flagged_rollback, seq
  FROM (
    SELECT deployment_id, service, team, min(attributed_by) AS attributed_by,
           array_to_string(array_agg(repo ORDER BY repo, part_id), ', ') AS repo,
           min(environment) AS environment,
           CASE WHEN min("ref") = max("ref") THEN min("ref") END AS "ref",
           array_to_string(array_agg(commit_sha ORDER BY repo, part_id), ', ') AS commit_sha,
           min(started_at) AS started_at, max(deployment_finished_at) AS finished_at,
           min(finished_at) AS first_finished_at,
           to_local_time(arrow_cast(max(deployment_finished_at), 'Timestamp(Microsecond, Some("{{time_zone}}"))')) AS local_finished,
           bool_and(commits_listed) AS commits_listed, bool_or(flagged_rollback) AS flagged_rollback,
           min(deployment_seq) AS seq
    FROM dora_production WHERE grouped
    GROUP BY deployment_id, service, team
  ) g
),
shipped AS (
  SELECT deployment_id, service, count(*) AS changes_shipped FROM dora_first_shipments GROUP BY deployment_id, service
)
SELECT p.deployment_id, p.service, p.team, p.attributed_by, p.repo, p.environment, p."ref", p.commit_sha,
       p.started_at, p.finished_at, p.first_finished_at, p.day, p.week, p.month,
       p.commits_listed,
       COALESCE(s.changes_shipped, 0) AS changes_shipped,
       p.flagged_rollback OR COALESCE(rb.redeploys_earlier_sha, false) AS is_rollback,
       CASE WHEN rb.undo_from IS NOT NULL THEN rb.undo_to - rb.undo_from + 1 ELSE 0 END AS deployments_undone,
       r.deployment_id IS NOT NULL AS is_failed,
       r.failure_reason, r.cause AS failure_cause, COALESCE(r.signals, 0) AS failure_signals,
       w.deployment_id IS NOT NULL AS is_rework,
       w.rework_reason,
       p.seq
FROM units p
LEFT JOIN shipped s ON s.deployment_id = p.deployment_id AND s.service = p.service
LEFT JOIN dora_rollbacks rb ON rb.deployment_id = p.deployment_id AND rb.service = p.service
LEFT JOIN dora_recoveries r ON r.deployment_id = p.deployment_id AND r.service = p.service
LEFT JOIN dora_rework w ON w.deployment_id = p.deployment_id AND w.service = p.service
;
-- §4 "Time to restore (MTTR)", reported beside recovery time: every incident, linked or not, with
-- the deployment it was attributed to (if any) and how. Open incidents: `is_open`, no duration.
-- Calendar keys of the resolution (`day`, `week`, `month`) and of the start (`started_*`).
-- Columns:
-- - incident_id, service, title, severity, started_at, resolved_at: the incident, as in `incidents`
-- - team: the service's team
-- - is_open: not resolved yet
-- - restore_hours: `resolved_at` − `started_at` in hours; NULL while open or when negative
-- - deployment_id: the deployment it was attributed to (NULL when none)
-- - attributed_by: how: `incident` (it names the deployment or its sha) or `attribution_window`
-- - day, week, month: calendar keys of `resolved_at` (NULL while open)
-- - started_day, started_week, started_month: calendar keys of `started_at`
-- @persisted
CREATE VIEW dora_incidents AS
WITH linked AS (
  SELECT cause AS incident_id, min(deployment_id) AS deployment_id, min(reason) AS attributed_by
  FROM dora_failure_signals WHERE reason <> 'rollback' GROUP BY cause
),
teams AS (SELECT service, min(team) AS team FROM services GROUP BY service),
l AS (
  SELECT i.*, t.team, k.deployment_id, k.attributed_by,
         to_local_time(arrow_cast(i.started_at, 'Timestamp(Microsecond, Some("{{time_zone}}"))')) AS local_start,
         to_local_time(arrow_cast(i.resolved_at, 'Timestamp(Microsecond, Some("{{time_zone}}"))')) AS local_end
  FROM incidents i
  LEFT JOIN linked k ON k.incident_id = i.incident_id
  LEFT JOIN teams t ON t.service = i.service
)
SELECT incident_id, service, team, title, severity, started_at, resolved_at,
       resolved_at IS NULL AS is_open,
       CASE WHEN resolved_at >= started_at
            THEN (CAST(resolved_at AS BIGINT) - CAST(started_at AS BIGINT)) / 3600000000.0 END AS restore_hours,
       deployment_id, attributed_by,
       CAST(date_trunc('day', local_end) AS DATE) AS day,
       CAST(date_trunc('week', local_end) AS DATE) AS week,
       CAST(date_trunc('month', local_end) AS DATE) AS month,
       CAST(date_trunc('day', local_start) AS DATE) AS started_day,
       CAST(date_trunc('week', local_start) AS DATE) AS started_week,
       CAST(date_trunc('month', local_start) AS DATE) AS started_month
FROM l
;
-- Every (period, scope, name, period_start) from the first to the last calendar period holding any
-- deployment, change, recovery or incident, for every configured or seen service and team, so that
-- a period with no data is a row: counts 0, medians and rates NULL (§4 "Periods").
-- Columns:
-- - period: `day`, `week` or `month`
-- - scope: `service`, `team` or `all`
-- - name: the service's or team's name, or `all`
-- - team: a service's team (NULL for teams and `all`)
-- - period_start: the period's first day (a week starts on Monday)
-- - period_end: the day after its last day
-- @persisted
CREATE VIEW dora_period_grid AS
WITH local_times AS (
  SELECT to_local_time(arrow_cast(finished_at, 'Timestamp(Microsecond, Some("{{time_zone}}"))')) AS t FROM dora_deployments
  UNION ALL
  -- A deployment across repos whose first row finished earlier: that row's changes count then.
  SELECT to_local_time(arrow_cast(first_finished_at, 'Timestamp(Microsecond, Some("{{time_zone}}"))')) FROM dora_deployments
  WHERE first_finished_at < finished_at
  UNION ALL
  SELECT to_local_time(arrow_cast(started_at, 'Timestamp(Microsecond, Some("{{time_zone}}"))')) FROM incidents
  UNION ALL
  SELECT to_local_time(arrow_cast(resolved_at, 'Timestamp(Microsecond, Some("{{time_zone}}"))')) FROM incidents
),
bounds AS (
  SELECT CAST(date_trunc('day', min(t)) AS DATE) AS first_day, CAST(date_trunc('day', max(t)) AS DATE) AS last_day
  FROM local_times
),
days AS (
  SELECT unnest(range(first_day, last_day + INTERVAL '1 day', INTERVAL '1 day')) AS day FROM bounds
),
starts AS (
  SELECT 'day' AS period, day AS period_start FROM days
  UNION ALL
  SELECT DISTINCT 'week' AS period, CAST(date_trunc('week', CAST(day AS TIMESTAMP)) AS DATE) FROM days
  UNION ALL
  SELECT DISTINCT 'month' AS period, CAST(date_trunc('month', CAST(day AS TIMESTAMP)) AS DATE) FROM days
),
names AS (
  SELECT 'service' AS scope, service AS name, min(team) AS team FROM (
    SELECT service, team FROM services
    UNION ALL SELECT service, team FROM dora_deployments
    UNION ALL SELECT service, CAST(NULL AS VARCHAR) FROM incidents WHERE service IS NOT NULL
  ) x GROUP BY service
  UNION ALL
  SELECT DISTINCT 'team' AS scope, team AS name, team FROM services WHERE team IS NOT NULL
  UNION ALL
  SELECT 'all' AS scope, 'all' AS name, CAST(NULL AS VARCHAR) AS team
)
SELECT s.period, n.scope, n.name, n.team, s.period_start,
       CAST(CASE s.period WHEN 'day' THEN s.period_start + INTERVAL '1 day'
                          WHEN 'week' THEN s.period_start + INTERVAL '7 days'
                          ELSE s.period_start + INTERVAL '1 month' END AS DATE) AS period_end
FROM starts s CROSS JOIN names n
;
-- §4, all five metrics per period, per service, per team and for everything:
-- - deployments: successful production deployments finished in the period; deploys_per_day =
--   deployments ÷ calendar days of the period (whole periods, also the current one).
-- - lead time: median and p90 (continuous, interpolated, exact) of the changes first deployed in the
--   period; negative spans dropped and counted; deployments_with_commit_list counts deployments
--   whose source listed their commits (lead-time coverage).
-- - change failure rate: failed ÷ deployments, both of the deployments finished in the period.
-- - recovery: median of the recoveries completed in the period; open ones counted apart.
-- - time to restore: median over all incidents resolved in the period; open incidents counted.
-- - rework rate: rework deployments ÷ deployments.
-- Everything is computed per service, then rolled up per team and for everything (§4), by
-- GROUPING SETS: a deployment shipped to two services counts once for each, in its team and
-- overall too. A deployment across repos counts once per service, not once per repo (its rows
-- are one row of `dora_deployments` per service), and rolls up the same way.
-- Levels from `dora_levels` (the latest report year), NULL when the metric is NULL.
-- One view per period (`dora_daily`, `dora_weekly`, `dora_monthly`): the statement below is
-- written once with a period placeholder (day, week, month) and created three times, so a query
-- on one period computes only that period. Each is cached: a dashboard reads the monthly rows in a
-- dozen panels, and a session (the server's lives as long as the lake state) computes them once; a
-- query on `dora_periods` filtering `period` skips the other two without computing them.
-- Columns:
-- - period: `day`, `week` or `month`
-- - scope: `service`, `team` or `all`
-- - name: the service's or team's name, or `all`
-- - team: a service's team (NULL for teams and `all`)
-- - period_start: the period's first day, in the reporting time zone (a week starts on Monday)
-- - period_end: the day after its last day
-- - days: calendar days in the period
-- - deployments: successful production deployments that finished in it
-- - deploys_per_day: `deployments` ÷ `days`
-- - changes_deployed: changes first deployed in it
-- - lead_time_median_hours, lead_time_p90_hours: median and p90 of those changes' lead times
--   (NULL with none)
-- - negative_lead_times_dropped: changes whose negative lead time was left out
-- - deployments_with_commit_list: deployments whose source listed their commits (lead-time coverage)
-- - change_failures: deployments of the period that failed
-- - change_failure_rate: `change_failures` ÷ `deployments` (NULL with no deployment)
-- - recoveries: recoveries completed in the period
-- - recovery_median_hours: their median duration
-- - open_recoveries: failed deployments of the period not recovered yet
-- - incidents_resolved: incidents resolved in the period, linked or not
-- - time_to_restore_median_hours: their median time to restore (MTTR)
-- - open_incidents: incidents started in the period and still open
-- - rework_deployments: deployments of the period that are rework
-- - rework_rate: `rework_deployments` ÷ `deployments` (NULL with no deployment)
-- - deploy_frequency_level, lead_time_level, change_failure_level, recovery_level: `elite`,
--   `high`, `medium` or `low` from `dora_levels` (NULL when the metric is)
-- @cached
CREATE VIEW dora_{{periodly}} AS
WITH dep AS (
  SELECT CASE WHEN grouping(d.service) = 0 THEN 'service' WHEN grouping(d.team) = 0 THEN 'team' ELSE 'all' END AS scope,
         CASE WHEN grouping(d.service) = 0 THEN d.service WHEN grouping(d.team) = 0 THEN d.team ELSE 'all' END AS name,
         d.{{period}} AS period_start,
         count(*) AS deployments,
         sum(CASE WHEN d.is_failed THEN 1 ELSE 0 END) AS change_failures,
         sum(CASE WHEN d.is_rework THEN 1 ELSE 0 END) AS rework_deployments,
         sum(CASE WHEN d.commits_listed THEN 1 ELSE 0 END) AS deployments_with_commit_list
  FROM dora_deployments d
  GROUP BY GROUPING SETS ((d.service, d.team, d.{{period}}), (d.team, d.{{period}}), (d.{{period}}))
),
chg AS (
  SELECT CASE WHEN grouping(c.service) = 0 THEN 'service' WHEN grouping(c.team) = 0 THEN 'team' ELSE 'all' END AS scope,
         CASE WHEN grouping(c.service) = 0 THEN c.service WHEN grouping(c.team) = 0 THEN c.team ELSE 'all' END AS name,
         c.{{period}} AS period_start,
         count(*) AS changes_deployed,
         sum(CASE WHEN c.negative_lead_time THEN 1 ELSE 0 END) AS negative_lead_times,
         -- The median and p90 from one collection of the values (`quantile_cont` with a list,
         -- see query/src/quantile.rs): continuous and exact. With the n values sorted,
         -- h = q (n - 1), v[floor h] plus the fraction of h times the step up; the median is
         -- the middle value or the mean of the two middle ones.
         quantile_cont(c.lead_time_hours, [0.5, 0.9]) AS lead_time_quantiles
  FROM dora_changes c
  GROUP BY GROUPING SETS ((c.service, c.team, c.{{period}}), (c.team, c.{{period}}), (c.{{period}}))
),
rec AS (
  SELECT CASE WHEN grouping(r.service) = 0 THEN 'service' WHEN grouping(r.team) = 0 THEN 'team' ELSE 'all' END AS scope,
         CASE WHEN grouping(r.service) = 0 THEN r.service WHEN grouping(r.team) = 0 THEN r.team ELSE 'all' END AS name,
         r.{{period}} AS period_start,
         count(*) AS recoveries,
         median(r.recovery_hours) AS recovery_median_hours
  FROM dora_recoveries r
  WHERE NOT r.is_open
  GROUP BY GROUPING SETS ((r.service, r.team, r.{{period}}), (r.team, r.{{period}}), (r.{{period}}))
),
open_failures AS (
  SELECT CASE WHEN grouping(r.service) = 0 THEN 'service' WHEN grouping(r.team) = 0 THEN 'team' ELSE 'all' END AS scope,
         CASE WHEN grouping(r.service) = 0 THEN r.service WHEN grouping(r.team) = 0 THEN r.team ELSE 'all' END AS name,
         d.{{period}} AS period_start,
         count(*) AS open_recoveries
  FROM dora_recoveries r
  JOIN dora_deployments d ON d.deployment_id = r.deployment_id AND d.service = r.service
  WHERE r.is_open
  GROUP BY GROUPING SETS ((r.service, r.team, d.{{period}}), (r.team, d.{{period}}), (d.{{period}}))
),
inc AS (
  SELECT CASE WHEN grouping(i.service) = 0 THEN 'service' WHEN grouping(i.team) = 0 THEN 'team' ELSE 'all' END AS scope,
         CASE WHEN grouping(i.service) = 0 THEN i.service WHEN grouping(i.team) = 0 THEN i.team ELSE 'all' END AS name,
         i.{{period}} AS period_start,
         count(*) AS incidents_resolved,
         median(i.restore_hours) AS time_to_restore_median_hours
  FROM dora_incidents i
  WHERE NOT i.is_open
  GROUP BY GROUPING SETS ((i.service, i.team, i.{{period}}), (i.team, i.{{period}}), (i.{{period}}))
),
open_inc AS (
  SELECT CASE WHEN grouping(i.service) = 0 THEN 'service' WHEN grouping(i.team) = 0 THEN 'team' ELSE 'all' END AS scope,
         CASE WHEN grouping(i.service) = 0 THEN i.service WHEN grouping(i.team) = 0 THEN i.team ELSE 'all' END AS name,
         i.started_{{period}} AS period_start,
         count(*) AS open_incidents
  FROM dora_incidents i
  WHERE i.is_open
  GROUP BY GROUPING SETS ((i.service, i.team, i.started_{{period}}), (i.team, i.started_{{period}}), (i.started_{{period}}))
),
levels AS (
  SELECT * FROM dora_levels WHERE report_year = (SELECT max(report_year) FROM dora_levels)
),
m AS (
  SELECT g.period, g.scope, g.name, g.team, g.period_start, g.period_end,
         CAST(g.period_end - g.period_start AS BIGINT) AS days,
         COALESCE(dep.deployments, 0) AS deployments,
         CAST(COALESCE(dep.deployments, 0) AS DOUBLE) / CAST(g.period_end - g.period_start AS BIGINT) AS deploys_per_day,
         COALESCE(chg.changes_deployed, 0) AS changes_deployed,
         chg.lead_time_quantiles[1] AS lead_time_median_hours,
         chg.lead_time_quantiles[2] AS lead_time_p90_hours,
         COALESCE(chg.negative_lead_times, 0) AS negative_lead_times_dropped,
         COALESCE(dep.deployments_with_commit_list, 0) AS deployments_with_commit_list,
         COALESCE(dep.change_failures, 0) AS change_failures,
         CASE WHEN dep.deployments > 0 THEN CAST(dep.change_failures AS DOUBLE) / dep.deployments END AS change_failure_rate,
         COALESCE(rec.recoveries, 0) AS recoveries,
         rec.recovery_median_hours,
         COALESCE(open_failures.open_recoveries, 0) AS open_recoveries,
         COALESCE(inc.incidents_resolved, 0) AS incidents_resolved,
         inc.time_to_restore_median_hours,
         COALESCE(open_inc.open_incidents, 0) AS open_incidents,
         COALESCE(dep.rework_deployments, 0) AS rework_deployments,
         CASE WHEN dep.deployments > 0 THEN CAST(dep.rework_deployments AS DOUBLE) / dep.deployments END AS rework_rate
  FROM (SELECT * FROM dora_period_grid WHERE period = '{{period}}') g
  LEFT JOIN dep ON dep.scope = g.scope AND dep.name = g.name AND dep.period_start = g.period_start
  LEFT JOIN chg ON chg.scope = g.scope AND chg.name = g.name AND chg.period_start = g.period_start
  LEFT JOIN rec ON rec.scope = g.scope AND rec.name = g.name AND rec.period_start = g.period_start
  LEFT JOIN open_failures ON open_failures.scope = g.scope AND open_failures.name = g.name AND open_failures.period_start = g.period_start
  LEFT JOIN inc ON inc.scope = g.scope AND inc.name = g.name AND inc.period_start = g.period_start
  LEFT JOIN open_inc ON open_inc.scope = g.scope AND open_inc.name = g.name AND open_inc.period_start = g.period_start
)
SELECT m.*,
       lf.level AS deploy_frequency_level,
       ll.level AS lead_time_level,
       lc.level AS change_failure_level,
       lr.level AS recovery_level
FROM m
LEFT JOIN levels lf ON lf.metric = 'deploys_per_day'
  AND (lf.lower_bound IS NULL OR m.deploys_per_day > lf.lower_bound OR (lf.lower_inclusive AND m.deploys_per_day = lf.lower_bound))
  AND (lf.upper_bound IS NULL OR m.deploys_per_day < lf.upper_bound OR (lf.upper_inclusive AND m.deploys_per_day = lf.upper_bound))
LEFT JOIN levels ll ON ll.metric = 'lead_time_hours'
  AND (ll.lower_bound IS NULL OR m.lead_time_median_hours > ll.lower_bound OR (ll.lower_inclusive AND m.lead_time_median_hours = ll.lower_bound))
  AND (ll.upper_bound IS NULL OR m.lead_time_median_hours < ll.upper_bound OR (ll.upper_inclusive AND m.lead_time_median_hours = ll.upper_bound))
LEFT JOIN levels lc ON lc.metric = 'change_failure_rate'
  AND (lc.lower_bound IS NULL OR m.change_failure_rate > lc.lower_bound OR (lc.lower_inclusive AND m.change_failure_rate = lc.lower_bound))
  AND (lc.upper_bound IS NULL OR m.change_failure_rate < lc.upper_bound OR (lc.upper_inclusive AND m.change_failure_rate = lc.upper_bound))
LEFT JOIN levels lr ON lr.metric = 'recovery_hours'
  AND (lr.lower_bound IS NULL OR m.recovery_median_hours > lr.lower_bound OR (lr.lower_inclusive AND m.recovery_median_hours = lr.lower_bound))
  AND (lr.upper_bound IS NULL OR m.recovery_median_hours < lr.upper_bound OR (lr.upper_inclusive AND m.recovery_median_hours = lr.upper_bound))
;
-- §4 "Periods": calendar day, ISO week (starting Monday), month, in the reporting time zone; all
-- three in one view.
-- Columns (all as in `dora_daily`):
CREATE VIEW dora_periods AS
SELECT * FROM dora_daily UNION ALL SELECT * FROM dora_weekly UNION ALL SELECT * FROM dora_monthly
;
-- Each metric against its target (§4 default targets; per-service overrides from `[targets]`):
-- deploys_per_day ≥ target; lead time, change failure rate and recovery (hours) < target. `met` is
-- NULL when the metric is (no data is neither met nor missed). Teams and everything use the
-- default targets.
-- Columns:
-- - period, scope, name, team, period_start: the row of `dora_periods`
-- - metric: `deploys_per_day`, `lead_time_hours`, `change_failure_rate` or `recovery_hours`
-- - value: the metric's value in the period (the median for times; NULL with no data)
-- - comparison: `>=` (at least the target) or `<` (under it)
-- - target: the target (recovery converted from minutes to hours)
-- - met: whether `value` meets it (NULL when `value` is)
CREATE VIEW dora_targets AS
WITH defaults AS (SELECT * FROM targets WHERE service IS NULL),
-- The target of each metric for each scope and name of the grid (a few rows per service), then
-- joined to the periods by equality.
target_values AS (
  SELECT n.scope, n.name, m.metric, m.comparison,
         CASE m.metric WHEN 'deploys_per_day' THEN COALESCE(o.deploys_per_day, d.deploys_per_day)
                       WHEN 'lead_time_hours' THEN COALESCE(o.lead_time_hours, d.lead_time_hours)
                       WHEN 'change_failure_rate' THEN COALESCE(o.change_failure_rate, d.change_failure_rate)
                       ELSE COALESCE(o.recovery_minutes, d.recovery_minutes) / 60.0 END AS target
  FROM (SELECT DISTINCT scope, name FROM dora_period_grid) n
  CROSS JOIN defaults d
  CROSS JOIN (VALUES ('deploys_per_day', '>='), ('lead_time_hours', '<'), ('change_failure_rate', '<'),
                     ('recovery_hours', '<')) AS m(metric, comparison)
  LEFT JOIN targets o ON n.scope = 'service' AND o.service = n.name
),
v AS (
  SELECT p.period, p.scope, p.name, p.team, p.period_start, t.metric, t.comparison, t.target,
         CASE t.metric WHEN 'deploys_per_day' THEN p.deploys_per_day
                       WHEN 'lead_time_hours' THEN p.lead_time_median_hours
                       WHEN 'change_failure_rate' THEN p.change_failure_rate
                       ELSE p.recovery_median_hours END AS value
  FROM target_values t JOIN dora_periods p ON p.scope = t.scope AND p.name = t.name
)
SELECT period, scope, name, team, period_start, metric, value, comparison, target,
       CASE WHEN comparison = '>=' THEN value >= target ELSE value < target END AS met
FROM v
;
