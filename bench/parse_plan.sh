#!/usr/bin/env bash
# Benchmark: `kiln parse --dump` and `kiln plan` of a generated 10,000-line Dockerfile.
# Prints the median wall time of RUNS runs of each (whole process, as a user sees it).
# Usage: bench/parse_plan.sh [path/to/kiln]   (default: build/kiln)
set -euo pipefail
KILN=${1:-build/kiln}
RUNS=${RUNS:-30}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# A realistic mix: several stages, ARG/ENV churn, RUN with mounts, COPY, heredocs.
gen() {
	python3 - "$1" "$2" <<'PY'
import sys
per_stage = int(sys.argv[2])
out = ["# syntax=docker/dockerfile:1", "ARG BASE=busybox", "ARG VERSION=1.0"]
lines = len(out)
stage = 0
while lines < 10000:
    out.append(f"FROM ${{BASE}} AS s{stage}")
    out.append("ARG VERSION")
    lines += 2
    for i in range(per_stage):
        k = i % 6
        if k == 0:
            out.append(f"ENV V{i}=${{VERSION}}-{i} P{i}=\"a b\"")
        elif k == 1:
            out.append(f"RUN --mount=type=cache,target=/cache/{i} echo step {i} \\")
            out.append(f"    && echo $V{i - 1} > /tmp/f{i}")
            lines += 1
        elif k == 2:
            out.append(f"COPY --chown=1:1 src/{i}.txt /app/{i}.txt")
        elif k == 3:
            out.append(f"WORKDIR /app/w{i}")
        elif k == 4:
            out.append(f"LABEL l{i}=\"v {i}\" stage=s{stage}")
        else:
            out.append("RUN <<EOF")
            out.append(f"echo heredoc {i}")
            out.append("EOF")
            lines += 2
        lines += 1
    if stage > 0:
        out.append(f"COPY --from=s{stage - 1} /tmp /prev")
        lines += 1
    stage += 1
out.append(f"FROM busybox\nCOPY --from=s{stage - 1} /app /app\nCMD [\"sh\"]")
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
}
mkdir -p "$dir/src"

median_ms() {
	local -a t=()
	for _ in $(seq "$RUNS"); do
		local s e
		s=$(date +%s%N)
		"$@" >/dev/null 2>&1
		e=$(date +%s%N)
		t+=($(((e - s) / 1000)))
	done
	printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%.2f ms (min %.2f ms)\n", m/1000, a[1]/1000}'
}

# Two shapes of 10,000 lines: many small stages (a config and history per stage), and a
# few long ones (deep chains of vertices).
for shape in "60 many small stages" "1200 a few long stages"; do
	set -- $shape
	gen "$dir/Dockerfile" "$1"
	shift
	echo "== $*: $(wc -l <"$dir/Dockerfile") lines, $RUNS runs each"
	printf '%-28s %s\n' "kiln parse --dump:" "$(median_ms "$KILN" parse --dump "$dir/Dockerfile")"
	if "$KILN" plan -f "$dir/Dockerfile" "$dir" >/dev/null 2>&1; then
		printf '%-28s %s\n' "kiln plan (json):" "$(median_ms "$KILN" plan -f "$dir/Dockerfile" "$dir")"
	else
		echo "kiln plan failed on the benchmark Dockerfile:" >&2
		"$KILN" plan -f "$dir/Dockerfile" "$dir" >/dev/null || true
		exit 1
	fi
done
