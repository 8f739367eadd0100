/*
 * Snapshot diffs -> OCI layer blobs.
 *
 * One pass, as `kiln import` does it: snap_diff_walk feeds a pax tar writer whose output
 * is hashed (the diff_id) and handed to a second libarchive writer (raw format, gzip
 * filter without a header timestamp) whose output streams into a store ingest (the blob
 * digest). Everything that could make two exports of the same files differ is fixed:
 * entry order is the walk's, owners are numeric, mtimes are whole seconds (as containerd
 * writes them; sub-second times would put a pax record in every header), there are no
 * atime/ctime records, xattrs are sorted, whiteouts carry no time or owner.
 */
#include "internal.h"

#include "registry/reg.h"
#include "snapshot/snap.h"

#include <fcntl.h>
#include <pthread.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>

const unsigned char exp_empty_layer[32] = {
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x62,
        0x18, 0x05, 0xa3, 0x60, 0x14, 0x8c, 0x58, 0x00, 0x08, 0x00, 0x00,
        0xff, 0xff, 0x2e, 0xaf, 0xb5, 0xef, 0x00, 0x04, 0x00, 0x00,
};

void
exp_rfc3339(int64_t t, char buf[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct writer {
	struct reg_ingest *in;
	struct exp_compressor *comp;
	struct archive *tar;
	struct kiln_err *err;
	int failed; /* -errno from the compressor or ingest: libarchive only sees -1 */
	/* File data read straight into the compressor's buffer, on its way through the tar
	 * writer: tar_out commits it there instead of copying it (see write_data). */
	const void *direct;
	int64_t clamp;
	size_t entries;
	struct kiln_inode_map links; /* the first path written for each hard-linked inode */
};

/* The first path written for this inode, or NULL after recording `path` as that. */
static const char *
link_seen(struct writer *w, dev_t dev, ino_t ino, const char *path)
{
	const char *first = kiln_inode_map_get(&w->links, dev, ino);
	if (!first)
		kiln_inode_map_set(&w->links, dev, ino, path);
	return first;
}

static int
archive_fail(struct writer *w, struct archive *a, const char *what)
{
	if (w->failed)
		return kiln_err_wrap(w->err, "%s", what);
	int e = archive_errno(a);
	return kiln_err_set(w->err, e > 0 ? e : EIO, "%s: %s", what,
	                    archive_error_string(a) ? archive_error_string(a) : "libarchive error");
}

static la_ssize_t
tar_out(struct archive *a, void *data, const void *buf, size_t len)
{
	struct writer *w = data;
	struct kiln_err scratch = KILN_ERR_INIT;
	struct kiln_err *e = w->err ? w->err : &scratch;
	int r = w->failed          ? w->failed
	        : buf == w->direct ? exp_compressor_commit(w->comp, len, e)
	                           : exp_compressor_write(w->comp, buf, len, e);
	kiln_err_release(&scratch);
	if (r < 0) {
		w->failed = r;
		archive_set_error(a, -r, "write layer");
		return -1;
	}
	return (la_ssize_t)len;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Only xattrs that mean something in an image: file capabilities and user.*; overlay's
 * own (trusted.overlay.*, user.overlay.*), SELinux labels of the build host and the rest
 * stay out, as with containerd's differ. */
static bool
xattr_kept(const char *name)
{
	if (kiln_str_eq(name, "security.capability"))
		return true;
	return kiln_str_has_prefix(name, "user.") && !kiln_str_has_prefix(name, "user.overlay.");
}

/* An open file's xattrs are read through its fd (`fd` >= 0): no path walk through
 * /proc for each of a tree's many small files. */
static ssize_t
list_xattrs(int fd, const char *p, char *list, size_t size)
{
	return fd >= 0 ? flistxattr(fd, list, size) : llistxattr(p, list, size);
}

static ssize_t
get_xattr(int fd, const char *p, const char *name, void *v, size_t size)
{
	return fd >= 0 ? fgetxattr(fd, name, v, size) : lgetxattr(p, name, v, size);
}

static int
add_xattrs(struct archive_entry *e, int dirfd, const char *name, int fd, const char *path,
           struct kiln_err *err)
{
	char p[64 + NAME_MAX];
	if (snprintf(p, sizeof(p), "/proc/self/fd/%d/%s", dirfd, name) >= (int)sizeof(p))
		return kiln_err_set(err, ENAMETOOLONG, "xattrs of `%s`", path);
	ssize_t n = list_xattrs(fd, p, NULL, 0);
	if (n < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP))
		return 0;
	if (n < 0)
		return kiln_err_set(err, errno, "list xattrs of `%s`", path);
	if (n == 0)
		return 0;
	_cleanup_free_ char *list = kiln_xmalloc((size_t)n);
	n = list_xattrs(fd, p, list, (size_t)n);
	if (n < 0)
		return kiln_err_set(err, errno, "list xattrs of `%s`", path);
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	for (char *k = list; k < list + n; k += strlen(k) + 1)
		if (xattr_kept(k))
			kiln_strv_push(&names, k);
	if (names.n > 1)
		qsort(names.v, names.n, sizeof(char *), name_cmp);
	for (size_t i = 0; i < names.n; i++) {
		ssize_t vn = get_xattr(fd, p, names.v[i], NULL, 0);
		if (vn < 0)
			return kiln_err_set(err, errno, "read xattr %s of `%s`", names.v[i], path);
		_cleanup_free_ char *v = kiln_xmalloc((size_t)vn + 1);
		vn = get_xattr(fd, p, names.v[i], v, (size_t)vn);
		if (vn < 0)
			return kiln_err_set(err, errno, "read xattr %s of `%s`", names.v[i], path);
		archive_entry_xattr_add_entry(e, names.v[i], v, (size_t)vn);
	}
	return 0;
}

/* A file's bytes, read straight into the compressor's buffer in reads of up to its 1 MiB,
 * then passed through the (unbuffered) tar writer so that it counts and pads them:
 * tar_out sees its own buffer come back and only commits it. */
static int
write_data(struct writer *w, int fd, int64_t size, const char *path)
{
	while (size > 0) {
		unsigned char *p;
		size_t want = exp_compressor_space(w->comp, &p);
		if ((int64_t)want > size)
			want = (size_t)size;
		ssize_t n = read(fd, p, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kiln_err_set(w->err, errno, "read `%s`", path);
		if (n == 0) /* shrank since the stat: libarchive pads the rest with zeros */
			return 0;
		w->direct = p;
		la_ssize_t put = archive_write_data(w->tar, p, (size_t)n);
		w->direct = NULL;
		if (put < 0)
			return archive_fail(w, w->tar, "write layer");
		size -= n;
	}
	return 0;
}

/*
 * Read-ahead: the walk and the per-file system calls (open, xattrs, read, close: most of
 * the cost of a tree of small files) run on a thread of their own, ahead of the tar
 * writer, so they overlap with the hashing and compression of what came before (a big
 * file's data). It hands the writer finished tar entries, in the walk's order, with a
 * small file's data read already, or a big file's fd for the writer to read straight
 * into the compressor's chunks. The queue is bounded in entries, bytes and open fds
 * (the writer holds one batch more): a few milliseconds of system calls ahead is all it
 * takes, and more costs peak memory (archive entries are ~2 KiB each).
 */
#define AHEAD_SMALL   ((int64_t)64 << 10) /* data read ahead up to this size */
#define AHEAD_ENTRIES 1024u
#define AHEAD_BYTES   ((size_t)4 << 20)
#define AHEAD_FDS     64u
#define AHEAD_BATCH   64u /* entries that wake a waiting writer */

struct item {
	struct item *next;
	struct archive_entry *e;
	char *path;          /* for errors */
	int fd;              /* a big regular file, read by the writer */
	int64_t size;        /* its size (as stat said) */
	unsigned char *data; /* or a small file's data, read ahead */
	size_t data_len;
};

struct ahead {
	struct snap_store *ss;
	const char *snapshot;
	struct writer *w; /* clamp and the hard link table: the reader's alone */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct item *head, *tail;
	size_t n, bytes, fds;
	bool done, stop;
	bool push_waits, pop_waits; /* someone waits in ahead_push / ahead_pop */
	int result;                 /* the walk's, its text in err */
	struct kiln_err err;
};

static void
item_free(struct item *it)
{
	if (!it)
		return;
	if (it->e)
		archive_entry_free(it->e);
	if (it->fd >= 0)
		close(it->fd);
	free(it->data);
	free(it->path);
	free(it);
}

/* Queue an entry (taking it), waiting for room; -ECANCELED once the writer stopped. The
 * writer is woken only when it waits and there is a batch for it (or a big file, whose
 * data it reads itself): a wakeup per small file would cost more than the file. */
static int
ahead_push(struct ahead *q, struct item *it, struct kiln_err *err)
{
	pthread_mutex_lock(&q->mu);
	while (!q->stop && q->n > 0 &&
	       (q->n >= AHEAD_ENTRIES || q->bytes + it->data_len > AHEAD_BYTES ||
	        (it->fd >= 0 && q->fds >= AHEAD_FDS))) {
		q->push_waits = true;
		pthread_cond_broadcast(&q->cv); /* the writer may be waiting for a batch */
		pthread_cond_wait(&q->cv, &q->mu);
	}
	bool stop = q->stop;
	if (!stop) {
		if (q->tail)
			q->tail->next = it;
		else
			q->head = it;
		q->tail = it;
		q->n++;
		q->bytes += it->data_len;
		q->fds += it->fd >= 0;
		if (q->pop_waits && (q->n >= AHEAD_BATCH || it->fd >= 0)) {
			q->pop_waits = false;
			pthread_cond_broadcast(&q->cv);
		}
	}
	pthread_mutex_unlock(&q->mu);
	if (stop) {
		item_free(it);
		return kiln_err_set(err, ECANCELED, "layer writer stopped");
	}
	return 0;
}

/* All queued entries, in order, or NULL at the end of the walk (q->result says how it
 * ended). */
static struct item *
ahead_pop(struct ahead *q)
{
	pthread_mutex_lock(&q->mu);
	while (!q->head && !q->done) {
		q->pop_waits = true;
		pthread_cond_wait(&q->cv, &q->mu);
	}
	struct item *it = q->head;
	q->head = q->tail = NULL;
	q->n = q->bytes = q->fds = 0;
	if (q->push_waits) {
		q->push_waits = false;
		pthread_cond_broadcast(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
	return it;
}

/* A whiteout or opaque marker: an empty file with no owner, mode or time, as the OCI
 * image spec writes them. */
static struct archive_entry *
marker_entry(const char *oci_name)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, oci_name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0);
	archive_entry_set_size(e, 0);
	archive_entry_set_mtime(e, 0, 0);
	return e;
}

/* A small file's whole data (fewer bytes if it shrank since the stat). */
static int
read_small(struct item *it, int fd, int64_t size, struct kiln_err *err)
{
	it->data = kiln_xmalloc(size ? (size_t)size : 1);
	size_t got = 0;
	while (got < (size_t)size) {
		ssize_t n = read(fd, it->data + got, (size_t)size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kiln_err_set(err, errno, "read `%s`", it->path);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	it->data_len = got;
	return 0;
}

/* One change of the walk as a tar entry, on the read-ahead thread. */
static int
gather(const struct snap_change *c, void *data, struct kiln_err *err)
{
	struct ahead *q = data;
	struct writer *w = q->w;
	const struct stat *st = c->st;
	if (c->kind == SNAP_CHANGE_ADD && S_ISSOCK(st->st_mode))
		return 0; /* sockets do not survive a tar, as in docker */
	struct item *it = kiln_xcalloc(1, sizeof(*it));
	it->fd = -1;
	it->path = kiln_xstrdup(c->path);
	if (c->kind != SNAP_CHANGE_ADD) {
		it->e = marker_entry(c->oci_name);
		return ahead_push(q, it, err);
	}
	struct archive_entry *e = it->e = archive_entry_new();
	archive_entry_set_pathname(e, c->path);
	archive_entry_set_mode(e, st->st_mode);
	archive_entry_set_uid(e, st->st_uid);
	archive_entry_set_gid(e, st->st_gid);
	int64_t mt = st->st_mtim.tv_sec;
	if (w->clamp >= 0 && mt > w->clamp)
		mt = w->clamp;
	archive_entry_set_mtime(e, (time_t)mt, 0);
	int r = 0;
	if (S_ISREG(st->st_mode)) {
		const char *first =
		        st->st_nlink > 1 ? link_seen(w, st->st_dev, st->st_ino, c->path) : NULL;
		if (first) {
			archive_entry_set_hardlink(e, first);
			archive_entry_set_size(e, 0);
			goto xattrs;
		}
		it->fd = openat(c->dirfd, c->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (it->fd < 0) {
			r = kiln_err_set(err, errno, "open `%s`", c->path);
			goto fail;
		}
		it->size = st->st_size;
		archive_entry_set_size(e, st->st_size);
	} else if (S_ISLNK(st->st_mode)) {
		char target[PATH_MAX + 1];
		ssize_t n = readlinkat(c->dirfd, c->name, target, sizeof(target) - 1);
		if (n < 0) {
			r = kiln_err_set(err, errno, "readlink `%s`", c->path);
			goto fail;
		}
		target[n] = '\0';
		archive_entry_set_symlink(e, target);
	} else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		archive_entry_set_rdev(e, st->st_rdev);
	}
xattrs:
	if ((r = add_xattrs(e, c->dirfd, c->name, it->fd, c->path, err)) < 0)
		goto fail;
	if (it->fd >= 0 && it->size <= AHEAD_SMALL) {
		r = read_small(it, it->fd, it->size, err);
		close(it->fd);
		it->fd = -1;
		if (r < 0)
			goto fail;
	}
	return ahead_push(q, it, err);
fail:
	item_free(it);
	return r;
}

static void *
ahead_main(void *arg)
{
	struct ahead *q = arg;
	int r = snap_diff_walk(q->ss, q->snapshot, gather, q, &q->err);
	pthread_mutex_lock(&q->mu);
	q->done = true;
	q->result = r < 0 ? r : 0;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* Write one entry into the tar, on the writer's thread. */
static int
put_item(struct writer *w, struct item *it)
{
	if (archive_write_header(w->tar, it->e) != ARCHIVE_OK)
		return archive_fail(w, w->tar, it->path);
	if (it->data_len) {
		if (archive_write_data(w->tar, it->data, it->data_len) < 0)
			return archive_fail(w, w->tar, "write layer");
		return 0;
	}
	if (it->fd < 0)
		return 0;
	/* A big file's data is a run of chunks of its own (see exp_compressor_cut), so its
	 * compressed bytes are the same wherever it lands in a tar, and the segment cache
	 * has them from the last export that had this file. */
	bool segment = it->size >= EXP_SEGMENT_MIN;
	int r;
	if (segment && (r = exp_compressor_cut(w->comp, true, w->err)) < 0)
		return r;
	if ((r = write_data(w, it->fd, it->size, it->path)) < 0)
		return r;
	if (segment && (r = exp_compressor_cut(w->comp, false, w->err)) < 0)
		return r;
	return 0;
}

/* The walk on the read-ahead thread, its entries into the tar here. */
static int
write_entries(struct writer *w, struct snap_store *ss, const char *snapshot, struct kiln_err *err)
{
	struct ahead q = {.ss = ss, .snapshot = snapshot, .w = w, .err = KILN_ERR_INIT};
	pthread_mutex_init(&q.mu, NULL);
	pthread_cond_init(&q.cv, NULL);
	pthread_t t;
	if (pthread_create(&t, NULL, ahead_main, &q) != 0) {
		pthread_mutex_destroy(&q.mu);
		pthread_cond_destroy(&q.cv);
		return kiln_err_set(err, EAGAIN, "layer read-ahead thread");
	}
	int r = 0;
	struct item *batch;
	while (r >= 0 && (batch = ahead_pop(&q))) {
		while (batch) {
			struct item *it = batch;
			batch = it->next;
			if (r >= 0) {
				w->entries++;
				r = put_item(w, it);
			}
			item_free(it);
		}
	}
	pthread_mutex_lock(&q.mu);
	q.stop = true;
	pthread_cond_broadcast(&q.cv);
	pthread_mutex_unlock(&q.mu);
	pthread_join(t, NULL);
	for (struct item *it = q.head, *next; it; it = next) { /* left by a failed writer */
		next = it->next;
		item_free(it);
	}
	if (r >= 0 && q.result < 0) {
		kiln_err_release(err);
		*err = q.err;
		q.err = (struct kiln_err)KILN_ERR_INIT;
		r = q.result;
	}
	kiln_err_release(&q.err);
	pthread_mutex_destroy(&q.mu);
	pthread_cond_destroy(&q.cv);
	return r;
}

/* Tar and compress the diff of `snapshot` into a new blob; `seg_root` (NULL: none) is the
 * kiln root whose segment cache to use, only written to with `no_cache`. */
static int
write_layer(struct snap_store *ss, const char *snapshot, struct reg_store *rs, int64_t clamp,
            enum exp_compression comp, int level, const char *seg_root, bool no_cache,
            struct exp_layer *ret, struct kiln_err *err)
{
	struct writer w = {.err = err, .clamp = clamp};
	int r = reg_ingest_begin(rs, NULL, -1, &w.in, err);
	if (r < 0)
		return r;
	r = exp_compressor_new(comp, level, w.in, &w.comp, err);
	if (r < 0)
		goto out;
	if (seg_root) {
		/* Without the cache the layer is the same, only slower to make. */
		_cleanup_free_ char *dir = exp_segments_dir(seg_root, comp, level);
		struct kiln_err scratch = KILN_ERR_INIT;
		exp_compressor_set_cache(w.comp, dir, !no_cache, &scratch);
		kiln_err_release(&scratch);
	}
	w.tar = archive_write_new();
	archive_write_set_format_pax_restricted(w.tar);
	/* xattrs once, as SCHILY.xattr.* (what Go's archive/tar and containerd read), not
	 * again base64-encoded as LIBARCHIVE.xattr.* */
	archive_write_set_format_option(w.tar, "pax", "xattrheader", "SCHILY");
	archive_write_set_bytes_in_last_block(w.tar, 1);
	/* Unbuffered (the bytes are the same: the last block is not padded): file data
	 * reaches tar_out where write_data read it, with no copy in between. */
	archive_write_set_bytes_per_block(w.tar, 0);
	if (archive_write_open2(w.tar, &w, NULL, tar_out, NULL, NULL) != ARCHIVE_OK) {
		r = archive_fail(&w, w.tar, "start layer");
		goto out;
	}
	r = write_entries(&w, ss, snapshot, err);
	if (r < 0)
		goto out;
	if (archive_write_close(w.tar) != ARCHIVE_OK) {
		r = archive_fail(&w, w.tar, "finish layer tar");
		goto out;
	}
	char diff_id[KILN_DIGEST_HEX_LEN + 1];
	if ((r = exp_compressor_finish(w.comp, diff_id, err)) < 0)
		goto out;
	*ret = (struct exp_layer){.media_type = exp_compression_media_type(comp)};
	if (w.entries == 0 && comp == EXP_COMPRESSION_GZIP) {
		/* Same tar (1024 zero bytes), BuildKit's compressed bytes. */
		ret->empty = true;
		ret->size = (int64_t)sizeof(exp_empty_layer);
		snprintf(ret->diff_id, sizeof(ret->diff_id), "%s", EXP_EMPTY_LAYER_DIFF_ID);
		r = reg_blob_put(rs, exp_empty_layer, sizeof(exp_empty_layer),
		                 EXP_EMPTY_LAYER_DIGEST, ret->digest, err);
		goto out;
	}
	ret->empty = w.entries == 0;
	ret->reused = exp_compressor_reused(w.comp);
	snprintf(ret->diff_id, sizeof(ret->diff_id), "%s", diff_id);
	ret->size = reg_ingest_offset(w.in);
	r = reg_ingest_commit(w.in, ret->digest, err);
	w.in = NULL;
	if (r >= 0 && seg_root && exp_compressor_cache_added(w.comp))
		exp_segments_bound(seg_root); /* the cache grew */
out:
	/* Freeing an open tar writer flushes it through tar_out: keep that out of `err`. */
	w.err = NULL;
	if (w.tar)
		archive_write_free(w.tar);
	exp_compressor_free(w.comp);
	if (w.in)
		reg_ingest_abort(w.in);
	kiln_inode_map_clear(&w.links);
	return r;
}

/* ---- the layer cache ---- */

struct cache_loc {
	char *dir;  /* <root>/exporter/layers/<driver> */
	char *file; /* <dir>/<snapshot>[@<clamp>].<compression>-<level>.json */
};

static void
cache_loc_release(struct cache_loc *l)
{
	free(l->dir);
	free(l->file);
}

static void
cache_loc_init(struct cache_loc *l, struct snap_store *ss, const char *snapshot,
               struct reg_store *rs, const struct exp_layer_opts *o, int64_t clamp)
{
	const char *root = o->cache_root ? o->cache_root : reg_store_root(rs);
	l->dir = kiln_xasprintf("%s/exporter/layers/%s", root,
	                        snap_driver_name(snap_store_driver(ss)));
	/* A layer compressed once is never compressed again, in each compression. */
	_cleanup_free_ char *how =
	        kiln_xasprintf("%s-%d", exp_compression_name(o->compression),
	                       exp_compression_level(o->compression, o->compression_level));
	if (clamp >= 0)
		l->file = kiln_xasprintf("%s/%s@%lld.%s.json", l->dir, snapshot, (long long)clamp,
		                         how);
	else
		l->file = kiln_xasprintf("%s/%s.%s.json", l->dir, snapshot, how);
}

/* What identifies this committed snapshot, not just its name: a name removed and
 * committed again gets a new meta file. */
static bool
snapshot_identity(struct snap_store *ss, const char *snapshot, struct stat *ret)
{
	_cleanup_free_ char *p = kiln_xasprintf("%s/meta/%s", snap_store_path(ss), snapshot);
	return stat(p, ret) == 0;
}

static json_t *
identity_json(const struct stat *st)
{
	return json_pack("{s:I,s:I,s:I,s:I}", "dev", (json_int_t)st->st_dev, "ino",
	                 (json_int_t)st->st_ino, "ctime", (json_int_t)st->st_ctim.tv_sec,
	                 "ctime_ns", (json_int_t)st->st_ctim.tv_nsec);
}

/* 1 and *ret filled on a usable record, 0 otherwise (a missing or stale record is no
 * error: the layer is built again). */
static int
cache_lookup(const struct cache_loc *l, struct snap_store *ss, const char *snapshot,
             struct reg_store *rs, enum exp_compression comp, struct exp_layer *ret)
{
	struct stat st;
	if (!snapshot_identity(ss, snapshot, &st))
		return 0;
	json_error_t je;
	_cleanup_json_ json_t *j = json_load_file(l->file, 0, &je);
	if (!j)
		return 0;
	const char *diff_id = NULL, *digest = NULL;
	json_int_t size = -1;
	int empty = 0;
	json_t *id = NULL;
	if (json_unpack(j, "{s:s,s:s,s:I,s:b,s:o}", "diff_id", &diff_id, "digest", &digest, "size",
	                &size, "empty", &empty, "snapshot", &id) < 0)
		return 0;
	_cleanup_json_ json_t *want = identity_json(&st);
	if (!json_equal(id, want) || !kiln_digest_valid(diff_id) || !kiln_digest_valid(digest))
		return 0;
	struct kiln_err scratch = KILN_ERR_INIT;
	int64_t have = reg_blob_size(rs, digest, &scratch);
	kiln_err_release(&scratch);
	if (have != size)
		return 0;
	*ret = (struct exp_layer){.size = size,
	                          .media_type = exp_compression_media_type(comp),
	                          .empty = empty,
	                          .cached = true};
	snprintf(ret->diff_id, sizeof(ret->diff_id), "%s", diff_id);
	snprintf(ret->digest, sizeof(ret->digest), "%s", digest);
	return 1;
}

int
exp_mkdir_p(const char *path, struct kiln_err *err)
{
	_cleanup_free_ char *p = kiln_xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return kiln_err_set(err, errno, "mkdir `%s`", p);
		*s = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return kiln_err_set(err, errno, "mkdir `%s`", p);
	return 0;
}

/* Write the record: temp file in the same directory, fsync, rename. */
static int
cache_store(const struct cache_loc *l, struct snap_store *ss, const char *snapshot,
            const struct exp_layer *layer, struct kiln_err *err)
{
	struct stat st;
	if (!snapshot_identity(ss, snapshot, &st))
		return 0; /* nothing to tie a record to */
	int r = exp_mkdir_p(l->dir, err);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *j = json_pack(
	        "{s:s,s:s,s:I,s:b,s:o}", "diff_id", layer->diff_id, "digest", layer->digest, "size",
	        (json_int_t)layer->size, "empty", layer->empty, "snapshot", identity_json(&st));
	_cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);
	_cleanup_free_ char *tmp = kiln_xasprintf("%s/.tmp-XXXXXX", l->dir);
	_cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return kiln_err_set(err, errno, "create `%s`", tmp);
	size_t len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
		r = kiln_err_set(err, errno ? errno : EIO, "write `%s`", tmp);
		unlink(tmp);
		return r;
	}
	if (rename(tmp, l->file) < 0) {
		r = kiln_err_set(err, errno, "rename to `%s`", l->file);
		unlink(tmp);
		return r;
	}
	return 0;
}

/* ---- public ---- */

int
exp_layer_from_snapshot(struct snap_store *ss, const char *snapshot, struct reg_store *rs,
                        const struct exp_layer_opts *opts, struct exp_layer *ret,
                        struct kiln_err *err)
{
	const struct exp_layer_opts def = EXP_LAYER_OPTS_INIT;
	const struct exp_layer_opts *o = opts ? opts : &def;
	if (!snap_name_valid(snapshot))
		return kiln_err_invalid(err, "export layer: bad snapshot name `%s`", snapshot);
	/* A COPY --link merge's layer is its link snapshot's (the same blob whatever is
	 * below); if that one is gone, the merge's own diff is a correct layer too. */
	_cleanup_free_ char *link = NULL;
	struct kiln_err lerr = KILN_ERR_INIT;
	if (snap_label(ss, snapshot, SNAP_LABEL_LAYER, &link, &lerr) == 0 &&
	    snap_name_valid(link) && snap_exists(ss, link))
		snapshot = link;
	kiln_err_release(&lerr);
	int64_t clamp = o->rewrite_timestamp ? o->source_date_epoch : -1;
	struct cache_loc loc = {0};
	cache_loc_init(&loc, ss, snapshot, rs, o, clamp);
	int r = 0;
	if (!o->no_cache && cache_lookup(&loc, ss, snapshot, rs, o->compression, ret) > 0)
		goto out;
	struct exp_layer layer;
	r = write_layer(ss, snapshot, rs, clamp, o->compression, o->compression_level,
	                o->cache_root ? o->cache_root : reg_store_root(rs), o->no_cache, &layer,
	                err);
	if (r < 0) {
		kiln_err_wrap(err, "export layer of snapshot %s", snapshot);
		goto out;
	}
	/* The blob is in the store either way; a record that cannot be written only costs
	 * a re-tar next time, so its failure is not the export's. */
	struct kiln_err scratch = KILN_ERR_INIT;
	cache_store(&loc, ss, snapshot, &layer, &scratch);
	kiln_err_release(&scratch);
	*ret = layer;
out:
	cache_loc_release(&loc);
	return r;
}

void
exp_layers_free(struct exp_layer *layers, size_t n)
{
	(void)n;
	free(layers);
}

struct chain_job {
	struct snap_store *ss;
	struct reg_store *rs;
	const struct exp_layer_opts *opts;
	const char **names; /* oldest first */
	struct exp_layer *layers;
	size_t n;
	pthread_mutex_t mu;
	size_t next;
	int result; /* the first failure; its text is in err */
	struct kiln_err *err;
};

static void *
chain_worker(void *arg)
{
	struct chain_job *j = arg;
	for (;;) {
		pthread_mutex_lock(&j->mu);
		size_t i = j->result < 0 ? j->n : j->next++;
		pthread_mutex_unlock(&j->mu);
		if (i >= j->n)
			return NULL;
		struct kiln_err e = KILN_ERR_INIT;
		int r = exp_layer_from_snapshot(j->ss, j->names[i], j->rs, j->opts, &j->layers[i],
		                                &e);
		pthread_mutex_lock(&j->mu);
		if (r < 0 && j->result >= 0) {
			j->result = r;
			if (j->err) {
				kiln_err_release(j->err);
				*j->err = e;
				e = (struct kiln_err)KILN_ERR_INIT;
			}
		}
		pthread_mutex_unlock(&j->mu);
		kiln_err_release(&e);
	}
}

int
exp_chain_layers(struct snap_store *ss, const char *top, const char *stop, struct reg_store *rs,
                 const struct exp_layer_opts *opts, struct exp_layer **ret, size_t *ret_n,
                 struct kiln_err *err)
{
	_cleanup_strv_ struct kiln_strv chain = KILN_STRV_INIT; /* top first */
	_cleanup_free_ char *cur = kiln_xstrdup(top);
	while (cur && !(stop && kiln_str_eq(cur, stop))) {
		if (chain.n > 4096)
			return kiln_err_invalid(err, "snapshot chain of %s too long", top);
		char *parent = NULL;
		int r = snap_parent(ss, cur, &parent, err);
		if (r < 0)
			return kiln_err_wrap(err, "export layers of %s", top);
		kiln_strv_push_take(&chain, TAKE_PTR(cur));
		cur = parent;
	}
	if (stop && !cur)
		return kiln_err_invalid(err, "export layers: snapshot %s is not an ancestor of %s",
		                        stop, top);
	_cleanup_free_ struct exp_layer *layers =
	        chain.n ? kiln_xcalloc(chain.n, sizeof(*layers)) : NULL;
	/* Oldest first; the layers are independent, so they are exported at once. */
	struct chain_job job = {
	        .ss = ss, .rs = rs, .opts = opts, .layers = layers, .n = chain.n, .err = err};
	job.names = kiln_xcalloc(chain.n ? chain.n : 1, sizeof(*job.names));
	for (size_t i = 0; i < chain.n; i++)
		job.names[i] = chain.v[chain.n - 1 - i];
	pthread_mutex_init(&job.mu, NULL);
	size_t nthreads = opts && opts->jobs ? opts->jobs : exp_cpus();
	if (nthreads > chain.n)
		nthreads = chain.n;
	pthread_t *threads = kiln_xcalloc(nthreads ? nthreads : 1, sizeof(*threads));
	size_t started = 0;
	for (size_t i = 1; i < nthreads; i++, started++)
		if (pthread_create(&threads[i - 1], NULL, chain_worker, &job) != 0)
			break;
	if (chain.n)
		chain_worker(&job); /* this thread works too */
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	free(job.names);
	pthread_mutex_destroy(&job.mu);
	if (job.result < 0)
		return job.result;
	*ret = TAKE_PTR(layers);
	*ret_n = chain.n;
	return 0;
}
