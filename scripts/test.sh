#!/usr/bin/env bash
# The whole test suite: a Release build with warnings as errors, then the
# same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
jobs=$(nproc)
cmake -S . -B build -DV4C_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DV4C_SANITIZE=ON -DV4C_WERROR=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --test-dir build-asan --output-on-failure -j"$jobs"

# Fuzz the text parsers briefly (libFuzzer, clang).
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DV4C_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_tokenizer fuzz_completion_parse fuzz_chat_encode
tests/text/fuzz_short.sh build-fuzz
