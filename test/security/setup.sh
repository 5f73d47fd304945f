#!/bin/sh
# The security suite's setup: it runs the attacks as a real unprivileged user, made here when
# missing (CI is a fresh root machine). Needs root: the daemon under test runs as root.
set -eu
user=${SLICEID_ATTACKER:-sliceid-attacker}
if [ "$(id -u)" != 0 ]; then
  echo "the security suite needs root (it runs sliceid as root and attacks it as $user)" >&2
  exit 1
fi
sh "$(dirname "$0")/../ensure-tools.sh"
for tool in setpriv mkfifo ssh-keygen; do
  command -v "$tool" >/dev/null 2>&1 || { echo "the security suite needs $tool" >&2; exit 1; }
done
# A slice user as the testbed makes one: an ordinary account (uid 1000 or more). sliceid gives a
# system account (uid below 1000) no keys at all, so it could not stand for one.
if ! id -u "$user" >/dev/null 2>&1; then
  useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group "$user"
  echo "made the unprivileged user $user (uid $(id -u "$user"))" >&2
fi
if [ "$(id -u "$user")" -lt 1000 ]; then
  echo "$user has uid $(id -u "$user"), a system account's: sliceid gives it no keys; remove it (userdel $user) and run again" >&2
  exit 1
fi
