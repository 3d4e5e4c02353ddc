#!/bin/sh
# Replays the checked-in corpus of fuzz_name once (TAP output).
exec "$top_builddir/tests/fuzz/fuzz_name" "$top_srcdir/tests/fuzz/corpus/name"
