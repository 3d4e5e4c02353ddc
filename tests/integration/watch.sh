#!/bin/sh
# The file watcher sees the ways policy files really change:
#  - a Kubernetes ConfigMap volume update, reproduced step by step as the
#    kubelet does it (new timestamped directory, "..data_tmp" symlink
#    renamed over "..data", old directory removed);
#  - an in-place edit of a policy file named through a symlink whose
#    target lives in another directory;
#  - a file that disappears (the reload fails, the policy stays) and
#    comes back;
#  - other files written beside the policy do not reload it.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3

make_pki one.test two.test three.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
start_dns "$DNS_PORT" one.test=127.0.0.2 two.test=127.0.0.3 three.test=127.0.0.4
start_tls_www "127.0.0.2:$UP" one.test
start_tls_www "127.0.0.3:$UP" two.test
start_tls_www "127.0.0.4:$UP" three.test

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

finish
