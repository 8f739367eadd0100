/*
 * Internal to ops/: the file op (COPY, ADD, WORKDIR, heredoc files), BuildKit's FileOp.
 *
 * Calling sequence (from the file vertex's run callback, inputs already mounted):
 *
 *	int srcs[] = {dest_fd, ctx_fd, stage_fd};      // index = the def's "input" numbers
 *	struct ops_file_env env = OPS_FILE_ENV_INIT;
 *	env.cancel_fd = fd;                            // optional
 *	if (ops_file_run(v->def, dest_fd, srcs, 3, &env, &err) < 0)
 *		...the destination is partly written: discard the snapshot...
 *
 * and for the cache key of a vertex that copies from a local context:
 *
 *	struct ops_stat_index *idx;                    // once per build
 *	ops_stat_index_open("<root>/cache/statindex", &idx, &err);
 *	...per copy action reading the context (any thread):
 *	ops_file_content_digest(action, ctx_fd, idx, &digest, &err);
 *	...at the end of the build:
 *	ops_stat_index_save(idx, &err);
 *	ops_stat_index_free(idx);
 *
 * def is {"actions": [...]}, the actions of frontend/convert.c's top comment, run in order:
 *   copy   {"input","src","dest","follow_symlinks","dir_contents_only","allow_wildcard",
 *           "allow_empty_wildcard","create_dest_path","chown":{"user","group"},
 *           "mode" (integer, or a symbolic string like "u+x,g-w"),"unpack","link",
 *           "parents","exclude":[patterns]}
 *   mkdir  {"path","mode","parents","chown"}
 *   mkfile {"path","mode","data"}
 * Every destination path is resolved inside dest_rootfd (symlinks in the destination never
 * lead out of it); every source path inside its input's root. Source input 0 is the
 * destination itself (src_rootfds[0] is ignored; dest_rootfd is read).
 *
 * Semantics (BuildKit's, where it has one):
 * - Copies keep uid/gid, mode, xattrs and mtimes unless chown/mode say otherwise. (BuildKit
 *   receives a local context as 0:0: the local source's snapshot should own its files so.)
 * - chown: a numeric user without a group gets gid = uid; a name gets its passwd uid and
 *   gid; a group replaces the gid. Names come from the destination's /etc/passwd and
 *   /etc/group; an unknown name is an error (BuildKit quietly uses 0).
 * - mode: an integer applies to every copied file and directory; a symbolic mode is
 *   applied to each one's own mode (X: directories, or files with some x bit).
 * - unpack: a regular source that is a tar (plain, gzip, bzip2, xz or zstd; detected by
 *   content) is extracted into the destination as a directory by snapshot/apply.c (every
 *   entry inside it; `.wh.` entries delete as in a layer); anything else is copied.
 * - link: copies exactly as without it here; the frontend makes a --link copy on scratch
 *   and merges it onto the stage with a merge vertex (ops/merge.c).
 * - exclude: patterns match paths relative to a copied directory, and a wildcard match by
 *   its name; an excluded directory is skipped unless a "!" exception might re-include
 *   something below it (then it is walked, and kept only if something was).
 * - parents: the matched path below dest, or the part after a "/./" pivot in "src".
 */
#ifndef KILN_OPS_FILE_H
#define KILN_OPS_FILE_H

#include "base/base.h"

#include <sys/stat.h>

struct ops_copy_manifest;

struct ops_file_env {
	/* Readable once the build is cancelled: the op stops between files with -ECANCELED.
	 * -1: never. */
	int cancel_fd;
	/* Optional: every entry the copies write (or keep, below) is added here, by its
	 * destination path, with its source's stat. */
	struct ops_copy_manifest *record;
	/*
	 * Optional, the incremental copy: the destination is a hard-link clone of what these
	 * very actions made on the same parent, and `prev` is what that run recorded. An
	 * entry whose source is unchanged since (ops_copy_entry_same) is kept as it is; one
	 * that changed is unlinked and written anew (its old inode belongs to the committed
	 * snapshot), as the full copy would. What a clone cannot follow fails with -ESTALE
	 * (err says why) so the caller copies in full: a source that changed type or is
	 * gone, a changed file with several hard links.
	 */
	const struct ops_copy_manifest *prev;
	size_t *ret_changed; /* optional, with prev: the entries written rather than kept */
};
#define OPS_FILE_ENV_INIT                                                                          \
	{                                                                                          \
		.cancel_fd = -1                                                                    \
	}

/*
 * Run the def's actions on the writable tree dest_rootfd. src_rootfds[i] is a directory fd
 * of input i's root (read-only), nsrc of them; an action naming an input >= nsrc fails.
 * env may be NULL. Returns 0, or -errno with err set, e.g.
 *   `COPY failed: "/foo": not found` (a source that matches nothing),
 *   `chown: unknown user "bob" in the destination's /etc/passwd`.
 * On failure the destination is partly written; the caller discards it.
 */
int ops_file_run(const json_t *def, int dest_rootfd, const int *src_rootfds, size_t nsrc,
                 const struct ops_file_env *env, struct kiln_err *err);

/* ---- copy manifests: what a copy read, for an incremental rerun ---- */

/*
 * Per destination path, the stat of the source entry a copy wrote there. An entry is
 * "the same" as a source stat when type, mode, owner, size, mtime, ctime, device and
 * inode all match, as the stat index trusts a digest; ctime cannot be set back, so a
 * changed file always differs. Entries whose ctime was within a second of the start of
 * the copy are stored as racy (a later write in the same timestamp tick could go unseen)
 * and never match. Saved compactly (a fixed 72-byte record and the path per entry, a
 * SHA-256 trailer), sorted by path for lookups.
 */
#define OPS_COPY_CREATED 1u /* a directory the copy created (its metadata was set) */
#define OPS_COPY_RACY    2u
struct ops_copy_entry {
	uint64_t dev, ino, size;
	int64_t mtime_sec, ctime_sec;
	uint32_t mtime_nsec, ctime_nsec;
	uint32_t mode, uid, gid, flags;
	const char *path; /* absolute in the destination root */
};

struct ops_copy_manifest *ops_copy_manifest_new(void);
void ops_copy_manifest_free(struct ops_copy_manifest *m);
void ops_copy_manifest_add(struct ops_copy_manifest *m, const char *path, const struct stat *st,
                           uint32_t flags);
size_t ops_copy_manifest_count(const struct ops_copy_manifest *m);
/* The bytes of the regular files in it (a copy's diff holds those and no others). */
uint64_t ops_copy_manifest_bytes(const struct ops_copy_manifest *m);
/* The index of `path` in a loaded (sorted) manifest, -1 if absent. */
ssize_t ops_copy_manifest_find(const struct ops_copy_manifest *m, const char *path);
const struct ops_copy_entry *ops_copy_manifest_at(const struct ops_copy_manifest *m, size_t i);
bool ops_copy_entry_same(const struct ops_copy_entry *e, const struct stat *st);
/* Sort and write atomically (temp, rename). -EEXIST (err set) when two entries share a
 * path: such a copy cannot be rerun incrementally. */
int ops_copy_manifest_save(struct ops_copy_manifest *m, const char *path, struct kiln_err *err);
/* -ENOENT when missing, -EUCLEAN when damaged (err set either way). */
int ops_copy_manifest_load(const char *path, struct ops_copy_manifest **ret, struct kiln_err *err);
static inline void
ops_copy_manifest_freep(struct ops_copy_manifest **m)
{
	ops_copy_manifest_free(*m);
}

/* ---- content digests for cache keys ---- */

/*
 * A persistent index (dev, ino, size, mtime, ctime) -> SHA-256 of a regular file's content,
 * so unchanged files are not re-read build after build. Thread-safe (one lock). Entries
 * for files changed within a second of the save are not trusted from the saved file (a
 * later write in the same timestamp tick would go unseen).
 */
struct ops_stat_index;

/* Map the index at `path`: a missing, damaged or foreign file (an old text index, say)
 * gives an empty index; fails only when the file exists but cannot be read. */
int ops_stat_index_open(const char *path, struct ops_stat_index **ret, struct kiln_err *err);
/* Write it back atomically (temp file, fsync, rename) if a file was read since the open,
 * merged with the entries of the file as it is now (a concurrent build's). */
int ops_stat_index_save(struct ops_stat_index *idx, struct kiln_err *err);
/* Tests: stamp later saves as made at `now` (seconds since the epoch), as if the save came
 * later than it did; 0 restores the clock. */
void ops_stat_index_set_save_time(struct ops_stat_index *idx, int64_t now);
void ops_stat_index_free(struct ops_stat_index *idx);
/* The digest of the regular file `fd` (open for reading, or O_PATH: then opened only when
 * it must be read) whose stat is `st`: from the index when the stat matches, otherwise
 * read (and recorded). idx may be NULL (always read). */
int ops_stat_index_file_digest(struct ops_stat_index *idx, int fd, const struct stat *st,
                               struct kiln_digest *ret, struct kiln_err *err);
/* The digest of a file whose stat is `st` from the index alone: true on a hit (counted as
 * one), false when it must be read. Lets a walk of an unchanged tree stat without opening. */
bool ops_stat_index_lookup(struct ops_stat_index *idx, const struct stat *st,
                           struct kiln_digest *ret);
struct ops_stat_index_stats {
	uint64_t hits;   /* digests answered from the index */
	uint64_t reads;  /* files read and hashed */
	uint64_t stored; /* entries in the index */
};
void ops_stat_index_get_stats(struct ops_stat_index *idx, struct ops_stat_index_stats *ret);

/*
 * The names in a directory but "." and "..", sorted by strcmp, read from dirfd's current
 * position (hand it a freshly opened directory). Returns 0 or -errno (ret then empty).
 */
struct ops_dir_names {
	char **v; /* n names then NULL; they point into buf */
	size_t n;
	char *buf;
};
int ops_dir_names_read(int dirfd, struct ops_dir_names *ret);
void ops_dir_names_release(struct ops_dir_names *dn);
static inline void
ops_dir_names_releasep(struct ops_dir_names *dn)
{
	ops_dir_names_release(dn);
}
#define _cleanup_dir_names_ _cleanup_(ops_dir_names_releasep)

/*
 * lstat (fstatat with AT_SYMLINK_NOFOLLOW) of many names in one directory, on the calling
 * thread and one helper thread (started on first use, joined by _free). Not for use from
 * two threads at once; one batch at a time.
 */
struct ops_stat_batch;
struct ops_stat_batch *ops_stat_batch_new(void);
/* st[i] and errs[i] (0 or the errno of the failed stat) for each names[i]. b may be NULL
 * (then all on this thread). */
void ops_stat_batch_run(struct ops_stat_batch *b, int dirfd, char *const *names, size_t n,
                        struct stat *st, int *errs);
void ops_stat_batch_free(struct ops_stat_batch *b);
static inline void
ops_stat_batch_freep(struct ops_stat_batch **b)
{
	ops_stat_batch_free(*b);
}
#define _cleanup_stat_batch_ _cleanup_(ops_stat_batch_freep)

/*
 * The digest of exactly what one copy action reads from src_rootfd (after wildcards,
 * follow_symlinks and excludes, as ops_file_run would select them): for every file, in a
 * fixed order, its path relative to the copy's source, type, mode, uid/gid, symlink target
 * and content digest; never mtimes. A source that matches nothing fails as ops_file_run
 * would (BuildKit: `failed to compute cache key: "/foo": not found`). idx may be NULL.
 */
int ops_file_content_digest(const json_t *action, int src_rootfd, struct ops_stat_index *idx,
                            struct kiln_digest *ret, struct kiln_err *err);

/* Copy a file's data: reflink, then copy_file_range, then read/write. `st` remembers which
 * ways failed for good between the same two filesystems, so a tree copy stops retrying
 * them (zero-initialise it per copy). */
struct ops_copy_state {
	bool no_clone, no_cfr;
};
int ops_copy_data(struct ops_copy_state *st, int in, int out, off_t size);
/* The xattrs of `in` onto `out`, except overlayfs's own; best effort. */
void ops_copy_xattrs(int in, int out);

#endif
