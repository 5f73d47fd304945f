#!/bin/sh
# Prints the directory of a Debian bookworm root with systemd and python3, built once with
# debootstrap and cached outside the checkout (SLICEID_TEST_CACHE, default /var/cache/sliceid-test).
# Rebuilt when missing or when the package list below changes. Tests copy it, never write it.
# Needs root (debootstrap) and Debian's archive (SLICEID_DEBIAN_MIRROR to use another mirror).
set -eu
CACHE=${SLICEID_TEST_CACHE:-/var/cache/sliceid-test}
MIRROR=${SLICEID_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
INCLUDE=systemd,systemd-sysv,dbus,python3,procps
key=$(printf '%s %s\n' "$SUITE" "$INCLUDE" | sha256sum | cut -c1-10)
dir=$CACHE/$SUITE-$key
if [ -x "$dir/bin/systemctl" ] && [ -f "$dir/.complete" ]; then
  printf '%s\n' "$dir"
  exit 0
fi
here=$(cd "$(dirname "$0")" && pwd)
sh "$here/../../packaging/ensure-tools.sh" debootstrap=debootstrap >&2
mkdir -p "$CACHE"
tmp=$dir.tmp.$$
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "debian-root: debootstrap $SUITE into $dir (75 s on an idle machine, a few minutes under load; once)" >&2
debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$tmp" "$MIRROR" >"$tmp.log" 2>&1 || {
  tail -20 "$tmp.log" >&2
  rm -f "$tmp.log"
  exit 1
}
rm -f "$tmp.log"
# Smaller and quicker to copy: no apt lists or downloaded archives.
rm -rf "$tmp/var/cache/apt/archives/"*.deb "$tmp/var/lib/apt/lists/"* 2>/dev/null || :
: >"$tmp/.complete"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
printf '%s\n' "$dir"
