/*
 * Layers + the plan's stage config -> image config, OCI manifest, names.
 *
 * The stage config comes from the plan (frontend/convert.c stage_config), which could not
 * see the base image: it says "base": R and holds only what the Dockerfile set. The merge
 * rules are the ones written at the top of convert.c, with BuildKit's choices where they
 * say nothing: the base's ONBUILD triggers ran in (or were ignored by) this build and do
 * not pass on to the next image; top-level members kiln does not model (docker's
 * "container_config", buildinfo) are not carried over, as BuildKit's typed image struct
 * drops them; a base layer's Docker media type becomes its OCI twin (same bytes) so the
 * manifest is all OCI.
 */
#include "internal.h"

#include "registry/reg.h"

#include <time.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---- the config merge ---- */

static size_t
env_key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq ? (size_t)(eq - kv) : strlen(kv);
}

static bool
env_same_key(const char *a, const char *b)
{
	size_t n = env_key_len(a);
	return n == env_key_len(b) && memcmp(a, b, n) == 0;
}

/* The entry of `env` (array of "K=V") with the key of `kv`, or NULL. */
static const char *
env_find(const json_t *env, const char *kv)
{
	size_t i;
	const json_t *v;
	const char *found = NULL;
	json_array_foreach(env, i, v)
	{
		const char *s = json_string_value(v);
		if (s && env_same_key(s, kv))
			found = s; /* the last one wins, as in a process environment */
	}
	return found;
}

/* Base entries in their order, each replaced by ours with the same key; then PATH (ours
 * or the default) when the base has none, where BuildKit puts it (at FROM, before any
 * ENV); then our new keys in our order. */
static json_t *
merge_env(const json_t *base, const json_t *ours)
{
	json_t *out = json_array();
	size_t i;
	const json_t *v;
	if (json_is_array(base)) {
		json_array_foreach(base, i, v)
		{
			const char *s = json_string_value(v);
			if (!s || env_find(out, s))
				continue;
			const char *mine = json_is_array(ours) ? env_find(ours, s) : NULL;
			json_array_append_new(out, json_string(mine ? mine : s));
		}
	}
	if (!env_find(out, "PATH")) {
		const char *mine = json_is_array(ours) ? env_find(ours, "PATH") : NULL;
		json_array_append_new(out, json_string(mine ? mine : "PATH=" DEFAULT_PATH));
	}
	if (json_is_array(ours)) {
		json_array_foreach(ours, i, v)
		{
			const char *s = json_string_value(v);
			if (s && !env_find(out, s))
				json_array_append_new(out, json_string(env_find(ours, s)));
		}
	}
	return out;
}

static bool
is_map_member(const char *key)
{
	return kiln_str_eq(key, "Labels") || kiln_str_eq(key, "ExposedPorts") ||
	       kiln_str_eq(key, "Volumes");
}

static json_t *
merge_container_config(const json_t *base, const json_t *ours)
{
	json_t *out = json_is_object(base) ? json_deep_copy(base) : json_object();
	json_object_del(out, "OnBuild");
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)ours, key, v)
	{
		if (kiln_str_eq(key, "Env"))
			continue;
		if (json_is_null(v)) {
			json_object_del(out, key);
		} else if (is_map_member(key) && json_is_object(v)) {
			json_t *have = json_object_get(out, key);
			if (json_is_object(have))
				json_object_update(have, v);
			else
				json_object_set_new(out, key, json_deep_copy(v));
		} else {
			json_object_set_new(out, key, json_deep_copy(v));
		}
	}
	json_object_set_new(out, "Env",
	                    merge_env(json_object_get(base, "Env"), json_object_get(ours, "Env")));
	return out;
}

static void
copy_member(json_t *dst, const json_t *src, const char *key)
{
	json_t *v = json_object_get(src, key);
	if (v && !json_is_null(v))
		json_object_set_new(dst, key, json_deep_copy(v));
}

json_t *
exp_config_merge(const json_t *base_config, const json_t *stage_config)
{
	const json_t *ours = stage_config;
	const json_t *base = json_is_object(base_config) ? base_config : NULL;
	json_t *out = json_object();
	copy_member(out, json_object_get(ours, "author") ? ours : base, "author");
	const json_t *plat = json_object_get(ours, "architecture") ? ours : base;
	copy_member(out, plat, "architecture");
	copy_member(out, plat, "os");
	if (base && plat == base) {
		copy_member(out, base, "os.version");
		copy_member(out, base, "os.features");
	}
	copy_member(out, plat, "variant");
	json_object_set_new(out, "config",
	                    merge_container_config(json_object_get(base, "config"),
	                                           json_object_get(ours, "config")));
	json_t *history = json_array();
	const json_t *h;
	size_t i;
	json_array_foreach(json_object_get(base, "history"), i, h)
	        json_array_append_new(history, json_deep_copy(h));
	json_array_foreach(json_object_get(ours, "history"), i, h)
	        json_array_append_new(history, json_deep_copy(h));
	json_object_set_new(out, "history", history);
	return out;
}

/* ---- history against layers ---- */

static bool
history_empty(const json_t *h)
{
	return json_is_true(json_object_get(h, "empty_layer"));
}

/*
 * Each non-empty history entry stands for one layer. When the chain had fewer snapshots
 * than the plan expected (an op that changed nothing and returned its input), the first
 * of our entries are marked empty; when it had more, entries are added, as BuildKit's
 * normalizeLayersAndHistory does.
 */
static void
history_fit(json_t *history, size_t first_ours, size_t nlayers, const char *created)
{
	size_t have = 0;
	size_t i;
	json_t *h;
	json_array_foreach(history, i, h) have += !history_empty(h);
	for (size_t pass = 0; pass < 2 && have > nlayers; pass++) {
		json_array_foreach(history, i, h)
		{
			if (have == nlayers)
				break;
			if ((pass == 0 && i < first_ours) || history_empty(h))
				continue;
			json_object_set_new(h, "empty_layer", json_true());
			have--;
		}
	}
	for (; have < nlayers; have++)
		json_array_append_new(history,
		                      json_pack("{s:s,s:s,s:s}", "created", created, "created_by",
		                                "", "comment", "kiln.exporter"));
}

/* ---- commit ---- */

static const char *
oci_layer_type(const char *mt)
{
	if (mt && kiln_str_eq(mt, REG_MT_DOCKER_LAYER_GZIP))
		return REG_MT_OCI_LAYER_GZIP;
	if (mt && kiln_str_eq(mt, REG_MT_DOCKER_LAYER))
		return REG_MT_OCI_LAYER;
	return mt;
}

/* The Docker twin of an OCI layer type; zstd has none and stays OCI (as in BuildKit). */
static const char *
docker_layer_type(const char *mt)
{
	if (mt && kiln_str_eq(mt, REG_MT_OCI_LAYER_GZIP))
		return REG_MT_DOCKER_LAYER_GZIP;
	if (mt && kiln_str_eq(mt, REG_MT_OCI_LAYER))
		return REG_MT_DOCKER_LAYER;
	return mt;
}

/* A base layer's descriptor in the output: recompressed when force_compression asks for
 * another compression, its media type in the output's family. */
static int
base_layer(struct reg_store *rs, const struct exp_image_opts *o, const struct reg_descriptor *src,
           const char *diff_id, struct reg_descriptor *d, struct kiln_err *err)
{
	reg_descriptor_copy(d, src);
	enum exp_compression have;
	if (o->force_compression && exp_media_compression(d->media_type, &have) &&
	    have != o->compression) {
		struct exp_layer l;
		int r = exp_blob_recompress(rs, d->digest, diff_id, o->compression,
		                            o->compression_level, &l, err);
		if (r < 0)
			return r;
		snprintf(d->digest, sizeof(d->digest), "%s", l.digest);
		d->size = l.size;
		free(d->media_type);
		d->media_type = kiln_xstrdup(l.media_type);
	}
	const char *mt = o->oci_mediatypes ? oci_layer_type(d->media_type)
	                                   : docker_layer_type(oci_layer_type(d->media_type));
	if (mt != d->media_type) {
		char *copy = kiln_xstrdup(mt);
		free(d->media_type);
		d->media_type = copy;
	}
	return 0;
}

int
exp_base_open(struct reg_store *rs, const json_t *stage_config, const struct reg_platform *platform,
              const char *ref, struct reg_image *img, struct kiln_err *err)
{
	struct reg_platform p = REG_PLATFORM_INIT;
	const struct reg_platform *want = platform;
	if (!want) {
		const char *os = json_string_value(json_object_get(stage_config, "os"));
		const char *arch = json_string_value(json_object_get(stage_config, "architecture"));
		const char *variant = json_string_value(json_object_get(stage_config, "variant"));
		if (os && arch) {
			p.os = kiln_xstrdup(os);
			p.architecture = kiln_xstrdup(arch);
			p.variant = variant ? kiln_xstrdup(variant) : NULL;
			want = &p;
		}
	}
	int r = reg_image_open(rs, ref, want, img, err);
	reg_platform_release(&p);
	if (r < 0)
		return kiln_err_wrap(err, "base image %s", ref);
	return 0;
}

/* Names as canonical references with a tag; -EINVAL before any is set. */
static int
parse_names(const struct exp_image_opts *o, struct kiln_strv *out, struct kiln_err *err)
{
	for (size_t i = 0; i < o->nnames; i++) {
		struct reg_ref ref = REG_REF_INIT;
		int r = reg_ref_parse_normalized(o->names[i], &ref, err);
		if (r < 0)
			return kiln_err_wrap(err, "image name `%s`", o->names[i]);
		if (ref.digest) {
			reg_ref_release(&ref);
			return kiln_err_invalid(err, "image name `%s`: a digest cannot be a name",
			                        o->names[i]);
		}
		reg_ref_default_tag(&ref);
		kiln_strv_push_take(out, reg_ref_string(&ref));
		reg_ref_release(&ref);
	}
	return 0;
}

int
exp_image_commit(struct reg_store *rs, const struct exp_image_opts *o, struct exp_image *ret,
                 struct kiln_err *err)
{
	if (!o || !json_is_object(o->stage_config))
		return kiln_err_invalid(err, "image commit: no stage config");
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	int r = parse_names(o, &names, err);
	if (r < 0)
		return r;

	struct reg_image opened = REG_IMAGE_INIT;
	const struct reg_image *base = o->base;
	const char *base_ref = json_string_value(json_object_get(o->stage_config, "base"));
	if (!base && base_ref) {
		r = exp_base_open(rs, o->stage_config, o->platform, base_ref, &opened, err);
		if (r < 0)
			return r;
		base = &opened;
	}
	_cleanup_json_ json_t *base_doc = NULL;
	struct reg_manifest m = {.kind = o->oci_mediatypes ? REG_KIND_OCI_MANIFEST
	                                                   : REG_KIND_DOCKER_MANIFEST};
	_cleanup_buf_ struct kiln_buf cbuf = KILN_BUF_INIT;
	_cleanup_buf_ struct kiln_buf mbuf = KILN_BUF_INIT;
	_cleanup_json_ json_t *merged = NULL, *doc = NULL;
	size_t nbase = 0;
	if (base) {
		nbase = base->manifest.n_layers;
		if (base->config.diff_ids.n != nbase) {
			r = kiln_err_invalid(err, "base image %s: %zu layers but %zu diff_ids",
			                     base_ref ? base_ref : base->manifest_digest, nbase,
			                     base->config.diff_ids.n);
			goto out;
		}
		if (base->config.raw) {
			base_doc = json_incref(base->config.raw);
		} else {
			json_error_t je;
			base_doc = json_loadb(base->config_raw.buf, base->config_raw.len, 0, &je);
			if (!base_doc) {
				r = kiln_err_invalid(err, "base image config: %s", je.text);
				goto out;
			}
		}
	}

	int64_t now = o->source_date_epoch >= 0 ? o->source_date_epoch : (int64_t)time(NULL);
	char created[32];
	exp_rfc3339(now, created);
	merged = exp_config_merge(base_doc, o->stage_config);
	json_t *history = json_object_get(merged, "history");
	size_t first_ours = json_array_size(json_object_get(base_doc, "history"));
	size_t i;
	json_t *h;
	json_array_foreach(history, i, h)
	{
		if (i >= first_ours && !json_object_get(h, "created"))
			json_object_set_new(h, "created", json_string(created));
	}
	history_fit(history, first_ours, nbase + o->nlayers, created);

	json_t *ids = json_array();
	for (size_t k = 0; k < nbase; k++)
		json_array_append_new(ids, json_string(base->config.diff_ids.v[k]));
	for (size_t k = 0; k < o->nlayers; k++)
		json_array_append_new(ids, json_string(o->layers[k].diff_id));

	/* Members in the order docker and BuildKit write them. */
	doc = json_object();
	json_object_set_new(doc, "created", json_string(created));
	copy_member(doc, merged, "author");
	if (!json_object_get(merged, "architecture") || !json_object_get(merged, "os")) {
		struct reg_platform host = REG_PLATFORM_INIT;
		reg_platform_host(&host);
		json_object_set_new(doc, "architecture", json_string(host.architecture));
		json_object_set_new(doc, "os", json_string(host.os));
		if (host.variant)
			json_object_set_new(doc, "variant", json_string(host.variant));
		reg_platform_release(&host);
	} else {
		copy_member(doc, merged, "architecture");
		copy_member(doc, merged, "os");
		copy_member(doc, merged, "os.version");
		copy_member(doc, merged, "os.features");
		copy_member(doc, merged, "variant");
	}
	copy_member(doc, merged, "config");
	json_object_set_new(doc, "rootfs",
	                    json_pack("{s:s,s:o}", "type", "layers", "diff_ids", ids));
	copy_member(doc, merged, "history");

	char *text = json_dumps(doc, JSON_COMPACT);
	kiln_buf_addstr(&cbuf, text);
	free(text);
	m.config.media_type =
	        kiln_xstrdup(o->oci_mediatypes ? REG_MT_OCI_CONFIG : REG_MT_DOCKER_CONFIG);
	m.config.size = (int64_t)cbuf.len;
	r = reg_blob_put(rs, cbuf.buf, cbuf.len, NULL, m.config.digest, err);
	if (r < 0)
		goto out;

	m.n_layers = nbase + o->nlayers;
	m.layers = m.n_layers ? kiln_xcalloc(m.n_layers, sizeof(*m.layers)) : NULL;
	for (size_t k = 0; k < nbase; k++) {
		r = base_layer(rs, o, &base->manifest.layers[k], base->config.diff_ids.v[k],
		               &m.layers[k], err);
		if (r < 0)
			goto out;
	}
	for (size_t k = 0; k < o->nlayers; k++) {
		struct reg_descriptor *d = &m.layers[nbase + k];
		const struct exp_layer *l = &o->layers[k];
		if (!reg_blob_exists(rs, l->digest)) {
			r = kiln_err_set(err, ENOENT, "layer %s is not in the store", l->digest);
			goto out;
		}
		const char *mt = l->media_type ? l->media_type : REG_MT_OCI_LAYER_GZIP;
		d->media_type = kiln_xstrdup(o->oci_mediatypes ? mt : docker_layer_type(mt));
		snprintf(d->digest, sizeof(d->digest), "%s", l->digest);
		d->size = l->size;
	}
	r = reg_manifest_write(&m, &mbuf, err);
	if (r < 0)
		goto out;
	struct exp_image res = {.manifest_size = (int64_t)mbuf.len};
	memcpy(res.config_digest, m.config.digest, sizeof(res.config_digest));
	r = reg_store_put_manifest(rs, mbuf.buf, mbuf.len, res.manifest_digest, err);
	if (r < 0)
		goto out;
	for (size_t k = 0; k < names.n; k++) {
		r = reg_name_set(rs, names.v[k], res.manifest_digest, err);
		if (r < 0) {
			kiln_err_wrap(err, "name image %s", names.v[k]);
			goto out;
		}
	}
	*ret = res;
out:
	reg_manifest_release(&m);
	reg_image_release(&opened);
	return r;
}
