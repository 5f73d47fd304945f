#!/bin/sh
# Prints the directory of a Debian bookworm root with systemd and python3, built once with
# debootstrap and cached outside the checkout (SLICEID_TEST_CACHE, default /var/cache/sliceid-test).
# Rebuilt when missing or when the package list below changes. Tests copy it, never write it.
# Needs root (debootstrap) and a Debian archive: the first one the machine's own apt sources name
# (/etc/apt/sources.list and sources.list.d, one-line and deb822 formats), or SLICEID_DEBIAN_MIRROR.
set -eu
CACHE=${SLICEID_TEST_CACHE:-/var/cache/sliceid-test}
SUITE=bookworm
# The machine's Debian archive: a "deb URI suite ..." line or a deb822 URIs: field whose archive
# holds dists/ (not the security archive, whose suites are bookworm-security).
apt_mirror() {
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case $f in
      *.sources) sed -n 's/^URIs:[[:space:]]*//p' "$f" | tr ' ' '\n' ;;
      *) sed -n 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*\).*/\2/p' "$f" ;;
    esac
  done | grep -v -e '-security' -e '^$' | head -n 1
}
MIRROR=${SLICEID_DEBIAN_MIRROR:-$(apt_mirror)}
if [ -z "$MIRROR" ]; then
  echo "debian-root: no Debian archive in this machine's apt sources; set SLICEID_DEBIAN_MIRROR" >&2
  exit 1
fi
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
