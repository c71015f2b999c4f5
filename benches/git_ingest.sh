#!/usr/bin/env bash
# `doracost ingest git` at scale (issue 17's benchmark): the sample organisation's generated git
# repositories (one bare repository per repo, the ground truth's commits), read into a new lake
# with every core. Prints the commits read, the read rate (the repositories' graphs and every
# commit's touched paths) and the whole command's wall time and peak RSS (lake writes included);
# then a second run over the unchanged repositories.
#
#   bash benches/git_ingest.sh [path/to/doracost] [scale] [work dir]
#
# The large organisation's repositories take about 9 GB (objects stored uncompressed).
set -euo pipefail
bin="${1:-${CARGO_TARGET_DIR:-target}/release/doracost}"
scale="${2:-large}"
work="${3:-$(mktemp -d)}"
mkdir -p "$work"
if [ ! -d "$work/sample/git" ]; then
  /usr/bin/time -f "generated in %e s, peak RSS %M kB" \
    "$bin" sample generate --scale "$scale" --out "$work/sample" --formats git >/dev/null
fi
du -sh "$work/sample/git"
args=()
for repo in "$work"/sample/git/*/*.git; do args+=(--repo "$repo"); done
echo "${#args[@]} arguments ($(( ${#args[@]} / 2 )) repositories)"
rm -rf "$work/lake"
for run in first second; do
  /usr/bin/time -f "$run run: wall %e s, peak RSS %M kB" \
    "$bin" --config "$work/sample/doracost.toml" --data-dir "$work/lake" ingest git --no-refresh \
    --format json "${args[@]}" >"$work/$run.json"
  python3 - "$work/$run.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"  commits {r['commits']}, read now {r['commits_read']}, read in {r['read_seconds']:.1f} s "
      f"({r['commits_per_second_read']:.0f} commits/s); command {r['seconds']:.1f} s; "
      f"tables {[(t['table'], t['rows_in']) for t in r['tables']]}")
PY
done
