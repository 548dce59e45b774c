#!/usr/bin/env bash
# Runs on the GPU machine, from the project root, with .device and .devpack carried
# (bench/gpu/pack.sh makes them). Builds the addon against the CUDA libtorch of the
# machine's PyTorch, runs the CUDA tests, then `bench/run.js --device cuda`. Every stage
# writes into $OUT as it goes, so a run cut short still returns what it measured.
#   STAGES: which stages to run (default "build test bench"), e.g. "build variants".
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
STAGES=${STAGES:-build test bench}
note() { echo "[$(date +%T)] $*"; }
has() { [[ " $STAGES " == *" $1 "* ]]; }

source .device/env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
[ -e node_modules ] || ln -s .devpack/node_modules node_modules
mkdir -p dist build/test
cp -r .devpack/dist/. dist/
cp -r .devpack/build-test/. build/test/
export DIFFACE_PYTHON=python3

build() {
  cmake -S . -B build/native -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_JS_INC="$PWD/node_modules/node-api-headers/include" \
    -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$PWD/build/Release" "$@" > "$OUT/cmake.txt" 2>&1 &&
    cmake --build build/native >> "$OUT/cmake.txt" 2>&1
}

if has build; then
  note "building against $Torch_DIR"
  if ! build; then
    tail -40 "$OUT/cmake.txt"
    note "build failed with C++17; trying C++20"
    rm -rf build/native
    if ! build -DDIFFACE_CXX_STANDARD=20; then
      tail -40 "$OUT/cmake.txt"
      note "trying without the CUDA extras (no CUDA graphs)"
      rm -rf build/native
      build -DDIFFACE_CXX_STANDARD=20 -DDIFFACE_CUDA_EXTRAS=OFF || { tail -60 "$OUT/cmake.txt"; exit 1; }
    fi
  fi
  node -e "console.log(JSON.stringify(require('.').versions()))" | tee "$OUT/versions.json"
fi

if has test; then
  note "CUDA tests"
  timeout 150 node node_modules/mocha/bin/mocha.js --no-config --timeout 300000 build/test/gpu.test.js 2>&1 | tee "$OUT/gpu-tests.txt"
fi

if has bench; then
  note "benchmark: batch 1 and 8, float16 and bfloat16 first, then float32"
  timeout 360 node bench/run.js --device cuda --work /tmp/difface-bench --runs 2 --dtypes float16,bfloat16,float32 \
    --out "$OUT/bench-cuda.json"
fi

if has graphtest; then
  timeout 100 node node_modules/mocha/bin/mocha.js --no-config --timeout 100000 --grep graphs build/test/gpu.test.js 2>&1 |
    tee "$OUT/gpu-tests-graphs.txt"
fi

# Engine-only variants, float16 at batches 1 and 8: one knob changed each.
variant() {
  local name=$1; shift
  note "variant $name"
  env "$@" timeout 120 node bench/run.js --device cuda --work /tmp/difface-bench --runs 2 --dtypes float16 \
    --batches 1,8 --engine-only --out "$OUT/variant-$name.json" | tail -3
}
if has variants; then
  variant default DIFFACE_UNUSED=1
  variant jit-optimize DIFFACE_JIT_OPTIMIZE=1
  variant channels-last DIFFACE_CUDA_LAYOUT=channels_last
  variant no-graphs DIFFACE_CUDA_GRAPHS=0
fi
note "done"
