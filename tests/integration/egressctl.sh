#!/bin/sh
# egressctl as security and ops teams use it: "check" on real policy files,
# directories and the daemon's configuration (every rule as read, exact
# diagnostics and warnings, exit statuses), "explain" against the daemon's
# own configuration (the enforced verdict, report mode's would_deny, the
# admitting rule, the line egressd writes, the other matches and why they
# did not decide; the listener, ECH and refusals before the policy), and
# "reasons". No network: everything here is files.
. "$(dirname "$0")/lib.sh"
need python3
: "${EGRESSCTL:=$top_builddir/egressctl}"
[ -x "$EGRESSCTL" ] || bail "no egressctl binary at $EGRESSCTL"
# The publicsuffix package's list, not one from the caller's environment.
unset EGRESSCTL_PSL_FILE

cd "$T" || bail "no temp dir"

# run ARGS...: sets OUT (stdout and stderr, in order), ERR (stderr) and RC.
run() {
	"$EGRESSCTL" "$@" >run.out 2>run.err
	RC=$?
	OUT=$(cat run.out run.err)
	STDOUT=$(cat run.out)
	ERR=$(cat run.err)
}
# has LINE DESCRIPTION: OUT holds exactly this line.
has() {
	printf '%s\n' "$OUT" | grep -qxF -- "$1"
	ok $? "$2"
}
hasnt() {
	! printf '%s\n' "$OUT" | grep -qF -- "$1"
	ok $? "$2"
}
show() {
	diag "exit $RC; output:"
	diag "$OUT"
}

# ---------------------------------------------------------------- check
cat > good.yaml <<'EOF'
allow:
  - name: github
    hosts: ["api.github.com", "*.example.com"]
    ports: [443, 8443]
  - hosts: [".example.net"]
  - name: mirror
    hosts: ["MIRROR.corp.test."]
    sources: ["10.0.0.0/8"]
    allow_private: true
deny:
  - hosts: ["*.pastebin.com"]
EOF
run check good.yaml
[ $RC -eq 0 ]
ok $? "check on a good file exits 0"
has "good.yaml:3: allow api.github.com (github, native): exactly api.github.com; ports 443, 8443; resolution dns; sources any; mode enforce; allow_private no; originate_tls no" \
    "check prints an exact rule with its name, ports and defaults"
has "good.yaml:3: allow *.example.com (github, native): any subdomain of example.com at any depth, not example.com itself; ports 443, 8443; resolution dns; sources any; mode enforce; allow_private no; originate_tls no" \
    "check says what a *. wildcard means in words"
has "good.yaml:5: allow .example.net (allow[1], native): example.net itself and any subdomain of it at any depth; ports default (443 for tls/connect, 80 for http); resolution dns; sources any; mode enforce; allow_private no; originate_tls no" \
    "check says what a leading-dot pattern means, and shows default ports"
has "good.yaml:7: allow mirror.corp.test (mirror, native): exactly mirror.corp.test; ports default (443 for tls/connect, 80 for http); resolution dns; sources 10.0.0.0/8; mode enforce; allow_private yes; originate_tls no" \
    "check shows the pattern as normalised, its sources and allow_private"
has "good.yaml:11: deny *.pastebin.com (deny[0], native): any subdomain of pastebin.com at any depth, not pastebin.com itself; ports all; sources any; mode enforce" \
    "check shows a deny rule without ports as covering all ports"
has "1 file, 5 rules, 0 errors, 0 warnings" "check ends with a one-line summary"
[ -z "$ERR" ]
ok $? "a clean file gives no diagnostics at all"
show

run check --quiet good.yaml
[ $RC -eq 0 ] && [ -z "$OUT" ]
ok $? "check --quiet on a good file prints nothing and exits 0"

# A broken file: every error at its file:line:column, no rules, exit 1.
cat > broken.yaml <<'EOF'
allow:
  - hosts: ["api.example.com", "*foo.example.com"]
  - hosts: ["ok.example.com"]
    ports: [70000]
EOF
run check broken.yaml
[ $RC -eq 1 ]
ok $? "check on a broken file exits 1"
has "broken.yaml:2:32: bad host pattern '*foo.example.com': a wildcard must be a whole leftmost label: *.foo.example.com" \
    "a bad pattern is reported as file:line:col: message with a hint"
printf '%s\n' "$ERR" | grep -q '^broken.yaml:4:13: '
ok $? "the bad port is reported too, at 4:13 (every error, not just the first)"
has "1 file, 2 errors, 0 warnings: the policy does not load" "the summary says the policy does not load"
hasnt "ok.example.com (" "no rule is listed from a policy that does not load"
show

run check good.yaml broken.yaml
[ $RC -eq 1 ]
ok $? "one broken file among good ones: exit 1"

# Findings: duplicates, shadowed allow rules, very wide patterns.
cat > findings.yaml <<'EOF'
allow:
  - name: first
    hosts: ["api.example.com"]
    ports: [443]
  - name: again
    hosts: ["api.example.com"]
    ports: [443, 8443]
  - name: other-port
    hosts: ["api.example.com"]
    ports: [8080]
  - name: scoped
    hosts: ["api.example.com"]
    ports: [443]
    sources: ["10.0.0.0/8"]
  - name: under-deny
    hosts: ["a.x.com", "*.deep.x.com", "x.com"]
  - name: wide
    hosts: ["*.com", ".co.uk", "*.example.co.uk"]
  - name: everything
    hosts: ["*"]
    ports: [443]
  - name: tls-only
    hosts: ["b.y.com"]
deny:
  - hosts: ["*.x.com"]
  - hosts: ["*.y.com"]
    ports: [443]
EOF
run check findings.yaml
[ $RC -eq 0 ]
ok $? "warnings alone do not fail check (exit 0)"
has "findings.yaml:6:13: warning: duplicate: allow 'api.example.com' (again) repeats findings.yaml:3 (first): same pattern, action and sources, overlapping ports; remove one" \
    "a duplicate (same pattern, action, sources, overlapping ports) names both places"
hasnt "(other-port) repeats" "the same pattern on other ports is not a duplicate"
hasnt "(scoped) repeats" "the same pattern for other sources is not a duplicate"
has "findings.yaml:16:13: warning: shadowed: allow 'a.x.com' (under-deny) never allows anything: deny '*.x.com' at findings.yaml:25 (deny[0]) covers it on all its ports and deny rules win" \
    "deny *.x.com shadows allow a.x.com"
has "findings.yaml:16:24: warning: shadowed: allow '*.deep.x.com' (under-deny) never allows anything: deny '*.x.com' at findings.yaml:25 (deny[0]) covers it on all its ports and deny rules win" \
    "deny *.x.com shadows allow *.deep.x.com"
hasnt "allow 'x.com' (under-deny) never" "deny *.x.com does not shadow the apex x.com"
hasnt "allow 'b.y.com' (tls-only) never" \
    "a deny on port 443 only does not shadow an allow whose default ports include 80"
has "findings.yaml:18:13: warning: very wide: allow '*.com' (wide) admits every name under a top-level domain ('com'); allow the organisation's own domain instead" \
    "*.com is very wide"
has "findings.yaml:18:22: warning: very wide: allow '.co.uk' (wide) admits every name under a public suffix ('co.uk'); allow the organisation's own domain instead" \
    ".co.uk is very wide (a well-known public suffix)"
hasnt "'*.example.co.uk' (wide) admits" "*.example.co.uk is not very wide"
has "findings.yaml:20:13: warning: very wide: allow '*' (everything) admits any name: this is not an allow-list; name the destinations instead" \
    "* is very wide"
has "1 file, 14 rules, 0 errors, 6 warnings" "the summary counts the warnings"
show

cat > denyall.yaml <<'EOF'
allow:
  - hosts: ["api.example.com"]
deny:
  - hosts: ["*"]
EOF
run check denyall.yaml
has "denyall.yaml:2:13: warning: shadowed: allow 'api.example.com' (allow[0]) never allows anything: deny '*' at denyall.yaml:4 (deny[0]) covers it on all its ports and deny rules win" \
    "deny * shadows every allow rule"

# libpsl is egressctl's alone: the daemon keeps its five libraries.
[ -x "$EGRESSD" ] && ldd "$EGRESSD" > ldd-egressd.out 2>&1 && ldd "$EGRESSCTL" > ldd-egressctl.out 2>&1 &&
    grep -q '^[[:space:]]*libpsl\.so' ldd-egressctl.out && ! grep -qi 'psl' ldd-egressd.out
ok $? "egressctl links libpsl; egressd does not (ldd)" || diag "$(cat ldd-egressd.out ldd-egressctl.out)"

# Very wide by the Public Suffix List (libpsl, the publicsuffix package's
# list): a wildcard or leading dot directly over a public suffix, the list's
# private section included, where anyone can publish a name. One level
# below such a suffix, or under a registrable domain, is fine.
cat > suffixes.yaml <<'EOF'
allow:
  - name: pages
    hosts: ["*.github.io", "*.foo.github.io", ".foo.github.io", "github.io"]
  - name: paas
    hosts: ["*.herokuapp.com", "*.s3.amazonaws.com", ".workers.dev"]
  - name: cctld
    hosts: ["*.co.uk", "*.compute.amazonaws.com", "*.example.co.uk"]
  - name: near
    hosts: ["*.atlassian.net", "*.svc.test", "*.bucket.s3.amazonaws.com"]
  - name: tld
    hosts: ["*.test"]
deny:
  - hosts: ["*.workers.dev", ".netlify.app"]
EOF
run check suffixes.yaml
[ $RC -eq 0 ]
ok $? "very wide patterns are warnings: check exits 0" || show
cat > want.txt <<'EOF'
suffixes.yaml:3:13: warning: very wide: allow '*.github.io' (pages) admits every name under a public suffix ('github.io', of the list's private section: anyone can publish a name under it); allow the organisation's own name under it instead
suffixes.yaml:5:13: warning: very wide: allow '*.herokuapp.com' (paas) admits every name under a public suffix ('herokuapp.com', of the list's private section: anyone can publish a name under it); allow the organisation's own name under it instead
suffixes.yaml:5:32: warning: very wide: allow '*.s3.amazonaws.com' (paas) admits every name under a public suffix ('s3.amazonaws.com', of the list's private section: anyone can publish a name under it); allow the organisation's own name under it instead
suffixes.yaml:5:54: warning: very wide: allow '.workers.dev' (paas) admits every name under a public suffix ('workers.dev', of the list's private section: anyone can publish a name under it); allow the organisation's own name under it instead
suffixes.yaml:7:13: warning: very wide: allow '*.co.uk' (cctld) admits every name under a public suffix ('co.uk'); allow the organisation's own domain instead
suffixes.yaml:7:24: warning: very wide: allow '*.compute.amazonaws.com' (cctld) admits every name under a public suffix ('compute.amazonaws.com', of the list's private section: anyone can publish a name under it); allow the organisation's own name under it instead
suffixes.yaml:11:13: warning: very wide: allow '*.test' (tld) admits every name under a top-level domain ('test'); allow the organisation's own domain instead
EOF
diff want.txt run.err > diff.out
ok $? "check: *.github.io, *.herokuapp.com, *.s3.amazonaws.com, .workers.dev, *.co.uk, *.compute.amazonaws.com, *.test are very wide, nothing else" ||
    diag "$(cat diff.out)"
has "1 file, 16 rules, 0 errors, 7 warnings" \
    "check: *.foo.github.io, .foo.github.io, github.io, *.example.co.uk, *.atlassian.net, *.svc.test, *.bucket.s3.amazonaws.com and deny rules are not"

# A wildcard admits names at any depth: over a registrable domain with
# public suffixes below it (amazonaws.com: s3.amazonaws.com and 98 more in
# the package's list) it admits anyone's names under them too, wider than
# *.s3.amazonaws.com above. Count and example follow the list's version.
cat > covers.yaml <<'EOF'
allow:
  - name: aws
    hosts: ["*.amazonaws.com", ".amazonaws.com", "sts.amazonaws.com"]
EOF
run check covers.yaml
[ $RC -eq 0 ]
ok $? "a wildcard over public suffixes is a warning: check exits 0" || show
tail_re=" \\(aws\\) admits every name under [0-9]+ public suffixes below 'amazonaws\\.com' \\(such as '[a-z0-9.-]+\\.amazonaws\\.com': anyone can publish a name under it\\); allow the names the workload needs instead\$"
grep -Eq "^covers.yaml:3:13: warning: very wide: allow '\*\.amazonaws\.com'$tail_re" run.err &&
    grep -Eq "^covers.yaml:3:32: warning: very wide: allow '\.amazonaws\.com'$tail_re" run.err
ok $? "check: *.amazonaws.com and .amazonaws.com admit every name under the public suffixes below amazonaws.com" ||
    diag "$(cat run.err)"
has "1 file, 3 rules, 0 errors, 2 warnings" "check: sts.amazonaws.com, an exact name, is not very wide"
# A .dafsa named alone has no text to search below a name: said once, and
# the wildcard is weighed by its own name (amazonaws.com is no suffix).
if [ -r /usr/share/publicsuffix/public_suffix_list.dafsa ]; then
	EGRESSCTL_PSL_FILE=/usr/share/publicsuffix/public_suffix_list.dafsa \
	    "$EGRESSCTL" check --quiet covers.yaml > run.out 2> run.err
	[ $? -eq 0 ] && grep -qxF "egressctl check: notice: public suffix list: /usr/share/publicsuffix/public_suffix_list.dafsa has no text to search for public suffixes below a wildcard's domain: '*.NAME' is weighed by NAME alone; name the list's .dat in EGRESSCTL_PSL_FILE" run.err &&
	    ! grep -q 'very wide' run.err
	ok $? "EGRESSCTL_PSL_FILE naming a .dafsa: a notice says suffixes below a name cannot be searched" || diag "$(cat run.err)"
fi

# The list can be named: a copy of the package's .dat (the format
# publicsuffix.org publishes) says the same.
cp /usr/share/publicsuffix/public_suffix_list.dat list.dat 2>/dev/null ||
    bail "no /usr/share/publicsuffix/public_suffix_list.dat: install the publicsuffix package"
EGRESSCTL_PSL_FILE=$T/list.dat "$EGRESSCTL" check --quiet suffixes.yaml > run.out 2> run.err
RC=$?
[ $RC -eq 0 ] && diff want.txt run.err > diff.out
ok $? "EGRESSCTL_PSL_FILE: a .dat list gives the same findings" || diag "exit $RC; $(cat diff.out)"

# No list at all: fail closed. Each '*.NAME' and '.NAME' allow rule that
# needs the list is an error (exit 1), said once why; '*', one-label
# suffixes and exact names need no list.
EGRESSCTL_PSL_FILE=$T/no-such-list.dat "$EGRESSCTL" check --quiet suffixes.yaml > run.out 2> run.err
RC=$?
[ $RC -eq 1 ] &&
    head -1 run.err | grep -qxF "egressctl check: no public suffix list: $T/no-such-list.dat: No such file or directory (named by EGRESSCTL_PSL_FILE, so no other list is used): allow rules '*.NAME' and '.NAME' cannot be checked and are errors; install the publicsuffix package" &&
    grep -qxF "suffixes.yaml:3:13: no suffix list: cannot tell whether allow '*.github.io' (pages) admits every name under a public suffix: no public suffix list could be loaded; install the publicsuffix package" run.err &&
    grep -qxF "suffixes.yaml:9:13: no suffix list: cannot tell whether allow '*.atlassian.net' (near) admits every name under a public suffix: no public suffix list could be loaded; install the publicsuffix package" run.err &&
    grep -qxF "suffixes.yaml:11:13: warning: very wide: allow '*.test' (tld) admits every name under a top-level domain ('test'); allow the organisation's own domain instead" run.err &&
    [ "$(grep -c ': no suffix list: ' run.err)" -eq 12 ] && [ ! -s run.out ]
ok $? "no public suffix list: every wildcard that needs one is an error, exit 1" || diag "exit $RC; $(cat run.err)"
"$EGRESSCTL" check suffixes.yaml > /dev/null 2>&1 &&
    EGRESSCTL_PSL_FILE=$T/no-such-list.dat "$EGRESSCTL" check suffixes.yaml 2>&1 |
    tail -1 | grep -qxF "1 file, 16 rules, 12 errors, 1 warning"
ok $? "no public suffix list: the summary counts those errors"
EGRESSCTL_PSL_FILE=$T/no-such-list.dat "$EGRESSCTL" check --quiet good.yaml > run.out 2> run.err
RC=$?
[ $RC -eq 1 ] && grep -qxF "good.yaml:3:31: no suffix list: cannot tell whether allow '*.example.com' (github) admits every name under a public suffix: no public suffix list could be loaded; install the publicsuffix package" run.err
ok $? "no public suffix list: even an ordinary wildcard is not passed unchecked" || diag "exit $RC; $(cat run.err)"
cat > exact.yaml <<'EOF'
allow:
  - hosts: ["api.github.com", "*"]
EOF
EGRESSCTL_PSL_FILE=$T/no-such-list.dat "$EGRESSCTL" check --quiet exact.yaml > run.out 2> run.err
RC=$?
[ $RC -eq 0 ] && ! grep -q "suffix list" run.err
ok $? "no public suffix list: a policy without '*.NAME' or '.NAME' allow rules still checks (exit 0)" || diag "exit $RC; $(cat run.err)"
# A file that is not the list (libpsl reads any text as rules) is refused.
printf 'example.test\n' > not-psl.dat
EGRESSCTL_PSL_FILE=$T/not-psl.dat "$EGRESSCTL" check --quiet suffixes.yaml > run.out 2> run.err
RC=$?
[ $RC -eq 1 ] && head -1 run.err | grep -qxF "egressctl check: no public suffix list: $T/not-psl.dat: not the public suffix list (no ICANN co.uk, or no private github.io) (named by EGRESSCTL_PSL_FILE, so no other list is used): allow rules '*.NAME' and '.NAME' cannot be checked and are errors; install the publicsuffix package"
ok $? "a file that is not the public suffix list is refused, not read as one" || diag "exit $RC; $(cat run.err)"

# Without the publicsuffix package's files, libpsl's builtin list stands in,
# with a notice. A private mount namespace hides the files from egressctl
# alone; skipped where one cannot be made.
if [ -d /usr/share/publicsuffix ] && unshare -rm true 2>/dev/null; then
	unshare -rm sh -c 'mount -t tmpfs none /usr/share/publicsuffix && exec "$0" check --quiet suffixes.yaml' \
	    "$EGRESSCTL" > run.out 2> run.err
	RC=$?
	[ $RC -eq 0 ] &&
	    head -1 run.err | grep -qx "egressctl check: notice: public suffix list: /usr/share/publicsuffix/public_suffix_list.dafsa: No such file or directory; using libpsl's builtin list of [0-9-]* instead: install the publicsuffix package, whose list apt keeps current" &&
	    sed -n 2p run.err | grep -qx "egressctl check: notice: public suffix list: libpsl's builtin list of [0-9-]* has no text to search for public suffixes below a wildcard's domain: '\*.NAME' is weighed by NAME alone; name the list's .dat in EGRESSCTL_PSL_FILE" &&
	    tail -n +3 run.err | diff want.txt - > diff.out
	ok $? "without the package's list: libpsl's builtin one, with two notices (no text to search below a name), and the same findings" ||
	    diag "exit $RC; $(cat run.err)"
else
	ok 0 "without the package's list: libpsl's builtin one # SKIP no private mount namespace (unshare -rm)"
fi

# A directory: its *.yaml/*.yml files in name order, nothing else.
mkdir policy.d
printf 'allow:\n  - hosts: ["b.example.com"]\n' > policy.d/20-b.yaml
printf 'allow:\n  - hosts: ["a.example.com"]\n' > policy.d/10-a.yml
printf 'allow:\n  - hosts: ["c.example.com"]\n' > policy.d/30-c.yaml
printf 'this is not yaml: [\n' > policy.d/README.txt
run check policy.d
[ $RC -eq 0 ]
ok $? "check on a directory exits 0"
[ "$(printf '%s\n' "$STDOUT" | sed -n 's/^\([^:]*\):.*/\1/p' | tr '\n' ' ')" = \
    "policy.d/10-a.yml policy.d/20-b.yaml policy.d/30-c.yaml " ]
ok $? "a directory's files are read in name order, other files skipped"
has "3 files, 3 rules, 0 errors, 0 warnings" "the summary counts the directory's files"
show

# -c CONFIG: the daemon's config, its mode, the files it names.
cat > egressd.yaml <<'EOF'
listeners:
  - {name: tls, address: "127.0.0.1:8443"}
mode: report
policy: {files: [good.yaml, policy.d]}
EOF
run check -c egressd.yaml
[ $RC -eq 0 ]
ok $? "check -c on a good configuration exits 0"
has "good.yaml:3: allow api.github.com (github, native): exactly api.github.com; ports 443, 8443; resolution dns; sources any; mode report; allow_private no; originate_tls no" \
    "check -c: files take the configuration's mode (report)"
has "policy.d/10-a.yml:2: allow a.example.com (allow[0], native): exactly a.example.com; ports default (443 for tls/connect, 80 for http); resolution dns; sources any; mode report; allow_private no; originate_tls no" \
    "check -c reads the directories the configuration names"
has "5 files, 8 rules, 0 errors, 0 warnings" "check -c counts the configuration file and every policy file"
show

printf 'listeners:\n  - {address: "127.0.0.1:8443"}\npolicy: {files: [good.yaml]}\nlogs: {}\n' > badconf.yaml
run check -c badconf.yaml
[ $RC -eq 1 ]
ok $? "check -c on a bad configuration exits 1"
has "badconf.yaml:4:1: configuration: unknown key 'logs' (expected one of: listeners, workers, dns, policy, log, timeouts, max_connections, mode, namespaces, admin, drain, user, group, redirects, upstream_tls, refuse_ech, relay_splice)" \
    "the configuration's error is printed as file:line:col: message"
has "1 file, 1 error, 0 warnings: the configuration does not load" "and the summary says so"

printf 'listeners:\n  - {address: "127.0.0.1:8443"}\npolicy: {files: [broken.yaml]}\n' > brokenpol.yaml
run check -c brokenpol.yaml
[ $RC -eq 1 ] && printf '%s\n' "$OUT" | grep -qxF "broken.yaml:2:32: bad host pattern '*foo.example.com': a wildcard must be a whole leftmost label: *.foo.example.com"
ok $? "check -c reports the policy file's errors at their place, exit 1"

# Istio resources: origin, namespace, resolution and endpoints as read, and
# namespace scoping with and without the daemon's namespaces: map.
cat > mesh.yaml <<'EOF'
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: github
  namespace: payments
spec:
  hosts: ["api.github.com"]
  ports:
    - {number: 443, name: tls, protocol: TLS}
  resolution: DNS
  exportTo: ["."]
---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: static-db
  namespace: web
spec:
  hosts: ["db.corp.test"]
  ports:
    - {number: 5432, name: tcp, protocol: TCP}
  resolution: STATIC
  endpoints:
    - address: 192.0.2.10
    - address: 192.0.2.11
EOF
run check mesh.yaml
[ $RC -eq 0 ]
ok $? "check on Istio resources exits 0"
has "mesh.yaml:7: allow api.github.com (github, ServiceEntry, namespace payments): exactly api.github.com; ports 443; resolution dns; sources any; mode enforce; allow_private no; originate_tls no" \
    "a ServiceEntry rule shows its origin and namespace"
has "mesh.yaml:19: allow db.corp.test (static-db, ServiceEntry, namespace web): exactly db.corp.test; ports 5432; resolution static; endpoints 192.0.2.10, 192.0.2.11; sources any; mode enforce; allow_private no; originate_tls no" \
    "a STATIC ServiceEntry shows its resolution and endpoints"
printf '%s\n' "$ERR" | grep -q "^mesh.yaml:11:13: warning: exportTo cannot be enforced"
ok $? "without a namespaces: map, exportTo scoping is a warning at its place"
has "mesh.yaml:7:11: notice: ServiceEntry github is in namespace payments: checked without -c CONFIG, namespace scoping is read as by a daemon with no namespaces: map (every client); check with -c CONFIG to use the daemon's map" \
    "without -c, a notice says no namespaces: map was used"
show
cat > mesh-egressd.yaml <<'EOF'
listeners:
  - {address: "127.0.0.1:8443"}
policy: {files: [mesh.yaml]}
namespaces:
  payments: ["10.8.0.0/16"]
EOF
run check -c mesh-egressd.yaml
[ $RC -eq 0 ] && [ -z "$ERR" ]
ok $? "check -c with the namespaces: map: no scoping warning"
has "mesh.yaml:7: allow api.github.com (github, ServiceEntry, namespace payments): exactly api.github.com; ports 443; resolution dns; sources 10.8.0.0/16; mode enforce; allow_private no; originate_tls no" \
    "check -c: exportTo [.] becomes the namespace's client range"
run explain -c mesh-egressd.yaml --src 10.9.0.1 api.github.com
[ $RC -eq 1 ] && printf '%s\n' "$OUT" | grep -qxF "  mesh.yaml:7: allow api.github.com (github, ServiceEntry); ports 443: source 10.9.0.1 is not in its sources (10.8.0.0/16)"
ok $? "explain: a client outside the ServiceEntry's namespace is not admitted, and why"
run explain -c mesh-egressd.yaml --src 10.8.0.1 api.github.com
[ $RC -eq 0 ]
ok $? "explain: a client in the namespace is admitted"
show

# Usage errors: exit 2.
run check
[ $RC -eq 2 ]
ok $? "check with nothing to check is a usage error (2)"
run check -c egressd.yaml good.yaml
[ $RC -eq 2 ]
ok $? "check with both -c and files is a usage error (2)"
run check --bogus good.yaml
[ $RC -eq 2 ]
ok $? "an unknown option is a usage error (2)"
run frobnicate
[ $RC -eq 2 ] && printf '%s\n' "$ERR" | grep -qF "unknown command 'frobnicate'"
ok $? "an unknown command is a usage error (2) naming it"
run
[ $RC -eq 2 ]
ok $? "no command is a usage error (2)"
run --version
[ $RC -eq 0 ] && printf '%s\n' "$STDOUT" | grep -Eqx 'egressctl [0-9]+\.[0-9]+\.[0-9]+'
ok $? "--version prints 'egressctl X.Y.Z'"
run --help
[ $RC -eq 0 ] && printf '%s\n' "$STDOUT" | grep -q "egressctl explain -c CONFIG"
ok $? "--help shows both commands"

# -------------------------------------------------------------- explain
cat > ex.yaml <<'EOF'
allow:
  - name: github
    hosts: ["api.github.com"]
    ports: [443]
  - name: example
    hosts: ["*.example.com"]
  - name: paste
    hosts: [".pastebin.com"]
  - name: mirror
    hosts: ["mirror.corp.test"]
    sources: ["10.0.0.0/8"]
deny:
  - name: no-paste
    hosts: ["*.pastebin.com"]
EOF
cat > ex-egressd.yaml <<'EOF'
listeners:
  - {name: tls, address: "127.0.0.1:8443"}
policy: {files: [ex.yaml]}
EOF

run explain -c ex-egressd.yaml api.github.com
[ $RC -eq 0 ]
ok $? "explain: an allowed name exits 0"
has "verdict: allow" "explain prints the verdict"
has "reason: allowed" "explain prints the reason"
has "rule: ex.yaml:3: allow api.github.com (github, native); ports 443" \
    "explain names the deciding rule with file:line, name, pattern, origin"
show

run explain -c ex-egressd.yaml API.GitHub.COM.
[ $RC -eq 0 ] && printf '%s\n' "$OUT" | grep -qxF "name: api.github.com"
ok $? "explain normalises the name (lower case, trailing dot) as the gateway does"

run explain -c ex-egressd.yaml a.b.example.com
[ $RC -eq 0 ] && printf '%s\n' "$OUT" | grep -qxF "rule: ex.yaml:6: allow *.example.com (example, native); ports default (443 for tls/connect, 80 for http)"
ok $? "*.example.com admits a.b.example.com (any depth)"
run explain -c ex-egressd.yaml example.com
[ $RC -eq 1 ]
ok $? "*.example.com does not admit the apex example.com (exit 1)"
has "reason: not_allowed" "the apex is not_allowed"
has "rule: none (no rule admits example.com)" "and no rule decided"

run explain -c ex-egressd.yaml www.pastebin.com
[ $RC -eq 1 ]
ok $? "a name matched by a deny rule is denied (exit 1)"
has "reason: denied_by_rule" "reason denied_by_rule"
has "rule: ex.yaml:14: deny *.pastebin.com (no-paste, native); ports all" "the deny rule decided"
has "  ex.yaml:8: allow .pastebin.com (paste, native); ports default (443 for tls/connect, 80 for http): deny wins" \
    "the allow rule that also matches is listed: deny wins"
show
run explain -c ex-egressd.yaml pastebin.com
[ $RC -eq 0 ] && printf '%s\n' "$OUT" | grep -qxF "rule: ex.yaml:8: allow .pastebin.com (paste, native); ports default (443 for tls/connect, 80 for http)"
ok $? "the apex pastebin.com is allowed by .pastebin.com (the deny *. does not cover it)"

run explain -c ex-egressd.yaml --port 8443 api.github.com
[ $RC -eq 1 ]
ok $? "a name allowed on other ports only is denied (exit 1)"
has "reason: port_not_allowed" "reason port_not_allowed"
has "port: 8443 (tls)" "explain shows the port asked"
run explain -c ex-egressd.yaml api.github.com:8443
[ $RC -eq 1 ] && printf '%s\n' "$OUT" | grep -qxF "reason: port_not_allowed"
ok $? "NAME:PORT is the same as --port"
run explain -c ex-egressd.yaml --port 8443 www.example.com
[ $RC -eq 1 ] && printf '%s\n' "$OUT" | grep -qxF "reason: port_not_allowed"
ok $? "a rule without ports does not admit 8443"
has "rule: ex.yaml:6: allow *.example.com (example, native); ports default (443 for tls/connect, 80 for http)" \
    "port_not_allowed names the rule that admits the name but not the port"
run explain -c ex-egressd.yaml --proto http www.example.com
[ $RC -eq 0 ] && printf '%s\n' "$OUT" | grep -qxF "port: 80 (http)"
ok $? "--proto http defaults to port 80, which a rule without ports admits"

run explain -c ex-egressd.yaml --src 10.1.2.3 mirror.corp.test
[ $RC -eq 0 ] && printf '%s\n' "$OUT" | grep -qxF "rule: ex.yaml:10: allow mirror.corp.test (mirror, native); ports default (443 for tls/connect, 80 for http)"
ok $? "--src inside the rule's sources: allowed by it"
run explain -c ex-egressd.yaml --src 192.0.2.1 mirror.corp.test
[ $RC -eq 1 ]
ok $? "--src outside the rule's sources: denied (exit 1)"
has "  ex.yaml:10: allow mirror.corp.test (mirror, native); ports default (443 for tls/connect, 80 for http): source 192.0.2.1 is not in its sources (10.0.0.0/8)" \
    "and the rule is listed with why it did not apply"
run explain -c ex-egressd.yaml mirror.corp.test
has "  ex.yaml:10: allow mirror.corp.test (mirror, native); ports default (443 for tls/connect, 80 for http): applies only to sources 10.0.0.0/8 and no --src was given" \
    "without --src a rule with sources does not apply, and explain says so"

# Report mode: still a deny by policy (exit 1), and explain says the daemon lets it through.
sed 's/^policy:/mode: report\npolicy:/' ex-egressd.yaml > report.yaml
run explain -c report.yaml unknown.test
[ $RC -eq 1 ]
ok $? "report mode: a name no rule admits is still a deny (exit 1)"
has "would_deny: report mode: egressd lets this connection through and logs it as a deny with \"would_deny\": true" \
    "report mode: explain shows would_deny"
run explain -c ex-egressd.yaml unknown.test
hasnt "would_deny" "enforce mode: no would_deny"

# Report-mode rules (a file with "mode: report") never admit: they only mark
# what the enforced rules admit as would_deny, with their rule and reason.
cat > ex-report.yaml <<'EOF'
mode: report
deny:
  - name: trial-deny
    hosts: ["api.github.com"]
allow:
  - name: trial-allow
    hosts: ["new.corp.test"]
EOF
cat > ex-trial.yaml <<'EOF'
listeners:
  - {name: tls, address: "127.0.0.1:8443"}
policy: {files: [ex.yaml, ex-report.yaml]}
EOF
run explain -c ex-trial.yaml api.github.com
[ $RC -eq 1 ]
ok $? "a report-mode deny of an admitted name: still exit 1" || show
has "verdict: allow" "the enforced verdict is allow: egressd relays it"
has "would_deny_reason: denied_by_rule" "report mode's reason"
has "would_deny_rule: ex-report.yaml:4: deny api.github.com (trial-deny, native); ports all" \
    "report mode's rule"
has "admitted_by: ex.yaml:3: allow api.github.com (github, native); ports 443: its settings apply" \
    "the admitting rule, whose settings apply"
has "log: event deny, reason denied_by_rule, would_deny true, rule ex-report.yaml:4 (trial-deny)" \
    "what egressd's line says: the report rule and reason"
run explain -c ex-trial.yaml new.corp.test
[ $RC -eq 1 ] && printf '%s\n' "$OUT" | grep -qxF "reason: not_allowed" &&
    printf '%s\n' "$OUT" | grep -qxF "admitted_by: none (refused)"
ok $? "a report-mode allow rule never admits (enforced policy): not_allowed" || show
has "  ex-report.yaml:7: allow new.corp.test (trial-allow, native); ports default (443 for tls/connect, 80 for http): report mode: a report-mode rule never admits; it can only add would_deny" \
    "and explain says why it did not"
run explain -c ex-trial.yaml --format json api.github.com
[ $RC -eq 1 ] && python3 - run.out <<'EOF'
import json, sys
o = json.load(open(sys.argv[1]))
assert (o["verdict"], o["reason"], o["would_deny"]) == ("allow", "allowed", True), o
assert (o["rule"]["file"], o["rule"]["line"]) == ("ex.yaml", 3), o
assert o["would_deny_reason"] == "denied_by_rule", o
w = o["would_deny_rule"]
assert (w["file"], w["line"], w["name"], w["mode"]) == ("ex-report.yaml", 4, "trial-deny", "report"), w
assert (o["admitted_by"]["file"], o["admitted_by"]["line"]) == ("ex.yaml", 3), o
assert o["log"] == {"event": "deny", "reason": "denied_by_rule", "would_deny": True,
                    "rule": "ex-report.yaml:4", "rule_name": "trial-deny"}, o["log"]
assert (o["listener"], o["from"], o["ech"], o["detail"]) == ("tls", "sni", False, None), o
EOF
ok $? "--format json: would_deny_reason, would_deny_rule, admitted_by and log" || show
run explain -c ex-egressd.yaml --format json api.github.com
[ $RC -eq 0 ] && python3 - run.out <<'EOF'
import json, sys
o = json.load(open(sys.argv[1]))
assert (o["verdict"], o["would_deny"], o["would_deny_reason"], o["would_deny_rule"]) == \
    ("allow", False, None, None), o
assert o["admitted_by"]["name"] == "github" and o["log"]["event"] == "allow", o
EOF
ok $? "--format json, enforce: no would_deny, the admitting rule" || show

# The listener and ECH: what the bytes refuse before the policy is asked.
run explain -c ex-egressd.yaml --proto connect --listener http api.github.com
[ $RC -eq 1 ] && printf '%s\n' "$OUT" | grep -qxF "reason: bad_http" &&
    printf '%s\n' "$OUT" | grep -qxF "detail: CONNECT is for a connect listener"
ok $? "--listener http --proto connect: bad_http, as an http listener answers CONNECT" || show
run explain -c ex-egressd.yaml --proto connect api.github.com
[ $RC -eq 0 ] && printf '%s\n' "$OUT" | grep -qxF "listener: connect (the name from authority)"
ok $? "--proto connect: on a connect listener by default, allowed" || show
run explain -c ex-egressd.yaml --listener transparent --proto connect api.github.com
[ $RC -eq 1 ] && printf '%s\n' "$OUT" | grep -qxF "reason: bad_http"
ok $? "--listener transparent --proto connect: bad_http" || show
run explain -c ex-egressd.yaml --ech api.github.com
[ $RC -eq 0 ] && printf '%s\n' "$OUT" | grep -qxF "listener: tls (the name from sni); the ClientHello offers ECH"
ok $? "--ech without refuse_ech: decided on the (outer) name" || show
sed 's/^policy:/refuse_ech: true\npolicy:/' ex-egressd.yaml > ex-ech.yaml
run explain -c ex-ech.yaml --ech api.github.com
[ $RC -eq 1 ] && printf '%s\n' "$OUT" | grep -qxF "reason: ech_refused" &&
    printf '%s\n' "$OUT" | grep -qxF "rule: none (refused before the policy is asked)"
ok $? "--ech with refuse_ech: true: ech_refused, before the policy" || show
run explain -c ex-ech.yaml api.github.com
[ $RC -eq 0 ]
ok $? "refuse_ech: true, no ECH: allowed" || show
for bad in "--listener tls --proto http" "--listener connect --proto tls" \
    "--ech --proto http" "--listener quic"; do
	# shellcheck disable=SC2086
	run explain -c ex-egressd.yaml $bad api.github.com
	[ $RC -eq 2 ] && [ -n "$ERR" ] && [ -z "$STDOUT" ]
	ok $? "explain $bad: a combination no listener meets is exit 2" || show
done

run explain -c ex-egressd.yaml --format json --src 192.0.2.1 www.pastebin.com
[ $RC -eq 1 ] && python3 - run.out <<'EOF'
import json, sys
o = json.load(open(sys.argv[1]))
assert o["name"] == "www.pastebin.com" and o["port"] == 443 and o["proto"] == "tls"
assert o["src"] == "192.0.2.1" and o["verdict"] == "deny" and o["would_deny"] is False
assert o["reason"] == "denied_by_rule"
r = o["rule"]
assert (r["file"], r["line"], r["name"], r["pattern"], r["origin"], r["ports"]) == \
    ("ex.yaml", 14, "no-paste", "*.pastebin.com", "native", None), r
assert [(x["pattern"], x["why"]) for x in o["others"]] == [(".pastebin.com", "deny wins")], o["others"]
EOF
ok $? "--format json prints one JSON object with the verdict, rule and other matches"

# What explain cannot use: exit 2.
for bad in '*.example.com' '1.2.3.4' 'a..b' 'bad name'; do
	run explain -c ex-egressd.yaml "$bad"
	[ $RC -eq 2 ] && [ -n "$ERR" ] && [ -z "$STDOUT" ]
	ok $? "explain '$bad': an invalid name is exit 2 with a message"
done
run explain -c ex-egressd.yaml '*.example.com'
has "egressctl explain: '*.example.com' is a pattern, not a name: give a name a client connects to, such as a.example.com" \
    "a pattern given as a name is explained"
run explain -c badconf.yaml api.github.com
[ $RC -eq 2 ]
ok $? "explain with a broken configuration exits 2"
has "badconf.yaml:4:1: configuration: unknown key 'logs' (expected one of: listeners, workers, dns, policy, log, timeouts, max_connections, mode, namespaces, admin, drain, user, group, redirects, upstream_tls, refuse_ech, relay_splice)" \
    "and prints the configuration's error as file:line:col"
run explain -c brokenpol.yaml api.github.com
[ $RC -eq 2 ] && printf '%s\n' "$ERR" | grep -q "^broken.yaml:2:32: "
ok $? "explain with a policy that does not load exits 2 with its errors"
run explain -c missing.yaml api.github.com
[ $RC -eq 2 ]
ok $? "explain with a missing configuration exits 2"
run explain api.github.com
[ $RC -eq 2 ]
ok $? "explain without -c is a usage error (2)"
run explain -c ex-egressd.yaml a.example.com b.example.com
[ $RC -eq 2 ]
ok $? "explain with two names is a usage error (2)"
run explain -c ex-egressd.yaml --port 0 api.github.com
[ $RC -eq 2 ]
ok $? "explain --port 0 is a usage error (2)"
run explain -c ex-egressd.yaml --src nowhere api.github.com
[ $RC -eq 2 ]
ok $? "explain --src that is not an address is a usage error (2)"
run explain -c ex-egressd.yaml --proto quic api.github.com
[ $RC -eq 2 ]
ok $? "explain --proto quic is a usage error (2)"

# -------------------------------------------------------------- reasons
run reasons --format json
[ $RC -eq 0 ] && python3 - run.out <<'EOF'
import json, sys
r = {x["name"]: x for x in json.load(open(sys.argv[1]))["reasons"]}
assert (r["allowed"]["event"], r["allowed"]["tls_alert"], r["allowed"]["http_status"]) == \
    ("allow", None, None), r["allowed"]
assert (r["not_allowed"]["event"], r["not_allowed"]["tls_alert"],
        r["not_allowed"]["tls_alert_name"], r["not_allowed"]["http_status"]) == \
    ("deny", 49, "access_denied", 403), r["not_allowed"]
assert r["ech_refused"]["event"] == "deny" and r["dns_timeout"]["http_status"] == 504
assert all(x["doc"] for x in r.values())
EOF
ok $? "reasons --format json: every reason with its event, alert, status and doc" || show
run reasons --format tsv
[ $RC -eq 0 ] && [ "$(printf '%s\n' "$STDOUT" | head -1)" = "$(printf 'reason\tevent\ttls_alert\thttp_status\tdoc')" ] &&
    printf '%s\n' "$STDOUT" | grep -qxF "$(printf 'not_allowed\tdeny\t49\t403\tno rule admits the name')"
ok $? "reasons --format tsv: a header, then one line per reason" || show
run reasons
[ $RC -eq 0 ] && printf '%s\n' "$STDOUT" | grep -q "^not_allowed  *deny  *access_denied (49)  *403  *no rule admits the name$"
ok $? "reasons: a table" || show
run reasons --format yaml
[ $RC -eq 2 ]
ok $? "reasons --format yaml: exit 2"

finish
