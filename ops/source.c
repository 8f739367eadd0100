/* Source vertices: images from the store, scratch, the build context. */
#include "ops_int.h"

#include "registry/reg.h"
#include "snapshot/snap.h"

/* The empty snapshot scratch stages start from; one per store, made once. */
#define SCRATCH_SNAPSHOT "scratch"

static const char *
def_str(const struct sv_vertex *v, const char *k)
{
	return json_string_value(json_object_get(v->def, k));
}

static int
check_platform(const char *platform, struct kiln_err *err)
{
	if (!platform || !*platform)
		return 0;
	struct reg_platform want = REG_PLATFORM_INIT, host = REG_PLATFORM_INIT;
	if (reg_platform_parse(platform, &want, err) < 0)
		return -EINVAL;
	reg_platform_host(&host);
	bool ok = reg_platform_match(&want, &host);
	_cleanup_free_ char *h = reg_platform_string(&host);
	reg_platform_release(&want);
	reg_platform_release(&host);
	if (!ok)
		return kiln_err_invalid(err,
		                        "platform %s is not this machine's (%s): only the "
		                        "host platform can be built for now",
		                        platform, h);
	return 0;
}

int
ops_source_content_key(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v, char **ret,
                       struct kiln_err *err)
{
	*ret = NULL;
	const char *type = def_str(v, "type");
	if (type && kiln_str_eq(type, "http"))
		return ops_http_content_key(o, ctx, v, ret, err);
	if (!type || !kiln_str_eq(type, "image"))
		return 0;
	const char *ref = def_str(v, "ref");
	if (!ref)
		return kiln_err_invalid(err, "image source without a ref");
	if (check_platform(def_str(v, "platform"), err) < 0)
		return -EINVAL;
	/* The tag resolved to its manifest: a re-imported or re-pulled image misses. */
	const struct reg_image *img;
	if (ops_image_get(o, ref, &img, err) < 0)
		return -1;
	*ret = kiln_xstrdup(img->manifest_digest);
	return 0;
}

static int
scratch_snapshot(struct ops *o, char **ret, struct kiln_err *err)
{
	pthread_mutex_lock(&o->mu);
	int r = 0;
	if (!snap_exists(o->opts.snaps, SCRATCH_SNAPSHOT)) {
		struct snap_mount *m = NULL;
		r = snap_prepare(o->opts.snaps, NULL, &m, err);
		if (r >= 0) {
			r = snap_commit(m, SCRATCH_SNAPSHOT, err);
			/* Another process made it first: theirs is as empty as ours. */
			if (r == -EEXIST) {
				kiln_err_release(err);
				r = 0;
			}
		}
		snap_mount_release(m);
	}
	pthread_mutex_unlock(&o->mu);
	if (r < 0)
		return r;
	*ret = kiln_xstrdup(SCRATCH_SNAPSHOT);
	return 0;
}

static int
image_run(struct ops *o, const struct sv_vertex *v, char **ret, struct kiln_err *err)
{
	const char *ref = def_str(v, "ref");
	if (!ref)
		return kiln_err_invalid(err, "image source without a ref");
	if (check_platform(def_str(v, "platform"), err) < 0)
		return -EINVAL;
	const struct reg_image *img;
	if (ops_image_get(o, ref, &img, err) < 0)
		return -1;
	const struct reg_manifest *m = &img->manifest;
	const struct kiln_strv *diff_ids = &img->config.diff_ids;
	if (diff_ids->n != m->n_layers)
		return kiln_err_invalid(err, "image %s: %zu layers but %zu diff_ids", ref,
		                        m->n_layers, diff_ids->n);
	if (m->n_layers == 0)
		return scratch_snapshot(o, ret, err);
	_cleanup_free_ char *chain = NULL;
	for (size_t i = 0; i < m->n_layers; i++) {
		_cleanup_close_ int fd = reg_blob_open(o->opts.reg, m->layers[i].digest, err);
		if (fd < 0)
			return kiln_err_wrap(err, "image %s", ref);
		char *next = NULL;
		if (snap_layer_apply(o->opts.snaps, chain, fd, m->layers[i].media_type,
		                     diff_ids->v[i], &next, err) < 0)
			return kiln_err_wrap(err, "image %s: layer %s", ref, m->layers[i].digest);
		free(chain);
		chain = next;
	}
	*ret = TAKE_PTR(chain);
	return 0;
}

int
ops_source_run(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v, char **ret_result,
               struct kiln_err *err)
{
	const char *type = def_str(v, "type");
	if (!type)
		return kiln_err_invalid(err, "source without a type");
	if (kiln_str_eq(type, "image"))
		return image_run(o, v, ret_result, err);
	if (kiln_str_eq(type, "scratch"))
		return scratch_snapshot(o, ret_result, err);
	if (kiln_str_eq(type, "local") && def_str(v, "dir")) {
		/* A --build-context directory, read in place like the context. */
		_cleanup_free_ char *res =
		        kiln_xasprintf(OPS_RESULT_LOCAL_DIR "%s", def_str(v, "dir"));
		_cleanup_close_ int fd = ops_local_open(o, res, err);
		if (fd < 0)
			return -1;
		*ret_result = TAKE_PTR(res);
		return 0;
	}
	if (kiln_str_eq(type, "local")) {
		/* Read in place by the steps that use it; their content keys cover the files. */
		if (o->ctx_fd < 0)
			return kiln_err_invalid(err, "the build has no context directory");
		*ret_result = kiln_xstrdup(OPS_RESULT_CONTEXT);
		return 0;
	}
	if (kiln_str_eq(type, "http"))
		return ops_http_run(o, ctx, v, ret_result, err);
	return kiln_err_invalid(err, "unknown source type %s", type);
}
