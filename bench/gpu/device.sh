#!/usr/bin/env bash
# Runs on the GPU machine, from the project root, with .device and .devpack carried
# (bench/gpu/pack.sh makes them). Builds the addon against the CUDA libtorch of the
# machine's PyTorch, runs the CUDA tests, then `bench/run.js --device cuda`. Every stage
# writes into $OUT as it goes, so a run cut short still returns what it measured.
#   STAGES: which stages to run (default "build test bench"), e.g. "build variants".
#   The compiled path (issue of speed, round two): "bgbuild compile profile benchcompiled"
#   builds in the background while Python makes the published-size model directory and
#   compiles its UNet (AOTInductor, COMPILE_DTYPES, batches 1 and 8), profiles one batch-8
#   call kernel by kernel, eager against compiled, then benchmarks the engine with and
#   without the packages against eager. DEVICE=cpu proves the same path on a CPU machine.
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
STAGES=${STAGES:-build test bench}
DEVICE=${DEVICE:-cuda}
WORK=${WORK:-$PWD/bench/out/device}
COMPILE_DTYPES=${COMPILE_DTYPES:-float16}
COMPILE_BATCHES=${COMPILE_BATCHES:-1,8}
note() { echo "[$(date +%T)] $*"; }
has() { [[ " $STAGES " == *" $1 "* ]]; }

if [ "$DEVICE" = cuda ]; then
  source .device/env.sh
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
fi
[ -f .devpack/bundle.tar.xz ] && tar -C .devpack -xJf .devpack/bundle.tar.xz && rm .devpack/bundle.tar.xz
[ -e node_modules ] || ln -s .devpack/node_modules node_modules
mkdir -p dist build/test
cp -r .devpack/dist/. dist/
cp -r .devpack/build-test/. build/test/
export PYTHONUNBUFFERED=1
export DIFFACE_PYTHON=${DIFFACE_PYTHON:-python3}
# At most 8 files come back from $OUT: the build's own log stays here, its tail goes to log.txt.
cmake_log=/tmp/difface-cmake.txt

build() {
  cmake -S . -B build/native -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_JS_INC="$PWD/node_modules/node-api-headers/include" \
    -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$PWD/build/Release" "$@" > "$cmake_log" 2>&1 &&
    cmake --build build/native >> "$cmake_log" 2>&1
}

build_with_fallbacks() {
  if ! build; then
    tail -40 "$cmake_log"
    note "build failed; trying without the AOTInductor loader"
    rm -rf build/native
    build -DDIFFACE_AOTI=OFF && return 0
    tail -40 "$cmake_log"
    note "build failed with C++17; trying C++20"
    rm -rf build/native
    if ! build -DDIFFACE_CXX_STANDARD=20; then
      tail -40 "$cmake_log"
      note "trying without the CUDA extras (no CUDA graphs)"
      rm -rf build/native
      build -DDIFFACE_CXX_STANDARD=20 -DDIFFACE_CUDA_EXTRAS=OFF || { tail -60 "$cmake_log"; return 1; }
    fi
  fi
}

if has build; then
  note "building against ${Torch_DIR:-the configured libtorch}"
  build_with_fallbacks || exit 1
  node -e "console.log(JSON.stringify(require('.').versions()))" | tee "$OUT/versions.json"
fi

if has bgbuild; then
  note "building against ${Torch_DIR:-the configured libtorch}, in the background"
  ( build_with_fallbacks > /tmp/difface-build-log.txt 2>&1; echo $? > /tmp/difface-build-rc.txt ) &
  build_pid=$!
fi

# The published-size networks with random weights, converted by Python exactly as
# bench/run.js converts them (so the benchmark finds the directory and its compiled cache).
models="$WORK/published/models"
if has compile || has profile; then
  mkdir -p "$WORK/published"
  [ -s "$WORK/published/config.json" ] ||
    $DIFFACE_PYTHON models/random_checkpoint.py --published --out "$WORK/published" --seed 1 > /dev/null
  [ -s "$models/difface.json" ] ||
    $DIFFACE_PYTHON models/convert.py --unet "$WORK/published/unet.pth" --backbone "$WORK/published/backbone.pth" \
      --config "$WORK/published/config.json" --out "$models" > /dev/null
fi

if has compile; then
  for dtype in ${COMPILE_DTYPES//,/ }; do
    note "compiling the published-size UNet on $DEVICE, $dtype, batches $COMPILE_BATCHES"
    timeout "${COMPILE_TIMEOUT:-420}" $DIFFACE_PYTHON models/aot_compile.py "$models" --out "$models/compiled" \
      --device "$DEVICE" --dtype "$dtype" --batch "$COMPILE_BATCHES" ${COMPILE_SIZE:+--size $COMPILE_SIZE} |
      tee -a "$OUT/compile-$dtype.jsonl"
  done
fi

if has profile; then
  dtype=${COMPILE_DTYPES%%,*}
  batch=${COMPILE_BATCHES##*,}
  package=$(ls "$models"/compiled/unet-*-"$dtype"-b"$batch"-*.pt2 2>/dev/null | head -1)
  note "profiling one batch-$batch call, eager against ${package:-nothing compiled}"
  timeout "${PROFILE_TIMEOUT:-120}" $DIFFACE_PYTHON bench/gpu/kernels.py "$models" --device "$DEVICE" --dtype "$dtype" --batch "$batch" \
    ${package:+--package "$package"} --out "$OUT/profile-$dtype-b$batch.json"
fi

if [ -n "${build_pid:-}" ]; then
  wait "$build_pid"
  note "background build: rc $(cat /tmp/difface-build-rc.txt)"
  cat /tmp/difface-build-log.txt
  [ "$(cat /tmp/difface-build-rc.txt)" = 0 ] || exit 1
  node -e "console.log(JSON.stringify(require('.').versions()))" | tee "$OUT/versions.json"
fi

if has benchcompiled; then
  # A later call copies the tree again, which makes models/*.py look newer than the
  # conversion; the conversion of these checkpoints is current, so the benchmark keeps it
  # (converting again would make the compiled packages' UNet file another file).
  [ -s "$models/difface.json" ] && touch "$models/difface.json"
  note "benchmark: engine, engine with the compiled UNet, eager; $COMPILE_DTYPES, batches $COMPILE_BATCHES"
  timeout "${BENCH_TIMEOUT:-300}" node bench/run.js --suite gpu --device "$DEVICE" --work "$WORK" --runs 2 --cached-only \
    --dtypes "$COMPILE_DTYPES" --batches "$COMPILE_BATCHES" --steps "${STEPS:-100}" --out "$OUT/bench-compiled.json"
fi

if has test; then
  note "CUDA tests"
  timeout "${TEST_TIMEOUT:-420}" node node_modules/mocha/bin/mocha.js --no-config --timeout 300000 build/test/gpu.test.js 2>&1 | tee "$OUT/gpu-tests.txt"
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
