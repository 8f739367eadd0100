/* The sv_ops vtable: source, exec and file vertices on snapshots (see ops.h). */
#include "ops_int.h"

#include "registry/reg.h"
#include "snapshot/snap.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

int
ops_new(const struct ops_opts *opts, struct ops **ret, struct kiln_err *err)
{
	struct ops *o = kiln_xcalloc(1, sizeof(*o));
	o->opts = *opts;
	o->ctx_fd = -1;
	pthread_mutex_init(&o->mu, NULL);
	pthread_mutex_init(&o->images_mu, NULL);
	if (opts->context_dir) {
		o->ctx_fd = open(opts->context_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (o->ctx_fd < 0) {
			int r = kiln_err_set(err, errno, "open build context `%s`",
			                     opts->context_dir);
			ops_free(o);
			return r;
		}
	}
	_cleanup_free_ char *idx = kiln_xasprintf("%s/cache/statindex", opts->root);
	_cleanup_free_ char *dir = kiln_xasprintf("%s/cache", opts->root);
	mkdir(opts->root, 0700);
	mkdir(dir, 0700);
	if (ops_stat_index_open(idx, &o->index, err) < 0) {
		ops_free(o);
		return -1;
	}
	*ret = o;
	return 0;
}

int
ops_save(struct ops *o, struct kiln_err *err)
{
	if (!o->index)
		return 0;
	/* Writes only when a file was read: a no-change rebuild writes nothing. */
	return ops_stat_index_save(o->index, err);
}

void
ops_free(struct ops *o)
{
	if (!o)
		return;
	if (o->ctx_fd >= 0)
		close(o->ctx_fd);
	ops_stat_index_free(o->index);
	ops_downloads_release(o);
	for (size_t i = 0; i < o->nimages; i++) {
		free(o->images[i].ref);
		reg_image_release(o->images[i].img);
		free(o->images[i].img);
	}
	free(o->images);
	free(o->cancel_fds);
	pthread_mutex_destroy(&o->mu);
	pthread_mutex_destroy(&o->images_mu);
	free(o);
}

const struct sv_vertex *
ops_stage_root(const struct sv_vertex *v)
{
	while (v->op != SV_OP_SOURCE && v->ninputs > 0)
		v = v->inputs[0];
	return v;
}

/* A base image missing from the store is pulled, as BuildKit does (under the images lock:
 * each image once per build). */
static int pull_ref(struct reg_store *reg, const char *ref, struct kiln_err *err);

static int
pull(struct ops *o, const char *ref, struct kiln_err *err)
{
	if (o->opts.no_pull)
		return kiln_err_set(err, ENOENT, "pulling is off");
	return pull_ref(o->opts.reg, ref, err);
}

static int
pull_ref(struct reg_store *reg, const char *ref, struct kiln_err *err)
{
	struct reg_ref r = REG_REF_INIT;
	if (reg_ref_parse_normalized(ref, &r, err) < 0)
		return -EINVAL;
	reg_ref_default_tag(&r);
	struct reg_client_opts co = REG_CLIENT_OPTS_INIT;
	co.max_attempts = 2;
	struct reg_client *c = NULL;
	char digest[KILN_DIGEST_HEX_LEN + 1];
	int ret = reg_client_new(r.domain, &co, &c, err);
	if (ret >= 0)
		ret = reg_pull(c, reg, &r, NULL, digest, err);
	reg_client_free(c);
	reg_ref_release(&r);
	return ret;
}

/*
 * An image's config from its registry without its layers (BuildKit's ResolveImageConfig):
 * the manifest (the host's, through an index) and the config blob, which lands in the
 * store; the image source pulls the layers later, in parallel with the other steps.
 */
static json_t *
resolve_config(struct reg_store *reg, const char *ref, struct kiln_err *err)
{
	struct reg_ref r = REG_REF_INIT;
	if (reg_ref_parse_normalized(ref, &r, err) < 0)
		return NULL;
	reg_ref_default_tag(&r);
	struct reg_client_opts co = REG_CLIENT_OPTS_INIT;
	co.max_attempts = 2;
	struct reg_client *c = NULL;
	json_t *doc = NULL;
	struct kiln_buf body = KILN_BUF_INIT, cfg = KILN_BUF_INIT;
	struct reg_manifest m = {0};
	enum reg_kind kind;
	char digest[KILN_DIGEST_HEX_LEN + 1];
	if (reg_client_new(r.domain, &co, &c, err) < 0 ||
	    reg_client_get_manifest(c, r.path, r.digest ? r.digest : r.tag, &body, &kind, digest,
	                            err) < 0)
		goto out;
	if (reg_kind_is_index(kind)) {
		struct reg_index idx = {0};
		int pos = reg_index_parse(body.buf, body.len, NULL, &idx, err);
		if (pos >= 0)
			pos = reg_index_select(&idx, NULL, err);
		if (pos >= 0)
			memcpy(digest, idx.manifests[pos].digest, sizeof(digest));
		reg_index_release(&idx);
		kiln_buf_release(&body);
		body = (struct kiln_buf)KILN_BUF_INIT;
		if (pos < 0 ||
		    reg_client_get_manifest(c, r.path, digest, &body, &kind, digest, err) < 0)
			goto out;
	}
	if (reg_manifest_parse(body.buf, body.len, NULL, &m, err) < 0 ||
	    reg_client_fetch_blob(c, reg, r.path, m.config.digest, m.config.size, err) < 0 ||
	    reg_blob_read(reg, m.config.digest, 16 << 20, &cfg, err) < 0)
		goto out;
	doc = json_loadb(cfg.buf, cfg.len, 0, NULL);
out:
	reg_manifest_release(&m);
	kiln_buf_release(&body);
	kiln_buf_release(&cfg);
	reg_client_free(c);
	reg_ref_release(&r);
	return doc;
}

json_t *
ops_plan_image_config(void *plan_images, const char *ref, const char *platform)
{
	const struct ops_plan_images *pi = plan_images;
	struct reg_store *reg = pi->reg;
	(void)platform; /* the host's: ops refuses others */
	struct reg_image img = REG_IMAGE_INIT;
	struct kiln_err err = KILN_ERR_INIT;
	json_t *doc = NULL;
	if (pi->pull_always && !kiln_str_has_prefix(ref, "sha256:")) {
		doc = resolve_config(reg, ref, &err);
		kiln_err_release(&err);
		if (doc)
			return doc; /* else the stored one: the image source reports the failure */
	}
	int r = reg_image_open(reg, ref, NULL, &img, &err);
	if (r >= 0)
		doc = json_incref(img.config.raw);
	else if (r == -ENOENT && !pi->store_only && !kiln_str_has_prefix(ref, "sha256:"))
		doc = resolve_config(reg, ref, &err);
	/* A failure here is the build's to report, when the image source runs. */
	kiln_err_release(&err);
	reg_image_release(&img);
	return doc;
}

int
ops_image_get(struct ops *o, const char *ref, const struct reg_image **ret, struct kiln_err *err)
{
	pthread_mutex_lock(&o->images_mu);
	for (size_t i = 0; i < o->nimages; i++) {
		if (kiln_str_eq(o->images[i].ref, ref)) {
			*ret = o->images[i].img;
			pthread_mutex_unlock(&o->images_mu);
			return 0;
		}
	}
	struct reg_image *img = kiln_xmalloc(sizeof(*img));
	*img = (struct reg_image)REG_IMAGE_INIT;
	int r;
	if (o->opts.pull_always && (r = pull(o, ref, err)) < 0) {
		kiln_err_wrap(err, "--pull: image %s", ref);
		pthread_mutex_unlock(&o->images_mu);
		free(img);
		return r;
	}
	r = reg_image_open(o->opts.reg, ref, NULL, img, err);
	if (r == -ENOENT) {
		kiln_err_release(err);
		r = pull(o, ref, err);
		if (r >= 0)
			r = reg_image_open(o->opts.reg, ref, NULL, img, err);
		if (r < 0)
			kiln_err_wrap(err, "image %s not in the store (kiln pull/load/import it)",
			              ref);
	}
	if (r < 0) {
		pthread_mutex_unlock(&o->images_mu);
		reg_image_release(img);
		free(img);
		return r;
	}
	KILN_GROW(o->images, o->aimages, o->nimages + 1);
	o->images[o->nimages++] = (struct ops_image){.ref = kiln_xstrdup(ref), .img = img};
	*ret = img;
	pthread_mutex_unlock(&o->images_mu);
	return 0;
}

/* A fresh, unique name for a snapshot a step commits. */
char *
ops_new_snapshot_name(void)
{
	uint8_t rnd[12];
	_cleanup_close_ int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd)) {
		/* Not secret, only unique: time and pid will do. */
		return kiln_xasprintf("x-%ld-%d-%lx", (long)time(NULL), (int)getpid(),
		                      (unsigned long)random());
	}
	struct kiln_buf b = KILN_BUF_INIT;
	kiln_buf_addstr(&b, "x-");
	for (size_t i = 0; i < sizeof(rnd); i++)
		kiln_buf_addf(&b, "%02x", rnd[i]);
	return kiln_buf_detach(&b, NULL);
}

static int
add_size(const struct snap_change *c, void *data, struct kiln_err *err)
{
	if (c->st && S_ISREG(c->st->st_mode))
		*(uint64_t *)data += (uint64_t)c->st->st_size;
	return 0;
}

void
ops_record_size(struct ops *o, struct sv_op_ctx *ctx, const char *snapshot)
{
	/* For prune and du: the bytes a step added. A walk that fails only leaves it 0.
	 * Files an incremental copy shares (hard links) with the result it was cloned from
	 * count in both records: du adds shared bytes once per snapshot holding them, and
	 * prune --keep-storage errs towards freeing more. */
	uint64_t size = 0;
	struct kiln_err err = KILN_ERR_INIT;
	if (snap_diff_walk(o->opts.snaps, snapshot, add_size, &size, &err) < 0)
		kiln_err_release(&err);
	else
		sv_op_ctx_set_size(ctx, size);
}

/* ---- the vtable ---- */

static int
content_key(void *data, struct sv_op_ctx *ctx, const struct sv_vertex *v, const char *const *inputs,
            char **ret, struct kiln_err *err)
{
	struct ops *o = data;
	switch (v->op) {
	case SV_OP_SOURCE:
		return ops_source_content_key(o, ctx, v, ret, err);
	case SV_OP_FILE:
	case SV_OP_EXEC:
		return ops_context_content_key(o, ctx, v, inputs, ret, err);
	}
	*ret = NULL;
	return 0;
}

static int
run(void *data, struct sv_op_ctx *ctx, const struct sv_vertex *v, const char *const *inputs,
    char **ret_result, struct kiln_err *err)
{
	struct ops *o = data;
	if (ops_interrupted(o))
		return kiln_err_set(err, ECANCELED, "interrupted");
	switch (v->op) {
	case SV_OP_SOURCE:
		return ops_source_run(o, ctx, v, ret_result, err);
	case SV_OP_EXEC:
		return ops_exec_run(o, ctx, v, inputs, ret_result, err);
	case SV_OP_FILE:
		if (ops_merge_def(v->def))
			return ops_merge_run(o, ctx, v, inputs, ret_result, err);
		return ops_file_vertex_run(o, ctx, v, inputs, ret_result, err);
	}
	return kiln_err_invalid(err, "unknown op");
}

const char *
ops_local_dir(struct ops *o, const char *result)
{
	if (kiln_str_eq(result, OPS_RESULT_CONTEXT))
		return o->opts.context_dir;
	if (kiln_str_has_prefix(result, OPS_RESULT_LOCAL_DIR))
		return result + strlen(OPS_RESULT_LOCAL_DIR);
	return NULL;
}

int
ops_local_open(struct ops *o, const char *result, struct kiln_err *err)
{
	if (kiln_str_eq(result, OPS_RESULT_CONTEXT)) {
		if (o->ctx_fd < 0)
			return kiln_err_invalid(err, "the build has no context directory");
		int fd = openat(o->ctx_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return fd < 0 ? kiln_err_set(err, errno, "open the build context") : fd;
	}
	const char *dir = ops_local_dir(o, result);
	if (!dir)
		return kiln_err_invalid(err, "%s is not a local source", result);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? kiln_err_set(err, errno, "open build context `%s`", dir) : fd;
}

static bool
result_exists(void *data, const char *result)
{
	struct ops *o = data;
	if (kiln_str_eq(result, OPS_RESULT_CONTEXT))
		return true;
	if (kiln_str_has_prefix(result, OPS_RESULT_LOCAL_DIR)) {
		struct stat sb;
		return stat(result + strlen(OPS_RESULT_LOCAL_DIR), &sb) == 0 && S_ISDIR(sb.st_mode);
	}
	return snap_name_valid(result) && snap_exists(o->opts.snaps, result);
}

void
ops_result_forget(const char *root, const char *result)
{
	if (!root || !snap_name_valid(result))
		return;
	_cleanup_free_ char *mp = kiln_xasprintf("%s/cache/copies/%s", root, result);
	unlink(mp);
}

void
ops_results_sweep(const char *root, struct snap_store *snaps)
{
	_cleanup_free_ char *dir = kiln_xasprintf("%s/cache/copies", root);
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	/* A manifest is written after its snapshot's commit, so one without it is stale. */
	while ((de = readdir(d)))
		if (snap_name_valid(de->d_name) && !snap_exists(snaps, de->d_name))
			ops_result_forget(root, de->d_name);
	closedir(d);
}

static void
discard(void *data, const char *result)
{
	struct ops *o = data;
	/* Only snapshots a step made: image chains and the context are shared. */
	if (!kiln_str_has_prefix(result, "x-"))
		return;
	struct kiln_err err = KILN_ERR_INIT;
	snap_remove(o->opts.snaps, result, &err);
	kiln_err_release(&err);
	ops_result_forget(o->opts.root, result);
}

/* "The same step" across builds for --explain: the stage and the instruction without its
 * "[stage 3/8] " position, so inserting a line above a step does not make it a new one. */
static char *
identity(void *data, const struct sv_vertex *v)
{
	const char *d = v->description ? v->description : sv_op_name(v->op);
	if (d[0] == '[') {
		const char *end = strstr(d, "] ");
		if (end)
			d = end + 2;
	}
	return kiln_xasprintf("%s\n%s", v->stage ? v->stage : "", d);
}

static const struct sv_ops vtable = {
        .identity = identity,
        .content_key = content_key,
        .run = run,
        .result_exists = result_exists,
        .discard = discard,
};

const struct sv_ops *
ops_vtable(void)
{
	return &vtable;
}

/* ---- mounting inputs ---- */

void
ops_inputs_release(struct ops_inputs *in)
{
	for (size_t i = 0; i < in->n; i++) {
		if (in->fds[i] >= 0)
			close(in->fds[i]);
		snap_mount_release(in->views[i]);
	}
	free(in->fds);
	free(in->views);
	free(in->paths);
	*in = (struct ops_inputs){0};
}

/* Read-only roots of inputs 1.. (input 0 is the step's own snapshot). */
int
ops_inputs_open(struct ops *o, const char *const *inputs, size_t n, struct ops_inputs *in,
                struct kiln_err *err)
{
	in->n = n;
	in->fds = kiln_xcalloc(n ? n : 1, sizeof(*in->fds));
	in->views = kiln_xcalloc(n ? n : 1, sizeof(*in->views));
	in->paths = kiln_xcalloc(n ? n : 1, sizeof(*in->paths));
	for (size_t i = 0; i < n; i++)
		in->fds[i] = -1;
	for (size_t i = 1; i < n; i++) {
		if (ops_local_dir(o, inputs[i])) {
			in->paths[i] = ops_local_dir(o, inputs[i]);
			/* A fresh open, not a dup: a dup shares the directory offset with the
			 * other steps reading the context at the same time. */
			in->fds[i] = ops_local_open(o, inputs[i], err);
			if (in->fds[i] < 0)
				return -1;
			continue;
		}
		if (snap_view(o->opts.snaps, inputs[i], &in->views[i], err) < 0)
			return kiln_err_wrap(err, "view input %zu", i);
		in->paths[i] = snap_mount_path(in->views[i]);
		in->fds[i] = open(in->paths[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (in->fds[i] < 0)
			return kiln_err_set(err, errno, "open `%s`", in->paths[i]);
	}
	return 0;
}

/* ---- the context's .dockerignore on copies that read the context in place ---- */

/*
 * The context is not copied for a build, so its exclude patterns (.dockerignore, relative
 * to the context root) are applied by each copy that reads it. The file op matches a
 * copy's "exclude" relative to the copy's source directory S, so patterns under S are
 * re-rooted there ("S/x" -> "x"), patterns starting with "**" apply anywhere, and the
 * copy's own --exclude patterns follow (the last match wins, as in a .dockerignore).
 * Returns a new action; `a` unchanged when the input is not the context.
 */
static json_t *
context_action(const json_t *a, const struct sv_vertex *src_vertex)
{
	json_t *ctx_ex = json_object_get(src_vertex->def, "exclude");
	if (!json_array_size(ctx_ex))
		return json_incref((json_t *)a);
	const char *src = json_string_value(json_object_get(a, "src"));
	_cleanup_free_ char *clean = kiln_path_join("/", src ? src : "/");
	/* A wildcard matches in its parent directory. */
	char *slash = strrchr(clean, '/');
	if (strpbrk(slash + 1, "*?["))
		*slash = '\0';
	const char *dir = clean[0] == '/' ? clean + 1 : clean; /* "" for the root */
	size_t dl = strlen(dir);
	json_t *ex = json_array();
	size_t i;
	json_t *p;
	json_array_foreach(ctx_ex, i, p)
	{
		const char *pat = json_string_value(p);
		if (!pat)
			continue;
		bool neg = pat[0] == '!';
		const char *body = neg ? pat + 1 : pat;
		if (!dl || kiln_str_has_prefix(body, "**")) {
			json_array_append_new(ex, json_string(pat));
		} else if (!strncmp(body, dir, dl) && body[dl] == '/' && body[dl + 1]) {
			_cleanup_free_ char *re =
			        kiln_xasprintf("%s%s", neg ? "!" : "", body + dl + 1);
			json_array_append_new(ex, json_string(re));
		}
	}
	json_array_foreach(json_object_get(a, "exclude"), i, p) json_array_append(ex, p);
	json_t *na = json_deep_copy(a);
	json_object_set_new(na, "exclude", ex);
	return na;
}

json_t *
ops_context_action(const json_t *a, const struct sv_vertex *src_vertex)
{
	return context_action(a, src_vertex);
}

/* The def of a file vertex with the context's excludes in the copies that read it. */
static json_t *
context_def(struct ops *o, const struct sv_vertex *v, const char *const *inputs)
{
	json_t *def = json_deep_copy(v->def);
	json_t *actions = json_object_get(def, "actions");
	size_t i;
	json_t *a;
	json_array_foreach(actions, i, a)
	{
		json_t *in = json_object_get(a, "input");
		json_int_t ix = json_integer_value(in);
		if (!json_is_integer(in) || ix < 1 || (size_t)ix >= v->ninputs ||
		    !ops_local_dir(o, inputs[ix]))
			continue;
		json_array_set_new(actions, i, context_action(a, v->inputs[ix]));
	}
	return def;
}

/* ---- file vertices ---- */

static void
cancel_write(void *data)
{
	int fd = *(int *)data;
	uint64_t one = 1;
	(void)!write(fd, &one, sizeof(one));
}

int
ops_cancel_fd_new(struct ops *o, struct sv_op_ctx *ctx, int *fdp)
{
	*fdp = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (*fdp < 0)
		return -errno;
	pthread_mutex_lock(&o->mu);
	KILN_GROW(o->cancel_fds, o->acancel, o->ncancel + 1);
	o->cancel_fds[o->ncancel++] = *fdp;
	if (o->interrupted)
		cancel_write(fdp);
	pthread_mutex_unlock(&o->mu);
	sv_op_ctx_on_cancel(ctx, cancel_write, fdp);
	return 0;
}

void
ops_cancel_fd_close(struct ops *o, struct sv_op_ctx *ctx, int fd)
{
	sv_op_ctx_on_cancel(ctx, NULL, NULL);
	pthread_mutex_lock(&o->mu);
	for (size_t i = 0; i < o->ncancel; i++) {
		if (o->cancel_fds[i] == fd) {
			o->cancel_fds[i] = o->cancel_fds[--o->ncancel];
			break;
		}
	}
	close(fd);
	pthread_mutex_unlock(&o->mu);
}

void
ops_interrupt(struct ops *o)
{
	pthread_mutex_lock(&o->mu);
	o->interrupted = true;
	for (size_t i = 0; i < o->ncancel; i++)
		cancel_write(&o->cancel_fds[i]);
	pthread_mutex_unlock(&o->mu);
}

bool
ops_interrupted(struct ops *o)
{
	pthread_mutex_lock(&o->mu);
	bool r = o->interrupted;
	pthread_mutex_unlock(&o->mu);
	return r;
}

/* Where the copy manifest of a file vertex's result lives (ops ids are snapshot names). */
static char *
manifest_path(struct ops *o, const char *snapshot)
{
	/* ops_result_forget removes it. */
	return kiln_xasprintf("%s/cache/copies/%s", o->opts.root, snapshot);
}

/*
 * Whether a file def may run as an incremental copy: one copy from a local directory (the
 * content key then covers what it reads), into an overlay upper a clone can start. Left
 * out, so copied in full every time: ADD's unpacking (a changed archive's old entries
 * would stay), COPY --link, and excludes with "!" exceptions (whether a walked directory
 * stays depends on what else was kept).
 */
static bool
incremental_ok(struct ops *o, const json_t *def, const char *const *inputs, size_t ninputs)
{
	if (!o->opts.root || snap_store_driver(o->opts.snaps) != SNAP_DRIVER_OVERLAY)
		return false;
	json_t *actions = json_object_get(def, "actions");
	if (json_array_size(actions) != 1)
		return false;
	json_t *a = json_array_get(actions, 0);
	const char *kind = json_string_value(json_object_get(a, "action"));
	json_t *in = json_object_get(a, "input");
	json_int_t ix = json_integer_value(in);
	if (!kind || !kiln_str_eq(kind, "copy") || !json_is_integer(in) || ix < 1 ||
	    (size_t)ix >= ninputs || !ops_local_dir(o, inputs[ix]))
		return false;
	/* COPY --link: its snapshot is a layer of its own, merged onto the stage; kept
	 * out for now rather than reasoned about. */
	if (json_is_true(json_object_get(a, "unpack")) || json_is_true(json_object_get(a, "link")))
		return false;
	/* Where a directory lands is read from the destination, which a clone already fills
	 * with the previous copy: without contents-only (every Dockerfile COPY has it) a
	 * directory would go inside its own earlier copy. */
	if (!json_is_true(json_object_get(a, "dir_contents_only")))
		return false;
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(a, "exclude"), i, p)
	{
		const char *pat = json_string_value(p);
		if (pat && pat[0] == '!')
			return false;
	}
	return true;
}

/*
 * Owner names are looked up in the destination's /etc/passwd and /etc/group, which in a
 * clone are the previous copy's if it wrote them: then (or when a file of either name was
 * copied anywhere, a symlinked /etc being possible) the clone cannot be trusted to resolve
 * them as the parent does.
 */
static bool
owner_names_safe(const json_t *def, const struct ops_copy_manifest *prev)
{
	json_t *chown =
	        json_object_get(json_array_get(json_object_get(def, "actions"), 0), "chown");
	const char *ids[] = {json_string_value(json_object_get(chown, "user")),
	                     json_string_value(json_object_get(chown, "group"))};
	bool names = false;
	for (size_t k = 0; k < 2; k++)
		names |= ids[k] && ids[k][strspn(ids[k], "0123456789")] != '\0';
	if (!names)
		return true;
	for (size_t i = 0; i < ops_copy_manifest_count(prev); i++) {
		const char *base = strrchr(ops_copy_manifest_at(prev, i)->path, '/');
		base = base ? base + 1 : ops_copy_manifest_at(prev, i)->path;
		if (kiln_str_eq(base, "passwd") || kiln_str_eq(base, "group"))
			return false;
	}
	return true;
}

/* One run of a file def into a fresh snapshot on input 0, or with `like`/`prev` into a
 * hard-link clone of `like` (see ops_file_env). */
static int
file_attempt(struct ops *o, struct sv_op_ctx *ctx, const char *const *inputs,
             const struct ops_inputs *in, const json_t *def, const char *like,
             const struct ops_copy_manifest *prev, struct ops_copy_manifest *record,
             size_t *ret_changed, char **ret_result, struct kiln_err *err)
{
	_cleanup_snap_mount_ struct snap_mount *m = NULL;
	int r = like ? snap_prepare_clone(o->opts.snaps, inputs[0], like, &m, err)
	             : snap_prepare(o->opts.snaps, inputs[0], &m, err);
	if (r < 0)
		return r;
	_cleanup_close_ int dest = open(snap_mount_path(m), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dest < 0)
		return kiln_err_set(err, errno, "open `%s`", snap_mount_path(m));
	int cfd = -1;
	if (ops_cancel_fd_new(o, ctx, &cfd) < 0)
		return kiln_err_set(err, errno, "eventfd");
	struct ops_file_env env = OPS_FILE_ENV_INIT;
	env.cancel_fd = cfd;
	env.record = record;
	env.prev = prev;
	env.ret_changed = ret_changed;
	r = ops_file_run(def, dest, in->fds, in->n, &env, err);
	ops_cancel_fd_close(o, ctx, cfd);
	if (r < 0)
		return r;
	_cleanup_free_ char *name = ops_new_snapshot_name();
	if (snap_commit(m, name, err) < 0)
		return -1;
	/* A copy's diff holds the files it wrote: the manifest knows their sizes without a
	 * walk of 20k entries. */
	if (record)
		sv_op_ctx_set_size(ctx, ops_copy_manifest_bytes(record));
	else
		ops_record_size(o, ctx, name);
	*ret_result = TAKE_PTR(name);
	return 0;
}

/* Keep what the copy read for the step's next run; only the lineage's latest result is
 * ever cloned, so the manifest of the one it replaces goes. Failures only cost that run
 * its incremental copy. */
static void
manifest_save(struct ops *o, struct ops_copy_manifest *record, const char *result,
              const char *replaced)
{
	_cleanup_free_ char *dir = kiln_xasprintf("%s/cache/copies", o->opts.root);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return;
	_cleanup_free_ char *path = manifest_path(o, result);
	struct kiln_err e = KILN_ERR_INIT;
	if (ops_copy_manifest_save(record, path, &e) < 0)
		kiln_err_release(&e);
	if (replaced) {
		_cleanup_free_ char *old = manifest_path(o, replaced);
		unlink(old);
	}
}

int
ops_file_vertex_run(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v,
                    const char *const *inputs, char **ret_result, struct kiln_err *err)
{
	if (v->ninputs < 1)
		return kiln_err_invalid(err, "file op without a destination input");
	_cleanup_(ops_inputs_release) struct ops_inputs in = {0};
	if (ops_inputs_open(o, inputs, v->ninputs, &in, err) < 0)
		return -1;
	_cleanup_json_ json_t *def = context_def(o, v, inputs);

	/*
	 * The incremental copy (BuildKit has none: its local source syncs the context
	 * incrementally, but each COPY copies in full): the step's previous result, same
	 * def and inputs over other file contents, is cloned by hard links and only what
	 * changed since is written. Anything unclear falls back to the full copy.
	 */
	_cleanup_(ops_copy_manifest_freep) struct ops_copy_manifest *record = NULL, *prev = NULL;
	_cleanup_free_ char *like = NULL;
	if (incremental_ok(o, def, inputs, v->ninputs)) {
		record = ops_copy_manifest_new();
		struct kiln_err e = KILN_ERR_INIT;
		if (sv_op_ctx_lineage_previous(ctx, &like, &e) > 0) {
			_cleanup_free_ char *mp = manifest_path(o, like);
			if (ops_copy_manifest_load(mp, &prev, &e) < 0) {
				sv_op_ctx_logf(ctx, 1, "incremental copy: no manifest for %s\n",
				               like);
			} else if (!owner_names_safe(def, prev)) {
				sv_op_ctx_logf(ctx, 1,
				               "incremental copy not possible (owner names and a "
				               "copied passwd or group file): copying in full\n");
				ops_copy_manifest_free(prev);
				prev = NULL;
			}
		}
		kiln_err_release(&e);
	}
	if (prev) {
		size_t changed = 0;
		struct kiln_err e = KILN_ERR_INIT;
		int r = file_attempt(o, ctx, inputs, &in, def, like, prev, record, &changed,
		                     ret_result, &e);
		if (r == 0) {
			sv_op_ctx_logf(ctx, 1,
			               "incremental copy: %zu of %zu entries written, the rest "
			               "hard-linked from %s\n",
			               changed, ops_copy_manifest_count(record), like);
			manifest_save(o, record, *ret_result, like);
			return 0;
		}
		if (r == -ECANCELED || sv_op_ctx_cancelled(ctx) || ops_interrupted(o)) {
			*err = e;
			return r;
		}
		sv_op_ctx_logf(ctx, 1, "incremental copy not possible (%s): copying in full\n",
		               e.msg ? e.msg : "error");
		kiln_err_release(&e);
		ops_copy_manifest_free(record);
		record = ops_copy_manifest_new();
	}
	int r = file_attempt(o, ctx, inputs, &in, def, NULL, NULL, record, NULL, ret_result, err);
	if (r < 0)
		return r;
	if (record)
		manifest_save(o, record, *ret_result, like);
	return 0;
}

/* ---- content keys of what steps read from the context ---- */

static void
add_digest_part(struct kiln_sha256 *h, const char *name, const struct kiln_digest *d)
{
	char hex[KILN_DIGEST_HEX_LEN + 1];
	kiln_digest_format(d, hex);
	kiln_sha256_update(h, name, strlen(name) + 1);
	kiln_sha256_update(h, hex, strlen(hex) + 1);
}

int
ops_context_content_key(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v,
                        const char *const *inputs, char **ret, struct kiln_err *err)
{
	*ret = NULL;
	bool any = false;
	for (size_t i = 0; i < v->ninputs; i++)
		any |= ops_local_dir(o, inputs[i]) != NULL;
	if (!any)
		return 0;
	struct kiln_sha256 *h = kiln_sha256_new();
	const char *key = v->op == SV_OP_FILE ? "actions" : "mounts";
	size_t k;
	json_t *a;
	json_array_foreach(json_object_get(v->def, key), k, a)
	{
		json_int_t input = json_integer_value(json_object_get(a, "input"));
		if (!json_is_integer(json_object_get(a, "input")) || input < 0 ||
		    (size_t)input >= v->ninputs || !ops_local_dir(o, inputs[input]))
			continue;
		_cleanup_json_ json_t *act = NULL;
		const char *src;
		if (v->op == SV_OP_FILE) {
			act = context_action(a, v->inputs[input]);
			src = json_string_value(json_object_get(a, "src"));
		} else {
			/* A bind mount of the context reads the whole tree under its source. */
			src = json_string_value(json_object_get(a, "source"));
			_cleanup_free_ char *abs = kiln_path_join("/", src ? src : "/");
			_cleanup_json_ json_t *whole =
			        json_pack("{s:s, s:b}", "src", abs, "follow_symlinks", 1);
			/* ...minus what .dockerignore leaves out, as the mount shows it. */
			act = context_action(whole, v->inputs[input]);
		}
		struct kiln_digest d;
		_cleanup_close_ int cfd = ops_local_open(o, inputs[input], err);
		if (cfd < 0) {
			kiln_sha256_free(h);
			return -1;
		}
		if (ops_file_content_digest(act, cfd, o->index, &d, err) < 0) {
			kiln_sha256_free(h);
			return -1;
		}
		_cleanup_free_ char *name = kiln_xasprintf("file %s", src ? src : "/");
		char hex[KILN_DIGEST_HEX_LEN + 1];
		kiln_digest_format(&d, hex);
		sv_op_ctx_add_component(ctx, name, hex);
		add_digest_part(h, name, &d);
	}
	struct kiln_digest all;
	kiln_sha256_final(h, &all);
	char hex[KILN_DIGEST_HEX_LEN + 1];
	kiln_digest_format(&all, hex);
	*ret = kiln_xstrdup(hex);
	return 0;
}

int
ops_export_local(struct ops *o, const char *snapshot, const char *dest, struct kiln_err *err)
{
	if (mkdir(dest, 0755) < 0 && errno != EEXIST)
		return kiln_err_set(err, errno, "mkdir `%s`", dest);
	_cleanup_close_ int dfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kiln_err_set(err, errno, "open `%s`", dest);
	_cleanup_snap_mount_ struct snap_mount *view = NULL;
	if (snap_view(o->opts.snaps, snapshot, &view, err) < 0)
		return -1;
	_cleanup_close_ int sfd = open(snap_mount_path(view), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0)
		return kiln_err_set(err, errno, "open `%s`", snap_mount_path(view));
	/* The file op's copy: the same rules for owners, modes, links and special files. */
	_cleanup_json_ json_t *def =
	        json_pack("{s:[{s:s, s:i, s:s, s:s, s:b, s:b, s:b}]}", "actions", "action", "copy",
	                  "input", 1, "src", "/", "dest", "/", "dir_contents_only", 1,
	                  "create_dest_path", 1, "follow_symlinks", 0);
	int fds[2] = {dfd, sfd};
	if (ops_file_run(def, dfd, fds, 2, NULL, err) < 0)
		return kiln_err_wrap(err, "export to `%s`", dest);
	return 0;
}
