#!/bin/sh
# Writes DIR/authorized-keys: `sliceid authorized-keys USER` as an executable of its own for
# sshd's AuthorizedKeysCommand. It is the CommonJS module (dist/src/commands/authorized-keys.cjs)
# behind a `#!NODE` line, so that the kernel starts the runtime directly: no shell and no
# /usr/bin/sliceid in between (bench/README.md, sshd). DIR/package.json marks DIR CommonJS.
#
#   sh packaging/authorized-keys-command.sh NODE DIR
#
# Used by stage.sh (NODE: the runtime the package runs with) and by bench/sshd.ts.
set -eu
usage='usage: authorized-keys-command.sh NODE DIR'
node=${1:?$usage}
dir=${2:?$usage}
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../dist/src/commands/authorized-keys.cjs
[ -f "$src" ] || { echo "authorized-keys-command.sh: $src is missing (npm run build)" >&2; exit 1; }
case $node in /*) ;; *) echo "authorized-keys-command.sh: NODE must be an absolute path, not '$node'" >&2; exit 1 ;; esac
mkdir -p "$dir"
{ printf '#!%s\n' "$node"; cat "$src"; } >"$dir/.authorized-keys.tmp"
chmod 0755 "$dir/.authorized-keys.tmp"
mv "$dir/.authorized-keys.tmp" "$dir/authorized-keys"
printf '{"type":"commonjs"}\n' >"$dir/package.json"
chmod 0644 "$dir/package.json"
