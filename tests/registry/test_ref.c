/* Unit tests for registry/ref.c: tables of references that Docker's distribution/reference
 * accepts or rejects, with their canonical and familiar forms. */
#include "testlib.h"
#include "registry/reg.h"

#define D64 "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"
#define H64 "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"

struct norm_case {
	const char *in;
	const char *domain, *path, *tag, *digest;
	const char *canonical, *familiar;
};

static const struct norm_case norm_ok[] = {
        {"busybox", "docker.io", "library/busybox", NULL, NULL, "docker.io/library/busybox",
         "busybox"},
        {"busybox:latest", "docker.io", "library/busybox", "latest", NULL,
         "docker.io/library/busybox:latest", "busybox:latest"},
        {"docker.io/library/busybox:latest", "docker.io", "library/busybox", "latest", NULL,
         "docker.io/library/busybox:latest", "busybox:latest"},
        {"docker.io/busybox", "docker.io", "library/busybox", NULL, NULL,
         "docker.io/library/busybox", "busybox"},
        {"index.docker.io/library/debian", "docker.io", "library/debian", NULL, NULL,
         "docker.io/library/debian", "debian"},
        {"index.docker.io/debian", "docker.io", "library/debian", NULL, NULL,
         "docker.io/library/debian", "debian"},
        {"docker/docker", "docker.io", "docker/docker", NULL, NULL, "docker.io/docker/docker",
         "docker/docker"},
        {"library/foo/bar", "docker.io", "library/foo/bar", NULL, NULL, "docker.io/library/foo/bar",
         "library/foo/bar"},
        {"other/library", "docker.io", "other/library", NULL, NULL, "docker.io/other/library",
         "other/library"},
        {"test_com/foo", "docker.io", "test_com/foo", NULL, NULL, "docker.io/test_com/foo",
         "test_com/foo"},
        {"test.com/foo", "test.com", "foo", NULL, NULL, "test.com/foo", "test.com/foo"},
        {"test-com:8080/foo", "test-com:8080", "foo", NULL, NULL, "test-com:8080/foo",
         "test-com:8080/foo"},
        {"xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", NULL, NULL, "xn--n3h.com:18080/foo",
         "xn--n3h.com:18080/foo"},
        {"localhost/foo", "localhost", "foo", NULL, NULL, "localhost/foo", "localhost/foo"},
        {"localhost:5000/foo/bar:v1", "localhost:5000", "foo/bar", "v1", NULL,
         "localhost:5000/foo/bar:v1", "localhost:5000/foo/bar:v1"},
        {"127.0.0.1:5000/debian", "127.0.0.1:5000", "debian", NULL, NULL, "127.0.0.1:5000/debian",
         "127.0.0.1:5000/debian"},
        {"192.168.0.1", "docker.io", "library/192.168.0.1", NULL, NULL,
         "docker.io/library/192.168.0.1", "192.168.0.1"},
        {"192.168.0.1:80", "docker.io", "library/192.168.0.1", "80", NULL,
         "docker.io/library/192.168.0.1:80", "192.168.0.1:80"},
        {"[fc00::1]:5000/docker/docker", "[fc00::1]:5000", "docker/docker", NULL, NULL,
         "[fc00::1]:5000/docker/docker", "[fc00::1]:5000/docker/docker"},
        {"Docker/docker", "Docker", "docker", NULL, NULL, "Docker/docker", "Docker/docker"},
        {"FOO/bar", "FOO", "bar", NULL, NULL, "FOO/bar", "FOO/bar"},
        {"docker---rules/docker", "docker.io", "docker---rules/docker", NULL, NULL,
         "docker.io/docker---rules/docker", "docker---rules/docker"},
        {"dock__er/docker", "docker.io", "dock__er/docker", NULL, NULL, "docker.io/dock__er/docker",
         "dock__er/docker"},
        {"d/docker", "docker.io", "d/docker", NULL, NULL, "docker.io/d/docker", "d/docker"},
        {"docker.io/" H64, "docker.io", "library/" H64, NULL, NULL, "docker.io/library/" H64, H64},
        {"busybox@" D64, "docker.io", "library/busybox", NULL, D64,
         "docker.io/library/busybox@" D64, "busybox@" D64},
        {"busybox:latest@" D64, "docker.io", "library/busybox", "latest", D64,
         "docker.io/library/busybox:latest@" D64, "busybox:latest@" D64},
};

static const char *const norm_bad[] = {
        "",
        "https://github.com/docker/docker",
        "docker/Docker",
        "-docker",
        "-docker/docker",
        "-docker.io/docker/docker",
        "docker///docker",
        "docker.io/docker/Docker",
        "docker.io/docker///docker",
        "[fc00::1]",
        "[fc00::1]:5000",
        "fc00::1:5000/debian",
        "[fe80::1%eth0]:5000/debian",
        "[2001:db8:3:4::192.0.2.33]:5000/debian",
        H64,
        "docker-/docker",
        "-docker-/docker",
        "____/____",
        "_docker/_docker",
        "dock..er/docker",
        "dock_.er/docker",
        "dock-.er/docker",
        "docker/",
        "busybox:",
        "busybox:-tag",
        "busybox:.tag",
        "busybox@sha256:abc",
        "busybox@sha256:" H64 "00",
        "busybox@sha256:DBCC1C35AC38DF41FD2F5E4130B32FFDB93EBAE8B3DBE638C23575912276FC9C",
        "busybox@md5:0123456789abcdef0123456789abcdef",
        "a:b:c",
        "a b",
        "foo_bar.com:8080/x:tag",
};

static void
test_ref__normalized_table(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	for (size_t i = 0; i < KILN_ARRAY_SIZE(norm_ok); i++) {
		const struct norm_case *c = &norm_ok[i];
		struct reg_ref r = REG_REF_INIT;
		if (reg_ref_parse_normalized(c->in, &r, &err) < 0) {
			char *s = kiln_err_format(&err);
			fail_msg("%s: %s", c->in, s);
		}
		assert_string_equal(r.domain, c->domain);
		assert_string_equal(r.path, c->path);
		if (c->tag)
			assert_string_equal(r.tag, c->tag);
		else
			assert_null(r.tag);
		if (c->digest)
			assert_string_equal(r.digest, c->digest);
		else
			assert_null(r.digest);
		char *s = reg_ref_string(&r), *fam = reg_ref_familiar(&r);
		assert_string_equal(s, c->canonical);
		assert_string_equal(fam, c->familiar);
		/* Both forms parse back to the same reference, except a familiar name that is
		 * 64 hex digits, which reads as an image ID (as in docker). */
		const char *forms[] = {s, fam};
		for (size_t k = 0; k < 2; k++) {
			if (k == 1 && kiln_str_eq(fam, H64))
				continue;
			struct reg_ref back = REG_REF_INIT;
			assert_int_equal(reg_ref_parse_normalized(forms[k], &back, &err), 0);
			char *s2 = reg_ref_string(&back);
			assert_string_equal(s2, c->canonical);
			free(s2);
			reg_ref_release(&back);
		}
		free(s);
		free(fam);
		reg_ref_release(&r);
	}
}

static void
test_ref__normalized_rejects(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	for (size_t i = 0; i < KILN_ARRAY_SIZE(norm_bad); i++) {
		struct reg_ref r = REG_REF_INIT;
		if (reg_ref_parse_normalized(norm_bad[i], &r, &err) >= 0) {
			char *s = reg_ref_string(&r);
			fail_msg("`%s` parsed as %s", norm_bad[i], s);
		}
		assert_null(r.path);
		kiln_err_release(&err);
	}
	/* The messages Docker gives. */
	struct reg_ref r = REG_REF_INIT;
	assert_int_equal(reg_ref_parse_normalized("docker/Docker", &r, &err), -EINVAL);
	assert_err_contains(&err, "repository name (docker/Docker) must be lowercase");
	assert_int_equal(reg_ref_parse_normalized(H64, &r, &err), -EINVAL);
	assert_err_contains(&err, "cannot specify 64-byte hexadecimal strings");
	assert_int_equal(reg_ref_parse_normalized("busybox:-x", &r, &err), -EINVAL);
	assert_err_contains(&err, "invalid reference format");
}

static void
test_ref__name_length_limit(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_ref r = REG_REF_INIT;
	/* docker.io/ + 245 = 255 characters: the longest name allowed. */
	char path[300];
	memset(path, 'a', 245);
	path[245] = '\0';
	char *in = kiln_xasprintf("docker.io/x/%s", path + 2);
	assert_int_equal(reg_ref_parse_normalized(in, &r, &err), 0);
	reg_ref_release(&r);
	free(in);
	in = kiln_xasprintf("docker.io/x/%s", path + 1);
	assert_int_equal(reg_ref_parse_normalized(in, &r, &err), -EINVAL);
	assert_err_contains(&err, "must not be more than 255 characters");
	free(in);
}

struct strict_case {
	const char *in;
	const char *domain, *path, *tag;
};

static void
test_ref__strict_parse_table(void **state)
{
	static const struct strict_case ok[] = {
	        {"test_com", NULL, "test_com", NULL},
	        {"test.com:tag", NULL, "test.com", "tag"},
	        {"test.com:5000", NULL, "test.com", "5000"},
	        {"test.com/repo:tag", "test.com", "repo", "tag"},
	        {"test:5000/repo", "test:5000", "repo", NULL},
	        {"test:5000/repo:tag", "test:5000", "repo", "tag"},
	        {"lowercase:Uppercase", NULL, "lowercase", "Uppercase"},
	        {"sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux", NULL},
	        {"foo/bar", "foo", "bar", NULL},
	        {"foo_bar.com:8080", NULL, "foo_bar.com", "8080"},
	        {"[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "repo", NULL},
	        {"[2001:db8::1]/repo", "[2001:db8::1]", "repo", NULL},
	};
	static const char *const bad[] = {
	        "",
	        ":justtag",
	        "@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	        "repo@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	        "validname@invaliddigest:"
	        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	        "Uppercase:tag",
	        "test:5000/Uppercase/lowercase:tag",
	        "aa/asdf$$^/aa",
	        "[fe80::1%eth0]:5000/repo",
	        "[2001:db8::1]:5000",
	        "foo_bar.com:8080/repo",
	};
	struct kiln_err err = KILN_ERR_INIT;
	for (size_t i = 0; i < KILN_ARRAY_SIZE(ok); i++) {
		struct reg_ref r = REG_REF_INIT;
		if (reg_ref_parse(ok[i].in, &r, &err) < 0)
			fail_msg("%s: %s", ok[i].in, kiln_err_format(&err));
		if (ok[i].domain)
			assert_string_equal(r.domain, ok[i].domain);
		else
			assert_null(r.domain);
		assert_string_equal(r.path, ok[i].path);
		if (ok[i].tag)
			assert_string_equal(r.tag, ok[i].tag);
		else
			assert_null(r.tag);
		reg_ref_release(&r);
	}
	for (size_t i = 0; i < KILN_ARRAY_SIZE(bad); i++) {
		struct reg_ref r = REG_REF_INIT;
		if (reg_ref_parse(bad[i], &r, &err) >= 0)
			fail_msg("`%s` should not parse", bad[i]);
		kiln_err_release(&err);
	}
	struct reg_ref r = REG_REF_INIT;
	assert_int_equal(reg_ref_parse("Uppercase:tag", &r, &err), -EINVAL);
	assert_err_contains(&err, "must be lowercase");
}

static void
test_ref__tag_and_digest_grammar(void **state)
{
	char tag[130];
	memset(tag, 'a', 129);
	tag[128] = '\0';
	assert_true(reg_ref_tag_valid(tag));
	tag[128] = 'a';
	tag[129] = '\0';
	assert_false(reg_ref_tag_valid(tag));
	assert_true(reg_ref_tag_valid("_x.Y-1"));
	assert_false(reg_ref_tag_valid("-x"));
	assert_false(reg_ref_tag_valid("a/b"));
	assert_true(reg_ref_digest_valid(D64));
	assert_false(reg_ref_digest_valid("sha256:" H64 "0"));
	assert_false(reg_ref_digest_valid("sha256"));
	assert_false(reg_ref_digest_valid("foo+bar:" H64));
	assert_true(reg_ref_digest_valid("sha512:" H64 H64));
}

static void
test_ref__default_tag_only_without_tag_or_digest(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_ref r = REG_REF_INIT;
	assert_int_equal(reg_ref_parse_normalized("busybox", &r, &err), 0);
	reg_ref_default_tag(&r);
	char *s = reg_ref_string(&r);
	assert_string_equal(s, "docker.io/library/busybox:latest");
	free(s);
	reg_ref_release(&r);
	assert_int_equal(reg_ref_parse_normalized("busybox@" D64, &r, &err), 0);
	reg_ref_default_tag(&r);
	assert_null(r.tag);
	s = reg_ref_name(&r);
	assert_string_equal(s, "docker.io/library/busybox");
	free(s);
	reg_ref_release(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ref__normalized_table),
	        cmocka_unit_test(test_ref__normalized_rejects),
	        cmocka_unit_test(test_ref__name_length_limit),
	        cmocka_unit_test(test_ref__strict_parse_table),
	        cmocka_unit_test(test_ref__tag_and_digest_grammar),
	        cmocka_unit_test(test_ref__default_tag_only_without_tag_or_digest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
