/* Unit tests for registry/dockercfg.c: reading and writing Docker's config.json. */
#include "testlib.h"

#include "registry/reg.h"

#include <sys/stat.h>

static void
test_dockercfg__reads_base64_auth(void **state)
{
	char *dir = test_tmpdir_new();
	test_write_file(dir, "config.json",
	                "{\"auths\":{\"reg.example:5000\":{\"auth\":\"YWxpY2U6czNjcmV0OnB3\"},"
	                "\"https://index.docker.io/v1/\":{\"auth\":\"Ym9iOmh1Yg==\"},"
	                "\"https://other.example/v1/\":{\"username\":\"u\",\"password\":\"p\"}},"
	                "\"credsStore\":\"desktop\"}");
	char *path = kiln_xasprintf("%s/config.json", dir);
	struct kiln_err err = KILN_ERR_INIT;
	char *u = NULL, *p = NULL;
	assert_int_equal(reg_dockercfg_get(path, "reg.example:5000", &u, &p, &err), 1);
	assert_string_equal(u, "alice");
	assert_string_equal(p, "s3cret:pw");
	free(u);
	free(p);
	assert_int_equal(reg_dockercfg_get(path, "docker.io", &u, &p, &err), 1);
	assert_string_equal(u, "bob");
	assert_string_equal(p, "hub");
	free(u);
	free(p);
	/* A key with scheme and path matches its host. */
	assert_int_equal(reg_dockercfg_get(path, "other.example", &u, &p, &err), 1);
	assert_string_equal(u, "u");
	assert_string_equal(p, "p");
	free(u);
	free(p);
	/* Another port is another registry. */
	assert_int_equal(reg_dockercfg_get(path, "reg.example", &u, &p, &err), 0);
	free(path);
	test_tmpdir_remove(dir);
}

static void
test_dockercfg__missing_file_is_no_credentials(void **state)
{
	char *dir = test_tmpdir_new();
	char *path = kiln_xasprintf("%s/none/config.json", dir);
	struct kiln_err err = KILN_ERR_INIT;
	char *u = NULL, *p = NULL;
	assert_int_equal(reg_dockercfg_get(path, "h", &u, &p, &err), 0);
	assert_null(u);
	free(path);
	test_tmpdir_remove(dir);
}

static void
test_dockercfg__malformed(void **state)
{
	char *dir = test_tmpdir_new();
	test_write_file(dir, "a.json", "{not json");
	test_write_file(dir, "b.json", "{\"auths\":{\"h\":{\"auth\":\"!!!!\"}}}");
	test_write_file(dir, "c.json", "{\"auths\":{\"h\":{\"auth\":\"bm9jb2xvbg==\"}}}");
	struct kiln_err err = KILN_ERR_INIT;
	char *u = NULL, *p = NULL;
	char *path = kiln_xasprintf("%s/a.json", dir);
	assert_int_equal(reg_dockercfg_get(path, "h", &u, &p, &err), -EINVAL);
	assert_err_contains(&err, "a.json");
	free(path);
	path = kiln_xasprintf("%s/b.json", dir);
	assert_int_equal(reg_dockercfg_get(path, "h", &u, &p, &err), -EINVAL);
	assert_err_contains(&err, "base64");
	free(path);
	path = kiln_xasprintf("%s/c.json", dir);
	assert_int_equal(reg_dockercfg_get(path, "h", &u, &p, &err), -EINVAL);
	assert_err_contains(&err, "user:password");
	free(path);
	test_tmpdir_remove(dir);
}

static void
test_dockercfg__set_get_remove_round_trip(void **state)
{
	char *dir = test_tmpdir_new();
	test_write_file(dir, "d/config.json",
	                "{\"auths\":{\"keep.example\":{\"auth\":\"YTpi\"}},\"psFormat\":\"x\"}");
	char *path = kiln_xasprintf("%s/d/config.json", dir);
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(reg_dockercfg_set(path, "127.0.0.1:5000", "al:ice", "pä ss", &err), 0);
	assert_int_equal(reg_dockercfg_set(path, "docker.io", "hubuser", "hubpw", &err), 0);
	struct stat stt;
	assert_int_equal(stat(path, &stt), 0);
	assert_int_equal(stt.st_mode & 0777, 0600);

	char *u = NULL, *p = NULL;
	assert_int_equal(reg_dockercfg_get(path, "127.0.0.1:5000", &u, &p, &err), 1);
	/* The first ':' splits, as Docker does, so a user name cannot hold one. */
	assert_string_equal(u, "al");
	assert_string_equal(p, "ice:pä ss");
	free(u);
	free(p);

	/* Other fields and entries survive; Docker Hub uses Docker's key. */
	struct kiln_buf b = KILN_BUF_INIT;
	assert_int_equal(kiln_buf_read_file(&b, path, &err), 0);
	json_error_t jerr;
	json_t *root = json_loads(b.buf, 0, &jerr);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "psFormat")), "x");
	json_t *auths = json_object_get(root, "auths");
	assert_non_null(json_object_get(auths, "keep.example"));
	assert_non_null(json_object_get(auths, "https://index.docker.io/v1/"));
	assert_string_equal(json_string_value(json_object_get(
	                            json_object_get(auths, "127.0.0.1:5000"), "auth")),
	                    "YWw6aWNlOnDDpCBzcw==");
	json_decref(root);
	kiln_buf_release(&b);

	assert_int_equal(reg_dockercfg_remove(path, "127.0.0.1:5000", &err), 0);
	assert_int_equal(reg_dockercfg_get(path, "127.0.0.1:5000", &u, &p, &err), 0);
	assert_int_equal(reg_dockercfg_get(path, "keep.example", &u, &p, &err), 1);
	free(u);
	free(p);
	assert_int_equal(reg_dockercfg_remove(path, "127.0.0.1:5000", &err), -ENOENT);
	assert_err_contains(&err, "not logged in to 127.0.0.1:5000");
	free(path);
	test_tmpdir_remove(dir);
}

static void
test_dockercfg__set_creates_directories(void **state)
{
	char *dir = test_tmpdir_new();
	char *path = kiln_xasprintf("%s/new/.docker/config.json", dir);
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(reg_dockercfg_set(path, "h:1", "u", "p", &err), 0);
	char *u = NULL, *p = NULL;
	assert_int_equal(reg_dockercfg_get(path, "h:1", &u, &p, &err), 1);
	assert_string_equal(u, "u");
	assert_string_equal(p, "p");
	free(u);
	free(p);
	free(path);
	test_tmpdir_remove(dir);
}

static void
test_dockercfg__paths_and_keys(void **state)
{
	char *saved = getenv("DOCKER_CONFIG") ? kiln_xstrdup(getenv("DOCKER_CONFIG")) : NULL;
	setenv("DOCKER_CONFIG", "/x/y", 1);
	char *p = reg_dockercfg_default_path();
	assert_string_equal(p, "/x/y/config.json");
	free(p);
	unsetenv("DOCKER_CONFIG");
	char *home = getenv("HOME") ? kiln_xstrdup(getenv("HOME")) : NULL;
	setenv("HOME", "/home/z", 1);
	p = reg_dockercfg_default_path();
	assert_string_equal(p, "/home/z/.docker/config.json");
	free(p);
	if (home)
		setenv("HOME", home, 1);
	if (saved)
		setenv("DOCKER_CONFIG", saved, 1);
	free(home);
	free(saved);
	char *k = reg_dockercfg_key("docker.io");
	assert_string_equal(k, "https://index.docker.io/v1/");
	free(k);
	k = reg_dockercfg_key("localhost:5000");
	assert_string_equal(k, "localhost:5000");
	free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_dockercfg__reads_base64_auth),
	        cmocka_unit_test(test_dockercfg__missing_file_is_no_credentials),
	        cmocka_unit_test(test_dockercfg__malformed),
	        cmocka_unit_test(test_dockercfg__set_get_remove_round_trip),
	        cmocka_unit_test(test_dockercfg__set_creates_directories),
	        cmocka_unit_test(test_dockercfg__paths_and_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
