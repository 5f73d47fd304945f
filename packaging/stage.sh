#!/bin/sh
# Stages the tree every package installs as /usr/lib/sliceid: the compiled JS, the production
# node_modules, better-sqlite3 built for the chosen runtime and architecture, and (bundled) the
# official Node runtime from the npm registry. Used by build-rpm.sh and build-deb.sh.
#
#   sh packaging/stage.sh OUT      writes OUT/lib (the /usr/lib/sliceid tree) and OUT/env
#                                  (NODE_VERSION=, ARCH=, DEB_ARCH=, GLIBC=, GLIBCXX= lines)
#
#   SLICEID_ARCH=x86_64|aarch64        target architecture (default: this machine's); aarch64 is
#                                      cross-compiled with Debian's g++-aarch64-linux-gnu and
#                                      checked under qemu-user (installed when missing)
#   SLICEID_RUNTIME=bundled (default)  carry node-linux-<x64|arm64> in /usr/lib/sliceid/runtime
#   SLICEID_RUNTIME=system             use the image's nodejs; better-sqlite3 built once per ABI
#   SLICEID_NODE_VERSION=22.x.y        another bundled runtime (integrity then from the registry)
#   SLICEID_SKIP_BUILD=1               package the dist/ that is there instead of npm run build
#   SLICEID_CACHE_DIR=DIR              runtime downloads and addon builds (default packaging/.cache)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
cd "$top"

OUT=${1:?usage: stage.sh OUTDIR}
RUNTIME=${SLICEID_RUNTIME:-bundled}
CACHE=${SLICEID_CACHE_DIR:-$here/.cache}
host_arch=$(uname -m)
ARCH=${SLICEID_ARCH:-$host_arch}

say() { printf 'stage: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

case $RUNTIME in
  bundled | system) ;;
  *) die "SLICEID_RUNTIME must be bundled or system, not '$RUNTIME'" ;;
esac
[ "$host_arch" = x86_64 ] || die "packages are built on x86_64 (this is $host_arch)"

# Node runtimes by major: version and the registry's sha512 integrity of node-linux-<arch>@version.
# The bundled runtime is the first line; the system variant builds better-sqlite3 for every line.
# Per architecture: the glibc symbol version every glibc has (the compat header binds to it), and
# the floor the official runtime itself needs (the addon must not ask for more).
case $ARCH in
  x86_64)
    NODE_ARCH=x64 DEB_ARCH=amd64 GLIBC_FLOOR=2.28 CROSS=
    RUNTIMES='22.23.3 sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng==
20.20.2 sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==
24.21.0 sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q=='
    ;;
  aarch64)
    NODE_ARCH=arm64 DEB_ARCH=arm64 GLIBC_FLOOR=2.28 CROSS=aarch64-linux-gnu-
    RUNTIMES='22.23.3 sha512-l3DAHZreylo+p9QXDtsOrjG2JXJqVzYXnAGmIQNOUNARcMppTO2cmewVQP+36tjJnSE+dzpMNtgW+c3oiDvXtA==
20.20.2 sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==
24.21.0 sha512-FpJRPEz2OvvTLfjIOlNGFY9JLPMKgl5m+d4oGYBLg24kJ1mmvN1Zl/HPJgF4HDaJ51ISev1l1cRZ/DM+keXW5g=='
    ;;
  *) die "SLICEID_ARCH must be x86_64 or aarch64, not '$ARCH'" ;;
esac
GLIBCXX_FLOOR=3.4.21
WORK=$here/.build/stage-$RUNTIME-$ARCH

sh "$here/ensure-tools.sh" make=make g++=g++ python3=python3 objdump=binutils readelf=binutils
if [ -n "$CROSS" ]; then
  sh "$here/ensure-tools.sh" "${CROSS}g++=g++-aarch64-linux-gnu" "${CROSS}strip=binutils-aarch64-linux-gnu" qemu-aarch64=qemu-user
  SYSROOT=/usr/aarch64-linux-gnu
fi
command -v node >/dev/null 2>&1 || die "node (>= 20) is needed to build"

# target_node RUNTIME_DIR ARGS...: run that runtime's node (under qemu-user for another arch).
target_node() {
  rt=$1
  shift
  if [ -n "$CROSS" ]; then
    qemu-aarch64 -L "$SYSROOT" "$rt/bin/node" "$@"
  else
    "$rt/bin/node" "$@"
  fi
}

# --- 1. compile --------------------------------------------------------------------------------
if [ "${SLICEID_SKIP_BUILD:-}" = 1 ]; then
  say "SLICEID_SKIP_BUILD=1: packaging the dist/ that is there"
else
  say "npm run build && npm run bundle"
  npm run build --silent
  npm run bundle --silent
fi
[ -f dist/src/cli.js ] || die "dist/src/cli.js missing: the compiled CLI is needed"
[ -f dist/bundle/cli.js ] || die "dist/bundle/cli.js missing: run npm run bundle (the package ships the bundle)"

# --- 2. runtimes from the npm registry (cached) ------------------------------------------------
mkdir -p "$CACHE"

# fetch_runtime VERSION [INTEGRITY]: unpacks node-linux-$NODE_ARCH@VERSION to
# $CACHE/node-v$VERSION-linux-$NODE_ARCH and prints that directory. Verifies the tarball against
# the pinned (or the registry's) integrity.
fetch_runtime() {
  v=$1
  want=${2:-}
  name=node-linux-$NODE_ARCH
  dir=$CACHE/node-v$v-linux-$NODE_ARCH
  if [ -x "$dir/bin/node" ] && [ -f "$dir/.verified" ]; then
    printf '%s\n' "$dir"
    return 0
  fi
  tgz=$CACHE/$name-$v.tgz
  if [ ! -f "$tgz" ]; then
    say "downloading $name@$v from the npm registry"
    (cd "$CACHE" && npm pack --silent "$name@$v" >/dev/null) || die "npm pack $name@$v failed"
  fi
  if [ -z "$want" ]; then
    want=$(npm view "$name@$v" dist.integrity 2>/dev/null) || die "no integrity for $name@$v"
  fi
  got=sha512-$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tgz")
  if [ "$got" != "$want" ]; then
    rm -f "$tgz"
    die "$name@$v: integrity $got, expected $want (download removed)"
  fi
  rm -rf "$dir" "$dir.tmp"
  mkdir -p "$dir.tmp"
  tar -xzf "$tgz" -C "$dir.tmp" --strip-components=1
  [ -x "$dir.tmp/bin/node" ] && [ -f "$dir.tmp/include/node/node_version.h" ] || die "$name@$v: no bin/node or include/node"
  : >"$dir.tmp/.verified"
  mv "$dir.tmp" "$dir"
  rm -f "$tgz"
  printf '%s\n' "$dir"
}

pinned() { printf '%s\n' "$RUNTIMES" | awk -v v="$1" '$1 == v { print $2 }'; }
abi_of() { sed -n 's/^#define NODE_MODULE_VERSION \([0-9][0-9]*\).*/\1/p' "$1/include/node/node_version.h"; }
# newest VERSIONED_SYMBOL_PREFIX FILE: the newest symbol version FILE needs with that prefix.
newest() { readelf -W --dyn-syms "$2" | grep -o "@$1[0-9.]*" | sed "s/^@$1//" | sort -V | tail -1; }
# le A B: version A <= version B.
le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -1)" = "$2" ]; }

if [ "$RUNTIME" = bundled ]; then
  NODE_VERSION=${SLICEID_NODE_VERSION:-$(printf '%s\n' "$RUNTIMES" | awk 'NR == 1 { print $1 }')}
  BUILD_FOR=$NODE_VERSION
else
  NODE_VERSION=
  BUILD_FOR=$(printf '%s\n' "$RUNTIMES" | awk '{ print $1 }')
fi

# --- 3. production node_modules, in a staging copy ----------------------------------------------
rm -rf "$WORK" "$OUT"
mkdir -p "$WORK/deps" "$OUT"
cp package.json package-lock.json "$WORK/deps/"
say "npm ci --omit=dev (staging copy)"
(cd "$WORK/deps" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)

# build_addon NODEDIR VERSION: better-sqlite3 compiled with node-gyp against that runtime's headers
# (with the cross compiler for aarch64), with glibc symbols pinned to old versions
# (glibc-compat.h, glibc-compat.cc) so the addon asks no more of the image than the official
# runtime does. Builds are cached by better-sqlite3 version, Node version, arch and compat sources.
bs_version=$(node -p 'require(process.argv[1]).version' "$WORK/deps/node_modules/better-sqlite3/package.json")
compat_hash=$(cat "$here/glibc-compat.h" "$here/glibc-compat.cc" | node -e 'let b=[];process.stdin.on("data",d=>b.push(d)).on("end",()=>process.stdout.write(require("crypto").createHash("sha256").update(Buffer.concat(b)).digest("hex").slice(0,12)))')
build_addon() {
  cached=$CACHE/addons/better-sqlite3-$bs_version-node-$2-$NODE_ARCH-$compat_hash/better_sqlite3.node
  out=$WORK/deps/node_modules/better-sqlite3/build/Release/better_sqlite3.node
  if [ -f "$cached" ]; then
    mkdir -p "$(dirname "$out")"
    cp "$cached" "$out"
    return 0
  fi
  say "compiling better-sqlite3 $bs_version for Node $2 linux-$NODE_ARCH (a minute or two)"
  "${CROSS}g++" -O2 -fPIC -fvisibility=hidden -c "$here/glibc-compat.cc" -o "$WORK/glibc-compat.o"
  (
    cd "$WORK/deps/node_modules/better-sqlite3"
    rm -rf build
    if [ -n "$CROSS" ]; then
      CC=${CROSS}gcc CXX=${CROSS}g++ LINK=${CROSS}g++ AR=${CROSS}ar
      CC_host=gcc CXX_host=g++ LINK_host=g++
      npm_config_arch=$NODE_ARCH
      export CC CXX LINK AR CC_host CXX_host LINK_host npm_config_arch
    fi
    npm_config_nodedir=$1 \
    CFLAGS="-include $here/glibc-compat.h" \
    CXXFLAGS="-include $here/glibc-compat.h" \
    LDFLAGS="$WORK/glibc-compat.o -Wl,--wrap=stat64,--wrap=fstat64,--wrap=lstat64" \
    JOBS=max \
      npm run build-release --silent >"$WORK/addon-build.log" 2>&1
  ) || { tail -30 "$WORK/addon-build.log" >&2; die "better-sqlite3 did not build against $1"; }
  "${CROSS}strip" --strip-unneeded "$out"
  # The symbol versions it needs must not exceed the runtime's floor.
  machine=$(readelf -h "$out" | sed -n 's/^ *Machine: *//p')
  case $ARCH:$machine in
    x86_64:*X86-64* | aarch64:*AArch64*) ;;
    *) die "the addon is built for '$machine', not $ARCH" ;;
  esac
  glibc=$(newest GLIBC_ "$out")
  glibcxx=$(newest GLIBCXX_ "$out")
  le "$glibc" "$GLIBC_FLOOR" || die "the addon needs glibc $glibc (> $GLIBC_FLOOR)"
  le "${glibcxx:-3.4}" "$GLIBCXX_FLOOR" || die "the addon needs GLIBCXX_$glibcxx (> $GLIBCXX_FLOOR)"
  mkdir -p "$(dirname "$cached")"
  cp "$out" "$cached.tmp" && mv "$cached.tmp" "$cached"
}

app=$OUT/lib
mkdir -p "$app"
first=1
for v in $BUILD_FOR; do
  rt=$(fetch_runtime "$v" "$(pinned "$v")")
  abi=$(abi_of "$rt")
  build_addon "$rt" "$v"
  addon=$WORK/deps/node_modules/better-sqlite3/build/Release/better_sqlite3.node
  # It must load in that very runtime.
  target_node "$rt" -e 'const D = require(process.argv[1]); const db = new D(":memory:"); if (db.prepare("select 41 + 1 as n").get().n !== 42) process.exit(1)' \
    "$WORK/deps/node_modules/better-sqlite3" || die "better-sqlite3 does not load in node $v linux-$NODE_ARCH"
  if [ "$RUNTIME" = system ]; then
    mkdir -p "$WORK/bindings/node-v$abi-linux-$NODE_ARCH"
    cp "$addon" "$WORK/bindings/node-v$abi-linux-$NODE_ARCH/"
  elif [ $first = 1 ]; then
    mkdir -p "$app/runtime/bin"
    cp -p "$rt/bin/node" "$app/runtime/bin/node"
    cp "$rt/LICENSE" "$app/runtime/LICENSE"
    printf '%s\n' "$v" >"$app/runtime/VERSION"
  fi
  first=0
done

# --- 4. the application tree (-> /usr/lib/sliceid) ----------------------------------------------
# The app itself: one place. bin/sliceid.js runs the bundle (dist/bundle); dist/src carries the
# authorized-keys command (CommonJS, started by sshd) and the compiled tree the bundle came from.
cp package.json "$app/"
mkdir -p "$app/bin" "$app/dist"
cp bin/sliceid.js "$app/bin/"
cp -R dist/src "$app/dist/src"
cp -R dist/bundle "$app/dist/bundle"
find "$app/dist" -type f ! -name '*.js' ! -name '*.cjs' -exec rm -f {} +
# The bundle is this package's entry (bin/sliceid.js runs it only when so marked; a checkout
# runs its compiled tree).
printf 'packaged by stage.sh\n' >"$app/dist/bundle/ENTRY"
# sshd's AuthorizedKeysCommand without a shell: /usr/lib/sliceid/libexec/authorized-keys starts
# the runtime the package runs with directly (#!).
if [ "$RUNTIME" = bundled ]; then cmd_node=/usr/lib/sliceid/runtime/bin/node; else cmd_node=/usr/bin/node; fi
sh "$here/authorized-keys-command.sh" "$cmd_node" "$app/libexec"
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
  -o -name '.taprc' -o -name '.prettierrc*' -o -name 'tsconfig*.json' -o -name '*.html' \) ! -iname 'license*' -exec rm -f {} +
find "$app/node_modules" -type f -name '.*' -exec rm -f {} +
find "$app" -depth -type d -empty -exec rmdir {} \;
find "$app" -type d -exec chmod 0755 {} +
# Nothing under /usr/lib/sliceid is executed directly but node, the addon and sshd's command
# (libexec/authorized-keys): /usr/bin/sliceid runs `node bin/sliceid.js`. Plain files 0644, the
# entry without its `#!/usr/bin/env node`.
find "$app" -type f ! -name '*.node' ! -path "$app/runtime/bin/node" ! -path "$app/libexec/authorized-keys" -exec chmod 0644 {} +
find "$app" -type f \( -name '*.node' -o -path "$app/runtime/bin/node" -o -path "$app/libexec/authorized-keys" \) -exec chmod 0755 {} +
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
  target_node "$app/runtime" "$app/bin/sliceid.js" --version >/dev/null || die "staged CLI does not start with the bundled runtime"
  target_node "$app/runtime" "$app/libexec/authorized-keys" --help >/dev/null || die "staged authorized-keys command does not start with the bundled runtime"
fi

# What the packagers need to know: runtime version, architecture names, the newest glibc and
# libstdc++ symbol versions any binary of the tree needs (for the .deb's Depends).
glibc=2.17 glibcxx=
for f in $(find "$app" -type f \( -name '*.node' -o -path "$app/runtime/bin/node" \)); do
  g=$(newest GLIBC_ "$f")
  [ -n "$g" ] && ! le "$g" "$glibc" && glibc=$g
  x=$(newest GLIBCXX_ "$f")
  [ -n "$x" ] && { [ -z "$glibcxx" ] || ! le "$x" "$glibcxx"; } && glibcxx=$x
done
cat >"$OUT/env" <<ENV
NODE_VERSION=$NODE_VERSION
ARCH=$ARCH
NODE_ARCH=$NODE_ARCH
DEB_ARCH=$DEB_ARCH
GLIBC=$glibc
GLIBCXX=$glibcxx
ENV
# Keep only the logs (addon-build.log, pruned.txt) of the staging tree.
rm -rf "$WORK/deps" "$WORK/bindings" "$WORK/glibc-compat.o"
say "staged $ARCH ($RUNTIME runtime${NODE_VERSION:+ $NODE_VERSION}) in $OUT"
