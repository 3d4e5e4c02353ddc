#!/bin/sh
# Replays the checked-in corpus of fuzz_hello once (TAP output).
exec "$top_builddir/tests/fuzz/fuzz_hello" "$top_srcdir/tests/fuzz/corpus/hello"
