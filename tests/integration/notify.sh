#!/bin/sh
# systemd's readiness protocol (deploy/systemd/egressd.service is
# Type=notify), without systemd: a Python unix datagram socket stands where
# systemd's notify socket would, egressd is started with NOTIFY_SOCKET naming
# it, and the listener checks, at the moment each datagram arrives, what a
# client would see:
#
#   - READY=1 comes once, from egressd's main PID (NotifyAccess=main), only
#     when the admin /ready answers 200 and the TLS listener accepts, and
#     nothing comes before it;
#   - a SIGHUP reload is RELOADING=1 with MONOTONIC_USEC (systemd's clock,
#     CLOCK_MONOTONIC, in microseconds) and then READY=1;
#   - SIGTERM sends STOPPING=1 at once, while /ready already says 503 and
#     the process is still draining; nothing follows it; the exit is 0.
#
# Both address forms: "@name" (the abstract namespace; the datagram
# must go to exactly that name, with no trailing NUL) and a file path. A
# NOTIFY_SOCKET that leads nowhere does not keep egressd from serving.
. "$(dirname "$0")/lib.sh"
need python3

GW=$(free_port)
A=$(free_port)
DNS=$(free_port)
cd "$T" || bail "no temp dir"
LOG="$T/egressd.log"
cat >allow.yaml <<EOF
allow:
  - hosts: [a.test]
EOF
cat >egressd.yaml <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: 443}
workers: 2
dns: {servers: ["127.0.0.1:$DNS"]}
policy: {files: [allow.yaml], watch: false}
log: {path: egressd.log}
admin: {address: "127.0.0.1:$A"}
drain: {delay: 3s, timeout: 1s}
EOF
"$EGRESSD" -t -c "$T/egressd.yaml" >/dev/null 2>&1 || bail "the test configuration does not load"

# listen ADDRESS OUT: the stand-in for systemd's notify socket. ADDRESS is
# NOTIFY_SOCKET's value. Each datagram becomes one JSON line in OUT, with the
# sender's PID (SO_PASSCRED, as systemd reads it), the time it arrived
# (CLOCK_MONOTONIC), and for READY=1 and STOPPING=1 what /ready answered
# and whether the listener accepted a connection right then.
listen() {
	python3 - "$1" "$2" "$A" "$GW" <<'EOF' &
import http.client, json, socket, struct, sys, time
addr, out, admin, gw = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
f = open(out, "a", buffering=1)

def ready():
    try:
        c = http.client.HTTPConnection("127.0.0.1", admin, timeout=3)
        c.request("GET", "/ready")
        return c.getresponse().status
    except OSError as e:
        return str(e)

def accepts():
    try:
        socket.create_connection(("127.0.0.1", gw), 1).close()
        return True
    except OSError:
        return False

f.write(json.dumps({"listening": True}) + "\n")
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    t = time.monotonic()
    pid = None
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]
    line = {"msg": msg.decode("utf-8", "replace"), "pid": pid, "t": t}
    states = line["msg"].split("\n")
    if "READY=1" in states or "STOPPING=1" in states:
        line["ready"] = ready()
        line["accepts"] = accepts()
    f.write(json.dumps(line) + "\n")
EOF
	LISTEN_PID=$!
	PIDS="$PIDS $LISTEN_PID"
	wait_for "$2" listening 10 || bail "the notify socket stand-in did not start"
}

# check OUT EXPR DESCRIPTION: EXPR (Python) over m, the list of datagrams
# in OUT, each {"msg", "pid", "t", ...}; pid is egressd's PID.
check() {
	python3 - "$1" "$EGRESSD_PID" "$2" <<'EOF'
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])]
m = [x for x in m if "msg" in x]
pid = int(sys.argv[2])
try:
    sys.exit(0 if eval(sys.argv[3]) else 1)
except (IndexError, KeyError, ValueError, TypeError):
    sys.exit(1)
EOF
	ok $? "$3" || sed 's/^/#   /' "$1"
}

# wait_msgs OUT N: until OUT holds N datagrams (at most 10 s).
wait_msgs() {
	i=0
	while [ $i -lt 200 ]; do
		[ "$(grep -c '"msg"' "$1")" -ge "$2" ] && return 0
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}

# ---- the abstract namespace: start, reload, drain --------------------------
NOTIFY_SOCKET="@egressd-test-$$-$GW"
OUT="$T/abstract.jsonl"
listen "$NOTIFY_SOCKET" "$OUT"
export NOTIFY_SOCKET
start_egressd "$T/egressd.yaml"
unset NOTIFY_SOCKET
wait_msgs "$OUT" 1
check "$OUT" 'len(m) == 1 and m[0]["msg"] == "READY=1"' \
    "@abstract: READY=1 arrives, and nothing before it"
check "$OUT" 'm[0]["pid"] == pid' \
    "READY=1 comes from egressd's main PID (NotifyAccess=main accepts it)"
check "$OUT" 'm[0]["ready"] == 200 and m[0]["accepts"]' \
    "when READY=1 arrives, /ready answers 200 and the TLS listener accepts"
grep -q '"listening on 127.0.0.1:'"$GW" "$LOG"
ok $? "the log has the listener's \"listening on\" notice"

kill -HUP "$EGRESSD_PID"
wait_msgs "$OUT" 3
check "$OUT" 'len(m) == 3 and m[1]["msg"].split("\n")[0] == "RELOADING=1" and m[2]["msg"] == "READY=1"' \
    "SIGHUP: RELOADING=1, then READY=1 once the policy is reloaded"
check "$OUT" '[l.split("=")[0] for l in m[1]["msg"].split("\n")] == ["RELOADING", "MONOTONIC_USEC"] and abs(int(m[1]["msg"].split("MONOTONIC_USEC=")[1]) / 1e6 - m[1]["t"]) < 5' \
    "RELOADING=1 carries MONOTONIC_USEC, CLOCK_MONOTONIC in microseconds"
grep -q '"msg":"reload (SIGHUP): policy generation' "$LOG"
ok $? "the reload the notifications framed happened"

kill -TERM "$EGRESSD_PID"
wait_msgs "$OUT" 4
check "$OUT" 'len(m) == 4 and m[3]["msg"] == "STOPPING=1" and m[3]["pid"] == pid' \
    "SIGTERM: STOPPING=1 from egressd's main PID"
check "$OUT" 'm[3]["ready"] == 503' \
    "STOPPING=1 comes at the start of the drain: egressd, still up, already answers 503 on /ready"
wait "$EGRESSD_PID"
ok $? "egressd exits 0 after the drain"
check "$OUT" 'len(m) == 4' "nothing is sent after STOPPING=1"

# ---- a file system path: start and stop ------------------------------------
NOTIFY_SOCKET="$T/notify.sock"
OUT="$T/path.jsonl"
listen "$NOTIFY_SOCKET" "$OUT"
export NOTIFY_SOCKET
start_egressd "$T/egressd.yaml"
unset NOTIFY_SOCKET
wait_msgs "$OUT" 1
check "$OUT" 'len(m) == 1 and m[0]["msg"] == "READY=1" and m[0]["pid"] == pid and m[0]["ready"] == 200' \
    "path socket: READY=1 from egressd's PID, /ready 200 at that moment"
kill -TERM "$EGRESSD_PID"
wait_msgs "$OUT" 2
check "$OUT" 'len(m) == 2 and m[1]["msg"] == "STOPPING=1" and m[1]["ready"] == 503' \
    "path socket: STOPPING=1 on SIGTERM, /ready 503"
wait "$EGRESSD_PID"
ok $? "egressd exits 0"

# ---- a notify socket nobody listens on -------------------------------------
NOTIFY_SOCKET="$T/nobody.sock"
export NOTIFY_SOCKET
start_egressd "$T/egressd.yaml"
unset NOTIFY_SOCKET
python3 - "$A" <<'EOF'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
c.request("GET", "/ready")
sys.exit(0 if c.getresponse().status == 200 else 1)
EOF
ok $? "NOTIFY_SOCKET naming no socket: egressd starts and is ready all the same"
kill -TERM "$EGRESSD_PID"
wait "$EGRESSD_PID"
ok $? "and exits 0 on SIGTERM"

finish
