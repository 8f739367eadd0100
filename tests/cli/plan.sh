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

# --- base images' configs from the store, and --build-context, as kiln build plans ---
# mk_layout DIR TAG WORKDIR TRIGGER...: an OCI layout of one image (an empty layer) whose
# config has that WorkingDir and those ONBUILD triggers.
mk_layout() {
	python3 - "$@" <<'PY'
import gzip, hashlib, io, json, os, platform, sys, tarfile
d, tag, wd, trig = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
os.makedirs(d + "/blobs/sha256", exist_ok=True)
def blob(b):
    h = hashlib.sha256(b).hexdigest()
    open(d + "/blobs/sha256/" + h, "wb").write(b)
    return {"digest": "sha256:" + h, "size": len(b)}
raw = io.BytesIO()
tarfile.open(fileobj=raw, mode="w").close()
layer = blob(gzip.compress(raw.getvalue(), mtime=0))
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
cfg = blob(json.dumps({"architecture": arch, "os": "linux",
    "config": {"WorkingDir": wd, "OnBuild": trig},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]}}).encode())
man = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": dict(cfg, mediaType="application/vnd.oci.image.config.v1+json"),
    "layers": [dict(layer, mediaType="application/vnd.oci.image.layer.v1.tar+gzip")]}).encode())
open(d + "/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
open(d + "/index.json", "w").write(json.dumps({"schemaVersion": 2, "manifests": [dict(man,
    mediaType="application/vnd.oci.image.manifest.v1+json",
    annotations={"org.opencontainers.image.ref.name": tag})]}))
print(man["digest"])
PY
}
obdigest=$(mk_layout "$T/oblayout" v1 /srv 'RUN echo "from the trigger" > /trig' 'WORKDIR app')
mkdir -p "$T/obctx"
printf 'FROM obbase\nRUN pwd > /here\n' >"$T/obctx/Dockerfile"
run_kiln plan "$T/obctx"
expect_eq "an image not in the store is planned without its config: $err" "$rc" 0
expect_eq "so without its triggers" "$(py "len(by_desc('from the trigger'))")" 0
expect_eq "and planning made no store" "$(ls -A "$KILN_ROOT" 2>/dev/null)" ""
run_kiln load "$T/oblayout" obbase
expect_eq "load the ONBUILD base: $err" "$rc" 0
run_kiln plan "$T/obctx"
expect_eq "plan with the base in the store: $err" "$rc" 0
expect_eq "the base's ONBUILD triggers are in the plan, before the stage's own steps" \
	"$(py "[v['description'] for v in vs if v['op'] == 'exec']")" \
	"['[stage-0 2/4] RUN echo \"from the trigger\" > /trig', '[stage-0 4/4] RUN pwd > /here']"
expect_eq "and its WorkingDir is where the relative trigger WORKDIR goes" \
	"$(py "by_desc('RUN pwd')[0]['def']['cwd']")" "/srv/app"
expect_eq "as the result's config says" "$(py "g['results'][-1]['config']['config']['WorkingDir']")" "/srv/app"
with_store=$out
run_kiln --root "$T/elsewhere" plan "$T/obctx"
expect_eq "--root picks the store the configs come from" "$(py "len(by_desc('from the trigger'))")" 0

# a build context replaces a stage or an image, as in kiln build
printf 'FROM busybox AS base\nRUN echo base-stage\nFROM base\nRUN pwd > /here\n' >"$T/obctx/Dockerfile.ctx"
run_kiln plan -f "$T/obctx/Dockerfile.ctx" "$T/obctx"
expect_eq "without a build context the stage is built" "$(py "len(by_desc('base-stage'))")" 1
run_kiln plan --build-context base=docker-image://obbase -f "$T/obctx/Dockerfile.ctx" "$T/obctx"
expect_eq "docker-image:// replaces the stage: $err" "$(py "len(by_desc('base-stage'))")" 0
expect_eq "with that image, from the store" \
	"$(py "[v['def']['ref'] for v in vs if v['def'].get('type') == 'image']")" \
	"['docker.io/library/obbase:latest']"
expect_eq "whose triggers run" "$(py "len(by_desc('from the trigger'))")" 1
expect_eq "the same graph as FROM obbase" "$(py "[v['digest'] for v in vs]")" "$(out=$with_store py "[v['digest'] for v in vs]")"
run_kiln --root "$T/elsewhere2" plan --build-context "base=oci-layout://$T/oblayout:v1" -f "$T/obctx/Dockerfile.ctx" "$T/obctx"
expect_eq "oci-layout:// replaces the stage: $err" "$(py "[v['def']['ref'] for v in vs if v['def'].get('type') == 'image']")" "['$obdigest']"
expect_eq "its config read from the layout: the triggers run" "$(py "len(by_desc('from the trigger'))")" 1
expect_eq "and nothing was loaded into a store" "$(ls -A "$T/elsewhere2" 2>/dev/null)" ""
mkdir -p "$T/basedir"
echo hi >"$T/basedir/f"
run_kiln plan --build-context "base=$T/basedir" -f "$T/obctx/Dockerfile.ctx" "$T/obctx"
expect_eq "a directory replaces the stage with its files: $err" \
	"$(py "[v['def'].get('dir') for v in vs if v['def'].get('type') == 'local']")" "['$T/basedir']"
run_kiln plan --build-context "busybox=docker-image://obbase" -f "$T/obctx/Dockerfile.ctx" "$T/obctx"
expect_eq "a context named as an image replaces it" "$(py "sorted(set(v['def']['ref'] for v in vs if v['def'].get('type') == 'image'))")" \
	"['docker.io/library/obbase:latest']"
run_kiln plan --build-context nonsense "$T/obctx"
expect_eq "a build context without = is an error" "$rc" 1
expect_contains "saying what it wants" "$err" "want NAME=VALUE"
run_kiln plan --build-context "base=oci-layout://$T/oblayout:v2" "$T/obctx"
expect_eq "an oci-layout without that tag is an error" "$rc" 1
expect_contains "naming the tag" "$err" "no image v2"

run_kiln plan
expect_eq "no context is a usage error" "$rc" 2
run_kiln plan --format yaml "$EX"
expect_eq "bad format is a usage error" "$rc" 2
run_kiln plan --bogus "$EX"
expect_eq "unknown option is a usage error" "$rc" 2

finish
