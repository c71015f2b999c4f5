-- Cost per service, forecast, anomalies, budgets and cost per deployment as DataFusion views
-- (DESIGN §4 "Cost per service", "Cost per deployment", "Forecast", "Anomaly"). Each view says
-- which rule of §4 it implements.
--
-- Registered by `query::Engine` after dora.sql, over the lake's `costs` and the config tables
-- `services`, `reporting`, `cost_rules`, `shared_cost_pools`, `shared_cost_shares`, `budgets` and
-- `budget_thresholds` (`SELECT * FROM cost_rules` shows how config was read). Template values:
-- {{time_zone}} (`[reporting] time_zone`), {{forecast_trailing_days}} and
-- {{anomaly_baseline_days}} (window frames need constants); other settings are read from
-- `reporting`.
--
-- Money stays DECIMAL(38, 12) throughout; a charge's day and month are those of its
-- `charge_period_start` in the reporting time zone. Forecast, anomaly and budget series add up
-- every currency of the bill as they come (one billing currency is assumed there);
-- `cost_daily`, `cost_monthly` and `cost_reconciliation` keep currencies apart.
--
-- Statements are separated by a line holding only `;`; `-- @cached` marks a view computed once
-- per session, on first use; `-- @persisted` a cached view also kept in the lake as a derived
-- table, refreshed by each ingest (see dora.sql).

-- §4 "Cost per service", the amount: each bill line with the configured cost column
-- (`[reporting] cost_metric`: effective_cost by default, billed_cost by config; a missing amount
-- counts as 0), its local day, and the `ordinal` of the cost rule it takes (`rule_ordinal`, NULL
-- when none: see `cost_assignments`).
-- @internal
CREATE VIEW cost_lines AS
SELECT c.cost_id, c.provider, c.billing_account, c.sub_account, c.cloud_service, c.currency,
       c.is_estimated, c.tags,
       cost_rule_pick(c.tags, c.sub_account, c.billing_account, c.cloud_service) AS rule_ordinal,
       CAST(date_trunc('day', to_local_time(arrow_cast(c.charge_period_start, 'Timestamp(Microsecond, Some("{{time_zone}}"))'))) AS DATE) AS day,
       coalesce(CASE WHEN r.cost_metric = 'billed_cost' THEN c.billed_cost ELSE c.effective_cost END,
                CAST(0 AS DECIMAL(38, 12))) AS cost
FROM costs c CROSS JOIN reporting r
;
-- §4 "Service attribution" for cost: every rule a bill line matches. Tag keys and values compare
-- lower-case with surrounding spaces trimmed on both sides (the FOCUS sample has a " org" key);
-- an account rule matches the line's sub-account or billing account; a cloud-service rule its
-- `cloud_service`. Rules come from `[[services]]` (cost_tags, cost_accounts, cost_cloud_services)
-- and `[[shared_costs]]` (see `cost_rules`).
-- @internal
CREATE VIEW cost_rule_matches AS
WITH tag_entries AS (
  SELECT cost_id, lower(trim(e['key'])) AS tag_key, lower(trim(e['value'])) AS tag_value
  FROM (SELECT cost_id, unnest(map_entries(tags)) AS e FROM costs WHERE tags IS NOT NULL) t
)
SELECT t.cost_id, r.precedence, r.ordinal, r.target_kind, r.target
FROM tag_entries t
JOIN cost_rules r ON r.rule_kind = 'tag' AND r.tag_key = t.tag_key AND r.value = t.tag_value
UNION ALL
SELECT c.cost_id, r.precedence, r.ordinal, r.target_kind, r.target
FROM costs c JOIN cost_rules r ON r.rule_kind = 'account' AND r.value = lower(trim(c.sub_account))
UNION ALL
SELECT c.cost_id, r.precedence, r.ordinal, r.target_kind, r.target
FROM costs c JOIN cost_rules r ON r.rule_kind = 'account' AND r.value = lower(trim(c.billing_account))
UNION ALL
SELECT c.cost_id, r.precedence, r.ordinal, r.target_kind, r.target
FROM costs c JOIN cost_rules r ON r.rule_kind = 'cloud_service' AND r.value = lower(trim(c.cloud_service))
;
-- Rule precedence: a line matching several rules takes the one of lowest `precedence` (a
-- service's tag, then a shared cost's tag, a service's account, a shared cost's account, a
-- service's cloud service, a shared cost's cloud service: the more specific rule wins), then the
-- first in config order. One row per matched line; a line with no row maps nowhere.
-- `cost_rule_pick` (query/src/rule_pick.rs) computes exactly this pick in one pass over the bill
-- (the cost views use it: unnesting every tag of every line and joining back by `cost_id` does not
-- scale to tens of millions of lines); `cost_assignments_by_matches` spells it out in SQL, and the
-- tests check that the two agree.
-- @internal
CREATE VIEW cost_assignments AS
SELECT l.cost_id, r.target_kind, r.target, r.precedence, r.ordinal
FROM cost_lines l JOIN cost_rules r ON r.ordinal = l.rule_ordinal
;
-- `cost_assignments` spelled out in SQL from `cost_rule_matches`: the lowest precedence, then the
-- first in config order (the tests check it agrees with `cost_rule_pick` line by line).
-- @internal
CREATE VIEW cost_assignments_by_matches AS
SELECT cost_id, target_kind, target, precedence, ordinal FROM (
  SELECT cost_id, target_kind, target, precedence, ordinal,
         row_number() OVER (PARTITION BY cost_id ORDER BY precedence, ordinal) AS pick
  FROM cost_rule_matches
) m WHERE pick = 1
;
-- §4 "Cost that maps nowhere is `unallocated`, never dropped": the bill per day, provider, cloud
-- service and currency, by owner: a service (`owner_kind = 'service'`), a shared cost
-- (`'shared'`, split below) or `unallocated`. `is_estimated` when any line is an estimate.
-- Columns:
-- - day: the charge's day in the reporting time zone
-- - provider, cloud_service, currency: as in `costs`
-- - owner_kind: `service`, `shared` or `unallocated`
-- - owner: the service, the shared cost's name, or `unallocated`
-- - cost: the configured cost column summed
-- - is_estimated: any of its lines is an estimate (Cost Explorer's `Estimated`)
-- - lines: how many bill lines it sums
-- @persisted
CREATE VIEW cost_owned AS
SELECT l.day, l.provider, l.cloud_service, l.currency,
       coalesce(a.target_kind, 'unallocated') AS owner_kind,
       coalesce(a.target, 'unallocated') AS owner,
       sum(l.cost) AS cost, bool_or(l.is_estimated) AS is_estimated, count(*) AS lines
FROM cost_lines l LEFT JOIN cost_rules a ON a.ordinal = l.rule_ordinal
GROUP BY l.day, l.provider, l.cloud_service, l.currency, coalesce(a.target_kind, 'unallocated'),
         coalesce(a.target, 'unallocated')
;
-- §4 "shared-cost rules split a shared cost by configured weights or in proportion to direct
-- cost": each service's weight in a shared cost's split, per day and currency.
-- - `split = "weights"`: the configured whole-number weights.
-- - `split = "proportional"`: the service's direct cost the same day and currency (all providers),
--   a negative one (credits) counting 0; when no service has a positive direct cost that day,
--   the services share equally (weight 1 each).
-- @internal
CREATE VIEW cost_shared_weights AS
WITH pool_days AS (
  SELECT DISTINCT owner AS pool, day, currency FROM cost_owned WHERE owner_kind = 'shared'
),
direct AS (
  SELECT day, currency, owner AS service, sum(cost) AS cost
  FROM cost_owned WHERE owner_kind = 'service' GROUP BY day, currency, owner
),
proportional AS (
  SELECT d.pool, d.day, d.currency, s.service,
         CASE WHEN x.cost > CAST(0 AS DECIMAL(38, 12)) THEN x.cost ELSE CAST(0 AS DECIMAL(38, 12)) END AS basis
  FROM pool_days d
  JOIN shared_cost_pools p ON p.pool = d.pool AND p.split = 'proportional'
  JOIN shared_cost_shares s ON s.pool = d.pool
  LEFT JOIN direct x ON x.day = d.day AND x.currency = d.currency AND x.service = s.service
)
SELECT d.pool, d.day, d.currency, s.service, s.weight
FROM pool_days d
JOIN shared_cost_pools p ON p.pool = d.pool AND p.split = 'weights'
JOIN shared_cost_shares s ON s.pool = d.pool
WHERE s.weight > CAST(0 AS DECIMAL(38, 12))
UNION ALL
SELECT pool, day, currency, service,
       CASE WHEN sum(basis) OVER (PARTITION BY pool, day, currency) > CAST(0 AS DECIMAL(38, 12))
            THEN basis ELSE CAST(1 AS DECIMAL(38, 12)) END AS weight
FROM proportional
;
-- §4 "Allocated + unallocated = bill, to the last decimal": each shared amount (per day,
-- provider, cloud service, currency and shared cost) split by the weights with the
-- largest-remainder method. Every piece first gets ⌊amount × weight ÷ total⌋ in units of 10⁻¹²
-- (`share_floor`, exact 256-bit integer arithmetic); the units left over (fewer than the pieces)
-- go one each to the pieces with the largest remainders (`share_remainder`), ties to the service
-- first by name. So the pieces sum to the amount exactly, and the same input splits the same way.
-- @internal
CREATE VIEW cost_shared_pieces AS
WITH pools AS (
  SELECT day, provider, cloud_service, currency, owner AS pool, cost
  FROM cost_owned WHERE owner_kind = 'shared'
),
weights AS (
  SELECT pool, day, currency, service, weight,
         sum(weight) OVER (PARTITION BY pool, day, currency) AS total
  FROM cost_shared_weights
),
split AS (
  SELECT p.day, p.provider, p.cloud_service, p.currency, p.pool, w.service, p.cost,
         share_floor(p.cost, w.weight, w.total) AS floor_part,
         share_remainder(p.cost, w.weight, w.total) AS remainder
  FROM pools p JOIN weights w ON w.pool = p.pool AND w.day = p.day AND w.currency = p.currency
),
ranked AS (
  SELECT *,
         row_number() OVER (PARTITION BY day, provider, cloud_service, currency, pool
                            ORDER BY remainder DESC, service) AS remainder_rank,
         cost - sum(floor_part) OVER (PARTITION BY day, provider, cloud_service, currency, pool) AS leftover
  FROM split
)
SELECT day, provider, cloud_service, currency, pool, service,
       floor_part + CASE WHEN remainder_rank <= CAST(leftover * 1000000000000 AS BIGINT)
                         THEN CAST(0.000000000001 AS DECIMAL(38, 12))
                         ELSE CAST(0 AS DECIMAL(38, 12)) END AS cost
FROM ranked
;
-- §4 "Cost per service": the whole bill, allocated, per day, provider, cloud service and
-- currency: a service's direct cost (`allocation = 'direct'`), its pieces of shared costs
-- (`'shared'`, `shared_cost` naming which), and `unallocated` (lines no rule maps, and a shared
-- cost none of whose services exists to take it).
-- Columns:
-- - day, month: the charge's day and month in the reporting time zone
-- - provider, cloud_service, currency: as in `costs`
-- - service: the service, or `unallocated`
-- - team: the service's team from config
-- - allocation: `direct`, `shared` or `unallocated`
-- - shared_cost: the shared cost a `shared` piece came from (also on `unallocated` rows of a shared
--   cost nobody took)
-- - cost: the amount, DECIMAL(38, 12)
-- @persisted
CREATE VIEW cost_allocated AS
WITH teams AS (SELECT service, min(team) AS team FROM services GROUP BY service),
parts AS (
  SELECT day, provider, cloud_service, currency, owner AS service, 'direct' AS allocation,
         CAST(NULL AS VARCHAR) AS shared_cost, cost
  FROM cost_owned WHERE owner_kind = 'service'
  UNION ALL
  SELECT day, provider, cloud_service, currency, service, 'shared' AS allocation, pool AS shared_cost, cost
  FROM cost_shared_pieces
  UNION ALL
  SELECT day, provider, cloud_service, currency, 'unallocated' AS service, 'unallocated' AS allocation,
         CAST(NULL AS VARCHAR) AS shared_cost, cost
  FROM cost_owned WHERE owner_kind = 'unallocated'
  UNION ALL
  SELECT o.day, o.provider, o.cloud_service, o.currency, 'unallocated' AS service,
         'unallocated' AS allocation, o.owner AS shared_cost, o.cost
  FROM cost_owned o
  LEFT JOIN (SELECT DISTINCT pool, day, currency FROM cost_shared_weights) w
    ON w.pool = o.owner AND w.day = o.day AND w.currency = o.currency
  WHERE o.owner_kind = 'shared' AND w.pool IS NULL
)
SELECT p.day, CAST(date_trunc('month', CAST(p.day AS TIMESTAMP)) AS DATE) AS month, p.provider,
       p.cloud_service, p.currency, p.service, t.team, p.allocation, p.shared_cost, p.cost
FROM parts p LEFT JOIN teams t ON t.service = p.service
;
-- §4 "Cost per service ... per day": cost by day, service, team, provider, cloud service and
-- currency, with its direct and shared parts. `unallocated` is always present: a (day, provider,
-- currency) of the bill with nothing unallocated has an `unallocated` row of 0.
-- Columns:
-- - day, month: the day and its month in the reporting time zone
-- - service: the service, or `unallocated`
-- - team: the service's team from config
-- - provider, cloud_service, currency: as in `costs` (`cloud_service` NULL on a zero
--   `unallocated` row)
-- - cost: the day's cost allocated to the service (direct + shared), in `currency`
-- - direct_cost: the part its own rules mapped
-- - shared_cost: the part it took of shared costs
CREATE VIEW cost_daily AS
WITH zero_unallocated AS (
  SELECT day, provider, currency FROM cost_allocated GROUP BY day, provider, currency
  HAVING NOT bool_or(service = 'unallocated')
)
SELECT day, month, service, team, provider, cloud_service, currency, sum(cost) AS cost,
       sum(CASE WHEN allocation = 'direct' THEN cost ELSE CAST(0 AS DECIMAL(38, 12)) END) AS direct_cost,
       sum(CASE WHEN allocation = 'shared' THEN cost ELSE CAST(0 AS DECIMAL(38, 12)) END) AS shared_cost
FROM (
  SELECT day, month, service, team, provider, cloud_service, currency, allocation, cost FROM cost_allocated
  UNION ALL
  SELECT day, CAST(date_trunc('month', CAST(day AS TIMESTAMP)) AS DATE), 'unallocated',
         CAST(NULL AS VARCHAR), provider, CAST(NULL AS VARCHAR), currency, 'unallocated',
         CAST(0 AS DECIMAL(38, 12))
  FROM zero_unallocated
) x
GROUP BY day, month, service, team, provider, cloud_service, currency
;
-- §4 "Cost per service ... per month": `cost_daily` summed over the month. Computed from
-- `cost_allocated` in one aggregation (the same sums: a month's `unallocated` row of 0 stands for
-- the days of that provider and currency with nothing unallocated), not by summing `cost_daily`,
-- which would group the day-level rows twice.
-- Columns (the rest as in `cost_daily`):
-- - month: the month, in the reporting time zone
-- - cost: the month's cost allocated to the service (direct + shared), in `currency`
CREATE VIEW cost_monthly AS
WITH zero_unallocated AS (
  SELECT DISTINCT month, provider, currency FROM (
    SELECT day, month, provider, currency FROM cost_allocated GROUP BY day, month, provider, currency
    HAVING NOT bool_or(service = 'unallocated')
  ) d
)
SELECT month, service, team, provider, cloud_service, currency, sum(cost) AS cost,
       sum(CASE WHEN allocation = 'direct' THEN cost ELSE CAST(0 AS DECIMAL(38, 12)) END) AS direct_cost,
       sum(CASE WHEN allocation = 'shared' THEN cost ELSE CAST(0 AS DECIMAL(38, 12)) END) AS shared_cost
FROM (
  SELECT month, service, team, provider, cloud_service, currency, allocation, cost FROM cost_allocated
  UNION ALL
  SELECT month, 'unallocated', CAST(NULL AS VARCHAR), provider, CAST(NULL AS VARCHAR), currency,
         'unallocated', CAST(0 AS DECIMAL(38, 12))
  FROM zero_unallocated
) x
GROUP BY month, service, team, provider, cloud_service, currency
;
-- §4 "Allocated + unallocated = bill, to the last decimal", shown: per provider, month and
-- currency, the bill read straight from the lake's lines beside what the allocation handed out
-- (services, shared pieces included) and left unallocated. `difference` must be 0.
-- Columns:
-- - provider, month, currency: the bill's provider, month (reporting time zone) and currency
-- - lines: bill lines in the lake
-- - bill: their cost (the configured cost column), summed
-- - allocated: what services received, shared pieces included
-- - unallocated: what mapped to no service
-- - difference: `bill` − `allocated` − `unallocated`: always 0
CREATE VIEW cost_reconciliation AS
WITH bill AS (
  SELECT provider, CAST(date_trunc('month', CAST(day AS TIMESTAMP)) AS DATE) AS month, currency,
         count(*) AS lines, sum(cost) AS bill
  FROM cost_lines GROUP BY 1, 2, 3
),
handed_out AS (
  SELECT provider, month, currency,
         sum(CASE WHEN service <> 'unallocated' THEN cost ELSE CAST(0 AS DECIMAL(38, 12)) END) AS allocated,
         sum(CASE WHEN service = 'unallocated' THEN cost ELSE CAST(0 AS DECIMAL(38, 12)) END) AS unallocated
  FROM cost_allocated GROUP BY provider, month, currency
)
SELECT b.provider, b.month, b.currency, b.lines, b.bill,
       coalesce(h.allocated, CAST(0 AS DECIMAL(38, 12))) AS allocated,
       coalesce(h.unallocated, CAST(0 AS DECIMAL(38, 12))) AS unallocated,
       b.bill - coalesce(h.allocated, CAST(0 AS DECIMAL(38, 12)))
              - coalesce(h.unallocated, CAST(0 AS DECIMAL(38, 12))) AS difference
FROM bill b
LEFT JOIN handed_out h ON h.provider = b.provider AND h.month = b.month AND h.currency = b.currency
;
-- The cutoff of the forecast and anomaly views: the first day that may still change. The bill's
-- latest day is still filling in, and an estimated day (Cost Explorer's `Estimated`) will be
-- restated, so the cutoff is the latest day, or the first estimated day among the 14 before it
-- when earlier. Days from the cutoff on are incomplete.
-- Columns:
-- - last_day: the bill's latest day
-- - cutoff: the first day that may still change (forecasts are made as of it)
CREATE VIEW cost_cutoff AS
WITH last AS (SELECT max(day) AS last_day FROM cost_owned),
estimated AS (
  SELECT min(o.day) AS first_estimated
  FROM cost_owned o CROSS JOIN last l
  WHERE o.is_estimated AND o.day >= l.last_day - 14
)
SELECT l.last_day, least(l.last_day, coalesce(e.first_estimated, l.last_day)) AS cutoff
FROM last l CROSS JOIN estimated e WHERE l.last_day IS NOT NULL
;
-- Daily cost series for the forecast, anomaly and budget views: per service (configured or seen,
-- `unallocated` included), per team and for everything (`scope` = 'service' | 'team' | 'all'),
-- and for each tag a budget is scoped to (`tag`: the bill's lines carrying it, as billed, not
-- allocated; the statement sums them once per such budget, with the key and value written in),
-- every calendar day from the bill's first day to its last, 0 on a day without cost.
-- Columns:
-- - scope: `service`, `team`, `tag` or `all`
-- - name: the service (`unallocated` included), the team, `key=value` for a tag, or `all`
-- - team: a service's team (NULL for teams and `all`)
-- - day, month: the calendar day and its month
-- - cost: the day's allocated cost, 0 on a day without any
-- @cached
CREATE VIEW cost_series AS
WITH bounds AS (SELECT min(day) AS first_day, max(day) AS last_day FROM cost_allocated),
days AS (
  SELECT CAST(unnest(range(first_day, last_day + INTERVAL '1 day', INTERVAL '1 day')) AS DATE) AS day
  FROM bounds WHERE first_day IS NOT NULL
),
names AS (
  SELECT 'service' AS scope, service AS name, min(team) AS team FROM (
    SELECT service, team FROM services
    UNION ALL SELECT DISTINCT service, team FROM cost_allocated
    UNION ALL SELECT 'unallocated', CAST(NULL AS VARCHAR)
  ) s GROUP BY service
  UNION ALL
  SELECT DISTINCT 'team' AS scope, team AS name, team FROM services WHERE team IS NOT NULL
  UNION ALL
  SELECT 'all' AS scope, 'all' AS name, CAST(NULL AS VARCHAR) AS team
  UNION ALL
  SELECT DISTINCT 'tag' AS scope, scope_name AS name, CAST(NULL AS VARCHAR) AS team FROM budgets WHERE scope = 'tag'
),
sums AS (
  SELECT 'service' AS scope, service AS name, day, sum(cost) AS cost FROM cost_allocated GROUP BY service, day
  UNION ALL
  SELECT 'team' AS scope, team AS name, day, sum(cost) AS cost FROM cost_allocated WHERE team IS NOT NULL GROUP BY team, day
  UNION ALL
  SELECT 'all' AS scope, 'all' AS name, day, sum(cost) AS cost FROM cost_allocated GROUP BY day
  {{tag_budget_sums}}
)
SELECT n.scope, n.name, n.team, d.day, CAST(date_trunc('month', CAST(d.day AS TIMESTAMP)) AS DATE) AS month,
       coalesce(s.cost, CAST(0 AS DECIMAL(38, 12))) AS cost
FROM names n CROSS JOIN days d
LEFT JOIN sums s ON s.scope = n.scope AND s.name = n.name AND s.day = d.day
;
-- §4 "Forecast", the method: the month-end projection of a series made on day D (the cutoff: D
-- and later days are not known yet) is
--     actual_before + run_rate × days_left
-- where actual_before is the month's cost on its days before D, run_rate the mean daily cost of
-- the N days before D (N = `[reporting] forecast_trailing_days`, default 7; fewer at the start of
-- the series, none on its first day: NULL), and days_left the days from D to the month's end, D
-- included. A run rate of whole weeks carries the weekday/weekend mix. One row per series and
-- day D, so past forecasts can be replayed (`cost_forecast_backtest`).
-- Columns:
-- - scope, name, team: the series, as in `cost_series`
-- - month: the month forecast
-- - as_of: the day D the forecast is made on (D's own cost not yet known)
-- - actual_before: the month's cost on its days before D
-- - trailing_days: how many days the run rate averages (up to `forecast_trailing_days`)
-- - run_rate: mean daily cost of those days (NULL on the series' first day)
-- - days_left: days from D to the month's end, D included
-- - forecast: `actual_before` + `run_rate` × `days_left` (NULL without a run rate)
-- @cached
CREATE VIEW cost_forecast_history AS
WITH w AS (
  SELECT scope, name, team, day, month, cost,
         coalesce(sum(cost) OVER (PARTITION BY scope, name, month ORDER BY day
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                  CAST(0 AS DECIMAL(38, 12))) AS actual_before,
         sum(cost) OVER (PARTITION BY scope, name ORDER BY day
                         ROWS BETWEEN {{forecast_trailing_days}} PRECEDING AND 1 PRECEDING) AS trailing_cost,
         count(cost) OVER (PARTITION BY scope, name ORDER BY day
                           ROWS BETWEEN {{forecast_trailing_days}} PRECEDING AND 1 PRECEDING) AS trailing_days
  FROM cost_series
)
SELECT scope, name, team, month, day AS as_of, actual_before, trailing_days,
       CASE WHEN trailing_days > 0 THEN CAST(trailing_cost / trailing_days AS DECIMAL(38, 12)) END AS run_rate,
       CAST(date_trunc('month', CAST(day AS TIMESTAMP)) + INTERVAL '1 month' AS DATE) - day AS days_left,
       CASE WHEN trailing_days > 0 THEN
         actual_before + CAST(trailing_cost * (CAST(date_trunc('month', CAST(day AS TIMESTAMP)) + INTERVAL '1 month' AS DATE) - day)
                              / trailing_days AS DECIMAL(38, 12))
       END AS forecast
FROM w
;
-- §4 "Forecast": each series' projection for the month of the cutoff (`cost_cutoff`), beside its
-- month-to-date actual (every day so far, incomplete ones included).
-- Columns (the rest as in `cost_forecast_history`):
-- - actual_to_date: the month's cost so far, incomplete days included
CREATE VIEW cost_forecast AS
WITH mtd AS (
  SELECT s.scope, s.name, sum(s.cost) AS actual_to_date
  FROM cost_series s CROSS JOIN cost_cutoff c
  WHERE s.month = CAST(date_trunc('month', CAST(c.cutoff AS TIMESTAMP)) AS DATE)
  GROUP BY s.scope, s.name
)
SELECT h.scope, h.name, h.team, h.month, h.as_of, m.actual_to_date, h.actual_before, h.run_rate,
       h.days_left, h.forecast
FROM cost_forecast_history h
CROSS JOIN cost_cutoff c
JOIN mtd m ON m.scope = h.scope AND m.name = h.name
WHERE h.as_of = c.cutoff
;
-- §4 "Forecast ... back-tested": every complete month before the cutoff's month, forecast as of
-- its 10th and its 20th day (data through the 9th and the 19th), against what the month came to.
-- `error_pct` = (forecast − actual) ÷ actual × 100, NULL when the month cost 0.
-- Columns:
-- - scope, name: the series, as in `cost_series`
-- - month: the complete month forecast
-- - as_of_day: the day of the month the forecast was made on: 10 or 20
-- - forecast: the month-end forecast made then
-- - actual: what the month came to
-- - error: `forecast` − `actual`
-- - error_pct: `error` ÷ `actual` × 100 (NULL when the month cost 0)
CREATE VIEW cost_forecast_backtest AS
WITH actual AS (
  SELECT scope, name, month, sum(cost) AS actual, min(day) AS first_day FROM cost_series GROUP BY scope, name, month
)
SELECT h.scope, h.name, h.month, CAST(date_part('day', h.as_of) AS BIGINT) AS as_of_day, h.forecast, a.actual,
       h.forecast - a.actual AS error,
       CASE WHEN a.actual <> CAST(0 AS DECIMAL(38, 12))
            THEN 100.0 * CAST(h.forecast - a.actual AS DOUBLE) / CAST(a.actual AS DOUBLE) END AS error_pct
FROM cost_forecast_history h
JOIN actual a ON a.scope = h.scope AND a.name = h.name AND a.month = h.month
CROSS JOIN cost_cutoff c
WHERE date_part('day', h.as_of) IN (10, 20)
  AND a.first_day = a.month
  AND CAST(a.month + INTERVAL '1 month' AS DATE) <= c.cutoff
  AND h.forecast IS NOT NULL
;
-- §4 "Anomaly", the method: a complete day (before the cutoff) is judged against the N days
-- before it (N = `[reporting] anomaly_baseline_days`, default 28, all of them needed): baseline =
-- their median, MAD = the median of their absolute deviations from it. The day is an anomaly
-- when |cost − baseline| > k × 1.4826 × MAD (k = `anomaly_threshold`, default 3; 1.4826 × MAD
-- estimates a standard deviation) and |cost − baseline| ≥ `anomaly_min_impact` (default 1.00).
-- Impact = cost − baseline, in currency and in percent of the baseline (NULL when it is 0).
-- One row per series and judged day (`is_anomaly` says which are). The median of an even count
-- is the mean of the two middle values, truncated at the 12th decimal (`list_median`, `list_mad`:
-- query/src/baseline.rs, over each day's window of N costs).
-- Columns:
-- - scope, name, team: the series, as in `cost_series`
-- - day: the judged day (complete: before the cutoff)
-- - cost: its cost
-- - baseline: median cost of the `anomaly_baseline_days` days before it
-- - mad: median absolute deviation of those days from `baseline`
-- - impact: `cost` − `baseline`
-- - impact_pct: `impact` ÷ `baseline` × 100 (NULL when `baseline` is 0)
-- - is_anomaly: beyond the threshold and the minimum impact
-- @cached
CREATE VIEW cost_anomaly_scores AS
WITH s AS (
  SELECT x.scope, x.name, x.team, x.day, x.cost FROM cost_series x CROSS JOIN cost_cutoff c WHERE x.day < c.cutoff
),
windows AS (
  SELECT scope, name, team, day, cost,
         array_agg(cost) OVER (PARTITION BY scope, name ORDER BY day
                               ROWS BETWEEN {{anomaly_baseline_days}} PRECEDING AND 1 PRECEDING) AS past
  FROM s
),
scored AS (
  SELECT w.scope, w.name, w.team, w.day, w.cost, cardinality(w.past) AS days,
         list_median(w.past) AS baseline, list_mad(w.past) AS mad
  FROM windows w
)
SELECT s.scope, s.name, s.team, s.day, s.cost, s.baseline, s.mad, s.cost - s.baseline AS impact,
       CASE WHEN s.baseline <> CAST(0 AS DECIMAL(38, 12))
            THEN 100.0 * CAST(s.cost - s.baseline AS DOUBLE) / CAST(s.baseline AS DOUBLE) END AS impact_pct,
       abs(CAST(s.cost - s.baseline AS DOUBLE)) > r.anomaly_threshold * 1.4826 * CAST(s.mad AS DOUBLE)
         AND abs(s.cost - s.baseline) >= r.anomaly_min_impact AS is_anomaly
FROM scored s CROSS JOIN reporting r
WHERE s.days = r.anomaly_baseline_days
;
-- §4 "Anomaly": the anomalous days only.
-- Columns (all as in `cost_anomaly_scores`):
CREATE VIEW cost_anomalies AS
SELECT scope, name, team, day, cost, baseline, mad, impact, impact_pct
FROM cost_anomaly_scores WHERE is_anomaly
;
-- Budgets (DESIGN §6 `[[budgets]]`) per month of the bill: the scope's cost so far (`actual`) and
-- its month-end forecast (`cost_forecast`'s method for the cutoff's month; a complete month's
-- forecast is its actual), against the monthly amount. `is_current` marks the cutoff's month.
-- Columns:
-- - budget: the budget's name
-- - scope: `service`, `team` or `all`
-- - scope_name: the service's or team's name, or `all`
-- - month: the month of the bill
-- - monthly_amount, currency: the budget's amount and currency
-- - actual: the scope's cost in the month so far
-- - forecast: its month-end forecast (a complete month's: its actual)
-- - is_current: the month of the cutoff
-- - as_of: the cutoff (see `cost_cutoff`)
-- - actual_pct, forecast_pct: `actual` and `forecast` in percent of `monthly_amount` (NULL when it
--   is 0)
CREATE VIEW budget_status AS
WITH months AS (
  SELECT scope, name, month, sum(cost) AS actual FROM cost_series GROUP BY scope, name, month
)
SELECT b.budget, b.scope, b.scope_name, m.month, b.monthly_amount, b.currency, m.actual,
       CASE WHEN m.month = f.month THEN f.forecast ELSE m.actual END AS forecast,
       m.month = coalesce(f.month, CAST(date_trunc('month', CAST(c.cutoff AS TIMESTAMP)) AS DATE)) AS is_current,
       c.cutoff AS as_of,
       CASE WHEN b.monthly_amount > CAST(0 AS DECIMAL(38, 12))
            THEN 100.0 * CAST(m.actual AS DOUBLE) / CAST(b.monthly_amount AS DOUBLE) END AS actual_pct,
       CASE WHEN b.monthly_amount > CAST(0 AS DECIMAL(38, 12))
            THEN 100.0 * CAST(CASE WHEN m.month = f.month THEN f.forecast ELSE m.actual END AS DOUBLE)
                 / CAST(b.monthly_amount AS DOUBLE) END AS forecast_pct
FROM budgets b
JOIN months m ON m.scope = b.scope AND m.name = b.scope_name
CROSS JOIN cost_cutoff c
LEFT JOIN cost_forecast f ON f.scope = b.scope AND f.name = b.scope_name
;
-- Each budget threshold per month: the amount it stands for (monthly amount × percent ÷ 100,
-- exact; or the amount the threshold names), the value it compares (`actual` or `forecast`) and
-- whether that reached it.
-- Columns:
-- - budget, month, is_current: as in `budget_status`
-- - kind: `actual` or `forecast`: which value the threshold compares
-- - percent: the threshold, in percent of the monthly amount
-- - threshold_amount: monthly amount × `percent` ÷ 100, or the threshold's own amount
-- - severity: the alert's urgency, `P1` (most) to `P4`
-- - value: the budget's `actual` or `forecast` that month
-- - crossed: `value` ≥ `threshold_amount`
CREATE VIEW budget_threshold_status AS
WITH t AS (
  SELECT t.budget, t.kind, t.percent, t.severity,
         coalesce(t.amount, CAST(b.monthly_amount * CAST(t.percent AS DECIMAL(10, 4)) / 100 AS DECIMAL(38, 12))) AS threshold_amount
  FROM budget_thresholds t JOIN budgets b ON b.budget = t.budget
)
SELECT s.budget, s.month, s.is_current, t.kind, t.percent, t.threshold_amount, t.severity,
       CASE t.kind WHEN 'actual' THEN s.actual ELSE s.forecast END AS value,
       CASE t.kind WHEN 'actual' THEN s.actual ELSE s.forecast END >= t.threshold_amount AS crossed
FROM budget_status s JOIN t ON t.budget = s.budget
;
-- §4 "Cost per deployment": per service and month, its allocated cost (all providers, shared
-- pieces included) ÷ its successful production deployments (`dora_monthly`); NULL with no
-- deployment (never a division by 0, never 0 for "no data"). A month with cost or a DORA row.
-- Columns:
-- - service: the service
-- - team: its team from config
-- - month: the month (reporting time zone)
-- - cost: its allocated cost in the month, shared pieces included (0 with none)
-- - deployments: its successful production deployments in the month
-- - cost_per_deployment: `cost` ÷ `deployments` (NULL with no deployment)
CREATE VIEW cost_per_deploy AS
WITH cost AS (
  SELECT service, month, sum(cost) AS cost FROM cost_allocated
  WHERE service <> 'unallocated' GROUP BY service, month
),
deploys AS (
  SELECT name AS service, period_start AS month, deployments FROM dora_monthly WHERE scope = 'service'
),
teams AS (SELECT service, min(team) AS team FROM services GROUP BY service)
SELECT coalesce(c.service, d.service) AS service, t.team, coalesce(c.month, d.month) AS month,
       coalesce(c.cost, CAST(0 AS DECIMAL(38, 12))) AS cost,
       coalesce(d.deployments, 0) AS deployments,
       CASE WHEN coalesce(d.deployments, 0) > 0
            THEN CAST(coalesce(c.cost, CAST(0 AS DECIMAL(38, 12))) / d.deployments AS DECIMAL(38, 12)) END AS cost_per_deployment
FROM cost c
FULL JOIN deploys d ON d.service = c.service AND d.month = c.month
LEFT JOIN teams t ON t.service = coalesce(c.service, d.service)
;
-- The service scorecard (issue 5): per service and month, cost and cost per deployment beside
-- the DORA metrics of `dora_monthly` (deployments, change failure rate, recovery and lead time
-- medians, and their levels).
-- Columns (the rest as in `cost_per_deploy`):
-- - lead_time_median_hours: the median lead time of the changes first deployed in the month
-- - change_failure_rate: failed ÷ successful production deployments of the month
-- - recovery_median_hours: the median recovery time of the failures recovered in the month
-- - deploy_frequency_level, lead_time_level, change_failure_level, recovery_level: the month's
--   levels in `dora_monthly`: `elite`, `high`, `medium` or `low` (NULL when the metric is)
CREATE VIEW service_scorecard AS
SELECT c.service, c.team, c.month, c.cost, c.deployments, c.cost_per_deployment,
       d.deploy_frequency_level,
       d.lead_time_median_hours, d.lead_time_level,
       d.change_failure_rate, d.change_failure_level,
       d.recovery_median_hours, d.recovery_level
FROM cost_per_deploy c
LEFT JOIN dora_monthly d ON d.scope = 'service' AND d.name = c.service AND d.period_start = c.month
