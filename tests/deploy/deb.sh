#!/bin/sh
# tests/deploy/deb.sh: debian/ builds a package that installs a working
# egressd.
#
#   (a) debian/changelog's upstream version is configure.ac's AC_INIT
#       version;
#   (b) `dpkg-buildpackage -us -uc -b` builds egressd_*.deb from a copy of the
#       source tree (the git work tree's files, tracked and untracked but not
#       ignored; outside git, what `make distdir` distributes), so the checkout
#       and its build outputs are never touched;
#   (c) lintian on the .deb reports no error (warnings are shown);
#   (d) the package holds the programs, the systemd unit (the one in
#       deploy/systemd/), the example configuration as conffiles, the three
#       man pages and the bash completion; it depends on procps and
#       publicsuffix (the list egressctl reads with libpsl, which egressd
#       does not link); its postinst leaves the unit disabled on a new
#       installation;
#   (e) unpacked into a scratch root with `dpkg -x` (nothing is installed on
#       this machine): the unit's commands exist there, the packaged egressd
#       says "configuration OK" on the packaged configuration, egressctl
#       check accepts it, and the packaged man pages are man/'s and pass
#       `mandoc -T lint -W warning`.
#
# Needs dpkg-dev, debhelper, bash-completion (dh_bash-completion), lintian,
# mandoc, python3 and the build dependencies in debian/control. Not root and
# without the tools: skipped (the build needs no root, so a developer who has
# them runs it too). As root, as in CI, a missing tool is a failure.
# The package build compiles egressd once: a minute or two.
. "$(dirname "$0")/../integration/lib.sh"

TOOLS="dpkg-buildpackage dpkg-deb dpkg-parsechangelog dh dh_autoreconf dh_bash-completion lintian mandoc python3 readelf"
if [ "$(id -u)" != 0 ]; then
	for t in $TOOLS; do
		command -v "$t" >/dev/null 2>&1 || {
			echo "1..0 # SKIP $t is not installed (and not root: CI, as root, requires it)"
			exit 0
		}
	done
fi
need $TOOLS

SRC="$top_srcdir"
arch=$(dpkg --print-architecture)

# ---- (a) versions -----------------------------------------------------------
upstream=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' "$SRC/configure.ac")
debver=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
[ -n "$upstream" ] && [ "${debver%-*}" = "$upstream" ]
ok $? "debian/changelog's version $debver is configure.ac's $upstream" ||
	diag "add a debian/changelog entry (dch -v $upstream-1) when AC_INIT's version changes"

# ---- (b) build --------------------------------------------------------------
B="$T/build/egressd-$upstream"
mkdir -p "$B"
top=$(git -C "$SRC" rev-parse --show-toplevel 2>/dev/null)
if [ -n "$top" ] && [ "$(cd "$top" && pwd -P)" = "$(cd "$SRC" && pwd -P)" ]; then
	how="the git work tree's files"
	# Tracked and untracked files, not ignored ones (build outputs), and
	# not tracked files deleted from the work tree.
	git -C "$SRC" ls-files -z -co --exclude-standard | python3 -c '
import os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
for name in sys.stdin.buffer.read().decode().split("\0"):
    s = os.path.join(src, name)
    if not name or not os.path.lexists(s):
        continue
    d = os.path.join(dst, name)
    os.makedirs(os.path.dirname(d), exist_ok=True)
    if os.path.islink(s):
        os.symlink(os.readlink(s), d)
    else:
        shutil.copy2(s, d)
' "$SRC" "$B"
else
	how="make distdir"
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		make -s -C "$top_builddir" distdir distdir="$B" >"$T/distdir.log" 2>&1 ||
		{ diag "$(tail -20 "$T/distdir.log")"; bail "make distdir failed"; }
fi
# A distcheck source tree is read-only, and so is what is copied from it.
chmod -R u+w "$B"
[ -f "$B/debian/control" ] && [ -f "$B/debian/rules" ]
ok $? "copied the source tree ($how) with debian/" ||
	bail "no debian/ in the copy: is it distributed (EXTRA_DIST)?"

# The test runs under make check: its MAKEFLAGS (jobserver descriptors that
# are not open here) must not reach the package's make.
start=$(date +%s)
(cd "$B" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	DEB_BUILD_OPTIONS="parallel=$(nproc 2>/dev/null || echo 2)" \
	dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1
rc=$?
ok $rc "dpkg-buildpackage -us -uc -b ($(($(date +%s) - start)) s)" || {
	diag "$(tail -40 "$T/build.log")"
	bail "the package does not build; nothing after this means anything"
}
deb="$T/build/egressd_${debver}_${arch}.deb"
[ -f "$deb" ]
ok $? "built ${deb##*/}" || {
	diag "$(ls "$T/build")"
	bail "no package"
}

# ---- (c) lintian --------------------------------------------------------------
lintian --tag-display-limit 0 "$deb" >"$T/lintian.out" 2>&1
grep -E '^[EW]: ' "$T/lintian.out" | while IFS= read -r l; do diag "lintian: $l"; done
! grep -q '^E: ' "$T/lintian.out"
ok $? "lintian: no error ($(grep -c '^W: ' "$T/lintian.out") warnings)"

# ---- (d) contents -------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{ print $NF }' | sed 's|^\./|/|' >"$T/contents"
unit=$(grep -E '^(/usr)?/lib/systemd/system/egressd\.service$' "$T/contents")
ok $? "the package holds egressd.service (${unit:-none})"
for f in /usr/sbin/egressd /usr/bin/egressctl \
	/etc/egressd/egressd.yaml /etc/egressd/policy.d/allow.yaml \
	/usr/share/man/man8/egressd.8.gz /usr/share/man/man1/egressctl.1.gz \
	/usr/share/man/man5/egressd.yaml.5.gz \
	/usr/share/bash-completion/completions/egressctl \
	/usr/share/doc/egressd/copyright; do
	grep -qxF "$f" "$T/contents"
	ok $? "the package holds $f"
done
mkdir "$T/control"
dpkg-deb -e "$deb" "$T/control"
for f in /etc/egressd/egressd.yaml /etc/egressd/policy.d/allow.yaml; do
	grep -qxF "$f" "$T/control/conffiles"
	ok $? "$f is a conffile"
done
dpkg-deb -f "$deb" Depends | tr ',' '\n' | grep -q '^ *procps\( \|$\)'
ok $? "Depends: procps (/bin/kill, which ExecReload runs)"
dpkg-deb -f "$deb" Depends | tr ',' '\n' | grep -q '^ *publicsuffix\( \|$\)'
ok $? "Depends: publicsuffix (the list egressctl weighs wildcards with)"
[ "$(dpkg-deb -f "$deb" Section)" = net ]
ok $? "Section: net"
# dh_installsystemd --no-enable: the unit is enabled only where it was
# enabled before (upgrades), never on a new installation.
grep -q "deb-systemd-helper debian-installed 'egressd.service'" "$T/control/postinst" &&
	! grep -q 'was-enabled defaults to true' "$T/control/postinst"
ok $? "postinst leaves egressd.service disabled on a new installation"

# ---- (e) unpacked in a scratch root -----------------------------------------
R="$T/root"
dpkg -x "$deb" "$R"
ok $? "dpkg -x into a scratch root"
cmp -s "$R$unit" "$B/deploy/systemd/egressd.service"
ok $? "the packaged unit is deploy/systemd/egressd.service"
cmp -s "$R/usr/share/bash-completion/completions/egressctl" "$B/contrib/bash-completion/egressctl"
ok $? "the packaged completion is contrib/bash-completion/egressctl"
for cmd in $(sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\([^ ]*\).*/\1/p' "$R$unit" | sort -u); do
	case $cmd in
	/usr/sbin/* | /usr/bin/*) [ -x "$R$cmd" ]; ok $? "the unit's $cmd is in the package" ;;
	*) [ -x "$cmd" ] || [ -x "/usr$cmd" ]; ok $? "the unit's $cmd exists on the system" ;;
	esac
done
[ "$("$R/usr/sbin/egressd" --version)" = "egressd $upstream" ]
ok $? "the packaged egressd --version says $upstream"
# Run from elsewhere: the policy path is relative to the configuration file.
(cd / && "$R/usr/sbin/egressd" -t -c "$R/etc/egressd/egressd.yaml") >"$T/t.out" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -qx 'configuration OK' "$T/t.out"
ok $? "the packaged egressd -t -c etc/egressd/egressd.yaml: configuration OK" ||
	diag "exit $rc: $(cat "$T/t.out")"
# libpsl is egressctl's (the public suffix list), never the daemon's: the
# packaged egressd needs only its five libraries.
readelf -d "$R/usr/sbin/egressd" >"$T/needed-egressd" 2>&1 &&
	readelf -d "$R/usr/bin/egressctl" >"$T/needed-egressctl" 2>&1 &&
	grep -q 'NEEDED.*\[libpsl\.so' "$T/needed-egressctl" && grep -q NEEDED "$T/needed-egressd" &&
	! grep -q 'libpsl' "$T/needed-egressd"
ok $? "the packaged egressctl links libpsl, egressd does not" ||
	diag "$(grep NEEDED "$T/needed-egressd")"
(cd / && "$R/usr/bin/egressctl" check -q -c "$R/etc/egressd/egressd.yaml") >"$T/check.out" 2>&1
ok $? "the packaged egressctl check -c etc/egressd/egressd.yaml exits 0" ||
	diag "$(cat "$T/check.out")"
# The packaged pages are man/'s (which tests/deploy/man.sh lints in full,
# style included); here mandoc checks warnings and errors only: its style
# checks look cross references up in this machine's man database, and what
# that says depends on what else the machine has installed.
for page in man8/egressd.8 man1/egressctl.1 man5/egressd.yaml.5; do
	src="$B/man/${page#*/}"
	rm -f "$T/page.${page##*.}"
	gzip -dc "$R/usr/share/man/$page.gz" >"$T/page.${page##*.}" 2>"$T/gzip.err"
	cmp -s "$T/page.${page##*.}" "$src"
	ok $? "the packaged $page is man/${page#*/}" ||
		diag "$(cat "$T/gzip.err"; diff "$src" "$T/page.${page##*.}" | head -20)"
	mandoc -T lint -W warning "$T/page.${page##*.}" >"$T/lint.bad" 2>&1
	rc=$?
	[ -s "$T/page.${page##*.}" ] && [ $rc -eq 0 ] && [ ! -s "$T/lint.bad" ]
	ok $? "the packaged $page: mandoc -T lint -W warning is clean" ||
		diag "exit $rc: $(cat "$T/lint.bad")"
done

finish
