#!/bin/sh
# tests/deploy/monitoring.sh: deploy/monitoring (alerting rules, PrometheusRule,
# PodMonitor, Grafana dashboard) is valid and names only what egressd exports.
#
#   (a) every file parses (YAML, JSON); rules.yaml and prometheusrule.yaml hold
#       identical groups; `promtool check rules` passes;
#   (b) every alert has a severity label and summary/description annotations,
#       and tests/deploy/monitoring_test.yaml has, for each alert, a case that
#       fires it and one where it must stay quiet; `promtool test rules` passes;
#   (c) every metric name in a rule, in a dashboard query (panels, variables,
#       annotations) is in the `# TYPE` lines of a real scrape of egressd
#       (started on loopback; histogram series by their _bucket/_sum/_count
#       names) and among the names gateway/metrics.c writes;
#   (d) the PodMonitor selects the Deployment's pod labels and scrapes ports
#       and the path the Deployment (base and Istio overlay) declares.
. "$(dirname "$0")/../integration/lib.sh"

need python3 promtool curl
python3 -c 'import yaml' 2>/dev/null || bail "python3 has no yaml module (Debian package python3-yaml)"
[ -x "$EGRESSD" ] || bail "no egressd binary at $EGRESSD (set EGRESSD)"

M="$top_srcdir/deploy/monitoring"
TESTFILE="$top_srcdir/tests/deploy/monitoring_test.yaml"

report() {
	while IFS= read -r line; do
		case "$line" in
		PASS\ *) ok 0 "${line#PASS }" ;;
		FAIL\ *) ok 1 "${line#FAIL }" ;;
		DIAG\ *) diag "${line#DIAG }" ;;
		*) diag "$line" ;;
		esac
	done
}

# ---- (a), (b): promtool -----------------------------------------------------
promtool check rules "$M/rules.yaml" >"$T/check.out" 2>&1
ok $? "promtool check rules deploy/monitoring/rules.yaml" || sed 's/^/# /' "$T/check.out"
# The PrometheusRule's spec, as a rules file, passes the same check.
python3 -c '
import sys, yaml
print(yaml.safe_dump(yaml.safe_load(open(sys.argv[1]))["spec"]))' "$M/prometheusrule.yaml" >"$T/spec.yaml"
promtool check rules "$T/spec.yaml" >"$T/check2.out" 2>&1
ok $? "promtool check rules on prometheusrule.yaml's spec" || sed 's/^/# /' "$T/check2.out"
# promtool resolves rule_files relative to the test file.
promtool test rules "$TESTFILE" >"$T/test.out" 2>&1
ok $? "promtool test rules tests/deploy/monitoring_test.yaml" || sed 's/^/# /' "$T/test.out"

# ---- (c): a real scrape -----------------------------------------------------
A=$(free_port)
P=$(free_port)
GW=$(free_port)
DNS_PORT=$(free_port)
cat >"$T/policy.yaml" <<POL
allow:
  - hosts: [one.test]
POL
cat >"$T/egressd.yaml" <<CFG
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: 443}
workers: 1
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [policy.yaml], watch: false}
log: {path: egressd.log}
admin: {address: "127.0.0.1:$A", prometheus_address: "127.0.0.1:$P"}
CFG
LOG="$T/egressd.log"
start_egressd "$T/egressd.yaml"
code=$(curl -s --max-time 5 -o "$T/metrics" -w '%{http_code}' "http://127.0.0.1:$P/stats/prometheus")
[ "$code" = 200 ] && grep -q '^# TYPE ' "$T/metrics"
ok $? "egressd on loopback answers /stats/prometheus with # TYPE lines (HTTP $code)" ||
	bail "no scrape to check names against"
grep -c '^# TYPE ' "$T/metrics" | sed 's/^/# metric families in the scrape: /'
grep -oh '"\(egressd\|process\)_[a-z0-9_]*"' "$top_srcdir"/gateway/metrics.c | tr -d '"' | sort -u >"$T/metrics_c"

python3 - "$M" "$TESTFILE" "$T/metrics" "$T/metrics_c" \
    "$top_srcdir/deploy/kubernetes/base/deployment.yaml" \
    "$top_srcdir/deploy/kubernetes/istio/deployment-patch.yaml" >"$T/report" 2>&1 <<'PY'
import json, re, sys, yaml
mdir, testfile, scrape, metrics_c, deployment, istio_patch = sys.argv[1:]
def check(cond, desc):
    print(("PASS " if cond else "FAIL ") + desc)
    return cond

# (a) parse
docs = {}
for f in ("rules.yaml", "prometheusrule.yaml", "podmonitor.yaml"):
    try:
        docs[f] = yaml.safe_load(open(f"{mdir}/{f}"))
        check(isinstance(docs[f], dict), f"{f} parses as YAML")
    except Exception as e:
        check(False, f"{f} parses as YAML ({e})")
try:
    dash = json.load(open(f"{mdir}/grafana-dashboard.json"))
    check(True, "grafana-dashboard.json parses as JSON")
except Exception as e:
    check(False, f"grafana-dashboard.json parses as JSON ({e})")
    dash = {"panels": []}
pr = docs.get("prometheusrule.yaml") or {}
check(pr.get("apiVersion") == "monitoring.coreos.com/v1" and pr.get("kind") == "PrometheusRule",
      "prometheusrule.yaml is a monitoring.coreos.com/v1 PrometheusRule")
pm = docs.get("podmonitor.yaml") or {}
check(pm.get("apiVersion") == "monitoring.coreos.com/v1" and pm.get("kind") == "PodMonitor",
      "podmonitor.yaml is a monitoring.coreos.com/v1 PodMonitor")
groups = (docs.get("rules.yaml") or {}).get("groups") or []
check(bool(groups) and groups == (pr.get("spec") or {}).get("groups"),
      "rules.yaml and prometheusrule.yaml hold identical groups")

# (b) alerts: labels, annotations, tests that fire and stay quiet
alerts = [r for g in groups for r in g["rules"] if "alert" in r]
for r in alerts:
    a = r["alert"]
    check(r.get("labels", {}).get("severity") in ("critical", "warning", "info"),
          f"{a}: severity label (critical/warning/info)")
    ann = r.get("annotations", {})
    check(bool(ann.get("summary")) and bool(ann.get("description")), f"{a}: summary and description annotations")
fires, quiet = set(), set()
for t in yaml.safe_load(open(testfile)).get("tests", []):
    for e in t.get("alert_rule_test", []):
        (fires if e.get("exp_alerts") else quiet).add(e["alertname"])
for r in alerts:
    a = r["alert"]
    check(a in fires, f"{a}: a unit test fires it")
    check(a in quiet, f"{a}: a unit test where it must not fire")
want = {"EgressdReloadFailing", "EgressdDenialBurst", "EgressdPrivateAddressAttempts",
        "EgressdLogWriteFailures", "EgressdAcceptPaused", "EgressdNotReady"}
check(want <= {r["alert"] for r in alerts}, "the rules alert on reload, denials, private_address, log writes, accept pauses, readiness")

# (c) metric names
exported = set()
for line in open(scrape):
    m = re.match(r"# TYPE (\S+) (\S+)", line)
    if m:
        name, kind = m.groups()
        exported.add(name)
        if kind in ("histogram", "summary"):
            exported |= {name + s for s in ("_bucket", "_sum", "_count")}
in_c = set(open(metrics_c).read().split())
FUNCS = {"abs","absent","absent_over_time","avg","avg_over_time","bottomk","ceil","changes","clamp","clamp_max",
 "clamp_min","count","count_over_time","count_values","day_of_month","day_of_week","delta","deriv","exp","floor",
 "group","histogram_quantile","holt_winters","hour","idelta","increase","irate","label_join","label_replace","ln",
 "log2","log10","max","max_over_time","min","min_over_time","minute","month","predict_linear","quantile",
 "quantile_over_time","rate","resets","round","scalar","sgn","sort","sort_desc","sqrt","stddev","stdvar","sum",
 "sum_over_time","time","timestamp","topk","vector","year","label_values","last_over_time","present_over_time"}
KEYWORDS = {"by","without","on","ignoring","group_left","group_right","and","or","unless","offset","bool","inf","nan"}
def names(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # strings
    e = re.sub(r"\{[^}]*\}", "", e)                          # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                         # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    e = re.sub(r"\$\w+", "", e)                              # Grafana variables
    e = re.sub(r"\boffset\s+\d+\w*", "", e)
    out = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        w = m.group(0)
        rest = e[m.end():].lstrip()
        if w in KEYWORDS or (w in FUNCS and rest.startswith("(")):
            continue
        if re.fullmatch(r"\d+\w*", w):
            continue
        out.add(w)
    # label_values(metric, label): the label is not a metric
    for m in re.finditer(r"label_values\(\s*[^,()]*?,\s*(\w+)\s*\)", re.sub(r"\{[^}]*\}", "", expr)):
        out.discard(m.group(1))
    # label_replace(v, "dst", "repl", "src", "regex") strings are stripped already
    return out
used = {}
for r in groups and [r for g in groups for r in g["rules"]]:
    for n in names(r["expr"]):
        used.setdefault(n, set()).add("rule " + r.get("alert", r.get("record", "?")))
exprs = 0
def walk(panels):
    global exprs
    for p in panels:
        if p.get("type") != "row":
            check(bool(p.get("targets")) and all(t.get("expr") for t in p["targets"]),
                  f"dashboard panel {p.get('title')!r} has queries")
        for t in p.get("targets", []):
            if t.get("expr"):
                exprs += 1
                for n in names(t["expr"]):
                    used.setdefault(n, set()).add("panel " + repr(p.get("title")))
        walk(p.get("panels", []))
walk(dash.get("panels", []))
for v in dash.get("templating", {}).get("list", []):
    q = v.get("query")
    q = q.get("query") if isinstance(q, dict) else q
    if v.get("type") == "query" and q:
        for n in names(q):
            used.setdefault(n, set()).add("variable " + v["name"])
for a in dash.get("annotations", {}).get("list", []):
    if a.get("expr"):
        for n in names(a["expr"]):
            used.setdefault(n, set()).add("annotation " + a.get("name", "?"))
ids = [p["id"] for p in dash.get("panels", [])]
check(len(ids) == len(set(ids)), "dashboard panel ids are unique")
titles = " ".join(p.get("title", "").lower() for p in dash.get("panels", []))
for w in ("denials by reason", "top denying rules", "reload", "dns", "connections", "bytes"):
    check(w in titles, f"dashboard has a panel on {w!r}")
top = [p for p in dash.get("panels", []) if "top denying" in p.get("title", "").lower()]
check(bool(top) and "egressctl denials" in top[0].get("description", "") and "egressd_rule_hits_total" in top[0]["targets"][0]["expr"],
      "the top-denials panel counts rule hits and points to `egressctl denials` for names")
print(f"DIAG {len(used)} metric names in {len(groups)} rule groups and {exprs} dashboard queries")
check(len(used) >= 20, "the name extraction found the metrics (sanity: at least 20)")
for n in sorted(used):
    where = ", ".join(sorted(used[n])[:3])
    check(n in exported, f"{n} is in the scrape's # TYPE lines ({where})")
    base = re.sub(r"_(bucket|sum|count)$", "", n)
    check(n in in_c or base in in_c, f"{n} is a name gateway/metrics.c writes")

# (d) PodMonitor against the Deployment
dep = yaml.safe_load(open(deployment))
tmpl = dep["spec"]["template"]
plabels = tmpl["metadata"]["labels"]
sel = pm.get("spec", {}).get("selector", {}).get("matchLabels", {})
check(bool(sel) and all(plabels.get(k) == v for k, v in sel.items()),
      f"PodMonitor selector {sel} matches the pod template labels")
ports = {p["name"]: p["containerPort"] for c in tmpl["spec"]["containers"] if c["name"] == "egressd" for p in c["ports"]}
for p in yaml.safe_load(open(istio_patch)):
    v = p.get("value")
    if isinstance(v, dict) and "containerPort" in v:
        ports[v["name"]] = v["containerPort"]
eps = pm.get("spec", {}).get("podMetricsEndpoints", [])
names_ = {e.get("port"): e for e in eps}
check(ports.get("http-envoy-prom") == 15090 and "http-envoy-prom" in names_,
      "PodMonitor scrapes the base Deployment's port http-envoy-prom (15090)")
check("egressd-metrics" in names_ and ports.get("egressd-metrics") == 16090,
      "PodMonitor scrapes the Istio overlay's port egressd-metrics (16090)")
path = tmpl["metadata"]["annotations"]["prometheus.io/path"]
check(all(e.get("path") == path for e in eps), f"every PodMonitor endpoint scrapes {path}")
check(all(any(r.get("action") == "keep" and r.get("regex") == "egressd" and
              r.get("sourceLabels") == ["__meta_kubernetes_pod_container_name"] for r in e.get("relabelings", []))
          for e in eps), "every PodMonitor endpoint keeps only the egressd container (not the sidecar's metrics)")
PY
# Not in a pipeline: the TAP counter lives in this shell.
report <"$T/report"

stop_pid "$EGRESSD_PID" >/dev/null
finish
