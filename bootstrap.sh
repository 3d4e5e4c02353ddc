#!/bin/sh
# One-step set-up on Debian 12: install what egressd needs to build and
# test, generate the build system, configure, build, then either run the
# demo or the whole test suite.
#
#   ./bootstrap.sh demo    build and run egressd on the built-in example
#   ./bootstrap.sh check   build and run every test (what CI runs)
set -eu
cd "$(dirname "$0")"

what=${1:-}
case "$what" in
demo|check|deps) ;;
*) echo "usage: $0 demo|check|deps" >&2; exit 2 ;;
esac

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# Build dependencies (libpsl-dev and the list it reads, publicsuffix, for
# egressctl only), then the real peers the tests talk to, then the tools
# the tests run that a minimal Debian (debootstrap --variant=minbase, a
# debian:12 container) does not have: procps (sysctl and ps in tests/netns/,
# /bin/kill for the systemd unit's ExecReload, which systemd-analyze verify
# wants to exist), mandoc (tests/deploy/man.sh lints the man pages), valgrind
# (tests/hostile/leaks.sh; skipped without it outside ASan builds), and what
# tests/deploy/deb.sh builds and checks the .deb with: dpkg-dev, debhelper
# (dh, dh_autoreconf), bash-completion (dh_bash-completion) and lintian.
PKGS="build-essential autoconf automake pkg-config
      libssl-dev libc-ares-dev libevent-dev libyaml-dev libpcap-dev
      libpsl-dev publicsuffix
      openssl curl gnutls-bin python3 dnsmasq-base clang
      haproxy iptables iproute2 python3-yaml systemd prometheus
      tcpdump tshark
      procps mandoc valgrind
      dpkg-dev debhelper bash-completion lintian"
echo "bootstrap: installing Debian packages (apt-get)" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
[ "$what" = deps ] && exit 0

[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure
make -j2

case "$what" in
demo) exec sh examples/demo.sh ;;
check) exec make -j2 check ;;
esac
