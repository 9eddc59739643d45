#!/usr/bin/env bash
# Time the README's two commands as a new user runs them: a clean clone, a new virtual environment, an empty data cache.
# Writes the times to nbs/results/fresh_clone.md of this checkout (which the README shows).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
[ -n "${KEEP_FRESH_CLONE:-}" ] || trap 'rm -rf "$work"' EXIT   # gigabytes of venv and runs: gone unless KEEP_FRESH_CLONE is set
git clone -q "$repo" "$work/csl_nb"
cd "$work/csl_nb"
python3 -m venv "$work/venv"
source "$work/venv/bin/activate"
export CSL_NB_CACHE="$work/cache"
seconds() { local start=$SECONDS; "$@" > "$work/$1.log" 2>&1 || { tail -40 "$work/$1.log" >&2; exit 1; }; echo $(( SECONDS - start )); }
install=$(seconds pip install -e ".[train]")
demo=$(seconds csl_nb demo)
same=$(cmp -s runs/demo/results.md nbs/results/demo/results.md && echo "is identical to" || echo "differs from")
dev=$(seconds pip install -e ".[dev]")
fast=$(seconds make test-fast)
tests=$(seconds make test)
minutes() { printf "%d min %02d s" $(( $1 / 60 )) $(( $1 % 60 )); }
cat > "$repo/nbs/results/fresh_clone.md" <<TABLE
Measured from a clean clone in a new virtual environment with an empty data cache, on
$(nproc) CPU cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(date -u +%Y-%m-%d) (\`make fresh-clone\`):

| command | time |
|---|---|
| \`pip install -e ".[train]"\` | $(minutes $install) |
| \`csl_nb demo\` | $(minutes $demo) |
| \`pip install -e ".[dev]"\` (after the above) | $(minutes $dev) |
| \`make test-fast\` | $(minutes $fast) |
| \`make test\` | $(minutes $tests) |
TABLE
{ echo; echo "The demo's \`runs/demo/results.md\` $same the committed \`nbs/results/demo/results.md\`."; } >> "$repo/nbs/results/fresh_clone.md"
# the pytest summary lines are provenance, not the front page's: kept beside the table
grep -E "^[0-9]+ (passed|failed)" "$work/make.log" | sed -E 's/ in ([0-9.]+)s.*/ in \1 s/' > "$repo/nbs/results/fresh_clone_pytest.txt" || true
cat "$repo/nbs/results/fresh_clone.md"
