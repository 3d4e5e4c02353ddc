#!/bin/sh
# The file watcher sees the ways policy files really change:
#  - a Kubernetes ConfigMap volume update, reproduced step by step as the
#    kubelet does it (new timestamped directory, "..data_tmp" symlink
#    renamed over "..data", old directory removed);
#  - an in-place edit of a policy file named through a symlink whose
#    target lives in another directory;
#  - a file that disappears (the reload fails, the policy stays) and
#    comes back;
#  - other files written beside the policy do not reload it;
#  - a new file is not read while its writer still holds it open, however
#    long it pauses (half a rule without its "sources:" admits everyone);
#    a new symlink, complete at once, is read straight away.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3

make_pki one.test two.test three.test pay.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
start_dns "$DNS_PORT" one.test=127.0.0.2 two.test=127.0.0.3 three.test=127.0.0.4 \
    pay.test=127.0.0.5
start_tls_www "127.0.0.2:$UP" one.test
start_tls_www "127.0.0.3:$UP" two.test
start_tls_www "127.0.0.4:$UP" three.test
start_tls_www "127.0.0.5:$UP" pay.test

policy() {
	printf 'allow:\n  - hosts: [%s]\n    ports: [%s]\n' "$1" "$UP"
}

# The ConfigMap volume as the kubelet lays it out.
CM="$T/configmap"
mkdir -p "$CM/..2026_11_27_10_00_00.000000001"
policy one.test > "$CM/..2026_11_27_10_00_00.000000001/allow.yaml"
ln -s ..2026_11_27_10_00_00.000000001 "$CM/..data"
ln -s ..data/allow.yaml "$CM/allow.yaml"

# A file named through a symlink to another directory.
mkdir "$T/elsewhere"
policy '"placeholder.test"' > "$T/elsewhere/extra.yaml"
ln -s "$T/elsewhere/extra.yaml" "$T/extra.yaml"

LOG="$T/egressd.log"
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
workers: 1
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["127.0.0.0/8"]
policy: {files: [configmap, extra.yaml]}
log: {path: egressd.log}
EOF
start_egressd "$T/egressd.yaml"

admitted() {
	curl -sS --max-time 10 --cacert "$T/pki/ca.pem" \
	    --connect-to "$1:$UP:127.0.0.1:$GW" "https://$1:$UP/" 2>/dev/null |
	    grep -q s_server
}
# wait_reload N: the Nth reload notice (ok or failed) is in the log.
wait_reload() {
	n=0
	while [ "$(grep -c '"msg":"reload (files changed)' "$LOG")" -lt "$1" ] &&
	    [ $n -lt 100 ]; do
		sleep 0.05
		n=$((n + 1))
	done
	[ "$(grep -c '"msg":"reload (files changed)' "$LOG")" -ge "$1" ]
}

admitted one.test
ok $? "one.test is admitted by the ConfigMap's first version"
admitted two.test
[ $? -ne 0 ]
ok $? "two.test is not"

# kubelet's atomic update.
NEW="..2026_11_27_10_05_00.000000002"
mkdir "$CM/$NEW"
policy '"one.test", "two.test"' > "$CM/$NEW/allow.yaml"
ln -s "$NEW" "$CM/..data_tmp"
mv -T "$CM/..data_tmp" "$CM/..data"
rm -rf "$CM/..2026_11_27_10_00_00.000000001"
wait_reload 1
ok $? "the ..data symlink swap triggers a reload"
grep -q '"msg":"reload (files changed): policy generation 1, 3 rules"' "$LOG"
ok $? "which loads generation 1 with the new file's rules"
admitted two.test
ok $? "two.test is admitted after the ConfigMap update"

# In-place edit of a symlinked file's target in another directory.
policy three.test > "$T/elsewhere/extra.yaml"
wait_reload 2
ok $? "an in-place edit of a symlink target elsewhere triggers a reload"
admitted three.test
ok $? "three.test is admitted after it"

# The file goes away: the reload fails and the running policy stays.
mv "$T/elsewhere/extra.yaml" "$T/elsewhere/extra.yaml.bak"
wait_reload 3
ok $? "a vanished file triggers a reload"
grep -q '"msg":"reload (files changed) failed with 1 error(s); keeping policy generation 2' "$LOG"
ok $? "which fails and keeps generation 2"
admitted three.test && admitted two.test
ok $? "the running policy still admits what it did"

# ...and comes back.
mv "$T/elsewhere/extra.yaml.bak" "$T/elsewhere/extra.yaml"
wait_reload 4
ok $? "the file coming back triggers a reload"
grep -q '"msg":"reload (files changed): policy generation 3' "$LOG"
ok $? "which succeeds with generation 3"

# Files that are not policy, written next to it, do not reload anything:
# wait three debounce periods, then prove the watcher is still awake.
n=$(grep -c '"msg":"reload (files changed)' "$LOG")
echo "notes" > "$CM/notes.txt"
echo "more" >> "$CM/notes.txt"
sleep 0.6
[ "$(grep -c '"msg":"reload (files changed)' "$LOG")" -eq "$n" ]
ok $? "writing notes.txt beside the policy does not reload"
touch "$T/elsewhere/extra.yaml"
wait_reload $((n + 1))
ok $? "while a policy file touched next does"

# A new policy file written in two parts, kept open between them for a
# second (five debounce periods), as scp or kubectl cp may: the part
# without "sources:" would admit pay.test from anywhere if it were read.
refused_pay() {
	openssl s_client -connect "127.0.0.1:$GW" -servername pay.test \
	    -CAfile "$T/pki/ca.pem" </dev/null >"$T/pay-$1.out" 2>&1
	grep -q 'alert access denied' "$T/pay-$1.out"
}
wait_for_file() {
	i=0
	while [ ! -e "$1" ] && [ $i -lt 200 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	[ -e "$1" ]
}
mkdir "$T/sync"
reloads=$(grep -c '"msg":"reload (files changed)' "$LOG")
python3 - "$CM/b-pay.yaml" "$T/sync" "$UP" <<'EOF' &
import os, sys, time
path, sync, port = sys.argv[1:]
with open(path, "w") as f:
    f.write('allow:\n  - hosts: ["pay.test"]\n    ports: [%s]\n' % port)
    f.flush()
    open(os.path.join(sync, "written"), "w").close()
    deadline = time.time() + 20
    while not os.path.exists(os.path.join(sync, "go")) and time.time() < deadline:
        time.sleep(0.02)
    f.write('    sources: ["10.8.0.0/16"]\n')
EOF
WRITER=$!
PIDS="$PIDS $WRITER"
wait_for_file "$T/sync/written" || bail "the writer did not start"
sleep 1
refused_pay partial
ok $? "pay.test is refused (TLS alert) while b-pay.yaml is half written and open" ||
    diag "$(grep -E "alert|subject=|errno" "$T/pay-partial.out")"
wait_log "$LOG" 1 event=deny reason=not_allowed name=pay.test
ok $? "with a not_allowed line"
[ "$(logq "$LOG" --count event=allow name=pay.test)" = 0 ]
ok $? "and no allow for pay.test"
[ "$(grep -c '"msg":"reload (files changed)' "$LOG")" -eq "$reloads" ]
ok $? "the open, half-written file has not been reloaded" ||
    diag "$(grep '"msg":"reload' "$LOG")"
touch "$T/sync/go"
wait "$WRITER"
wait_reload $((reloads + 1))
ok $? "closing the finished file triggers the reload"
grep -q '"msg":"reload (files changed): policy generation 5, 4 rules"' "$LOG"
ok $? "which loads b-pay.yaml's rule (generation 5, 4 rules)" ||
    diag "$(grep '"msg":"reload' "$LOG")"
refused_pay full
ok $? "with its sources: pay.test is still refused from 127.0.0.1"
[ "$(grep -c '"msg":"reload (files changed)' "$LOG")" -eq $((reloads + 1)) ]
ok $? "one reload for the whole file"

# A symlink is complete when created (a new ConfigMap key is one).
policy '"placeholder2.test"' > "$T/sync/c.yaml"
ln -s "$T/sync/c.yaml" "$CM/c-link.yaml"
wait_reload $((reloads + 2))
ok $? "a new symlink to a policy file triggers a reload"
grep -q '"msg":"reload (files changed): policy generation 6, 5 rules"' "$LOG"
ok $? "which loads its rule"

finish
