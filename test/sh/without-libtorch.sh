#!/usr/bin/env bash
# Runs a command as on a machine where libtorch is not installed: in a private mount
# namespace whose library folder holds everything but libtorch* and libc10*. Needs root.
set -euo pipefail
lib=/usr/lib/x86_64-linux-gnu
view=$(mktemp -d)
staging=$(mktemp -d)
exec unshare --mount --propagation private bash -c '
  set -e
  lib=$1 view=$2 staging=$3; shift 3
  mount --bind "$lib" "$view"
  for f in "$view"/* "$view"/.[!.]*; do
    [ -e "$f" ] || continue
    case "${f##*/}" in libtorch*|libc10*) ;; *) ln -s "$f" "$staging/" ;; esac
  done
  mount --bind "$staging" "$lib"
  exec "$@"' bash "$lib" "$view" "$staging" "$@"
