/*
 * kiln snapshot: the on-disk store of unpacked layers and container root filesystems.
 *
 * Calling sequence:
 *
 *	struct snap_store_opts o = SNAP_STORE_OPTS_INIT;      // .driver = AUTO/OVERLAY/NATIVE
 *	struct snap_store *s;
 *	snap_store_open(kiln_root, &o, &s, &err);            // <root>/snapshots/<driver>/
 *	if (snap_store_notice(s)) ...tell the user (overlayfs missing, using native)...
 *
 *	_cleanup_free_ char *base = NULL, *top = NULL;
 *	snap_layer_apply(s, NULL, fd0, media_type0, diff_id0, &base, &err);   // chain IDs
 *	snap_layer_apply(s, base, fd1, media_type1, diff_id1, &top, &err);
 *
 *	struct snap_mount *m;
 *	snap_prepare(s, top, &m, &err);                      // read-write rootfs over `top`
 *	...run a container in snap_mount_path(m)...
 *	snap_commit(m, "my-step", &err);                     // unmounts; its diff is the upper
 *	snap_mount_release(m);                               // always; discards if not committed
 *
 *	snap_diff_walk(s, "my-step", fn, data, &err);        // changed paths, OCI whiteouts
 *	snap_store_free(s);
 *
 * Store layout (one per driver, since their diffs differ): `diffs/<id>/fs` holds a diff
 * (overlay: the upper dir of a layer or a commit, with overlay whiteouts; native: a full
 * copy of the tree), `meta/<name>` names a committed snapshot and its parent, `l/<short>`
 * are short symlinks to diff dirs for mounts of long chains, `active/` holds prepared
 * snapshots and `tmp/` half-built ones; both are cleaned when a store is opened while no
 * other handle uses it. Committed snapshots appear by rename only, so a killed process
 * never leaves half of one; `pending/` marks commit diffs between their publication (or
 * removal) and their record's, so that the same lone open removes a diff a killed process
 * left unnamed by reading those markers only, not every record. An overlay layer diff is unpacked
 *once per diff_id and shared by every chain that has it; a native tree depends on its parents, so
 *once per chain. Overlay chains mount up to overlayfs' 500 layers (absolute lowerdirs, then l/
 *links, then fsconfig "lowerdir+" on Linux 6.8+ past ~350 layers). snap_remove() deletes a snapshot
 *nothing else needs.
 *
 * A store handle may be used from several threads; each snap_mount from one at a time.
 */
#ifndef KILN_SNAP_H
#define KILN_SNAP_H

#include "base/base.h"

#include <sys/stat.h>

enum snap_driver {
	SNAP_DRIVER_AUTO = 0, /* overlayfs when a probe mount works, else native + a notice */
	SNAP_DRIVER_OVERLAY,
	SNAP_DRIVER_NATIVE, /* copies the parent tree; works on any filesystem */
};

/* "auto", "overlayfs" (or "overlay"), "native", as in --snapshotter=; -EINVAL otherwise. */
int snap_driver_parse(const char *s, enum snap_driver *ret, struct kiln_err *err);
const char *snap_driver_name(enum snap_driver d);

/* ---- the store ---- */

struct snap_store;
struct snap_store_opts {
	enum snap_driver driver;
};
#define SNAP_STORE_OPTS_INIT                                                                       \
	{                                                                                          \
		.driver = SNAP_DRIVER_AUTO                                                         \
	}

/*
 * Open (creating) the store under `<kiln_root>/snapshots/`. `opts` may be NULL. With AUTO,
 * a probe overlay mount decides; if it fails, the native driver is used and
 * snap_store_notice() says why. Stale tmp/ and active/ entries (and their mounts), and
 * commit diffs a killed process left without a record, are removed when no other handle
 * has the store open. The cost does not grow with the number of snapshots.
 */
int snap_store_open(const char *kiln_root, const struct snap_store_opts *opts,
                    struct snap_store **ret, struct kiln_err *err);
void snap_store_free(struct snap_store *s);
enum snap_driver snap_store_driver(const struct snap_store *s);
/* NULL, or a message for the user about the driver choice (owned by the store). */
const char *snap_store_notice(const struct snap_store *s);
/* The store directory, `<kiln_root>/snapshots/<driver>` (owned by the store). */
const char *snap_store_path(const struct snap_store *s);

/* Snapshot names: 1-200 of [A-Za-z0-9._:+-], not starting with '.'. */
bool snap_name_valid(const char *name);
/* Whether a committed snapshot `name` exists. */
bool snap_exists(struct snap_store *s, const char *name);
/* The parent of committed snapshot `name` into *ret_parent (NULL for a base; caller
 * frees). -ENOENT if there is no such snapshot. */
int snap_parent(struct snap_store *s, const char *name, char **ret_parent, struct kiln_err *err);

/*
 * Remove committed snapshot `name` and, unless another snapshot shares it (an overlay
 * layer diff), its diff. -EBUSY if a committed snapshot has it as parent or an active
 * snapshot or view was started on it; -ENOENT if there is none.
 */
int snap_remove(struct snap_store *s, const char *name, struct kiln_err *err);

/* ---- layers ---- */

/* OCI chain ID: diff_id for a base layer, else sha256(parent_chain + " " + diff_id). */
char *snap_chain_id(const char *parent_chain, const char *diff_id);

/*
 * Unpack the layer tar read from `layer_fd` (uncompressed, gzip or zstd as `media_type`
 * says; NULL media type = detect) on top of committed snapshot `parent` (NULL for a base
 * layer), unless the chain already exists. The result is committed under its chain ID,
 * returned in *ret_name (caller frees). `diff_id` ("sha256:...") is the digest of the
 * uncompressed tar, from the image config; the layer must hash to it. On failure
 * nothing is left in the store.
 */
int snap_layer_apply(struct snap_store *s, const char *parent, int layer_fd, const char *media_type,
                     const char *diff_id, char **ret_name, struct kiln_err *err);
int snap_layer_apply_path(struct snap_store *s, const char *parent, const char *layer_path,
                          const char *media_type, const char *diff_id, char **ret_name,
                          struct kiln_err *err);

/* ---- active snapshots and views ---- */

struct snap_mount;

/*
 * A fresh read-write snapshot on top of committed `parent` (NULL: empty). Overlay: an
 * overlayfs mount of the parent chain (lowerdirs) with a new upper and work dir; native: a
 * copy of the parent tree. The tree is at snap_mount_path().
 */
int snap_prepare(struct snap_store *s, const char *parent, struct snap_mount **ret,
                 struct kiln_err *err);
/*
 * snap_prepare whose upper dir starts as a hard-link clone of committed snapshot `like`
 * (which must have the same parent): the tree looks as `like` does, at the cost of one
 * link per file. The cloned files' inodes are shared with `like`, which must never
 * change: replace such a file (unlink, create) rather than write into it. Overlay only
 * (-EOPNOTSUPP on native). On failure nothing is left in the store.
 */
int snap_prepare_clone(struct snap_store *s, const char *parent, const char *like,
                       struct snap_mount **ret, struct kiln_err *err);
/* A read-only view of committed snapshot `name` (overlay: a read-only mount; native: the
 * committed tree itself, which the caller must not modify). */
int snap_view(struct snap_store *s, const char *name, struct snap_mount **ret,
              struct kiln_err *err);
/* The root of the snapshot's tree (owned by the mount). */
const char *snap_mount_path(const struct snap_mount *m);
/* The overlay upper dir of an active snapshot (native: its tree); NULL for a view. */
const char *snap_mount_upper(const struct snap_mount *m);
/*
 * Unmount and commit an active snapshot as `name` (-EEXIST if taken); it becomes
 * read-only: it can only be a parent or a view. The mount must still be released.
 */
int snap_commit(struct snap_mount *m, const char *name, struct kiln_err *err);
/* The snapshot whose diff is this snapshot's layer: the merge of a COPY --link sets the
 * link snapshot (its files on scratch), so its layer is the same whatever is below. */
#define SNAP_LABEL_LAYER "layer"

/*
 * Labels: small facts a committed snapshot carries for its users, kept in its meta record
 * (so they appear with the commit, atomically, and go with snap_remove). Set on an active
 * snapshot before snap_commit; KEY is 1-64 of [a-z0-9.-], VALUE one line. snap_label gives
 * the last value set for KEY (caller frees), -ENOENT (err untouched) when none, or -errno
 * for no such snapshot.
 */
int snap_mount_set_label(struct snap_mount *m, const char *key, const char *value,
                         struct kiln_err *err);
int snap_label(struct snap_store *s, const char *name, const char *key, char **ret,
               struct kiln_err *err);
/* Unmount (MNT_DETACH), discard an uncommitted upper, free. Accepts NULL. */
void snap_mount_release(struct snap_mount *m);
static inline void
snap_mount_releasep(struct snap_mount **m)
{
	snap_mount_release(*m);
}
#define _cleanup_snap_mount_ _cleanup_(snap_mount_releasep)

/* ---- applying a tar into a directory ---- */

enum snap_whiteouts {
	SNAP_WHITEOUTS_OVERLAY, /* .wh.X -> char device 0/0, .wh..wh..opq -> opaque xattr */
	SNAP_WHITEOUTS_DELETE,  /* delete X / the lower contents of the directory */
};
struct snap_apply_opts {
	const char *media_type; /* NULL: detect none/gzip/zstd */
	enum snap_whiteouts whiteouts;
	const char *diff_id;             /* if set, the uncompressed tar must hash to it */
	struct kiln_digest *ret_diff_id; /* if set, receives the uncompressed tar's digest */
};
#define SNAP_APPLY_OPTS_INIT                                                                       \
	{                                                                                          \
		.media_type = NULL, .whiteouts = SNAP_WHITEOUTS_OVERLAY                            \
	}

/*
 * Extract the tar read from `tar_fd` into directory `rootfd`, hashing the uncompressed
 * stream (checked against opts->diff_id; a mismatch fails after extraction, so the caller
 * discards the tree). Every entry is resolved
 * inside the root: ".." and absolute names stay inside, symlinks met on the way resolve
 * inside, an existing symlink is replaced rather than written through, hard links name
 * entries inside, trusted.overlay.* / user.overlay.* xattrs are dropped. Errors: a
 * whiteout of "." or "..", a hard link whose target is missing or a directory, a
 * malformed or unsupported archive. On failure the tree is partly written.
 */
int snap_tar_apply_at(int rootfd, int tar_fd, const struct snap_apply_opts *opts,
                      struct kiln_err *err);

/*
 * The hard-link clone of the tree in directory `srcfd` into the empty directory `dstfd`
 * (one filesystem): directories made anew with owner, mode, xattrs (overlay's opaque
 * markers included) and times; regular files hard-linked, so they share the source's
 * inodes; symlinks, devices, fifos and whiteouts recreated as they are; the root's own
 * metadata copied last. On failure dstfd is partly filled.
 */
int snap_clone_tree_at(int srcfd, int dstfd, struct kiln_err *err);

/* ---- the diff of a committed snapshot ---- */

enum snap_change_kind {
	SNAP_CHANGE_ADD,      /* added or changed: file, dir, symlink, device, fifo */
	SNAP_CHANGE_WHITEOUT, /* deleted; oci_name is "dir/.wh.NAME" */
	SNAP_CHANGE_OPAQUE,   /* dir's lower contents hidden; oci_name is "dir/.wh..wh..opq" */
};
struct snap_change {
	enum snap_change_kind kind;
	const char *path;     /* "dir/name", relative, no leading slash */
	const char *oci_name; /* the name to write in a layer tar */
	const struct stat *st;
	int dirfd;        /* parent directory in the diff, for reading content ... */
	const char *name; /* ... with this base name (openat(dirfd, name, O_NOFOLLOW)) */
};
/* Return < 0 (with err set) to stop the walk with that value. */
typedef int (*snap_walk_fn)(const struct snap_change *c, void *data, struct kiln_err *err);

/*
 * Walk the diff of committed snapshot `name` in a stable order (parents first, names
 * sorted bytewise; an opaque marker right after its directory). Overlay: the upper dir.
 * Native: the tree compared with the parent's tree (size, mode, owner, mtime, link
 * target, device).
 */
int snap_diff_walk(struct snap_store *s, const char *name, snap_walk_fn fn, void *data,
                   struct kiln_err *err);
/* The same walk over any overlay upper directory. */
int snap_upper_walk_at(int upperfd, snap_walk_fn fn, void *data, struct kiln_err *err);

#endif
