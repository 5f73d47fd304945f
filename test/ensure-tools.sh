#!/bin/sh
# Installs the system tools the tests use (real clients and peers) when they are missing.
# Debian packages only; fast when everything is already there.
set -eu
need=""
command -v python3 >/dev/null 2>&1 || need="$need python3"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
command -v ssh-keygen >/dev/null 2>&1 || need="$need openssh-client"
[ -x /usr/sbin/sshd ] || need="$need openssh-server"
command -v strace >/dev/null 2>&1 || need="$need strace"
# systemd-notify: the daemon's readiness message (test/integration/readiness.test.ts)
command -v systemd-notify >/dev/null 2>&1 || need="$need systemd"
# pyOpenSSL, SFA's library, for the SFA-style GID reader (test/identity/sfa_gid.py)
python3 -c 'import OpenSSL' >/dev/null 2>&1 || /usr/bin/python3 -c 'import OpenSSL' >/dev/null 2>&1 || need="$need python3-openssl"
# shared-host tests (test/host): a static busybox for the guests' chroots, ip/nsenter/unshare
[ -x /usr/bin/busybox ] || need="$need busybox-static"
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v nsenter >/dev/null 2>&1 || need="$need util-linux"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "tests need:$need (install them, or run as root so this script can)" >&2
  exit 1
fi
echo "installing:$need" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends $need >/dev/null 2>&1 || {
  apt-get update >/dev/null && apt-get install -y --no-install-recommends $need >/dev/null
}
