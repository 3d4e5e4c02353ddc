#!/bin/sh
# tests/deploy/check.sh: the deployment artifacts in deploy/ agree with each
# other and with the daemon.
#
#   (a) every YAML file under deploy/kubernetes parses; every manifest has a
#       known kind and apiVersion; every kustomization names files that exist,
#       and every manifest is named by one (or says why not);
#   (b) the kustomizations render (with `kubectl kustomize` when kubectl is
#       installed; otherwise the same rendering done here in Python: resources,
#       configMapGenerator, JSON patches: all these kustomizations use);
#   (c) in each rendering (plain Kubernetes, Istio with and without the CNI
#       plugin): container ports, Service target ports, probes, Prometheus
#       annotations, NetworkPolicy ports, volume mounts, the grace period and
#       the Istio resources agree with the daemon configuration inside the
#       ConfigMap; port 80 is named "http" (not "http2": no h2c to the http
#       listener); nothing in deploy/ runs as, or names, Istio's proxy UID;
#       egressd's own traffic is kept out of its sidecar by Istio's exclusion
#       annotation; the namespace's Pod Security level is "restricted" except
#       where istio-init needs "privileged" (the without-CNI overlay, which
#       changes nothing else);
#   (d) the daemon itself (`$EGRESSD -t`) accepts each rendered ConfigMap's
#       configuration with its policy ConfigMap, extracted to a directory;
#   (e) `systemd-analyze verify` and `systemd-analyze security` on the unit,
#       alone and with the TPROXY drop-in; Type=notify, NotifyAccess=main.
#
# Needs python3 with the yaml module (Debian: python3-yaml); kubectl and
# systemd-analyze are used when installed, their checks skipped otherwise.
. "$(dirname "$0")/../integration/lib.sh"

need python3
python3 -c 'import yaml' 2>/dev/null || bail "python3 has no yaml module (Debian package python3-yaml)"
[ -x "$EGRESSD" ] || bail "no egressd binary at $EGRESSD (set EGRESSD)"

K8S="$top_srcdir/deploy/kubernetes"
VARIANTS="base istio istio-without-cni workload/base workload/istio"

skip() {
	# skip DESCRIPTION REASON: a TAP "ok ... # SKIP".
	ok 0 "$1 # SKIP $2"
}

# Python does the reading; each line it prints is "PASS desc", "FAIL desc"
# or "DIAG text", turned into TAP here.
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

# ---- (b) rendering ---------------------------------------------------------
# With kubectl: its kustomize. Without: tests/deploy/render.py. Either way the
# result lands in $T/render/<variant>.yaml for the checks.
mkdir -p "$T/render"
RENDER="$top_srcdir/tests/deploy/render.py"

# KUBECTL=none runs the offline rendering even where kubectl is installed.
KUBECTL=${KUBECTL:-kubectl}
have_kubectl=0
# Its kustomize must know per-generator options and patches (kustomize v4 and
# later, kubectl 1.21 and later; Debian 12's kubernetes-client is 1.20).
if command -v "$KUBECTL" >/dev/null 2>&1; then
	kv=$("$KUBECTL" version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\)\..*/\1/p')
	if [ "${kv:-0}" -ge 4 ]; then
		have_kubectl=1
	else
		diag "$KUBECTL has no kustomize v4 or later; rendering offline"
	fi
fi
for v in $VARIANTS; do
	out="$T/render/$(echo "$v" | tr / _).yaml"
	if [ $have_kubectl = 1 ]; then
		"$KUBECTL" kustomize "$K8S/$v" >"$out" 2>"$T/kustomize.err"
		ok $? "kubectl kustomize deploy/kubernetes/$v renders"
		[ -s "$T/kustomize.err" ] && diag "$(cat "$T/kustomize.err")"
		# The Python rendering must agree with kubectl's, so that the checks
		# mean the same thing where kubectl is missing.
		python3 "$RENDER" "$K8S/$v" >"$out.py" 2>"$T/render.err"
		python3 - "$out" "$out.py" <<'EOF'
import sys, yaml
def key(o): return (o["kind"], o["metadata"]["name"].rsplit("-", 1)[0] if o["kind"] == "ConfigMap" and o["metadata"]["name"].count("-") > 1 and len(o["metadata"]["name"].rsplit("-", 1)[1]) == 10 else o["metadata"]["name"])
a = {key(o): o for o in yaml.safe_load_all(open(sys.argv[1])) if o}
b = {key(o): o for o in yaml.safe_load_all(open(sys.argv[2])) if o}
if set(a) != set(b):
    print("objects differ:", sorted(set(a) ^ set(b))); sys.exit(1)
for k in a:
    x, y = dict(a[k]), dict(b[k])
    x["metadata"] = dict(x["metadata"]); y["metadata"] = dict(y["metadata"])
    x["metadata"].pop("name"); y["metadata"].pop("name")
    if k[0] == "Deployment":
        for o in (x, y):
            for vol in o["spec"]["template"]["spec"]["volumes"]:
                vol.get("configMap", {}).pop("name", None)
    if x != y:
        print("%s/%s differs" % k); sys.exit(1)
EOF
		ok $? "the offline rendering of deploy/kubernetes/$v matches kubectl kustomize"
	else
		python3 "$RENDER" "$K8S/$v" >"$out" 2>"$T/render.err"
		ok $? "deploy/kubernetes/$v renders (offline; kubectl not installed)"
		[ -s "$T/render.err" ] && diag "$(cat "$T/render.err")"
	fi
done
if [ $have_kubectl = 1 ]; then
	diag "kubectl apply --dry-run=client needs an API server for discovery; not run (kubectl kustomize is)"
fi

# ---- (a) + (c) -------------------------------------------------------------
python3 - "$top_srcdir" "$T/render" >"$T/checks.out" 2>&1 <<'EOF'
import ipaddress, os, re, sys, yaml

top, rdir = sys.argv[1], sys.argv[2]
k8s = os.path.join(top, "deploy", "kubernetes")

def check(cond, desc):
    print(("PASS " if cond else "FAIL ") + desc)
    return cond

API = {
    "Namespace": "v1", "ServiceAccount": "v1", "Service": "v1", "ConfigMap": "v1",
    "Deployment": "apps/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "ServiceEntry": "networking.istio.io/v1", "VirtualService": "networking.istio.io/v1",
    "DestinationRule": "networking.istio.io/v1", "Gateway": "networking.istio.io/v1",
    "Sidecar": "networking.istio.io/v1",
    "PeerAuthentication": "security.istio.io/v1", "AuthorizationPolicy": "security.istio.io/v1",
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
}
# Files that are not manifests: daemon configurations, allow-lists without a
# kind (native), JSON patches.
def role(rel):
    if rel.endswith("/egressd.yaml"):
        return "daemon config"
    if rel.endswith("-patch.yaml"):
        return "patch"
    return None

# (a) every file parses, kinds and apiVersions
files = []
for d, _, fs in os.walk(k8s):
    for f in sorted(fs):
        if f.endswith((".yaml", ".yml")):
            files.append(os.path.relpath(os.path.join(d, f), k8s))
files.sort()
referenced = set()
for rel in files:
    path = os.path.join(k8s, rel)
    try:
        docs = [x for x in yaml.safe_load_all(open(path)) if x is not None]
    except yaml.YAMLError as e:
        check(False, "%s parses as YAML (%s)" % (rel, str(e).replace("\n", " ")))
        continue
    r = role(rel)
    if r == "patch":
        ok = all(isinstance(x, list) and all({"op", "path"} <= set(op) for op in x) for x in docs)
        check(ok, "%s parses: a JSON patch" % rel)
        continue
    if r == "daemon config":
        ok = len(docs) == 1 and isinstance(docs[0], dict) and "listeners" in docs[0]
        check(ok, "%s parses: an egressd configuration" % rel)
        continue
    bad = []
    kinds = []
    for x in docs:
        if not isinstance(x, dict):
            bad.append("a document that is not a mapping")
            continue
        if "kind" not in x:
            if os.path.basename(os.path.dirname(rel)) == "policy" and ("allow" in x or "deny" in x):
                kinds.append("allow-list")
                continue
            if os.path.basename(rel) == "kustomization.yaml":
                x = dict(x, kind="Kustomization", apiVersion=x.get("apiVersion"))
            else:
                bad.append("a document without kind")
                continue
        kinds.append(x["kind"])
        want = API.get(x["kind"])
        if want is None:
            bad.append("unknown kind %s" % x["kind"])
        elif x.get("apiVersion") != want:
            bad.append("%s has apiVersion %s, expected %s" % (x["kind"], x.get("apiVersion"), want))
        if x["kind"] not in ("Kustomization", "Namespace") and "metadata" in x and not x["metadata"].get("name"):
            bad.append("%s without metadata.name" % x["kind"])
    check(not bad, "%s parses; kinds %s%s" % (rel, ", ".join(kinds) or "none",
                                             (": " + "; ".join(bad)) if bad else ""))
    if os.path.basename(rel) == "kustomization.yaml":
        k = docs[0]
        base = os.path.dirname(path)
        names = list(k.get("resources", []))
        names += [f.split("=")[-1] for g in k.get("configMapGenerator", []) for f in g.get("files", [])]
        names += [p["path"] for p in k.get("patches", [])]
        missing = [n for n in names if not os.path.exists(os.path.join(base, n))]
        check(not missing, "%s names only files that exist%s" % (rel, (": missing " + ", ".join(missing)) if missing else ""))
        for n in names:
            referenced.add(os.path.normpath(os.path.relpath(os.path.join(base, n), k8s)))
# every file is used by a kustomization, except the documented alternative
ALTERNATIVES = {"workload/istio/sidecar-egress-proxy.yaml"}
unused = [f for f in files if os.path.basename(f) != "kustomization.yaml"
          and f not in referenced and f not in ALTERNATIVES]
check(not unused, "every file under deploy/kubernetes is used by a kustomization%s"
      % ((": not " + ", ".join(unused)) if unused else ""))

# (c) consistency of each rendering
def port_of(addr):
    return int(addr.rsplit(":", 1)[1])
def host_of(addr):
    return addr.rsplit(":", 1)[0].strip("[]")
def dur(s):
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", str(s))
    n = int(m.group(1))
    return n * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
def labels_match(sel, labels):
    return all(labels.get(k) == v for k, v in sel.items())

ISTIO_PROXY_PORTS = {15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090}
ISTIO_PROXY_UID = 1337        # istio-proxy's; a sidecar lets this UID's traffic through

def variant(name):
    objs = [o for o in yaml.safe_load_all(open(os.path.join(rdir, name + ".yaml"))) if o]
    by = lambda kind: [o for o in objs if o["kind"] == kind]
    tag = "[%s] " % name
    dep = by("Deployment")
    if not check(len(dep) == 1, tag + "one Deployment"):
        return
    dep = dep[0]
    pod = dep["spec"]["template"]
    podspec = pod["spec"]
    ctr = [c for c in podspec["containers"] if c["name"] == "egressd"][0]
    cports = {p["containerPort"]: p for p in ctr["ports"]}
    cms = {o["metadata"]["name"].rsplit("-", 1)[0] if o["metadata"]["name"].startswith("egressd-config-") else o["metadata"]["name"]: o
           for o in by("ConfigMap")}
    cfg = yaml.safe_load(cms["egressd-config"]["data"]["egressd.yaml"])
    policy_cm = cms["egressd-policy"]
    adm = cfg["admin"]
    health, prom, main = port_of(adm["health_address"]), port_of(adm["prometheus_address"]), port_of(adm["address"])
    lports = {port_of(l["address"]): l for l in cfg["listeners"]}

    # replicas, drain, grace period
    check(dep["spec"]["replicas"] == 2, tag + "Deployment has 2 replicas")
    drain = dur(cfg["drain"]["delay"]) + dur(cfg["drain"]["timeout"])
    grace = podspec["terminationGracePeriodSeconds"]
    check(grace >= drain, tag + "terminationGracePeriodSeconds %s >= drain.delay + drain.timeout (%ss)" % (grace, drain))
    # ports
    check(set(lports) <= set(cports), tag + "every listener port %s is a container port" % sorted(lports))
    check(health in cports and prom in cports,
          tag + "health (%d) and Prometheus (%d) ports are container ports" % (health, prom))
    check(host_of(adm["address"]) in ("127.0.0.1", "::1") and main not in cports,
          tag + "the main admin address %s is loopback and not exposed" % adm["address"])
    check(host_of(adm["health_address"]) in ("0.0.0.0", "::") and host_of(adm["prometheus_address"]) in ("0.0.0.0", "::"),
          tag + "health and Prometheus addresses listen on every interface (the kubelet and Prometheus reach them)")
    pending = sorted(p for p in cports if p not in lports and p not in (health, prom))
    check(pending == [],
          tag + "container ports are the daemon's ports: extra %s" % pending)
    # Service: istio-egressgateway's ports
    svc = [s for s in by("Service") if s["metadata"]["name"] == "egressd"][0]
    sp = {p["port"]: p for p in svc["spec"]["ports"]}
    check(sp.get(443, {}).get("targetPort") == 8443 and sp[443].get("name") == "https"
          and sp.get(80, {}).get("targetPort") == 8080 and sp[80].get("name") == "http",
          tag + "Service ports: 443->8443 https, 80->8080 http (istio-egressgateway's numbers)")
    # Istio picks the protocol from the port name (or appProtocol): "http2" or
    # "grpc*" would let a sidecar send h2c, which the http listener refuses.
    h2 = sorted(p.get("name") for p in svc["spec"]["ports"] + ctr["ports"]
                if re.match(r"(http2|grpc)($|-)", p.get("name", "")) or p.get("appProtocol") in ("http2", "grpc", "kubernetes.io/h2c"))
    check(not h2, tag + "no Service or container port is named or declared as HTTP/2 %s" % (h2 or ""))
    http_l = [p for p, l in lports.items() if l.get("protocol") in ("http", "connect")]
    check(all(p["name"] == "http" or p["name"].startswith("http-") for p in svc["spec"]["ports"] if p["targetPort"] in http_l)
          and all(cports[p]["name"] == "http" or cports[p]["name"].startswith("http-") for p in http_l),
          tag + "ports of the http listener are named http (Istio: HTTP/1.x)")
    check(all(p["targetPort"] in cports for p in svc["spec"]["ports"]), tag + "every Service targetPort is a container port")
    check(all(p["targetPort"] in lports for p in svc["spec"]["ports"]),
          tag + "every Service targetPort is a listener port")
    check(labels_match(svc["spec"]["selector"], pod["metadata"]["labels"]), tag + "the Service selects the pods")
    check(sp[443]["targetPort"] in lports and lports[sp[443]["targetPort"]].get("protocol", "tls") == "tls",
          tag + "Service port 443 reaches a tls listener")
    check(sp[80]["targetPort"] in lports and lports[sp[80]["targetPort"]].get("protocol") == "http"
          and lports[sp[80]["targetPort"]].get("upstream_port", 80) == 80,
          tag + "Service port 80 reaches an http listener (a Host without a port means 80)")
    # probes
    rp, lp = ctr["readinessProbe"], ctr["livenessProbe"]
    check(rp["httpGet"]["path"] == "/healthz/ready" and rp["httpGet"]["port"] == health,
          tag + "readiness probe is /healthz/ready on the health port %d" % health)
    lport = (lp.get("httpGet") or lp.get("tcpSocket"))["port"]
    check(lport == health, tag + "liveness probe is on the health port %d" % health)
    # Prometheus
    ann = pod["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == str(prom)
          and ann.get("prometheus.io/path") == "/stats/prometheus",
          tag + "Prometheus annotations: scrape, port %d, /stats/prometheus" % prom)
    # mounts: -c FILE, policy.files relative to FILE's directory
    args = ctr.get("args", [])
    cfile = args[args.index("-c") + 1]
    mounts = {m["name"]: m for m in ctr["volumeMounts"]}
    vols = {v["name"]: v for v in podspec["volumes"]}
    cvol = [n for n, v in vols.items() if v.get("configMap", {}).get("name", "").startswith("egressd-config")][0]
    pvol = [n for n, v in vols.items() if v.get("configMap", {}).get("name") == "egressd-policy"][0]
    check(os.path.join(mounts[cvol]["mountPath"], "egressd.yaml") == cfile,
          tag + "the config ConfigMap is mounted where -c %s looks" % cfile)
    pdir = os.path.normpath(os.path.join(os.path.dirname(cfile), cfg["policy"]["files"][0]))
    check(mounts[pvol]["mountPath"] == pdir and len(cfg["policy"]["files"]) == 1,
          tag + "policy.files %s is where the policy ConfigMap is mounted (%s)" % (cfg["policy"]["files"], pdir))
    check(all(m.get("readOnly") for m in ctr["volumeMounts"]), tag + "every mount is read-only")
    # security context
    sc, psc = ctr["securityContext"], podspec.get("securityContext", {})
    uids = {sc.get("runAsUser"), psc.get("runAsUser")}
    gids = {sc.get("runAsGroup"), psc.get("runAsGroup")}
    check(sc.get("runAsNonRoot") and len(uids) == 1 and isinstance(sc.get("runAsUser"), int)
          and sc["runAsUser"] not in (0, ISTIO_PROXY_UID) and len(gids) == 1 and sc.get("runAsGroup") not in (0, ISTIO_PROXY_UID)
          and sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
          and sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc.get("capabilities", {}).get("add"),
          tag + "securityContext: non-root UID %s (not Istio's proxy UID), read-only root, no privilege escalation, "
          "all capabilities dropped" % sc.get("runAsUser"))
    check(psc.get("seccompProfile", {}).get("type") in ("RuntimeDefault", "Localhost"),
          tag + "the pod (so every container, injected ones too) has a seccomp profile")
    check(cfg.get("log", {}).get("path", "-") == "-", tag + "the log goes to stdout")
    check("user" not in cfg and "group" not in cfg, tag + "no user:/group: in a pod that starts unprivileged")
    # Pod Security: restricted, except where istio-init (no CNI) needs privileged
    nsobj = [o for o in by("Namespace") if o["metadata"]["name"] == dep["metadata"]["namespace"]]
    pss = nsobj[0]["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") if nsobj else None
    if name == "istio-without-cni":
        check(pss == "privileged", tag + "Pod Security enforce: privileged (istio-init needs NET_ADMIN, NET_RAW)")
    else:
        check(pss == "restricted", tag + "Pod Security enforce: restricted (%s)" % pss)
    # HPA, PDB
    hpa = by("HorizontalPodAutoscaler")[0]["spec"]
    cpu = [m for m in hpa["metrics"] if m["resource"]["name"] == "cpu"][0]["resource"]["target"]
    check(hpa["scaleTargetRef"]["name"] == dep["metadata"]["name"] and hpa["minReplicas"] == 2
          and hpa["maxReplicas"] == 10 and cpu["averageUtilization"] == 80,
          tag + "HPA scales the Deployment 2..10 at 80% CPU")
    check("cpu" in ctr["resources"].get("requests", {}), tag + "the container requests CPU (the HPA's base)")
    pdb = by("PodDisruptionBudget")[0]["spec"]
    check(pdb["minAvailable"] == 1 and labels_match(pdb["selector"]["matchLabels"], pod["metadata"]["labels"]),
          tag + "PDB keeps 1 pod and selects the pods")
    # NetworkPolicies for the gateway
    nps = [n for n in by("NetworkPolicy") if labels_match(n["spec"]["podSelector"].get("matchLabels", {}), pod["metadata"]["labels"])]
    inports = {p["port"] for n in nps for r in n["spec"].get("ingress", []) for p in r.get("ports", [])}
    outports = {p["port"] for n in nps for r in n["spec"].get("egress", []) for p in r.get("ports", [])}
    check(set(lports) | {health, prom} <= inports,
          tag + "NetworkPolicies let in the listener, health and Prometheus ports %s" % sorted(set(lports) | {health, prom}))
    check({53, 443} <= outports, tag + "NetworkPolicies let egressd reach DNS (53) and the internet (443)")
    # Istio
    if name.startswith("istio"):
        fqdn = "egressd.%s.svc.cluster.local" % svc["metadata"]["namespace"]
        clash = sorted({health, prom, main} & ISTIO_PROXY_PORTS)
        check(not clash, tag + "admin ports %s do not clash with the sidecar's ports" % sorted({health, prom, main}))
        check(pod["metadata"]["labels"].get("sidecar.istio.io/inject") == "true", tag + "pods get a sidecar")
        excl = set(int(x) for x in ann.get("traffic.sidecar.istio.io/excludeInboundPorts", "").split(",") if x)
        check({health, prom} <= excl, tag + "health and Prometheus ports bypass the sidecar (STRICT mTLS would refuse plain HTTP)")
        pc = yaml.safe_load(ann.get("proxy.istio.io/config", "{}")) or {}
        # egressd's own connections and lookups must not go through its
        # sidecar: Istio's exclusion annotation (read by istio-init and by
        # the CNI plugin), which only applies while all outbound traffic is
        # captured (includeOutboundIPRanges "*", the default), and no DNS
        # capture. Not by running as the proxy's UID (checked above).
        xr = [x.strip() for x in ann.get("traffic.sidecar.istio.io/excludeOutboundIPRanges", "").split(",") if x.strip()]
        nets = []
        for x in xr:
            try:
                nets.append(ipaddress.ip_network(x))
            except ValueError:
                check(False, tag + "excludeOutboundIPRanges entry %r is a CIDR" % x)
        check(ipaddress.ip_network("0.0.0.0/0") in nets and ipaddress.ip_network("::/0") in nets,
              tag + "excludeOutboundIPRanges covers every IPv4 and IPv6 destination: %s" % xr)
        check(ann.get("traffic.sidecar.istio.io/includeOutboundIPRanges", "*") == "*"
              and "traffic.sidecar.istio.io/includeOutboundPorts" not in ann,
              tag + "no include annotation narrows capture (the exclusion applies only with \"*\")")
        check(str(pc.get("proxyMetadata", {}).get("ISTIO_META_DNS_CAPTURE", "false")).lower() == "false",
              tag + "the sidecar does not capture egressd's DNS")
        check(ann.get("sidecar.istio.io/interceptionMode", "REDIRECT") == "REDIRECT",
              tag + "interception mode REDIRECT (TPROXY would need NET_ADMIN in the sidecar)")
        tdd = dur(pc.get("terminationDrainDuration", "5s"))
        check(drain <= tdd <= grace, tag + "the sidecar stays up through the drain: %ss <= terminationDrainDuration %ss <= grace %ss" % (drain, tdd, grace))
        dr = [o for o in by("DestinationRule") if o["spec"]["host"] == fqdn]
        check(len(dr) == 1 and dr[0]["spec"]["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL",
              tag + "DestinationRule for %s says ISTIO_MUTUAL" % fqdn)
        pa = by("PeerAuthentication")
        check(len(pa) == 1 and pa[0]["spec"]["mtls"]["mode"] == "STRICT" and "selector" not in pa[0]["spec"]
              and pa[0]["metadata"]["namespace"] == svc["metadata"]["namespace"] != "istio-system",
              tag + "PeerAuthentication STRICT for the gateway's namespace (not the mesh root)")
        ap = by("AuthorizationPolicy")
        ok = len(ap) == 1 and ap[0]["spec"]["action"] == "ALLOW" and \
            labels_match(ap[0]["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
        apports = {int(p) for r in ap[0]["spec"]["rules"] for t in r.get("to", []) for p in t["operation"].get("ports", [])}
        nss = [n for r in ap[0]["spec"]["rules"] for f in r.get("from", []) for n in f["source"].get("namespaces", [])]
        check(ok and apports == set(lports) and nss,
              tag + "AuthorizationPolicy allows namespaces %s on the listener ports %s" % (nss, sorted(apports)))
        gws = {"%s/%s" % (g["metadata"]["namespace"], g["metadata"]["name"]) for g in by("Gateway")}
        for g in by("Gateway"):
            check(labels_match(g["spec"]["selector"], pod["metadata"]["labels"]),
                  tag + "Gateway %s selects egressd's pods (no Envoy gateway takes it)" % g["metadata"]["name"])
        ses = by("ServiceEntry")
        se_hosts = {h for s in ses for h in s["spec"]["hosts"]}
        for vs in by("VirtualService"):
            n = vs["metadata"]["name"]
            mesh = [r for r in vs["spec"]["tls"] if all("mesh" in m.get("gateways", vs["spec"]["gateways"]) for m in r["match"])]
            gw = [r for r in vs["spec"]["tls"] if r not in mesh]
            check(mesh and all(d["destination"]["host"] == fqdn and d["destination"]["port"]["number"] in sp
                               for r in mesh for d in r["route"]),
                  tag + "VirtualService %s sends the mesh's TLS to %s on a Service port" % (n, fqdn))
            check(all(g in gws for r in gw for m in r["match"] for g in m["gateways"]),
                  tag + "VirtualService %s names only existing Gateways %s" % (n, sorted(gws)))
            check(set(vs["spec"]["hosts"]) <= se_hosts, tag + "VirtualService %s hosts are in a ServiceEntry" % n)
            in_policy = any(("name: %s" % n) in v for v in policy_cm["data"].values())
            check(in_policy, tag + "VirtualService %s is in egressd's policy too (one file, both readers)" % n)
        for s in ses:
            in_policy = any(("name: %s" % s["metadata"]["name"]) in v for v in policy_cm["data"].values())
            check(in_policy, tag + "ServiceEntry %s is in egressd's policy too" % s["metadata"]["name"])
        nsnp = [r for n in nps for r in n["spec"].get("egress", []) for p in r.get("ports", []) if p["port"] == 15012]
        check(bool(nsnp), tag + "NetworkPolicies let the sidecar reach istiod (15012)")

for v in ("base", "istio", "istio-without-cni"):
    variant(v)

# The without-CNI overlay is the Istio one plus the namespace's Pod Security
# level, nothing else: the two cannot drift apart.
def strip_ns(objs):
    out = []
    for o in objs:
        o = dict(o, metadata=dict(o["metadata"]))
        if o["kind"] == "Namespace":
            o["metadata"]["labels"] = {k: v for k, v in o["metadata"].get("labels", {}).items()
                                       if not k.startswith("pod-security.kubernetes.io/")}
        if o["kind"] == "ConfigMap":
            o["metadata"]["name"] = o["metadata"]["name"].rsplit("-", 1)[0] if o["metadata"]["name"].startswith("egressd-config-") else o["metadata"]["name"]
        if o["kind"] == "Deployment":
            o["spec"] = yaml.safe_load(yaml.safe_dump(o["spec"]))
            for vol in o["spec"]["template"]["spec"]["volumes"]:
                vol.get("configMap", {}).pop("name", None)
        out.append(o)
    return sorted(out, key=lambda o: (o["kind"], o["metadata"]["name"]))
ri, rn = [[o for o in yaml.safe_load_all(open(os.path.join(rdir, v + ".yaml"))) if o] for v in ("istio", "istio-without-cni")]
check(strip_ns(ri) == strip_ns(rn),
      "[istio-without-cni] the same objects as [istio] but for the namespace's pod-security labels")

# No file under deploy/ runs as, or mentions, Istio's proxy UID: the UID a
# sidecar lets through unseen is the bypass Istio's guidance forbids.
named = []
for d, _, fs in os.walk(os.path.join(top, "deploy")):
    for f in fs:
        p = os.path.join(d, f)
        try:
            if re.search(r"(?<![0-9])%d(?![0-9])" % ISTIO_PROXY_UID, open(p, encoding="utf-8", errors="replace").read()):
                named.append(os.path.relpath(p, top))
        except OSError:
            pass
check(not named, "no file under deploy/ names UID %d, Istio's proxy UID %s" % (ISTIO_PROXY_UID, sorted(named) or ""))

# the client namespaces
for v in ("workload_base", "workload_istio"):
    objs = [o for o in yaml.safe_load_all(open(os.path.join(rdir, v + ".yaml"))) if o]
    tag = "[%s] " % v.replace("_", "/")
    check(all("namespace" not in o["metadata"] for o in objs), tag + "no namespace: applied with -n to each client namespace")
    np_ = [o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "egress-only-through-egressd"][0]["spec"]
    peers = [r for r in np_["egress"] if any("podSelector" in t and t["podSelector"]["matchLabels"].get("app") == "egressd" for t in r["to"])]
    check(np_["podSelector"] == {} and np_["policyTypes"] == ["Egress"] and len(np_["egress"]) == 2 and peers
          and {p["port"] for p in peers[0]["ports"]} == {8443, 8080},
          tag + "client pods may reach only egressd's pods (8443, 8080) and DNS")
    if v == "workload_istio":
        sc = [o for o in objs if o["kind"] == "Sidecar"]
        check(len(sc) == 1 and sc[0]["spec"]["outboundTrafficPolicy"]["mode"] == "REGISTRY_ONLY"
              and "egress/*" in sc[0]["spec"]["egress"][0]["hosts"],
              tag + "Sidecar: REGISTRY_ONLY, importing egress/*")
alt = yaml.safe_load(open(os.path.join(k8s, "workload/istio/sidecar-egress-proxy.yaml")))["spec"]
otp = alt["outboundTrafficPolicy"]
fq = otp["egressProxy"]["host"]
check(otp["mode"] == "ALLOW_ANY" and fq == "egressd.egress.svc.cluster.local"
      and otp["egressProxy"]["port"]["number"] == 443
      and any(h.endswith("/" + fq) for h in alt["egress"][0]["hosts"]),
      "[workload/istio] the egressProxy Sidecar: ALLOW_ANY (required), egressd:443, and egressd's host imported")

# the image agrees with the base Deployment
df = open(os.path.join(top, "deploy", "Dockerfile")).read()
expose = {int(p) for line in re.findall(r"^EXPOSE (.*)$", df, re.M) for p in line.split()}
base = [o for o in yaml.safe_load_all(open(os.path.join(rdir, "base.yaml"))) if o and o["kind"] == "Deployment"][0]
bports = {p["containerPort"] for p in base["spec"]["template"]["spec"]["containers"][0]["ports"]}
check(expose == bports, "Dockerfile EXPOSE %s = the base Deployment's container ports %s" % (sorted(expose), sorted(bports)))
bsc = base["spec"]["template"]["spec"]["securityContext"]
um = re.search(r"^USER ([0-9]+)(?::([0-9]+))?$", df, re.M)
check(um is not None and int(um.group(1)) == bsc["runAsUser"] and int(um.group(2) or um.group(1)) == bsc["runAsGroup"],
      "Dockerfile USER is numeric and the Deployment's runAsUser:runAsGroup (%s:%s)" % (bsc["runAsUser"], bsc["runAsGroup"]))
check('ENTRYPOINT ["/usr/sbin/egressd", "-c", "/etc/egressd/egressd.yaml"]' in df,
      "Dockerfile ENTRYPOINT is egressd -c /etc/egressd/egressd.yaml")
check(df.count("FROM debian:bookworm-slim") == 2, "Dockerfile: two stages, both debian:bookworm-slim")
EOF

checks_rc=$?
# (report reads a file, not a pipe: a pipe would count in a subshell)
report <"$T/checks.out"
ok $checks_rc "the consistency checks ran to the end"

# ---- (d) the daemon reads what the ConfigMaps hold -------------------------
for v in base istio; do
	dir="$T/etc-$v"
	cfg=$(python3 - "$T/render/$v.yaml" "$dir" <<'EOF'
import os, sys, yaml
objs = [o for o in yaml.safe_load_all(open(sys.argv[1])) if o]
out = sys.argv[2]
dep = [o for o in objs if o["kind"] == "Deployment"][0]
ctr = dep["spec"]["template"]["spec"]["containers"][0]
mounts = {m["name"]: m["mountPath"] for m in ctr["volumeMounts"]}
cms = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ConfigMap"}
# Lay the ConfigMaps out as the pod sees them, with the mount paths moved
# under the temporary directory.
for v in dep["spec"]["template"]["spec"]["volumes"]:
    cm = cms[v["configMap"]["name"]]
    d = out + mounts[v["name"]]
    os.makedirs(d, exist_ok=True)
    items = v["configMap"].get("items") or [{"key": k, "path": k} for k in cm["data"]]
    for it in items:
        with open(os.path.join(d, it["path"]), "w") as f:
            f.write(cm["data"][it["key"]])
args = ctr["args"]
print(out + args[args.index("-c") + 1])
EOF
)
	"$EGRESSD" -t -c "$cfg" >"$T/t-$v.out" 2>&1
	rc=$?
	grep -q '^configuration OK$' "$T/t-$v.out" && [ $rc -eq 0 ]
	ok $? "[$v] egressd -t accepts the ConfigMaps' configuration and policy"
	[ $rc -eq 0 ] || diag "$(cat "$T/t-$v.out")"
	if [ -n "${EGRESSCTL:-}" ] && [ -x "$EGRESSCTL" ]; then
		"$EGRESSCTL" check -c "$cfg" >"$T/c-$v.out" 2>&1
		ok $? "[$v] egressctl check -c reads the same files without errors"
		grep -i 'warning' "$T/c-$v.out" | sed 's/^/# /'
	else
		skip "[$v] egressctl check -c" "EGRESSCTL not set"
	fi
done

# ---- (e) the systemd unit --------------------------------------------------
UNIT="$top_srcdir/deploy/systemd/egressd.service"
DROPIN="$top_srcdir/deploy/systemd/egressd.service.d/tproxy.conf"
# flagged FILE NAME: systemd-analyze security scores the line for NAME (its
# lines end with the exposure they add; a line that adds none has no number).
flagged() {
	grep -F -- "$2" "$1" | grep -qE '[0-9]\.[0-9][[:space:]]*$'
}
if command -v systemd-analyze >/dev/null 2>&1; then
	# verify wants every Exec* binary to exist: check a copy whose commands
	# are the built binary (the unit itself names /usr/sbin/egressd, where
	# make install puts it). The TPROXY variant is the same unit with the
	# drop-in next to it, where verify looks for drop-ins.
	mkdir -p "$T/unit" "$T/unit-tproxy/egressd.service.d"
	sed "s#/usr/sbin/egressd#$EGRESSD#g" "$UNIT" >"$T/unit/egressd.service"
	cp "$T/unit/egressd.service" "$T/unit-tproxy/egressd.service"
	cp "$DROPIN" "$T/unit-tproxy/egressd.service.d/tproxy.conf"
	for u in unit unit-tproxy; do
		what="deploy/systemd/egressd.service"
		[ $u = unit-tproxy ] && what="$what with egressd.service.d/tproxy.conf"
		systemd-analyze verify "$T/$u/egressd.service" >"$T/verify-$u.out" 2>&1
		rc=$?
		# Unknown keys are only warnings for systemd (exit 0): any output fails.
		[ $rc -eq 0 ] && [ ! -s "$T/verify-$u.out" ]
		ok $? "systemd-analyze verify $what: no error, no warning"
		[ -s "$T/verify-$u.out" ] && diag "$(cat "$T/verify-$u.out")"
	done
	if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
		for u in unit unit-tproxy; do
			systemd-analyze security --offline=yes --threshold=30 "$T/$u/egressd.service" >"$T/security-$u.out" 2>&1
			ok $? "systemd-analyze security ($u): exposure at most 3.0 of 10 ($(grep -o 'exposure level[^:]*: [0-9.]* [A-Z]*' "$T/security-$u.out" | head -1))"
		done
		! flagged "$T/security-unit.out" 'CapabilityBoundingSet=~CAP_NET_ADMIN' &&
		    flagged "$T/security-unit-tproxy.out" 'CapabilityBoundingSet=~CAP_NET_ADMIN' &&
		    flagged "$T/security-unit-tproxy.out" 'CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE'
		ok $? "CAP_NET_ADMIN only with the TPROXY drop-in, which keeps CAP_NET_BIND_SERVICE (its lists add to the unit's)"
	else
		skip "systemd-analyze security --offline" "this systemd has no --offline"
	fi
	grep -q '^ExecStartPre=/usr/sbin/egressd -t -c /etc/egressd/egressd.yaml$' "$UNIT" &&
	    grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$UNIT" &&
	    grep -q '^KillSignal=SIGTERM$' "$UNIT"
	ok $? "the unit checks the configuration before start, reloads with SIGHUP, stops with SIGTERM"
	grep -q '^Type=notify$' "$UNIT" && grep -q '^NotifyAccess=main$' "$UNIT"
	ok $? "Type=notify with NotifyAccess=main (readiness from egressd itself; tests/integration/notify.sh)"
	[ "$(grep -cv -e '^#' -e '^$' "$DROPIN")" = 3 ] && grep -q '^\[Service\]$' "$DROPIN" &&
	    grep -q '^AmbientCapabilities=CAP_NET_ADMIN$' "$DROPIN" &&
	    grep -q '^CapabilityBoundingSet=CAP_NET_ADMIN$' "$DROPIN"
	ok $? "the TPROXY drop-in adds CAP_NET_ADMIN (ambient and bounding set) and nothing else"
	stop=$(sed -n 's/^TimeoutStopSec=//p' "$UNIT")
	[ "${stop:-0}" -ge 35 ]
	ok $? "TimeoutStopSec ($stop s) covers the default drain (5 s + 30 s)"
else
	skip "systemd-analyze verify" "systemd-analyze not installed (Debian package systemd)"
fi

finish
