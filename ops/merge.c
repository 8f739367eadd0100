/*
 * The merge of COPY --link / ADD --link: BuildKit's MergeOp over [stage, copy on scratch].
 *
 * The frontend copies a --link source onto an empty root (the "link" snapshot, which
 * depends on nothing below it) and adds a file vertex {"actions":[{"action":"merge",
 * "input":1}]} whose input 0 is the stage and input 1 the link snapshot. Its result is a
 * fresh snapshot of the stage with the link snapshot's files applied exactly as unpacking
 * the link snapshot's layer there would (containerd's applier, which is what a consumer
 * of the image does): a directory merges into a directory there (what was below stays)
 * and takes the link's owner, mode and times; anything else replaces what is in its way,
 * a directory included. Nothing below can be deleted (a link has no whiteouts).
 *
 * The result carries the label SNAP_LABEL_LAYER = the link snapshot, so the exporter
 * writes the link snapshot's own layer for it: the same blob and diff_id whatever the
 * stage below is, and since the link vertex's cache key does not depend on the stage
 * either, a change below re-runs only this cheap merge.
 */
#include "ops_int.h"

#include "snapshot/snap.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

bool
ops_merge_def(const json_t *def)
{
	json_t *actions = json_object_get(def, "actions");
	json_t *a = json_array_get(actions, 0);
	return json_array_size(actions) == 1 &&
	       kiln_str_eq(json_string_value(json_object_get(a, "action")), "merge");
}

struct merge_link {
	dev_t dev;
	ino_t ino;
	char *rel; /* where its first copy went, relative to the destination root */
};

struct merge {
	struct sv_op_ctx *ctx;
	int dest_rootfd;
	struct merge_link *links; /* hard links inside the link snapshot, kept as such */
	size_t nlinks, alinks;
	struct ops_copy_state copy;
	struct kiln_err *err;
};

/* Owner, mode (not for symlinks) and times of dirfd/name as the link has them; chown
 * first, since it clears set-id bits. */
static int
merge_meta(int dirfd, const char *name, const struct stat *st)
{
	if (fchownat(dirfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISLNK(st->st_mode) && fchmodat(dirfd, name, st->st_mode & 07777, 0) < 0)
		return -errno;
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

static int merge_children(struct merge *mg, int srcdir, int dstdir, const char *rel);

/* Apply source entry srcdir/name (stat `st`) to dstdir/name; `rel` is its path. */
static int
merge_entry(struct merge *mg, int srcdir, int dstdir, const char *name, const struct stat *st,
            const char *rel)
{
	struct stat dst;
	bool exists = fstatat(dstdir, name, &dst, AT_SYMLINK_NOFOLLOW) == 0;
	int r;
	if (S_ISDIR(st->st_mode)) {
		if (exists && !S_ISDIR(dst.st_mode)) {
			if (unlinkat(dstdir, name, 0) < 0)
				return kiln_err_set(mg->err, errno, "replace `/%s`", rel);
			exists = false;
		}
		if (!exists && mkdirat(dstdir, name, 0700) < 0)
			return kiln_err_set(mg->err, errno, "mkdir `/%s`", rel);
		_cleanup_close_ int in =
		        openat(srcdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		_cleanup_close_ int out =
		        openat(dstdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (in < 0 || out < 0)
			return kiln_err_set(mg->err, errno, "open `/%s`", rel);
		if ((r = merge_children(mg, in, out, rel)) < 0)
			return r;
		ops_copy_xattrs(in, out);
		if ((r = merge_meta(dstdir, name, st)) < 0)
			return kiln_err_set(mg->err, -r, "set metadata of `/%s`", rel);
		return 0;
	}
	if (S_ISSOCK(st->st_mode))
		return 0; /* not in a layer either */
	if (exists) {
		/* As an unpacked layer does: a non-directory replaces even a directory. */
		r = S_ISDIR(dst.st_mode) ? kiln_rm_rf_at(dstdir, name)
		                         : (unlinkat(dstdir, name, 0) < 0 ? -errno : 0);
		if (r < 0)
			return kiln_err_set(mg->err, -r, "replace `/%s`", rel);
	}
	if (st->st_nlink > 1) {
		for (size_t i = 0; i < mg->nlinks; i++) {
			struct merge_link *l = &mg->links[i];
			if (l->dev == st->st_dev && l->ino == st->st_ino) {
				if (linkat(mg->dest_rootfd, l->rel, dstdir, name, 0) < 0)
					return kiln_err_set(mg->err, errno, "link `/%s`", rel);
				return 0;
			}
		}
	}
	if (S_ISREG(st->st_mode)) {
		_cleanup_close_ int in = openat(srcdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (in < 0)
			return kiln_err_set(mg->err, errno, "open `/%s`", rel);
		_cleanup_close_ int out = openat(
		        dstdir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (out < 0)
			return kiln_err_set(mg->err, errno, "create `/%s`", rel);
		if ((r = ops_copy_data(&mg->copy, in, out, st->st_size)) < 0)
			return kiln_err_set(mg->err, -r, "copy `/%s`", rel);
		if ((r = merge_meta(dstdir, name, st)) < 0)
			return kiln_err_set(mg->err, -r, "set metadata of `/%s`", rel);
		/* After the chown, which would drop security.capability. */
		ops_copy_xattrs(in, out);
	} else if (S_ISLNK(st->st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(srcdir, name, target, sizeof(target) - 1);
		if (n < 0)
			return kiln_err_set(mg->err, errno, "readlink `/%s`", rel);
		target[n] = '\0';
		if (symlinkat(target, dstdir, name) < 0)
			return kiln_err_set(mg->err, errno, "symlink `/%s`", rel);
		if ((r = merge_meta(dstdir, name, st)) < 0)
			return kiln_err_set(mg->err, -r, "set metadata of `/%s`", rel);
	} else {
		if (mknodat(dstdir, name, st->st_mode & (S_IFMT | 07777), st->st_rdev) < 0)
			return kiln_err_set(mg->err, errno, "mknod `/%s`", rel);
		if ((r = merge_meta(dstdir, name, st)) < 0)
			return kiln_err_set(mg->err, -r, "set metadata of `/%s`", rel);
	}
	if (st->st_nlink > 1) {
		KILN_GROW(mg->links, mg->alinks, mg->nlinks + 1);
		mg->links[mg->nlinks++] = (struct merge_link){
		        .dev = st->st_dev, .ino = st->st_ino, .rel = kiln_xstrdup(rel)};
	}
	return 0;
}

static int
merge_children(struct merge *mg, int srcdir, int dstdir, const char *rel)
{
	if (mg->ctx && sv_op_ctx_cancelled(mg->ctx))
		return kiln_err_set(mg->err, ECANCELED, "merge cancelled");
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	int r = kiln_dir_names(srcdir, &names);
	if (r < 0)
		return kiln_err_set(mg->err, -r, "read directory `/%s`", rel);
	for (size_t i = 0; i < names.n; i++) {
		struct stat st;
		_cleanup_free_ char *crel =
		        *rel ? kiln_xasprintf("%s/%s", rel, names.v[i]) : kiln_xstrdup(names.v[i]);
		if (fstatat(srcdir, names.v[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			return kiln_err_set(mg->err, errno, "stat `/%s`", crel);
		if ((r = merge_entry(mg, srcdir, dstdir, names.v[i], &st, crel)) < 0)
			return r;
	}
	return 0;
}

int
ops_merge_tree(int src_rootfd, int dest_rootfd, struct sv_op_ctx *ctx, struct kiln_err *err)
{
	struct merge mg = {.ctx = ctx, .dest_rootfd = dest_rootfd, .err = err};
	int r = merge_children(&mg, src_rootfd, dest_rootfd, "");
	for (size_t i = 0; i < mg.nlinks; i++)
		free(mg.links[i].rel);
	free(mg.links);
	return r;
}

int
ops_merge_run(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v,
              const char *const *inputs, char **ret_result, struct kiln_err *err)
{
	json_t *a = json_array_get(json_object_get(v->def, "actions"), 0);
	json_t *in = json_object_get(a, "input");
	if (v->ninputs != 2 || !json_is_integer(in) || json_integer_value(in) != 1)
		return kiln_err_invalid(err, "merge: wants the stage and one link input");
	const char *link = inputs[1];
	if (ops_local_dir(o, link) || !snap_name_valid(link))
		return kiln_err_invalid(err, "merge: input 1 is not a snapshot");
	_cleanup_snap_mount_ struct snap_mount *view = NULL;
	if (snap_view(o->opts.snaps, link, &view, err) < 0)
		return -1;
	_cleanup_snap_mount_ struct snap_mount *m = NULL;
	if (snap_prepare(o->opts.snaps, inputs[0], &m, err) < 0)
		return -1;
	_cleanup_close_ int src = open(snap_mount_path(view), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src < 0)
		return kiln_err_set(err, errno, "open `%s`", snap_mount_path(view));
	_cleanup_close_ int dest = open(snap_mount_path(m), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dest < 0)
		return kiln_err_set(err, errno, "open `%s`", snap_mount_path(m));
	if (ops_merge_tree(src, dest, ctx, err) < 0)
		return -1;
	if (snap_mount_set_label(m, SNAP_LABEL_LAYER, link, err) < 0)
		return -1;
	_cleanup_free_ char *name = ops_new_snapshot_name();
	if (snap_commit(m, name, err) < 0)
		return -1;
	ops_record_size(o, ctx, name);
	*ret_result = TAKE_PTR(name);
	return 0;
}
