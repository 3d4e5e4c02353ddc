#!/bin/sh
# Replays the checked-in corpus of fuzz_follow once (TAP output).
# Files, not the directory: a libFuzzer build would take a directory as a
# corpus to fuzz forever, while files given by name are just run once.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
exec "$top_builddir/tests/fuzz/fuzz_follow" "$top_srcdir/tests/fuzz/corpus/follow"/*
