#!/bin/sh
# npm run deb: build dist/sliceid_<version>-<release>_<amd64|arm64>.deb with dpkg-deb from the
# same staged /usr/lib/sliceid tree as the RPM (stage.sh). Debian policy layout: /usr/lib/sliceid,
# /usr/bin/sliceid, conffiles under /etc, the unit enabled and started by the maintainer scripts
# (packaging/deb/) through deb-systemd-helper / deb-systemd-invoke (sliceid-host.service, the
# shared host's unit, shipped but not enabled), a man page, copyright and
# changelog. Lintian notes: packaging/deb/lintian-overrides and packaging/README-rpm.md.
#
#   SLICEID_ARCH=x86_64|aarch64   target (default x86_64 -> amd64; aarch64 -> arm64, cross-built)
#   SLICEID_RELEASE=N             Debian revision (default 1)
#   SLICEID_SKIP_BUILD=1, SLICEID_NODE_VERSION, SLICEID_CACHE_DIR: as for stage.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
cd "$top"

RELEASE=${SLICEID_RELEASE:-1}
ARCH=${SLICEID_ARCH:-$(uname -m)}
MAINTAINER=${SLICEID_PACKAGER:-sliceid developers <sliceid@localhost>}
WORK=$here/.build/deb-$ARCH

say() { printf 'build-deb: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

started=$(date +%s)
sh "$here/ensure-tools.sh" dpkg-deb=dpkg gzip=gzip
VERSION=$(node -p 'require("./package.json").version')

rm -rf "$WORK"
mkdir -p "$WORK"
SLICEID_ARCH=$ARCH SLICEID_RUNTIME=bundled sh "$here/stage.sh" "$WORK/stage"
. "$WORK/stage/env"

pkg=$WORK/pkg
mkdir -p "$pkg/usr/lib" "$pkg/DEBIAN"
mv "$WORK/stage/lib" "$pkg/usr/lib/sliceid"

# What the package carries besides /usr/lib/sliceid: one line per file, SOURCE DEST MODE
# (SOURCE relative to packaging/). Files under /etc are conffiles. A new packaged file is one
# more line here (and one in rpm.spec's %install and %files).
while read -r src dest mode; do
  case $src in '' | '#'*) continue ;; esac
  mkdir -p "$pkg$(dirname "$dest")"
  case $src in
    # Debian names in what the daemon's files say: /etc/default, /etc/init.d.
    sliceid.* | sliceid-host.service) sed -e 's|/etc/sysconfig/sliceid|/etc/default/sliceid|g' \
      -e 's|/etc/rc\.d/init\.d/sliceid|/etc/init.d/sliceid|g' "$here/$src" >"$pkg$dest" ;;
    *) cp "$here/$src" "$pkg$dest" ;;
  esac
  chmod "$mode" "$pkg$dest"
done <<'LIST'
sliceid.sh              /usr/bin/sliceid                              0755
sliceid.toml            /etc/sliceid/sliceid.toml                     0644
sliceid.sysconfig       /etc/default/sliceid                          0644
sliceid.init            /etc/init.d/sliceid                           0755
sliceid.service         /lib/systemd/system/sliceid.service           0644
sliceid-hooks.service   /lib/systemd/system/sliceid-hooks.service     0644
sliceid-hooks@.service  /lib/systemd/system/sliceid-hooks@.service    0644
sliceid-host.service    /lib/systemd/system/sliceid-host.service      0644
sliceid.logrotate       /etc/logrotate.d/sliceid                      0644
README-rpm.md           /usr/share/doc/sliceid/README-rpm.md          0644
deb/copyright           /usr/share/doc/sliceid/copyright              0644
deb/lintian-overrides   /usr/share/lintian/overrides/sliceid          0644
sshd_config.d/sliceid.conf /usr/share/doc/sliceid/sshd_config.d/sliceid.conf 0644
../examples/slice.d/50-raven /usr/share/doc/sliceid/examples/slice.d/50-raven 0644
../examples/slice.d/60-raven-guest /usr/share/doc/sliceid/examples/slice.d/60-raven-guest 0644
LIST
mkdir -p "$pkg/usr/share/man/man8"
gzip -9n -c "$here/sliceid.8" >"$pkg/usr/share/man/man8/sliceid.8.gz"
sed "s|@MAINTAINER@|$MAINTAINER|" "$here/deb/changelog" | gzip -9n >"$pkg/usr/share/doc/sliceid/changelog.Debian.gz"
mkdir -p "$pkg/var/lib/sliceid"
chmod 0700 "$pkg/var/lib/sliceid"
find "$pkg/usr/share" "$pkg/etc" -type d -exec chmod 0755 {} +

# Debian policy: shared objects are not executable (node loads the addon with dlopen).
find "$pkg/usr/lib/sliceid" -name '*.node' -exec chmod 0644 {} +

# Control: the C library floor comes from the staged binaries' symbol versions (stage.sh).
# init-system-helpers is a Pre-Depends: the maintainer scripts use invoke-rc.d --skip-systemd-native.
depends="libc6 (>= $GLIBC), libgcc-s1"
[ -n "$GLIBCXX" ] && depends="$depends, libstdc++6 (>= 5.2)"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s|@VERSION@|$VERSION-$RELEASE|" -e "s|@ARCH@|$DEB_ARCH|" -e "s|@MAINTAINER@|$MAINTAINER|" \
  -e "s|@SIZE@|$size|" -e "s|@DEPENDS@|$depends|" "$here/deb/control" >"$pkg/DEBIAN/control"
for s in postinst prerm postrm; do
  install -m 0755 "$here/deb/$s" "$pkg/DEBIAN/$s"
done
(cd "$pkg" && find etc -type f | sed 's|^|/|' | sort) >"$pkg/DEBIAN/conffiles"
(cd "$pkg" && find usr lib -type f -exec md5sum {} + | sort -k 2) >"$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/conffiles" "$pkg/DEBIAN/md5sums"

debfile=sliceid_$VERSION-${RELEASE}_$DEB_ARCH.deb
say "dpkg-deb --build ($DEB_ARCH)"
dpkg-deb --root-owner-group -Zxz -z2 --build "$pkg" "$WORK/$debfile" >/dev/null
mkdir -p dist
cp "$WORK/$debfile" "dist/$debfile"
rm -rf "$WORK/pkg" "$WORK/stage" "$WORK/$debfile"
size=$(wc -c <"dist/$debfile" | tr -d ' ')
say "dist/$debfile ($size bytes, $(($(date +%s) - started)) s)"
printf '%s\n' "dist/$debfile"
