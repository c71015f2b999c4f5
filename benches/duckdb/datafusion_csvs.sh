#!/bin/sh
# DataFusion's answers for `dora_duckdb.py --check-against OUT_DIR`: one CSV per view, written by
# `doracost sql --format csv`. Arrow's CSV writer has no list type, so dora_changes' list columns
# (labels, incident_refs) are rendered `[a,b]` (NULL stays NULL), as the check renders DuckDB's.
#
#   sh datafusion_csvs.sh DORACOST_BINARY LAKE_DIR CONFIG OUT_DIR
set -eu
bin=$1 lake=$2 config=$3 out=$4
mkdir -p "$out"
list() { echo "CASE WHEN $1 IS NULL THEN NULL ELSE '[' || array_to_string($1, ',') || ']' END AS $1"; }
for view in dora_deployments dora_recoveries dora_incidents dora_daily dora_weekly dora_monthly dora_targets; do
  "$bin" --data-dir "$lake" --config "$config" sql --format csv "SELECT * FROM $view" > "$out/$view.csv"
done
"$bin" --data-dir "$lake" --config "$config" sql --format csv "SELECT change_id, service, team, repo, sha,
  pr_number, deployment_id, deployed_at, day, week, month, lead_time_start, start_kind, lead_time_hours,
  negative_lead_time, coding_hours, pickup_hours, review_hours, deploy_hours, pr_head_branch,
  $(list labels), $(list incident_refs) FROM dora_changes" > "$out/dora_changes.csv"
