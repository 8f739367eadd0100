/*
 * The persistent cache store, shared by concurrent builds (threads and processes).
 *
 * <root>/cache/records/<hex of key>	one JSON record per key; last use = file mtime
 * <root>/cache/steps/<hex of identity>	the latest recipe of a step, for --explain
 * <root>/cache/tmp/<pid>-<seq>		records being written
 *
 * Records are replaced by rename only, so a reader sees a whole one or none. A solver
 * holds each record it uses open and flock(LOCK_SH)'d; prune takes LOCK_EX|LOCK_NB on the
 * record it deletes and skips busy ones. The lock is on the record's own inode, so after
 * locking, a reader checks the path still names that inode (prune may have unlinked it,
 * a writer may have replaced it) and starts over if not. Last use lives in the mtime so
 * touching a record never replaces the inode a reader has locked.
 */
#include "sv_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

struct sv_cache {
	char *path;
	int recfd, stepfd, tmpfd, linfd;
	atomic_uint seq;
};

static int
mkdir_open(int dirfd, const char *name, const char *shown, struct kiln_err *err)
{
	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return kiln_err_set(err, errno, "create %s", shown);
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return kiln_err_set(err, errno, "open %s", shown);
	return fd;
}

/* Temps of processes that died while writing; ours are named <pid>-<seq>. */
static void
clean_stale_temps(struct sv_cache *c)
{
	int fd = dup(c->tmpfd);
	if (fd < 0)
		return;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (pid <= 0 || *end != '-')
			continue;
		if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
			unlinkat(c->tmpfd, de->d_name, 0);
	}
	closedir(d);
}

int
sv_cache_open(const char *kiln_root, struct sv_cache **ret, struct kiln_err *err)
{
	if (mkdir(kiln_root, 0700) < 0 && errno != EEXIST)
		return kiln_err_set(err, errno, "create %s", kiln_root);
	_cleanup_free_ char *path = kiln_path_join(kiln_root, "cache");
	_cleanup_close_ int root = open(kiln_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return kiln_err_set(err, errno, "open %s", kiln_root);
	_cleanup_close_ int dfd = mkdir_open(root, "cache", path, err);
	if (dfd < 0)
		return dfd;
	struct sv_cache *c = kiln_xcalloc(1, sizeof(*c));
	c->recfd = c->stepfd = c->tmpfd = c->linfd = -1;
	c->path = TAKE_PTR(path);
	int r;
	if ((r = c->recfd = mkdir_open(dfd, "records", c->path, err)) < 0 ||
	    (r = c->stepfd = mkdir_open(dfd, "steps", c->path, err)) < 0 ||
	    (r = c->tmpfd = mkdir_open(dfd, "tmp", c->path, err)) < 0 ||
	    (r = c->linfd = mkdir_open(dfd, "lineage", c->path, err)) < 0) {
		sv_cache_free(c);
		return r;
	}
	clean_stale_temps(c);
	*ret = c;
	return 0;
}

void
sv_cache_free(struct sv_cache *c)
{
	if (!c)
		return;
	kiln_closep(&c->recfd);
	kiln_closep(&c->stepfd);
	kiln_closep(&c->tmpfd);
	kiln_closep(&c->linfd);
	free(c->path);
	free(c);
}

const char *
sv_cache_path(const struct sv_cache *c)
{
	return c->path;
}

static int
lock_fd(int fd, int op)
{
	while (flock(fd, op) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/* Whether `name` in dirfd still is the inode open as fd. */
static bool
still_linked(int dirfd, const char *name, int fd)
{
	struct stat a, b;
	if (fstat(fd, &a) < 0 || a.st_nlink == 0)
		return false;
	if (fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Record file names are the key's hex; anything else is not a key. */
static const char *
key_hex(const char *key)
{
	if (!key || !kiln_digest_valid(key))
		return NULL;
	return key + strlen("sha256:");
}

static json_t *
read_json_fd(int fd)
{
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	struct kiln_err e = KILN_ERR_INIT;
	if (lseek(fd, 0, SEEK_SET) < 0 || kiln_buf_read_fd(&b, fd, &e) < 0) {
		kiln_err_release(&e);
		return NULL;
	}
	return json_loadb(b.buf, b.len, JSON_REJECT_DUPLICATES, NULL);
}

/* A record's fields, pointing into `doc`. Returns false if it is not a valid record
 * (for `name` when given). */
static bool
record_parse(json_t *doc, const char *name, int fd, struct sv_cache_entry *e)
{
	if (!json_is_object(doc))
		return false;
	*e = (struct sv_cache_entry){
	        .key = json_string_value(json_object_get(doc, "key")),
	        .result = json_string_value(json_object_get(doc, "result")),
	        .created = json_integer_value(json_object_get(doc, "created")),
	        .size = (uint64_t)json_integer_value(json_object_get(doc, "size")),
	        .identity = json_string_value(json_object_get(doc, "identity")),
	        .description = json_string_value(json_object_get(doc, "description")),
	};
	const char *hex = key_hex(e->key);
	if (!hex || !e->result || !*e->result || (name && !kiln_str_eq(hex, name)))
		return false;
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0)
		e->last_used = st.st_mtim.tv_sec;
	return true;
}

/* Remove a record we found unreadable, unless someone holds it or replaced it. */
static void
remove_corrupt(struct sv_cache *c, const char *name, int fd)
{
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 && still_linked(c->recfd, name, fd))
		unlinkat(c->recfd, name, 0);
}

int
sv_cache_lookup(struct sv_cache *c, const char *key, bool (*exists)(void *data, const char *result),
                void *exists_data, char **ret_result, int *ret_fd, bool *ret_gone,
                struct kiln_err *err)
{
	const char *hex = key_hex(key);
	if (!hex)
		return kiln_err_invalid(err, "invalid cache key `%s`", key ? key : "");
	*ret_gone = false;
	/* A few rounds at most: each retry means a concurrent prune or writer won a race. */
	for (int round = 0; round < 8; round++) {
		_cleanup_close_ int fd = openat(c->recfd, hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			if (errno == ENOENT)
				return 0;
			return kiln_err_set(err, errno, "open cache record %s", key);
		}
		int r = lock_fd(fd, LOCK_SH);
		if (r < 0)
			return kiln_err_set(err, -r, "lock cache record %s", key);
		if (!still_linked(c->recfd, hex, fd))
			continue;
		json_t *doc = read_json_fd(fd);
		struct sv_cache_entry e;
		if (!record_parse(doc, hex, fd, &e)) {
			json_decref(doc);
			remove_corrupt(c, hex, fd);
			return 0;
		}
		if (exists && !exists(exists_data, e.result)) {
			json_decref(doc);
			*ret_gone = true;
			return 0;
		}
		*ret_result = kiln_xstrdup(e.result);
		json_decref(doc);
		futimens(fd, NULL); /* last use; failing to note it only ages the record */
		*ret_fd = TAKE_FD(fd);
		return 1;
	}
	return 0;
}

/* Write text to a fresh temp file, fsynced; returns its fd (name in *ret_name). */
static int
write_temp(struct sv_cache *c, const char *text, char **ret_name, struct kiln_err *err)
{
	_cleanup_free_ char *name =
	        kiln_xasprintf("%d-%u", (int)getpid(), atomic_fetch_add(&c->seq, 1));
	_cleanup_close_ int fd =
	        openat(c->tmpfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return kiln_err_set(err, errno, "create %s/tmp/%s", c->path, name);
	size_t n = strlen(text), off = 0;
	while (off < n) {
		ssize_t w = write(fd, text + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			unlinkat(c->tmpfd, name, 0);
			return kiln_err_set(err, e, "write %s/tmp/%s", c->path, name);
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0) {
		int e = errno;
		unlinkat(c->tmpfd, name, 0);
		return kiln_err_set(err, e, "fsync %s/tmp/%s", c->path, name);
	}
	*ret_name = TAKE_PTR(name);
	return TAKE_FD(fd);
}

/* rename(2) without replacing; link+unlink where the filesystem lacks RENAME_NOREPLACE. */
static int
publish_noreplace(int fromfd, const char *from, int tofd, const char *to)
{
	if (renameat2(fromfd, from, tofd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	if (linkat(fromfd, from, tofd, to, 0) < 0)
		return -errno;
	unlinkat(fromfd, from, 0);
	return 0;
}

int
sv_cache_put(struct sv_cache *c, const struct sv_cache_put *p,
             bool (*exists)(void *data, const char *result), void *exists_data, char **ret_winner,
             int *ret_fd, struct kiln_err *err)
{
	const char *hex = key_hex(p->key);
	if (!hex)
		return kiln_err_invalid(err, "invalid cache key `%s`", p->key ? p->key : "");
	json_t *doc = json_pack("{s:s, s:s, s:I, s:I}", "key", p->key, "result", p->result,
	                        "created", (json_int_t)time(NULL), "size", (json_int_t)p->size);
	if (p->identity)
		json_object_set_new(doc, "identity", json_string(p->identity));
	if (p->description)
		json_object_set_new(doc, "description", json_string(p->description));
	if (p->recipe)
		json_object_set(doc, "recipe", (json_t *)p->recipe);
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	if (!text)
		abort();
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = write_temp(c, text, &tmp, err);
	free(text);
	if (fd < 0)
		return fd;
	/* Locked before it is visible, so prune can never take it from under us. */
	int r = lock_fd(fd, LOCK_SH);
	if (r < 0) {
		unlinkat(c->tmpfd, tmp, 0);
		return kiln_err_set(err, -r, "lock cache record %s", p->key);
	}
	for (int round = 0; round < 8; round++) {
		if (p->replace)
			r = renameat(c->tmpfd, tmp, c->recfd, hex) < 0 ? -errno : 0;
		else
			r = publish_noreplace(c->tmpfd, tmp, c->recfd, hex);
		if (r == 0) {
			*ret_fd = TAKE_FD(fd);
			return 0;
		}
		if (r != -EEXIST)
			break;
		/* Someone stored this key first: take theirs if it is usable. */
		bool gone = false;
		_cleanup_free_ char *winner = NULL;
		int wfd = -1;
		r = sv_cache_lookup(c, p->key, exists, exists_data, &winner, &wfd, &gone, err);
		if (r < 0) {
			unlinkat(c->tmpfd, tmp, 0);
			return r;
		}
		if (r > 0) {
			unlinkat(c->tmpfd, tmp, 0);
			*ret_winner = TAKE_PTR(winner);
			*ret_fd = wfd;
			return 1;
		}
		if (gone) {
			/* Its result is gone, so nobody can be using it: replace it. */
			if (renameat(c->tmpfd, tmp, c->recfd, hex) == 0) {
				*ret_fd = TAKE_FD(fd);
				return 0;
			}
			r = -errno;
			break;
		}
		/* It was corrupt and has been removed (or pruned meanwhile): try again. */
	}
	unlinkat(c->tmpfd, tmp, 0);
	return kiln_err_set(err, r == -EEXIST ? EAGAIN : -r, "publish cache record %s", p->key);
}

static void
identity_hex(const char *identity, char out[KILN_DIGEST_HEX_LEN + 1])
{
	struct kiln_digest d;
	kiln_sha256_buf(identity, strlen(identity), &d);
	kiln_digest_format(&d, out);
}

int
sv_cache_step_get(struct sv_cache *c, const char *identity, json_t **ret, struct kiln_err *err)
{
	char hex[KILN_DIGEST_HEX_LEN + 1];
	identity_hex(identity, hex);
	*ret = NULL;
	_cleanup_close_ int fd = openat(c->stepfd, hex + 7, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return kiln_err_set(err, errno, "open %s/steps/%s", c->path, hex + 7);
	}
	json_t *doc = read_json_fd(fd);
	const char *id = json_string_value(json_object_get(doc, "identity"));
	json_t *recipe = json_object_get(doc, "recipe");
	/* An unreadable entry only loses an explanation; the next build rewrites it. */
	if (id && kiln_str_eq(id, identity) && json_is_object(recipe))
		*ret = json_incref(recipe);
	json_decref(doc);
	return 0;
}

/* Write `doc` (taken) as dirfd/name through a temp file: readers see it whole or not. */
static int
publish_json(struct sv_cache *c, int dirfd, const char *area, const char *name, json_t *doc,
             struct kiln_err *err)
{
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	if (!text)
		abort();
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = write_temp(c, text, &tmp, err);
	free(text);
	if (fd < 0)
		return fd;
	if (renameat(c->tmpfd, tmp, dirfd, name) < 0) {
		int e = errno;
		unlinkat(c->tmpfd, tmp, 0);
		return kiln_err_set(err, e, "publish %s/%s/%s", c->path, area, name);
	}
	return 0;
}

int
sv_cache_step_set(struct sv_cache *c, const char *identity, const json_t *recipe,
                  struct kiln_err *err)
{
	char hex[KILN_DIGEST_HEX_LEN + 1];
	identity_hex(identity, hex);
	json_t *doc = json_pack("{s:s, s:O}", "identity", identity, "recipe", recipe);
	return publish_json(c, c->stepfd, "steps", hex + 7, doc, err);
}

int
sv_cache_lineage_get(struct sv_cache *c, const char *lineage, char key[KILN_DIGEST_HEX_LEN + 1],
                     struct kiln_err *err)
{
	key[0] = '\0';
	const char *name = key_hex(lineage);
	if (!name)
		return kiln_err_invalid(err, "invalid lineage key");
	_cleanup_close_ int fd = openat(c->linfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return kiln_err_set(err, errno, "open %s/lineage/%s", c->path, name);
	}
	json_t *doc = read_json_fd(fd);
	const char *k = json_string_value(json_object_get(doc, "key"));
	/* An unreadable entry only loses an incremental run; the next run rewrites it. */
	if (k && kiln_digest_valid(k) && strlen(k) == KILN_DIGEST_HEX_LEN)
		memcpy(key, k, KILN_DIGEST_HEX_LEN + 1);
	json_decref(doc);
	return 0;
}

int
sv_cache_lineage_set(struct sv_cache *c, const char *lineage, const char *key, struct kiln_err *err)
{
	const char *name = key_hex(lineage);
	if (!name || !key_hex(key))
		return kiln_err_invalid(err, "invalid lineage or cache key");
	json_t *doc = json_pack("{s:s, s:s}", "lineage", lineage, "key", key);
	return publish_json(c, c->linfd, "lineage", name, doc, err);
}

/* Visit every record file: fn gets it open and locked with `lock_op`, still linked. */
static int
records_walk(struct sv_cache *c, int lock_op,
             int (*fn)(struct sv_cache *c, const char *name, int fd, void *data), void *data,
             struct kiln_err *err)
{
	int dfd = openat(c->recfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kiln_err_set(err, errno, "open %s/records", c->path);
	DIR *d = fdopendir(dfd);
	if (!d) {
		int e = errno;
		close(dfd);
		return kiln_err_set(err, e, "open %s/records", c->path);
	}
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_close_ int fd =
		        openat(c->recfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue; /* pruned meanwhile */
		if (flock(fd, lock_op) < 0)
			continue; /* busy (LOCK_NB) */
		if (!still_linked(c->recfd, de->d_name, fd))
			continue;
		r = fn(c, de->d_name, fd, data);
		if (r < 0)
			break;
	}
	closedir(d);
	return r < 0 ? r : 0;
}

struct list_ctx {
	int (*fn)(void *data, const struct sv_cache_entry *e);
	void *data;
};

static int
list_one(struct sv_cache *c, const char *name, int fd, void *data)
{
	struct list_ctx *l = data;
	json_t *doc = read_json_fd(fd);
	struct sv_cache_entry e;
	int r = 0;
	if (record_parse(doc, name, fd, &e))
		r = l->fn(l->data, &e);
	json_decref(doc);
	return r;
}

int
sv_cache_list(struct sv_cache *c, int (*fn)(void *data, const struct sv_cache_entry *e), void *data,
              struct kiln_err *err)
{
	struct list_ctx l = {.fn = fn, .data = data};
	return records_walk(c, LOCK_SH, list_one, &l, err);
}

struct prune_ctx {
	bool (*fn)(void *data, const struct sv_cache_entry *e);
	void *data;
	size_t removed;
};

static int
prune_one(struct sv_cache *c, const char *name, int fd, void *data)
{
	struct prune_ctx *p = data;
	json_t *doc = read_json_fd(fd);
	struct sv_cache_entry e;
	/* Unreadable records are garbage whatever the predicate says. */
	bool drop = !record_parse(doc, name, fd, &e) || p->fn(p->data, &e);
	json_decref(doc);
	if (drop && unlinkat(c->recfd, name, 0) == 0)
		p->removed++;
	return 0;
}

/* Lineage entries whose record is gone name nothing; a build racing this rewrites its
 * entry after its record, so at worst it loses one incremental run. */
static void
lineage_sweep(struct sv_cache *c)
{
	int fd = openat(c->linfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *lineage = kiln_xasprintf("sha256:%s", de->d_name);
		char key[KILN_DIGEST_HEX_LEN + 1];
		struct kiln_err e = KILN_ERR_INIT;
		int r = sv_cache_lineage_get(c, lineage, key, &e);
		kiln_err_release(&e);
		struct stat st;
		if (r == 0 && (!key[0] || fstatat(c->recfd, key + 7, &st, 0) < 0))
			unlinkat(c->linfd, de->d_name, 0);
	}
	closedir(d);
}

int
sv_cache_prune(struct sv_cache *c, bool (*fn)(void *data, const struct sv_cache_entry *e),
               void *data, size_t *ret_removed, struct kiln_err *err)
{
	struct prune_ctx p = {.fn = fn, .data = data};
	int r = records_walk(c, LOCK_EX | LOCK_NB, prune_one, &p, err);
	if (ret_removed)
		*ret_removed = p.removed;
	if (r >= 0 && p.removed)
		lineage_sweep(c);
	return r;
}

int
sv_cache_record_get(struct sv_cache *c, const char *key, json_t **ret, struct kiln_err *err)
{
	*ret = NULL;
	const char *hex = key_hex(key);
	if (!hex)
		return kiln_err_invalid(err, "invalid cache key `%s`", key ? key : "");
	_cleanup_close_ int fd = openat(c->recfd, hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return kiln_err_set(err, errno, "open cache record %s", key);
	}
	int r = lock_fd(fd, LOCK_SH);
	if (r < 0)
		return kiln_err_set(err, -r, "lock cache record %s", key);
	json_t *doc = read_json_fd(fd);
	struct sv_cache_entry e;
	if (!record_parse(doc, hex, fd, &e)) {
		json_decref(doc);
		return 0;
	}
	*ret = doc;
	return 0;
}

int
sv_cache_record_import(struct sv_cache *c, const char *key, const char *result,
                       const char *identity, const char *description, const json_t *recipe,
                       bool (*exists)(void *data, const char *result), void *exists_data,
                       struct kiln_err *err)
{
	struct sv_cache_put p = {.key = key,
	                         .result = result,
	                         .identity = identity,
	                         .description = description,
	                         .recipe = recipe};
	_cleanup_free_ char *winner = NULL;
	int fd = -1;
	int r = sv_cache_put(c, &p, exists, exists_data, &winner, &fd, err);
	if (r < 0)
		return r;
	close(fd);
	/* So --explain on this machine compares a miss with the imported step, unless it
	 * has a history of its own. Only an explanation is at stake: errors are dropped. */
	if (identity && recipe) {
		struct kiln_err serr = KILN_ERR_INIT;
		json_t *known = NULL;
		if (sv_cache_step_get(c, identity, &known, &serr) == 0 && !known)
			sv_cache_step_set(c, identity, recipe, &serr);
		json_decref(known);
		kiln_err_release(&serr);
	}
	return r == 0 ? 1 : 0;
}
