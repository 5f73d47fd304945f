#!/bin/sh
# Installs the Debian packages the RPM build and its tests use, when their commands are missing.
# Arguments: command=package pairs, e.g. rpmbuild=rpm rpmlint=rpmlint checkbashisms=devscripts.
# Fast when everything is already there; CI runs on a clean machine, so never assume the tools.
set -eu
need=""
for pair in "$@"; do
  cmd=${pair%%=*}
  pkg=${pair#*=}
  command -v "$cmd" >/dev/null 2>&1 && continue
  case " $need " in *" $pkg "*) ;; *) need="$need $pkg" ;; esac
done
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing tools, install:$need" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing tools and no apt-get to install them:$need" >&2
  exit 1
fi
echo "installing:$need" >&2
DEBIAN_FRONTEND=noninteractive
export DEBIAN_FRONTEND
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $need >/dev/null 2>&1 || {
  apt-get update >/dev/null
  apt-get install -y --no-install-recommends $need >/dev/null
}
