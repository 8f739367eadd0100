/* Internals shared by the snapshot module's files. */
#ifndef KILN_SNAP_INT_H
#define KILN_SNAP_INT_H

#include "snapshot/snap.h"

#include <dirent.h>

#define SNAP_OPAQUE_XATTR "trusted.overlay.opaque"
#define SNAP_WH_PREFIX    ".wh."
#define SNAP_WH_OPAQUE    ".wh..wh..opq"
#define SNAP_WH_META      ".wh..wh."

/* "/proc/self/fd/<dirfd>/<name>": names an entry without following a symlink in its
 * last component when used with l*xattr, and without re-resolving its parents. */
struct snap_fdpath {
	char s[64 + 256];
};
void snap_fdpath(struct snap_fdpath *p, int dirfd, const char *name);

static inline int
snap_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Copy the tree in srcfd into the (empty) directory dstfd, keeping hard links, owners,
 * modes, xattrs, mtimes, devices and symlinks. */
int snap_copy_tree(int srcfd, int dstfd, struct kiln_err *err);
/* Copy the xattrs of one entry (names by dirfd + name, not followed). */
int snap_xattrs_copy(int sdir, const char *sname, int ddir, const char *dname);
/* Owner, mode, xattrs (overlay's own too: opaque markers, origins) and times of sdir/name
 * onto the recreated ddir/name, times last so setting the others does not move them;
 * -errno on failure. */
int snap_meta_copy(int sdir, const char *name, int ddir, const struct stat *st);

/* n random characters of [a-z0-9] and a NUL into out[n + 1]. */
void snap_random_name(char *out, size_t n);

/* A tiny string set (open addressing), for the paths a layer has created. */
struct snap_strset {
	char **slots;
	size_t cap, n;
};
void snap_strset_add(struct snap_strset *set, const char *s);
bool snap_strset_has(const struct snap_strset *set, const char *s);
void snap_strset_release(struct snap_strset *set);

/* The whole-tree diff of a native snapshot against its parent's tree (-1: none). */
int snap_native_diff_walk(int parentfd, int treefd, snap_walk_fn fn, void *data,
                          struct kiln_err *err);

#endif
