#!/usr/bin/env bash
# kiln plan: the build graph of examples/multistage and of small Dockerfiles, as JSON and
# dot, with --target pruning, build args, and errors with their Dockerfile line.
. "$KILN_SRC/tests/lib.sh"

EX="$KILN_SRC/examples/multistage"

# py EXPR: evaluate a Python expression over the JSON graph in $out (bound to g).
py() {
	printf '%s' "$out" | python3 -c "import json, sys
g = json.load(sys.stdin)
vs = g['vertices']
def by_desc(s):
    return [v for v in vs if s in v.get('description', '')]
print($1)"
}

# --- the example, JSON ---
run_kiln plan "$EX"
expect_eq "plan example exit code" "$rc" 0
expect_eq "json has top-level vertices" "$(py "isinstance(g['vertices'], list) and len(vs) > 5")" True
expect_eq "every vertex has digest/op/inputs/stage" \
	"$(py "all(v['digest'].startswith('sha256:') and len(v['digest']) == 71 and v['op'] in ('source', 'exec', 'file') and isinstance(v['inputs'], list) and 'stage' in v for v in vs)")" True
expect_eq "inputs come before their users" \
	"$(py "all(i in [w['digest'] for w in vs[:n]] for n, v in enumerate(vs) for i in v['inputs'])")" True
expect_eq "three stage results, the last is the target" \
	"$(py "[(r['stage'], r['target']) for r in g['results']]")" \
	"[('build', False), ('test', False), ('2', True)]"
expect_eq "busybox is normalised" \
	"$(py "sorted(set(v['def']['ref'] for v in vs if v['def'].get('type') == 'image'))")" \
	"['docker.io/library/busybox:latest']"
expect_eq "the cache mount is in the RUN" \
	"$(py "[m['id'] for v in by_desc('sh build.sh') for m in v['def']['mounts']]")" "['site-render']"
expect_eq ".dockerignore patterns in the context source" \
	"$(py "sorted(set(p for v in vs if v['def'].get('type') == 'local' for p in v['def']['exclude']))")" \
	"['*.swp', 'README.md', 'drafts']"
expect_eq "image config of the final stage" \
	"$(py "(lambda c: (c['User'], sorted(c['ExposedPorts']), c['Cmd'][0], c['Healthcheck']['Test'][0], c['Labels']['org.opencontainers.image.version']))(g['results'][2]['config']['config'])")" \
	"('65534:65534', ['8080/tcp'], 'httpd', 'CMD-SHELL', '1.0.0')"
json1=$out

# digests are stable from run to run
run_kiln plan "$EX"
expect_eq "second plan is identical" "$out" "$json1"

# --- dot ---
run_kiln plan --format dot "$EX"
expect_eq "dot exit code" "$rc" 0
expect_eq "dot starts with digraph" "${out%% *}" "digraph"
expect_contains "dot has edges" "$out" " -> "

# --- --target prunes ---
run_kiln plan --target build "$EX"
expect_eq "target build exit code" "$rc" 0
expect_eq "target build has only build vertices" "$(py "sorted(set(v['stage'] for v in vs))")" "['build']"
expect_eq "target build has one result" "$(py "[(r['stage'], r['target']) for r in g['results']]")" "[('build', True)]"
run_kiln plan --target TEST "$EX"
expect_eq "target names are case-insensitive" "$(py "[r['stage'] for r in g['results'] if r['target']]")" "['test']"

# --- build args change what uses them only ---
run_kiln plan --build-arg VERSION=2.0.0 "$EX"
d2=$(py "by_desc('sh build.sh')[0]['digest']")
d1=$(out=$json1 py "by_desc('sh build.sh')[0]['digest']")
expect_eq "VERSION changes the build RUN" "$([ "$d1" != "$d2" ] && echo changed)" changed
expect_eq "VERSION leaves the COPY before it alone" "$(py "by_desc('COPY pages/')[0]['digest']")" \
	"$(out=$json1 py "by_desc('COPY pages/')[0]['digest']")"

# --- temp Dockerfiles ---
mkdir -p "$T/ctx"
cat >"$T/ctx/Dockerfile" <<'EOF'
FROM busybox AS a
ARG USED=1
RUN echo $USED
FROM busybox AS b
RUN echo b
EOF
run_kiln plan --build-arg USED=2 --target a "$T/ctx"
d_used=$(py "by_desc('RUN echo')[0]['digest']")
run_kiln plan --target a "$T/ctx"
d_a=$(py "by_desc('RUN echo')[0]['digest']")
expect_eq "a used build arg changes the RUN digest" "$([ "$d_used" != "$d_a" ] && echo changed)" changed
run_kiln plan --build-arg OTHER=2 --target a "$T/ctx"
expect_eq "an unused build arg does not" "$(py "by_desc('RUN echo')[0]['digest']")" "$d_a"
expect_contains "unused build arg warning" "$err" "OTHER"
run_kiln plan --target b "$T/ctx"
expect_eq "target b prunes a" "$(py "len(by_desc('RUN echo \$USED'))")" 0

# -f - reads stdin; the context is still the directory
set +e
printf 'FROM scratch\nCOPY x /x\n' | "$KILN" plan -f - "$T/ctx" >"$T/stdout" 2>"$T/stderr"
rc=$?
set -e
out=$(cat "$T/stdout")
expect_eq "-f - exit code" "$rc" 0
expect_eq "-f - output: every vertex has its stage" "$(py "all('stage' in v for v in vs)")" True
expect_eq "-f - plans the stdin Dockerfile" "$(py "[v['def'].get('include') for v in vs if v['def'].get('type') == 'local']")" "[['x']]"

# --- errors ---
printf 'FROM busybox\nRUN true\nFOOBAR baz\n' >"$T/ctx/Dockerfile.bad"
run_kiln plan -f "$T/ctx/Dockerfile.bad" "$T/ctx"
expect_eq "unknown instruction exit code" "$rc" 1
expect_contains "unknown instruction message" "$err" "Dockerfile.bad:3: unknown instruction: FOOBAR"

printf 'FROM busybox AS a\nRUN true\nCOPY --from=a /x /y\n' >"$T/ctx/Dockerfile.cycle"
run_kiln plan -f "$T/ctx/Dockerfile.cycle" "$T/ctx"
expect_eq "circular --from exit code" "$rc" 1
expect_contains "circular --from message" "$err" "Dockerfile.cycle:3: "
expect_contains "circular --from says why" "$err" "circular dependency"

run_kiln plan --target nope "$EX"
expect_eq "unknown target exit code" "$rc" 1
expect_contains "unknown target message" "$err" 'target stage "nope" could not be found'

run_kiln plan "$T/no-such-dir"
expect_eq "missing context exit code" "$rc" 1
expect_contains "missing context message" "$err" "no-such-dir"
mkdir -p "$T/empty"
run_kiln plan "$T/empty"
expect_eq "missing Dockerfile exit code" "$rc" 1
expect_contains "missing Dockerfile message" "$err" "Dockerfile"

run_kiln plan
expect_eq "no context is a usage error" "$rc" 2
run_kiln plan --format yaml "$EX"
expect_eq "bad format is a usage error" "$rc" 2
run_kiln plan --bogus "$EX"
expect_eq "unknown option is a usage error" "$rc" 2

finish
