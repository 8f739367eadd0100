/* Unit tests for exporter/compress.c and exporter/segcache.c: a cut (segmented) gzip stream
 * inflates to the bytes that went in, with the right crc32 and length; output taken from the
 * segment cache is byte for byte what a fresh compression makes; a corrupt or truncated cache
 * entry is never used. */
#include "testlib.h"

#include "exporter/internal.h"
#include "registry/reg.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <zlib.h>

struct fixture {
	char *dir;
	char *cache; /* the segment cache directory */
	struct reg_store *rs;
	bool no_lookup; /* write entries, never read them (a --no-cache export) */
};

static int
setup(void **state)
{
	struct fixture *f = kiln_xcalloc(1, sizeof(*f));
	f->dir = test_tmpdir_new();
	f->cache = kiln_xasprintf("%s/segments/gzip-6", f->dir);
	_cleanup_free_ char *root = kiln_xasprintf("%s/root", f->dir);
	struct kiln_err err = KILN_ERR_INIT;
	if (reg_store_open(root, &f->rs, &err) < 0)
		fail_msg("open store: %s", kiln_err_format(&err));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	reg_store_free(f->rs);
	test_tmpdir_remove(f->dir);
	free(f->cache);
	free(f);
	return 0;
}

/* Deterministic test data: text-like (deflated), random-looking (stored). */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
fill_text(struct kiln_buf *b, size_t n, uint64_t seed)
{
	static const char *words[] = {"layer ",  "tar ",   "kiln ",    "snapshot ", "gzip\n",
	                              "export ", "chunk ", "segment ", "12345 ",    "digest\n"};
	uint64_t s = seed | 1;
	size_t end = b->len + n;
	while (b->len < end) {
		const char *w = words[rnd(&s) % 10];
		size_t k = strlen(w);
		kiln_buf_add(b, w, b->len + k > end ? end - b->len : k);
	}
}

static void
fill_random(struct kiln_buf *b, size_t n, uint64_t seed)
{
	uint64_t s = seed | 1;
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = rnd(&s);
		kiln_buf_add(b, &v, n - i < 8 ? n - i : 8);
	}
}

/* A stream: parts written in turn, each a byte range of `data`; a cut (fresh) before each
 * part flagged `seg` and a plain cut after it, as the layer writer does for big files. */
struct part {
	size_t off, len;
	bool seg;
};

struct result {
	char digest[KILN_DIGEST_HEX_LEN + 1];
	char diff_id[KILN_DIGEST_HEX_LEN + 1];
	int64_t reused;
	size_t added;
};

static void
compress_parts(struct fixture *f, const struct kiln_buf *data, const struct part *parts, size_t n,
               const char *cache, struct result *ret)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_ingest *in = NULL;
	struct exp_compressor *c = NULL;
	assert_int_equal(reg_ingest_begin(f->rs, NULL, -1, &in, &err), 0);
	assert_int_equal(exp_compressor_new(EXP_COMPRESSION_GZIP, -1, in, &c, &err), 0);
	if (cache)
		assert_int_equal(exp_compressor_set_cache(c, cache, !f->no_lookup, &err), 0);
	for (size_t i = 0; i < n; i++) {
		if (parts[i].seg)
			assert_int_equal(exp_compressor_cut(c, true, &err), 0);
		/* odd write sizes: chunk edges never line up with them */
		for (size_t o = 0; o < parts[i].len;) {
			size_t k = parts[i].len - o < 77777 ? parts[i].len - o : 77777;
			assert_int_equal(
			        exp_compressor_write(c, data->buf + parts[i].off + o, k, &err), 0);
			o += k;
		}
		if (parts[i].seg)
			assert_int_equal(exp_compressor_cut(c, false, &err), 0);
	}
	assert_int_equal(exp_compressor_finish(c, ret->diff_id, &err), 0);
	ret->reused = exp_compressor_reused(c);
	ret->added = exp_compressor_cache_added(c);
	assert_int_equal(reg_ingest_commit(in, ret->digest, &err), 0);
	exp_compressor_free(c);
}

/* The blob inflated (as one gzip member: zlib checks the crc32 and length in the trailer). */
static void
assert_inflates_to(struct fixture *f, const char *digest, const struct kiln_buf *want)
{
	struct kiln_buf blob = KILN_BUF_INIT;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(reg_blob_read(f->rs, digest, SIZE_MAX, &blob, &err), 0);
	z_stream zs = {0};
	assert_int_equal(inflateInit2(&zs, 16 + 15), Z_OK);
	unsigned char *out = kiln_xmalloc(want->len + 1);
	zs.next_in = (unsigned char *)blob.buf;
	zs.avail_in = (uInt)blob.len;
	zs.next_out = out;
	zs.avail_out = (uInt)want->len + 1;
	int r = inflate(&zs, Z_FINISH);
	assert_int_equal(r, Z_STREAM_END); /* Z_DATA_ERROR on a bad crc or length */
	assert_int_equal(zs.total_out, want->len);
	assert_int_equal(zs.avail_in, 0); /* one member, nothing after it */
	assert_memory_equal(out, want->buf, want->len);
	inflateEnd(&zs);
	free(out);
	kiln_buf_release(&blob);
}

/* A tar-like stream: text, a 5 MiB text "file" cut out, 3 MiB random cut out, more text;
 * every chunk at least GZ_CACHE_MIN (64 KiB), so every deflated one is cached. */
static void
make_stream(struct kiln_buf *b, size_t head, struct part parts[4])
{
	fill_text(b, head, 1);
	parts[0] = (struct part){0, head, false};
	fill_text(b, (5u << 20) + 100000, 2);
	parts[1] = (struct part){head, (5u << 20) + 100000, true};
	fill_random(b, 3u << 20, 3);
	parts[2] = (struct part){parts[1].off + parts[1].len, 3u << 20, true};
	fill_text(b, 2u << 20, 4);
	parts[3] = (struct part){parts[2].off + parts[2].len, 2u << 20, false};
}

static size_t
count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void
test_compress__segmented_stream_inflates(void **state)
{
	struct fixture *f = *state;
	struct kiln_buf data = KILN_BUF_INIT;
	struct part parts[4];
	make_stream(&data, 700000, parts);
	struct result r;
	compress_parts(f, &data, parts, 4, f->cache, &r);
	assert_inflates_to(f, r.digest, &data);
	struct kiln_digest d;
	char want[KILN_DIGEST_HEX_LEN + 1];
	kiln_sha256_buf(data.buf, data.len, &d);
	kiln_digest_format(&d, want);
	assert_string_equal(r.diff_id, want);
	assert_int_equal(r.reused, 0);
	assert_true(r.added > 0);
	/* random-looking chunks are stored and never cached: only text chunks have entries */
	assert_int_equal(count_entries(f->cache), r.added);
	kiln_buf_release(&data);
}

static void
test_compress__reused_output_is_fresh_output(void **state)
{
	struct fixture *f = *state;
	struct kiln_buf data = KILN_BUF_INIT;
	struct part parts[4];
	make_stream(&data, 700000, parts);
	struct result fresh, first, again;
	compress_parts(f, &data, parts, 4, NULL, &fresh);
	compress_parts(f, &data, parts, 4, f->cache, &first);
	compress_parts(f, &data, parts, 4, f->cache, &again);
	assert_string_equal(first.digest, fresh.digest);
	assert_string_equal(again.digest, fresh.digest);
	assert_string_equal(again.diff_id, fresh.diff_id);
	assert_int_equal(first.reused, 0);
	/* every deflated chunk came from the cache: all but the random 3 MiB */
	assert_int_equal(again.reused, (int64_t)(data.len - (3u << 20)));
	assert_int_equal(again.added, 0);
	assert_inflates_to(f, again.digest, &data);
	kiln_buf_release(&data);
}

static void
test_compress__segment_does_not_depend_on_what_precedes_it(void **state)
{
	struct fixture *f = *state;
	struct kiln_buf a = KILN_BUF_INIT, b = KILN_BUF_INIT;
	struct part pa[4], pb[4];
	make_stream(&a, 700000, pa);
	make_stream(&b, 123457, pb); /* another head: the file lands elsewhere in the tar */
	struct result ra, rb, fresh;
	compress_parts(f, &a, pa, 4, f->cache, &ra);
	compress_parts(f, &b, pb, 4, f->cache, &rb);
	/* the 5 MiB text file's chunks were reused */
	assert_true(rb.reused >= (int64_t)pb[1].len);
	compress_parts(f, &b, pb, 4, NULL, &fresh);
	assert_string_equal(rb.digest, fresh.digest);
	assert_inflates_to(f, rb.digest, &b);
	kiln_buf_release(&a);
	kiln_buf_release(&b);
}

/* Damage every entry: flip a byte in some, cut others short, empty or garble the header of
 * the rest. None is used, each is replaced, and the output is still the fresh one. */
static void
test_compress__corrupt_entry_not_used(void **state)
{
	struct fixture *f = *state;
	struct kiln_buf data = KILN_BUF_INIT;
	struct part parts[4];
	make_stream(&data, 700000, parts);
	struct result fresh, first, bad, healed;
	compress_parts(f, &data, parts, 4, NULL, &fresh);
	compress_parts(f, &data, parts, 4, f->cache, &first);
	DIR *d = opendir(f->cache);
	assert_non_null(d);
	struct dirent *e;
	size_t n = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		_cleanup_free_ char *p = kiln_xasprintf("%s/%s", f->cache, e->d_name);
		int fd = open(p, O_RDWR);
		assert_true(fd >= 0);
		struct stat st;
		assert_int_equal(fstat(fd, &st), 0);
		unsigned char c;
		switch (n++ % 4) {
		case 0: /* a flipped bit in the compressed bytes */
			assert_int_equal(pread(fd, &c, 1, st.st_size - 7), 1);
			c ^= 1;
			assert_int_equal(pwrite(fd, &c, 1, st.st_size - 7), 1);
			break;
		case 1: /* torn: the end missing */
			assert_int_equal(ftruncate(fd, st.st_size - 100), 0);
			break;
		case 2: /* a wrong crc in the header */
			assert_int_equal(pread(fd, &c, 1, 9), 1);
			c ^= 0x80;
			assert_int_equal(pwrite(fd, &c, 1, 9), 1);
			break;
		default: /* empty */
			assert_int_equal(ftruncate(fd, 0), 0);
		}
		close(fd);
	}
	closedir(d);
	assert_true(n >= 4);
	compress_parts(f, &data, parts, 4, f->cache, &bad);
	assert_int_equal(bad.reused, 0);
	assert_int_equal(bad.added, first.added);
	assert_string_equal(bad.digest, fresh.digest);
	assert_inflates_to(f, bad.digest, &data);
	/* the bad entries were replaced by good ones */
	compress_parts(f, &data, parts, 4, f->cache, &healed);
	assert_int_equal(healed.reused, (int64_t)(data.len - (3u << 20)));
	assert_string_equal(healed.digest, fresh.digest);
	kiln_buf_release(&data);
}

static void
test_compress__no_lookup_writes_but_never_reads(void **state)
{
	struct fixture *f = *state;
	struct kiln_buf data = KILN_BUF_INIT;
	struct part parts[4];
	make_stream(&data, 700000, parts);
	struct result first, again;
	compress_parts(f, &data, parts, 4, f->cache, &first);
	f->no_lookup = true;
	compress_parts(f, &data, parts, 4, f->cache, &again);
	assert_int_equal(again.reused, 0);
	assert_int_equal(again.added, first.added);
	assert_string_equal(again.digest, first.digest);
	kiln_buf_release(&data);
}

static void
test_compress__entry_for_other_length_not_used(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(exp_mkdir_p(f->cache, &err), 0);
	unsigned char out[3] = {1, 2, 3}, *got = NULL;
	size_t got_len = 0;
	uint32_t crc = 0;
	assert_true(exp_segment_store(f->cache, "k", 100, 42, out, sizeof(out)));
	assert_false(exp_segment_load(f->cache, "k", 101, &got, &got_len, &crc));
	/* and a rejected entry is gone */
	assert_false(exp_segment_load(f->cache, "k", 100, &got, &got_len, &crc));
	assert_true(exp_segment_store(f->cache, "k", 100, 42, out, sizeof(out)));
	assert_true(exp_segment_load(f->cache, "k", 100, &got, &got_len, &crc));
	assert_int_equal(got_len, 3);
	assert_int_equal(crc, 42);
	assert_memory_equal(got, out, 3);
	free(got);
}

static void
test_compress__prune_keeps_the_bound(void **state)
{
	struct fixture *f = *state;
	struct kiln_buf data = KILN_BUF_INIT;
	struct part parts[4];
	make_stream(&data, 700000, parts);
	struct result r;
	_cleanup_free_ char *root = kiln_xasprintf("%s/kroot", f->dir);
	_cleanup_free_ char *dir = exp_segments_dir(root, EXP_COMPRESSION_GZIP, -1);
	compress_parts(f, &data, parts, 4, dir, &r);
	uint64_t bytes = 0, freed = 0;
	size_t n = 0;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(exp_segments_usage(root, &bytes, &n, &err), 0);
	assert_int_equal(n, r.added);
	assert_true(bytes > 0);
	assert_int_equal(exp_segments_prune(root, bytes, -1, &freed, &err), 0);
	assert_int_equal(freed, 0);
	assert_int_equal(exp_segments_prune(root, bytes / 2, -1, &freed, &err), 0);
	uint64_t left = 0;
	assert_int_equal(exp_segments_usage(root, &left, &n, &err), 0);
	assert_true(left <= bytes / 2);
	assert_int_equal(left + freed, bytes);
	assert_int_equal(exp_segments_prune(root, 0, -1, NULL, &err), 0);
	assert_int_equal(exp_segments_usage(root, &left, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(left, 0);
	kiln_buf_release(&data);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_compress__segmented_stream_inflates, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_compress__reused_output_is_fresh_output, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_compress__segment_does_not_depend_on_what_precedes_it, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(test_compress__corrupt_entry_not_used, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_compress__no_lookup_writes_but_never_reads,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_compress__entry_for_other_length_not_used,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_compress__prune_keeps_the_bound, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
