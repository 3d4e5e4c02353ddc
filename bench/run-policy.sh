#!/bin/sh
# The policy scale benchmark (issue 3): generates policies of 10, 1,000 and
# 100,000 host patterns and runs bench/policy_bench over them.
#
#   sh bench/run-policy.sh path/to/bench/policy_bench [policy_bench options]
#
# Run through "make bench-policy". Takes about 10 s on an idle machine and
# is cut off after 110 s. The generated files live in a temporary directory
# that is removed on exit; the same seed gives the same files everywhere.
set -eu

bench=${1:?usage: run-policy.sh path/to/policy_bench [options]}
shift
here=$(cd "$(dirname "$0")" && pwd)
sizes="10 1000 100000"
seed=${POLICY_BENCH_SEED:-1}
python=${PYTHON:-python3}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/policy-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP

echo "== egressd policy benchmark"
echo "host:    $(uname -srm), $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sort -u | head -n 1)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; other work skews the timings)"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "seed:    $seed"
echo

for n in $sizes; do
	"$python" "$here/gen_rules.py" "$n" "$seed" "$tmp/rules-$n.yaml"
done
for n in $sizes; do
	printf 'rules-%s.yaml: %s bytes, %s hit and %s miss names\n' "$n" \
	    "$(wc -c <"$tmp/rules-$n.yaml" | tr -d ' ')" \
	    "$(wc -l <"$tmp/rules-$n.yaml.hits" | tr -d ' ')" \
	    "$(wc -l <"$tmp/rules-$n.yaml.misses" | tr -d ' ')"
done
echo

# timeout(1) bounds a run on a starved machine; -k in case TERM is ignored.
# $sizes is split into arguments on purpose.
rc=0
# shellcheck disable=SC2086
timeout -k 5 110 "$bench" "$@" "$tmp" $sizes || rc=$?
if [ "$rc" -eq 124 ]; then
	echo "run-policy.sh: policy_bench took longer than 110 s; stopped" >&2
fi
exit "$rc"
