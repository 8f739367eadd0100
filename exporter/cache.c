/*
 * The portable build cache: --cache-to / --cache-from (see the end of exp.h).
 *
 * Metadata document (the cache manifest's config, or the inline label):
 *	{"kiln.cache":1,
 *	 "records":[{"key":K, "parent":{"key":K0}|{"snapshot":NAME},
 *	             "layer":{"mediaType":..,"digest":..,"size":..,"diffID":..},
 *	             "description":..,"identity":..,"recipe":{..}}...],   parents first
 *	 "mounts":[{"id":ID,"layer":{..}}...]}
 * Nothing in it comes from a secret: keys and recipes hold digests of definitions, and
 * secret bytes never enter a definition, a snapshot or a cache mount kiln writes.
 */
#include "exp.h"
#include "executor/ex.h"
#include "registry/reg.h"
#include "snapshot/snap.h"
#include "solver/sv.h"

#include <fcntl.h>
#include <inttypes.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>

#define MAX_META_BYTES (64u << 20)

/* ---- registry helpers ---- */

static int
client_for(const char *refstr, struct reg_client **ret_c, struct reg_ref *ref, char **ret_repo,
           struct kiln_err *err)
{
	if (reg_ref_parse_normalized(refstr, ref, err) < 0)
		return -EINVAL;
	reg_ref_default_tag(ref); /* as buildx: REF without a tag or digest is :latest */
	struct reg_client_opts co = REG_CLIENT_OPTS_INIT;
	co.certs_d = getenv("KILN_CERTS_D");
	if (reg_client_new(ref->domain, &co, ret_c, err) < 0) {
		reg_ref_release(ref);
		return -1;
	}
	*ret_repo = kiln_xstrdup(ref->path);
	return 0;
}

/* ---- export ---- */

struct collect {
	const struct exp_cache_export_opts *o;
	struct exp_layer_opts lo; /* how step layers are made */
	json_t *records;
	json_t *mounts;
	bool *done; /* by vertex index */
	struct kiln_strv blobs;
	struct kiln_strv mount_ids;
	bool cache_mounts;
	uint64_t mounts_max;
};

static json_t *
layer_json(const struct exp_layer *l)
{
	return json_pack("{s:s, s:s, s:I, s:s}", "mediaType", l->media_type, "digest", l->digest,
	                 "size", (json_int_t)l->size, "diffID", l->diff_id);
}

static void
blob_add(struct kiln_strv *v, const char *digest)
{
	for (size_t i = 0; i < v->n; i++)
		if (kiln_str_eq(v->v[i], digest))
			return;
	kiln_strv_push(v, digest);
}

static bool
is_step(const struct sv_vertex *v)
{
	return v->op != SV_OP_SOURCE && v->ninputs > 0;
}

/* The cache id a cache mount of `def` uses (as ops/exec.c and the executor name it). */
static char *
mount_id(const json_t *def, const json_t *m)
{
	const char *id = json_string_value(json_object_get(m, "id"));
	if (id && *id)
		return kiln_xstrdup(id);
	const char *target = json_string_value(json_object_get(m, "target"));
	if (!target)
		return NULL;
	if (target[0] == '/')
		return kiln_xstrdup(target);
	const char *cwd = json_string_value(json_object_get(def, "cwd"));
	return kiln_path_join(cwd ? cwd : "/", target);
}

static void
note_mounts(struct collect *c, const struct sv_vertex *v)
{
	if (!c->cache_mounts || v->op != SV_OP_EXEC)
		return;
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(v->def, "mounts"), i, m)
	{
		const char *type = json_string_value(json_object_get(m, "type"));
		if (!type || !kiln_str_eq(type, "cache") || json_object_get(m, "input"))
			continue;
		_cleanup_free_ char *id = mount_id(v->def, m);
		if (id)
			blob_add(&c->mount_ids, id);
	}
}

static int collect_vertex(struct collect *c, const struct sv_vertex *v, struct kiln_err *err);
static int importer_layer(struct exp_cache_importer *imp, const char *name, char **ret_parent,
                          json_t **ret_layer, struct kiln_err *err);

/* Add v's record (after its parent's). Vertices without a usable result are left out. */
static int
collect_vertex(struct collect *c, const struct sv_vertex *v, struct kiln_err *err)
{
	const struct exp_cache_export_opts *o = c->o;
	if (c->done[v->index] || !is_step(v))
		return 0;
	c->done[v->index] = true;
	const char *result = sv_solver_result(o->solver, v);
	const char *key = sv_solver_cache_key(o->solver, v);
	const struct sv_vertex *p = v->inputs[0];
	const char *presult = sv_solver_result(o->solver, p);
	if (!result || !key || !presult || !snap_name_valid(result))
		return 0;
	_cleanup_free_ char *parent = NULL;
	_cleanup_json_ json_t *imported = NULL;
	if (o->importer && !snap_exists(o->ss, result)) {
		int r = importer_layer(o->importer, result, &parent, &imported, err);
		if (r < 0)
			return kiln_err_wrap(err, "cache export: %s", result);
	} else if (snap_parent(o->ss, result, &parent, err) < 0) {
		return kiln_err_wrap(err, "cache export: %s", result);
	}
	/* A step's snapshot sits on its first input's: anything else cannot be replayed. */
	if (!parent || !kiln_str_eq(parent, presult))
		return 0;
	json_t *pj;
	if (is_step(p)) {
		int r = collect_vertex(c, p, err);
		if (r < 0)
			return r;
		const char *pkey = sv_solver_cache_key(o->solver, p);
		if (!pkey)
			return 0;
		/* The parent must be in the metadata, or the record cannot be placed. */
		bool found = false;
		size_t i;
		json_t *rec;
		json_array_foreach(c->records, i, rec)
		{
			const char *k = json_string_value(json_object_get(rec, "key"));
			if (k && kiln_str_eq(k, pkey))
				found = true;
		}
		if (!found)
			return 0;
		pj = json_pack("{s:s}", "key", pkey);
	} else {
		if (!snap_name_valid(presult))
			return 0;
		pj = json_pack("{s:s}", "snapshot", presult);
	}
	struct exp_layer layer;
	json_t *lj;
	if (imported) {
		lj = json_incref(imported);
	} else {
		if (exp_layer_from_snapshot(o->ss, result, o->rs, &c->lo, &layer, err) < 0) {
			json_decref(pj);
			return kiln_err_wrap(err, "cache export: layer of %s",
			                     v->description ? v->description : result);
		}
		lj = layer_json(&layer);
	}
	const char *ldigest = json_string_value(json_object_get(lj, "digest"));
	json_t *rec = json_pack("{s:s, s:o, s:o}", "key", key, "parent", pj, "layer", lj);
	json_t *stored = NULL;
	if (o->cache && sv_cache_record_get(o->cache, key, &stored, err) < 0)
		kiln_err_release(err); /* only the explanation is lost */
	const char *fields[] = {"identity", "description", "recipe"};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(fields); i++) {
		json_t *f = json_object_get(stored, fields[i]);
		if (f)
			json_object_set(rec, fields[i], f);
	}
	if (!json_object_get(rec, "description") && v->description)
		json_object_set_new(rec, "description", json_string(v->description));
	json_decref(stored);
	json_array_append_new(c->records, rec);
	blob_add(&c->blobs, ldigest);
	note_mounts(c, v);
	return 0;
}

struct du {
	uint64_t bytes;
	uint64_t cap;
};
static __thread struct du *du_cur;

static int
du_fn(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F && S_ISREG(st->st_mode))
		du_cur->bytes += (uint64_t)st->st_size;
	return du_cur->bytes > du_cur->cap ? 1 : 0;
}

/* The contents of one cache mount as a layer in the store. Returns 0 with *ret unset when
 * there is nothing to export (with a warning when over the cap). */
static int
mount_layer(struct collect *c, const char *id, json_t **ret, struct kiln_err *err)
{
	*ret = NULL;
	_cleanup_free_ char *name = ex_cache_dir_name(id);
	_cleanup_free_ char *dir = kiln_xasprintf("%s/cache-mounts/%s", c->o->kiln_root, name);
	struct stat st;
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	struct du d = {.cap = c->mounts_max};
	du_cur = &d;
	int over = nftw(dir, du_fn, 16, FTW_PHYS | FTW_MOUNT);
	du_cur = NULL;
	if (over != 0) {
		if (c->o->warnings)
			kiln_strv_pushf(c->o->warnings,
			                "cache mount %s is larger than cache-mounts-max-size "
			                "(%" PRIu64 " bytes): not exported",
			                id, c->mounts_max);
		return 0;
	}
	struct reg_import_opts io = REG_IMPORT_OPTS_INIT;
	io.created = 0;
	io.created_by = "kiln cache mount";
	char manifest[KILN_DIGEST_HEX_LEN + 1];
	if (reg_import_rootfs(c->o->rs, dir, &io, manifest, err) < 0)
		return kiln_err_wrap(err, "cache export: cache mount %s", id);
	_cleanup_buf_ struct kiln_buf mb = KILN_BUF_INIT, cb = KILN_BUF_INIT;
	struct reg_manifest m = {0};
	struct reg_config cfg = {0};
	int r = -EINVAL;
	if (reg_blob_read(c->o->rs, manifest, MAX_META_BYTES, &mb, err) < 0 ||
	    reg_manifest_parse(mb.buf, mb.len, NULL, &m, err) < 0)
		return kiln_err_wrap(err, "cache export: cache mount %s", id);
	if (reg_blob_read(c->o->rs, m.config.digest, MAX_META_BYTES, &cb, err) < 0 ||
	    reg_config_parse(cb.buf, cb.len, NULL, &cfg, err) < 0) {
		kiln_err_wrap(err, "cache export: cache mount %s", id);
		goto out;
	}
	if (m.n_layers != 1 || cfg.diff_ids.n != 1) {
		kiln_err_invalid(err, "cache export: cache mount %s: not one layer", id);
		goto out;
	}
	json_t *layer = json_pack("{s:s, s:s, s:I, s:s}", "mediaType", m.layers[0].media_type,
	                          "digest", m.layers[0].digest, "size",
	                          (json_int_t)m.layers[0].size, "diffID", cfg.diff_ids.v[0]);
	/* The layer holds what is in the directory; its own owner and mode ride beside. */
	*ret = json_pack("{s:s, s:o, s:i, s:I, s:I}", "id", id, "layer", layer, "mode",
	                 (int)(st.st_mode & 07777), "uid", (json_int_t)st.st_uid, "gid",
	                 (json_int_t)st.st_gid);
	blob_add(&c->blobs, m.layers[0].digest);
	r = 0;
out:
	reg_manifest_release(&m);
	reg_config_release(&cfg);
	return r;
}

static void
collect_release(struct collect *c)
{
	json_decref(c->records);
	json_decref(c->mounts);
	free(c->done);
	kiln_strv_release(&c->blobs);
	kiln_strv_release(&c->mount_ids);
}

/* The metadata for the solve: mode=min follows the target's first inputs down to its
 * stage root; mode=max takes every step with a result. */
static int
collect(const struct exp_cache_export_opts *o, const struct exp_layer_opts *lo, bool max,
        bool cache_mounts, uint64_t mounts_max, struct collect *c, struct kiln_err *err)
{
	*c = (struct collect){.o = o,
	                      .lo = *lo,
	                      .records = json_array(),
	                      .mounts = json_array(),
	                      .done = kiln_xcalloc(o->graph->nvertices + 1, sizeof(bool)),
	                      .blobs = KILN_STRV_INIT,
	                      .mount_ids = KILN_STRV_INIT,
	                      .cache_mounts = cache_mounts,
	                      .mounts_max = mounts_max};
	int r = 0;
	if (max) {
		for (size_t i = 0; i < o->graph->nvertices && r >= 0; i++)
			r = collect_vertex(c, o->graph->vertices[i], err);
	} else {
		r = collect_vertex(c, o->target, err);
	}
	for (size_t i = 0; r >= 0 && i < c->mount_ids.n; i++) {
		json_t *mj = NULL;
		r = mount_layer(c, c->mount_ids.v[i], &mj, err);
		if (mj)
			json_array_append_new(c->mounts, mj);
	}
	if (r < 0)
		collect_release(c);
	return r;
}

static char *
meta_text(struct collect *c)
{
	json_t *doc = json_pack("{s:i, s:O, s:O}", "kiln.cache", 1, "records", c->records, "mounts",
	                        c->mounts);
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	if (!text)
		abort();
	return text;
}

/* Store the metadata and an OCI manifest over it and the blobs; returns the manifest. */
static int
write_manifest(struct collect *c, char config_digest[KILN_DIGEST_HEX_LEN + 1],
               char manifest_digest[KILN_DIGEST_HEX_LEN + 1], struct kiln_buf *ret_manifest,
               struct kiln_err *err)
{
	struct reg_store *rs = c->o->rs;
	_cleanup_free_ char *text = meta_text(c);
	if (reg_blob_put(rs, text, strlen(text), NULL, config_digest, err) < 0)
		return -1;
	json_t *layers = json_array();
	for (size_t i = 0; i < c->blobs.n; i++) {
		int64_t size = reg_blob_size(rs, c->blobs.v[i], err);
		if (size < 0) {
			json_decref(layers);
			return -1;
		}
		const char *mt = REG_MT_OCI_LAYER_GZIP;
		size_t k;
		json_t *rec;
		json_array_foreach(c->records, k, rec)
		{
			json_t *l = json_object_get(rec, "layer");
			const char *d = json_string_value(json_object_get(l, "digest"));
			if (d && kiln_str_eq(d, c->blobs.v[i]))
				mt = json_string_value(json_object_get(l, "mediaType"));
		}
		json_array_append_new(layers,
		                      json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest",
		                                c->blobs.v[i], "size", (json_int_t)size));
	}
	json_t *m =
	        json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:o}", "schemaVersion", 2, "mediaType",
	                  REG_MT_OCI_MANIFEST, "config", "mediaType", EXP_CACHE_CONFIG_MT, "digest",
	                  config_digest, "size", (json_int_t)strlen(text), "layers", layers);
	char *mt = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(m);
	if (!mt)
		abort();
	kiln_buf_addstr(ret_manifest, mt);
	free(mt);
	return reg_blob_put(rs, ret_manifest->buf, ret_manifest->len, NULL, manifest_digest, err);
}

static int
export_local(const struct exp_cache_spec *spec, struct collect *c, struct kiln_err *err)
{
	char cfg[KILN_DIGEST_HEX_LEN + 1], man[KILN_DIGEST_HEX_LEN + 1];
	_cleanup_buf_ struct kiln_buf mb = KILN_BUF_INIT;
	if (write_manifest(c, cfg, man, &mb, err) < 0)
		return -1;
	if (reg_layout_init(spec->dir, err) < 0)
		return -1;
	kiln_strv_push(&c->blobs, cfg);
	kiln_strv_push(&c->blobs, man);
	for (size_t i = 0; i < c->blobs.n; i++)
		if (reg_layout_put_blob(spec->dir, c->o->rs, c->blobs.v[i], err) < 0)
			return -1;
	/* One manifest: a new export replaces the last (as buildx's local cache does). */
	json_t *idx = json_pack("{s:i, s:s, s:[{s:s, s:s, s:I, s:{s:s}}]}", "schemaVersion", 2,
	                        "mediaType", REG_MT_OCI_INDEX, "manifests", "mediaType",
	                        REG_MT_OCI_MANIFEST, "digest", man, "size", (json_int_t)mb.len,
	                        "annotations", "org.opencontainers.image.ref.name", "cache");
	char *text = json_dumps(idx, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(idx);
	if (!text)
		abort();
	_cleanup_free_ char *path = kiln_path_join(spec->dir, "index.json");
	int r = kiln_write_file_atomic_at(AT_FDCWD, path, text, strlen(text), 0644, err);
	free(text);
	return r;
}

static int
export_registry(const struct exp_cache_spec *spec, struct collect *c, struct kiln_err *err)
{
	char cfg[KILN_DIGEST_HEX_LEN + 1], man[KILN_DIGEST_HEX_LEN + 1];
	_cleanup_buf_ struct kiln_buf mb = KILN_BUF_INIT;
	if (write_manifest(c, cfg, man, &mb, err) < 0)
		return -1;
	struct reg_client *cl = NULL;
	struct reg_ref ref = REG_REF_INIT;
	_cleanup_free_ char *repo = NULL;
	if (client_for(spec->ref, &cl, &ref, &repo, err) < 0)
		return -1;
	kiln_strv_push(&c->blobs, cfg);
	int r = reg_client_push_blobs(cl, c->o->rs, repo, c->blobs.v, c->blobs.n, err);
	if (r >= 0)
		r = reg_client_put_manifest(cl, repo, ref.tag ? ref.tag : ref.digest,
		                            REG_MT_OCI_MANIFEST, mb.buf, mb.len, err);
	reg_client_free(cl);
	reg_ref_release(&ref);
	if (r < 0)
		return kiln_err_wrap(err, "push cache to %s", spec->ref);
	return 0;
}

/* The spec's compression= and compression-level= on the layer options. */
static int
layer_opts_for(const struct exp_cache_spec *spec, struct exp_layer_opts *lo, struct kiln_err *err)
{
	if (spec->compression && exp_compression_parse(spec->compression, &lo->compression) < 0)
		return kiln_err_invalid(err, "compression=%s: unknown", spec->compression);
	if (spec->compression_level >= 0)
		lo->compression_level = spec->compression_level;
	return 0;
}

int
exp_cache_export(const struct exp_cache_spec *spec, const struct exp_cache_export_opts *o,
                 struct kiln_err *err)
{
	if (spec->type == EXP_CACHE_INLINE)
		return 0; /* written into the image config by exp_cache_inline_apply */
	struct exp_layer_opts lo =
	        o->layer_opts ? *o->layer_opts : (struct exp_layer_opts)EXP_LAYER_OPTS_INIT;
	if (layer_opts_for(spec, &lo, err) < 0)
		return -1;
	struct collect c;
	if (collect(o, &lo, spec->max, spec->cache_mounts, spec->cache_mounts_max, &c, err) < 0)
		return -1;
	int r = spec->type == EXP_CACHE_LOCAL ? export_local(spec, &c, err)
	                                      : export_registry(spec, &c, err);
	collect_release(&c);
	return r;
}

int
exp_cache_inline_apply(const struct exp_cache_export_opts *o, json_t *stage_config,
                       struct kiln_err *err)
{
	struct exp_layer_opts lo =
	        o->layer_opts ? *o->layer_opts : (struct exp_layer_opts)EXP_LAYER_OPTS_INIT;
	struct collect c;
	if (collect(o, &lo, false, false, 0, &c, err) < 0)
		return -1;
	_cleanup_free_ char *text = meta_text(&c);
	collect_release(&c);
	json_t *inner = json_object_get(stage_config, "config");
	if (!json_is_object(inner)) {
		inner = json_object();
		json_object_set_new(stage_config, "config", inner);
	}
	json_t *labels = json_object_get(inner, "Labels");
	if (!json_is_object(labels)) {
		labels = json_object();
		json_object_set_new(inner, "Labels", labels);
	}
	json_object_set_new(labels, EXP_CACHE_INLINE_LABEL, json_string(text));
	return 0;
}

/* ---- import ---- */

enum src_kind { SRC_LOCAL, SRC_REGISTRY };

struct source {
	enum src_kind kind;
	char *dir;
	struct reg_client *client;
	char *repo;
};

struct blob {
	char *media_type;
	char digest[KILN_DIGEST_HEX_LEN + 1];
	char diff_id[KILN_DIGEST_HEX_LEN + 1];
	int64_t size;
	size_t source;
};

struct entry {
	char *name;   /* the chain id the layer gets */
	char *parent; /* snapshot name below it */
	struct blob blob;
	int available; /* 0 unknown, 1 its blob can be had, -1 it cannot */
};

struct mount_entry {
	char *id;
	struct blob blob;
	uint32_t mode, uid, gid; /* of the directory itself, which the layer lacks */
	bool done;
};

struct exp_cache_importer {
	struct snap_store *ss;
	struct reg_store *rs;
	char *root;
	const struct sv_ops *inner;
	void *inner_data;
	pthread_mutex_t mu;
	struct source *sources;
	size_t nsources, sources_alloc;
	struct entry *entries;
	size_t nentries, entries_alloc;
	struct mount_entry *mounts;
	size_t nmounts, mounts_alloc;
	size_t fetched;
	struct kiln_strv warnings;
};

int
exp_cache_importer_new(struct snap_store *ss, struct reg_store *rs, const char *kiln_root,
                       const struct sv_ops *inner, void *inner_data,
                       struct exp_cache_importer **ret, struct kiln_err *err)
{
	(void)err;
	struct exp_cache_importer *imp = kiln_xcalloc(1, sizeof(*imp));
	imp->ss = ss;
	imp->rs = rs;
	imp->root = kiln_xstrdup(kiln_root);
	imp->inner = inner;
	imp->inner_data = inner_data;
	imp->warnings = (struct kiln_strv)KILN_STRV_INIT;
	pthread_mutex_init(&imp->mu, NULL);
	*ret = imp;
	return 0;
}

void
exp_cache_importer_free(struct exp_cache_importer *imp)
{
	if (!imp)
		return;
	for (size_t i = 0; i < imp->nsources; i++) {
		free(imp->sources[i].dir);
		free(imp->sources[i].repo);
		reg_client_free(imp->sources[i].client);
	}
	free(imp->sources);
	for (size_t i = 0; i < imp->nentries; i++) {
		free(imp->entries[i].name);
		free(imp->entries[i].parent);
		free(imp->entries[i].blob.media_type);
	}
	free(imp->entries);
	for (size_t i = 0; i < imp->nmounts; i++) {
		free(imp->mounts[i].id);
		free(imp->mounts[i].blob.media_type);
	}
	free(imp->mounts);
	kiln_strv_release(&imp->warnings);
	pthread_mutex_destroy(&imp->mu);
	free(imp->root);
	free(imp);
}

void
exp_cache_importer_stats(struct exp_cache_importer *imp, size_t *ret_layers, size_t *ret_fetched)
{
	pthread_mutex_lock(&imp->mu);
	*ret_layers = imp->nentries;
	*ret_fetched = imp->fetched;
	pthread_mutex_unlock(&imp->mu);
}

const struct kiln_strv *
exp_cache_importer_warnings(struct exp_cache_importer *imp)
{
	return &imp->warnings;
}

/* A blob of a local cache: read from the layout, checked by the store's ingest. */
static int
local_blob(struct reg_store *rs, const char *dir, const char *digest, int64_t size,
           struct kiln_err *err)
{
	if (reg_blob_exists(rs, digest))
		return 0;
	_cleanup_free_ char *path = kiln_xasprintf("%s/blobs/sha256/%s", dir, digest + 7);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return kiln_err_set(err, errno, "open %s", path);
	return reg_blob_put_fd(rs, fd, digest, size, NULL, err);
}

static int
fetch_blob(struct exp_cache_importer *imp, const struct blob *b, struct kiln_err *err)
{
	const struct source *src = &imp->sources[b->source];
	if (reg_blob_exists(imp->rs, b->digest))
		return 0;
	int r = src->kind == SRC_LOCAL ? local_blob(imp->rs, src->dir, b->digest, b->size, err)
	                               : reg_client_fetch_blob(src->client, imp->rs, src->repo,
	                                                       b->digest, b->size, err);
	if (r >= 0)
		imp->fetched++;
	return r < 0 ? r : 0;
}

static bool
blob_parse(const json_t *l, size_t source, struct blob *ret)
{
	const char *mt = json_string_value(json_object_get(l, "mediaType"));
	const char *d = json_string_value(json_object_get(l, "digest"));
	const char *diff = json_string_value(json_object_get(l, "diffID"));
	json_t *size = json_object_get(l, "size");
	if (!mt || !d || !diff || !kiln_digest_valid(d) || !kiln_digest_valid(diff) ||
	    !json_is_integer(size) || json_integer_value(size) < 0)
		return false;
	*ret = (struct blob){.media_type = kiln_xstrdup(mt),
	                     .size = (int64_t)json_integer_value(size),
	                     .source = source};
	snprintf(ret->digest, sizeof(ret->digest), "%s", d);
	snprintf(ret->diff_id, sizeof(ret->diff_id), "%s", diff);
	return true;
}

static struct entry *
entry_find(struct exp_cache_importer *imp, const char *name)
{
	for (size_t i = 0; i < imp->nentries; i++)
		if (kiln_str_eq(imp->entries[i].name, name))
			return &imp->entries[i];
	return NULL;
}

/* Whether a blob can be had without fetching it: the layout has a file of its size, or
 * the registry answers HEAD for it. */
static bool
blob_available(struct exp_cache_importer *imp, const struct blob *b)
{
	if (reg_blob_exists(imp->rs, b->digest))
		return true;
	const struct source *src = &imp->sources[b->source];
	if (src->kind == SRC_LOCAL) {
		_cleanup_free_ char *path =
		        kiln_xasprintf("%s/blobs/sha256/%s", src->dir, b->digest + 7);
		struct stat st;
		return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == b->size;
	}
	struct kiln_err err = KILN_ERR_INIT;
	int r = reg_client_blob_exists(src->client, src->repo, b->digest, &err);
	kiln_err_release(&err);
	return r == 1;
}

/* Every unapplied layer from `name` down can be had (so a hit on it will not fail). */
static bool
chain_available(struct exp_cache_importer *imp, const char *name)
{
	for (int depth = 0; depth < 4096; depth++) {
		if (snap_exists(imp->ss, name))
			return true;
		struct entry *e = entry_find(imp, name);
		if (!e)
			return false;
		if (!e->available)
			e->available = blob_available(imp, &e->blob) ? 1 : -1;
		if (e->available < 0)
			return false;
		name = e->parent;
	}
	return false;
}

struct prefetch {
	struct exp_cache_importer *imp;
	const struct blob *blob;
	struct kiln_err err;
	int r;
	bool fetched;
};

static void *
prefetch_main(void *arg)
{
	struct prefetch *p = arg;
	p->fetched = !reg_blob_exists(p->imp->rs, p->blob->digest);
	const struct source *src = &p->imp->sources[p->blob->source];
	p->r = src->kind == SRC_LOCAL
	               ? local_blob(p->imp->rs, src->dir, p->blob->digest, p->blob->size, &p->err)
	               : reg_client_fetch_blob(src->client, p->imp->rs, src->repo, p->blob->digest,
	                                       p->blob->size, &p->err);
	return NULL;
}

/* Download the missing blobs of `name`'s unapplied chain at once, a few at a time, before
 * they are applied one by one. A failure here is left for the apply to report. */
static void
prefetch_chain(struct exp_cache_importer *imp, const char *name)
{
	enum { AT_ONCE = 4 };
	struct prefetch p[AT_ONCE];
	pthread_t th[AT_ONCE];
	size_t n = 0;
	for (int depth = 0; depth < 4096 && !snap_exists(imp->ss, name); depth++) {
		struct entry *e = entry_find(imp, name);
		if (!e)
			break;
		if (!reg_blob_exists(imp->rs, e->blob.digest))
			p[n++] = (struct prefetch){
			        .imp = imp, .blob = &e->blob, .err = KILN_ERR_INIT};
		name = e->parent;
		if (n == AT_ONCE || snap_exists(imp->ss, name) || !entry_find(imp, name)) {
			bool started[AT_ONCE] = {false};
			for (size_t i = 0; i < n; i++)
				started[i] =
				        pthread_create(&th[i], NULL, prefetch_main, &p[i]) == 0;
			for (size_t i = 0; i < n; i++) {
				if (started[i])
					pthread_join(th[i], NULL);
				if (started[i] && p[i].r >= 0 && p[i].fetched)
					imp->fetched++;
				kiln_err_release(&p[i].err);
			}
			n = 0;
		}
	}
}

/* Make snapshot `name` from imported layers (its parents first). Called with mu held. */
static int
materialize(struct exp_cache_importer *imp, const char *name, int depth, struct kiln_err *err)
{
	if (snap_exists(imp->ss, name))
		return 0;
	struct entry *e = entry_find(imp, name);
	if (!e || depth > 4096)
		return kiln_err_set(err, ENOENT, "snapshot %s is not in the imported cache", name);
	if (depth == 0)
		prefetch_chain(imp, name);
	int r = materialize(imp, e->parent, depth + 1, err);
	if (r < 0)
		return r;
	if (fetch_blob(imp, &e->blob, err) < 0)
		return kiln_err_wrap(err, "cache layer %s", e->blob.digest);
	_cleanup_close_ int fd = reg_blob_open(imp->rs, e->blob.digest, err);
	if (fd < 0)
		return fd;
	_cleanup_free_ char *got = NULL;
	r = snap_layer_apply(imp->ss, e->parent, fd, e->blob.media_type, e->blob.diff_id, &got,
	                     err);
	if (r < 0)
		return kiln_err_wrap(err, "cache layer %s", e->blob.digest);
	if (!kiln_str_eq(got, name))
		return kiln_err_invalid(err, "cache layer %s applied as %s, not %s", e->blob.digest,
		                        got, name);
	return 0;
}

/* Records of one metadata document, parents first; a record whose parent is unknown is
 * dropped (and so are its children). */
static int
import_meta(struct exp_cache_importer *imp, const json_t *meta, size_t source,
            struct sv_cache *cache, size_t *ret_records, struct kiln_err *err)
{
	const json_t *records = json_object_get(meta, "records");
	if (json_integer_value(json_object_get(meta, "kiln.cache")) != 1)
		return kiln_err_invalid(err, "cache metadata of an unknown version");
	if (!json_is_array(records))
		return kiln_err_invalid(err, "cache metadata without records");
	/* key -> chain name of the records taken, for the children's parents */
	struct kiln_strv keys = KILN_STRV_INIT, names = KILN_STRV_INIT;
	size_t i, added = 0;
	json_t *rec;
	int r = 0;
	json_array_foreach(records, i, rec)
	{
		const char *key = json_string_value(json_object_get(rec, "key"));
		json_t *pj = json_object_get(rec, "parent");
		const char *pkey = json_string_value(json_object_get(pj, "key"));
		const char *psnap = json_string_value(json_object_get(pj, "snapshot"));
		struct blob b;
		if (!key || !kiln_digest_valid(key) ||
		    !blob_parse(json_object_get(rec, "layer"), source, &b))
			continue;
		const char *parent = NULL;
		if (pkey) {
			for (size_t k = 0; k < keys.n && !parent; k++)
				if (kiln_str_eq(keys.v[k], pkey))
					parent = names.v[k];
		} else if (psnap && snap_name_valid(psnap)) {
			parent = psnap;
		}
		if (!parent) {
			free(b.media_type);
			continue;
		}
		char *name = snap_chain_id(parent, b.diff_id);
		kiln_strv_push(&keys, key);
		kiln_strv_push(&names, name);
		pthread_mutex_lock(&imp->mu);
		if (!entry_find(imp, name)) {
			KILN_GROW(imp->entries, imp->entries_alloc, imp->nentries + 1);
			imp->entries[imp->nentries++] =
			        (struct entry){.name = kiln_xstrdup(name),
			                       .parent = kiln_xstrdup(parent),
			                       .blob = b};
		} else {
			free(b.media_type);
		}
		pthread_mutex_unlock(&imp->mu);
		const json_t *recipe = json_object_get(rec, "recipe");
		r = sv_cache_record_import(cache, key, name,
		                           json_string_value(json_object_get(rec, "identity")),
		                           json_string_value(json_object_get(rec, "description")),
		                           json_is_object(recipe) ? recipe : NULL,
		                           imp->inner->result_exists, imp->inner_data, err);
		free(name);
		if (r < 0)
			break;
		added += (size_t)r;
	}
	kiln_strv_release(&keys);
	kiln_strv_release(&names);
	if (r < 0)
		return r;
	json_array_foreach(json_object_get(meta, "mounts"), i, rec)
	{
		const char *id = json_string_value(json_object_get(rec, "id"));
		struct blob b;
		if (!id || !blob_parse(json_object_get(rec, "layer"), source, &b))
			continue;
		pthread_mutex_lock(&imp->mu);
		KILN_GROW(imp->mounts, imp->mounts_alloc, imp->nmounts + 1);
		json_t *mode = json_object_get(rec, "mode");
		imp->mounts[imp->nmounts++] = (struct mount_entry){
		        .id = kiln_xstrdup(id),
		        .blob = b,
		        .mode = json_is_integer(mode) ? (uint32_t)json_integer_value(mode) & 07777
		                                      : 0755,
		        .uid = (uint32_t)json_integer_value(json_object_get(rec, "uid")),
		        .gid = (uint32_t)json_integer_value(json_object_get(rec, "gid"))};
		pthread_mutex_unlock(&imp->mu);
	}
	if (ret_records)
		*ret_records += added;
	return 0;
}

static int
parse_json(const char *data, size_t len, json_t **ret, const char *what, struct kiln_err *err)
{
	json_error_t je;
	*ret = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!*ret || !json_is_object(*ret)) {
		json_decref(*ret);
		*ret = NULL;
		return kiln_err_invalid(err, "%s: not a JSON object", what);
	}
	return 0;
}

/* The metadata from a manifest: our config, or an image config with the inline label. */
static int
meta_from_manifest(struct exp_cache_importer *imp, size_t source, const json_t *manifest,
                   json_t **ret, struct kiln_err *err)
{
	json_t *cfg = json_object_get(manifest, "config");
	const char *mt = json_string_value(json_object_get(cfg, "mediaType"));
	const char *digest = json_string_value(json_object_get(cfg, "digest"));
	json_t *size = json_object_get(cfg, "size");
	if (!mt || !digest || !kiln_digest_valid(digest) || !json_is_integer(size))
		return kiln_err_invalid(err, "cache manifest without a config");
	struct blob b = {.size = (int64_t)json_integer_value(size), .source = source};
	snprintf(b.digest, sizeof(b.digest), "%s", digest);
	size_t layers_fetched = imp->fetched;
	int r = fetch_blob(imp, &b, err);
	imp->fetched = layers_fetched; /* metadata, not a layer */
	if (r < 0)
		return -1;
	_cleanup_buf_ struct kiln_buf cb = KILN_BUF_INIT;
	if (reg_blob_read(imp->rs, digest, MAX_META_BYTES, &cb, err) < 0)
		return -1;
	_cleanup_json_ json_t *doc = NULL;
	if (parse_json(cb.buf, cb.len, &doc, "cache config", err) < 0)
		return -1;
	if (kiln_str_eq(mt, EXP_CACHE_CONFIG_MT)) {
		*ret = TAKE_PTR(doc);
		return 0;
	}
	const char *label = json_string_value(json_object_get(
	        json_object_get(json_object_get(doc, "config"), "Labels"), EXP_CACHE_INLINE_LABEL));
	if (!label)
		return kiln_err_set(err, ENOENT, "the image has no inline cache (label %s)",
		                    EXP_CACHE_INLINE_LABEL);
	return parse_json(label, strlen(label), ret, "inline cache", err);
}

static int
read_manifest_local(const char *dir, struct kiln_buf *out, struct kiln_err *err)
{
	_cleanup_buf_ struct kiln_buf ib = KILN_BUF_INIT;
	_cleanup_free_ char *ipath = kiln_path_join(dir, "index.json");
	if (kiln_buf_read_file(&ib, ipath, err) < 0)
		return -1;
	_cleanup_json_ json_t *idx = NULL;
	if (parse_json(ib.buf, ib.len, &idx, ipath, err) < 0)
		return -1;
	json_t *m = json_array_get(json_object_get(idx, "manifests"), 0);
	const char *digest = json_string_value(json_object_get(m, "digest"));
	if (!digest || !kiln_digest_valid(digest))
		return kiln_err_invalid(err, "%s names no cache manifest", ipath);
	_cleanup_free_ char *path = kiln_xasprintf("%s/blobs/sha256/%s", dir, digest + 7);
	if (kiln_buf_read_file(out, path, err) < 0)
		return -1;
	struct kiln_digest d;
	char hex[KILN_DIGEST_HEX_LEN + 1];
	kiln_sha256_buf(out->buf, out->len, &d);
	kiln_digest_format(&d, hex);
	if (!kiln_str_eq(hex, digest))
		return kiln_err_invalid(err, "%s: digest mismatch", path);
	return 0;
}

/* An image pushed as an index (inline cache): the host platform's manifest. */
static int
index_manifest(struct reg_client *c, const char *repo, struct kiln_buf *mb, struct kiln_err *err)
{
	struct reg_index idx = {0};
	if (reg_index_parse(mb->buf, mb->len, NULL, &idx, err) < 0)
		return -1;
	int i = reg_index_select(&idx, NULL, err);
	_cleanup_free_ char *digest = i >= 0 ? kiln_xstrdup(idx.manifests[i].digest) : NULL;
	reg_index_release(&idx);
	if (i < 0)
		return i;
	kiln_buf_reset(mb);
	enum reg_kind kind;
	char got[KILN_DIGEST_HEX_LEN + 1];
	int r = reg_client_get_manifest(c, repo, digest, mb, &kind, got, err);
	if (r >= 0 && reg_kind_is_index(kind))
		r = kiln_err_invalid(err, "%s: an index inside an index", digest);
	return r;
}

int
exp_cache_import(struct exp_cache_importer *imp, const struct exp_cache_spec *spec,
                 struct sv_cache *cache, size_t *ret_records, struct kiln_err *err)
{
	if (ret_records)
		*ret_records = 0;
	struct source src = {0};
	_cleanup_buf_ struct kiln_buf mb = KILN_BUF_INIT;
	int r;
	if (spec->type == EXP_CACHE_LOCAL) {
		src.kind = SRC_LOCAL;
		src.dir = kiln_xstrdup(spec->dir);
		r = read_manifest_local(spec->dir, &mb, err);
	} else if (spec->type == EXP_CACHE_REGISTRY) {
		src.kind = SRC_REGISTRY;
		struct reg_ref ref = REG_REF_INIT;
		r = client_for(spec->ref, &src.client, &ref, &src.repo, err);
		if (r >= 0) {
			enum reg_kind kind;
			char digest[KILN_DIGEST_HEX_LEN + 1];
			r = reg_client_get_manifest(src.client, src.repo,
			                            ref.digest ? ref.digest : ref.tag, &mb, &kind,
			                            digest, err);
			if (r >= 0 && reg_kind_is_index(kind))
				r = index_manifest(src.client, src.repo, &mb, err);
			reg_ref_release(&ref);
		}
	} else {
		return kiln_err_invalid(err, "--cache-from: type=inline is for --cache-to");
	}
	if (r < 0) {
		free(src.dir);
		free(src.repo);
		reg_client_free(src.client);
		return -1;
	}
	pthread_mutex_lock(&imp->mu);
	KILN_GROW(imp->sources, imp->sources_alloc, imp->nsources + 1);
	size_t source = imp->nsources;
	imp->sources[imp->nsources++] = src;
	pthread_mutex_unlock(&imp->mu);
	_cleanup_json_ json_t *manifest = NULL, *meta = NULL;
	if (parse_json(mb.buf, mb.len, &manifest, "cache manifest", err) < 0)
		return -1;
	pthread_mutex_lock(&imp->mu);
	r = meta_from_manifest(imp, source, manifest, &meta, err);
	pthread_mutex_unlock(&imp->mu);
	if (r < 0)
		return -1;
	return import_meta(imp, meta, source, cache, ret_records, err);
}

int
exp_cache_importer_materialize(struct exp_cache_importer *imp, const char *name,
                               struct kiln_err *err)
{
	if (!imp || snap_exists(imp->ss, name))
		return 0;
	pthread_mutex_lock(&imp->mu);
	int r = entry_find(imp, name) ? materialize(imp, name, 0, err) : 0;
	pthread_mutex_unlock(&imp->mu);
	return r;
}

/* For re-exporting an imported record that was never applied: its parent and its blob
 * (fetched into the store). Returns 1 when `name` is such a record. */
static int
importer_layer(struct exp_cache_importer *imp, const char *name, char **ret_parent,
               json_t **ret_layer, struct kiln_err *err)
{
	pthread_mutex_lock(&imp->mu);
	struct entry *e = entry_find(imp, name);
	int r = 0;
	if (e) {
		r = fetch_blob(imp, &e->blob, err);
		if (r >= 0) {
			*ret_parent = kiln_xstrdup(e->parent);
			*ret_layer = json_pack("{s:s, s:s, s:I, s:s}", "mediaType",
			                       e->blob.media_type, "digest", e->blob.digest, "size",
			                       (json_int_t)e->blob.size, "diffID", e->blob.diff_id);
			r = 1;
		}
	}
	pthread_mutex_unlock(&imp->mu);
	return r;
}

/* ---- the wrapped ops ---- */

static bool
w_heavy(void *data, const struct sv_vertex *v)
{
	struct exp_cache_importer *imp = data;
	if (imp->inner->heavy)
		return imp->inner->heavy(imp->inner_data, v);
	return v->op == SV_OP_EXEC;
}

static char *
w_identity(void *data, const struct sv_vertex *v)
{
	struct exp_cache_importer *imp = data;
	return imp->inner->identity ? imp->inner->identity(imp->inner_data, v) : NULL;
}

static int
w_content_key(void *data, struct sv_op_ctx *ctx, const struct sv_vertex *v,
              const char *const *inputs, char **ret, struct kiln_err *err)
{
	struct exp_cache_importer *imp = data;
	if (!imp->inner->content_key) {
		*ret = NULL;
		return 0;
	}
	return imp->inner->content_key(imp->inner_data, ctx, v, inputs, ret, err);
}

/* Unpack an imported cache mount into its directory, if that is missing or empty. */
static void
mount_import(struct exp_cache_importer *imp, struct mount_entry *me)
{
	struct kiln_err err = KILN_ERR_INIT;
	_cleanup_free_ char *area = kiln_xasprintf("%s/cache-mounts", imp->root);
	_cleanup_free_ char *name = ex_cache_dir_name(me->id);
	_cleanup_free_ char *dir = kiln_xasprintf("%s/%s", area, name);
	me->done = true;
	if (mkdir(area, 0700) < 0 && errno != EEXIST)
		return;
	if (mkdir(dir, 0700) < 0) {
		if (errno != EEXIST)
			return;
	} else if (chown(dir, me->uid, me->gid) < 0 || chmod(dir, me->mode) < 0) {
		return;
	}
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return;
	_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
	if (kiln_dir_names(dfd, &names) < 0 || names.n)
		return; /* what is here locally wins */
	/* Declared before the first goto: cleanup must not see it uninitialised. */
	_cleanup_close_ int fd = -1;
	if (fetch_blob(imp, &me->blob, &err) < 0)
		goto warn;
	fd = reg_blob_open(imp->rs, me->blob.digest, &err);
	if (fd < 0)
		goto warn;
	struct snap_apply_opts ao = SNAP_APPLY_OPTS_INIT;
	ao.media_type = me->blob.media_type;
	ao.whiteouts = SNAP_WHITEOUTS_DELETE;
	ao.diff_id = me->blob.diff_id;
	if (snap_tar_apply_at(dfd, fd, &ao, &err) < 0)
		goto warn;
	return;
warn:
	kiln_strv_pushf(&imp->warnings, "cache mount %s not imported: %s", me->id,
	                err.msg ? err.msg : "failed");
	kiln_err_release(&err);
}

static int
w_run(void *data, struct sv_op_ctx *ctx, const struct sv_vertex *v, const char *const *inputs,
      char **ret_result, struct kiln_err *err)
{
	struct exp_cache_importer *imp = data;
	for (size_t i = 0; i < v->ninputs; i++) {
		if (!inputs[i] || kiln_str_has_prefix(inputs[i], "local:"))
			continue;
		if (exp_cache_importer_materialize(imp, inputs[i], err) < 0)
			return kiln_err_wrap(err, "imported cache");
	}
	if (v->op == SV_OP_EXEC && imp->nmounts) {
		size_t i;
		json_t *m;
		json_array_foreach(json_object_get(v->def, "mounts"), i, m)
		{
			const char *type = json_string_value(json_object_get(m, "type"));
			if (!type || !kiln_str_eq(type, "cache"))
				continue;
			_cleanup_free_ char *id = mount_id(v->def, m);
			pthread_mutex_lock(&imp->mu);
			for (size_t k = 0; id && k < imp->nmounts; k++)
				if (!imp->mounts[k].done && kiln_str_eq(imp->mounts[k].id, id))
					mount_import(imp, &imp->mounts[k]);
			pthread_mutex_unlock(&imp->mu);
		}
	}
	return imp->inner->run(imp->inner_data, ctx, v, inputs, ret_result, err);
}

static int
w_commit(void *data, const struct sv_vertex *v, const char *result, struct kiln_err *err)
{
	struct exp_cache_importer *imp = data;
	return imp->inner->commit ? imp->inner->commit(imp->inner_data, v, result, err) : 0;
}

static bool
w_result_exists(void *data, const char *result)
{
	struct exp_cache_importer *imp = data;
	if (!imp->inner->result_exists || imp->inner->result_exists(imp->inner_data, result))
		return true;
	/* Imported and not fetched yet: a hit all the same when the blobs of its chain are
	 * on offer. The layers are fetched only when a step runs on it (w_run) or the export
	 * needs it. */
	pthread_mutex_lock(&imp->mu);
	bool ok = chain_available(imp, result);
	pthread_mutex_unlock(&imp->mu);
	return ok;
}

static void
w_discard(void *data, const char *result)
{
	struct exp_cache_importer *imp = data;
	if (imp->inner->discard)
		imp->inner->discard(imp->inner_data, result);
}

static const struct sv_ops wrapped = {
        .heavy = w_heavy,
        .identity = w_identity,
        .content_key = w_content_key,
        .run = w_run,
        .commit = w_commit,
        .result_exists = w_result_exists,
        .discard = w_discard,
};

const struct sv_ops *
exp_cache_importer_ops(void)
{
	return &wrapped;
}
