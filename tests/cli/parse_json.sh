#!/bin/bash
# kiln parse --format=json: typed instructions as JSON, and errors with FILE:LINE.
. "$KILN_SRC/tests/lib.sh"

cd "$T"

# jq QUERY: evaluate a Python expression over the JSON in $out (bound to `d`).
jq() {
	printf '%s' "$out" | python3 -c 'import json, sys; d = json.load(sys.stdin); print(json.dumps(eval(sys.argv[1])))' "$1"
}

cat >Dockerfile <<'XEOF'
ARG BASE=alpine VERSION
FROM --platform=$BUILDPLATFORM ${BASE} AS Build
RUN --mount=type=cache,target=/root/.cache,sharing=locked,id=c \
    --mount=type=secret,id=tok,env=TOKEN,required \
    --network=none --security=insecure make all
RUN ["echo", "a b"]
COPY --from=build --chown=1:2 --chmod=0755 --link --parents --exclude=*.md --exclude=x a b* /dst/
ADD --checksum=sha256:00 --keep-git-dir=true --unpack=false https://x/y.tar /y
ENV A=1 B="2 3"
ENV LEGACY some value
LABEL "a b"=c
ONBUILD RUN echo hi
HEALTHCHECK --interval=1m30s --timeout=5s --start-period=1s --start-interval=250ms --retries=3 CMD curl -f http://x/
COPY <<EOF /etc/conf
hello
EOF
EXPOSE 80/tcp 53/udp
VOLUME ["/data", "/logs"]
USER app
WORKDIR /app
STOPSIGNAL SIGTERM
MAINTAINER me
SHELL ["/bin/bash", "-c"]
ENTRYPOINT exec app
CMD ["app", "-v"]
XEOF

run_kiln parse --format=json Dockerfile
expect_eq "exit code" "$rc" 0
expect_eq "file" "$(jq 'd["file"]')" '"Dockerfile"'
expect_eq "escape" "$(jq 'd["escape"]')" '"\\"'
expect_eq "count" "$(jq 'len(d["instructions"])')" 21
expect_eq "top-level key order" "$(jq 'list(d.keys())')" '["file", "escape", "instructions"]'
expect_eq "common key order" "$(jq 'list(d["instructions"][3].keys())[:6]')" \
	'["instruction", "start_line", "end_line", "flags", "args", "heredocs"]'
expect_eq "2-space indent" "$(printf '%s\n' "$out" | sed -n 2p)" '  "file": "Dockerfile",'

expect_eq "ARG pairs" "$(jq 'd["instructions"][0]["pairs"]')" \
	'[{"key": "BASE", "value": "alpine"}, {"key": "VERSION", "value": null}]'

i='d["instructions"][1]'
expect_eq "FROM" "$(jq "[$i[k] for k in ('instruction','image','stage','platform','start_line')]")" \
	'["FROM", "${BASE}", "build", "$BUILDPLATFORM", 2]'

i='d["instructions"][2]'
expect_eq "RUN lines" "$(jq "[$i['start_line'], $i['end_line']]")" '[3, 5]'
expect_eq "RUN command" "$(jq "[$i['command'], $i['shell_form']]")" '[["make all"], true]'
expect_eq "RUN network/security" "$(jq "[$i['network'], $i['security']]")" '["none", "insecure"]'
expect_eq "RUN mount 0" "$(jq "$i['mounts'][0]")" \
	'{"type": "cache", "target": "/root/.cache", "source": null, "from": null, "id": "c", "readonly": false, "sharing": "locked", "mode": null, "uid": null, "gid": null, "size": null, "required": false, "env": null}'
expect_eq "RUN mount 1" "$(jq "[$i['mounts'][1][k] for k in ('type','id','env','required','readonly')]")" \
	'["secret", "tok", "TOKEN", true, true]'

i='d["instructions"][3]'
expect_eq "RUN exec form" "$(jq "[$i['command'], $i['shell_form']]")" '[["echo", "a b"], false]'

i='d["instructions"][4]'
expect_eq "COPY fields" "$(jq "[$i[k] for k in ('sources','dest','from','chown','chmod','link','parents','exclude','unpack')]")" \
	'[["a", "b*"], "/dst/", "build", "1:2", "0755", true, true, ["*.md", "x"], null]'

i='d["instructions"][5]'
expect_eq "ADD fields" "$(jq "[$i[k] for k in ('sources','dest','checksum','keep_git_dir','unpack','link')]")" \
	'[["https://x/y.tar"], "/y", "sha256:00", true, false, false]'

expect_eq "ENV pairs" "$(jq 'd["instructions"][6]["pairs"]')" \
	'[{"key": "A", "value": "1"}, {"key": "B", "value": "\"2 3\""}]'
expect_eq "ENV legacy" "$(jq 'd["instructions"][7]["pairs"]')" '[{"key": "LEGACY", "value": "some value"}]'
expect_eq "LABEL" "$(jq 'd["instructions"][8]["pairs"]')" '[{"key": "\"a b\"", "value": "c"}]'

i='d["instructions"][9]'
expect_eq "ONBUILD" "$(jq "[$i['expression'], $i['trigger']['instruction'], $i['trigger']['command']]")" \
	'["RUN echo hi", "RUN", ["echo hi"]]'

i='d["instructions"][10]'
expect_eq "HEALTHCHECK" "$(jq "[$i[k] for k in ('none','test','shell_form','interval','timeout','start_period','start_interval','retries')]")" \
	'[false, ["curl -f http://x/"], true, 90000000000, 5000000000, 1000000000, 250000000, 3]'

i='d["instructions"][11]'
expect_eq "COPY heredoc" "$(jq "[$i['sources'], $i['dest'], $i['heredocs'], $i['start_line'], $i['end_line']]")" \
	'[[], "/etc/conf", [{"name": "EOF", "content": "hello\n", "expand": true, "chomp": false}], 14, 16]'

expect_eq "EXPOSE" "$(jq 'd["instructions"][12]["ports"]')" '["80/tcp", "53/udp"]'
expect_eq "VOLUME" "$(jq 'd["instructions"][13]["volumes"]')" '["/data", "/logs"]'
expect_eq "USER/WORKDIR/STOPSIGNAL/MAINTAINER" \
	"$(jq '[d["instructions"][k]["value"] for k in range(14, 18)]')" '["app", "/app", "SIGTERM", "me"]'
expect_eq "SHELL" "$(jq 'd["instructions"][18]["command"]')" '["/bin/bash", "-c"]'
expect_eq "ENTRYPOINT shell form" "$(jq '[d["instructions"][19]["command"], d["instructions"][19]["shell_form"]]')" \
	'[["exec app"], true]'
expect_eq "CMD exec form" "$(jq '[d["instructions"][20]["command"], d["instructions"][20]["shell_form"]]')" \
	'[["app", "-v"], false]'

# Escape directive is reported.
printf '# escape=`\nFROM a\n' >Dockerfile.esc
run_kiln parse --format=json Dockerfile.esc
expect_eq "escape directive exit" "$rc" 0
expect_eq "escape directive" "$(jq 'd["escape"]')" '"`"'

# Bytes that are not UTF-8 become U+FFFD; NUL bytes in args survive as \u0000.
printf 'FROM a\nRUN echo \000x \377 y\n' >Dockerfile.bytes
run_kiln parse --format=json Dockerfile.bytes
expect_eq "odd bytes exit" "$rc" 0
expect_eq "odd bytes args" "$(jq 'd["instructions"][1]["args"]')" '["echo \u0000x \ufffd y"]'

# Errors: FILE:LINE: message, exit 1, nothing on stdout.
expect_error() { # NAME DOCKERFILE-TEXT EXPECTED-STDERR
	printf '%b' "$2" >Dockerfile.bad
	run_kiln parse --format=json Dockerfile.bad
	expect_eq "$1: exit code" "$rc" 1
	expect_eq "$1: stdout" "$out" ""
	expect_contains "$1: stderr" "$err" "$3"
}
expect_error "unknown instruction" 'FROM a\nRUN x\n\nFOOBAR b c\n' 'Dockerfile.bad:4: unknown instruction: FOOBAR'
expect_error "unknown flag" 'FROM a\nCOPY --x=1 a b\n' 'Dockerfile.bad:2: unknown flag: --x'
expect_error "duplicate flag" 'FROM a\nCOPY --from=a --from=b a b\n' 'Dockerfile.bad:2: duplicate flag specified: --from'
expect_error "missing value" 'FROM a\nRUN --network x\n' 'Dockerfile.bad:2: missing a value on flag: --network'
expect_error "bad bool" 'FROM a\nCOPY --link=yes a b\n' 'Dockerfile.bad:2: expecting boolean value for flag --link, not: yes'
expect_error "bad mount" 'FROM a\nRUN \\\n  --mount=type=bind,sharing=locked,target=/x make\n' \
	'Dockerfile.bad:2: --mount=type=bind,sharing=locked,target=/x: invalid cache sharing set for bind mount'
expect_error "bad stage name" 'FROM a AS 1x\n' 'Dockerfile.bad:1: invalid name for build stage: "1x"'
expect_error "FROM misspelt AS" 'FROM a AZ b\n' 'Dockerfile.bad:1: FROM requires either one or three arguments'
expect_error "bad duration" 'FROM a\nHEALTHCHECK --interval=5 CMD x\n' 'Dockerfile.bad:2: invalid duration "5" for --interval'
expect_error "shell not json" 'FROM a\nSHELL /bin/sh -c\n' 'Dockerfile.bad:2: SHELL requires the arguments to be in JSON form'
expect_error "onbuild onbuild" 'FROM a\nONBUILD ONBUILD RUN x\n' 'Dockerfile.bad:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn'"'"'t allowed'
expect_error "copy one arg" 'FROM a\nCOPY a\n' 'Dockerfile.bad:2: COPY requires at least two arguments'

# --dump still accepts unknown instructions; only the typed step rejects them.
printf 'FROM a\nFOOBAR x\n' >Dockerfile.unk
run_kiln parse --dump Dockerfile.unk
expect_eq "dump accepts unknown" "$rc" 0

finish
