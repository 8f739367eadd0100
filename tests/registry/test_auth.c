/* Unit tests for registry/auth.c: WWW-Authenticate challenges, Basic headers, token answers. */
#include "testlib.h"

#include "registry/reg.h"

static void
test_auth__bearer_challenge(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_auth_challenge c = {0};
	assert_int_equal(
	        reg_auth_challenge_parse(
	                "Bearer "
	                "realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
	                "scope=\"repository:samalba/my-app:pull,push\"",
	                &c, &err),
	        0);
	assert_string_equal(c.scheme, "Bearer");
	assert_string_equal(c.realm, "https://auth.docker.io/token");
	assert_string_equal(c.service, "registry.docker.io");
	assert_string_equal(c.scope, "repository:samalba/my-app:pull,push");
	assert_null(c.error);
	reg_auth_challenge_release(&c);
}

static void
test_auth__error_and_spaces_and_case(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_auth_challenge c = {0};
	assert_int_equal(reg_auth_challenge_parse("  bearer  Realm = \"https://h/t\" , "
	                                          "ERROR=\"insufficient_scope\",scope=\"a b\"",
	                                          &c, &err),
	                 0);
	assert_string_equal(c.scheme, "bearer");
	assert_string_equal(c.realm, "https://h/t");
	assert_string_equal(c.error, "insufficient_scope");
	assert_string_equal(c.scope, "a b");
	assert_null(c.service);
	reg_auth_challenge_release(&c);
}

static void
test_auth__quoted_escapes_and_tokens(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_auth_challenge c = {0};
	assert_int_equal(
	        reg_auth_challenge_parse("Bearer realm=\"a\\\"b\\\\c\",service=svc", &c, &err), 0);
	assert_string_equal(c.realm, "a\"b\\c");
	assert_string_equal(c.service, "svc");
	reg_auth_challenge_release(&c);
}

static void
test_auth__basic_challenge(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_auth_challenge c = {0};
	assert_int_equal(reg_auth_challenge_parse("Basic realm=\"Registry Realm\"", &c, &err), 0);
	assert_string_equal(c.scheme, "Basic");
	assert_string_equal(c.realm, "Registry Realm");
	reg_auth_challenge_release(&c);
	assert_int_equal(reg_auth_challenge_parse("Basic", &c, &err), 0);
	assert_string_equal(c.scheme, "Basic");
	assert_null(c.realm);
	reg_auth_challenge_release(&c);
}

static void
test_auth__first_of_several_challenges(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_auth_challenge c = {0};
	assert_int_equal(
	        reg_auth_challenge_parse("Bearer realm=\"https://r\", Basic realm=\"x\"", &c, &err),
	        0);
	assert_string_equal(c.scheme, "Bearer");
	assert_string_equal(c.realm, "https://r");
	reg_auth_challenge_release(&c);
}

static void
test_auth__malformed_challenges(void **state)
{
	static const char *bad[] = {"",
	                            "   ",
	                            "Bearer realm=\"unterminated",
	                            "Bearer realm=",
	                            "Bearer realm=\"a\" junk",
	                            "Bearer =x"};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(bad); i++) {
		struct kiln_err err = KILN_ERR_INIT;
		struct reg_auth_challenge c = {0};
		assert_int_equal(reg_auth_challenge_parse(bad[i], &c, &err), -EINVAL);
		assert_null(c.scheme);
		assert_err_contains(&err, "malformed WWW-Authenticate");
	}
}

static void
test_auth__basic_header(void **state)
{
	char *h = reg_auth_basic_header("alice", "s3cret:pw");
	assert_string_equal(h, "Basic YWxpY2U6czNjcmV0OnB3");
	free(h);
	h = reg_auth_basic_header("", "");
	assert_string_equal(h, "Basic Og==");
	free(h);
}

static void
test_auth__token_answers(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	char *tok = NULL;
	int64_t exp = 0;
	const char *a = "{\"token\":\"T1\",\"expires_in\":300}";
	assert_int_equal(reg_auth_token_parse(a, strlen(a), &tok, &exp, &err), 0);
	assert_string_equal(tok, "T1");
	assert_int_equal(exp, 300);
	free(tok);
	const char *b = "{\"access_token\":\"T2\"}";
	assert_int_equal(reg_auth_token_parse(b, strlen(b), &tok, &exp, &err), 0);
	assert_string_equal(tok, "T2");
	assert_int_equal(exp, 60);
	free(tok);
	const char *c = "{\"expires_in\":10}";
	assert_int_equal(reg_auth_token_parse(c, strlen(c), &tok, &exp, &err), -EINVAL);
	assert_err_contains(&err, "no token");
	assert_int_equal(reg_auth_token_parse("[1]", 3, &tok, &exp, &err), -EINVAL);
	assert_err_contains(&err, "not a JSON object");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_auth__bearer_challenge),
	        cmocka_unit_test(test_auth__error_and_spaces_and_case),
	        cmocka_unit_test(test_auth__quoted_escapes_and_tokens),
	        cmocka_unit_test(test_auth__basic_challenge),
	        cmocka_unit_test(test_auth__first_of_several_challenges),
	        cmocka_unit_test(test_auth__malformed_challenges),
	        cmocka_unit_test(test_auth__basic_header),
	        cmocka_unit_test(test_auth__token_answers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
