#!/usr/bin/env bash
# Prepares what the GPU machine needs and cannot fetch (it has CUDA, PyTorch and its libtorch,
# but no Node.js and no network): Node.js itself in .device/ (made by the script given as the
# first argument, if any; else it must be there already), and in .devpack/ the few npm packages the build, the tests
# and the benchmark use (sharp too: the package loads it at its entry), the compiled TypeScript
# and the compiled tests. Run from the project root after `npm run setup`; then carry both:
#   run(command="bash bench/gpu/device.sh", carry=[".device", ".devpack"])
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
for dir in /.device/ /.devpack/; do
  grep -qx "$dir" .git/info/exclude 2>/dev/null || echo "$dir" >> .git/info/exclude
done
if [ -n "${1:-}" ]; then
  bash "$1"
elif [ ! -d .device ]; then
  echo "pack.sh: no .device/ with Node.js for the GPU machine; give the script that packs it as the first argument" >&2
  exit 1
fi
rm -rf .devpack
mkdir -p .devpack
version() { node -p "require('./node_modules/$1/package.json').version"; }
npm install --prefix .devpack --no-save --no-package-lock --no-audit --no-fund --silent \
  "node-addon-api@$(version node-addon-api)" "node-api-headers@$(version node-api-headers)" \
  "mocha@$(version mocha)" "sharp@$(version sharp)" "prom-client@$(version prom-client)"
cp -r dist .devpack/dist
mkdir -p .devpack/build-test && cp -r build/test/. .devpack/build-test/
# Compressed: what travels to the GPU machine is limited in size (device.sh unpacks it).
tar -C .devpack -cJf .devpack.tar.xz .
rm -rf .devpack && mkdir .devpack && mv .devpack.tar.xz .devpack/bundle.tar.xz
du -sh .device .devpack
