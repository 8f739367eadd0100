#!/bin/bash
# kiln lint: text, JSON and SARIF output, exit codes, --list, the check directive and
# build arg, CopyIgnoredFile with a context, and no false positives on the project's own
# Dockerfiles.
. "$KILN_SRC/tests/lib.sh"

cd "$T"

# pyq QUERY: evaluate a Python expression over the JSON in $out (bound to `d`).
pyq() {
	printf '%s' "$out" | python3 -c 'import json, sys; d = json.load(sys.stdin); print(json.dumps(eval(sys.argv[1])))' "$1"
}

mkdir -p ctx
cat >ctx/Dockerfile <<'XEOF'
FROM alpine:3.20 as build
RUN apk add --no-cache curl
CMD echo \
    hi
COPY secret.txt /x
USER app
XEOF
printf 'secret.txt\n' >ctx/.dockerignore

# ---- text ----
run_kiln lint ctx
expect_eq "text: exit code" "$rc" 1
expect_eq "text: output" "$out" "ctx/Dockerfile:1: warning FromAsCasing: 'as' and 'FROM' keywords' casing do not match
ctx/Dockerfile:3: warning JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals
ctx/Dockerfile:5: warning CopyIgnoredFile: Attempting to Copy file \"secret.txt\" that is excluded by .dockerignore"
expect_eq "text: stderr" "$err" ""

# -f without CONTEXT: no .dockerignore, so no CopyIgnoredFile
run_kiln lint -f ctx/Dockerfile
expect_eq "-f: exit code" "$rc" 1
expect_eq "-f: findings" "$(printf '%s\n' "$out" | wc -l)" 2

# stdin
run_kiln lint -f - </dev/null
expect_eq "empty stdin: parse error exit" "$rc" 2
set +e
out=$(printf 'FROM alpine:3.20\nUSER app\n' | "$KILN" lint -f -)
rc=$?
set -e
expect_eq "stdin clean: exit" "$rc" 0
expect_eq "stdin clean: no output" "$out" ""
set +e
out=$(printf 'FROM alpine\nUSER app\n' | "$KILN" lint -)
rc=$?
set -e
expect_eq "lint -: exit" "$rc" 1
expect_eq "lint -: reads stdin" "$out" "-:1: warning FromLatestTag: FROM alpine has no tag, so it means whatever :latest is today: pin a version (alpine:<version>)"

# ---- JSON ----
run_kiln lint --format json ctx
expect_eq "json: exit code" "$rc" 1
expect_eq "json: count" "$(pyq 'len(d)')" 3
expect_eq "json: first" "$(pyq 'd[0]')" \
	'{"file": "ctx/Dockerfile", "line": 1, "end_line": 1, "severity": "warning", "rule": "FromAsCasing", "message": "'"'"'as'"'"' and '"'"'FROM'"'"' keywords'"'"' casing do not match", "url": "https://docs.docker.com/go/dockerfile/rule/from-as-casing/"}'
expect_eq "json: multi-line instruction spans its lines" "$(pyq '[d[1]["line"], d[1]["end_line"]]')" '[3, 4]'

run_kiln lint --format=json -f ctx/Dockerfile --build-arg BUILDKIT_DOCKERFILE_CHECK=skip=all
expect_eq "json clean: exit" "$rc" 0
expect_eq "json clean: empty array" "$(pyq 'd')" '[]'

# ---- SARIF 2.1.0 ----
run_kiln lint --format sarif ctx
expect_eq "sarif: exit code" "$rc" 1
printf '%s' "$out" >sarif.json
# The SARIF 2.1.0 schema file is not available offline here: check the structure the
# schema requires (and GitHub code scanning reads) with a schema of our own, by
# jsonschema when Python has it, and by hand always.
cat >sarif-structure.json <<'XEOF'
{
  "type": "object",
  "required": ["version", "$schema", "runs"],
  "properties": {
    "version": {"const": "2.1.0"},
    "$schema": {"type": "string", "pattern": "sarif-schema-2\\.1\\.0\\.json$"},
    "runs": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
      "type": "object", "required": ["tool", "results"],
      "properties": {
        "tool": {"type": "object", "required": ["driver"], "properties": {
          "driver": {"type": "object", "required": ["name", "rules"], "properties": {
            "name": {"const": "kiln"},
            "rules": {"type": "array", "items": {
              "type": "object",
              "required": ["id", "shortDescription", "defaultConfiguration"],
              "properties": {
                "id": {"type": "string", "minLength": 1},
                "shortDescription": {"type": "object", "required": ["text"],
                                     "properties": {"text": {"type": "string", "minLength": 1}}},
                "defaultConfiguration": {"type": "object", "required": ["level"],
                  "properties": {"level": {"enum": ["none", "note", "warning", "error"]}}},
                "helpUri": {"type": "string", "pattern": "^https://"}}}}}}}},
        "results": {"type": "array", "items": {
          "type": "object", "required": ["ruleId", "level", "message", "locations"],
          "properties": {
            "ruleId": {"type": "string"},
            "ruleIndex": {"type": "integer", "minimum": 0},
            "level": {"enum": ["none", "note", "warning", "error"]},
            "message": {"type": "object", "required": ["text"],
                        "properties": {"text": {"type": "string", "minLength": 1}}},
            "locations": {"type": "array", "minItems": 1, "items": {
              "type": "object", "required": ["physicalLocation"], "properties": {
                "physicalLocation": {"type": "object",
                  "required": ["artifactLocation", "region"], "properties": {
                    "artifactLocation": {"type": "object", "required": ["uri"],
                      "properties": {"uri": {"type": "string", "minLength": 1}}},
                    "region": {"type": "object", "required": ["startLine", "endLine"],
                      "properties": {"startLine": {"type": "integer", "minimum": 1},
                                     "endLine": {"type": "integer", "minimum": 1}}}}}}}}}}}}}}}
}
XEOF
sarif_check=$(python3 - sarif.json sarif-structure.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
schema = json.load(open(sys.argv[2]))
import jsonschema  # python3-jsonschema; CI installs it
jsonschema.validate(d, schema)
assert d["version"] == "2.1.0"
run = d["runs"][0]
driver = run["tool"]["driver"]
assert driver["name"] == "kiln"
ids = [r["id"] for r in driver["rules"]]
assert len(ids) == len(set(ids)) == 37, ids
for r in driver["rules"]:
    assert r["shortDescription"]["text"]
    assert r["defaultConfiguration"]["level"] in ("note", "warning", "error")
    assert r["helpUri"].startswith("https://") if r["id"] in ids[:20] else "helpUri" not in r
for res in run["results"]:
    assert res["ruleId"] == ids[res["ruleIndex"]]
    assert res["level"] in ("note", "warning", "error")
    loc = res["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "ctx/Dockerfile"
    assert 1 <= loc["region"]["startLine"] <= loc["region"]["endLine"]
print(json.dumps([[r["ruleId"], r["level"], r["locations"][0]["physicalLocation"]["region"]["startLine"], r["locations"][0]["physicalLocation"]["region"]["endLine"]] for r in run["results"]]))
PY
)
expect_eq "sarif: valid, results" "$sarif_check" \
	'[["FromAsCasing", "warning", 1, 1], ["JSONArgsRecommended", "warning", 3, 4], ["CopyIgnoredFile", "warning", 5, 5]]'
expect_eq "sarif: message" "$(pyq 'd["runs"][0]["results"][2]["message"]["text"]')" \
	'"Attempting to Copy file \"secret.txt\" that is excluded by .dockerignore"'
expect_eq "sarif: rule description" \
	"$(pyq '[r for r in d["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "PackageCacheMount"][0]["defaultConfiguration"]')" \
	'{"level": "note"}'

# bytes that are not UTF-8 in a message still make valid JSON (U+FFFD)
printf 'FROM alpine:3.20\nWORKDIR a\377\nUSER app\n' >utf8.Dockerfile
run_kiln lint --format json -f utf8.Dockerfile
expect_eq "bad UTF-8: exit" "$rc" 1
expect_eq "bad UTF-8: message" "$(pyq 'd[0]["message"]')" '"Relative workdir \"a\ufffd\" can have unexpected results if the base image changes"'
run_kiln lint --format sarif -f utf8.Dockerfile
expect_eq "bad UTF-8: sarif result" "$(pyq 'len(d["runs"][0]["results"])')" 1

# ---- --error-on ----
cat >info.Dockerfile <<'XEOF'
FROM alpine:3.20
RUN echo hi
XEOF
run_kiln lint -f info.Dockerfile
expect_eq "info only: exit 0 at the default --error-on warning" "$rc" 0
expect_eq "info only: printed" "$out" "info.Dockerfile:1: info FinalStageRunsAsRoot: the final stage runs as root: add 'USER <name or uid>' after the steps that need root"
run_kiln lint -f info.Dockerfile --error-on info
expect_eq "--error-on info: exit 1" "$rc" 1
run_kiln lint -f info.Dockerfile --error-on=warning
expect_eq "--error-on=warning: exit 0" "$rc" 0

# ---- the check directive and the build arg ----
cat >check.Dockerfile <<'XEOF'
# check=skip=JSONArgsRecommended;error=true
FROM alpine
USER app
CMD echo hi
XEOF
run_kiln lint -f check.Dockerfile
expect_eq "directive: exit" "$rc" 1
expect_eq "directive: skip and error=true" "$out" "check.Dockerfile:2: error FromLatestTag: FROM alpine has no tag, so it means whatever :latest is today: pin a version (alpine:<version>)"
run_kiln lint -f check.Dockerfile --build-arg "BUILDKIT_DOCKERFILE_CHECK=skip=FromLatestTag"
expect_eq "build arg overrides the directive: exit" "$rc" 1
expect_eq "build arg overrides the directive" "$out" "check.Dockerfile:4: warning JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals"
BUILDKIT_DOCKERFILE_CHECK="skip=all" run_kiln lint -f check.Dockerfile --build-arg BUILDKIT_DOCKERFILE_CHECK
expect_eq "build arg from the environment: exit" "$rc" 0
printf '# check=nonsense\nFROM alpine:3.20\n' >bad-check.Dockerfile
run_kiln lint -f bad-check.Dockerfile
expect_eq "bad directive: exit 2" "$rc" 2
expect_contains "bad directive: message" "$err" "bad-check.Dockerfile: invalid check directive"

# ---- usage and parse errors ----
run_kiln lint --format xml ctx
expect_eq "bad format: exit 2" "$rc" 2
expect_contains "bad format: message" "$err" 'unknown format "xml"'
run_kiln lint --error-on error2 ctx
expect_eq "bad --error-on: exit 2" "$rc" 2
run_kiln lint --bogus
expect_eq "unknown option: exit 2" "$rc" 2
run_kiln lint ctx other
expect_eq "two contexts: exit 2" "$rc" 2
run_kiln lint -f missing.Dockerfile
expect_eq "missing file: exit 2" "$rc" 2
printf 'FROM alpine:3.20\nFROBNICATE x\n' >parse.Dockerfile
run_kiln lint -f parse.Dockerfile
expect_eq "unknown instruction: exit 2" "$rc" 2
expect_eq "unknown instruction: message" "$err" "parse.Dockerfile:2: unknown instruction: FROBNICATE"
run_kiln lint --help
expect_eq "help: exit 0" "$rc" 0
expect_contains "help: usage" "$out" "Usage: kiln lint"

# ---- --list ----
run_kiln lint --list
expect_eq "list: exit" "$rc" 0
expect_eq "list: one line per rule" "$(printf '%s\n' "$out" | wc -l)" 37
expect_contains "list: a BuildKit rule" "$out" "UndefinedVar                     warning  Variables should be defined before their use"
expect_contains "list: a kiln rule" "$out" "PackageCacheMount                info     A package download in RUN without a cache mount"
for r in StageNameCasing FromAsCasing NoEmptyContinuation ConsistentInstructionCasing \
	DuplicateStageName ReservedStageName JSONArgsRecommended MaintainerDeprecated \
	UndefinedArgInFrom WorkdirRelativePath UndefinedVar MultipleInstructionsDisallowed \
	LegacyKeyValueFormat RedundantTargetPlatform SecretsUsedInArgOrEnv \
	InvalidDefaultArgInFrom FromPlatformFlagConstDisallowed CopyIgnoredFile \
	ExposeProtoCasing ExposeInvalidFormat; do
	expect_contains "list: BuildKit's $r" "$out" "$r "
done
run_kiln lint --list --format json
expect_eq "list json: count" "$(pyq 'len(d)')" 37
expect_eq "list json: keys" "$(pyq 'sorted(d[0].keys())')" '["description", "name", "origin", "severity", "url"]'

# ---- no false positives on the project's own Dockerfiles ----
# Every Dockerfile under examples/ must be clean. The parser fixtures under tests/ are
# written to exercise syntax, not to be good Dockerfiles: those that are valid
# instructions may only draw the findings listed here, each of which is true of the file.
allowed="
bom.dockerfile FromLatestTag
bom.dockerfile FinalStageRunsAsRoot
bom_directive.dockerfile FromLatestTag
bom_directive.dockerfile FinalStageRunsAsRoot
crlf.dockerfile FromLatestTag
crlf.dockerfile FinalStageRunsAsRoot
directive_ignored_5.dockerfile FromLatestTag
directive_ignored_5.dockerfile FinalStageRunsAsRoot
directive_late_invalid.dockerfile FromLatestTag
directive_late_invalid.dockerfile FinalStageRunsAsRoot
escape_backtick.dockerfile FromLatestTag
escape_backtick.dockerfile FinalStageRunsAsRoot
lowercase.dockerfile FromLatestTag
lowercase.dockerfile FinalStageRunsAsRoot
lowercase.dockerfile ConsistentInstructionCasing
continuation.dockerfile NoEmptyContinuation
basic ApkAddWithoutNoCache
basic PackageCacheMount
basic FinalStageRunsAsRoot
crlf-bom FromLatestTag
crlf-bom FinalStageRunsAsRoot
crlf-bom LegacyKeyValueFormat
directives FromLatestTag
directives FinalStageRunsAsRoot
heredocs FromLatestTag
heredocs FinalStageRunsAsRoot
"
nexamples=0
while IFS= read -r -d '' df; do
	nexamples=$((nexamples + 1))
	run_kiln lint --error-on info -f "$df" "$(dirname "$df")"
	expect_eq "example $df: no finding" "$out" ""
	expect_eq "example $df: exit" "$rc" 0
done < <(find "$KILN_SRC/examples" -name 'Dockerfile*' -type f -print0 2>/dev/null)
nfixtures=0
for df in "$KILN_SRC"/tests/frontend/dump/*.dockerfile "$KILN_SRC"/tests/fuzz/seeds-parser/*; do
	[ -f "$df" ] || continue
	run_kiln lint --format json -f "$df"
	[ "$rc" -eq 2 ] && continue # a parser error case, or instructions kiln rejects
	nfixtures=$((nfixtures + 1))
	name=$(basename "$df")
	while IFS= read -r rule; do
		[ -n "$rule" ] || continue
		checks=$((checks + 1))
		case "$allowed" in
		*"
$name $rule
"*) ;;
		*) fail "$name: unexpected $rule finding: $out" ;;
		esac
	done < <(pyq '"\n".join(sorted({f["rule"] for f in d}))' | python3 -c 'import json,sys; print(json.load(sys.stdin))')
done
checks=$((checks + 1))
[ "$nfixtures" -ge 10 ] || fail "only $nfixtures fixture Dockerfiles linted"
echo "linted $nexamples example and $nfixtures fixture Dockerfiles"

finish
