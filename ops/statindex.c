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
	FILE *file; /* not parsed yet (si_load) */
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

/* A decimal field and the one space after it (none after the last); false if malformed. */
static bool
si_parse_num(char **p, bool sign, uint64_t *ret)
{
	char *q = *p;
	bool neg = sign && *q == '-';
	q += neg;
	if (*q < '0' || *q > '9')
		return false;
	uint64_t v = 0;
	for (; *q >= '0' && *q <= '9'; q++)
		v = v * 10 + (uint64_t)(*q - '0');
	if (*q != ' ')
		return false;
	*ret = neg ? 0 - v : v; /* two's complement, read back as int64_t */
	*p = q + 1;
	return true;
}

static int
si_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* "dev ino size ms mns cs cns <64 hex>\n" by hand: the index of a 20,000-file context
 * loads on every build, and sscanf plus a digest parse per line cost tens of ms. */
static bool
si_parse_line(char *p, struct si_entry *e)
{
	uint64_t v[7];
	for (int i = 0; i < 7; i++)
		if (!si_parse_num(&p, i >= 3, &v[i]))
			return false;
	for (size_t i = 0; i < sizeof(e->d.bytes); i++) {
		int hi = si_hexval(p[2 * i]), lo = hi < 0 ? -1 : si_hexval(p[2 * i + 1]);
		if (lo < 0)
			return false;
		e->d.bytes[i] = (unsigned char)(hi << 4 | lo);
	}
	p += 2 * sizeof(e->d.bytes);
	if (*p != '\n' && *p != '\0')
		return false;
	e->dev = v[0];
	e->ino = v[1];
	e->size = v[2];
	e->ms = (int64_t)v[3];
	e->mns = (int64_t)v[4];
	e->cs = (int64_t)v[5];
	e->cns = (int64_t)v[6];
	return true;
}

/* Parse the index file opened by ops_stat_index_open, on first use (the caller holds the
 * lock): a build whose steps read no context pays nothing for a big index. */
static void
si_load(struct ops_stat_index *idx)
{
	_cleanup_fclose_ FILE *f = TAKE_PTR(idx->file);
	if (!f)
		return;
	char line[256];
	long long saved;
	if (!fgets(line, sizeof(line), f) || sscanf(line, "kiln-statindex 1 %lld", &saved) != 1)
		return;
	/* One table of the right size up front: growing it through 8 doublings (and page
	 * faults on each new table) cost more than parsing. Lines are ~125 bytes. */
	struct stat fst;
	if (!idx->cap && fstat(fileno(f), &fst) == 0 && fst.st_size > 0) {
		size_t want = (size_t)fst.st_size / 100 * 2, cap = 256;
		while (cap < want)
			cap *= 2;
		idx->tab = kiln_xcalloc(cap, sizeof(*idx->tab));
		idx->cap = cap;
	}
	while (fgets(line, sizeof(line), f)) {
		struct si_entry e = {0};
		if (!si_parse_line(line, &e))
			continue;
		if (e.ms >= saved - 1 || e.cs >= saved - 1)
			continue; /* racy: see the top comment */
		si_put(idx, &e);
	}
}

int
ops_stat_index_open(const char *path, struct ops_stat_index **ret, struct kiln_err *err)
{
	struct ops_stat_index *idx = kiln_xcalloc(1, sizeof(*idx));
	idx->path = kiln_xstrdup(path);
	pthread_mutex_init(&idx->lock, NULL);
	idx->file = fopen(path, "re");
	if (!idx->file && errno != ENOENT) {
		int r = kiln_err_set(err, errno, "open `%s`", path);
		ops_stat_index_free(idx);
		return r;
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
	if (idx->file)
		fclose(idx->file);
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

bool
ops_stat_index_lookup(struct ops_stat_index *idx, const struct stat *st, struct kiln_digest *ret)
{
	if (!idx)
		return false;
	struct si_entry want;
	si_from_stat(&want, st);
	pthread_mutex_lock(&idx->lock);
	si_load(idx);
	struct si_entry *e = idx->cap ? si_slot(idx, want.dev, want.ino) : NULL;
	bool hit = e && e->used && e->size == want.size && e->ms == want.ms && e->mns == want.mns &&
	           e->cs == want.cs && e->cns == want.cns;
	if (hit) {
		*ret = e->d;
		idx->hits++;
	}
	pthread_mutex_unlock(&idx->lock);
	return hit;
}

int
ops_stat_index_file_digest(struct ops_stat_index *idx, int fd, const struct stat *st,
                           struct kiln_digest *ret, struct kiln_err *err)
{
	if (ops_stat_index_lookup(idx, st, ret))
		return 0;
	struct si_entry want;
	si_from_stat(&want, st);
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
	si_load(idx);
	*ret = (struct ops_stat_index_stats){
	        .hits = idx->hits, .reads = idx->reads, .stored = idx->n};
	pthread_mutex_unlock(&idx->lock);
}
