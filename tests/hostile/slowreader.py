#!/usr/bin/env python3
"""A slow log consumer: copy stdin to the file argv[1] line by line,
sleeping argv[3] seconds after every argv[2] lines (each line flushed as it is copied)."""
import sys
import time

out = open(sys.argv[1], "wb")
every, pause = int(sys.argv[2]), float(sys.argv[3])
n = 0
for line in sys.stdin.buffer:
    out.write(line)
    out.flush()
    n += 1
    if n % every == 0:
        time.sleep(pause)
out.close()
