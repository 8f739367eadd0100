/* Unit tests for base/: buffers, vectors, arena, errors, digests, path cleaning. */
#include "testlib.h"

static void
test_buf__grows_and_stays_terminated(void **state)
{
	struct kiln_buf sb = KILN_BUF_INIT;
	assert_string_equal(sb.buf, "");
	for (int i = 0; i < 1000; i++)
		kiln_buf_addf(&sb, "%d,", i);
	assert_int_equal(sb.len, strlen(sb.buf));
	assert_true(kiln_str_has_prefix(sb.buf, "0,1,2,"));
	assert_true(kiln_str_has_suffix(sb.buf, "998,999,"));
	kiln_buf_setlen(&sb, 2);
	assert_string_equal(sb.buf, "0,");
	size_t len;
	char *s = kiln_buf_detach(&sb, &len);
	assert_int_equal(len, 2);
	assert_string_equal(s, "0,");
	assert_string_equal(sb.buf, "");
	free(s);
}

static void
test_buf__detach_empty_gives_owned_string(void **state)
{
	struct kiln_buf sb = KILN_BUF_INIT;
	char *s = kiln_buf_detach(&sb, NULL);
	assert_string_equal(s, "");
	free(s);
}

static void
test_buf__add_rune_encodes_utf8(void **state)
{
	_cleanup_buf_ struct kiln_buf sb = KILN_BUF_INIT;
	kiln_buf_add_rune(&sb, 'a');
	kiln_buf_add_rune(&sb, 0xE9);
	kiln_buf_add_rune(&sb, 0x20AC);
	kiln_buf_add_rune(&sb, 0x1F600);
	kiln_buf_add_rune(&sb, 0xD800);
	assert_string_equal(sb.buf, "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbd");
}

static void
test_strv__null_terminated(void **state)
{
	_cleanup_strv_ struct kiln_strv sv = KILN_STRV_INIT;
	assert_null(kiln_strv_get(&sv)[0]);
	kiln_strv_push(&sv, "a");
	kiln_strv_pushf(&sv, "%s=%d", "b", 2);
	assert_int_equal(sv.n, 2);
	assert_string_equal(sv.v[1], "b=2");
	assert_null(sv.v[2]);
}

static void
test_arena__many_allocations(void **state)
{
	struct kiln_arena *a = kiln_arena_new();
	char *big = kiln_arena_alloc(a, 200000);
	memset(big, 'x', 200000);
	for (int i = 0; i < 10000; i++) {
		char *s = kiln_arena_printf(a, "item-%d", i);
		assert_true(((uintptr_t)s & 15) == 0);
		assert_true(kiln_str_has_prefix(s, "item-"));
	}
	assert_string_equal(kiln_arena_strndup(a, "hello", 4), "hell");
	kiln_arena_free(a);
}

static void
test_err__location_and_wrap(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	int r = kiln_err_at(&err, "Dockerfile", 12, 12, "COPY --from=%s: no stage named \"%s\"", "bulider", "bulider");
	assert_int_equal(r, -EINVAL);
	char *s = kiln_err_format(&err);
	assert_string_equal(s, "Dockerfile:12: COPY --from=bulider: no stage named \"bulider\"");
	free(s);
	kiln_err_release(&err);

	r = kiln_err_set(&err, ENOENT, "open `%s`", "x");
	assert_int_equal(r, -ENOENT);
	kiln_err_wrap(&err, "read context");
	s = kiln_err_format(&err);
	assert_string_equal(s, "read context: open `x`: No such file or directory");
	free(s);
	kiln_err_release(&err);
}

static void
test_digest__sha256_of_abc(void **state)
{
	struct kiln_digest d;
	char hex[KILN_DIGEST_HEX_LEN + 1];
	kiln_sha256_buf("abc", 3, &d);
	kiln_digest_format(&d, hex);
	assert_string_equal(hex, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

	struct kiln_sha256 *ctx = kiln_sha256_new();
	kiln_sha256_update(ctx, "a", 1);
	kiln_sha256_update(ctx, "bc", 2);
	struct kiln_digest d2;
	kiln_sha256_final(ctx, &d2);
	assert_memory_equal(d.bytes, d2.bytes, 32);

	struct kiln_digest back;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(kiln_digest_parse(hex, &back, &err), 0);
	assert_memory_equal(back.bytes, d.bytes, 32);
}

static void
test_digest__rejects_bad_strings(void **state)
{
	struct kiln_digest d;
	struct kiln_err err = KILN_ERR_INIT;
	const char *bad[] = {
		"sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
		"sha256:ba78",
		"sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"sha256:../../../../etc/passwd00000000000000000000000000000000000000000",
		"",
	};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(bad); i++) {
		assert_int_equal(kiln_digest_parse(bad[i], &d, &err), -EINVAL);
		assert_err_contains(&err, "invalid digest");
	}
}

static void
test_path__clean_like_go(void **state)
{
	const char *cases[][2] = {
		{"", "."},         {"/", "/"},       {"a/b/../c", "a/c"}, {"/../a", "/a"},
		{"../a/..", ".."}, {"./a//b/", "a/b"}, {"a/../..", ".."},  {"/a/./b/.", "/a/b"},
		{"..", ".."},      {"a/..", "."},     {"../../x", "../../x"},
	};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(cases); i++) {
		char *c = kiln_path_clean(cases[i][0]);
		assert_string_equal(c, cases[i][1]);
		free(c);
	}
	char *j = kiln_path_join("/app", "../x/y");
	assert_string_equal(j, "/x/y");
	free(j);
}

static void
test_parse_u64__whole_string(void **state)
{
	uint64_t v;
	assert_int_equal(kiln_parse_u64("42", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(kiln_parse_u64("4x", &v), -EINVAL);
	assert_int_equal(kiln_parse_u64("", &v), -EINVAL);
	assert_int_equal(kiln_parse_u64("99999999999999999999999", &v), -ERANGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf__grows_and_stays_terminated),
		cmocka_unit_test(test_buf__detach_empty_gives_owned_string),
		cmocka_unit_test(test_buf__add_rune_encodes_utf8),
		cmocka_unit_test(test_strv__null_terminated),
		cmocka_unit_test(test_arena__many_allocations),
		cmocka_unit_test(test_err__location_and_wrap),
		cmocka_unit_test(test_digest__sha256_of_abc),
		cmocka_unit_test(test_digest__rejects_bad_strings),
		cmocka_unit_test(test_path__clean_like_go),
		cmocka_unit_test(test_parse_u64__whole_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
