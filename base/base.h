/*
 * kiln base: the small primitives every other module stands on.
 *
 * Calling sequence, in the shape every kiln module follows:
 *
 *	struct kiln_err err = KILN_ERR_INIT;
 *	_cleanup_buf_ struct kiln_buf out = KILN_BUF_INIT;
 *	if (some_call(..., &err) < 0) {
 *		kiln_err_wrap(&err, "while doing X");
 *		...only cmd/ prints: kiln_err_format(&err) ...
 *	}
 *	kiln_err_release(&err);
 *
 * - Errors: fallible functions return >= 0 on success and -errno on failure, and fill
 *   the `struct kiln_err *` they take last (left untouched on success).
 * - Allocation never fails: kiln_x* abort on out-of-memory and check size products.
 * - kiln_buf is a strbuf: never NULL, always NUL-terminated; detach hands it over.
 * - kiln_strv is a NULL-terminated string vector for argv/env.
 * - kiln_arena owns many small allocations (parse trees, graphs) freed in one call.
 * - kiln_digest is a SHA-256 digest (OpenSSL), printable as "sha256:<hex>".
 * - kiln_path_* resolve untrusted paths inside a root directory fd, never outside it.
 *
 * This folder includes nothing above it.
 */
#ifndef KILN_BASE_H
#define KILN_BASE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>

#define KILN_PRINTF(fmt_idx, args_idx) __attribute__((format(printf, fmt_idx, args_idx)))
#define KILN_ARRAY_SIZE(a)             (sizeof(a) / sizeof((a)[0]))

/* ---- allocation: abort on OOM, overflow-checked products ---- */

void *kiln_xmalloc(size_t size);
void *kiln_xcalloc(size_t nmemb, size_t size);
void *kiln_xrealloc(void *ptr, size_t size);
void *kiln_xreallocarray(void *ptr, size_t nmemb, size_t size);
char *kiln_xstrdup(const char *s);
char *kiln_xstrndup(const char *s, size_t n);
char *kiln_xasprintf(const char *fmt, ...) KILN_PRINTF(1, 2);
/* Grow *arr (of *alloc elements of elem_size) so it holds at least `need` elements. */
void kiln_xgrow(void **arr, size_t *alloc, size_t need, size_t elem_size);
#define KILN_GROW(arr, alloc, need) kiln_xgrow((void **)&(arr), &(alloc), (need), sizeof(*(arr)))

/* ---- scope-bound cleanup (systemd style) ---- */

#define _cleanup_(f) __attribute__((cleanup(f)))
static inline void
kiln_freep(void *p)
{
	free(*(void **)p);
}
/* Close *fd if open and leave it -1, so a second call (an explicit close before the
 * scope's cleanup runs) cannot close a number another thread has opened since. */
static inline void
kiln_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
		*fd = -1;
	}
}
static inline void
kiln_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_free_   _cleanup_(kiln_freep)
static inline void
kiln_json_decrefp(json_t **j)
{
	if (*j)
		json_decref(*j);
}
#define _cleanup_json_ _cleanup_(kiln_json_decrefp)
#define _cleanup_close_  _cleanup_(kiln_closep)
#define _cleanup_fclose_ _cleanup_(kiln_fclosep)

/* Hand ownership over: returns the value and leaves the variable empty. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _taken = (p);                                                        \
		(p) = NULL;                                                                        \
		_taken;                                                                            \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _taken = (fd);                                                                 \
		(fd) = -1;                                                                         \
		_taken;                                                                            \
	})

/* ---- errors ---- */

/*
 * An error: the code (a positive errno value), a message, and where the error is in a
 * user's file (Dockerfile, .dockerignore) when it is about one. `sys` says the code is an
 * operating-system error whose strerror belongs in the text.
 */
struct kiln_err {
	int code;
	bool sys;
	char *msg;
	char *file; /* NULL unless the error is about a line of a user's file */
	int line;   /* 1-based first line, 0 when unknown */
	int line_end;
};
#define KILN_ERR_INIT {0}

/* Record a system error `errnum` with context; returns -errnum. */
int kiln_err_set(struct kiln_err *err, int errnum, const char *fmt, ...) KILN_PRINTF(3, 4);
/* Record an error in the user's input (EINVAL, no strerror); returns -EINVAL. */
int kiln_err_invalid(struct kiln_err *err, const char *fmt, ...) KILN_PRINTF(2, 3);
/* Record an error at FILE:LINE[-END] of a user's file (EINVAL); returns -EINVAL. */
int kiln_err_at(struct kiln_err *err, const char *file, int line, int line_end, const char *fmt,
		...) KILN_PRINTF(5, 6);
/* Prefix context to an already-filled error ("ctx: old"); returns -err->code. */
int kiln_err_wrap(struct kiln_err *err, const char *fmt, ...) KILN_PRINTF(2, 3);
/* Attach a file location to an error that has none yet; returns -err->code. */
int kiln_err_locate(struct kiln_err *err, const char *file, int line, int line_end);
/* "FILE:LINE: msg" or "msg: strerror"; the caller frees the string. */
char *kiln_err_format(const struct kiln_err *err);
void kiln_err_release(struct kiln_err *err);

/* ---- growable string buffer (git strbuf rules) ---- */

extern char kiln_buf_empty[];
struct kiln_buf {
	size_t alloc;
	size_t len;
	char *buf;
};
#define KILN_BUF_INIT {.alloc = 0, .len = 0, .buf = kiln_buf_empty}

void kiln_buf_init(struct kiln_buf *sb, size_t hint);
void kiln_buf_release(struct kiln_buf *sb);
char *kiln_buf_detach(struct kiln_buf *sb, size_t *len);
void kiln_buf_grow(struct kiln_buf *sb, size_t extra);
void kiln_buf_setlen(struct kiln_buf *sb, size_t len);
#define kiln_buf_reset(sb) kiln_buf_setlen((sb), 0)
void kiln_buf_add(struct kiln_buf *sb, const void *data, size_t len);
void kiln_buf_addstr(struct kiln_buf *sb, const char *s);
void kiln_buf_addch(struct kiln_buf *sb, int c);
void kiln_buf_addf(struct kiln_buf *sb, const char *fmt, ...) KILN_PRINTF(2, 3);
void kiln_buf_vaddf(struct kiln_buf *sb, const char *fmt, va_list ap);
/* Append a UTF-8 encoding of code point `rune` (invalid ones become U+FFFD). */
void kiln_buf_add_rune(struct kiln_buf *sb, uint32_t rune);
/* Read a whole file (fd or path); returns 0 or -errno. */
int kiln_buf_read_fd(struct kiln_buf *sb, int fd, struct kiln_err *err);
int kiln_buf_read_file(struct kiln_buf *sb, const char *path, struct kiln_err *err);
static inline void
kiln_buf_releasep(struct kiln_buf *sb)
{
	kiln_buf_release(sb);
}
#define _cleanup_buf_ _cleanup_(kiln_buf_releasep)

/* ---- string vector (argv/env), always NULL-terminated ---- */

struct kiln_strv {
	char **v;
	size_t n;
	size_t alloc;
};
#define KILN_STRV_INIT {0}

void kiln_strv_push(struct kiln_strv *sv, const char *s);
void kiln_strv_push_take(struct kiln_strv *sv, char *s);
void kiln_strv_pushf(struct kiln_strv *sv, const char *fmt, ...) KILN_PRINTF(2, 3);
void kiln_strv_release(struct kiln_strv *sv);
char **kiln_strv_detach(struct kiln_strv *sv);
/* Borrowed view of the NULL-terminated array (never NULL). */
char *const *kiln_strv_get(struct kiln_strv *sv);
static inline void
kiln_strv_releasep(struct kiln_strv *sv)
{
	kiln_strv_release(sv);
}
#define _cleanup_strv_ _cleanup_(kiln_strv_releasep)

/* ---- arena: many small allocations freed at once ---- */

struct kiln_arena;
struct kiln_arena *kiln_arena_new(void);
void kiln_arena_free(struct kiln_arena *a);
void *kiln_arena_alloc(struct kiln_arena *a, size_t size); /* zeroed, 16-byte aligned */
/* The same, not zeroed: for callers that write every byte (or malloc's stand-ins). */
void *kiln_arena_alloc_uninit(struct kiln_arena *a, size_t size);
void *kiln_arena_array(struct kiln_arena *a, size_t nmemb, size_t size);
char *kiln_arena_strdup(struct kiln_arena *a, const char *s);
char *kiln_arena_strndup(struct kiln_arena *a, const char *s, size_t n);
char *kiln_arena_printf(struct kiln_arena *a, const char *fmt, ...) KILN_PRINTF(2, 3);
static inline void
kiln_arena_freep(struct kiln_arena **a)
{
	kiln_arena_free(*a);
}
#define _cleanup_arena_ _cleanup_(kiln_arena_freep)

/* ---- SHA-256 digests ---- */

#define KILN_DIGEST_HEX_LEN 71 /* "sha256:" + 64 hex, without the NUL */
struct kiln_digest {
	uint8_t bytes[32];
};
struct kiln_sha256; /* streaming context */
struct kiln_sha256 *kiln_sha256_new(void);
void kiln_sha256_update(struct kiln_sha256 *ctx, const void *data, size_t len);
/* Finishes and frees the context. */
void kiln_sha256_final(struct kiln_sha256 *ctx, struct kiln_digest *out);
void kiln_sha256_free(struct kiln_sha256 *ctx);
void kiln_sha256_buf(const void *data, size_t len, struct kiln_digest *out);
/* Writes "sha256:<64 lowercase hex>" and a NUL into out[KILN_DIGEST_HEX_LEN + 1]. */
void kiln_digest_format(const struct kiln_digest *d, char out[KILN_DIGEST_HEX_LEN + 1]);
/* Accepts only "sha256:" + 64 lowercase hex; -EINVAL with a message otherwise. */
int kiln_digest_parse(const char *s, struct kiln_digest *out, struct kiln_err *err);
bool kiln_digest_valid(const char *s);

/* ---- paths ---- */

/* Lexical clean as Go's path.Clean ("" -> "."); the caller frees. */
char *kiln_path_clean(const char *path);
/* Join two slash paths and clean the result; the caller frees. */
char *kiln_path_join(const char *a, const char *b);
/*
 * Open `path` as if `rootfd` were "/": ".." never climbs above it and absolute symlinks
 * resolve inside it (openat2 RESOLVE_IN_ROOT, or an equivalent component walk where
 * openat2 is missing). `flags` are open(2) flags; O_CLOEXEC is always added. With
 * O_CREAT, the last component is created inside the root. Returns an fd or -errno.
 */
int kiln_path_openat_in_root(int rootfd, const char *path, int flags, mode_t mode,
			     struct kiln_err *err);
/* The userspace fallback behind kiln_path_openat_in_root, exposed so tests cover it
 * on kernels that have openat2. Returns an fd or -errno. */
int kiln_path_walk_in_root(int rootfd, const char *path, int flags, mode_t mode);
/* mkdir -p of `path` inside rootfd, each component resolved inside the root; returns an
 * O_DIRECTORY fd of the last directory, or -errno. */
int kiln_path_mkdirat_in_root(int rootfd, const char *path, mode_t mode, struct kiln_err *err);

/* ---- filesystem helpers ---- */

/* The names in a directory (not . or ..), sorted bytewise; returns 0 or -errno. */
int kiln_dir_names(int dirfd, struct kiln_strv *ret);
/* rm -rf of dirfd/name: never follows a symlink and stops with -EBUSY at a mount point
 * instead of deleting through it. A missing name is success. */
int kiln_rm_rf_at(int dirfd, const char *name);
/* The same for everything inside dirfd, keeping dirfd itself. */
int kiln_rm_children(int dirfd);
/* Write all `len` bytes to fd, retrying short writes and EINTR. */
int kiln_write_all(int fd, const void *data, size_t len, struct kiln_err *err);
/* Where an output goes when it is not a plain file: 1 with *fd open for writing (truncated)
 * when dirfd/path is a symlink (/dev/stdout; followed, its target created when missing) or
 * a character device, FIFO or socket (/dev/null), which must be written in place: a temp
 * file renamed over it would replace the link or the device node itself. 0 when it is
 * missing, a regular file or a directory (write a temp file and rename it); -EINVAL for a
 * block device, -errno on failure. */
int kiln_open_in_place(int dirfd, const char *path, int *fd);
/* Replace dirfd/path (AT_FDCWD for plain paths) with `data`: a temp file beside it, fsync,
 * rename. Readers see the old content or the new, never half of it. A device or FIFO
 * (kiln_open_in_place) is written in place instead. */
/*
 * Lazily loaded libraries (registry/curl_lazy.c, registry/archive_lazy.c,
 * base/crypto_lazy.c): kiln defines the calls it makes itself and forwards them to the
 * real library, opened the first time one is called, so a command that never needs it
 * does not pay for loading it. A missing library or call aborts with a message naming
 * it, as the dynamic loader would have at start.
 *
 * A file using the macros lists its calls as X(ret, name, params, args) and has
 *	static struct { <KILN_LAZY_FIELD per call> } real;
 *	static pthread_once_t load_once; static void load(void); (filling `real`)
 */
void *kiln_lazy_open(const char *soname, const char *what);
void *kiln_lazy_sym(void *lib, const char *soname, const char *name);
#define KILN_LAZY_FIELD(ret, name, params, args) ret(*name) params;
#define KILN_LAZY_REAL(name) (pthread_once(&load_once, load), real.name)
#define KILN_LAZY_DEFINE(ret, name, params, args)                                                  \
	ret name params                                                                            \
	{                                                                                          \
		return KILN_LAZY_REAL(name) args;                                                  \
	}
#define KILN_LAZY_DEFINE_VOID(ret, name, params, args)                                             \
	void name params                                                                           \
	{                                                                                          \
		KILN_LAZY_REAL(name) args;                                                         \
	}

/* Paths by (device, inode): the first place a hard-linked file was written, so the next
 * link to the same inode links to it (COPY, layer tars). */
struct kiln_inode_ent {
	dev_t dev;
	ino_t ino;
	char *path; /* NULL: an empty slot */
};
struct kiln_inode_map {
	struct kiln_inode_ent *v; /* open addressing; cap a power of 2 or 0 */
	size_t n, cap;
};
/* The path recorded for (dev, ino), or NULL; borrowed until the next set or clear. */
const char *kiln_inode_map_get(const struct kiln_inode_map *m, dev_t dev, ino_t ino);
/* Record `path` (copied) for (dev, ino), replacing what was there. */
void kiln_inode_map_set(struct kiln_inode_map *m, dev_t dev, ino_t ino, const char *path);
void kiln_inode_map_clear(struct kiln_inode_map *m);
/* A file a command writes for the user (an archive, -o dest=FILE): standard output for
 * "-", a device, FIFO or symlink in place (kiln_open_in_place), else a temp file beside
 * `path` that kiln_output_commit renames over it, so readers never see half of it. */
struct kiln_output {
	int fd;
	const char *path; /* borrowed */
	char *tmp;        /* the temp file; NULL when written in place */
};
#define KILN_OUTPUT_INIT {.fd = -1}
int kiln_output_open(struct kiln_output *o, const char *path, struct kiln_err *err);
/* The temp file (if any) fsync'ed when `durable` and renamed into place. */
int kiln_output_commit(struct kiln_output *o, bool durable, struct kiln_err *err);
/* Close, and remove a temp file that was not committed. Accepts a never-opened output. */
void kiln_output_release(struct kiln_output *o);
int kiln_write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len,
                              mode_t mode, struct kiln_err *err);

/* ---- small string helpers ---- */

static inline bool
kiln_str_eq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}
bool kiln_str_has_prefix(const char *s, const char *prefix);
bool kiln_str_has_suffix(const char *s, const char *suffix);
/* Parse a non-negative decimal integer that must fill the whole string. */
int kiln_parse_u64(const char *s, uint64_t *out);

#endif
