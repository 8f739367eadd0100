#!/usr/bin/env python3
# Writes the golden cases of `kiln parse --dump` (NAME.dockerfile + NAME.expected, or
# NAME.error for a case that must fail) from the tables below. The expected outputs are
# derived by hand from shared/spec/parse-dump.md. The generated files are committed; rerun
# after editing this script:  python3 tests/frontend/dump/make-cases.py
import os

HERE = os.path.dirname(os.path.abspath(__file__))

OK = {}
ERR = {}

OK["spec_examples"] = (
    b'FROM --platform=$BUILDPLATFORM golang:1.22 AS build\n'
    b'RUN --mount=type=cache,target=/x ["echo","a"]\n'
    b'COPY --from="a b" x y\n'
    b'ONBUILD --a ONBUILD --b RUN --c x\n'
    b'FooBar a b c\n'
    b'Run  echo   hi\n'
    b'ENV a\\ b c\n'
    b'ARG a="b c" d=e\\ f g\n'
    b'RUN echo \x01\x07\x7f \xc3\xa9\xc2\xa0x\n'
    b'RUN a\rb\n'
    b'CMD ["\\u00e9", "\\ud800"]\n'
    b'RUN [\x0c"a"]\n'
    b'RUN <<EOF\nFROM y\nEOF\n'
    b'RUN ["sh", "<<X"]\nX\n',
    r'''(from ["--platform=$BUILDPLATFORM"] "golang:1.22" "AS" "build")
(run ["--mount=type=cache,target=/x"] "echo" "a")
(copy ["--from=a b"] "x" "y")
(onbuild ["--a"] (onbuild ["--b"] (run ["--c"] "x")))
(foobar "")
(run "echo   hi")
(env "a\\" "b c" "")
(arg "a=\"b c\"" "d=e\\ f" "g")
(run "echo \x01\a\x7f é\u00a0x")
(run "a\rb")
(cmd "é" "�")
(run "[\f\"a\"]")
(run "<<EOF")
(run "sh" "<<X")
(x "")
''')

OK["grammar"] = (
    b'COPY --from=a --chown=1:1 src dst\n'
    b'CMD\n'
    b'HEALTHCHECK\n'
    b'HEALTHCHECK CMD a b\n'
    b'HEALTHCHECK CONNECT TCP 7000\n'
    b'HEALTHCHECK --interval=5s CMD ["curl", "-f"]\n'
    b'HEALTHCHECK NONE\n'
    b'HEALTHCHECK CMD "a b"\n',
    r'''(copy ["--from=a" "--chown=1:1"] "src" "dst")
(cmd)
(healthcheck)
(healthcheck "CMD" "a b")
(healthcheck "CONNECT" "TCP 7000")
(healthcheck ["--interval=5s"] "CMD" "curl" "-f")
(healthcheck "NONE")
(healthcheck "CMD" "\"a b\"")
''')

OK["onbuild"] = (
    b'ONBUILD RUN echo x\n'
    b'ONBUILD --f COPY --from=a b c\n'
    b'ONBUILD ONBUILD RUN x\n'
    b'ONBUILD FOO a b\n'
    b'ONBUILD\n'
    b'onbuild run   a  b\n'
    b'ONBUILD ENV a=b c=d\n'
    b'ONBUILD CMD ["x"]\n',
    r'''(onbuild (run "echo x"))
(onbuild ["--f"] (copy ["--from=a"] "b" "c"))
(onbuild (onbuild (run "x")))
(onbuild (foo ""))
(onbuild)
(onbuild (run "a  b"))
(onbuild (env "a" "b" "=" "c" "d" "="))
(onbuild (cmd "x"))
''')

OK["unknown"] = (
    b'FooBar a b c\n'
    b'FOO --x y\n'
    b'BAR\n'
    b'R\xc3\x9cN x\n'
    b'\xc4\xb0X a\n'
    b'AB\xff c\n',
    r'''(foobar "")
(foo ["--x"] "")
(bar "")
(rün "")
(ix "")
(ab� "")
''')

OK["lowercase"] = (
    b'fRoM a\n'
    b'Run  echo   hi\n'
    b'wOrKdIr /X\n',
    r'''(from "a")
(run "echo   hi")
(workdir "/X")
''')

OK["quoting"] = (
    b'RUN echo \x01\x07\x7f \xc3\xa9\xc2\xa0x\n'
    b'RUN \x00 \x1b \x08\x0b\x0cz\n'
    b'RUN \xe2\x82\xac \xe2\x99\xa5 \xe2\x98\x83 \xf0\x9f\x98\x80 \xef\xbf\xbd\n'
    b'RUN \xe2\x80\x8b \xef\xbb\xbf \xe2\x80\xa8 \xe3\x80\x80 \xc2\x85 z\n'
    b'RUN \xff \xc2 z \xed\xa0\x80 \xc0\xaf \xe2\x82\n'
    b'RUN \xf3\xa0\x80\x81 \xc2\xad\n'
    b'RUN "q" \\ end\n'
    b'RUN a\tb\n',
    r'''(run "echo \x01\a\x7f é\u00a0x")
(run "\x00 \x1b \b\v\fz")
(run "€ ♥ ☃ 😀 �")
(run "\u200b \ufeff \u2028 \u3000 \u0085 z")
(run "\xff \xc2 z \xed\xa0\x80 \xc0\xaf \xe2\x82")
(run "\U000e0001 \u00ad")
(run "\"q\" \\ end")
(run "a\tb")
''')

OK["continuation"] = (
    b'RUN echo hello\\\n  world\n'
    b'RUN a \\\n b\n'
    b'ENV E hello\\\n\\\nworld\n'
    b'RUN a \\\n# c\n\n b\n'
    b'RUN p \\\n  # x \\\n q\n'
    b'RUN t \\ \t \nu\n'
    b'RUN x \\\\\n'
    b'RUN y\n'
    b'   # indented comment\n'
    b'RUN echo hello \\',
    r'''(run "echo hello  world")
(run "a  b")
(env "E" "helloworld" "")
(run "a  b")
(run "p  q")
(run "t u")
(run "x \\\\")
(run "y")
(run "echo hello")
''')

OK["crlf"] = (
    b'FROM x\r\nRUN a \\\r\n  b\r\nRUN c\r\r\nRUN d\re\r\n',
    r'''(from "x")
(run "a   b")
(run "c")
(run "d\re")
''')

OK["bom"] = (
    b'\xef\xbb\xbfFROM x\nRUN \xef\xbb\xbf\n',
    r'''(from "x")
(run "\ufeff")
''')

OK["bom_directive"] = (
    b'\xef\xbb\xbf# escape=`\nFROM x\nRUN a `\n b\n',
    r'''(from "x")
(run "a  b")
''')

OK["escape_backtick"] = (
    b'# escape=`\n'
    b'FROM x\n'
    b'RUN a `\n  b\n'
    b'RUN c \\\n'
    b'RUN d ``\n'
    b'COPY --from=`"q `" a b\n'
    b'ARG x=`"y\n'
    b'ENV k=a` b\n'
    b'RUN <<EOF\n'
    b'body `\n'
    b'EOF\n',
    r'''(from "x")
(run "a   b")
(run "c \\")
(run "d ``")
(copy ["--from=\"q"] "`\"" "a" "b")
(arg "x=`\"y")
(env "k" "a` b" "=")
(run "<<EOF")
''')

OK["directives"] = (
    b'# syntax=docker/dockerfile:1\n'
    b'#ESCAPE = `  \n'
    b'  # check=skip=all\n'
    b'FROM x\n'
    b'RUN a `\n b\n',
    r'''(from "x")
(run "a  b")
''')

for i, first in enumerate([b'# foo=bar\n', b'\n', b'#!/bin/sh\n', b'# a comment\n', b'FROM x\n']):
    OK["directive_ignored_%d" % (i + 1)] = (
        first + b'# escape=`\nRUN a \\\n b\n',
        ('(from "x")\n' if first.startswith(b'FROM') else '') + '(run "a  b")\n')

OK["directive_late_invalid"] = (
    b'FROM x\n# escape=x\n# escape=y\n',
    '(from "x")\n')

OK["flags"] = (
    b'COPY -- foo /tmp/\n'
    b'COPY --a -- --b c\n'
    b'RUN --x=\\"q\\" a\n'
    b'RUN --a="" b\n'
    b'RUN -x y\n'
    b'RUN "--a" b\n'
    b"RUN --a='b c' --d=\"e\\\"f\" g\n"
    b'RUN --a=\xc3\xa9 x\n'
    b'RUN --e=x\\ y z\n'
    b'RUN --only\n'
    b'RUN --a=1   --b   rest  of  line\n'
    b"RUN --a='x\\'y' z\n"
    b'COPY --a --\n'
    b'RUN --""\n'
    b'RUN --a --b=[1] ["x"]\n',
    r'''(copy "foo" "/tmp/")
(copy ["--a"] "--b" "c")
(run ["--x=\"q\""] "a")
(run ["--a="] "b")
(run "-x y")
(run "\"--a\" b")
(run ["--a=b c" "--d=e\"f"] "g")
(run ["--a=Ã©"] "x")
(run ["--e=x y"] "z")
(run ["--only"])
(run ["--a=1" "--b"] "rest  of  line")
(run ["--a=x'y"] "z")
(copy ["--a"])
(run)
(run ["--a" "--b=[1]"] "x")
''')

OK["args_rules"] = (
    b'FROM a AS b\n'
    b'FROM   a\tb\n'
    b'EXPOSE 80/tcp  443\n'
    b'ADD a b c\n'
    b'ADD ["a b", "c"]\n'
    b'VOLUME /a /b\n'
    b'VOLUME ["/v"]\n'
    b'MAINTAINER  me <me@x>  \n'
    b'USER  a b\n'
    b'WORKDIR /a  b\n'
    b'STOPSIGNAL SIGKILL\n'
    b'SHELL ["/bin/sh", "-c"]\n'
    b'ENTRYPOINT exec a\n'
    b'CMD []\n'
    b'CMD [""]\n'
    b'RUN\nENV\nLABEL\nARG\nEXPOSE\nFROM\nVOLUME\nADD\nUSER\nSHELL\nCOPY\nWORKDIR\n',
    r'''(from "a" "AS" "b")
(from "a" "b")
(expose "80/tcp" "443")
(add "a" "b" "c")
(add "a b" "c")
(volume "/a" "/b")
(volume "/v")
(maintainer "me <me@x>")
(user "a b")
(workdir "/a  b")
(stopsignal "SIGKILL")
(shell "/bin/sh" "-c")
(entrypoint "exec a")
(cmd)
(cmd "")
(run)
(env)
(label)
(arg)
(expose)
(from)
(volume)
(add)
(user)
(shell)
(copy)
(workdir)
''')

OK["json"] = (
    b"CMD ['a']\n"
    b'CMD ["a"] x\n'
    b'CMD ["a",]\n'
    b'CMD ["a"\n'
    b'CMD ["a\\u0041\\n\\t\\"\\\\\\/", "\\ud83d\\ude00", "\\ud800x", "\\udc00", "\\ud800\\u0041"]\n'
    b'RUN [ "a" , "b" ]\t\n'
    b'RUN [\x0b"a"]\n'
    b'RUN [\x0c"a"]\n'
    b'RUN ["raw\ttab"]\n'
    b'RUN ["\xc3\xa9", "\xff"]\n'
    b'COPY ["a", "b"]\n'
    b'COPY [ broken\n'
    b'RUN [1\n'
    b'RUN ["a"]]\n'
    b'CMD  [ ]\n'
    b'RUN ["a", 01]\n'
    b'RUN ["a" "b"]\n'
    b'RUN ["\\x"]\n'
    b'RUN [\n'
    b'ENTRYPOINT [ "a",\n\t"b" ]\n'
    b'VOLUME [ "/a",\r\n',
    r'''(cmd "['a']")
(cmd "[\"a\"] x")
(cmd "[\"a\",]")
(cmd "[\"a\"")
(cmd "aA\n\t\"\\/" "😀" "�x" "�" "�A")
(run "a" "b")
(run "[\v\"a\"]")
(run "[\f\"a\"]")
(run "[\"raw\ttab\"]")
(run "é" "�")
(copy "a" "b")
(copy "[" "broken")
(run "[1")
(run "[\"a\"]]")
(cmd)
(run "[\"a\", 01]")
(run "[\"a\" \"b\"]")
(run "[\"\\x\"]")
(run "[")
(entrypoint "[ \"a\",")
("b" "")
(volume "[" "\"/a\",")
''')

OK["env_label"] = (
    b'ENV a=1 b="2 3"\n'
    b'LABEL "a b"=c d=\n'
    b'ENV x =y\n'
    b'LABEL a = b\n'
    b'ENV PATH /usr/bin:$PATH\n'
    b'ENV  k  v  w \n'
    b"ENV a='b c' d=e\\ f\n"
    b'LABEL x="unclosed\n'
    b'ENV e=\n'
    b'ENV =x\n'
    b'ENV a=b=c\n'
    b'LABEL a="x\\"y" b=\'p\\\'\n'
    b'ENV k\t v\n',
    r'''(env "a" "1" "=" "b" "\"2 3\"" "=")
(label "\"a b\"" "c" "=" "d" "" "=")
(env "x" "=y" "")
(label "a" "= b" "")
(env "PATH" "/usr/bin:$PATH" "")
(env "k" "v  w" "")
(env "a" "'b c'" "=" "d" "e\\ f" "=")
(label "x" "\"unclosed" "=")
(env "e" "" "=")
(env "" "x" "=")
(env "a" "b=c" "=")
(label "a" "\"x\\\"y\"" "=" "b" "'p\\'" "=")
(env "k" "v" "")
''')

OK["arg"] = (
    b'ARG abc="123 456" def\n'
    b'ARG a="b c" d=e\\ f g\n'
    b"ARG x='a\\ b'\n"
    b'ARG y="a\\"b" z\n'
    b'ARG q="a b\n'
    b'ARG \xff=1\n',
    r'''(arg "abc=\"123 456\"" "def")
(arg "a=\"b c\"" "d=e\\ f" "g")
(arg "x='a\\ b'")
(arg "y=\"a\\\"b\"" "z")
(arg "q=\"a b")
(arg "�=1")
''')

OK["heredocs"] = (
    b'FROM x\n'
    b'RUN <<EOF\nFROM y\nEOF\n'
    b'RUN ["sh", "<<X"]\nX\n'
    b'COPY <<A <<B /dst\nB\nA\nA\nB\n'
    b'RUN <<-EOT bash\n\techo hi\n\tEOT\n'
    b"RUN 3<<'EOF' cat <&3\n# not a comment\n\\\nEOF\n"
    b'RUN <<"EOF"\nEOF\n'
    b'RUN <<EO"F"\nEOF\n'
    b'RUN "<<EOF" a<<b\n'
    b'USER <<X\nX\n'
    b'RUN --mount=type=cache,target=/x <<MOUNT\nx\nMOUNT\n'
    b'ONBUILD RUN <<E\nbody\nE\n'
    b'RUN <<  SP\nSP\n'
    b'RUN cat <<E>out\nE>out\n'
    b"RUN echo 'unterminated <<Q\n"
    b'RUN <<EOF\r\nbody\r\nEOF\r\n'
    b'COPY ["a", <<EOF\nEOF\n'
    b'RUN cat<<EOF\nEOF\n'
    b'ADD <<A /a\nA\n'
    b'RUN <<EOF \\\n  && echo\nbody\nEOF\n'
    b'CMD <<EOF\nEOF\n',
    r'''(from "x")
(run "<<EOF")
(run "sh" "<<X")
(x "")
(copy "<<A" "<<B" "/dst")
(run "<<-EOT bash")
(run "3<<'EOF' cat <&3")
(run "<<\"EOF\"")
(run "<<EO\"F\"")
(run "\"<<EOF\" a<<b")
(user "<<X")
(x "")
(run ["--mount=type=cache,target=/x"] "<<MOUNT")
(onbuild (run "<<E"))
(run "<<  SP")
(run "cat <<E>out")
(run "echo 'unterminated <<Q")
(run "<<EOF")
(copy "[\"a\"," "<<EOF")
(run "cat<<EOF")
(eof "")
(add "<<A" "/a")
(run "<<EOF   && echo")
(cmd "<<EOF")
(eof "")
''')

# The heredoc Dockerfile of BuildKit's own parser tests (parser_heredoc_test.go).
OK["heredoc_buildkit_tests"] = (
    b'\nFROM alpine:3.6\n\nENV NAME=me\n\nRUN ls\n\nUSER <<INVALID\nINVALID\n\n'
    b'RUN <<EMPTY\nEMPTY\n\nRUN 3<<EMPTY2\nEMPTY2\n\nRUN "<<NOHEREDOC"\n\n'
    b'RUN <<INDENT\n\tfoo\n\tbar\nINDENT\n\nRUN <<-UNINDENT\n\tbaz\n\tquux\nUNINDENT\n\n'
    b'RUN <<-UNINDENT2\n\tbaz\n\tquux\n\tUNINDENT2\n\n'
    b'RUN <<-EXPAND\n\texpand $NAME\nEXPAND\n\n'
    b"RUN <<-'NOEXPAND'\n\tdon't expand $NAME\nNOEXPAND\n\n"
    b'RUN <<COPY\necho hello world\necho foo bar\nCOPY\n\n'
    b'RUN <<COMMENT\n# internal comment\necho hello world\necho foo bar # trailing comment\nCOMMENT\n\n'
    b'RUN --mount=type=cache,target=/foo <<MOUNT\necho hello\nMOUNT\n\n'
    b'COPY <<FILE1 <<FILE2 /dest\ncontent 1\nFILE1\ncontent 2\nFILE2\n\n'
    b'COPY <<X <<Y /dest\nY\nX\nX\nY\n\t',
    r'''(from "alpine:3.6")
(env "NAME" "me" "=")
(run "ls")
(user "<<INVALID")
(invalid "")
(run "<<EMPTY")
(run "3<<EMPTY2")
(run "\"<<NOHEREDOC\"")
(run "<<INDENT")
(run "<<-UNINDENT")
(run "<<-UNINDENT2")
(run "<<-EXPAND")
(run "<<-'NOEXPAND'")
(run "<<COPY")
(run "<<COMMENT")
(run ["--mount=type=cache,target=/foo"] "<<MOUNT")
(copy "<<FILE1" "<<FILE2" "/dest")
(copy "<<X" "<<Y" "/dest")
''')

# BuildKit's testfiles/health Dockerfile and its result file.
OK["buildkit_health"] = (
    b'FROM debian\nADD check.sh main.sh /app/\nCMD /app/main.sh\nHEALTHCHECK\n'
    b'HEALTHCHECK --interval=5s --timeout=3s --retries=3 \\\n  CMD /app/check.sh --quiet\n'
    b'HEALTHCHECK CMD\nHEALTHCHECK   CMD   a b\nHEALTHCHECK --timeout=3s CMD ["foo"]\n'
    b'HEALTHCHECK CONNECT TCP 7000\n'
    b'HEALTHCHECK --start-period=0s --interval=5s --timeout=0s --retries=0 CMD ["foo"]\n',
    r'''(from "debian")
(add "check.sh" "main.sh" "/app/")
(cmd "/app/main.sh")
(healthcheck)
(healthcheck ["--interval=5s" "--timeout=3s" "--retries=3"] "CMD" "/app/check.sh --quiet")
(healthcheck "CMD")
(healthcheck "CMD" "a b")
(healthcheck ["--timeout=3s"] "CMD" "foo")
(healthcheck "CONNECT" "TCP 7000")
(healthcheck ["--start-period=0s" "--interval=5s" "--timeout=0s" "--retries=0"] "CMD" "foo")
''')

# JSON nesting: Go's decoder accepts 10,000 levels and rejects deeper ones (then: fallback).
OK["json_depth"] = (
    b'CMD ["b", ' + b'[' * 10000 + b']' * 10000 + b']\n'
    b'CMD ["c", {"k" 1}]\n',
    '(cmd "[\\"b\\", ' + '[' * 10000 + ']' * 10000 + ']")\n'
    '(cmd "[\\"c\\", {\\"k\\" 1}]")\n')
ERR["err_json_depth_ok"] = (b'CMD ["a", ' + b'[' * 9999 + b']' * 9999 + b']\n',
                            'err_json_depth_ok.dockerfile:1: JSON array in CMD: element 2 is not a string')
ERR["err_json_object_ok"] = (b'FROM x\nCMD ["c", {"k": [1, {"z": null}], "q": "s"}]\n',
                             'err_json_object_ok.dockerfile:2: JSON array in CMD: element 2 is not a string')

OK["empty_args_unknown"] = (
    b'FROM x\nFOO\n',
    '(from "x")\n(foo "")\n')

ERR["err_empty"] = (b'', 'err_empty.dockerfile:1: file with no instructions')
ERR["err_only_comments"] = (b'# a\n\n# b\n', 'err_only_comments.dockerfile:3: file with no instructions')
ERR["err_only_directives"] = (b'# syntax=x\n# escape=`\n', 'err_only_directives.dockerfile:2: file with no instructions')
ERR["err_env_legacy"] = (b'FROM x\nENV PATH\n', 'err_env_legacy.dockerfile:2: ENV "PATH": missing value')
ERR["err_label_legacy"] = (b'FROM x\nLABEL foo\n', 'err_label_legacy.dockerfile:2: LABEL "foo": missing value')
ERR["err_env_noeq"] = (b'FROM x\nENV a=b c\n', 'err_env_noeq.dockerfile:2: ENV: can\'t find = in "c"')
ERR["err_env_continued"] = (b'FROM x\nENV \\\n  a=b \\\n  c\n', 'err_env_continued.dockerfile:2: ENV: can\'t find = in "c"')
ERR["err_json_number"] = (b'FROM x\nCMD ["a", 1]\n', 'err_json_number.dockerfile:2: JSON array in CMD: element 2 is not a string')
ERR["err_json_nested"] = (b'FROM x\nCMD [ "echo", [ "nested json" ] ]\n', 'err_json_nested.dockerfile:2: JSON array in CMD: element 2 is not a string')
ERR["err_json_healthcheck"] = (b'FROM x\nHEALTHCHECK CMD ["a", true]\n', 'err_json_healthcheck.dockerfile:2: JSON array in HEALTHCHECK: element 2 is not a string')
ERR["err_json_copy"] = (b'FROM x\nCOPY ["a", null]\n', 'err_json_copy.dockerfile:2: JSON array in COPY: element 2 is not a string')
ERR["err_json_object"] = (b'FROM x\nRUN [{}]\n', 'err_json_object.dockerfile:2: JSON array in RUN: element 1 is not a string')
ERR["err_json_volume"] = (b'FROM x\nVOLUME [false]\n', 'err_json_volume.dockerfile:2: JSON array in VOLUME: element 1 is not a string')
ERR["err_json_shell"] = (b'FROM x\nSHELL ["a", -1.5e3]\n', 'err_json_shell.dockerfile:2: JSON array in SHELL: element 2 is not a string')
ERR["err_json_entrypoint"] = (b'FROM x\nENTRYPOINT ["a", {"b": 1}]\n', 'err_json_entrypoint.dockerfile:2: JSON array in ENTRYPOINT: element 2 is not a string')
ERR["err_json_add"] = (b'FROM x\nADD [1, "b"]\n', 'err_json_add.dockerfile:2: JSON array in ADD: element 1 is not a string')
ERR["err_escape_value"] = (b'# escape=x\nFROM y\n', 'err_escape_value.dockerfile:1: invalid escape directive value "x"')
ERR["err_escape_blank"] = (b'# escape=  \nFROM y\n', 'err_escape_blank.dockerfile:1: invalid escape directive value " "')
ERR["err_escape_dup"] = (b'# escape=`\n# ESCAPE=\\\nFROM x\n', 'err_escape_dup.dockerfile:2: only one escape parser directive can be used')
ERR["err_syntax_dup"] = (b'# syntax=a\n#syntax = b\nFROM x\n', 'err_syntax_dup.dockerfile:2: only one syntax parser directive can be used')
ERR["err_check_dup"] = (b'# check=a\n# check=b\nFROM x\n', 'err_check_dup.dockerfile:2: only one check parser directive can be used')
ERR["err_heredoc"] = (b'FROM x\nRUN <<EOF\nbody\n', 'err_heredoc.dockerfile:2: unterminated heredoc <<EOF')
ERR["err_heredoc_second"] = (b'FROM x\nCOPY <<A <<B /\nA\nB-not\n', 'err_heredoc_second.dockerfile:2: unterminated heredoc <<B')
ERR["err_heredoc_onbuild"] = (b'FROM x\nONBUILD COPY <<A /a\nbody\n', 'err_heredoc_onbuild.dockerfile:2: unterminated heredoc <<A')
ERR["err_heredoc_chomp"] = (b'FROM x\nRUN <<EOF\n\tEOF\n', 'err_heredoc_chomp.dockerfile:2: unterminated heredoc <<EOF')
ERR["err_onbuild_env"] = (b'ONBUILD ENV a\n', 'err_onbuild_env.dockerfile:1: ENV "a": missing value')
ERR["err_long_line"] = (b'FROM x\nRUN ' + b'a' * 65532 + b'\n', 'err_long_line.dockerfile:2: line too long (over 65535 bytes)')
ERR["err_long_last_line"] = (b'FROM x\n# ' + b'a' * 65534, 'err_long_last_line.dockerfile:2: line too long')


def main():
    for f in os.listdir(HERE):
        if f.endswith(('.dockerfile', '.expected', '.error')):
            os.unlink(os.path.join(HERE, f))
    for name, (df, exp) in OK.items():
        with open(os.path.join(HERE, name + '.dockerfile'), 'wb') as f:
            f.write(df)
        with open(os.path.join(HERE, name + '.expected'), 'wb') as f:
            f.write(exp.encode())
    for name, (df, msg) in ERR.items():
        with open(os.path.join(HERE, name + '.dockerfile'), 'wb') as f:
            f.write(df)
        with open(os.path.join(HERE, name + '.error'), 'wb') as f:
            f.write(msg.encode() + b'\n')


main()
