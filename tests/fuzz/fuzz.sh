#!/bin/sh
# Run every libFuzzer target for a bounded time on a copy of its corpus.
#   sh tests/fuzz/fuzz.sh BUILDDIR [SECONDS]
# Fails on the first finding; the reproducer is left in BUILDDIR/fuzz-out/.
set -eu
builddir=$1
secs=${2:-60}
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
out="$builddir/fuzz-out"
mkdir -p "$out"
for t in hello follow name policy decide proxy http_request http_response http_body http_location jsonl audit posture; do
	work=$(mktemp -d)
	# Seeds only: a corpus folder may also hold how its files were made.
	find "$srcdir/tests/fuzz/corpus/$t" -maxdepth 1 -type f \
	    ! -name '*.md' ! -name '*.sh' ! -name '*.py' -exec cp {} "$work/" \;
	echo "fuzz_$t: ${secs}s"
	"$builddir/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 \
	    -rss_limit_mb=2048 -artifact_prefix="$out/$t-" -print_final_stats=1 \
	    "$work" 2>"$out/fuzz_$t.log" || {
		tail -60 "$out/fuzz_$t.log"
		echo "fuzz_$t found a problem: see $out" >&2
		exit 1
	}
	grep -E 'stat::number_of_executed_units|cov:' "$out/fuzz_$t.log" | tail -2
	rm -rf "$work"
done
