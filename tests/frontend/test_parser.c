/* Unit tests of the Dockerfile parser: node fields, heredocs, lines, and every error. */
#include "testlib.h"

#include "frontend/parser.h"

static struct fe_ast *
parse_ok(const char *text)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_ast *ast = NULL;
	int r = fe_parse("Dockerfile", text, strlen(text), &ast, &err);
	if (r < 0)
		fail_msg("parse failed: %s", err.msg);
	assert_int_equal(r, 0);
	assert_non_null(ast);
	return ast;
}

static void
parse_fails(const char *text, size_t len, const char *needle)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_ast *ast = NULL;
	int r = fe_parse("Dockerfile", text, len, &ast, &err);
	assert_int_equal(r, -EINVAL);
	assert_null(ast);
	assert_non_null(err.file);
	assert_string_equal(err.file, "Dockerfile");
	assert_err_contains(&err, needle);
}

static char *
dump(const struct fe_ast *ast)
{
	struct kiln_buf out = KILN_BUF_INIT;
	fe_ast_dump(ast, &out);
	return kiln_buf_detach(&out, NULL);
}

static void
test_parser__node_fields(void **state)
{
	struct fe_ast *ast = parse_ok("FROM --platform=linux/amd64 alpine AS b\n"
	                              "  Run  --mount=type=cache,target=/x echo   hi  \n"
	                              "CMD [\"a\", \"b c\"]\n");
	assert_int_equal(ast->nnodes, 3);
	struct fe_node *n = &ast->nodes[0];
	assert_string_equal(n->name, "from");
	assert_int_equal(n->name_len, 4);
	assert_int_equal(n->nflags, 1);
	assert_string_equal(n->flags[0], "--platform=linux/amd64");
	assert_int_equal(n->nargs, 3);
	assert_string_equal(n->args[0], "alpine");
	assert_string_equal(n->args[1], "AS");
	assert_string_equal(n->args[2], "b");
	assert_false(n->json);
	assert_int_equal(n->start_line, 1);
	assert_int_equal(n->end_line, 1);

	n = &ast->nodes[1];
	assert_string_equal(n->name, "run");
	assert_string_equal(n->original, "Run  --mount=type=cache,target=/x echo   hi");
	assert_int_equal(n->nflags, 1);
	assert_string_equal(n->flags[0], "--mount=type=cache,target=/x");
	assert_int_equal(n->nargs, 1);
	assert_string_equal(n->args[0], "echo   hi");
	assert_int_equal(n->nheredocs, 0);

	n = &ast->nodes[2];
	assert_true(n->json);
	assert_int_equal(n->nargs, 2);
	assert_string_equal(n->args[1], "b c");
	assert_int_equal(ast->escape, '\\');
	assert_null(*fe_ast_warnings(ast));
	fe_ast_free(ast);
}

static void
test_parser__env_label_triples(void **state)
{
	struct fe_ast *ast = parse_ok("ENV a=1 b=\"2 3\"\nLABEL k  v w\n");
	struct fe_node *n = &ast->nodes[0];
	assert_int_equal(n->nargs, 6);
	const char *want[] = {"a", "1", "=", "b", "\"2 3\"", "="};
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(n->args[i], want[i]);
	n = &ast->nodes[1];
	assert_int_equal(n->nargs, 3);
	assert_string_equal(n->args[0], "k");
	assert_string_equal(n->args[1], "v w");
	assert_string_equal(n->args[2], "");
	fe_ast_free(ast);
}

static void
test_parser__json_empty_and_fallback(void **state)
{
	struct fe_ast *ast = parse_ok("CMD []\nCMD ['a']\nHEALTHCHECK CMD [\"x\"]\n");
	assert_true(ast->nodes[0].json);
	assert_int_equal(ast->nodes[0].nargs, 0);
	assert_false(ast->nodes[1].json);
	assert_string_equal(ast->nodes[1].args[0], "['a']");
	assert_true(ast->nodes[2].json);
	assert_string_equal(ast->nodes[2].args[0], "CMD");
	assert_string_equal(ast->nodes[2].args[1], "x");
	fe_ast_free(ast);
}

static void
test_parser__onbuild_sub(void **state)
{
	struct fe_ast *ast = parse_ok("ONBUILD --a COPY --from=b x y\nONBUILD\n");
	struct fe_node *n = &ast->nodes[0];
	assert_string_equal(n->name, "onbuild");
	assert_int_equal(n->nflags, 1);
	assert_string_equal(n->flags[0], "--a");
	assert_int_equal(n->nargs, 0);
	assert_non_null(n->sub);
	assert_string_equal(n->sub->name, "copy");
	assert_string_equal(n->sub->original, "COPY --from=b x y");
	assert_string_equal(n->sub->flags[0], "--from=b");
	assert_int_equal(n->sub->nargs, 2);
	assert_int_equal(n->sub->start_line, 1);
	assert_null(ast->nodes[1].sub);
	assert_int_equal(ast->nodes[1].nargs, 0);
	fe_ast_free(ast);
}

static void
test_parser__heredoc_fields(void **state)
{
	struct fe_ast *ast = parse_ok("FROM x\n"
	                              "RUN 3<<EOF cat <<-'E2' && x <<\"Q\"Q\n"
	                              "hello $x\n"
	                              "\n"
	                              "EOF\n"
	                              "\t\tline\n"
	                              "\tmore\n"
	                              "\tE2\n"
	                              "q\n"
	                              "QQ\n"
	                              "CMD done\n");
	assert_int_equal(ast->nnodes, 3);
	struct fe_node *n = &ast->nodes[1];
	assert_int_equal(n->start_line, 2);
	assert_int_equal(n->end_line, 10);
	assert_int_equal(n->nheredocs, 3);
	assert_string_equal(n->heredocs[0].name, "EOF");
	assert_string_equal(n->heredocs[0].content, "hello $x\n\n");
	assert_true(n->heredocs[0].expand);
	assert_false(n->heredocs[0].chomp);
	assert_int_equal(n->heredocs[0].fd, 3);
	assert_string_equal(n->heredocs[1].name, "E2");
	assert_string_equal(n->heredocs[1].content, "line\nmore\n");
	assert_false(n->heredocs[1].expand);
	assert_true(n->heredocs[1].chomp);
	assert_int_equal(n->heredocs[1].fd, -1);
	assert_string_equal(n->heredocs[2].name, "QQ");
	assert_string_equal(n->heredocs[2].content, "q\n");
	assert_false(n->heredocs[2].expand);
	assert_int_equal(ast->nodes[2].start_line, 11);
	fe_ast_free(ast);
}

/* BuildKit decides `expand` by counting quotes with and without quote removal: an escaped
 * quote counts on both sides, so only real quoting turns expansion off. */
static void
test_parser__heredoc_expand_rules(void **state)
{
	struct fe_ast *ast = parse_ok("RUN <<eo\\'f <<eo'f' <<'e'o\\'f <<E\\OF <<$V\n"
	                              "eo'f\neof\neo'f\nEOF\n$V\n");
	struct fe_node *n = &ast->nodes[0];
	assert_int_equal(n->nheredocs, 5);
	const char *names[] = {"eo'f", "eof", "eo'f", "EOF", "$V"};
	bool expand[] = {true, false, false, true, true};
	for (size_t i = 0; i < 5; i++) {
		assert_string_equal(n->heredocs[i].name, names[i]);
		assert_int_equal(n->heredocs[i].expand, expand[i]);
		assert_string_equal(n->heredocs[i].content, "");
	}
	assert_int_equal(n->end_line, 6);
	fe_ast_free(ast);
}

static void
test_parser__heredoc_onbuild_and_crlf(void **state)
{
	struct fe_ast *ast =
	        parse_ok("ONBUILD RUN <<EOF\r\nbody\r\nEOF\r\nCOPY <<A <<B /d\nB\nA\nA\nB\n");
	struct fe_node *n = &ast->nodes[0];
	assert_int_equal(n->nheredocs, 0);
	assert_non_null(n->sub);
	assert_int_equal(n->sub->nheredocs, 1);
	assert_string_equal(n->sub->heredocs[0].content, "body\r\n");
	assert_int_equal(n->end_line, 3);
	assert_int_equal(n->sub->end_line, 3);
	n = &ast->nodes[1];
	assert_int_equal(n->nheredocs, 2);
	assert_string_equal(n->heredocs[0].content, "B\n");
	assert_string_equal(n->heredocs[1].content, "A\n");
	assert_int_equal(n->start_line, 4);
	assert_int_equal(n->end_line, 8);
	fe_ast_free(ast);
}

static void
test_parser__heredoc_not_for_json_or_other(void **state)
{
	struct fe_ast *ast = parse_ok("RUN [\"<<X\"]\nX\nUSER <<Y\nY\nRUN echo \"<<Z\"\n");
	assert_int_equal(ast->nnodes, 5);
	for (size_t i = 0; i < ast->nnodes; i++)
		assert_int_equal(ast->nodes[i].nheredocs, 0);
	assert_string_equal(ast->nodes[1].name, "x");
	assert_string_equal(ast->nodes[3].name, "y");
	fe_ast_free(ast);
}

static void
test_parser__continuation_lines(void **state)
{
	struct fe_ast *ast = parse_ok("# c\n"
	                              "RUN a \\\n"
	                              "  # inside\n"
	                              "\n"
	                              "  b\n"
	                              "FROM x\n");
	struct fe_node *n = &ast->nodes[0];
	assert_string_equal(n->args[0], "a   b");
	assert_int_equal(n->start_line, 2);
	assert_int_equal(n->end_line, 5);
	assert_int_equal(ast->nodes[1].start_line, 6);
	/* The blank line inside the instruction is worth a warning, as upstream gives. */
	assert_non_null(fe_ast_warnings(ast)[0]);
	assert_non_null(strstr(fe_ast_warnings(ast)[0], "Dockerfile:2:"));
	fe_ast_free(ast);
}

static void
test_parser__directives(void **state)
{
	struct fe_ast *ast = parse_ok("\xef\xbb\xbf# syntax=docker/dockerfile:1\n"
	                              "# Escape = `  \n"
	                              "#check=skip=all\n"
	                              "FROM x\n"
	                              "RUN a `\n"
	                              " b\n");
	assert_int_equal(ast->escape, '`');
	assert_string_equal(ast->syntax, "docker/dockerfile:1");
	assert_string_equal(ast->check, "skip=all");
	char *const *w = fe_ast_warnings(ast);
	assert_non_null(w[0]);
	assert_non_null(strstr(w[0], "syntax directive ignored: kiln has its own frontend"));
	assert_null(w[1]);
	assert_string_equal(ast->nodes[1].args[0], "a  b");
	fe_ast_free(ast);
}

static void
test_parser__nul_bytes_kept(void **state)
{
	static const char text[] = "RUN a\0b\n";
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_ast *ast;
	assert_int_equal(fe_parse("Dockerfile", text, sizeof(text) - 1, &ast, &err), 0);
	assert_int_equal(ast->nodes[0].arg_lens[0], 3);
	char *d = dump(ast);
	assert_string_equal(d, "(run \"a\\x00b\")\n");
	free(d);
	fe_ast_free(ast);
}

static void
test_parser__go_quote(void **state)
{
	static const char in[] =
	        "a\"\\\x01\x7f\xff\xc3\xa9\xe2\x80\x8b\xf0\x9f\x98\x80\xf3\xa0\x80\x81";
	struct kiln_buf b = KILN_BUF_INIT;
	fe_go_quote(&b, in, sizeof(in) - 1);
	assert_string_equal(b.buf, "\"a\\\"\\\\\\x01\\x7f\\xffé\\u200b😀\\U000e0001\"");
	kiln_buf_release(&b);
}

static void
test_parser__errors(void **state)
{
	parse_fails("", 0, "Dockerfile:1: file with no instructions");
	parse_fails("# a\n\n# b\n", 9, "Dockerfile:3: file with no instructions");
	parse_fails("FROM x\nENV PATH\n", 16, "Dockerfile:2: ENV \"PATH\": missing value");
	parse_fails("FROM x\nLABEL foo\n", 17, "Dockerfile:2: LABEL \"foo\": missing value");
	parse_fails("FROM x\n\nENV a=b c\n", 18, "Dockerfile:3: ENV: can't find = in \"c\"");
	parse_fails("CMD [\"a\", 1]\n", 13,
	            "Dockerfile:1: JSON array in CMD: element 2 is not a string");
	parse_fails("FROM x\nRUN [[\"a\"]]\n", 19,
	            "Dockerfile:2: JSON array in RUN: element 1 is not a string");
	parse_fails("# escape=x\nFROM y\n", 18,
	            "Dockerfile:1: invalid escape directive value \"x\": must be \\ or backtick");
	parse_fails("# escape=`\n#escape=`\nFROM y\n", 28,
	            "Dockerfile:2: only one escape parser directive can be used");
	parse_fails("FROM x\nRUN <<EOF\nbody\n", 22,
	            "Dockerfile:2: unterminated heredoc <<EOF started here");
	parse_fails("FROM x\nONBUILD ENV a\n", 21, "Dockerfile:2: ENV \"a\": missing value");
}

static void
test_parser__line_length_limit(void **state)
{
	size_t n = 7 + 65535 + 1;
	char *text = kiln_xmalloc(n + 8);
	memcpy(text, "FROM x\n", 7);
	memcpy(text + 7, "RUN ", 4);
	memset(text + 11, 'a', 65535 - 4);
	text[7 + 65535] = '\n';
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_ast *ast;
	/* Exactly 65535 bytes is allowed... */
	assert_int_equal(fe_parse("Dockerfile", text, n, &ast, &err), 0);
	assert_int_equal(strlen(ast->nodes[1].args[0]), 65531);
	fe_ast_free(ast);
	/* ...one more is not. */
	text[7 + 65535] = 'a';
	text[7 + 65536] = '\n';
	parse_fails(text, n + 1, "Dockerfile:2: line too long (over 65535 bytes)");
	free(text);
}

static void
test_parser__deep_onbuild_nesting(void **state)
{
	struct kiln_buf b = KILN_BUF_INIT;
	for (int i = 0; i < 5000; i++)
		kiln_buf_addstr(&b, "ONBUILD ");
	kiln_buf_addstr(&b, "RUN x\n");
	struct fe_ast *ast = parse_ok(b.buf);
	size_t depth = 0;
	for (struct fe_node *n = &ast->nodes[0]; n->sub; n = n->sub)
		depth++;
	assert_int_equal(depth, 5000);
	char *d = dump(ast);
	struct kiln_buf want = KILN_BUF_INIT;
	kiln_buf_addstr(&want, "(run \"x\"");
	for (int i = 0; i <= 5000; i++)
		kiln_buf_addch(&want, ')');
	kiln_buf_addch(&want, '\n');
	assert_true(kiln_str_has_suffix(d, want.buf));
	assert_true(kiln_str_has_prefix(d, "(onbuild (onbuild (onbuild "));
	kiln_buf_release(&want);
	free(d);
	fe_ast_free(ast);
	kiln_buf_release(&b);
}

static void
test_parser__large_file(void **state)
{
	static const char *const lines[] = {
	        "FROM alpine:3.19 AS build\n",
	        ("RUN --mount=type=cache,target=/var/cache apk add --no-cache curl git \\\n"
	         "    make gcc\n"),
	        "ENV PATH=/usr/local/bin:$PATH HOME=\"/root dir\"\n",
	        "COPY --from=build --chown=1:1 [\"/src\", \"/dst\"]\n",
	        "LABEL org.example.a=1 org.example.b=\"two words\"\n",
	        "ARG VERSION=1.0\n",
	        "# a comment line\n",
	        "RUN <<EOF\necho hi\nEOF\n",
	        "CMD [\"sh\", \"-c\", \"echo $VERSION\"]\n",
	};
	struct kiln_buf b = KILN_BUF_INIT;
	int nl = 0;
	for (size_t i = 0; nl < 10000; i++) {
		const char *l = lines[i % KILN_ARRAY_SIZE(lines)];
		kiln_buf_addstr(&b, l);
		for (const char *c = l; *c; c++)
			nl += *c == '\n';
	}
	/* Speed is measured by bench/parse_plan.sh; here only the result of a big file. */
	struct fe_ast *ast = parse_ok(b.buf);
	assert_int_equal(ast->nnodes, 6667);
	assert_int_equal(ast->nodes[ast->nnodes - 1].end_line, 10000);
	assert_int_equal(ast->nodes[6].nheredocs, 1);
	assert_string_equal(ast->nodes[6].heredocs[0].content, "echo hi\n");
	fe_ast_free(ast);
	kiln_buf_release(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parser__node_fields),
	        cmocka_unit_test(test_parser__env_label_triples),
	        cmocka_unit_test(test_parser__json_empty_and_fallback),
	        cmocka_unit_test(test_parser__onbuild_sub),
	        cmocka_unit_test(test_parser__heredoc_fields),
	        cmocka_unit_test(test_parser__heredoc_expand_rules),
	        cmocka_unit_test(test_parser__heredoc_onbuild_and_crlf),
	        cmocka_unit_test(test_parser__heredoc_not_for_json_or_other),
	        cmocka_unit_test(test_parser__continuation_lines),
	        cmocka_unit_test(test_parser__directives),
	        cmocka_unit_test(test_parser__nul_bytes_kept),
	        cmocka_unit_test(test_parser__go_quote),
	        cmocka_unit_test(test_parser__errors),
	        cmocka_unit_test(test_parser__line_length_limit),
	        cmocka_unit_test(test_parser__deep_onbuild_nesting),
	        cmocka_unit_test(test_parser__large_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
