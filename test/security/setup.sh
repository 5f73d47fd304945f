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
if ! id -u "$user" >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group "$user"
  echo "made the unprivileged user $user (uid $(id -u "$user"))" >&2
fi
