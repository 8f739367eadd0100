/*
 * The content store: immutable blobs named by their sha256 digest, and the names index.
 *
 * A blob becomes visible only by rename(2) of a complete, verified, fsync()ed temp file,
 * so readers never see half of one and a crash leaves at worst a temp file. Each writer
 * holds flock() on its temp file; whoever later finds an unlocked temp file knows its
 * writer is dead and removes it. The names index is one JSON file replaced the same way,
 * with read-modify-write serialised by flock() on a separate lock file (the index itself
 * is replaced, so it cannot carry the lock).
 */
#include "reg.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

struct reg_store {
	char *root;
	int content_fd; /* ROOT/content */
	int blobs_fd;   /* ROOT/content/blobs/sha256 */
	int tmp_fd;     /* ROOT/content/tmp */
};

struct reg_ingest {
	struct reg_store *st;
	int fd;
	char *tmp_name;
	struct kiln_sha256 *sha;
	int64_t offset;
	int64_t flushed; /* writeback started up to here */
	int64_t want_size;
	char want[KILN_DIGEST_HEX_LEN + 1];
};

/* Writeback is started every this many bytes, so the fsync at commit finds most of a big
 * blob on its way to disk already instead of writing all of it while the caller waits. */
#define INGEST_FLUSH_STEP ((int64_t)8 << 20)

static int
mkdir_open(int dirfd, const char *name, struct kiln_err *err)
{
	if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
		return kiln_err_set(err, errno, "create store directory `%s`", name);
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return kiln_err_set(err, errno, "open store directory `%s`", name);
	return fd;
}

/* Remove temp files whose writer is gone: we can take their lock. */
static void
clean_stale_temps(struct reg_store *st)
{
	int dfd = openat(st->tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		int fd = openat(st->tmp_fd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			unlinkat(st->tmp_fd, de->d_name, 0);
		close(fd);
	}
	closedir(d);
}

int
reg_store_open(const char *root, struct reg_store **ret, struct kiln_err *err)
{
	_cleanup_close_ int rootfd = -1, cfd = -1, bfd = -1, tfd = -1;
	/* mkdir -p: the default root (~/.local/share/kiln) may lack parents. */
	_cleanup_free_ char *path = kiln_xstrdup(root);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return kiln_err_set(err, errno, "create `%s`", path);
		*p = '/';
	}
	if (mkdir(root, 0700) < 0 && errno != EEXIST)
		return kiln_err_set(err, errno, "create store root `%s`", root);
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return kiln_err_set(err, errno, "open store root `%s`", root);
	cfd = mkdir_open(rootfd, "content", err);
	if (cfd < 0)
		return cfd;
	_cleanup_close_ int b0 = mkdir_open(cfd, "blobs", err);
	if (b0 < 0)
		return b0;
	bfd = mkdir_open(b0, "sha256", err);
	if (bfd < 0)
		return bfd;
	tfd = mkdir_open(cfd, "tmp", err);
	if (tfd < 0)
		return tfd;
	struct reg_store *st = kiln_xcalloc(1, sizeof(*st));
	st->root = kiln_xstrdup(root);
	st->content_fd = TAKE_FD(cfd);
	st->blobs_fd = TAKE_FD(bfd);
	st->tmp_fd = TAKE_FD(tfd);
	clean_stale_temps(st);
	*ret = st;
	return 0;
}

void
reg_store_free(struct reg_store *st)
{
	if (!st)
		return;
	close(st->content_fd);
	close(st->blobs_fd);
	close(st->tmp_fd);
	free(st->root);
	free(st);
}

const char *
reg_store_root(const struct reg_store *st)
{
	return st->root;
}

/* The file name of a blob: its hex, after the digest passed validation. */
static int
blob_name(const char *digest, const char **ret, struct kiln_err *err)
{
	if (!digest || !kiln_digest_valid(digest))
		return kiln_err_invalid(err, "invalid digest `%s`", digest ? digest : "(null)");
	*ret = digest + 7;
	return 0;
}

bool
reg_blob_exists(struct reg_store *st, const char *digest)
{
	const char *hex = NULL;
	if (blob_name(digest, &hex, NULL) < 0)
		return false;
	return faccessat(st->blobs_fd, hex, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int64_t
reg_blob_size(struct reg_store *st, const char *digest, struct kiln_err *err)
{
	const char *hex = NULL;
	int r = blob_name(digest, &hex, err);
	if (r < 0)
		return r;
	struct stat s;
	if (fstatat(st->blobs_fd, hex, &s, AT_SYMLINK_NOFOLLOW) < 0)
		return kiln_err_set(err, errno, "blob %s", digest);
	return (int64_t)s.st_size;
}

int
reg_blob_open(struct reg_store *st, const char *digest, struct kiln_err *err)
{
	const char *hex = NULL;
	int r = blob_name(digest, &hex, err);
	if (r < 0)
		return r;
	int fd = openat(st->blobs_fd, hex, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return kiln_err_set(err, errno, "blob %s", digest);
	return fd;
}

int
reg_blob_read(struct reg_store *st, const char *digest, size_t max, struct kiln_buf *out,
              struct kiln_err *err)
{
	_cleanup_close_ int fd = reg_blob_open(st, digest, err);
	if (fd < 0)
		return fd;
	struct stat s;
	if (fstat(fd, &s) < 0)
		return kiln_err_set(err, errno, "blob %s", digest);
	if ((uint64_t)s.st_size > max)
		return kiln_err_set(err, EFBIG, "blob %s is %lld bytes, more than the limit of %zu",
		                    digest, (long long)s.st_size, max);
	return kiln_buf_read_fd(out, fd, err);
}

int
reg_ingest_begin(struct reg_store *st, const char *want_digest, int64_t want_size,
                 struct reg_ingest **ret, struct kiln_err *err)
{
	if (want_digest && !kiln_digest_valid(want_digest))
		return kiln_err_invalid(err, "invalid digest `%s`", want_digest);
	char name[] = "ingest-XXXXXX";
	int fd = -1;
	/* mkostemp wants a path; we name the file ourselves to stay relative to tmp_fd. */
	for (int tries = 0; tries < 100 && fd < 0; tries++) {
		struct kiln_digest rnd;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		char seed[64];
		int n = snprintf(seed, sizeof(seed), "%d-%ld-%ld-%d", getpid(), (long)ts.tv_sec,
		                 ts.tv_nsec, tries);
		kiln_sha256_buf(seed, (size_t)n, &rnd);
		static const char al[] = "abcdefghijklmnopqrstuvwxyz0123456789";
		for (int i = 0; i < 6; i++)
			name[7 + i] = al[rnd.bytes[i] % 36];
		fd = openat(st->tmp_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			if (errno != EEXIST)
				return kiln_err_set(err, errno, "create temp file in store");
			continue;
		}
		/* Between create and lock, a cleaner in another process may take the file
		 * for stale and unlink it: then the link count is 0 and we start over. */
		struct stat s;
		if (flock(fd, LOCK_EX) < 0 || fstat(fd, &s) < 0) {
			int e = errno;
			close(fd);
			unlinkat(st->tmp_fd, name, 0);
			return kiln_err_set(err, e, "lock temp file in store");
		}
		if (s.st_nlink == 0) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0)
		return kiln_err_set(err, EEXIST, "create temp file in store");
	struct reg_ingest *in = kiln_xcalloc(1, sizeof(*in));
	in->st = st;
	in->fd = fd;
	in->tmp_name = kiln_xstrdup(name);
	in->sha = kiln_sha256_new();
	in->want_size = want_size;
	if (want_digest)
		memcpy(in->want, want_digest, sizeof(in->want));
	*ret = in;
	return 0;
}

int
reg_ingest_write(struct reg_ingest *in, const void *data, size_t len, struct kiln_err *err)
{
	if (in->want_size >= 0 && in->offset + (int64_t)len > in->want_size)
		return kiln_err_invalid(err, "size mismatch: content is longer than %lld bytes",
		                        (long long)in->want_size);
	const char *p = data;
	size_t left = len;
	while (left) {
		ssize_t n = write(in->fd, p, left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return kiln_err_set(err, errno, "write blob to store");
		}
		p += n;
		left -= (size_t)n;
	}
	kiln_sha256_update(in->sha, data, len);
	in->offset += (int64_t)len;
	if (in->offset - in->flushed >= INGEST_FLUSH_STEP) {
		/* Only a start: errors, if any, come back from the fsync at commit. */
		(void)sync_file_range(in->fd, in->flushed, in->offset - in->flushed,
		                      SYNC_FILE_RANGE_WRITE);
		in->flushed = in->offset;
	}
	return 0;
}

int64_t
reg_ingest_offset(const struct reg_ingest *in)
{
	return in->offset;
}

void
reg_ingest_abort(struct reg_ingest *in)
{
	if (!in)
		return;
	unlinkat(in->st->tmp_fd, in->tmp_name, 0);
	close(in->fd);
	kiln_sha256_free(in->sha);
	free(in->tmp_name);
	free(in);
}

int
reg_ingest_commit(struct reg_ingest *in, char ret_digest[KILN_DIGEST_HEX_LEN + 1],
                  struct kiln_err *err)
{
	struct kiln_digest d;
	char got[KILN_DIGEST_HEX_LEN + 1];
	int r = 0;
	kiln_sha256_final(in->sha, &d);
	in->sha = NULL;
	kiln_digest_format(&d, got);
	if (in->want_size >= 0 && in->offset != in->want_size) {
		r = kiln_err_invalid(err, "size mismatch: got %lld bytes, expected %lld",
		                     (long long)in->offset, (long long)in->want_size);
		goto out;
	}
	if (in->want[0] && !kiln_str_eq(in->want, got)) {
		r = kiln_err_invalid(err, "digest mismatch: expected %s, got %s", in->want, got);
		goto out;
	}
	/* Already stored (it was made durable when it was committed): the temp file is a
	 * second copy of the same bytes. Dropping it skips an fsync and a rename over a big
	 * file, which ext4 turns into writeback of the whole old one. */
	struct stat have;
	if (fstatat(in->st->blobs_fd, got + 7, &have, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(have.st_mode) && have.st_size == in->offset) {
		if (ret_digest)
			memcpy(ret_digest, got, sizeof(got));
		reg_ingest_abort(in);
		return 0;
	}
	if (fsync(in->fd) < 0) {
		r = kiln_err_set(err, errno, "fsync blob %s", got);
		goto out;
	}
	/* Read-only whatever the umask: blobs are shared and never change. */
	fchmod(in->fd, 0444);
	if (renameat(in->st->tmp_fd, in->tmp_name, in->st->blobs_fd, got + 7) < 0) {
		r = kiln_err_set(err, errno, "store blob %s", got);
		goto out;
	}
	fsync(in->st->blobs_fd);
	if (ret_digest)
		memcpy(ret_digest, got, sizeof(got));
	close(in->fd);
	free(in->tmp_name);
	free(in);
	return 0;
out:
	reg_ingest_abort(in);
	return r;
}

int
reg_blob_put(struct reg_store *st, const void *data, size_t len, const char *want,
             char ret_digest[KILN_DIGEST_HEX_LEN + 1], struct kiln_err *err)
{
	/* Already there: content addressing makes the second copy identical. */
	if (want && reg_blob_exists(st, want)) {
		struct kiln_digest d;
		char got[KILN_DIGEST_HEX_LEN + 1];
		kiln_sha256_buf(data, len, &d);
		kiln_digest_format(&d, got);
		if (!kiln_str_eq(got, want))
			return kiln_err_invalid(err, "digest mismatch: expected %s, got %s", want,
			                        got);
		if (ret_digest)
			memcpy(ret_digest, got, sizeof(got));
		return 0;
	}
	struct reg_ingest *in;
	int r = reg_ingest_begin(st, want, -1, &in, err);
	if (r < 0)
		return r;
	r = reg_ingest_write(in, data, len, err);
	if (r < 0) {
		reg_ingest_abort(in);
		return r;
	}
	return reg_ingest_commit(in, ret_digest, err);
}

int
reg_blob_put_fd(struct reg_store *st, int fd, const char *want, int64_t want_size,
                char ret_digest[KILN_DIGEST_HEX_LEN + 1], struct kiln_err *err)
{
	struct reg_ingest *in;
	int r = reg_ingest_begin(st, want, want_size, &in, err);
	if (r < 0)
		return r;
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = kiln_err_set(err, errno, "read blob content");
			break;
		}
		if (n == 0)
			break;
		r = reg_ingest_write(in, buf, (size_t)n, err);
		if (r < 0)
			break;
	}
	if (r < 0) {
		reg_ingest_abort(in);
		return r;
	}
	return reg_ingest_commit(in, ret_digest, err);
}

/* ---- names ---- */

#define NAMES_FILE "names.json"
#define NAMES_LOCK "names.lock"

/* names.json: {"version":1,"names":{"<name>":{"digest":"sha256:..","updated":123}}} */
static int
names_load(struct reg_store *st, json_t **ret, struct kiln_err *err)
{
	_cleanup_close_ int fd = openat(st->content_fd, NAMES_FILE, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			return kiln_err_set(err, errno, "open names index");
		*ret = json_object();
		return 0;
	}
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	int r = kiln_buf_read_fd(&b, fd, err);
	if (r < 0)
		return r;
	json_error_t je;
	json_t *root = json_loadb(b.buf, b.len, 0, &je);
	json_t *names = root ? json_object_get(root, "names") : NULL;
	if (!json_is_object(names)) {
		json_decref(root);
		return kiln_err_invalid(err, "names index %s/content/" NAMES_FILE " is corrupt: %s",
		                        st->root, root ? "no names object" : je.text);
	}
	*ret = json_incref(names);
	json_decref(root);
	return 0;
}

static int
names_store(struct reg_store *st, json_t *names, struct kiln_err *err)
{
	_cleanup_json_ json_t *root = json_pack("{s:i,s:O}", "version", 1, "names", names);
	_cleanup_free_ char *text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
	_cleanup_free_ char *tmp = kiln_xasprintf(NAMES_FILE ".tmp-%d", getpid());
	_cleanup_close_ int fd =
	        openat(st->content_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return kiln_err_set(err, errno, "write names index");
	size_t len = strlen(text), off = 0;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			unlinkat(st->content_fd, tmp, 0);
			return kiln_err_set(err, e, "write names index");
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || renameat(st->content_fd, tmp, st->content_fd, NAMES_FILE) < 0) {
		int e = errno;
		unlinkat(st->content_fd, tmp, 0);
		return kiln_err_set(err, e, "replace names index");
	}
	fsync(st->content_fd);
	return 0;
}

static int
names_lock(struct reg_store *st, struct kiln_err *err)
{
	int fd = openat(st->content_fd, NAMES_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return kiln_err_set(err, errno, "open names lock");
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return kiln_err_set(err, e, "lock names index");
		}
	}
	/* Holding the lock, any temp file of the index belongs to a writer that died. */
	int dfd = openat(st->content_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)))
			if (kiln_str_has_prefix(de->d_name, NAMES_FILE ".tmp-"))
				unlinkat(st->content_fd, de->d_name, 0);
		closedir(d);
	} else if (dfd >= 0) {
		close(dfd);
	}
	return fd;
}

static int
check_name(const char *name, struct kiln_err *err)
{
	if (!name || !*name || strlen(name) > 4096 || strchr(name, '\n'))
		return kiln_err_invalid(err, "invalid image name `%s`", name ? name : "");
	return 0;
}

int
reg_name_set(struct reg_store *st, const char *name, const char *digest, struct kiln_err *err)
{
	int r = check_name(name, err);
	if (r < 0)
		return r;
	if (!kiln_digest_valid(digest))
		return kiln_err_invalid(err, "invalid digest `%s`", digest);
	_cleanup_close_ int lock = names_lock(st, err);
	if (lock < 0)
		return lock;
	_cleanup_json_ json_t *names = NULL;
	r = names_load(st, &names, err);
	if (r < 0)
		return r;
	json_object_set_new(
	        names, name,
	        json_pack("{s:s,s:I}", "digest", digest, "updated", (json_int_t)time(NULL)));
	return names_store(st, names, err);
}

int
reg_name_get(struct reg_store *st, const char *name, char digest[KILN_DIGEST_HEX_LEN + 1],
             struct kiln_err *err)
{
	_cleanup_json_ json_t *names = NULL;
	int r = names_load(st, &names, err);
	if (r < 0)
		return r;
	const char *d = json_string_value(json_object_get(json_object_get(names, name), "digest"));
	if (!d)
		return kiln_err_set(err, ENOENT, "no image named %s in the store", name);
	if (!kiln_digest_valid(d))
		return kiln_err_invalid(err, "names index: bad digest for %s", name);
	memcpy(digest, d, KILN_DIGEST_HEX_LEN + 1);
	return 0;
}

int
reg_name_remove(struct reg_store *st, const char *name, struct kiln_err *err)
{
	_cleanup_close_ int lock = names_lock(st, err);
	if (lock < 0)
		return lock;
	_cleanup_json_ json_t *names = NULL;
	int r = names_load(st, &names, err);
	if (r < 0)
		return r;
	if (json_object_del(names, name) < 0)
		return kiln_err_set(err, ENOENT, "no image named %s in the store", name);
	return names_store(st, names, err);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct reg_name *)a)->name, ((const struct reg_name *)b)->name);
}

int
reg_name_list(struct reg_store *st, struct reg_name **ret, size_t *ret_n, struct kiln_err *err)
{
	_cleanup_json_ json_t *names = NULL;
	int r = names_load(st, &names, err);
	if (r < 0)
		return r;
	size_t n = 0;
	struct reg_name *v = kiln_xcalloc(json_object_size(names) + 1, sizeof(*v));
	const char *key;
	json_t *val;
	json_object_foreach(names, key, val)
	{
		const char *d = json_string_value(json_object_get(val, "digest"));
		if (!d || !kiln_digest_valid(d))
			continue;
		v[n].name = kiln_xstrdup(key);
		memcpy(v[n].digest, d, sizeof(v[n].digest));
		v[n].updated = json_integer_value(json_object_get(val, "updated"));
		n++;
	}
	qsort(v, n, sizeof(*v), name_cmp);
	*ret = v;
	*ret_n = n;
	return 0;
}

void
reg_names_free(struct reg_name *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].name);
	free(v);
}
