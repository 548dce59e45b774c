#!/usr/bin/env bash
# Runs a command as on a machine where some libraries are not installed: in a private mount
# namespace whose library folder holds everything but the files matching PATTERN (a bash
# extended glob alternative such as 'libtorch*|libc10*'). Needs root.
# Usage: without-libs.sh PATTERN COMMAND [ARGS...]
set -euo pipefail
pattern=$1; shift
lib=/usr/lib/x86_64-linux-gnu
view=$(mktemp -d)
staging=$(mktemp -d)
exec unshare --mount --propagation private bash -c '
  set -e
  shopt -s extglob
  pattern=$1 lib=$2 view=$3 staging=$4; shift 4
  mount --bind "$lib" "$view"
  for f in "$view"/* "$view"/.[!.]*; do
    [ -e "$f" ] || continue
    name=${f##*/}
    [[ $name == @($pattern) ]] || ln -s "$f" "$staging/"
  done
  mount --bind "$staging" "$lib"
  exec "$@"' bash "$pattern" "$lib" "$view" "$staging" "$@"
