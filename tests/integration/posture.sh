#!/bin/bash
# egressctl posture (docs/posture.md): every way around the gateway in a
# cluster's manifests. A crafted `kubectl get -A -o yaml` dump with each
# bypass and the near misses, the mesh config in its two homes, Istio's own
# samples and task manifests, and the project's deploy/ (rendered with
# kubectl kustomize, as it is applied): exact findings and exit statuses.
. "$(dirname "$0")/lib.sh"
: "${EGRESSCTL:=$top_builddir/egressctl}"

FIX="$top_srcdir/tests/fixtures/posture"
IFIX="$top_srcdir/tests/fixtures/istio"
[ -x "$EGRESSCTL" ] || bail "no egressctl at $EGRESSCTL"
[ -f "$FIX/bypasses.yaml" ] || bail "no $FIX/bypasses.yaml"

# run [ARGS...]: egressctl posture from $FIX (findings name files relative
# to it); stdout in $T/out, stderr in $T/err, the exit status in $rc.
run() {
	(cd "$FIX" && "$EGRESSCTL" posture "$@") > "$T/out" 2> "$T/err"
	rc=$?
}

# same FILE DESC: $T/out is exactly FILE.
same() {
	diff -u "$1" "$T/out" > "$T/diff"
	ok $? "$2" || { cat "$T/diff" | sed 's/^/# /'; sed 's/^/# stderr: /' "$T/err"; }
}

# --- every bypass, each once, at its line ---------------------------------
run bypasses.yaml
[ $rc -eq 1 ]
ok $? "bypasses.yaml: exit 1 (findings)"
same "$FIX/bypasses.out" "bypasses.yaml: the exact findings"
[ ! -s "$T/err" ]
ok $? "bypasses.yaml: nothing on stderr" || sed 's/^/# /' "$T/err"
cp "$T/out" "$T/bypasses.txt"

run mesh.yaml
[ $rc -eq 1 ]
ok $? "mesh.yaml: exit 1"
same "$FIX/mesh.out" "mesh.yaml: IstioOperator and ConfigMap without a mode; REGISTRY_ONLY and egressProxy to the gateway pass"

# All ten codes between the two, spelled as the contract spells them.
codes=$(cat "$T/bypasses.txt" "$T/out" | awk -F': ' '{print $3}' | sort -u | tr '\n' ' ')
[ "$codes" = "allow_any exclude_annotation external_name_service host_network injection_disabled networkpolicy_open_egress no_egress_networkpolicy peer_authentication_permissive service_entry_bypass uid_1337 " ]
ok $? "all ten codes are found: $codes"

# Near misses: none of these objects is named in a finding.
for obj in "Deployment egress/egressd" "NetworkPolicy egress/egressd" \
    "Pod team-a/debug" "NetworkPolicy team-a/cluster-only" \
    "NetworkPolicy team-a/only-through-egressd" "Service team-a/shared-db" \
    "ServiceEntry egress/pypi" "ServiceEntry team-a/in-mesh" \
    "ServiceEntry egress/gateway-only" "Sidecar team-c/default" \
    "Sidecar team-a/default" "PeerAuthentication team-a/strict" \
    "Namespace empty/empty" "Namespace team-a/team-a" "Namespace egress/egress" \
    "ReplicaSet team-a/web-5d4f" "Pod team-a/web-5d4f-x2x9q" \
    "Deployment team-b/opted-in"; do
	! grep -qF ": $obj: " "$T/bypasses.txt"
	ok $? "near miss: no finding on $obj"
done
grep -c "uid_1337" "$T/bypasses.txt" | grep -qx 1
ok $? "uid 1337: the app container inheriting the pod's UID, not its other container, not istio-proxy"

# --- JSON: the same findings, the contract's keys -------------------------
run --format json bypasses.yaml
[ $rc -eq 1 ]
ok $? "--format json: exit 1"
python3 - "$T/out" "$T/bypasses.txt" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read().splitlines()
assert isinstance(items, list) and len(items) == len(text), (len(items), len(text))
keys = {"code", "severity", "kind", "namespace", "name", "file", "line", "message", "fix"}
for o, t in zip(items, text):
    assert set(o) == keys, o
    assert o["severity"] in ("high", "medium", "low")
    want = "%s:%d: %s: %s: %s %s/%s: %s (fix: %s)" % (o["file"], o["line"], o["severity"],
        o["code"], o["kind"], o["namespace"], o["name"], o["message"], o["fix"])
    assert want == t, (want, t)
PY
ok $? "--format json: a list of objects with code, severity, kind, namespace, name, file, line, message, fix; one per text line"
printf '' > "$T/empty.yaml"
"$EGRESSCTL" posture --format json "$T/empty.yaml" > "$T/out" 2>&1
rc=$?
[ $rc -eq 0 ] && [ "$(cat "$T/out")" = "[]" ]
ok $? "--format json with nothing found: [] and exit 0"

# --- standard input and directories ----------------------------------------
(cd "$FIX" && "$EGRESSCTL" posture - < bypasses.yaml) > "$T/out" 2>&1
rc=$?
sed 's/^bypasses\.yaml:/-:/' "$FIX/bypasses.out" > "$T/stdin.want"
[ $rc -eq 1 ]
ok $? "-: standard input, exit 1"
same "$T/stdin.want" "-: the same findings, labelled -"

mkdir -p "$T/dir/sub" "$T/dir/.hidden"
cp "$FIX/mesh.yaml" "$T/dir/a.yaml"
cp "$FIX/bypasses.yaml" "$T/dir/sub/b.yml"
cp "$FIX/broken.yaml" "$T/dir/.hidden/c.yaml"
cp "$FIX/broken.yaml" "$T/dir/notes.txt"
(cd "$T" && "$EGRESSCTL" posture dir) > "$T/out" 2> "$T/err"
rc=$?
{ sed 's/^mesh\.yaml:/dir\/a.yaml:/' "$FIX/mesh.out"
  sed 's/^bypasses\.yaml:/dir\/sub\/b.yml:/' "$FIX/bypasses.out"; } > "$T/dir.want"
[ $rc -eq 1 ]
ok $? "a directory: exit 1"
same "$T/dir.want" "a directory: its YAML files and subdirectories in name order; dot files and other files skipped"

# --- unusable input: exit 2 and where -------------------------------------
run broken.yaml
[ $rc -eq 2 ] && [ ! -s "$T/out" ]
ok $? "broken.yaml: exit 2, no findings"
cat > "$T/broken.want" <<'OUT'
broken.yaml:8:20: hostNetwork must be true or false
broken.yaml:20:1: syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 2)
broken.yaml:28:7: ipBlock.cidr 'internet' is not a CIDR
egressctl posture: the input is unusable (3 errors)
OUT
diff -u "$T/broken.want" "$T/err" > "$T/diff"
ok $? "broken.yaml: every problem as file:line:column, a mesh config's at its line in the file" || sed 's/^/# /' "$T/diff"
run missing.yaml
[ $rc -eq 2 ] && grep -qx "missing.yaml: cannot open: No such file or directory" "$T/err"
ok $? "a missing file: exit 2, said"

# --- usage -------------------------------------------------------------------
run
[ $rc -eq 2 ]
ok $? "no FILE: exit 2"
run --format xml bypasses.yaml
[ $rc -eq 2 ] && grep -qx "egressctl posture: --format 'xml': give text or json" "$T/err"
ok $? "--format xml: exit 2, said"
run --gateway egressd bypasses.yaml
[ $rc -eq 2 ] && grep -qF "give NAMESPACE/NAME" "$T/err"
ok $? "--gateway without a namespace: exit 2, said"
run --help
[ $rc -eq 0 ] && grep -qF "egressctl posture [--format text|json] [--gateway NAMESPACE/NAME]" "$T/out"
ok $? "--help: exit 0, the synopsis"

# --- Istio's own samples and tasks -------------------------------------------
run istio/github.yaml
cat > "$T/want" <<'OUT'
istio/github.yaml:15: high: service_entry_bypass: ServiceEntry default/github-https: no VirtualService routes github.com from mesh to the gateway's Service (egressd.egress.svc): sidecars connect there directly (fix: add a VirtualService whose mesh routes send these hosts to the gateway's Service, or export the ServiceEntry to the gateway's namespace only)
istio/github.yaml:30: high: service_entry_bypass: ServiceEntry default/github-tcp: no VirtualService routes dummy.github.com from mesh to the gateway's Service (egressd.egress.svc): sidecars connect there directly (fix: add a VirtualService whose mesh routes send these hosts to the gateway's Service, or export the ServiceEntry to the gateway's namespace only)
OUT
[ $rc -eq 1 ]
ok $? "samples/external/github.yaml: exit 1"
same "$T/want" "samples/external/github.yaml: both ServiceEntries let sidecars out directly"

run istio/curl.yaml
cat > "$T/want" <<'OUT'
istio/curl.yaml:38: medium: no_egress_networkpolicy: Namespace default/default: no Egress NetworkPolicy selects Deployment curl: its pods may connect anywhere the network lets them (fix: add a NetworkPolicy with policyTypes [Egress] and podSelector {} that admits only the gateway and the cluster DNS)
OUT
[ $rc -eq 1 ]
ok $? "samples/curl/curl.yaml: exit 1"
same "$T/want" "samples/curl/curl.yaml: no Egress NetworkPolicy in its namespace"
grep -qx "istio/curl.yaml:38:1: notice: namespace default is not in the input: whether its workloads get a sidecar is not checked" "$T/err"
ok $? "samples/curl/curl.yaml: injection not judged without the Namespace, said" || sed 's/^/# /' "$T/err"

# The egress gateway task: its VirtualService routes edition.cnn.com from
# mesh to istio-egressgateway, so with that gateway nothing is found.
"$EGRESSCTL" posture --gateway istio-system/istio-egressgateway \
    "$IFIX/egress-gateway-passthrough.yaml" > "$T/out" 2>&1
rc=$?
[ $rc -eq 0 ] && [ ! -s "$T/out" ]
ok $? "egress gateway task, --gateway istio-system/istio-egressgateway: routed, exit 0"
"$EGRESSCTL" posture "$IFIX/egress-gateway-passthrough.yaml" > "$T/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -qF ": high: service_entry_bypass: ServiceEntry default/cnn: no VirtualService routes edition.cnn.com from mesh to the gateway's Service (egressd.egress.svc)" "$T/out"
ok $? "egress gateway task, default gateway egress/egressd: not routed to it, exit 1"

# sidecar.proto's exclusion example ("~ns/host", "~/host") is read too.
"$EGRESSCTL" posture --format json "$IFIX/sidecar-exclusion.yaml" > "$T/out" 2> "$T/err"
rc=$?
[ $rc -eq 1 ] && [ ! -s "$T/err" ] && [ "$(grep -c '"code":"service_entry_bypass"' "$T/out")" = 2 ]
ok $? "sidecar.proto's exclusion example loads (2 ServiceEntries without a route)"

# --- the project's own deploy/ -----------------------------------------------
D="$top_srcdir/deploy/kubernetes"
"$EGRESSCTL" posture "$D/istio/external.yaml" "$D/istio/mesh.yaml" \
    "$D/workload/istio/sidecar-egress-proxy.yaml" \
    "$D/workload/istio/sidecar-registry-only.yaml" > "$T/out" 2>&1
rc=$?
[ $rc -eq 0 ] && [ ! -s "$T/out" ]
ok $? "deploy/: the mesh routes, mTLS and both client Sidecars: no finding" || sed 's/^/# /' "$T/out"
# kustomize: kubectl's (v4 or later), else tests/deploy/render.py, the
# offline rendering tests/deploy/check.sh holds to kubectl's output.
kv=$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\)\..*/\1/p')
if [ "${kv:-0}" -ge 4 ] && [ "${KUBECTL:-kubectl}" != none ]; then
	kustomize() { kubectl kustomize "$1"; }
else
	kustomize() { python3 "$top_srcdir/tests/deploy/render.py" "$1"; }
fi
for k in base istio istio-without-cni; do
	kustomize "$D/$k" > "$T/$k.yaml" 2> "$T/err"
	"$EGRESSCTL" posture "$T/$k.yaml" > "$T/out" 2>&1
	rc=$?
	[ $rc -eq 0 ] && [ ! -s "$T/out" ]
	ok $? "deploy/kubernetes/$k (rendered): no finding" || sed 's/^/# /' "$T/out" "$T/err"
done
# A client namespace set up as docs/deploy.md says, with one workload.
for k in base istio; do
	mkdir -p "$T/apps-$k"
	# kustomize takes relative paths only.
	rel=$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' \
	    "$D/workload/$k" "$T/apps-$k")
	cat > "$T/apps-$k/kustomization.yaml" <<EOF
namespace: apps
resources:
  - $rel
  - app.yaml
EOF
	cat > "$T/apps-$k/app.yaml" <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: apps
  labels: {istio-injection: enabled, egressd/client: "true"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers: [{name: app, image: app}]
EOF
	kustomize "$T/apps-$k" > "$T/apps-$k.yaml" 2> "$T/err"
	krc=$?
	"$EGRESSCTL" posture "$T/istio.yaml" "$T/apps-$k.yaml" > "$T/out" 2>&1
	rc=$?
	[ $krc -eq 0 ] && grep -q "egress-only-through-egressd" "$T/apps-$k.yaml" &&
	    [ $rc -eq 0 ] && [ ! -s "$T/out" ]
	ok $? "deploy/kubernetes/workload/$k in a client namespace: no finding" ||
	    sed 's/^/# /' "$T/out" "$T/err"
done

finish
