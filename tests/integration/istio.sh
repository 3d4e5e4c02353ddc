#!/bin/bash
# Real Istio manifests (tests/fixtures/istio/, written from Istio's published
# tasks and samples) read by the daemon's own loader: every fixture passes
# egressd -t, egressctl explain admits and refuses the names EXPECT lists,
# and broken manifests fail with the exact file:line:column.
. "$(dirname "$0")/lib.sh"
: "${EGRESSCTL:=$top_builddir/egressctl}"

FIX="$top_srcdir/tests/fixtures/istio"
[ -x "$EGRESSD" ] || bail "no egressd at $EGRESSD"
[ -x "$EGRESSCTL" ] || bail "no egressctl at $EGRESSCTL"
[ -f "$FIX/EXPECT" ] || bail "no $FIX/EXPECT"

# mkconf OUT POLICY-FILE: a daemon configuration naming one policy file, with
# the namespace map the fixtures' EXPECT lines assume.
mkconf() {
	cat > "$1" <<EOF
listeners: [{name: tls, address: "127.0.0.1:18443", protocol: tls}]
dns: {servers: ["127.0.0.1:5353"]}
policy: {files: ["$2"]}
log: {path: "-"}
namespaces:
  team-a: ["127.0.1.0/24"]
  team-b: ["127.0.2.0/24"]
  istio-system: ["127.0.3.0/24"]
  prod-us1: ["127.0.4.0/24"]
  prod-us2: ["127.0.5.0/24"]
  prod-apis: ["127.0.6.0/24"]
EOF
}

# Every fixture loads, and so does the whole directory at once.
for f in "$FIX"/*.yaml; do
	b=$(basename "$f")
	mkconf "$T/$b.conf" "$f"
	out=$("$EGRESSD" -t -c "$T/$b.conf" 2>&1)
	rc=$?
	[ $rc -eq 0 ] && echo "$out" | tail -n 1 | grep -qx "configuration OK"
	ok $? "egressd -t: $b is OK"
	[ $rc -eq 0 ] || diag "$out"
done

# Istio's newer Sidecar host forms (sidecar.proto's exclusion example) pass
# egressctl check as they pass egressd -t.
out=$("$EGRESSCTL" check "$FIX/sidecar-exclusion.yaml" 2>&1)
ok $? "egressctl check: sidecar-exclusion.yaml (~ns/ and ~/ exclusions) is valid"
diag "$out"

# The decisions each fixture must make.
n=0
while read -r file name port want rest; do
	case "$file" in ''|'#'*) continue ;; esac
	n=$((n + 1))
	conf="$T/$file.conf"
	[ -f "$conf" ] || mkconf "$conf" "$FIX/$file"
	# shellcheck disable=SC2086
	out=$("$EGRESSCTL" explain -c "$conf" --port "$port" $rest "$name" 2>&1)
	rc=$?
	case "$want" in
	allow) [ $rc -eq 0 ] ;;
	deny) [ $rc -eq 1 ] ;;
	*) false ;;
	esac
	ok $? "$file: $name:$port ${rest:+($rest) }$want (exit $rc)"
	case "$want:$rc" in allow:0|deny:1) ;; *) diag "$out" ;; esac
done < "$FIX/EXPECT"
[ $n -gt 0 ]
ok $? "EXPECT has checks ($n)"

# explain names the deciding Istio rule and where it stands.
mkconf "$T/pt.conf" "$FIX/egress-gateway-passthrough.yaml"
out=$("$EGRESSCTL" explain -c "$T/pt.conf" --port 443 edition.cnn.com 2>&1)
echo "$out" | grep -q "egress-gateway-passthrough.yaml:9"
ok $? "explain cites the ServiceEntry host's file:line"
echo "$out" | grep -q "cnn"
ok $? "explain cites the ServiceEntry's name"
diag "$out"

# Broken manifests: exit 1 and the exact message at the exact place.
SE_HEAD='apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: broken
spec:'
broken() {
	# broken NAME WANT-LINE YAML...
	local name=$1 want=$2
	shift 2
	printf '%s\n' "$@" > "$T/$name.yaml"
	mkconf "$T/$name.conf" "$T/$name.yaml"
	out=$("$EGRESSD" -t -c "$T/$name.conf" 2>&1)
	rc=$?
	[ $rc -eq 1 ]
	ok $? "$name: egressd -t exits 1"
	echo "$out" | grep -qxF -- "$T/$name.yaml:$want"
	ok $? "$name: reports $want"
	echo "$out" | grep -q "configuration OK"
	[ $? -ne 0 ]
	ok $? "$name: not OK"
	diag "$out"
}

broken tls-mode "9:13: unknown tls.mode 'STRICT' (expected DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL)" \
'apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: broken
spec:
  host: edition.cnn.com
  trafficPolicy:
    tls:
      mode: STRICT'

broken resolution "8:15: unknown resolution 'DNS_RR' (expected NONE, STATIC, DNS, DNS_ROUND_ROBIN or DYNAMIC_DNS)" \
"$SE_HEAD" '  hosts:' '  - a.example.com' '  resolution: DNS_RR'

broken partial-wildcard "7:5: bad host 'foo*.com': a wildcard must be a whole leftmost label, as in *.example.com" \
"$SE_HEAD" '  hosts:' '  - "foo*.com"'

broken ip-host "7:5: bad host '192.0.2.10': IP addresses are not host names; allow the name clients connect to" \
"$SE_HEAD" '  hosts:' '  - 192.0.2.10'

broken star-host "7:5: * is not a valid ServiceEntry host (a ServiceEntry names the hosts it admits)" \
"$SE_HEAD" '  hosts:' '  - "*"'

broken sidecar-host "9:7: invalid namespace '~~team-b' in host '~~team-b/*' (expected *, ., a namespace name, or one of these after ~)" \
'apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: team-a
spec:
  egress:
  - hosts:
    - "~~team-b/*"'

# Kubernetes keeps one object per kind, namespace and name, and Istio one
# Sidecar without workloadSelector per namespace: reading both of two
# would admit the union of what each says.
broken same-name "13:9: ServiceEntry team-a/partner is defined twice (first at $T/same-name.yaml:4:9); Kubernetes keeps only the one applied last, so keep one of them" \
'apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: partner
  namespace: team-a
spec:
  hosts: [old-partner.example.com]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  namespace: team-a
  name: partner
spec:
  hosts: [new-partner.example.com]'

broken two-sidecars "12:9: Sidecar legacy: namespace team-a already has a Sidecar without workloadSelector (default at $T/two-sidecars.yaml:4:9); Istio uses only one per namespace and which one is undefined, so merge them" \
'apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: team-a
spec:
  egress: [{hosts: ["./api.example.com"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: legacy
  namespace: team-a
spec:
  egress: [{hosts: ["*/*"]}]'

# What a file restricts is never skipped (the reviewer's reproductions): a
# mode key inside a resource, a Sidecar of a version egressd does not know,
# "*" as an SNI host, a DestinationRule in a report-mode file.
broken mode-in-resource "1:1: mode is not read in a Kubernetes resource (a document with kind); to set this file's mode, write 'mode: report' as a document of its own, followed by ---" \
'mode: report
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: trial
spec:
  hosts:
  - trial.example.com
  ports:
  - number: 443
    name: tls
    protocol: TLS
  resolution: DNS'

broken sidecar-version "1:13: kind Sidecar of apiVersion networking.istio.io/v1beta2 is not known to egressd, and skipping it would drop what it restricts; use networking.istio.io/v1, v1beta1 or v1alpha3" \
'apiVersion: networking.istio.io/v1beta2
kind: Sidecar
metadata:
  name: default
  namespace: team-a
spec:
  egress:
  - hosts:
    - "./*"'

broken sni-star "12:18: * is not a valid SNI host at egressd (a TLS match names the hosts it admits; list them)" \
'apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: any
spec:
  hosts:
  - "*"
  gateways:
  - istio-egressgateway
  tls:
  - match:
    - sniHosts: ["*"]
    route:
    - destination:
        host: proxy.corp.example'

broken report-dr "9:9: DestinationRule origin acts on every file's rules and cannot be trialled in report mode (mode: report at line 1); put it in a file without mode: report, or run the daemon with mode: report to trial the whole policy" \
'mode: report
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: origin
spec:
  trafficPolicy: {tls: {mode: SIMPLE}}
  host: api.example.com'

# A tls route to another destination: a warning on check's warning channel.
printf '%s\n' 'apiVersion: networking.istio.io/v1' 'kind: VirtualService' \
    'metadata: {name: via-proxy}' 'spec:' '  hosts: [a.example.com]' \
    '  gateways: [istio-egressgateway]' '  tls:' \
    '  - match: [{sniHosts: [a.example.com]}]' \
    '    route: [{destination: {host: proxy.corp.example}}]' > "$T/via-proxy.yaml"
out=$("$EGRESSCTL" check "$T/via-proxy.yaml" 2>&1)
rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -qF "$T/via-proxy.yaml:9:34: warning: the route sends SNI host 'a.example.com' to destination 'proxy.corp.example'; egressd connects to the name the client asked for, not to the route's destination"
ok $? "egressctl check: a route to another destination loads, with a warning"
diag "$out"

finish
