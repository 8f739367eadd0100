/* Unit tests for frontend/dockerignore.c: one test per .dockerignore rule, then the tables
 * of moby/patternmatcher's and ignorefile's tests. */
#include "testlib.h"

#include "frontend/dockerignore.h"

#include <sys/stat.h>

static int
setup(void **state)
{
	*state = test_tmpdir_new();
	return 0;
}

static int
teardown(void **state)
{
	test_tmpdir_remove(*state);
	return 0;
}

static struct fe_ignore *
parse_ok(const char *text)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_ignore *ig = NULL;
	if (fe_ignore_parse(".dockerignore", text, &ig, &err) < 0) {
		char *s = kiln_err_format(&err);
		fail_msg("parse of \"%s\" failed: %s", text, s);
	}
	return ig;
}

/* Patterns as one NUL-separated list, matched against one path. */
static bool
matches(const char *text, const char *path)
{
	struct fe_ignore *ig = parse_ok(text);
	bool m = fe_ignore_matches(ig, path);
	fe_ignore_free(ig);
	return m;
}

#define assert_matches(text, path)                                                                 \
	do {                                                                                       \
		if (!matches((text), (path)))                                                      \
			fail_msg("\"%s\" should exclude \"%s\"", (text), (path));                  \
	} while (0)
#define assert_not_matches(text, path)                                                             \
	do {                                                                                       \
		if (matches((text), (path)))                                                       \
			fail_msg("\"%s\" should not exclude \"%s\"", (text), (path));              \
	} while (0)

static void
assert_patterns(const char *text, const char *const *want, size_t n)
{
	struct fe_ignore *ig = parse_ok(text);
	assert_int_equal(fe_ignore_count(ig), n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(fe_ignore_pattern(ig, i), want[i]);
	fe_ignore_free(ig);
}

static void
test_dockerignore__comments_and_blank_lines(void **state)
{
	const char *want[] = {"a", "# not a comment", "b"};
	assert_patterns("# comment\n\n   \na\n  # not a comment\n#b\nb\n", want, 3);
	assert_matches("#x\nx\n", "x");
	assert_not_matches("#x\n", "x");
}

static void
test_dockerignore__lines_trimmed_and_crlf(void **state)
{
	const char *want[] = {"a", "b c", "!d"};
	assert_patterns("\xEF\xBB\xBF  a  \r\n\tb c\t\r\n !  d \r\n", want, 3);
}

static void
test_dockerignore__doublestar_at_start(void **state)
{
	assert_matches("**/foo", "foo");
	assert_matches("**/foo", "a/b/foo");
	assert_matches("**/foo", "a/foo/inside");
	assert_not_matches("**/foo", "a/xfoo");
	assert_matches("**/*.log", "x.log");
	assert_matches("**/*.log", "a/b/x.log");
	assert_not_matches("**/*.log", "a/b/x.txt");
}

static void
test_dockerignore__doublestar_in_middle(void **state)
{
	assert_matches("a/**/z", "a/z");
	assert_matches("a/**/z", "a/b/z");
	assert_matches("a/**/z", "a/b/c/z");
	assert_not_matches("a/**/z", "b/a/z");
	assert_not_matches("a/**/z", "a/b/zz");
}

static void
test_dockerignore__doublestar_at_end(void **state)
{
	assert_matches("a/**", "a/b");
	assert_matches("a/**", "a/b/c");
	assert_not_matches("a/**", "a");
	assert_not_matches("a/**", "ab/c");
	assert_matches("**", "anything/at/all");
}

static void
test_dockerignore__star_stays_in_segment(void **state)
{
	assert_matches("*.go", "main.go");
	assert_not_matches("*.go", "cmd/main.go");
	assert_matches("cmd/*", "cmd/main.go");
	assert_matches("cmd/*", "cmd/sub/deeper");
	assert_not_matches("cmd/*", "cmd");
}

static void
test_dockerignore__exception_and_last_match_wins(void **state)
{
	assert_not_matches("*.md\n!README.md\n", "README.md");
	assert_matches("*.md\n!README.md\n", "CHANGES.md");
	assert_matches("*.md\n!README.md\nREADME*\n", "README.md");
	assert_matches("!README.md\n*.md\n", "README.md");
	assert_not_matches("docs\n!docs/keep.txt\n", "docs/keep.txt");
	assert_matches("docs\n!docs/keep.txt\n", "docs/drop.txt");
	struct fe_ignore *ig = parse_ok("docs\n!docs/keep.txt\n");
	assert_string_equal(fe_ignore_pattern(ig, 1), "!docs/keep.txt");
	fe_ignore_free(ig);
}

static void
test_dockerignore__leading_slash_and_dot_slash(void **state)
{
	const char *want[] = {"foo", "bar/baz", "x", "!y", "/"};
	assert_patterns("/foo\n./bar//baz/\n/./x/../x\n! /y\n/\n", want, 5);
	assert_matches("/foo\n", "foo");
	assert_matches("./foo\n", "foo/bar");
	/* "/" alone stays "/" and matches nothing */
	assert_not_matches("/\n", "foo");
}

static void
test_dockerignore__parent_dir_excludes_everything_below(void **state)
{
	assert_matches("build\n", "build/out/bin/app");
	assert_matches("b?ild\n", "build/x");
	assert_not_matches("build\n", "src/build");
	assert_not_matches("build\n", "buildx/y");
}

static void
test_dockerignore__question_mark_and_classes(void **state)
{
	assert_matches("file?.txt\n", "file1.txt");
	assert_not_matches("file?.txt\n", "file10.txt");
	assert_not_matches("a?b\n", "a/b");
	assert_matches("v[0-9].log\n", "v7.log");
	assert_not_matches("v[0-9].log\n", "vx.log");
	assert_matches("v[^0-9].log\n", "vx.log");
	assert_not_matches("v[^0-9].log\n", "v7.log");
	assert_matches("[[]x\n", "[x");
	/* patternmatcher builds a Go regexp: "[!a]" is the set {!, a}, not a negation */
	assert_matches("[!a]b\n", "ab");
	assert_not_matches("[!a]b\n", "cb");
	assert_matches("a\\*b\n", "a*b");
	assert_not_matches("a\\*b\n", "axb");
}

static void
test_dockerignore__trailing_slash(void **state)
{
	const char *want[] = {"dir", "!dir/keep"};
	assert_patterns("dir/\n!dir/keep/\n", want, 2);
	assert_matches("dir/\n", "dir");
	assert_matches("dir/\n", "dir/file");
}

static void
test_dockerignore__regexp_metachars_are_literal(void **state)
{
	assert_matches("a.b+(c)|{d}$\n", "a.b+(c)|{d}$");
	assert_not_matches("a.c\n", "abc");
	assert_matches("*.tar.gz\n", "x.tar.gz");
	assert_not_matches("*.tar.gz\n", "x.tarxgz");
}

static void
test_dockerignore__doublestar_shortcut_quirks(void **state)
{
	/* patternmatcher tests a trailing "**" as a plain string prefix and a leading one as
	 * a plain suffix, so neither needs a "/" next to it */
	assert_matches("foo**\n", "foobar/x");
	assert_matches("**foo\n", "barfoo");
	assert_matches("**foo\n", "a/barfoo");
	/* in the middle "**" becomes an optional "any text then slash" group */
	assert_matches("a**b\n", "ab");
	assert_matches("a**b\n", "ax/b");
	assert_not_matches("a**b\n", "axb");
}

static void
test_dockerignore__invalid_pattern_names_file_and_line(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_ignore *ig = NULL;
	assert_int_equal(fe_ignore_parse("ctx/.dockerignore", "ok\n# c\nfoo[\n", &ig, &err),
	                 -EINVAL);
	assert_null(ig);
	assert_string_equal(err.file, "ctx/.dockerignore");
	assert_int_equal(err.line, 3);
	assert_err_contains(&err, "ctx/.dockerignore:3");

	assert_int_equal(fe_ignore_parse("f", "a\n!\n", &ig, &err), -EINVAL);
	assert_int_equal(err.line, 2);
	assert_err_contains(&err, "illegal exclusion pattern: \"!\"");

	/* filepath.Match accepts an inverted range, Go's regexp does not: BuildKit fails
	 * when walking the context, kiln as soon as it reads the file */
	assert_int_equal(fe_ignore_parse("f", "[Local-Only]/\n", &ig, &err), -EINVAL);
	assert_err_contains(&err, "syntax error in pattern");
}

static void
test_dockerignore__from_list(void **state)
{
	char *pats[] = {"  /a/b/ ", "", "!a/b/c", "#kept"};
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_ignore *ig = NULL;
	assert_int_equal(fe_ignore_from_list(pats, 4, &ig, &err), 0);
	assert_int_equal(fe_ignore_count(ig), 3);
	assert_string_equal(fe_ignore_pattern(ig, 0), "a/b");
	assert_string_equal(fe_ignore_pattern(ig, 1), "!a/b/c");
	assert_string_equal(fe_ignore_pattern(ig, 2), "#kept");
	assert_true(fe_ignore_matches(ig, "a/b/d"));
	assert_false(fe_ignore_matches(ig, "a/b/c"));
	assert_true(fe_ignore_matches(ig, "#kept"));
	fe_ignore_free(ig);
	char *bad[] = {"a[b"};
	assert_int_equal(fe_ignore_from_list(bad, 1, &ig, &err), -EINVAL);
	assert_err_contains(&err, "a[b");
}

static void
test_dockerignore__load_prefers_dockerfile_specific_file(void **state)
{
	const char *dir = *state;
	test_write_file(dir, "ctx/.dockerignore", "from-context\n");
	test_write_file(dir, "build/app.Dockerfile", "FROM scratch\n");
	test_write_file(dir, "build/app.Dockerfile.dockerignore", "from-dockerfile\n");
	char *ctx = kiln_xasprintf("%s/ctx", dir);
	char *df = kiln_xasprintf("%s/build/app.Dockerfile", dir);
	char *other = kiln_xasprintf("%s/build/Other.Dockerfile", dir);
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_ignore *ig = NULL;

	assert_int_equal(fe_ignore_load(ctx, df, &ig, &err), 0);
	assert_int_equal(fe_ignore_count(ig), 1);
	assert_string_equal(fe_ignore_pattern(ig, 0), "from-dockerfile");
	fe_ignore_free(ig);

	assert_int_equal(fe_ignore_load(ctx, other, &ig, &err), 0);
	assert_int_equal(fe_ignore_count(ig), 1);
	assert_string_equal(fe_ignore_pattern(ig, 0), "from-context");
	fe_ignore_free(ig);

	assert_int_equal(fe_ignore_load(ctx, NULL, &ig, &err), 0);
	assert_string_equal(fe_ignore_pattern(ig, 0), "from-context");
	fe_ignore_free(ig);

	free(ctx);
	free(df);
	free(other);
}

static void
test_dockerignore__load_without_file_is_empty(void **state)
{
	const char *dir = *state;
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_ignore *ig = NULL;
	assert_int_equal(fe_ignore_load(dir, NULL, &ig, &err), 0);
	assert_int_equal(fe_ignore_count(ig), 0);
	assert_false(fe_ignore_matches(ig, "anything"));
	fe_ignore_free(ig);
}

static void
test_dockerignore__load_errors_name_the_file(void **state)
{
	const char *dir = *state;
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_ignore *ig = NULL;
	/* a directory where the file should be: EISDIR, not "absent" */
	char *p = kiln_xasprintf("%s/.dockerignore", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_true(fe_ignore_load(dir, NULL, &ig, &err) < 0);
	assert_err_contains(&err, ".dockerignore");
	free(p);

	test_write_file(dir, "sub/.dockerignore", "x\n[\n");
	char *sub = kiln_xasprintf("%s/sub", dir);
	assert_int_equal(fe_ignore_load(sub, NULL, &ig, &err), -EINVAL);
	assert_int_equal(err.line, 2);
	assert_err_contains(&err, "sub/.dockerignore:2");
	free(sub);
}

/* ---- moby/patternmatcher's TestMatches, with MatchesOrParentMatches ---- */

struct pm_row {
	const char *pattern;
	const char *text;
	bool match;
};

static const struct pm_row pm_rows[] = {
        {"**", "file", true},
        {"**", "file/", true},
        {"**/", "file", true},
        {"**/", "file/", true},
        {"**", "/", true},
        {"**/", "/", true},
        {"**", "dir/file", true},
        {"**/", "dir/file", true},
        {"**", "dir/file/", true},
        {"**/", "dir/file/", true},
        {"**/**", "dir/file", true},
        {"**/**", "dir/file/", true},
        {"dir/**", "dir/file", true},
        {"dir/**", "dir/file/", true},
        {"dir/**", "dir/dir2/file", true},
        {"dir/**", "dir/dir2/file/", true},
        {"**/dir", "dir", true},
        {"**/dir", "dir/file", true},
        {"**/dir2/*", "dir/dir2/file", true},
        {"**/dir2/*", "dir/dir2/file/", true},
        {"**/dir2/**", "dir/dir2/dir3/file", true},
        {"**/dir2/**", "dir/dir2/dir3/file/", true},
        {"**file", "file", true},
        {"**file", "dir/file", true},
        {"**/file", "dir/file", true},
        {"**file", "dir/dir/file", true},
        {"**/file", "dir/dir/file", true},
        {"**/file*", "dir/dir/file", true},
        {"**/file*", "dir/dir/file.txt", true},
        {"**/file*txt", "dir/dir/file.txt", true},
        {"**/file*.txt", "dir/dir/file.txt", true},
        {"**/file*.txt*", "dir/dir/file.txt", true},
        {"**/**/*.txt", "dir/dir/file.txt", true},
        {"**/**/*.txt2", "dir/dir/file.txt", false},
        {"**/*.txt", "file.txt", true},
        {"**/**/*.txt", "file.txt", true},
        {"a**/*.txt", "a/file.txt", true},
        {"a**/*.txt", "a/dir/file.txt", true},
        {"a**/*.txt", "a/dir/dir/file.txt", true},
        {"a/*.txt", "a/dir/file.txt", false},
        {"a/*.txt", "a/file.txt", true},
        {"a/*.txt**", "a/file.txt", true},
        {"a[b-d]e", "ae", false},
        {"a[b-d]e", "ace", true},
        {"a[b-d]e", "aae", false},
        {"a[^b-d]e", "aze", true},
        {".*", ".foo", true},
        {".*", "foo", false},
        {"abc.def", "abcdef", false},
        {"abc.def", "abc.def", true},
        {"abc.def", "abcZdef", false},
        {"abc?def", "abcZdef", true},
        {"abc?def", "abcdef", false},
        {"**/foo/bar", "foo/bar", true},
        {"**/foo/bar", "dir/foo/bar", true},
        {"**/foo/bar", "dir/dir2/foo/bar", true},
        {"abc/**", "abc", false},
        {"abc/**", "abc/def", true},
        {"abc/**", "abc/def/ghi", true},
        {"**/.foo", ".foo", true},
        {"**/.foo", "bar.foo", false},
        {"a(b)c/def", "a(b)c/def", true},
        {"a(b)c/def", "a(b)c/xyz", false},
        {"a.|)$(}+{bc", "a.|)$(}+{bc", true},
        {"dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
         "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true},
        {"dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true},
        /* the Unix-only rows; the Windows row (no escapes there) does not apply */
        {"a\\\\", "a\\", true},
        {"a\\*b", "a*b", true},
        /* TestWildcardMatches, TestPatternMatches */
        {"*", "fileutils.go", true},
        {"*.go", "fileutils.go", true},
};

/* Patterns one per line. */
struct pm_multi {
	const char *patterns;
	const char *text;
	bool match;
};

static const struct pm_multi pm_multi_rows[] = {
        {"**\n!util/docker/web\n", "util/docker/web/foo", false},
        {"**\n!util/docker/web\nutil/docker/web/foo\n", "util/docker/web/foo", true},
        {"**\n!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl\n",
         "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false},
        {"**\n!dist/*.whl\n", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false},
        /* TestExclusionPatternMatchesPatternBefore, ...Folder*Exclusions, ...PatternAfter */
        {"!fileutils.go\n*.go\n", "fileutils.go", true},
        {"docs\n!docs/README.md\n", "docs/README.md", false},
        {"docs/\n!docs/README.md\n", "docs/README.md", false},
        {"docs/*\n!docs/README.md\n", "docs/README.md", false},
        {"*.go\n!fileutils.go\n", "fileutils.go", false},
        /* TestMatchesWithNoPatterns */
        {"", "/any/path/there", false},
};

static void
test_dockerignore__patternmatcher_matches_table(void **state)
{
	for (size_t i = 0; i < KILN_ARRAY_SIZE(pm_rows); i++) {
		char *text = kiln_xasprintf("%s\n", pm_rows[i].pattern);
		if (matches(text, pm_rows[i].text) != pm_rows[i].match)
			fail_msg("pattern \"%s\" on \"%s\": want %s", pm_rows[i].pattern,
			         pm_rows[i].text, pm_rows[i].match ? "match" : "no match");
		free(text);
	}
	for (size_t i = 0; i < KILN_ARRAY_SIZE(pm_multi_rows); i++)
		if (matches(pm_multi_rows[i].patterns, pm_multi_rows[i].text) !=
		    pm_multi_rows[i].match)
			fail_msg("patterns \"%s\" on \"%s\": want %s", pm_multi_rows[i].patterns,
			         pm_multi_rows[i].text,
			         pm_multi_rows[i].match ? "match" : "no match");
}

/* ---- patternmatcher's matchTests (Go's filepath.Match tests); NULL text: bad pattern ---- */

static const struct pm_row match_rows[] = {
        {"abc", "abc", true},
        {"*", "abc", true},
        {"*c", "abc", true},
        {"a*", "a", true},
        {"a*", "abc", true},
        {"a*", "ab/c", true},
        {"a*/b", "abc/b", true},
        {"a*/b", "a/c/b", false},
        {"a*b*c*d*e*/f", "axbxcxdxe/f", true},
        {"a*b*c*d*e*/f", "axbxcxdxexxx/f", true},
        {"a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false},
        {"a*b*c*d*e*/f", "axbxcxdxexxx/fff", false},
        {"a*b?c*x", "abxbbxdbxebxczzx", true},
        {"a*b?c*x", "abxbbxdbxebxczzy", false},
        {"ab[c]", "abc", true},
        {"ab[b-d]", "abc", true},
        {"ab[e-g]", "abc", false},
        {"ab[^c]", "abc", false},
        {"ab[^b-d]", "abc", false},
        {"ab[^e-g]", "abc", true},
        {"a\\*b", "a*b", true},
        {"a\\*b", "ab", false},
        {"a?b", "a☺b", true},
        {"a[^a]b", "a☺b", true},
        {"a???b", "a☺b", false},
        {"a[^a][^a][^a]b", "a☺b", false},
        {"[a-ζ]*", "α", true},
        {"*[a-ζ]", "A", false},
        {"a?b", "a/b", false},
        {"a*b", "a/b", false},
        {"[\\]a]", "]", true},
        {"[\\-]", "-", true},
        {"[x\\-]", "x", true},
        {"[x\\-]", "-", true},
        {"[x\\-]", "z", false},
        {"[\\-x]", "x", true},
        {"[\\-x]", "-", true},
        {"[\\-x]", "a", false},
        {"*x", "xxx", true},
        {"[]a]", NULL, false},
        {"[-]", NULL, false},
        {"[x-]", NULL, false},
        {"[-x]", NULL, false},
        {"\\", NULL, false},
        {"[a-b-c]", NULL, false},
        {"[", NULL, false},
        {"[^", NULL, false},
        {"[^bc", NULL, false},
        {"a[", NULL, false},
};

static void
test_dockerignore__filepath_match_table(void **state)
{
	for (size_t i = 0; i < KILN_ARRAY_SIZE(match_rows); i++) {
		const struct pm_row *r = &match_rows[i];
		char *text = kiln_xasprintf("%s\n", r->pattern);
		struct kiln_err err = KILN_ERR_INIT;
		struct fe_ignore *ig = NULL;
		int rc = fe_ignore_parse(".dockerignore", text, &ig, &err);
		if (!r->text) {
			if (rc >= 0)
				fail_msg("pattern \"%s\" should be rejected", r->pattern);
			assert_err_contains(&err, "syntax error in pattern");
		} else {
			if (rc < 0)
				fail_msg("pattern \"%s\" rejected", r->pattern);
			if (fe_ignore_matches(ig, r->text) != r->match)
				fail_msg("pattern \"%s\" on \"%s\": want %s", r->pattern, r->text,
				         r->match ? "match" : "no match");
			fe_ignore_free(ig);
		}
		free(text);
	}
}

/* TestCleanPatterns* */
static void
test_dockerignore__clean_patterns(void **state)
{
	const char *two[] = {"docs", "config"};
	assert_patterns("docs\nconfig\n\n", two, 2);
	const char *exc[] = {"docs", "!docs/README.md"};
	assert_patterns("docs\n  !docs/README.md\n", exc, 2);
	assert_patterns("docs\n!docs/README.md  \n", exc, 2);
}

/* ignorefile's TestReadAll; its "!" entries are an error once patternmatcher.New sees
 * them, which kiln does in the same step. */
static void
test_dockerignore__ignorefile_read_all(void **state)
{
	const char *want[] = {"test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path"};
	assert_patterns("test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! "
	                "/inverted/abs/path\n",
	                want, 5);
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_ignore *ig = NULL;
	assert_int_equal(fe_ignore_parse("f", "test1\n! /inverted/abs/path\n!\n! ", &ig, &err),
	                 -EINVAL);
	assert_int_equal(err.line, 3);
	assert_err_contains(&err, "illegal exclusion pattern");
}

static void
test_dockerignore__many_files_fast(void **state)
{
	struct fe_ignore *ig = parse_ok(
	        "**/*.o\nnode_modules\n!node_modules/keep\nbuild/**\n*.tmp\n**/cache/**\n");
	size_t hits = 0;
	char path[128];
	for (int i = 0; i < 20000; i++) {
		snprintf(path, sizeof(path), "src/mod%d/sub%d/file%d.%s", i % 50, i % 7, i,
		         i % 3 == 0 ? "o" : "c");
		hits += fe_ignore_matches(ig, path);
	}
	assert_int_equal(hits, 6667);
	assert_true(fe_ignore_matches(ig, "node_modules/x/y"));
	assert_false(fe_ignore_matches(ig, "node_modules/keep"));
	assert_true(fe_ignore_matches(ig, "a/cache/b"));
	fe_ignore_free(ig);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(n) cmocka_unit_test_setup_teardown(n, setup, teardown)
	        T(test_dockerignore__comments_and_blank_lines),
	        T(test_dockerignore__lines_trimmed_and_crlf),
	        T(test_dockerignore__doublestar_at_start),
	        T(test_dockerignore__doublestar_in_middle),
	        T(test_dockerignore__doublestar_at_end),
	        T(test_dockerignore__star_stays_in_segment),
	        T(test_dockerignore__exception_and_last_match_wins),
	        T(test_dockerignore__leading_slash_and_dot_slash),
	        T(test_dockerignore__parent_dir_excludes_everything_below),
	        T(test_dockerignore__question_mark_and_classes),
	        T(test_dockerignore__trailing_slash),
	        T(test_dockerignore__regexp_metachars_are_literal),
	        T(test_dockerignore__doublestar_shortcut_quirks),
	        T(test_dockerignore__invalid_pattern_names_file_and_line),
	        T(test_dockerignore__from_list),
	        T(test_dockerignore__load_prefers_dockerfile_specific_file),
	        T(test_dockerignore__load_without_file_is_empty),
	        T(test_dockerignore__load_errors_name_the_file),
	        T(test_dockerignore__patternmatcher_matches_table),
	        T(test_dockerignore__filepath_match_table),
	        T(test_dockerignore__clean_patterns),
	        T(test_dockerignore__ignorefile_read_all),
	        T(test_dockerignore__many_files_fast),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
