#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what it needs, builds
# kiln (warnings are errors, with ASan/UBSan), runs the parser fuzzer briefly, then every
# unit, CLI and integration test with ctest. Fails if any test was skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
	build-essential cmake pkg-config clang libclang-rt-14-dev \
	libssl-dev libcurl4-openssl-dev libjansson-dev libarchive-dev libzstd-dev zlib1g-dev libdeflate-dev libcmocka-dev \
	busybox-static docker-registry skopeo umoci runc podman zstd openssl apache2-utils ca-certificates \
	python3 python3-jsonschema curl openssh-client >/dev/null

jobs=$(nproc)

# Fuzz the parsers for a short while (libFuzzer needs clang).
CC=clang cmake -S . -B build-fuzz -DKILN_FUZZ=ON -DKILN_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"$jobs" >/dev/null
for fuzzer in build-fuzz/fuzz_*; do
	[ -x "$fuzzer" ] || continue
	name=$(basename "$fuzzer")
	mkdir -p "build-fuzz/corpus-$name"
	seeds=tests/fuzz/seeds-${name#fuzz_}
	echo "== $name: ${KILN_FUZZ_SECONDS:-60}s"
	"$fuzzer" -max_total_time="${KILN_FUZZ_SECONDS:-60}" -max_len=4096 -print_final_stats=0 \
		"build-fuzz/corpus-$name" $( [ -d "$seeds" ] && echo "$seeds" ) 2>build-fuzz/$name.log ||
		{ tail -50 build-fuzz/$name.log; exit 1; }
done

# An optimised build with warnings as errors: -O2 finds uninitialised paths that the
# sanitizer build does not.
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=ON -DKILN_TESTS=OFF >/dev/null
cmake --build build-release -j"$jobs" >/dev/null

cmake -S . -B build -DKILN_WERROR=ON -DKILN_SANITIZE=ON >/dev/null
cmake --build build -j"$jobs"
set +e
ctest --test-dir build --output-on-failure -j"$jobs" 2>&1 | tee build/ctest.log
rc=${PIPESTATUS[0]}
set -e
if grep -q '(Skipped)\|\*\*\*Skipped' build/ctest.log; then
	echo "some tests were skipped; CI runs every test" >&2
	exit 1
fi
exit "$rc"
