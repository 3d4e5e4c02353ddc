#!/bin/sh
# Replays the checked-in corpus of fuzz_posture once (TAP output).
# Files, not the directory: a libFuzzer build given a directory would start
# fuzzing it; given files, it runs each once, as the replay driver does.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
exec "$top_builddir/tests/fuzz/fuzz_posture" "$top_srcdir/tests/fuzz/corpus/posture"/*
