/* Unit tests for registry/http.c: backoff, URL building, and where credentials may go. */
#include "testlib.h"

#include "registry/reg.h"

static void
test_http__backoff_doubles_up_to_the_cap(void **state)
{
	assert_int_equal(reg_backoff_ms(0, 200, 5000), 0);
	assert_int_equal(reg_backoff_ms(1, 200, 5000), 200);
	assert_int_equal(reg_backoff_ms(2, 200, 5000), 400);
	assert_int_equal(reg_backoff_ms(3, 200, 5000), 800);
	assert_int_equal(reg_backoff_ms(5, 200, 5000), 3200);
	assert_int_equal(reg_backoff_ms(6, 200, 5000), 5000);
	assert_int_equal(reg_backoff_ms(1000, 200, 5000), 5000);
}

static void
test_http__retryable_statuses(void **state)
{
	assert_true(reg_http_status_retryable(500));
	assert_true(reg_http_status_retryable(502));
	assert_true(reg_http_status_retryable(503));
	assert_true(reg_http_status_retryable(429));
	assert_false(reg_http_status_retryable(501));
	assert_false(reg_http_status_retryable(404));
	assert_false(reg_http_status_retryable(401));
	assert_false(reg_http_status_retryable(200));
}

static void
test_http__v2_urls(void **state)
{
	char *u = reg_url_v2("https", "127.0.0.1:5000", "library/busybox", "manifests", "latest");
	assert_string_equal(u, "https://127.0.0.1:5000/v2/library/busybox/manifests/latest");
	free(u);
	const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	u = reg_url_v2("http", "h", "a/b-c/d.e", "blobs", d);
	assert_non_null(u);
	assert_true(kiln_str_has_suffix(
	        u, "/v2/a/b-c/d.e/blobs/"
	           "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
	free(u);
	u = reg_url_v2("https", "h", "x", "blobs/uploads", "");
	assert_string_equal(u, "https://h/v2/x/blobs/uploads/");
	free(u);
	/* Nothing that could leave the path or the query. */
	assert_null(reg_url_v2("https", "h", "../etc", "manifests", "1"));
	assert_null(reg_url_v2("https", "h", "A/b", "manifests", "1"));
	assert_null(reg_url_v2("https", "h", "a//b", "manifests", "1"));
	assert_null(reg_url_v2("https", "h", "a", "manifests", "x?y=1"));
	assert_null(reg_url_v2("https", "h", "a", "manifests", "../b"));
}

static void
test_http__resolve_and_query(void **state)
{
	char *u = reg_url_resolve("https://h:5000/v2/x/blobs/uploads/",
	                          "/v2/x/blobs/uploads/abc?_state=Zz");
	assert_string_equal(u, "https://h:5000/v2/x/blobs/uploads/abc?_state=Zz");
	char *q = reg_url_add_query(u, "digest", "sha256:ab");
	assert_string_equal(q,
	                    "https://h:5000/v2/x/blobs/uploads/abc?_state=Zz&digest=sha256%3Aab");
	free(q);
	free(u);
	u = reg_url_resolve("https://h/v2/", "https://cdn.example/blob?sig=1");
	assert_string_equal(u, "https://cdn.example/blob?sig=1");
	free(u);
	q = reg_url_add_query("https://h/v2/x/blobs/uploads/", "mount", "a b");
	assert_string_equal(q, "https://h/v2/x/blobs/uploads/?mount=a%20b");
	free(q);
	assert_null(reg_url_resolve("https://h/v2/", "file:///etc/passwd"));
	assert_null(reg_url_resolve("https://h/v2/", "ftp://h/x"));
}

static void
test_http__certs_dir_names(void **state)
{
	char *n = reg_url_certs_name("https://127.0.0.1:5000/v2/");
	assert_string_equal(n, "127.0.0.1:5000");
	free(n);
	n = reg_url_certs_name("https://registry.example.com/v2/");
	assert_string_equal(n, "registry.example.com");
	free(n);
}

static void
test_http__redirect_credential_policy(void **state)
{
	const char *base = "https://reg.example:5000";
	/* Same scheme, host and port: credentials and tokens may go. */
	assert_true(reg_url_may_send_auth("https://reg.example:5000/v2/x/blobs/d", base, true));
	assert_true(reg_url_may_send_auth("https://REG.example:5000/v2/", base, false));
	/* A storage CDN, another port, a downgrade to http: nothing goes. */
	assert_false(reg_url_may_send_auth("https://cdn.example/blob", base, false));
	assert_false(reg_url_may_send_auth("https://cdn.example/blob", base, true));
	assert_false(reg_url_may_send_auth("https://reg.example:5001/v2/", base, false));
	assert_false(reg_url_may_send_auth("http://reg.example:5000/v2/", base, false));
	assert_false(reg_url_may_send_auth("https://reg.example.evil.com:5000/", base, false));
	/* Default ports are the same origin as explicit ones. */
	assert_true(reg_url_may_send_auth("https://h:443/v2/", "https://h", true));
	/* A password never goes over plain HTTP; a token follows the registry's scheme. */
	assert_false(reg_url_may_send_auth("http://h:5000/v2/", "http://h:5000", true));
	assert_true(reg_url_may_send_auth("http://h:5000/v2/", "http://h:5000", false));
	assert_false(reg_url_may_send_auth("not a url", base, false));
}

static void
test_http__loopback_hosts(void **state)
{
	assert_true(reg_host_is_loopback("localhost"));
	assert_true(reg_host_is_loopback("localhost:5000"));
	assert_true(reg_host_is_loopback("127.0.0.1:5000"));
	assert_true(reg_host_is_loopback("127.1.2.3"));
	assert_true(reg_host_is_loopback("[::1]:5000"));
	assert_false(reg_host_is_loopback("127.example.com"));
	assert_false(reg_host_is_loopback("10.0.0.1:5000"));
	assert_false(reg_host_is_loopback("docker.io"));
	assert_false(reg_host_is_loopback("[::2]:5000"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_http__backoff_doubles_up_to_the_cap),
	        cmocka_unit_test(test_http__retryable_statuses),
	        cmocka_unit_test(test_http__v2_urls),
	        cmocka_unit_test(test_http__resolve_and_query),
	        cmocka_unit_test(test_http__certs_dir_names),
	        cmocka_unit_test(test_http__redirect_credential_policy),
	        cmocka_unit_test(test_http__loopback_hosts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
