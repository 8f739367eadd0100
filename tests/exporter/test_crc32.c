/* Unit tests for exporter/crc32.c: the same crc32 as zlib's for every length around the
 * fold's block sizes, at every alignment, chained from any starting crc, and for a
 * chunk-sized buffer. */
#include "testlib.h"

#include "exporter/internal.h"

#include <zlib.h>

static void
fill(unsigned char *p, size_t n, uint64_t s)
{
	for (size_t i = 0; i < n; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (unsigned char)(s >> 33);
	}
}

static void
test_crc32__matches_zlib_for_every_length_and_alignment(void **state)
{
	(void)state;
	unsigned char buf[600];
	fill(buf, sizeof(buf), 1);
	for (size_t off = 0; off < 16; off++)
		for (size_t len = 0; off + len <= 560; len++)
			assert_int_equal(exp_crc32(0, buf + off, len),
			                 (uint32_t)crc32(0L, buf + off, (uInt)len));
}

static void
test_crc32__chains_like_zlib(void **state)
{
	(void)state;
	unsigned char buf[4096];
	fill(buf, sizeof(buf), 2);
	uint32_t mine = 0;
	uLong theirs = 0;
	for (size_t off = 0, step = 1; off < sizeof(buf); off += step, step = step * 3 % 257 + 1) {
		size_t n = off + step > sizeof(buf) ? sizeof(buf) - off : step;
		mine = exp_crc32(mine, buf + off, n);
		theirs = crc32(theirs, buf + off, (uInt)n);
		assert_int_equal(mine, (uint32_t)theirs);
	}
}

static void
test_crc32__big_buffer(void **state)
{
	(void)state;
	size_t n = (1u << 20) + 13;
	unsigned char *p = kiln_xmalloc(n);
	fill(p, n, 3);
	assert_int_equal(exp_crc32(0, p, n), (uint32_t)crc32(0L, p, (uInt)n));
	memset(p, 0, n);
	assert_int_equal(exp_crc32(0, p, n), (uint32_t)crc32(0L, p, (uInt)n));
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_crc32__matches_zlib_for_every_length_and_alignment),
	        cmocka_unit_test(test_crc32__chains_like_zlib),
	        cmocka_unit_test(test_crc32__big_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
