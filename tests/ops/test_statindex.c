/* Unit tests for ops/statindex.c: the binary stat index round trip, damaged and foreign
 * files ignored, change detection, and saves (only when needed, merged across builds). */
#include "testlib.h"

#include "ops/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

struct fx {
	char *tmp;
	char *ipath;
};

static int
setup(void **state)
{
	struct fx *fx = kiln_xcalloc(1, sizeof(*fx));
	fx->tmp = test_tmpdir_new();
	fx->ipath = kiln_xasprintf("%s/statindex", fx->tmp);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	test_tmpdir_remove(fx->tmp);
	free(fx->ipath);
	free(fx);
	return 0;
}

static struct stat
stat_of(struct fx *fx, const char *rel)
{
	_cleanup_free_ char *p = kiln_xasprintf("%s/%s", fx->tmp, rel);
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	return st;
}

/* The digest of tmp/rel through the index; reads the file on a miss. */
static struct kiln_digest
digest_via(struct fx *fx, struct ops_stat_index *idx, const char *rel)
{
	_cleanup_free_ char *p = kiln_xasprintf("%s/%s", fx->tmp, rel);
	_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	struct kiln_digest d;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(ops_stat_index_file_digest(idx, fd, &st, &d, &err), 0);
	return d;
}

static struct ops_stat_index *
open_index(struct fx *fx)
{
	struct ops_stat_index *idx;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(ops_stat_index_open(fx->ipath, &idx, &err), 0);
	return idx;
}

/* Save as if well after the files were written, so the entries are not racy. */
static void
save_later(struct ops_stat_index *idx)
{
	struct kiln_err err = KILN_ERR_INIT;
	ops_stat_index_set_save_time(idx, (int64_t)time(NULL) + 10);
	assert_int_equal(ops_stat_index_save(idx, &err), 0);
}

static struct ops_stat_index_stats
stats(struct ops_stat_index *idx)
{
	struct ops_stat_index_stats s;
	ops_stat_index_get_stats(idx, &s);
	return s;
}

/* n files f0..f(n-1), recorded in a saved index; their digests in d. */
static void
make_index(struct fx *fx, int n, struct kiln_digest *d)
{
	struct ops_stat_index *idx = open_index(fx);
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *rel = kiln_xasprintf("f%d", i);
		_cleanup_free_ char *content = kiln_xasprintf("content %d", i);
		test_write_file(fx->tmp, rel, content);
		d[i] = digest_via(fx, idx, rel);
	}
	assert_int_equal(stats(idx).reads, (uint64_t)n);
	save_later(idx);
	ops_stat_index_free(idx);
}

/* The lookup of every f<i>: all hit with the right digest, or (want_hits false) all miss. */
static void
assert_lookups(struct fx *fx, struct ops_stat_index *idx, int n, const struct kiln_digest *d,
               bool want_hits)
{
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *rel = kiln_xasprintf("f%d", i);
		struct stat st = stat_of(fx, rel);
		struct kiln_digest got;
		bool hit = ops_stat_index_lookup(idx, &st, &got);
		assert_int_equal(hit, want_hits);
		if (hit)
			assert_memory_equal(got.bytes, d[i].bytes, 32);
	}
}

static off_t
file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* The index file's bytes (fx->ipath), to put back (or damage) between cases. */
static char *
index_bytes(struct fx *fx, size_t *len)
{
	*len = (size_t)file_size(fx->ipath);
	char *b = kiln_xmalloc(*len);
	_cleanup_close_ int fd = open(fx->ipath, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, b, *len), (ssize_t)*len);
	return b;
}

static void
index_put(struct fx *fx, const char *b, size_t len)
{
	_cleanup_close_ int fd = open(fx->ipath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, len), (ssize_t)len);
}

static void
test_statindex__round_trip(void **state)
{
	struct fx *fx = *state;
	enum { N = 300 }; /* past the first table growth */
	struct kiln_digest d[N];
	make_index(fx, N, d);

	struct ops_stat_index *idx = open_index(fx);
	assert_int_equal(stats(idx).stored, N);
	assert_lookups(fx, idx, N, d, true);
	struct ops_stat_index_stats s = stats(idx);
	assert_int_equal(s.hits, N);
	assert_int_equal(s.reads, 0);
	/* in any order: the search starts where the last one ended */
	for (int k = 0; k < 4 * N; k++) {
		int i = (int)(((unsigned)k * 7919u + (unsigned)(k / N) * 131u) % N);
		if (k % 3 == 0)
			i = N - 1 - i;
		_cleanup_free_ char *rel = kiln_xasprintf("f%d", i);
		struct stat st = stat_of(fx, rel);
		struct kiln_digest got;
		assert_true(ops_stat_index_lookup(idx, &st, &got));
		assert_memory_equal(got.bytes, d[i].bytes, 32);
		/* a neighbour that is not in the index misses wherever the search starts */
		st.st_ino += 1ull << 40;
		assert_false(ops_stat_index_lookup(idx, &st, &got));
		st.st_ino -= 1ull << 41;
		assert_false(ops_stat_index_lookup(idx, &st, &got));
	}
	/* the same digests as reading the files */
	for (int i = 0; i < N; i++) {
		_cleanup_free_ char *rel = kiln_xasprintf("f%d", i);
		struct kiln_digest direct = digest_via(fx, NULL, rel);
		assert_memory_equal(direct.bytes, d[i].bytes, 32);
	}
	ops_stat_index_free(idx);
}

static void
test_statindex__missing_file_is_empty(void **state)
{
	struct fx *fx = *state;
	struct ops_stat_index *idx = open_index(fx);
	assert_int_equal(stats(idx).stored, 0);
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(ops_stat_index_save(idx, &err), 0);
	ops_stat_index_free(idx);
	/* nothing read, nothing written */
	assert_int_equal(access(fx->ipath, F_OK), -1);
}

static void
test_statindex__text_index_of_version_1_ignored(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->tmp, "f0", "content 0");
	struct stat st = stat_of(fx, "f0");
	_cleanup_free_ char *text =
	        kiln_xasprintf("kiln-statindex 1 %lld\n%llu %llu %llu %lld %lld %lld %lld "
	                       "%064d\n",
	                       (long long)time(NULL) + 10, (unsigned long long)st.st_dev,
	                       (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
	                       (long long)st.st_mtim.tv_sec, (long long)st.st_mtim.tv_nsec,
	                       (long long)st.st_ctim.tv_sec, (long long)st.st_ctim.tv_nsec, 0);
	test_write_file(fx->tmp, "statindex", text);

	struct ops_stat_index *idx = open_index(fx);
	assert_int_equal(stats(idx).stored, 0);
	struct kiln_digest d;
	assert_false(ops_stat_index_lookup(idx, &st, &d));
	/* the next save replaces it with a usable one */
	struct kiln_digest want = digest_via(fx, idx, "f0");
	save_later(idx);
	ops_stat_index_free(idx);
	idx = open_index(fx);
	assert_true(ops_stat_index_lookup(idx, &st, &d));
	assert_memory_equal(d.bytes, want.bytes, 32);
	ops_stat_index_free(idx);
}

static void
test_statindex__truncated_file_ignored(void **state)
{
	struct fx *fx = *state;
	enum { N = 20 };
	struct kiln_digest d[N];
	make_index(fx, N, d);
	size_t full;
	_cleanup_free_ char *good = index_bytes(fx, &full);
	const size_t cuts[] = {0, 1, 8, 63, 64, 65, full / 2, full - 88, full - 1};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(cuts); i++) {
		index_put(fx, good, cuts[i]);
		struct ops_stat_index *idx = open_index(fx);
		assert_int_equal(stats(idx).stored, 0);
		assert_lookups(fx, idx, N, d, false);
		ops_stat_index_free(idx);
	}
	/* and one byte too many is as foreign */
	_cleanup_free_ char *longer = kiln_xmalloc(full + 1);
	memcpy(longer, good, full);
	longer[full] = 'x';
	index_put(fx, longer, full + 1);
	struct ops_stat_index *idx = open_index(fx);
	assert_lookups(fx, idx, N, d, false);
	ops_stat_index_free(idx);
	/* the intact bytes, put back, work */
	index_put(fx, good, full);
	idx = open_index(fx);
	assert_lookups(fx, idx, N, d, true);
	ops_stat_index_free(idx);
}

static void
test_statindex__corrupt_bytes_never_give_a_wrong_digest(void **state)
{
	struct fx *fx = *state;
	enum { N = 8 };
	struct kiln_digest d[N];
	make_index(fx, N, d);
	size_t len;
	_cleanup_free_ char *good = index_bytes(fx, &len);
	_cleanup_free_ char *bad = kiln_xmalloc(len);
	/* Every byte in turn: the header (all ignored), the slots (entries lost) or an
	 * entry (that one missed); any lookup that still hits must give the right digest. */
	for (size_t off = 0; off < len; off++) {
		memcpy(bad, good, len);
		bad[off] ^= 0x20;
		index_put(fx, bad, len);
		struct ops_stat_index *idx = open_index(fx);
		int hits = 0;
		for (int i = 0; i < N; i++) {
			_cleanup_free_ char *rel = kiln_xasprintf("f%d", i);
			struct stat st = stat_of(fx, rel);
			struct kiln_digest got;
			if (ops_stat_index_lookup(idx, &st, &got)) {
				assert_memory_equal(got.bytes, d[i].bytes, 32);
				hits++;
			}
		}
		if (off < 64)
			assert_int_equal(hits, 0);
		ops_stat_index_free(idx);
	}
	/* an entry's byte: that entry misses, the others still hit */
	memcpy(bad, good, len);
	bad[len - 88 + 40] ^= 0x20;
	index_put(fx, bad, len);
	struct ops_stat_index *idx = open_index(fx);
	assert_int_equal(stats(idx).stored, N - 1);
	ops_stat_index_free(idx);
}

static void
test_statindex__changed_file_misses(void **state)
{
	struct fx *fx = *state;
	enum { N = 3 };
	struct kiln_digest d[N];
	make_index(fx, N, d);

	/* Same size, same mtime to the nanosecond: only the ctime tells. Rewrite until the
	 * ctime moves (coarse clocks tick every few ms). */
	_cleanup_free_ char *p = kiln_xasprintf("%s/f1", fx->tmp);
	struct stat before = stat_of(fx, "f1"), after;
	do {
		struct timespec pause = {.tv_nsec = 2000000};
		nanosleep(&pause, NULL);
		test_write_file(fx->tmp, "f1", "CONTENT 1");
		struct timespec ts[2] = {before.st_atim, before.st_mtim};
		assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
		after = stat_of(fx, "f1");
	} while (after.st_ctim.tv_sec == before.st_ctim.tv_sec &&
	         after.st_ctim.tv_nsec == before.st_ctim.tv_nsec);
	assert_int_equal(after.st_size, before.st_size);
	assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);

	struct ops_stat_index *idx = open_index(fx);
	struct kiln_digest got;
	assert_false(ops_stat_index_lookup(idx, &after, &got));
	struct kiln_digest now = digest_via(fx, idx, "f1");
	assert_memory_not_equal(now.bytes, d[1].bytes, 32);
	assert_int_equal(stats(idx).reads, 1);
	/* a file replaced by another (a new inode) misses too */
	test_write_file(fx->tmp, "f2.new", "content 2");
	_cleanup_free_ char *f2 = kiln_xasprintf("%s/f2", fx->tmp);
	_cleanup_free_ char *f2new = kiln_xasprintf("%s/f2.new", fx->tmp);
	assert_int_equal(rename(f2new, f2), 0);
	struct stat st2 = stat_of(fx, "f2");
	assert_false(ops_stat_index_lookup(idx, &st2, &got));
	/* the untouched one still hits */
	struct stat st0 = stat_of(fx, "f0");
	assert_true(ops_stat_index_lookup(idx, &st0, &got));
	assert_memory_equal(got.bytes, d[0].bytes, 32);
	/* the changed file's new entry, once saved, replaces the old one */
	save_later(idx);
	ops_stat_index_free(idx);
	idx = open_index(fx);
	assert_true(ops_stat_index_lookup(idx, &after, &got));
	assert_memory_equal(got.bytes, now.bytes, 32);
	assert_false(ops_stat_index_lookup(idx, &before, &got));
	ops_stat_index_free(idx);
}

static void
test_statindex__racy_entries_not_trusted_from_disk(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->tmp, "f0", "content 0");
	struct ops_stat_index *idx = open_index(fx);
	struct kiln_digest d = digest_via(fx, idx, "f0");
	struct stat st = stat_of(fx, "f0");
	struct kiln_digest got;
	assert_true(ops_stat_index_lookup(idx, &st, &got)); /* trusted in memory */
	assert_memory_equal(got.bytes, d.bytes, 32);
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(ops_stat_index_save(idx, &err), 0); /* now: f0 is racy */
	ops_stat_index_free(idx);
	idx = open_index(fx);
	assert_false(ops_stat_index_lookup(idx, &st, &got));
	assert_int_equal(stats(idx).stored, 0);
	ops_stat_index_free(idx);
}

/* A file hashed in the tick it was written, and written again after, keeps its stat: a save
 * seconds later must not make its entry trusted (the stamp is when the index was opened). */
static void
test_statindex__racy_judged_by_open_not_save_time(void **state)
{
	struct fx *fx = *state;
	struct ops_stat_index *idx = open_index(fx);
	test_write_file(fx->tmp, "f0", "content 0");
	digest_via(fx, idx, "f0");
	struct stat st = stat_of(fx, "f0");
	sleep(2); /* the save comes later than the racy window around the hash */
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(ops_stat_index_save(idx, &err), 0);
	ops_stat_index_free(idx);
	idx = open_index(fx);
	struct kiln_digest got;
	assert_false(ops_stat_index_lookup(idx, &st, &got));
	ops_stat_index_free(idx);
}

static void
test_statindex__no_change_writes_nothing(void **state)
{
	struct fx *fx = *state;
	enum { N = 5 };
	struct kiln_digest d[N];
	make_index(fx, N, d);
	struct stat before = stat_of(fx, "statindex");
	struct ops_stat_index *idx = open_index(fx);
	for (int i = 0; i < N; i++) {
		_cleanup_free_ char *rel = kiln_xasprintf("f%d", i);
		struct kiln_digest got = digest_via(fx, idx, rel);
		assert_memory_equal(got.bytes, d[i].bytes, 32);
	}
	assert_int_equal(stats(idx).reads, 0);
	save_later(idx);
	ops_stat_index_free(idx);
	struct stat after = stat_of(fx, "statindex");
	assert_int_equal(after.st_ino, before.st_ino);
	assert_int_equal(after.st_ctim.tv_nsec, before.st_ctim.tv_nsec);
}

static void
test_statindex__concurrent_saves_merge(void **state)
{
	struct fx *fx = *state;
	test_write_file(fx->tmp, "a", "aaa");
	test_write_file(fx->tmp, "b", "bbb");
	/* two builds open the same (missing) index, each reads its own file, both save */
	struct ops_stat_index *one = open_index(fx), *two = open_index(fx);
	struct kiln_digest da = digest_via(fx, one, "a");
	struct kiln_digest db = digest_via(fx, two, "b");
	save_later(one);
	save_later(two);
	ops_stat_index_free(one);
	ops_stat_index_free(two);
	struct ops_stat_index *idx = open_index(fx);
	assert_int_equal(stats(idx).stored, 2);
	struct stat sa = stat_of(fx, "a"), sb = stat_of(fx, "b");
	struct kiln_digest got;
	assert_true(ops_stat_index_lookup(idx, &sa, &got));
	assert_memory_equal(got.bytes, da.bytes, 32);
	assert_true(ops_stat_index_lookup(idx, &sb, &got));
	assert_memory_equal(got.bytes, db.bytes, 32);
	ops_stat_index_free(idx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	        T(test_statindex__round_trip),
	        T(test_statindex__missing_file_is_empty),
	        T(test_statindex__text_index_of_version_1_ignored),
	        T(test_statindex__truncated_file_ignored),
	        T(test_statindex__corrupt_bytes_never_give_a_wrong_digest),
	        T(test_statindex__changed_file_misses),
	        T(test_statindex__racy_entries_not_trusted_from_disk),
	        T(test_statindex__racy_judged_by_open_not_save_time),
	        T(test_statindex__no_change_writes_nothing),
	        T(test_statindex__concurrent_saves_merge),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
