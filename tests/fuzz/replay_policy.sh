#!/bin/sh
# Replays the checked-in corpus of fuzz_policy once (TAP output).
exec "$top_builddir/tests/fuzz/fuzz_policy" "$top_srcdir/tests/fuzz/corpus/policy"
