#!/bin/sh
# sliceid: runs /usr/lib/sliceid with the Node.js runtime this package carries
# (/usr/lib/sliceid/runtime/bin/node), or, in the package built for the system's nodejs, with
# the `node` on PATH. SLICEID_NODE names another node executable.
# The library is found next to this script (../lib/sliceid), so an image tree installed under
# another root (rpm --root) runs its own copy.
case $0 in
  */*) lib=${0%/*}/../lib/sliceid ;;
  *) lib=./../lib/sliceid ;;
esac
[ -f "$lib/bin/sliceid.js" ] || lib=/usr/lib/sliceid
node=${SLICEID_NODE:-}
if [ -z "$node" ]; then
  if [ -x "$lib/runtime/bin/node" ]; then
    node=$lib/runtime/bin/node
  else
    node=$(command -v node 2>/dev/null || command -v nodejs 2>/dev/null || true)
  fi
fi
if [ -z "$node" ]; then
  echo "sliceid: no Node.js runtime (install nodejs 20 or newer, or set SLICEID_NODE)" >&2
  exit 127
fi
# Two malloc arenas instead of one per thread: about 5 MB less resident after load (bench/README.md).
MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
export MALLOC_ARENA_MAX
# sshd's AuthorizedKeysCommand (once per login attempt): straight to the small CommonJS reader,
# which costs about what `node -e 0` does (bench/README.md, sshd).
if [ "${1:-}" = authorized-keys ] && [ -f "$lib/dist/src/commands/authorized-keys.cjs" ]; then
  shift
  exec "$node" "$lib/dist/src/commands/authorized-keys.cjs" "$@"
fi
exec "$node" "$lib/bin/sliceid.js" "$@"
