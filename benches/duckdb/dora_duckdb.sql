-- The DORA views of query/sql/dora.sql, ported to DuckDB's dialect for benches/dora_bench.rs
-- (run by benches/duckdb/dora_duckdb.py). Same names, columns, order and semantics; the
-- definitions and their reasons are documented in dora.sql, one view there per view here.
--
-- Dialect differences: `to_local_time(arrow_cast(ts, 'Timestamp(Microsecond, Some("Z"))'))` is
-- `timezone('Z', ts)` (TIMESTAMPTZ -> local TIMESTAMP; the session TimeZone must be 'UTC');
-- `CAST(ts AS BIGINT)` (epoch microseconds) is `epoch_us(ts)`; `cardinality` is `len`; the day
-- list of `dora_period_grid` is a TIMESTAMP `range` cast back to DATE.
--
-- Template: {{time_zone}} (the IANA reporting time zone). Statements are separated by a line
-- holding only `;`. `-- @cached` marks the views doracost's engine computes once per session;
-- dora_duckdb.py creates those as temporary tables (see there why).

-- dora_service_map: service, team, repo, path prefix (NULL = whole repo). See dora.sql.
-- @cached
CREATE VIEW dora_service_map AS
WITH s AS (SELECT service, team, unnest(repos) AS repo, paths FROM services)
SELECT service, team, repo, CAST(NULL AS VARCHAR) AS path_prefix FROM s WHERE len(paths) = 0
UNION ALL
SELECT service, team, repo, unnest(paths) AS path_prefix FROM s WHERE len(paths) > 0
;
-- dora_change_services: the services each change maps to. See dora.sql.
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
-- dora_production: successful production deployments, attributed to services, with local calendar
-- keys and `seq`. See dora.sql.
-- @cached
CREATE VIEW dora_production AS
WITH d AS (
  SELECT * FROM deployments
  WHERE status = 'success' AND finished_at IS NOT NULL
    AND lower(environment) IN (SELECT unnest(production_environments) FROM reporting)
),
attributed AS (
  SELECT deployment_id, service, 'source' AS attributed_by FROM d WHERE service IS NOT NULL
  UNION ALL
  SELECT deployment_id, service, min(attributed_by) AS attributed_by FROM (
    SELECT d.deployment_id, m.service, 'repo' AS attributed_by
    FROM d JOIN dora_service_map m ON d.repo = m.repo AND m.path_prefix IS NULL
    WHERE d.service IS NULL
    UNION ALL
    SELECT d.deployment_id, cs.service, 'path' AS attributed_by
    FROM d
    JOIN deployment_changes dc ON dc.deployment_id = d.deployment_id
    JOIN dora_change_services cs ON cs.change_id = dc.change_id
    JOIN dora_service_map m ON m.service = cs.service AND m.repo = d.repo AND m.path_prefix IS NOT NULL
    WHERE d.service IS NULL
  ) x GROUP BY deployment_id, service
),
complete AS (
  SELECT * FROM attributed
  UNION ALL
  SELECT deployment_id, 'unattributed' AS service, 'none' AS attributed_by FROM d
  WHERE service IS NULL AND deployment_id NOT IN (SELECT deployment_id FROM attributed)
),
teams AS (SELECT service, min(team) AS team FROM services GROUP BY service),
localized AS (
  SELECT d.deployment_id, a.service, t.team, a.attributed_by, d.repo, d.environment, d."ref",
         d.commit_sha, d.started_at, d.finished_at, d.is_rollback AS flagged_rollback,
         d.commits_listed, d.source,
         timezone('{{time_zone}}', d.finished_at) AS local_finished
  FROM d JOIN complete a ON a.deployment_id = d.deployment_id
  LEFT JOIN teams t ON t.service = a.service
)
SELECT deployment_id, service, team, attributed_by, repo, environment, "ref", commit_sha,
       started_at, finished_at, flagged_rollback, commits_listed, source,
       CAST(date_trunc('day', local_finished) AS DATE) AS day,
       CAST(date_trunc('week', local_finished) AS DATE) AS week,
       CAST(date_trunc('month', local_finished) AS DATE) AS month,
       row_number() OVER (PARTITION BY service ORDER BY finished_at, deployment_id) AS seq
FROM localized
;
-- dora_first_shipments: the deployment that first shipped each change, per service. See dora.sql.
-- @cached
CREATE VIEW dora_first_shipments AS
WITH shipped AS (
  SELECT dc.change_id, p.deployment_id, p.service, p.finished_at
  FROM deployment_changes dc
  JOIN dora_production p ON p.deployment_id = dc.deployment_id
  LEFT JOIN dora_change_services cs ON cs.change_id = dc.change_id AND cs.service = p.service
  LEFT JOIN (SELECT DISTINCT change_id FROM dora_change_services) mapped ON mapped.change_id = dc.change_id
  WHERE cs.change_id IS NOT NULL OR mapped.change_id IS NULL
),
ranked AS (
  SELECT *, row_number() OVER (PARTITION BY change_id, service ORDER BY finished_at, deployment_id) AS n
  FROM shipped
)
SELECT change_id, service, deployment_id FROM ranked WHERE n = 1
;
-- dora_changes: lead time per change and service, with the PR breakdown. See dora.sql.
-- @cached
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
  JOIN dora_production p ON p.deployment_id = f.deployment_id AND p.service = f.service
),
spans AS (
  SELECT j.*,
    (epoch_us(deployed_at) - epoch_us(lead_time_start)) / 3600000000.0 AS lead_span,
    (epoch_us(pr_opened_at) - epoch_us(pr_first_commit_at)) / 3600000000.0 AS coding_span,
    (epoch_us(pr_first_review_at) - epoch_us(pr_opened_at)) / 3600000000.0 AS pickup_span,
    (epoch_us(pr_merged_at) - epoch_us(pr_first_review_at)) / 3600000000.0 AS review_span,
    (epoch_us(deployed_at) - epoch_us(pr_merged_at)) / 3600000000.0 AS deploy_span
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
-- dora_rollbacks: rollbacks and the `seq` range each undoes. See dora.sql.
-- @cached
CREATE VIEW dora_rollbacks AS
WITH l AS (
  SELECT *,
    CASE WHEN commit_sha IS NOT NULL
         THEN lag(seq) OVER (PARTITION BY service, commit_sha ORDER BY seq) END AS prev_same_sha_seq
  FROM dora_production
)
SELECT deployment_id, service, seq, finished_at, flagged_rollback,
       CASE WHEN prev_same_sha_seq IS NOT NULL AND prev_same_sha_seq < seq - 1 THEN prev_same_sha_seq + 1
            WHEN flagged_rollback AND prev_same_sha_seq IS NULL AND seq > 1 THEN seq - 1 END AS undo_from,
       seq - 1 AS undo_to,
       prev_same_sha_seq IS NOT NULL AND prev_same_sha_seq < seq - 1 AS redeploys_earlier_sha
FROM l
WHERE flagged_rollback OR (prev_same_sha_seq IS NOT NULL AND prev_same_sha_seq < seq - 1)
;
-- dora_failure_signals: incident (explicit link or by sha), attribution-window and rollback
-- signals. See dora.sql.
-- @cached
CREATE VIEW dora_failure_signals AS
WITH explicit_id AS (
  SELECT i.incident_id, i.service AS incident_service, p.deployment_id, p.service,
         i.started_at, i.resolved_at
  FROM incidents i JOIN dora_production p ON p.deployment_id = i.caused_by_deployment_id
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
    JOIN dora_production p ON p.deployment_id = f.deployment_id AND p.service = f.service
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
  SELECT service, epoch_us(finished_at) AS t, 0 AS ord, seq, CAST(NULL AS VARCHAR) AS incident_id
  FROM dora_production
  UNION ALL
  SELECT service, epoch_us(started_at) AS t, 1 AS ord, CAST(NULL AS BIGINT) AS seq, incident_id
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
  WHERE epoch_us(i.started_at) - epoch_us(p.finished_at) <= r.attribution_window_days * 86400000000
)
SELECT deployment_id, service, 'incident' AS reason, incident_id AS cause, started_at AS signal_start, resolved_at AS signal_end
FROM explicit_id_kept
UNION ALL
SELECT deployment_id, service, 'incident' AS reason, incident_id AS cause, started_at, resolved_at FROM by_sha_first
UNION ALL
SELECT deployment_id, service, 'attribution_window' AS reason, incident_id AS cause, started_at, resolved_at FROM windowed
UNION ALL
SELECT u.deployment_id, u.service, 'rollback' AS reason, r.deployment_id AS cause, u.finished_at, r.finished_at
FROM dora_rollbacks r
JOIN dora_production u ON u.service = r.service AND u.seq >= r.undo_from AND u.seq <= r.undo_to
WHERE r.undo_from IS NOT NULL
;
-- dora_recoveries: failed deployments, from the first failure signal to its end. See dora.sql.
-- @cached
CREATE VIEW dora_recoveries AS
WITH ranked AS (
  SELECT s.*,
    row_number() OVER (PARTITION BY deployment_id, service ORDER BY signal_start,
      CASE reason WHEN 'incident' THEN 1 WHEN 'attribution_window' THEN 2 ELSE 3 END,
      signal_end NULLS LAST, cause) AS n,
    count(*) OVER (PARTITION BY deployment_id, service) AS signals
  FROM dora_failure_signals s
),
firsts AS (
  SELECT r.*, p.team,
         timezone('{{time_zone}}', r.signal_end) AS local_end
  FROM ranked r JOIN dora_production p ON p.deployment_id = r.deployment_id AND p.service = r.service
  WHERE n = 1
)
SELECT deployment_id, service, team, reason AS failure_reason, cause, signals,
       signal_start AS failed_at, signal_end AS recovered_at, signal_end IS NULL AS is_open,
       CASE WHEN signal_end >= signal_start
            THEN (epoch_us(signal_end) - epoch_us(signal_start)) / 3600000000.0 END AS recovery_hours,
       CAST(date_trunc('day', local_end) AS DATE) AS day,
       CAST(date_trunc('week', local_end) AS DATE) AS week,
       CAST(date_trunc('month', local_end) AS DATE) AS month
FROM firsts
;
-- dora_rework: rework deployments and the first reason. See dora.sql.
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
  SELECT deployment_id, service, 4 AS rank FROM dora_changes WHERE len(incident_refs) > 0
),
during_incident AS (
  SELECT p.deployment_id, p.service, 5 AS rank
  FROM dora_production p JOIN incidents i ON i.service = p.service
  WHERE i.started_at <= p.finished_at AND (i.resolved_at IS NULL OR i.resolved_at > p.finished_at)
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
-- dora_deployments: one row per successful production deployment and service. See dora.sql.
-- @cached
CREATE VIEW dora_deployments AS
WITH shipped AS (
  SELECT deployment_id, service, count(*) AS changes_shipped FROM dora_first_shipments GROUP BY deployment_id, service
)
SELECT p.deployment_id, p.service, p.team, p.attributed_by, p.repo, p.environment, p."ref", p.commit_sha,
       p.started_at, p.finished_at, p.day, p.week, p.month,
       p.commits_listed,
       COALESCE(s.changes_shipped, 0) AS changes_shipped,
       p.flagged_rollback OR COALESCE(rb.redeploys_earlier_sha, false) AS is_rollback,
       CASE WHEN rb.undo_from IS NOT NULL THEN rb.undo_to - rb.undo_from + 1 ELSE 0 END AS deployments_undone,
       r.deployment_id IS NOT NULL AS is_failed,
       r.failure_reason, r.cause AS failure_cause, COALESCE(r.signals, 0) AS failure_signals,
       w.deployment_id IS NOT NULL AS is_rework,
       w.rework_reason,
       p.seq
FROM dora_production p
LEFT JOIN shipped s ON s.deployment_id = p.deployment_id AND s.service = p.service
LEFT JOIN dora_rollbacks rb ON rb.deployment_id = p.deployment_id AND rb.service = p.service
LEFT JOIN dora_recoveries r ON r.deployment_id = p.deployment_id AND r.service = p.service
LEFT JOIN dora_rework w ON w.deployment_id = p.deployment_id AND w.service = p.service
;
-- dora_incidents: time to restore, per incident. See dora.sql.
-- @cached
CREATE VIEW dora_incidents AS
WITH linked AS (
  SELECT cause AS incident_id, min(deployment_id) AS deployment_id, min(reason) AS attributed_by
  FROM dora_failure_signals WHERE reason <> 'rollback' GROUP BY cause
),
teams AS (SELECT service, min(team) AS team FROM services GROUP BY service),
l AS (
  SELECT i.*, t.team, k.deployment_id, k.attributed_by,
         timezone('{{time_zone}}', i.started_at) AS local_start,
         timezone('{{time_zone}}', i.resolved_at) AS local_end
  FROM incidents i
  LEFT JOIN linked k ON k.incident_id = i.incident_id
  LEFT JOIN teams t ON t.service = i.service
)
SELECT incident_id, service, team, title, severity, started_at, resolved_at,
       resolved_at IS NULL AS is_open,
       CASE WHEN resolved_at >= started_at
            THEN (epoch_us(resolved_at) - epoch_us(started_at)) / 3600000000.0 END AS restore_hours,
       deployment_id, attributed_by,
       CAST(date_trunc('day', local_end) AS DATE) AS day,
       CAST(date_trunc('week', local_end) AS DATE) AS week,
       CAST(date_trunc('month', local_end) AS DATE) AS month,
       CAST(date_trunc('day', local_start) AS DATE) AS started_day,
       CAST(date_trunc('week', local_start) AS DATE) AS started_week,
       CAST(date_trunc('month', local_start) AS DATE) AS started_month
FROM l
;
-- dora_rollup_keys: the nine (period, scope) pairs. See dora.sql.
CREATE VIEW dora_rollup_keys AS
SELECT period, scope FROM (VALUES ('day'), ('week'), ('month')) AS p(period)
CROSS JOIN (VALUES ('service'), ('team'), ('all')) AS s(scope)
;
-- dora_period_grid: every (period, scope, name, period_start) from the first to the last period
-- with data. See dora.sql.
-- @cached
CREATE VIEW dora_period_grid AS
WITH local_times AS (
  SELECT timezone('{{time_zone}}', finished_at) AS t FROM dora_production
  UNION ALL
  SELECT timezone('{{time_zone}}', started_at) FROM incidents
  UNION ALL
  SELECT timezone('{{time_zone}}', resolved_at) FROM incidents
),
bounds AS (
  SELECT CAST(date_trunc('day', min(t)) AS DATE) AS first_day, CAST(date_trunc('day', max(t)) AS DATE) AS last_day
  FROM local_times
),
days AS (
  SELECT CAST(unnest(range(CAST(first_day AS TIMESTAMP), last_day + INTERVAL '1 day', INTERVAL '1 day')) AS DATE) AS day FROM bounds
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
    UNION ALL SELECT service, team FROM dora_production
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
-- dora_periods: the five metrics per period and scope, with DORA levels. See dora.sql.
CREATE VIEW dora_periods AS
WITH dep AS (
  SELECT k.period, k.scope,
         CASE k.scope WHEN 'service' THEN d.service WHEN 'team' THEN d.team ELSE 'all' END AS name,
         CASE k.period WHEN 'day' THEN d.day WHEN 'week' THEN d.week ELSE d.month END AS period_start,
         count(*) AS deployments,
         sum(CASE WHEN d.is_failed THEN 1 ELSE 0 END) AS change_failures,
         sum(CASE WHEN d.is_rework THEN 1 ELSE 0 END) AS rework_deployments,
         sum(CASE WHEN d.commits_listed THEN 1 ELSE 0 END) AS deployments_with_commit_list
  FROM dora_deployments d CROSS JOIN dora_rollup_keys k
  GROUP BY 1, 2, 3, 4
),
chg AS (
  SELECT k.period, k.scope,
         CASE k.scope WHEN 'service' THEN c.service WHEN 'team' THEN c.team ELSE 'all' END AS name,
         CASE k.period WHEN 'day' THEN c.day WHEN 'week' THEN c.week ELSE c.month END AS period_start,
         count(*) AS changes_deployed,
         sum(CASE WHEN c.negative_lead_time THEN 1 ELSE 0 END) AS negative_lead_times,
         median(c.lead_time_hours) AS lead_time_median_hours,
         percentile_cont(0.9) WITHIN GROUP (ORDER BY c.lead_time_hours) AS lead_time_p90_hours
  FROM dora_changes c CROSS JOIN dora_rollup_keys k
  GROUP BY 1, 2, 3, 4
),
rec AS (
  SELECT k.period, k.scope,
         CASE k.scope WHEN 'service' THEN r.service WHEN 'team' THEN r.team ELSE 'all' END AS name,
         CASE k.period WHEN 'day' THEN r.day WHEN 'week' THEN r.week ELSE r.month END AS period_start,
         count(*) AS recoveries,
         median(r.recovery_hours) AS recovery_median_hours
  FROM dora_recoveries r CROSS JOIN dora_rollup_keys k
  WHERE NOT r.is_open
  GROUP BY 1, 2, 3, 4
),
open_failures AS (
  SELECT k.period, k.scope,
         CASE k.scope WHEN 'service' THEN r.service WHEN 'team' THEN r.team ELSE 'all' END AS name,
         CASE k.period WHEN 'day' THEN d.day WHEN 'week' THEN d.week ELSE d.month END AS period_start,
         count(*) AS open_recoveries
  FROM dora_recoveries r
  JOIN dora_production d ON d.deployment_id = r.deployment_id AND d.service = r.service
  CROSS JOIN dora_rollup_keys k
  WHERE r.is_open
  GROUP BY 1, 2, 3, 4
),
inc AS (
  SELECT k.period, k.scope,
         CASE k.scope WHEN 'service' THEN i.service WHEN 'team' THEN i.team ELSE 'all' END AS name,
         CASE k.period WHEN 'day' THEN i.day WHEN 'week' THEN i.week ELSE i.month END AS period_start,
         count(*) AS incidents_resolved,
         median(i.restore_hours) AS time_to_restore_median_hours
  FROM dora_incidents i CROSS JOIN dora_rollup_keys k
  WHERE NOT i.is_open
  GROUP BY 1, 2, 3, 4
),
open_inc AS (
  SELECT k.period, k.scope,
         CASE k.scope WHEN 'service' THEN i.service WHEN 'team' THEN i.team ELSE 'all' END AS name,
         CASE k.period WHEN 'day' THEN i.started_day WHEN 'week' THEN i.started_week ELSE i.started_month END AS period_start,
         count(*) AS open_incidents
  FROM dora_incidents i CROSS JOIN dora_rollup_keys k
  WHERE i.is_open
  GROUP BY 1, 2, 3, 4
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
         chg.lead_time_median_hours, chg.lead_time_p90_hours,
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
  FROM dora_period_grid g
  LEFT JOIN dep ON dep.period = g.period AND dep.scope = g.scope AND dep.name = g.name AND dep.period_start = g.period_start
  LEFT JOIN chg ON chg.period = g.period AND chg.scope = g.scope AND chg.name = g.name AND chg.period_start = g.period_start
  LEFT JOIN rec ON rec.period = g.period AND rec.scope = g.scope AND rec.name = g.name AND rec.period_start = g.period_start
  LEFT JOIN open_failures ON open_failures.period = g.period AND open_failures.scope = g.scope AND open_failures.name = g.name AND open_failures.period_start = g.period_start
  LEFT JOIN inc ON inc.period = g.period AND inc.scope = g.scope AND inc.name = g.name AND inc.period_start = g.period_start
  LEFT JOIN open_inc ON open_inc.period = g.period AND open_inc.scope = g.scope AND open_inc.name = g.name AND open_inc.period_start = g.period_start
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
-- dora_daily, dora_weekly, dora_monthly: the periods. See dora.sql.
CREATE VIEW dora_daily AS SELECT * FROM dora_periods WHERE period = 'day'
;
CREATE VIEW dora_weekly AS SELECT * FROM dora_periods WHERE period = 'week'
;
CREATE VIEW dora_monthly AS SELECT * FROM dora_periods WHERE period = 'month'
;
-- dora_targets: each metric against its target. See dora.sql.
CREATE VIEW dora_targets AS
WITH t AS (
  SELECT p.period, p.scope, p.name, p.team, p.period_start, p.deploys_per_day, p.lead_time_median_hours,
         p.change_failure_rate, p.recovery_median_hours,
         COALESCE(o.deploys_per_day, d.deploys_per_day) AS deploys_per_day_target,
         COALESCE(o.lead_time_hours, d.lead_time_hours) AS lead_time_target,
         COALESCE(o.change_failure_rate, d.change_failure_rate) AS change_failure_rate_target,
         COALESCE(o.recovery_minutes, d.recovery_minutes) / 60.0 AS recovery_target
  FROM dora_periods p
  CROSS JOIN (SELECT * FROM targets WHERE service IS NULL) d
  LEFT JOIN targets o ON p.scope = 'service' AND o.service = p.name
)
SELECT period, scope, name, team, period_start, 'deploys_per_day' AS metric, deploys_per_day AS value,
       '>=' AS comparison, deploys_per_day_target AS target, deploys_per_day >= deploys_per_day_target AS met
FROM t
UNION ALL
SELECT period, scope, name, team, period_start, 'lead_time_hours', lead_time_median_hours,
       '<', lead_time_target, lead_time_median_hours < lead_time_target FROM t
UNION ALL
SELECT period, scope, name, team, period_start, 'change_failure_rate', change_failure_rate,
       '<', change_failure_rate_target, change_failure_rate < change_failure_rate_target FROM t
UNION ALL
SELECT period, scope, name, team, period_start, 'recovery_hours', recovery_median_hours,
       '<', recovery_target, recovery_median_hours < recovery_target FROM t
;
