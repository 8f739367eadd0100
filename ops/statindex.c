/*
 * The stat index: file identity and stat -> content digest, kept between builds so that
 * hashing a large, unchanged context costs a stat per file (git's index does the same).
 *
 * On disk: a line "kiln-statindex 1 <saved at, seconds>", then one line per entry,
 * "dev ino size mtime.s mtime.ns ctime.s ctime.ns <64 hex>". Unknown versions or broken
 * lines start an empty index: it is only a cache.
 *
 * Racy entries (git's "racily clean" problem): a file written in the same timestamp tick
 * as the index, and again after it, keeps its stat. So entries whose mtime or ctime is
 * within a second of the save time are dropped when the index is loaded; in memory, during
 * one build, they are trusted.
 */
#include "file.h"

#include <fcntl.h>
#include <pthread.h>
#include <time.h>

struct si_entry {
	uint64_t dev, ino, size;
	int64_t ms, mns, cs, cns;
	struct kiln_digest d;
	bool used;
};

struct ops_stat_index {
	char *path;
	pthread_mutex_t lock;
	struct si_entry *tab; /* open addressing on (dev, ino) */
	size_t cap, n;
	bool dirty;
	uint64_t hits, reads;
};

static size_t
si_hash(uint64_t dev, uint64_t ino)
{
	uint64_t h = dev * 0x9E3779B97F4A7C15ull ^ ino * 0xC2B2AE3D27D4EB4Full;
	return (size_t)(h ^ (h >> 29));
}

static struct si_entry *
si_slot(struct ops_stat_index *idx, uint64_t dev, uint64_t ino)
{
	size_t i = si_hash(dev, ino) & (idx->cap - 1);
	while (idx->tab[i].used && !(idx->tab[i].dev == dev && idx->tab[i].ino == ino))
		i = (i + 1) & (idx->cap - 1);
	return &idx->tab[i];
}

static void
si_put(struct ops_stat_index *idx, const struct si_entry *e)
{
	if ((idx->n + 1) * 2 > idx->cap) {
		struct si_entry *old = idx->tab;
		size_t ocap = idx->cap;
		idx->cap = ocap ? ocap * 2 : 256;
		idx->tab = kiln_xcalloc(idx->cap, sizeof(*idx->tab));
		idx->n = 0;
		for (size_t i = 0; i < ocap; i++)
			if (old[i].used)
				si_put(idx, &old[i]);
		free(old);
	}
	struct si_entry *s = si_slot(idx, e->dev, e->ino);
	if (!s->used)
		idx->n++;
	*s = *e;
	s->used = true;
}

static void
si_from_stat(struct si_entry *e, const struct stat *st)
{
	*e = (struct si_entry){.dev = st->st_dev,
	                       .ino = st->st_ino,
	                       .size = (uint64_t)st->st_size,
	                       .ms = st->st_mtim.tv_sec,
	                       .mns = st->st_mtim.tv_nsec,
	                       .cs = st->st_ctim.tv_sec,
	                       .cns = st->st_ctim.tv_nsec};
}

int
ops_stat_index_open(const char *path, struct ops_stat_index **ret, struct kiln_err *err)
{
	struct ops_stat_index *idx = kiln_xcalloc(1, sizeof(*idx));
	idx->path = kiln_xstrdup(path);
	pthread_mutex_init(&idx->lock, NULL);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f) {
		if (errno != ENOENT) {
			int r = kiln_err_set(err, errno, "open `%s`", path);
			ops_stat_index_free(idx);
			return r;
		}
		*ret = idx;
		return 0;
	}
	char line[256];
	long long saved;
	if (!fgets(line, sizeof(line), f) || sscanf(line, "kiln-statindex 1 %lld", &saved) != 1) {
		*ret = idx;
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		struct si_entry e = {0};
		unsigned long long dev, ino, size;
		long long ms, mns, cs, cns;
		char hex[65];
		if (sscanf(line, "%llu %llu %llu %lld %lld %lld %lld %64s", &dev, &ino, &size, &ms,
		           &mns, &cs, &cns, hex) != 8 ||
		    strlen(hex) != 64)
			continue;
		_cleanup_free_ char *ds = kiln_xasprintf("sha256:%s", hex);
		struct kiln_err e2 = KILN_ERR_INIT;
		if (kiln_digest_parse(ds, &e.d, &e2) < 0) {
			kiln_err_release(&e2);
			continue;
		}
		if (ms >= saved - 1 || cs >= saved - 1)
			continue; /* racy: see the top comment */
		e.dev = dev;
		e.ino = ino;
		e.size = size;
		e.ms = ms;
		e.mns = mns;
		e.cs = cs;
		e.cns = cns;
		si_put(idx, &e);
	}
	*ret = idx;
	return 0;
}

/* Write the index (the caller holds the lock). */
static int
si_write(struct ops_stat_index *idx, struct kiln_err *err)
{
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	kiln_buf_addf(&b, "kiln-statindex 1 %lld\n", (long long)now.tv_sec);
	for (size_t i = 0; i < idx->cap; i++) {
		const struct si_entry *e = &idx->tab[i];
		if (!e->used)
			continue;
		char hex[KILN_DIGEST_HEX_LEN + 1];
		kiln_digest_format(&e->d, hex);
		kiln_buf_addf(&b, "%llu %llu %llu %lld %lld %lld %lld %s\n",
		              (unsigned long long)e->dev, (unsigned long long)e->ino,
		              (unsigned long long)e->size, (long long)e->ms, (long long)e->mns,
		              (long long)e->cs, (long long)e->cns, hex + 7);
	}
	return kiln_write_file_atomic_at(AT_FDCWD, idx->path, b.buf, b.len, 0644, err);
}

int
ops_stat_index_save(struct ops_stat_index *idx, struct kiln_err *err)
{
	pthread_mutex_lock(&idx->lock);
	int r = idx->dirty ? si_write(idx, err) : 0;
	if (r >= 0)
		idx->dirty = false;
	pthread_mutex_unlock(&idx->lock);
	return r;
}

void
ops_stat_index_free(struct ops_stat_index *idx)
{
	if (!idx)
		return;
	pthread_mutex_destroy(&idx->lock);
	free(idx->tab);
	free(idx->path);
	free(idx);
}

static int
hash_fd(int fd, struct kiln_digest *ret, struct kiln_err *err)
{
	struct kiln_sha256 *h = kiln_sha256_new();
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			kiln_sha256_free(h);
			return kiln_err_set(err, errno, "read");
		}
		if (n == 0)
			break;
		kiln_sha256_update(h, buf, (size_t)n);
	}
	kiln_sha256_final(h, ret);
	return 0;
}

int
ops_stat_index_file_digest(struct ops_stat_index *idx, int fd, const struct stat *st,
                           struct kiln_digest *ret, struct kiln_err *err)
{
	struct si_entry want;
	si_from_stat(&want, st);
	if (idx) {
		pthread_mutex_lock(&idx->lock);
		struct si_entry *e = idx->cap ? si_slot(idx, want.dev, want.ino) : NULL;
		bool hit = e && e->used && e->size == want.size && e->ms == want.ms &&
		           e->mns == want.mns && e->cs == want.cs && e->cns == want.cns;
		if (hit) {
			*ret = e->d;
			idx->hits++;
		}
		pthread_mutex_unlock(&idx->lock);
		if (hit)
			return 0;
	}
	/* An O_PATH fd (the digest walk holds those) is opened for reading only on a miss. */
	_cleanup_close_ int rfd = -1;
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_PATH)) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		rfd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (rfd < 0)
			return kiln_err_set(err, errno, "open");
		fd = rfd;
	}
	int r = hash_fd(fd, ret, err);
	if (r < 0 || !idx)
		return r;
	pthread_mutex_lock(&idx->lock);
	idx->reads++;
	want.d = *ret;
	si_put(idx, &want);
	idx->dirty = true;
	pthread_mutex_unlock(&idx->lock);
	return 0;
}

void
ops_stat_index_get_stats(struct ops_stat_index *idx, struct ops_stat_index_stats *ret)
{
	pthread_mutex_lock(&idx->lock);
	*ret = (struct ops_stat_index_stats){
	        .hits = idx->hits, .reads = idx->reads, .stored = idx->n};
	pthread_mutex_unlock(&idx->lock);
}
