/*
 * Copy manifests (file.h): what a copy wrote where and from which source stat, so a
 * rerun of the same copy over a changed context rewrites only what changed. A manifest
 * is read whole on the rerun (20k entries: about 1.6 MB), so the format is flat: a
 * header, fixed records each followed by its path, a SHA-256 of all that. A damaged file
 * is only a lost incremental run.
 */
#include "ops_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "KILNCPM1"

struct ops_copy_manifest {
	struct ops_copy_entry *v;
	size_t n, alloc;
	struct timespec racy_after; /* ctimes from this on are racy */
	char *data;                 /* a loaded file: the paths point into it */
	bool sorted;
};

/* The on-disk record; native byte order (the store is this machine's). */
struct rec {
	uint64_t dev, ino, size;
	int64_t mtime_sec, ctime_sec;
	uint32_t mtime_nsec, ctime_nsec;
	uint32_t mode, uid, gid, flags, pathlen, pad;
};
_Static_assert(sizeof(struct rec) == 72, "manifest record layout");

struct ops_copy_manifest *
ops_copy_manifest_new(void)
{
	struct ops_copy_manifest *m = kiln_xcalloc(1, sizeof(*m));
	/* A write in the same tick as our stat could keep the ctime we saw; ticks are far
	 * below a second, and a coarse clock may lag the wall clock a little. */
	clock_gettime(CLOCK_REALTIME, &m->racy_after);
	m->racy_after.tv_sec -= 1;
	return m;
}

void
ops_copy_manifest_free(struct ops_copy_manifest *m)
{
	if (!m)
		return;
	if (!m->data)
		for (size_t i = 0; i < m->n; i++)
			free((char *)m->v[i].path);
	free(m->v);
	free(m->data);
	free(m);
}

void
ops_copy_manifest_add(struct ops_copy_manifest *m, const char *path, const struct stat *st,
                      uint32_t flags)
{
	KILN_GROW(m->v, m->alloc, m->n + 1);
	if (st->st_ctim.tv_sec > m->racy_after.tv_sec ||
	    (st->st_ctim.tv_sec == m->racy_after.tv_sec &&
	     st->st_ctim.tv_nsec >= m->racy_after.tv_nsec))
		flags |= OPS_COPY_RACY;
	m->v[m->n++] = (struct ops_copy_entry){
	        .dev = st->st_dev,
	        .ino = st->st_ino,
	        .size = (uint64_t)st->st_size,
	        .mtime_sec = st->st_mtim.tv_sec,
	        .mtime_nsec = (uint32_t)st->st_mtim.tv_nsec,
	        .ctime_sec = st->st_ctim.tv_sec,
	        .ctime_nsec = (uint32_t)st->st_ctim.tv_nsec,
	        .mode = st->st_mode,
	        .uid = st->st_uid,
	        .gid = st->st_gid,
	        .flags = flags,
	        .path = kiln_xstrdup(path),
	};
	m->sorted = false;
}

size_t
ops_copy_manifest_count(const struct ops_copy_manifest *m)
{
	return m->n;
}

uint64_t
ops_copy_manifest_bytes(const struct ops_copy_manifest *m)
{
	uint64_t n = 0;
	for (size_t i = 0; i < m->n; i++)
		if (S_ISREG(m->v[i].mode))
			n += m->v[i].size;
	return n;
}

const struct ops_copy_entry *
ops_copy_manifest_at(const struct ops_copy_manifest *m, size_t i)
{
	return i < m->n ? &m->v[i] : NULL;
}

ssize_t
ops_copy_manifest_find(const struct ops_copy_manifest *m, const char *path)
{
	if (!m->sorted)
		return -1;
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->v[mid].path, path);
		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

bool
ops_copy_entry_same(const struct ops_copy_entry *e, const struct stat *st)
{
	return !(e->flags & OPS_COPY_RACY) && e->mode == st->st_mode && e->uid == st->st_uid &&
	       e->gid == st->st_gid && e->size == (uint64_t)st->st_size &&
	       e->mtime_sec == st->st_mtim.tv_sec &&
	       e->mtime_nsec == (uint32_t)st->st_mtim.tv_nsec &&
	       e->ctime_sec == st->st_ctim.tv_sec &&
	       e->ctime_nsec == (uint32_t)st->st_ctim.tv_nsec && e->dev == st->st_dev &&
	       e->ino == st->st_ino;
}

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ops_copy_entry *)a)->path,
	              ((const struct ops_copy_entry *)b)->path);
}

int
ops_copy_manifest_save(struct ops_copy_manifest *m, const char *path, struct kiln_err *err)
{
	if (m->n)
		qsort(m->v, m->n, sizeof(*m->v), entry_cmp);
	m->sorted = true;
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	kiln_buf_add(&b, MAGIC, 8);
	uint64_t n = m->n;
	kiln_buf_add(&b, &n, sizeof(n));
	for (size_t i = 0; i < m->n; i++) {
		const struct ops_copy_entry *e = &m->v[i];
		if (i && kiln_str_eq(e->path, m->v[i - 1].path))
			return kiln_err_set(err, EEXIST, "copy manifest: `%s` written twice",
			                    e->path);
		struct rec r = {.dev = e->dev,
		                .ino = e->ino,
		                .size = e->size,
		                .mtime_sec = e->mtime_sec,
		                .ctime_sec = e->ctime_sec,
		                .mtime_nsec = e->mtime_nsec,
		                .ctime_nsec = e->ctime_nsec,
		                .mode = e->mode,
		                .uid = e->uid,
		                .gid = e->gid,
		                .flags = e->flags,
		                .pathlen = (uint32_t)strlen(e->path)};
		kiln_buf_add(&b, &r, sizeof(r));
		kiln_buf_add(&b, e->path, r.pathlen + 1);
	}
	struct kiln_digest d;
	kiln_sha256_buf(b.buf, b.len, &d);
	kiln_buf_add(&b, d.bytes, sizeof(d.bytes));

	_cleanup_free_ char *tmp = kiln_xasprintf("%s.tmp-%d", path, (int)getpid());
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return kiln_err_set(err, errno, "create `%s`", tmp);
	/* No fsync: the checksum catches a file torn by a crash, which only costs an
	 * incremental run. */
	if (kiln_write_all(fd, b.buf, b.len, err) < 0) {
		unlink(tmp);
		return kiln_err_wrap(err, "write `%s`", tmp);
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return kiln_err_set(err, e, "rename `%s`", tmp);
	}
	return 0;
}

int
ops_copy_manifest_load(const char *path, struct ops_copy_manifest **ret, struct kiln_err *err)
{
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	int r = kiln_buf_read_file(&b, path, err);
	if (r < 0)
		return r;
	struct kiln_digest d;
	uint64_t n;
	if (b.len < 8 + sizeof(n) + sizeof(d.bytes) || memcmp(b.buf, MAGIC, 8) != 0)
		return kiln_err_set(err, EUCLEAN, "`%s`: not a copy manifest", path);
	size_t body = b.len - sizeof(d.bytes);
	kiln_sha256_buf(b.buf, body, &d);
	if (memcmp(d.bytes, b.buf + body, sizeof(d.bytes)) != 0)
		return kiln_err_set(err, EUCLEAN, "`%s`: damaged", path);
	memcpy(&n, b.buf + 8, sizeof(n));
	if (n > body / sizeof(struct rec))
		return kiln_err_set(err, EUCLEAN, "`%s`: damaged", path);
	struct ops_copy_manifest *m = kiln_xcalloc(1, sizeof(*m));
	m->v = kiln_xreallocarray(NULL, n ? n : 1, sizeof(*m->v));
	m->alloc = n;
	size_t off = 8 + sizeof(n);
	for (uint64_t i = 0; i < n; i++) {
		struct rec rc;
		if (body - off < sizeof(rc))
			goto damaged;
		memcpy(&rc, b.buf + off, sizeof(rc));
		off += sizeof(rc);
		if (body - off < (size_t)rc.pathlen + 1 || b.buf[off + rc.pathlen] != '\0')
			goto damaged;
		m->v[i] = (struct ops_copy_entry){.dev = rc.dev,
		                                  .ino = rc.ino,
		                                  .size = rc.size,
		                                  .mtime_sec = rc.mtime_sec,
		                                  .ctime_sec = rc.ctime_sec,
		                                  .mtime_nsec = rc.mtime_nsec,
		                                  .ctime_nsec = rc.ctime_nsec,
		                                  .mode = rc.mode,
		                                  .uid = rc.uid,
		                                  .gid = rc.gid,
		                                  .flags = rc.flags,
		                                  .path = b.buf + off};
		off += rc.pathlen + 1;
		/* Sorted when saved; a file that is not cannot be searched. */
		if (i && strcmp(m->v[i - 1].path, m->v[i].path) >= 0)
			goto damaged;
		m->n = i + 1;
	}
	if (off != body)
		goto damaged;
	m->data = kiln_buf_detach(&b, NULL);
	m->sorted = true;
	*ret = m;
	return 0;
damaged:
	m->n = 0; /* the paths point into b */
	ops_copy_manifest_free(m);
	return kiln_err_set(err, EUCLEAN, "`%s`: damaged", path);
}
