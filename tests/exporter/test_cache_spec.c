/* Unit tests for exporter/cache_spec.c: --cache-to / --cache-from as buildx spells them. */
#include "testlib.h"

#include "exporter/exp.h"

static void
test_cache_spec__local_to_defaults_to_min(void **state)
{
	(void)state;
	struct kiln_err err = KILN_ERR_INIT;
	struct exp_cache_spec s;
	assert_int_equal(exp_cache_spec_parse("type=local,dest=/tmp/c", true, &s, &err), 0);
	assert_int_equal(s.type, EXP_CACHE_LOCAL);
	assert_string_equal(s.dir, "/tmp/c");
	assert_false(s.max);
	assert_false(s.cache_mounts);
	assert_true(s.cache_mounts_max == UINT64_C(1) << 30);
	exp_cache_spec_release(&s);
}

static void
test_cache_spec__registry_max_with_cache_mounts(void **state)
{
	(void)state;
	struct kiln_err err = KILN_ERR_INIT;
	struct exp_cache_spec s;
	assert_int_equal(exp_cache_spec_parse("type=registry,ref=r.io/a/b:c,mode=max,"
	                                      "cache-mounts=true,cache-mounts-max-size=64m,"
	                                      "compression=gzip,oci-mediatypes=true",
	                                      true, &s, &err),
	                 0);
	assert_int_equal(s.type, EXP_CACHE_REGISTRY);
	assert_string_equal(s.ref, "r.io/a/b:c");
	assert_true(s.max);
	assert_true(s.cache_mounts);
	assert_true(s.cache_mounts_max == UINT64_C(64) << 20);
	assert_string_equal(s.compression, "gzip");
	assert_int_equal(s.compression_level, -1);
	exp_cache_spec_release(&s);
	assert_int_equal(exp_cache_spec_parse("type=local,dest=/c,compression=zstd,"
	                                      "compression-level=19",
	                                      true, &s, &err),
	                 0);
	assert_string_equal(s.compression, "zstd");
	assert_int_equal(s.compression_level, 19);
	exp_cache_spec_release(&s);
}

static void
test_cache_spec__bare_ref_from_is_registry(void **state)
{
	(void)state;
	struct kiln_err err = KILN_ERR_INIT;
	struct exp_cache_spec s;
	assert_int_equal(exp_cache_spec_parse("r.io/app:cache", false, &s, &err), 0);
	assert_int_equal(s.type, EXP_CACHE_REGISTRY);
	assert_string_equal(s.ref, "r.io/app:cache");
	exp_cache_spec_release(&s);
	assert_int_equal(exp_cache_spec_parse("type=local,src=/c", false, &s, &err), 0);
	assert_int_equal(s.type, EXP_CACHE_LOCAL);
	assert_string_equal(s.dir, "/c");
	exp_cache_spec_release(&s);
}

static void
test_cache_spec__errors_name_the_problem(void **state)
{
	(void)state;
	static const struct {
		const char *spec;
		bool to;
		const char *msg;
	} cases[] = {
	        {"type=local", true, "dest= is required"},
	        {"type=local,src=/x", true, "unknown key src"},
	        {"type=local,dest=/x", false, "unknown key dest"},
	        {"type=registry", true, "ref= is required"},
	        {"type=inline", false, "type must be local, registry"},
	        {"type=inline,mode=max", true, "mode=min only"},
	        {"type=local,dest=/x,mode=all", true, "mode must be min or max"},
	        {"type=local,dest=/x,cache-mounts=true", true, "needs mode=max"},
	        {"type=local,dest=/x,mode=max,cache-mounts=yes", true, "true or false"},
	        {"type=local,dest=/x,mode=max,cache-mounts-max-size=1q", true, "bad cache-mounts"},
	        {"type=s3,dest=/x", true, "type must be"},
	        {"dest=/x", true, "type= is required"},
	        {"type=local,dest=/x,compression=lz4", true, "gzip, zstd or uncompressed"},
	        {"type=local,dest=/x,compression-level=99", true, "0 to 22"},
	        {"type=local,dest=/x,bogus", true, "not key=value"},
	};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(cases); i++) {
		struct kiln_err err = KILN_ERR_INIT;
		struct exp_cache_spec s = {0};
		assert_int_equal(exp_cache_spec_parse(cases[i].spec, cases[i].to, &s, &err),
		                 -EINVAL);
		assert_non_null(strstr(err.msg, cases[i].to ? "--cache-to " : "--cache-from "));
		assert_err_contains(&err, cases[i].msg);
		assert_null(s.dir);
		assert_null(s.ref);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_cache_spec__local_to_defaults_to_min),
	        cmocka_unit_test(test_cache_spec__registry_max_with_cache_mounts),
	        cmocka_unit_test(test_cache_spec__bare_ref_from_is_registry),
	        cmocka_unit_test(test_cache_spec__errors_name_the_problem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
