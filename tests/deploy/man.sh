#!/bin/sh
# tests/deploy/man.sh: the man pages (man/) and the bash completion
# (contrib/bash-completion/egressctl) are well formed and say what the
# programs do.
#
#   (a) every page: `mandoc -T lint` prints nothing but cross references to
#       pages its database does not hold (egressctl(1) before it is
#       installed); groff through `man --warnings`, as lintian runs it, prints
#       nothing (skipped when man-db or groff is not installed);
#   (b) egressd(8) documents every option of `egressd --help`;
#   (c) egressctl(1) has a subsection for every command of `egressctl
#       --help`, whose options are exactly those of `egressctl CMD --help`,
#       and each is in the command's synopsis;
#   (d) egressd.yaml(5) documents every key the configuration parser and the
#       policy loader accept, under its parent: the lists come from the
#       programs' own "unknown key ... (expected one of: ...)" messages;
#   (e) the bash completion completes every command, every option, and the
#       values of every option whose usage lists them (`--format text|json`).
#
# Needs mandoc (Debian package mandoc) and python3.
. "$(dirname "$0")/../integration/lib.sh"

: "${EGRESSCTL:=$top_builddir/egressctl}"
need mandoc python3 bash
[ -x "$EGRESSD" ] || bail "no egressd binary at $EGRESSD (set EGRESSD)"
[ -x "$EGRESSCTL" ] || bail "no egressctl binary at $EGRESSCTL (set EGRESSCTL)"

MAN="$top_srcdir/man"
COMPLETION="$top_srcdir/contrib/bash-completion/egressctl"

skip() {
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

# ---- (a) well-formed --------------------------------------------------------
for page in egressd.8 egressctl.1 egressd.yaml.5; do
	[ -f "$MAN/$page" ]
	ok $? "man/$page exists"
done
for f in "$MAN"/*.[1-9]; do
	p=man/${f##*/}
	# Exit status 0 or 1 (style messages only) is read from the output.
	mandoc -T lint "$f" >"$T/lint.out" 2>&1
	grep -v -e 'STYLE: referenced manual not found' -e 'outdated mandoc.db' \
		"$T/lint.out" >"$T/lint.bad"
	[ ! -s "$T/lint.bad" ]
	ok $? "$p: mandoc -T lint: no error, warning or style message" ||
		diag "$(cat "$T/lint.bad")"
	# The header names the file: .Dt NAME SECTION.
	name=${f##*/}
	want="$(echo "${name%.*}" | tr '[:lower:]' '[:upper:]') ${name##*.}"
	grep -qx "\.Dt $want" "$f"
	ok $? "$p: .Dt $want"
	if command -v man >/dev/null 2>&1 && command -v groff >/dev/null 2>&1; then
		LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
			man --warnings -E UTF-8 -l -Tutf8 -Z "$f" 2>"$T/groff.out" >/dev/null
		[ $? -eq 0 ] && [ ! -s "$T/groff.out" ]
		ok $? "$p: man --warnings (groff) prints no warning" ||
			diag "$(cat "$T/groff.out")"
	else
		skip "$p: man --warnings (groff)" "man-db or groff is not installed"
	fi
done

# ---- (b), (c), (d): the pages against the programs --------------------------
"$EGRESSD" --help >"$T/egressd.help" 2>&1
ok $? "egressd --help exits 0"
"$EGRESSCTL" --help >"$T/egressctl.help" 2>&1
ok $? "egressctl --help exits 0"
cmds=$(sed -n 's/^ *\(usage: \)\{0,1\}egressctl \([a-z][a-z]*\) .*/\2/p' "$T/egressctl.help" | sort -u)
[ -n "$cmds" ]
ok $? "egressctl --help names its commands ($(echo $cmds))"
for c in $cmds; do
	"$EGRESSCTL" "$c" --help >"$T/cmd.$c.help" 2>&1
	ok $? "egressctl $c --help exits 0"
done

# The "unknown key" messages list what each mapping accepts.
mkdir -p "$T/keys"
keys() {
	# keys NAME YAML PROGRAM...: the accepted keys of the mapping YAML puts a
	# bad key into, one line "NAME key key ...".
	_n=$1 _y=$2
	shift 2
	printf '%s\n' "$_y" >"$T/keys/$_n.yaml"
	printf '%s %s\n' "$_n" "$("$@" "$T/keys/$_n.yaml" 2>&1 |
		sed -n "s/.*unknown key 'zz' (expected one of: \(.*\))\$/\1/p" | head -1 | tr -d ',')"
}
{
	keys config 'zz: 1' "$EGRESSD" -t -c
	keys listeners 'listeners: [{zz: 1}]' "$EGRESSD" -t -c
	for s in dns policy log redirects upstream_tls timeouts drain admin; do
		keys "$s" "$s: {zz: 1}" "$EGRESSD" -t -c
	done
	keys policyfile 'zz: 1' "$EGRESSCTL" check
	keys allow 'allow: [{zz: 1, hosts: [a.example]}]' "$EGRESSCTL" check
	keys deny 'deny: [{zz: 1, hosts: [a.example]}]' "$EGRESSCTL" check
} >"$T/keys.txt"

python3 - "$MAN" "$T" "$cmds" >"$T/checks.out" <<'EOF'
import re, sys

man, tmp, cmds = sys.argv[1], sys.argv[2], sys.argv[3].split()

def read(p):
    with open(p) as f:
        return f.read()

def help_opts(text):
    """The options an --help lists: lines that start with blanks, then -x,
    --long or both."""
    opts = []
    for line in text.splitlines():
        m = re.match(r"\s+(-[A-Za-z0-9])?(?:,\s*)?(--[a-z][a-z0-9-]*)?(?=\s|$)", line)
        if m and (m.group(1) or m.group(2)):
            opts.append((m.group(1), m.group(2)))
    return opts

def fl_opts(lines):
    """The options named by .It lines: Fl x, Fl \\-long."""
    found = set()
    for line in lines:
        if line.startswith(".It"):
            for f in re.findall(r"\bFl\s+(\\-[a-z][a-z0-9-]*|[A-Za-z0-9])\b", line):
                found.add("-" + f.replace("\\-", "-"))
    return found

def check(cond, desc, diag=None):
    print(("PASS " if cond else "FAIL ") + desc)
    if not cond and diag:
        print("DIAG " + diag)

# (b) egressd(8)
page = read(man + "/egressd.8").splitlines()
documented = fl_opts(page)
for short, long in help_opts(read(tmp + "/egressd.help")):
    names = [o for o in (short, long) if o]
    check(all(o in documented for o in names),
          "egressd(8) documents %s" % ", ".join(names),
          "documented: %s" % " ".join(sorted(documented)))

# (c) egressctl(1): one subsection per command, its options exactly the
# command's --help options (but -h/--help, said once for all).
page = read(man + "/egressctl.1").splitlines()
sections = {}
cur = None
for line in page:
    if line.startswith(".Ss ") or line.startswith(".Sh "):
        cur = line[4:].strip() if line.startswith(".Ss ") else None
        if cur:
            sections[cur] = []
    elif cur:
        sections[cur].append(line)
synopsis = {}
lines = page[page.index(".Sh SYNOPSIS") + 1:page.index(".Sh DESCRIPTION")]
for i, line in enumerate(lines):
    if line == ".Nm" and i + 1 < len(lines) and lines[i + 1].startswith(".Cm "):
        c = lines[i + 1][4:].strip()
        body = []
        for l in lines[i + 2:]:
            if l == ".Nm":
                break
            body.append(l)
        synopsis.setdefault(c, []).extend(body)
for c in cmds:
    check(c in sections, "egressctl(1) has a subsection for '%s'" % c)
    check(c in synopsis, "egressctl(1) has '%s' in its synopsis" % c)
    if c not in sections:
        continue
    want = set()
    pairs = [p for p in help_opts(read("%s/cmd.%s.help" % (tmp, c))) if p[1] != "--help"]
    for p in pairs:
        want.update(o for o in p if o)
    have = fl_opts(sections[c])
    check(want == have, "egressctl(1) %s: the options of 'egressctl %s --help' (%s)"
          % (c, c, " ".join(sorted(want))),
          "missing: %s; not in --help: %s" % (" ".join(sorted(want - have)) or "none",
                                              " ".join(sorted(have - want)) or "none"))
    syn = fl_opts([".It " + l for l in synopsis.get(c, [])])
    missing = [p for p in pairs if not any(o in syn for o in p if o)]
    check(not missing, "egressctl(1) %s: every option in the synopsis" % c,
          "missing: %s" % " ".join(p[1] or p[0] for p in missing))

# (d) egressd.yaml(5): every key under its parent. Nesting follows .Bl/.El.
page = read(man + "/egressd.yaml.5").splitlines()
tree = {}          # section -> {top key -> set of keys one level down}
sec, depth, top = None, 0, {}
for line in page:
    if line.startswith(".Sh "):
        sec = line[4:].strip()
        tree.setdefault(sec, {})
        depth = 0
    elif line.startswith(".Bl"):
        depth += 1
    elif line.startswith(".El"):
        depth -= 1
    elif line.startswith(".It") and sec:
        names = re.findall(r"\bIc\s+([a-z_]+)", line)
        if depth == 1:
            for n in names:
                tree[sec].setdefault(n, set())
            top[sec] = names
        elif depth == 2:
            for t in top.get(sec, []):
                tree[sec][t].update(names)
        elif depth == 3 and sec == "POLICY FILES":
            # rules: one level below allow/deny
            for t in top.get(sec, []):
                tree[sec][t].update(names)
accepted = {}
for line in read(tmp + "/keys.txt").splitlines():
    name, *ks = line.split()
    accepted[name] = ks
    check(len(ks) > 0, "the programs list the keys of '%s'" % name)
cfg = tree.get("CONFIGURATION KEYS", {})
pol = tree.get("POLICY FILES", {})
for k in accepted.get("config", []):
    check(k in cfg, "egressd.yaml(5) documents the key '%s'" % k)
for parent in ("listeners", "dns", "policy", "log", "redirects", "upstream_tls",
               "timeouts", "drain", "admin"):
    for k in accepted.get(parent, []):
        check(k in cfg.get(parent, set()),
              "egressd.yaml(5) documents '%s.%s'" % (parent, k))
for k in accepted.get("policyfile", []):
    check(k in pol, "egressd.yaml(5) documents the policy file key '%s'" % k)
for parent in ("allow", "deny"):
    for k in accepted.get(parent, []):
        check(k in pol.get(parent, set()),
              "egressd.yaml(5) documents the %s rule key '%s'" % (parent, k))
EOF
rc=$?
# Not in a pipe: report's ok calls must count in this shell.
report <"$T/checks.out"
ok $rc "the page checks ran to the end"

# ---- (e) bash completion --------------------------------------------------
[ -f "$COMPLETION" ]
ok $? "contrib/bash-completion/egressctl exists"
bash -n "$COMPLETION"
ok $? "the completion is valid bash"
BASH_COMPLETION=/usr/share/bash-completion/bash_completion
if [ -f "$BASH_COMPLETION" ]; then
	diag "completing with bash-completion's helpers ($BASH_COMPLETION)"
else
	diag "bash-completion is not installed: completing with the script's fallback"
	BASH_COMPLETION=
fi
# complete WORD...: what completing the last WORD of "egressctl WORD..."
# offers, one per line.
cat >"$T/complete.bash" <<'EOF'
[ -n "$BASH_COMPLETION" ] && . "$BASH_COMPLETION"
. "$COMPLETION"
cd "$T" || exit 1
COMP_WORDS=(egressctl "$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
COMPREPLY=()
_egressctl egressctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
EOF
complete() {
	BASH_COMPLETION=$BASH_COMPLETION COMPLETION=$COMPLETION T=$T \
		bash "$T/complete.bash" "$@" 2>&1 | sort
}
# offers WANTED... -- WORD...: every WANTED is among what WORD... completes to.
offers() {
	_want=""
	while [ "$1" != "--" ]; do
		_want="$_want $1"
		shift
	done
	shift
	complete "$@" >"$T/offered"
	_missing=""
	for w in $_want; do
		grep -qxF -- "$w" "$T/offered" || _missing="$_missing $w"
	done
	[ -z "$_missing" ] || { diag "missing:$_missing; offered: $(echo $(cat "$T/offered"))"; return 1; }
}

offers $cmds -- ''
ok $? "egressctl <TAB> offers every command"
for c in $cmds; do
	opts=$(sed -n 's/^ *\(-[A-Za-z0-9]\)\{0,1\},\{0,1\} *\(--[a-z][a-z0-9-]*\).*/\1 \2/p' "$T/cmd.$c.help")
	offers $opts -- "$c" -
	ok $? "egressctl $c -<TAB> offers every option of its --help ($(echo $opts))"
	# [--format text|json], [--proto tls|http|connect]: the values too.
	grep -o '\[--[a-z-]* [A-Za-z]*\(|[A-Za-z]*\)\{1,\}\]' "$T/cmd.$c.help" |
		tr -d '[]' | sort -u >"$T/values.$c"
	while read -r opt values; do
		# shellcheck disable=SC2046
		offers $(echo "$values" | tr '|' ' ') -- "$c" "$opt" ''
		ok $? "egressctl $c $opt <TAB> offers $values"
	done <"$T/values.$c"
done
: >"$T/policy.yaml"
offers policy.yaml -- check ''
ok $? "egressctl check <TAB> offers policy files"

finish
