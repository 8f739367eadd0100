/* Unit tests for frontend/shlex.c: BuildKit's shell-lexer tables plus one test per
 * modifier, the escape characters and the errors. */
#include "testlib.h"

#include "frontend/shlex.h"

struct fx {
	struct fe_vars vars;
	struct fe_shlex lx;
};

static int
setup(void **state)
{
	struct fx *f = kiln_xcalloc(1, sizeof(*f));
	f->vars = (struct fe_vars)FE_VARS_INIT;
	f->lx = (struct fe_shlex){.escape = '\\', .vars = &f->vars};
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	fe_vars_release(&f->vars);
	free(f);
	return 0;
}

/* Expand `in` and compare with `want`. */
static void
expect_word(struct fx *f, const char *in, const char *want)
{
	struct kiln_err err = KILN_ERR_INIT;
	char *out = NULL;
	int r = fe_expand_word(&f->lx, in, &out, &err);
	if (r < 0) {
		char *s = kiln_err_format(&err);
		fail_msg("%s: unexpected error: %s", in, s);
	}
	if (strcmp(out, want) != 0)
		fail_msg("%s: got \"%s\", want \"%s\"", in, out, want);
	free(out);
}

static void
expect_error(struct fx *f, const char *in, const char *needle)
{
	struct kiln_err err = KILN_ERR_INIT;
	char *out = NULL;
	int r = fe_expand_word(&f->lx, in, &out, &err);
	if (r >= 0)
		fail_msg("%s: expected an error, got \"%s\"", in, out);
	assert_int_equal(r, -EINVAL);
	assert_err_contains(&err, needle);
}

/* Split a testdata line into its tab-terminated fields. */
static void
split_fields(char *line, struct kiln_strv *fields)
{
	char *tab;
	while ((tab = strchr(line, '\t'))) {
		*tab = '\0';
		kiln_strv_push(fields, line);
		line = tab + 1;
	}
}

static char *
read_testdata(const char *name)
{
	struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_err err = KILN_ERR_INIT;
	char *path = kiln_xasprintf("%s/tests/frontend/testdata/%s", KILN_SOURCE_DIR, name);
	if (kiln_buf_read_file(&b, path, &err) < 0)
		fail_msg("read %s", path);
	free(path);
	return kiln_buf_detach(&b, NULL);
}

static void
test_shlex__buildkit_envvar_table(void **state)
{
	struct fx *f = *state;
	fe_vars_set(&f->vars, "PWD", "/home");
	fe_vars_set(&f->vars, "SHELL", "bash");
	fe_vars_set(&f->vars, "KOREAN", "한국어");
	fe_vars_set(&f->vars, "NULL", "");
	char *data = read_testdata("shlex_envvars.tsv");
	int rows = 0;
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#')
			continue;
		struct kiln_strv fl = KILN_STRV_INIT;
		split_fields(line, &fl);
		assert_int_equal(fl.n, 2);
		if (kiln_str_eq(fl.v[1], "!error"))
			expect_error(f, fl.v[0], "failed to process");
		else
			expect_word(f, fl.v[0], fl.v[1]);
		kiln_strv_release(&fl);
		rows++;
	}
	assert_true(rows > 200);
	free(data);
}

static void
test_shlex__buildkit_words_table(void **state)
{
	struct fx *f = *state;
	char *data = read_testdata("shlex_words.tsv");
	int rows = 0;
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#')
			continue;
		struct kiln_strv fl = KILN_STRV_INIT;
		split_fields(line, &fl);
		assert_true(fl.n >= 2);
		if (kiln_str_eq(fl.v[0], "ENV")) {
			char *eq = strchr(fl.v[1], '=');
			*eq = '\0';
			fe_vars_set(&f->vars, fl.v[1], eq + 1);
			kiln_strv_release(&fl);
			continue;
		}
		struct kiln_strv got = KILN_STRV_INIT;
		struct kiln_err err = KILN_ERR_INIT;
		int r = fe_expand_words(&f->lx, fl.v[0], &got, &err);
		if (kiln_str_eq(fl.v[1], "!error")) {
			if (r >= 0)
				fail_msg("%s: expected an error", fl.v[0]);
			kiln_err_release(&err);
		} else {
			if (r < 0)
				fail_msg("%s: unexpected error", fl.v[0]);
			if (got.n != fl.n - 1)
				fail_msg("%s: got %zu words, want %zu", fl.v[0], got.n, fl.n - 1);
			for (size_t i = 0; i < got.n; i++)
				if (!kiln_str_eq(got.v[i], fl.v[i + 1]))
					fail_msg("%s: word %zu is \"%s\", want \"%s\"", fl.v[0], i,
					         got.v[i], fl.v[i + 1]);
		}
		kiln_strv_release(&got);
		kiln_strv_release(&fl);
		rows++;
	}
	assert_true(rows > 20);
	free(data);
}

/* TestShellParserMandatoryEnvVars */
static void
test_shlex__mandatory_vars(void **state)
{
	struct fx *f = *state;
	fe_vars_set(&f->vars, "ARG", "x");
	expect_error(f, "${VAR:?message here$ARG}", "VAR: message herex");
	expect_error(f, "${VAR?message here$ARG}", "VAR: message herex");
	fe_vars_set(&f->vars, "VAR", "");
	expect_error(f, "${VAR:?message here$ARG}", "message herex");
	expect_word(f, "${VAR?message here$ARG}", "");
	fe_vars_set(&f->vars, "VAR", "plain");
	expect_word(f, "${VAR:?message here$ARG}", "plain");
	expect_word(f, "${VAR?message here$ARG}", "plain");
}

static void
test_shlex__question_default_messages(void **state)
{
	struct fx *f = *state;
	fe_vars_set(&f->vars, "E", "");
	expect_error(f, "${U:?}", "failed to process \"${U:?}\": U: is not allowed to be unset");
	expect_error(f, "${U?}", "U: is not allowed to be unset");
	expect_error(f, "${E:?}", "E: is not allowed to be empty");
	expect_word(f, "${E?}", "");
}

/* TestProcessWithMatches, minus the matched/unmatched bookkeeping kiln does not keep. */
struct match_row {
	const char *in;
	const char *vars[3][2];
	const char *want; /* NULL: error */
};

static const struct match_row match_rows[] = {
        {"x", {{"DUMMY", "dummy"}}, "x"},
        {"x ${UNUSED}", {{"DUMMY", "dummy"}}, "x "},
        {"x ${FOO}", {{"FOO", "y"}}, "x y"},
        {"${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", {{"FOO", "xxx"}, {"BAR", ""}}, "xxx  ccc"},
        {"${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", {{"FOO", "xxx"}, {"BAR", ""}}, "xxx bbb ccc"},
        {"${FOO:-}", {{"FOO", "xxx"}, {"BAR", ""}}, "xxx"},
        {"${FOO:-}", {{0}}, ""},
        {"${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", {{"FOO", "xxx"}, {"BAR", ""}}, "aaa bbb "},
        {"${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", {{"FOO", "xxx"}, {"BAR", ""}}, "aaa  "},
        {"${FOO?aaa}", {{"FOO", "xxx"}, {"BAR", ""}}, "xxx"},
        {"${BAR?bbb}", {{"FOO", "xxx"}, {"BAR", ""}}, ""},
        {"${BAZ?ccc}", {{"FOO", "xxx"}, {"BAR", ""}}, NULL},
        {"${FOO:?aaa}", {{"FOO", "xxx"}, {"BAR", ""}}, "xxx"},
        {"${BAR:?bbb}", {{"FOO", "xxx"}, {"BAR", ""}}, NULL},
        {"${BAZ:?ccc}", {{"FOO", "xxx"}, {"BAR", ""}}, NULL},
        {"${BAZ:?}", {{"FOO", "xxx"}, {"BAR", ""}}, NULL},
        {"${FOO=aaa}", {{"FOO", "xxx"}, {"BAR", ""}}, NULL},
        {"${FOO=:aaa}", {{"FOO", "xxx"}, {"BAR", ""}}, NULL},
        {"${FOO=}", {{0}}, NULL},
        {"${FOO#()[]{\\}^$.\\*\\?|\\\\}", {{"FOO", "()[]{}^$.*?|\\x"}}, "x"},
        {"${FOO%%\\**}", {{"FOO", "xx**"}}, "xx"},
        {"${FOO#*x*y}", {{"FOO", "xxyy"}}, "y"},
        {"${FOO#*}", {{"FOO", "xxyy"}}, "xxyy"},
        {"${FOO#$BAR}", {{"FOO", "xxyy"}, {"BAR", "x"}}, "xyy"},
        {"${FOO#$BAR}", {{"FOO", "xxyy"}, {"BAR", ""}}, "xxyy"},
        {"${FOO#}", {{"FOO", "xxyy"}}, "xxyy"},
        {"${FOO##*x}", {{"FOO", "xxyy"}}, "yy"},
        {"${FOO##}", {{"FOO", "xxyy"}}, "xxyy"},
        {"${FOO#?\\?}", {{"FOO", "???y"}}, "?y"},
        {"${ABC:-.}${FOO%x}${ABC:-.}", {{"FOO", "xxyy"}}, ".xxyy."},
        {"${FOO%%\\**\\*}", {{"FOO", "a***yy*"}}, "a"},
        {"${FOO%}", {{"FOO", "xxyy"}}, "xxyy"},
        {"${FOO%%$BAR}", {{"FOO", "xxyy"}, {"BAR", ""}}, "xxyy"},
        {"${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
         {{"FOO", "/foo*/*/*.txt"}, {"NEEDLE", "\\*/"}},
         "/foo.*/*.txt - /foo..*.txt"},
        {"${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
         {{"FOO", "/tmp/tmp/bar.txt"}, {"NEEDLE", "/tmp"}},
         "/tmp/bar.txt - /bar.txt"},
        {"${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
         {{"FOO", "/a/foo/b/c.txt"}, {"NEEDLE", "/?/"}, {"REPLACEMENT", "/"}},
         "/foo/b/c.txt - /foo/c.txt"},
        {"${FOO/$NEEDLE/$REPLACEMENT}",
         {{"FOO", "http://google.de"}, {"NEEDLE", "http://"}, {"REPLACEMENT", "https://"}},
         "https://google.de"},
        {"${FOO//\\//\\/}", {{"FOO", "/tmp/foo.txt"}}, "\\/tmp\\/foo.txt"},
        {"${FOO/$BAR/ww}", {{"FOO", "xxyy"}, {"BAR", ""}}, "wwxxyy"},
        {"${FOO//ww}", {{"FOO", "xxyy"}}, NULL},
        {"${FOO//}", {{"FOO", "xxyy"}}, NULL},
        {"${FOO///}", {{"FOO", "xxyy"}}, "xxyy"},
        {"${FOO///}", {{0}}, ""},
        /* TestProcessWithMatchesPlatform */
        {"something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
         {{"VERSION", "v1.2.3"}, {"TARGETOS", "linux"}, {"TARGETARCH", "arm"}},
         "something-v1.2.3.linux-arm.tar.gz"},
};

static void
test_shlex__buildkit_matches_table(void **state)
{
	struct fx *f = *state;
	for (size_t i = 0; i < KILN_ARRAY_SIZE(match_rows); i++) {
		const struct match_row *m = &match_rows[i];
		fe_vars_release(&f->vars);
		for (size_t k = 0; k < 3 && m->vars[k][0]; k++)
			fe_vars_set(&f->vars, m->vars[k][0], m->vars[k][1]);
		if (m->want)
			expect_word(f, m->in, m->want);
		else
			expect_error(f, m->in, "failed to process");
	}
	fe_vars_release(&f->vars);
	fe_vars_set(&f->vars, "VERSION", "v1.2.3");
	fe_vars_set(&f->vars, "TARGETOS", "linux");
	fe_vars_set(&f->vars, "TARGETARCH", "arm");
	fe_vars_set(&f->vars, "TARGETVARIANT", "v7");
	expect_word(
	        f,
	        "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}"
	        ".tar.gz",
	        "something-v1.2.3.linux-arm-v7.tar.gz");
}

static void
test_shlex__default_when_unset_or_empty(void **state)
{
	struct fx *f = *state;
	fe_vars_set(&f->vars, "E", "");
	fe_vars_set(&f->vars, "V", "val");
	expect_word(f, "${U:-w}|${E:-w}|${V:-w}", "w|w|val");
	expect_word(f, "${U-w}|${E-w}|${V-w}", "w||val");
}

static void
test_shlex__alternative_when_set(void **state)
{
	struct fx *f = *state;
	fe_vars_set(&f->vars, "E", "");
	fe_vars_set(&f->vars, "V", "val");
	expect_word(f, "${U:+w}|${E:+w}|${V:+w}", "||w");
	expect_word(f, "${U+w}|${E+w}|${V+w}", "|w|w");
}

static void
test_shlex__trim_prefix_and_suffix(void **state)
{
	struct fx *f = *state;
	fe_vars_set(&f->vars, "P", "/usr/local/bin/tool.tar.gz");
	expect_word(f, "${P#*/}", "usr/local/bin/tool.tar.gz");
	expect_word(f, "${P##*/}", "tool.tar.gz");
	expect_word(f, "${P%.*}", "/usr/local/bin/tool.tar");
	expect_word(f, "${P%%.*}", "/usr/local/bin/tool");
	expect_word(f, "${P#/usr}", "/local/bin/tool.tar.gz");
	expect_word(f, "${P%nomatch}", "/usr/local/bin/tool.tar.gz");
	expect_word(f, "${P%?z}", "/usr/local/bin/tool.tar.");
	expect_word(f, "${U#x}", "");
	/* ':' before # or % is accepted and changes nothing */
	expect_word(f, "${P:##*/}", "tool.tar.gz");
}

static void
test_shlex__replace_first_and_all(void **state)
{
	struct fx *f = *state;
	fe_vars_set(&f->vars, "S", "a-b-c");
	expect_word(f, "${S/-/+}", "a+b-c");
	expect_word(f, "${S//-/+}", "a+b+c");
	expect_word(f, "${S//?/x}", "xxxxx");
	expect_word(f, "${S/b*/X}", "a-X");
	expect_word(f, "${S//*/X}", "X");
	expect_word(f, "${S//z/X}", "a-b-c");
	/* an empty pattern matches between every character (Go's ReplaceAll) */
	expect_word(f, "${S///.}", ".a.-.b.-.c.");
	/* ReplaceAll expands $0 as the match and $$ as $; the first-only form is literal */
	fe_vars_set(&f->vars, "R0", "[$0]");
	fe_vars_set(&f->vars, "RD", "$$");
	fe_vars_set(&f->vars, "RX", "$x${0}$");
	expect_word(f, "${S//b/$R0}", "a-[b]-c");
	expect_word(f, "${S//b/$RD}", "a-$-c");
	expect_word(f, "${S/b/$R0}", "a-[$0]-c");
	expect_word(f, "${S//b/$RX}", "a-b$-c");
	/* the replacement is read with raw escapes: the backslash stays */
	expect_word(f, "${S//b/[\\$0]}", "a-[\\b]-c");
}

static void
test_shlex__bracket_is_literal_in_patterns(void **state)
{
	struct fx *f = *state;
	/* BuildKit converts these patterns without bracket expressions */
	fe_vars_set(&f->vars, "S", "a[b]c");
	expect_word(f, "${S#a[b]}", "c");
	expect_word(f, "${S/[b]/x}", "axc");
	fe_vars_set(&f->vars, "T", "abc");
	expect_word(f, "${T#[a]}", "abc");
}

static void
test_shlex__nested_expansions(void **state)
{
	struct fx *f = *state;
	fe_vars_set(&f->vars, "A", "alpha");
	fe_vars_set(&f->vars, "N", "p");
	expect_word(f, "${U:-${V:-${A}}}", "alpha");
	expect_word(f, "${A/${N}/$N$N}", "alppha");
	expect_word(f, "${A:+\"x y\"}", "x y");
	expect_word(f, "${U:-'$A'}", "$A");
}

static void
test_shlex__quotes(void **state)
{
	struct fx *f = *state;
	fe_vars_set(&f->vars, "A", "a b");
	expect_word(f, "'$A' \"$A\" $A", "$A a b a b");
	expect_word(f, "\"it's\"", "it's");
	expect_word(f, "'say \"hi\"'", "say \"hi\"");
	struct kiln_strv w = KILN_STRV_INIT;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(fe_expand_words(&f->lx, "'$A' \"$A\" $A x\"\"y \"\"", &w, &err), 0);
	assert_int_equal(w.n, 5);
	assert_string_equal(w.v[0], "$A");
	assert_string_equal(w.v[1], "a b");
	assert_string_equal(w.v[2], "a");
	assert_string_equal(w.v[3], "b");
	assert_string_equal(w.v[4], "xy");
	kiln_strv_release(&w);
}

static void
test_shlex__backslash_escapes(void **state)
{
	struct fx *f = *state;
	fe_vars_set(&f->vars, "A", "v");
	expect_word(f, "\\$A \\\\$A \\a", "$A \\v a");
	expect_word(f, "\"\\$A \\\" \\\\ \\a\"", "$A \" \\ \\a");
	expect_word(f, "\"`x`\"", "`x`");
}

static void
test_shlex__backtick_escapes(void **state)
{
	struct fx *f = *state;
	f->lx.escape = '`';
	fe_vars_set(&f->vars, "A", "v");
	expect_word(f, "`$A ``$A `a", "$A `v a");
	expect_word(f, "C:\\path\\$A", "C:\\path\\v");
	expect_word(f, "\"`$A `\" `` `a \\$A\"", "$A \" ` `a \\v");
	expect_word(f, "trailing`", "trailing");
	struct kiln_strv w = KILN_STRV_INIT;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(fe_expand_words(&f->lx, "a` b c", &w, &err), 0);
	assert_int_equal(w.n, 2);
	assert_string_equal(w.v[0], "a b");
	assert_string_equal(w.v[1], "c");
	kiln_strv_release(&w);
}

static void
test_shlex__escape_kept_in_trim_patterns(void **state)
{
	struct fx *f = *state;
	/* # and % read their pattern with raw escapes, so `\*` reaches the pattern */
	fe_vars_set(&f->vars, "S", "a*b*c");
	expect_word(f, "${S#*\\*}", "b*c");
	expect_word(f, "${S%\\**}", "a*b");
	expect_word(f, "${S##*\\*}", "c");
}

static void
test_shlex__dollar_before_non_name_is_literal(void **state)
{
	struct fx *f = *state;
	expect_word(f, "$ $. $/x $", "$ $. $/x $");
	expect_word(f, "a$", "a$");
	expect_word(f, "\"$\"", "$");
}

static void
test_shlex__unset_is_empty(void **state)
{
	struct fx *f = *state;
	expect_word(f, "[$NOPE][${NOPE}]", "[][]");
}

static void
test_shlex__names(void **state)
{
	struct fx *f = *state;
	fe_vars_set(&f->vars, "a_1", "x");
	fe_vars_set(&f->vars, "a", "y");
	expect_word(f, "$a_1-$a-1", "x-y-1");
	expect_word(f, "${a_1}b", "xb");
}

static void
test_shlex__unicode_names_and_spaces(void **state)
{
	struct fx *f = *state;
	/* names are Unicode letters, digits and '_' (Go's unicode.IsLetter/IsDigit) */
	fe_vars_set(&f->vars, "한국", "x");
	expect_word(f, "$한국.${한국}", "x.x");
	expect_word(f, "$한국어", "");
	/* ProcessWords splits at Unicode white space too (here U+00A0 and U+3000) */
	struct kiln_strv w = KILN_STRV_INIT;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(fe_expand_words(&f->lx,
	                                 "a\xc2\xa0"
	                                 "b\xe3\x80\x80"
	                                 "c",
	                                 &w, &err),
	                 0);
	assert_int_equal(w.n, 3);
	assert_string_equal(w.v[2], "c");
	kiln_strv_release(&w);
}

static void
test_shlex__words_from_expansions_split_even_when_quoted_inside(void **state)
{
	struct fx *f = *state;
	/* BuildKit splits the result of any ${...} at its white space, quotes inside or not */
	struct kiln_strv w = KILN_STRV_INIT;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(fe_expand_words(&f->lx, "${U:-'a b'} \"${U:-c d}\"", &w, &err), 0);
	assert_int_equal(w.n, 3);
	assert_string_equal(w.v[0], "a");
	assert_string_equal(w.v[1], "b");
	assert_string_equal(w.v[2], "c d");
	kiln_strv_release(&w);
}

static void
test_shlex__invalid_utf8_becomes_replacement_char(void **state)
{
	struct fx *f = *state;
	/* Go's scanner reads runes: a stray byte comes out as U+FFFD */
	expect_word(f,
	            "a\xff"
	            "b",
	            "a\xef\xbf\xbd"
	            "b");
}

static void
test_shlex__syntax_errors(void **state)
{
	struct fx *f = *state;
	expect_error(f, "${v", "unsupported modifier");
	expect_error(f, "${", "syntax error: missing '}'");
	expect_error(f, "${}", "syntax error: bad substitution");
	expect_error(f, "${:-x}", "syntax error: bad substitution");
	expect_error(f, "${v:x}", "unsupported modifier (:x) in substitution");
	expect_error(f, "${v=x}", "unsupported modifier (=) in substitution");
	expect_error(f, "${v:-x", "syntax error: missing '}'");
	expect_error(f, "${v/x", "syntax error: missing '/' in ${}");
	expect_error(f, "${v/x/y", "syntax error: missing '}'");
	expect_error(f, "'abc", "matching single-quote");
	expect_error(f, "\"abc", "matching double-quote");
	expect_error(f, "${v#\\x}", "invalid pattern (\\x) in substitution: invalid escape '\\x'");
	expect_error(f, "${v:-${w:?gone}}", "w: gone");
}

struct hook_ctx {
	const char *key, *val;
	int calls;
};

static const char *
hook_lookup(void *ctx, const char *name)
{
	struct hook_ctx *c = ctx;
	c->calls++;
	/* "A" is also answered here, so a hit in vars must win over the hook */
	return kiln_str_eq(name, c->key) || kiln_str_eq(name, "A") ? c->val : NULL;
}

static void
test_shlex__lookup_fallback(void **state)
{
	struct fx *f = *state;
	struct hook_ctx c = {"B", "from-hook", 0};
	fe_vars_set(&f->vars, "A", "from-vars");
	expect_word(f, "$A|$B", "from-vars|");
	f->lx.lookup = hook_lookup;
	f->lx.lookup_ctx = &c;
	expect_word(f, "$A|$B|${B:+set}|$C", "from-vars|from-hook|set|");
	assert_int_equal(c.calls, 3);
	/* the hook alone is enough */
	f->lx.vars = NULL;
	expect_word(f, "$A", "from-hook");
}

static void
test_shlex__vars_keep_order_and_replace_in_place(void **state)
{
	struct fe_vars v = FE_VARS_INIT;
	fe_vars_set(&v, "A", "1");
	fe_vars_set(&v, "B", "2");
	fe_vars_set(&v, "AB", "3");
	fe_vars_set(&v, "A", "4");
	assert_int_equal(v.kv.n, 3);
	assert_string_equal(v.kv.v[0], "A=4");
	assert_string_equal(v.kv.v[1], "B=2");
	assert_string_equal(v.kv.v[2], "AB=3");
	assert_string_equal(fe_vars_get(&v, "A"), "4");
	assert_string_equal(fe_vars_get(&v, "AB"), "3");
	assert_null(fe_vars_get(&v, "C"));
	struct fe_vars c = FE_VARS_INIT;
	fe_vars_set(&c, "B", "old");
	fe_vars_set(&c, "Z", "z");
	fe_vars_copy(&c, &v);
	assert_int_equal(c.kv.n, 4);
	assert_string_equal(c.kv.v[0], "B=2");
	assert_string_equal(c.kv.v[1], "Z=z");
	assert_string_equal(c.kv.v[2], "A=4");
	assert_string_equal(c.kv.v[3], "AB=3");
	fe_vars_set(&v, "E", "x=y");
	assert_string_equal(fe_vars_get(&v, "E"), "x=y");
	fe_vars_release(&v);
	fe_vars_release(&c);
	fe_vars_release(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(n) cmocka_unit_test_setup_teardown(n, setup, teardown)
	        T(test_shlex__buildkit_envvar_table),
	        T(test_shlex__buildkit_words_table),
	        T(test_shlex__mandatory_vars),
	        T(test_shlex__question_default_messages),
	        T(test_shlex__buildkit_matches_table),
	        T(test_shlex__default_when_unset_or_empty),
	        T(test_shlex__alternative_when_set),
	        T(test_shlex__trim_prefix_and_suffix),
	        T(test_shlex__replace_first_and_all),
	        T(test_shlex__bracket_is_literal_in_patterns),
	        T(test_shlex__nested_expansions),
	        T(test_shlex__quotes),
	        T(test_shlex__backslash_escapes),
	        T(test_shlex__backtick_escapes),
	        T(test_shlex__escape_kept_in_trim_patterns),
	        T(test_shlex__dollar_before_non_name_is_literal),
	        T(test_shlex__unset_is_empty),
	        T(test_shlex__names),
	        T(test_shlex__unicode_names_and_spaces),
	        T(test_shlex__words_from_expansions_split_even_when_quoted_inside),
	        T(test_shlex__invalid_utf8_becomes_replacement_char),
	        T(test_shlex__syntax_errors),
	        T(test_shlex__lookup_fallback),
	        T(test_shlex__vars_keep_order_and_replace_in_place),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
