/* Unit tests for executor/mounts.c: mount option checks and cache id -> directory names. */
#include "testlib.h"

#include "executor/ex.h"

static void
check_fails(const struct ex_mount *m, const char *needle)
{
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(ex_mount_check(m, &err), -EINVAL);
	assert_err_contains(&err, needle);
}

static void
check_ok(const struct ex_mount *m)
{
	struct kiln_err err = KILN_ERR_INIT;
	int r = ex_mount_check(m, &err);
	if (r < 0)
		fail_msg("unexpected: %s", err.msg);
}

static void
test_mounts__valid_mounts_pass(void **state)
{
	check_ok(&(struct ex_mount){.type = EX_MOUNT_BIND, .target = "/src", .source = "/tmp"});
	check_ok(&(struct ex_mount){
	        .type = EX_MOUNT_BIND, .target = "/src", .source = "/tmp", .rw = true});
	check_ok(&(struct ex_mount){.type = EX_MOUNT_CACHE,
	                            .target = "/root/.cache",
	                            .id = "go",
	                            .sharing = EX_SHARING_LOCKED,
	                            .has_mode = true,
	                            .mode = 0700,
	                            .has_uid = true,
	                            .uid = 1000});
	check_ok(&(struct ex_mount){.type = EX_MOUNT_TMPFS, .target = "/t", .size = 1 << 20});
	check_ok(&(struct ex_mount){
	        .type = EX_MOUNT_SECRET, .id = "tok", .data = "x", .data_len = 1});
	check_ok(&(struct ex_mount){.type = EX_MOUNT_SECRET, .id = "tok", .env = "TOKEN"});
	check_ok(&(struct ex_mount){.type = EX_MOUNT_SSH, .source = "/run/agent.sock"});
}

static void
test_mounts__target_rules(void **state)
{
	check_fails(&(struct ex_mount){.type = EX_MOUNT_CACHE}, "target is required");
	check_fails(&(struct ex_mount){.type = EX_MOUNT_TMPFS, .target = "rel/dir"},
	            "target rel/dir is not absolute");
	check_fails(&(struct ex_mount){.type = EX_MOUNT_TMPFS, .target = "/a/../"},
	            "cannot mount over /");
	check_fails(&(struct ex_mount){.type = EX_MOUNT_SECRET}, "id or target is required");
	check_fails(&(struct ex_mount){.type = EX_MOUNT_SECRET, .id = "a/b"}, "has a slash");
	check_fails(&(struct ex_mount){.type = EX_MOUNT_SECRET, .id = ".."}, "is not a file name");
	check_ok(&(struct ex_mount){.type = EX_MOUNT_SECRET, .id = "a/b", .target = "/s"});
}

static void
test_mounts__options_belong_to_their_type(void **state)
{
	check_fails(&(struct ex_mount){.type = EX_MOUNT_BIND, .target = "/x"},
	            "source is required");
	check_fails(&(struct ex_mount){.type = EX_MOUNT_SSH}, "source is required");
	check_fails(&(struct ex_mount){.type = EX_MOUNT_CACHE, .target = "/x", .source = "/y"},
	            "source is not supported");
	check_fails(&(struct ex_mount){.type = EX_MOUNT_CACHE, .target = "/x", .rw = true},
	            "rw is only for type=bind");
	check_fails(
	        &(struct ex_mount){
	                .type = EX_MOUNT_BIND, .target = "/x", .source = "/y", .readonly = true},
	        "readonly is only for type=cache");
	check_fails(&(struct ex_mount){.type = EX_MOUNT_TMPFS,
	                               .target = "/x",
	                               .sharing = EX_SHARING_PRIVATE},
	            "sharing is only for type=cache");
	check_fails(&(struct ex_mount){.type = EX_MOUNT_CACHE, .target = "/x", .size = 5},
	            "size is only for type=tmpfs");
	check_fails(&(struct ex_mount){.type = EX_MOUNT_TMPFS, .target = "/x", .has_uid = true},
	            "mode, uid and gid are not supported");
	check_fails(
	        &(struct ex_mount){
	                .type = EX_MOUNT_CACHE, .target = "/x", .has_mode = true, .mode = 010000},
	        "is not a file mode");
	check_fails(&(struct ex_mount){.type = EX_MOUNT_CACHE, .target = "/x", .env = "A"},
	            "env is only for type=secret");
	check_fails(&(struct ex_mount){.type = EX_MOUNT_SECRET, .id = "s", .env = "1BAD"},
	            "not a variable name");
	check_fails(&(struct ex_mount){.type = EX_MOUNT_SECRET,
	                               .id = "s",
	                               .env = "V",
	                               .data = "a\0b",
	                               .data_len = 3},
	            "NUL byte");
	check_fails(&(struct ex_mount){.type = EX_MOUNT_TMPFS, .target = "/x", .data = "s"},
	            "only secrets carry content");
	check_fails(&(struct ex_mount){.type = EX_MOUNT_CACHE, .target = "/x", .id = ""},
	            "id must be 1 to 1024 bytes");
}

static void
test_mounts__cache_name_is_one_safe_component(void **state)
{
	static const char *const ids[] = {
	        "../../etc",
	        "..",
	        ".",
	        "/",
	        "",
	        "a/b/../../..",
	        "\n",
	        "..\\..",
	        "/root/.cache",
	        "x/../../../../../../../../../../../../../../../../../../../../../etc/passwd",
	};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(ids); i++) {
		char *n = ex_cache_dir_name(ids[i]);
		assert_null(strchr(n, '/'));
		assert_true(n[0] != '.');
		assert_true(strlen(n) >= 16 && strlen(n) <= 48 + 1 + 16);
		for (const char *p = n; *p; p++)
			assert_non_null(
			        strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			               "0123456789._-",
			               *p));
		free(n);
	}
}

static void
test_mounts__cache_name_readable_and_unique(void **state)
{
	char *a = ex_cache_dir_name("/root/.cache");
	char *b = ex_cache_dir_name("root/.cache");
	char *c = ex_cache_dir_name("/root/.cache");
	char *d = ex_cache_dir_name("../../etc");
	assert_true(kiln_str_has_prefix(a, "root_.cache-"));
	assert_string_equal(a, c);     /* stable */
	assert_string_not_equal(a, b); /* same readable part, different digest */
	assert_true(kiln_str_has_prefix(d, "_._.._etc-"));
	/* the suffix is the first 16 hex digits of sha256(id) */
	struct kiln_digest dg;
	kiln_sha256_buf("../../etc", 9, &dg);
	char hex[KILN_DIGEST_HEX_LEN + 1];
	kiln_digest_format(&dg, hex);
	char *want = kiln_xasprintf("_._.._etc-%.16s", hex + 7);
	assert_string_equal(d, want);
	free(want);
	free(a);
	free(b);
	free(c);
	free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_mounts__valid_mounts_pass),
	        cmocka_unit_test(test_mounts__target_rules),
	        cmocka_unit_test(test_mounts__options_belong_to_their_type),
	        cmocka_unit_test(test_mounts__cache_name_is_one_safe_component),
	        cmocka_unit_test(test_mounts__cache_name_readable_and_unique),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
