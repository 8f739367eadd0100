/* Internal to ops/: the ops context and the per-op entry points. */
#ifndef KILN_OPS_INT_H
#define KILN_OPS_INT_H

#include "ops.h"
#include "file.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>

struct reg_image;
struct snap_mount;

/* The result of a --build-context directory: read in place like the build context. */
#define OPS_RESULT_LOCAL_DIR "local:dir:"

/* Images the build uses, opened once: exec needs their Env. */
struct ops_image {
	char *ref;
	struct reg_image *img;
};

/* An http source downloaded by its content key, for its run to take. */
struct ops_download {
	const struct sv_vertex *vertex;
	char *snapshot; /* NULL once taken */
};

struct ops {
	struct ops_opts opts;
	int ctx_fd; /* the context directory, -1 without one */
	struct ops_stat_index *index;
	pthread_mutex_t mu; /* scratch, downloads, cancel fds: never held for long */
	/* Held while an image is opened or pulled, so each is pulled once; apart from mu so a
	 * slow pull does not hold up Ctrl-C or other steps. */
	pthread_mutex_t images_mu;
	struct ops_image *images;
	size_t nimages, aimages;
	int *cancel_fds; /* the running steps' cancel eventfds, for ops_interrupt */
	size_t ncancel, acancel;
	bool interrupted;
	struct ops_download *downloads;
	size_t ndownloads, adownloads;
};

/* Read-only roots of a step's inputs 1..n-1 (fds[0], paths[0] unused). */
struct ops_inputs {
	size_t n;
	int *fds;
	const char **paths;
	struct snap_mount **views;
};
int ops_inputs_open(struct ops *o, const char *const *inputs, size_t n, struct ops_inputs *in,
                    struct kiln_err *err);
void ops_inputs_release(struct ops_inputs *in);

/* The image `ref` (a normalised reference) from the store, opened once per build; borrowed
 * until ops_free. */
int ops_image_get(struct ops *o, const char *ref, const struct reg_image **ret,
                  struct kiln_err *err);
char *ops_new_snapshot_name(void);
/* sv_op_ctx_set_size with the bytes of regular files in the snapshot's diff. */
void ops_record_size(struct ops *o, struct sv_op_ctx *ctx, const char *snapshot);
/* An eventfd that becomes readable when the solve is cancelled (registered with ctx); the
 * also becomes readable on ops_interrupt. Close it with ops_cancel_fd_close. */
int ops_cancel_fd_new(struct ops *o, struct sv_op_ctx *ctx, int *fdp);
/* Clear the callback and close the fd. */
void ops_cancel_fd_close(struct ops *o, struct sv_op_ctx *ctx, int fd);
bool ops_interrupted(struct ops *o);
/* The directory a local result is read from in place (the build context or a
 * --build-context directory), or NULL when the result is a snapshot. */
const char *ops_local_dir(struct ops *o, const char *result);
/* A fresh directory fd of a local result (not a dup: steps read at once). */
int ops_local_open(struct ops *o, const char *result, struct kiln_err *err);
/* Copy action `a` reading local source `src_vertex` with the source's .dockerignore
 * patterns re-rooted at the action's "src" (new reference; `a` itself when none apply). */
json_t *ops_context_action(const json_t *a, const struct sv_vertex *src_vertex);

int ops_source_content_key(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v,
                           char **ret, struct kiln_err *err);
int ops_source_run(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v,
                   char **ret_result, struct kiln_err *err);
int ops_http_content_key(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v,
                         char **ret, struct kiln_err *err);
int ops_http_run(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v, char **ret_result,
                 struct kiln_err *err);
void ops_downloads_release(struct ops *o);
int ops_context_content_key(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v,
                            const char *const *inputs, char **ret, struct kiln_err *err);
int ops_exec_run(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v,
                 const char *const *inputs, char **ret_result, struct kiln_err *err);
/* merge.c: the merge vertex of COPY --link (a file def whose one action is "merge"). */
bool ops_merge_def(const json_t *def);
int ops_merge_run(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v,
                  const char *const *inputs, char **ret_result, struct kiln_err *err);
/* Apply the tree src_rootfd onto dest_rootfd as unpacking its layer would (ctx may be
 * NULL). */
int ops_merge_tree(int src_rootfd, int dest_rootfd, struct sv_op_ctx *ctx, struct kiln_err *err);
int ops_file_vertex_run(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v,
                        const char *const *inputs, char **ret_result, struct kiln_err *err);

#endif
