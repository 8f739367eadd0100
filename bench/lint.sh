#!/usr/bin/env bash
# Benchmark: `kiln lint` of a generated 1,000-line Dockerfile (target: under 10 ms).
# Prints the median wall time of RUNS runs (whole process, as a user sees it) for text
# and SARIF output.
# Usage: bench/lint.sh [path/to/kiln]   (default: build/kiln)
set -euo pipefail
KILN=${1:-build/kiln}
RUNS=${RUNS:-50}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# A realistic mix that keeps every rule busy: stages, ARG/ENV scopes with variables,
# RUNs with package managers and mounts, COPY/chmod/rm, heredocs, a .dockerignore.
# No stage copies from another, so all of them count as shipped and the size rules run.
python3 - "$dir/Dockerfile" <<'PY'
import sys
out = ["# syntax=docker/dockerfile:1", "# check=error=false", "ARG BASE=alpine:3.20",
       "ARG VERSION=1.0"]
stage = 0
while len(out) < 1000:
    out.append(f"FROM ${{BASE}} AS s{stage}")
    out.append("ARG VERSION")
    for i in range(40):
        k = i % 10
        if k == 0:
            out.append(f"ENV V{i}=${{VERSION}}-{i} P{i}=\"a b\" PATH=$PATH:/opt/{i}")
        elif k == 1:
            out.append(f"RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\")
            out.append(f"    apt-get update && apt-get install -y --no-install-recommends pkg{i} \\")
            out.append(f"    && rm -rf /var/lib/apt/lists/*")
        elif k == 2:
            out.append(f"COPY --chown=1:1 src/{i}.txt /app/{i}.txt")
        elif k == 3:
            out.append(f"WORKDIR /app/w{i}")
        elif k == 4:
            out.append(f"LABEL l{i}=\"v {i}\" stage=s{stage} version=$VERSION")
        elif k == 5:
            out.append("RUN <<EOF")
            out.append(f"pip install --no-cache-dir pkg{i}")
            out.append(f"curl -fsSLo /tmp/f{i}.tgz https://example.com/f{i}.tgz")
            out.append("EOF")
        elif k == 6:
            out.append(f"RUN chmod 0644 /app/{i - 4}.txt && rm -f /tmp/f{i - 1}.tgz")
        elif k == 7:
            out.append(f"EXPOSE {8000 + i}/tcp")
        elif k == 8:
            out.append(f"COPY package.json package-lock.json ./")
        else:
            out.append(f"RUN --mount=type=cache,target=/root/.npm npm ci && echo $V{i - 9}")
    stage += 1
out.append(f"FROM alpine:3.20\nCOPY --from=s{stage - 1} /app /app\nUSER app\nCMD [\"sh\"]")
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
mkdir -p "$dir/src"
printf 'node_modules\n*.log\n' >"$dir/.dockerignore"
echo "Dockerfile: $(wc -l <"$dir/Dockerfile") lines, $RUNS runs each"
"$KILN" lint "$dir" >"$dir/findings" || true
echo "findings: $(wc -l <"$dir/findings")"

median_ms() {
	local -a t=()
	for _ in $(seq "$RUNS"); do
		local s e
		s=$(date +%s%N)
		"$@" >/dev/null || true
		e=$(date +%s%N)
		t+=($(((e - s) / 1000)))
	done
	printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%.2f ms (min %.2f ms)\n", m/1000, a[1]/1000}'
}

printf '%-28s %s\n' "kiln lint (text):" "$(median_ms "$KILN" lint "$dir")"
printf '%-28s %s\n' "kiln lint --format sarif:" "$(median_ms "$KILN" lint --format sarif "$dir")"
