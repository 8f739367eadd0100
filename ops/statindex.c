/*
 * The stat index: file identity and stat -> content digest, kept between builds so that
 * hashing a large, unchanged context costs a stat per file (git's index does the same).
 *
 * On disk (native byte order, all in one file written by temp file + fsync + rename):
 *
 *	struct si_head                  magic, version, sizes, save time, check word
 *	struct si_disk entries[n]       sorted by (dev, ino): stat, content digest, check word
 *
 * The file is mapped and used as it is: loading costs no parsing, however large the
 * context (the text format of version 1 took ~10 ms per 20,000 files to parse). Sorted
 * rather than hashed because a walk looks files up directory by directory, and the files
 * of a directory mostly have neighbouring inode numbers: a search that gallops from the
 * last hit stays within a few cache lines (a hash table spread those lookups over 2 MB
 * and cost 5 ms of cache and TLB misses per 20,000 files).
 *
 * A file with the wrong magic, version, sizes or header check (an old text index, a
 * foreign or truncated file) is ignored: it is only a cache, and the next save replaces
 * it. Each entry carries its own check word, tested when it answers a lookup, so a damaged
 * entry is a miss, never a wrong digest. Saves replace the file by rename and never write
 * it in place, so a mapping always sees one whole file.
 *
 * Racy entries (git's "racily clean" problem): a file written in the same timestamp tick
 * as it was hashed, and again after it, keeps its stat. So entries whose mtime or ctime is
 * within a second of the stamp (when the saving build opened the index: before it hashed
 * anything) are not trusted from disk; in memory, during one build, they are.
 *
 * Entries found this build live in a small hash table in memory in front of the mapping;
 * a save merges them with the mapped file and with whatever another build saved meanwhile
 * (so concurrent builds on one store do not drop each other's entries), and happens only
 * when a file had to be read: a no-change rebuild writes nothing.
 */
#include "file.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#define SI_MAGIC   "KILNSIDX"
#define SI_VERSION 3

struct si_head {
	char magic[8];
	uint32_t version;
	uint32_t head_size, entry_size;
	uint32_t pad;
	uint64_t n;
	int64_t saved; /* seconds */
	uint64_t reserved[2];
	uint64_t check; /* si_check of the words before it */
};

struct si_disk {
	uint64_t dev, ino, size;
	int64_t ms, cs;
	uint32_t mns, cns;
	unsigned char digest[32];
	uint64_t check; /* si_check of the words before it; never 0 */
};

_Static_assert(sizeof(struct si_head) == 64, "si_head has no padding");
_Static_assert(sizeof(struct si_disk) == 88, "si_disk has no padding");

/* One mapped index file. */
struct si_map {
	void *base;
	size_t len;
	const struct si_head *head;
	const struct si_disk *ents;
};

struct si_entry {
	uint64_t dev, ino, size;
	int64_t ms, mns, cs, cns;
	struct kiln_digest d;
	bool used;
};

struct ops_stat_index {
	char *path;
	pthread_mutex_t lock;
	struct si_map disk;   /* the file as it was at open (empty when none or invalid) */
	struct si_entry *tab; /* entries found this build, open addressing on (dev, ino) */
	size_t cap, n;
	bool dirty;
	size_t finger; /* where the last lookup in the file ended: the next starts there */
	/* The clock when the index was opened, before any file of this build was hashed: a
	 * save is stamped with it, so "racy" is judged against the earliest moment an entry
	 * could have been read, not against a save that may come minutes later. */
	int64_t opened;
	int64_t save_time; /* tests: stamp saves with this instead of `opened` (0: opened) */
	uint64_t hits, reads;
};

static size_t
si_hash(uint64_t dev, uint64_t ino)
{
	uint64_t h = dev * 0x9E3779B97F4A7C15ull ^ ino * 0xC2B2AE3D27D4EB4Full;
	return (size_t)(h ^ (h >> 29));
}

/* A check word over `nwords` 64-bit words: catches damage and foreign bytes, not attacks
 * (whoever can write the store can write the cache records too). Never 0, so a zeroed
 * entry never passes. */
static uint64_t
si_check(const void *p, size_t nwords)
{
	uint64_t h = 0x6B696C6E73696478ull; /* "kilnsidx" */
	for (size_t i = 0; i < nwords; i++) {
		uint64_t w;
		memcpy(&w, (const char *)p + 8 * i, 8);
		h = (h ^ w) * 0x9E3779B97F4A7C15ull;
		h ^= h >> 31;
	}
	return h | 1;
}

#define SI_HEAD_WORDS (offsetof(struct si_head, check) / 8)
#define SI_DISK_WORDS (offsetof(struct si_disk, check) / 8)

static void
si_map_release(struct si_map *m)
{
	if (m->base)
		munmap(m->base, m->len);
	*m = (struct si_map){0};
}

/* Map the index file at `path`: 0 with m set, or m left empty when the file is missing or
 * not a valid index (ignored, not trusted); -errno only when it exists but cannot be read. */
static int
si_map_open(const char *path, struct si_map *m)
{
	*m = (struct si_map){0};
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < sizeof(struct si_head))
		return 0;
	size_t len = (size_t)st.st_size;
	void *base = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (base == MAP_FAILED)
		return -errno;
	const struct si_head *h = base;
	/* Every size is checked against the file's before anything past the header is
	 * read; the limits keep the products below from overflowing. */
	bool ok = memcmp(h->magic, SI_MAGIC, 8) == 0 && h->version == SI_VERSION &&
	          h->head_size == sizeof(*h) && h->entry_size == sizeof(struct si_disk) &&
	          h->check == si_check(h, SI_HEAD_WORDS) &&
	          h->n <= (len - sizeof(*h)) / sizeof(struct si_disk) &&
	          len == sizeof(*h) + h->n * sizeof(struct si_disk);
	if (!ok) {
		munmap(base, len);
		return 0;
	}
	m->base = base;
	m->len = len;
	m->head = h;
	m->ents = (const struct si_disk *)(h + 1);
	return 0;
}

static bool
si_disk_racy(const struct si_map *m, const struct si_disk *e)
{
	return e->ms >= m->head->saved - 1 || e->cs >= m->head->saved - 1;
}

static bool
si_less(const struct si_disk *e, uint64_t dev, uint64_t ino)
{
	return e->dev < dev || (e->dev == dev && e->ino < ino);
}

/* The first entry in [lo, hi) not less than (dev, ino), or hi. */
static size_t
si_lower_bound(const struct si_disk *e, size_t lo, size_t hi, uint64_t dev, uint64_t ino)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (si_less(&e[mid], dev, ino))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The entry of the mapped file for (dev, ino), checked, or NULL. Gallops from *finger (the
 * last lookup's place) and leaves it where this one ended. A file sorted wrongly (damage)
 * only makes lookups miss. */
static const struct si_disk *
si_map_find(const struct si_map *m, size_t *finger, uint64_t dev, uint64_t ino)
{
	if (!m->base || m->head->n == 0)
		return NULL;
	const struct si_disk *e = m->ents;
	size_t n = m->head->n, f = *finger < n ? *finger : n - 1, r;
	if (e[f].dev == dev && e[f].ino == ino) {
		r = f;
	} else if (si_less(&e[f], dev, ino)) {
		/* e[lo] < key; the answer is in (lo, hi], hi == n meaning none */
		size_t lo = f, hi, step = 1;
		for (;;) {
			hi = lo + step;
			if (hi >= n) {
				hi = n;
				break;
			}
			if (!si_less(&e[hi], dev, ino))
				break;
			lo = hi;
			step *= 2;
		}
		r = si_lower_bound(e, lo + 1, hi < n ? hi + 1 : n, dev, ino);
	} else {
		/* e[hi] > key; the answer is in [lo, hi] */
		size_t hi = f, lo, step = 1;
		for (;;) {
			lo = hi >= step ? hi - step : 0;
			if (lo == 0 || si_less(&e[lo], dev, ino))
				break;
			hi = lo;
			step *= 2;
		}
		r = si_lower_bound(e, lo, hi + 1, dev, ino);
	}
	if (r >= n) {
		*finger = n - 1;
		return NULL;
	}
	*finger = r;
	if (e[r].dev != dev || e[r].ino != ino)
		return NULL;
	return e[r].check == si_check(&e[r], SI_DISK_WORDS) ? &e[r] : NULL;
}

static struct si_entry *
si_slot(struct ops_stat_index *idx, uint64_t dev, uint64_t ino)
{
	size_t i = si_hash(dev, ino) & (idx->cap - 1);
	while (idx->tab[i].used && !(idx->tab[i].dev == dev && idx->tab[i].ino == ino))
		i = (i + 1) & (idx->cap - 1);
	return &idx->tab[i];
}

static struct si_entry *
si_find(struct ops_stat_index *idx, uint64_t dev, uint64_t ino)
{
	if (!idx->cap)
		return NULL;
	struct si_entry *e = si_slot(idx, dev, ino);
	return e->used ? e : NULL;
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

static void
si_from_disk(struct si_entry *e, const struct si_disk *d)
{
	*e = (struct si_entry){.dev = d->dev,
	                       .ino = d->ino,
	                       .size = d->size,
	                       .ms = d->ms,
	                       .mns = d->mns,
	                       .cs = d->cs,
	                       .cns = d->cns,
	                       .used = true};
	memcpy(e->d.bytes, d->digest, sizeof(e->d.bytes));
}

int
ops_stat_index_open(const char *path, struct ops_stat_index **ret, struct kiln_err *err)
{
	struct ops_stat_index *idx = kiln_xcalloc(1, sizeof(*idx));
	idx->path = kiln_xstrdup(path);
	idx->opened = time(NULL);
	pthread_mutex_init(&idx->lock, NULL);
	int r = si_map_open(path, &idx->disk);
	if (r < 0) {
		ops_stat_index_free(idx);
		return kiln_err_set(err, -r, "open `%s`", path);
	}
	*ret = idx;
	return 0;
}

/* Every valid, non-racy entry of `m` not already in `into`. */
static void
si_merge_map(struct ops_stat_index *into, const struct si_map *m)
{
	if (!m->base)
		return;
	for (uint64_t i = 0; i < m->head->n; i++) {
		const struct si_disk *e = &m->ents[i];
		if (e->check != si_check(e, SI_DISK_WORDS) || si_disk_racy(m, e) ||
		    si_find(into, e->dev, e->ino))
			continue;
		struct si_entry s;
		si_from_disk(&s, e);
		si_put(into, &s);
	}
}

static int
si_disk_cmp(const void *a, const void *b)
{
	const struct si_disk *x = a, *y = b;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Write the index (the caller holds the lock): this build's entries first, then those of
 * the file as it is now (another build may have saved since we mapped ours), then ours. */
static int
si_write(struct ops_stat_index *idx, struct kiln_err *err)
{
	struct ops_stat_index all = {0};
	for (size_t i = 0; i < idx->cap; i++)
		if (idx->tab[i].used)
			si_put(&all, &idx->tab[i]);
	struct si_map now_map;
	if (si_map_open(idx->path, &now_map) == 0) {
		si_merge_map(&all, &now_map);
		si_map_release(&now_map);
	}
	si_merge_map(&all, &idx->disk);

	size_t len = sizeof(struct si_head) + all.n * sizeof(struct si_disk);
	_cleanup_free_ char *buf = kiln_xcalloc(1, len);
	struct si_head *h = (struct si_head *)buf;
	struct si_disk *ents = (struct si_disk *)(h + 1);
	memcpy(h->magic, SI_MAGIC, 8);
	h->version = SI_VERSION;
	h->head_size = sizeof(*h);
	h->entry_size = sizeof(struct si_disk);
	h->n = all.n;
	h->saved = idx->save_time ? idx->save_time : idx->opened;
	h->check = si_check(h, SI_HEAD_WORDS);
	size_t n = 0;
	for (size_t i = 0; i < all.cap; i++) {
		const struct si_entry *e = &all.tab[i];
		if (!e->used)
			continue;
		struct si_disk *d = &ents[n++];
		*d = (struct si_disk){.dev = e->dev,
		                      .ino = e->ino,
		                      .size = e->size,
		                      .ms = e->ms,
		                      .cs = e->cs,
		                      .mns = (uint32_t)e->mns,
		                      .cns = (uint32_t)e->cns};
		memcpy(d->digest, e->d.bytes, sizeof(d->digest));
		d->check = si_check(d, SI_DISK_WORDS);
	}
	free(all.tab);
	qsort(ents, n, sizeof(*ents), si_disk_cmp);
	return kiln_write_file_atomic_at(AT_FDCWD, idx->path, buf, len, 0644, err);
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
ops_stat_index_set_save_time(struct ops_stat_index *idx, int64_t now)
{
	idx->save_time = now;
}

void
ops_stat_index_free(struct ops_stat_index *idx)
{
	if (!idx)
		return;
	pthread_mutex_destroy(&idx->lock);
	si_map_release(&idx->disk);
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
	bool hit = false;
	pthread_mutex_lock(&idx->lock);
	/* This build's entry first: it is newer than the file's, and trusted even when racy. */
	const struct si_entry *e = si_find(idx, want.dev, want.ino);
	if (e) {
		hit = e->size == want.size && e->ms == want.ms && e->mns == want.mns &&
		      e->cs == want.cs && e->cns == want.cns;
		if (hit)
			*ret = e->d;
	} else {
		const struct si_disk *d = si_map_find(&idx->disk, &idx->finger, want.dev, want.ino);
		hit = d && d->size == want.size && d->ms == want.ms && d->mns == want.mns &&
		      d->cs == want.cs && d->cns == want.cns && !si_disk_racy(&idx->disk, d);
		if (hit)
			memcpy(ret->bytes, d->digest, sizeof(ret->bytes));
	}
	if (hit)
		idx->hits++;
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
	/* The trusted entries of the file not shadowed by this build's, plus this build's:
	 * a scan, but only tests and diagnostics ask. */
	uint64_t stored = idx->n;
	const struct si_map *m = &idx->disk;
	for (uint64_t i = 0; m->base && i < m->head->n; i++) {
		const struct si_disk *e = &m->ents[i];
		if (e->check == si_check(e, SI_DISK_WORDS) && !si_disk_racy(m, e) &&
		    !si_find(idx, e->dev, e->ino))
			stored++;
	}
	*ret = (struct ops_stat_index_stats){
	        .hits = idx->hits, .reads = idx->reads, .stored = stored};
	pthread_mutex_unlock(&idx->lock);
}
