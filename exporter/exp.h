/*
 * kiln exporter: committed snapshots -> OCI layers -> image config, manifest and names.
 *
 * Calling sequence (after sv_solve, for the target result `res`):
 *
 *	struct exp_export_opts o = EXP_EXPORT_OPTS_INIT;
 *	o.stage_config = res->config;       // the plan's config: "base": R, history, Env, ...
 *	o.names = tags; o.nnames = ntags;   // -t, several; may be none
 *	o.source_date_epoch = sde;          // -1: created = now; o.rewrite_timestamp clamps
 *	struct exp_image img;
 *	exp_image_export(ss, rs, sv_solver_result(s, res->vertex), &o, &img, &err);
 *	...img.config_digest for --iidfile, img.manifest_digest is what the names point to...
 *
 * exp_image_export is the three steps below in one call; they are public for callers
 * that need them apart:
 *
 *	struct exp_layer_opts lo = EXP_LAYER_OPTS_INIT;    // .source_date_epoch, .rewrite_timestamp
 *	struct exp_layer *layers = NULL;
 *	size_t n = 0;
 *	// the snapshots from the stage's top down to (not including) the stage's root source
 *	// result (the base image's chain, or scratch's), oldest first, one layer each:
 *	exp_chain_layers(ss, top, root_result, rs, &lo, &layers, &n, &err);
 *	struct exp_image_opts io = EXP_IMAGE_OPTS_INIT;
 *	io.stage_config = res->config; io.layers = layers; io.nlayers = n; ...
 *	exp_image_commit(rs, &io, &img, &err);
 *	exp_layers_free(layers, n);
 *
 * Or one layer at a time: exp_layer_from_snapshot(ss, "snap-name", rs, &lo, &layer, &err).
 *
 * Layers: the diff of ONE committed snapshot against its parent (snap_diff_walk), written
 * as a PAX tar in the walk's fixed order (parents first, names sorted bytewise), numeric
 * uid/gid only (no uname/gname), no atime/ctime, mtime kept (clamped to
 * source_date_epoch with rewrite_timestamp), deletions as `.wh.NAME`, opaque directories
 * as `.wh..wh..opq`, hard links within the layer as hardlink entries, xattrs kept except
 * trusted.overlay.* / user.overlay.*, device nodes and fifos.
 *
 * Compression (exp_layer_opts.compression, .compression_level): gzip (default, level 6),
 * zstd (level 3) or none, in the same pass as both digests: diff_id = sha256 of the tar,
 * digest and size = of the blob, ingested into the reg store with the matching OCI media
 * type. gzip runs on all cores pigz-style (fixed 1 MiB chunks, each deflated with the
 * previous 32 KiB as dictionary, one gzip member without name or time; random-looking
 * chunks are stored and chunks LZ77 cannot shrink get Huffman coding only, decided from
 * the chunk's bytes alone); zstd uses libzstd's workers. The output depends only on the
 * tar and the level, never on the number of threads. An empty diff in gzip gives
 * BuildKit's 32-byte empty layer (sha256:4f4fb700...), which is kept so layers and
 * history stay aligned. exp_chain_layers exports the layers of a chain at once.
 * The data of a file of 4 MiB or more is cut out into chunks of its own (the first without
 * a dictionary), so its compressed bytes do not depend on where it lands in the tar; every
 * deflated chunk is kept in the segment cache (`<kiln_root>/exporter/segments/`, see
 * exp_segments_usage), keyed by the SHA-256 of its level, dictionary and bytes, and a
 * later export of the same bytes takes it from there (exp_layer.reused): a big file that
 * did not change is not compressed again, and the result is byte for byte a fresh one.
 *
 * Layer cache: `<kiln_root>/exporter/layers/<driver>/<snapshot>[@<clamp>].<compression>-
 * <level>.json` maps a snapshot to its diff_id, digest and size (written by temp file,
 * fsync, rename); a later export of the same snapshot whose blob is still in the store,
 * with that size, does not re-tar: a layer compressed once in a compression is never
 * compressed again. Snapshots are immutable once committed; a record also holds the
 * identity of the snapshot's meta file (dev, inode, ctime), so a name removed and committed again
 *is tarred afresh. The clamp shapes the tar, so it is part of the file name. Records are small and
 *never pruned here (a prune of the snapshot store may remove the directory).
 *
 * Image: the stage config (sv_result.config) is laid over the base image's config:
 * "base": R names the base image (opened from the store unless io.base is given), Env
 * merges by key (ours win; PATH defaults when neither sets it), Labels/ExposedPorts/
 * Volumes merge by key, other members present in ours replace the base's ("Cmd": null
 * removes the base's Cmd), history is appended to the base's. rootfs.diff_ids = the
 * base's + the new layers'; the manifest reuses the base's layer blobs as they are, unless
 * force_compression asks for another compression (recompressed once, remembered in
 * `<kiln_root>/exporter/blobs/`). OCI media types, or Docker's with oci_mediatypes=false
 * (zstd layers keep the OCI type, which Docker lacks).
 * "created" (config and new history entries) = source_date_epoch, else now. The config,
 * then the manifest, are stored; each name in io.names (normalized: "app" ->
 * docker.io/library/app:latest) is pointed at the manifest.
 *
 * Thread-safe: no globals; exports of different snapshots may run at once.
 */
#ifndef KILN_EXP_H
#define KILN_EXP_H

#include "base/base.h"

#include <jansson.h>

struct snap_store;
struct reg_store;
struct reg_image;
struct reg_platform;

/* Layer compression (BuildKit's `compression=`). */
enum exp_compression {
	EXP_COMPRESSION_GZIP = 0, /* the default */
	EXP_COMPRESSION_ZSTD,
	EXP_COMPRESSION_NONE, /* "uncompressed" */
};
/* "gzip", "zstd", "uncompressed" -> *ret; -EINVAL for anything else (no error text). */
int exp_compression_parse(const char *s, enum exp_compression *ret);
const char *exp_compression_name(enum exp_compression c);
/* The level used for `level` (-1: the default: gzip 6, zstd 3), clamped to the range. */
int exp_compression_level(enum exp_compression c, int level);
/* The OCI layer media type of a compression (static). */
const char *exp_compression_media_type(enum exp_compression c);

struct exp_layer_opts {
	/* SOURCE_DATE_EPOCH, or -1 when unset. */
	int64_t source_date_epoch;
	/* Clamp entry mtimes newer than source_date_epoch to it (BuildKit rewrite-timestamp). */
	bool rewrite_timestamp;
	/* Ignore (but refresh) the layer cache, and the segment cache. */
	bool no_cache;
	/* Root of the layer cache index; NULL: reg_store_root(rs) (the kiln root). */
	const char *cache_root;
	enum exp_compression compression;
	int compression_level; /* -1: the compression's default */
	/* exp_chain_layers: layers exported at once (0: one per CPU). */
	unsigned jobs;
};
#define EXP_LAYER_OPTS_INIT                                                                        \
	{                                                                                          \
		.source_date_epoch = -1, .rewrite_timestamp = false, .no_cache = false,            \
		.cache_root = NULL, .compression = EXP_COMPRESSION_GZIP, .compression_level = -1,  \
		.jobs = 0                                                                          \
	}

struct exp_layer {
	char diff_id[KILN_DIGEST_HEX_LEN + 1]; /* sha256 of the uncompressed tar */
	char digest[KILN_DIGEST_HEX_LEN + 1];  /* sha256 of the compressed blob in the store */
	int64_t size;                          /* of the compressed blob */
	const char *media_type;                /* static: exp_compression_media_type() */
	bool empty;                            /* the diff had no entries */
	bool cached;                           /* taken from the layer cache, not re-tarred */
	int64_t reused; /* tar bytes whose compressed bytes came from the segment cache */
};

/*
 * Export the diff of committed snapshot `snapshot` (against its parent) as a layer blob
 * in `rs`, compressed as opts->compression says (gzip by default). `opts` may be NULL
 * (EXP_LAYER_OPTS_INIT). On failure nothing is named and no cache record is written (a partly
 * ingested blob is aborted).
 */
int exp_layer_from_snapshot(struct snap_store *ss, const char *snapshot, struct reg_store *rs,
                            const struct exp_layer_opts *opts, struct exp_layer *ret,
                            struct kiln_err *err);

/*
 * One layer per snapshot from `top` down its parents to, but not including, `stop` (NULL:
 * down to and including the parentless root), oldest first, in a new array (free with
 * exp_layers_free). -EINVAL when `stop` is not an ancestor of `top`. top == stop gives
 * zero layers.
 */
int exp_chain_layers(struct snap_store *ss, const char *top, const char *stop, struct reg_store *rs,
                     const struct exp_layer_opts *opts, struct exp_layer **ret, size_t *ret_n,
                     struct kiln_err *err);
void exp_layers_free(struct exp_layer *layers, size_t n);

struct exp_image_opts {
	/* The plan's stage config (sv_result.config), borrowed. Required. */
	const json_t *stage_config;
	/* The base image, borrowed; NULL: open stage_config's "base" from the store
	 * (platform below), or none when it has no "base" (scratch). */
	const struct reg_image *base;
	const struct reg_platform *platform; /* for opening "base"; NULL: the config's os/arch */
	const struct exp_layer *layers;      /* the new layers, oldest first */
	size_t nlayers;
	const char *const *names; /* references to point at the image, may be none */
	size_t nnames;
	int64_t source_date_epoch; /* the config's "created"; -1: now */
	/* false: Docker media types (manifest v2 schema 2, rootfs.diff.tar.gzip), as
	 * BuildKit's oci-mediatypes=false; zstd layers keep OCI types (Docker has none). */
	bool oci_mediatypes;
	/* Base image layers in another compression than `compression` are recompressed
	 * (BuildKit's force-compression); each source blob is recompressed once (cached). */
	bool force_compression;
	enum exp_compression compression;
	int compression_level;
};
#define EXP_IMAGE_OPTS_INIT                                                                        \
	{                                                                                          \
		.stage_config = NULL, .base = NULL, .platform = NULL, .layers = NULL,              \
		.nlayers = 0, .names = NULL, .nnames = 0, .source_date_epoch = -1,                 \
		.oci_mediatypes = true, .force_compression = false,                                \
		.compression = EXP_COMPRESSION_GZIP, .compression_level = -1                       \
	}

struct exp_image {
	char manifest_digest[KILN_DIGEST_HEX_LEN + 1]; /* what names point to */
	char config_digest[KILN_DIGEST_HEX_LEN + 1];   /* the image id (--iidfile) */
	int64_t manifest_size;
};

/*
 * Build and store the image config and OCI manifest as described above and set every
 * name. Names are set only after both blobs are stored; a bad name fails (-EINVAL)
 * before any is set.
 */
int exp_image_commit(struct reg_store *rs, const struct exp_image_opts *opts, struct exp_image *ret,
                     struct kiln_err *err);

/*
 * The config merge alone: a new image config document from the base image's whole config
 * document (NULL: none) and the plan's stage config (both borrowed): author, platform,
 * "config" merged by the rules above, history = the base's + ours as they are (no
 * "created" filled in, no fitting to layers), no rootfs, no created, no "base". Caller
 * owns the result.
 */
json_t *exp_config_merge(const json_t *base_config, const json_t *stage_config);

/*
 * The segment cache under kiln root `root` (exporter/segcache.c): compressed chunks of
 * layers, reused by later exports of the same bytes. Usage: its bytes on disk and entries.
 * Prune: remove the least recently used entries until at most `keep` bytes remain, and any
 * not used since `older_than` (unix time; -1: none by age); *ret_freed (may be NULL) gets
 * the bytes removed. Safe while exports run (a removed entry is a miss).
 */
#define EXP_SEGMENTS_MAX ((uint64_t)1 << 30) /* what an export leaves at most */
int exp_segments_usage(const char *root, uint64_t *ret_bytes, size_t *ret_n, struct kiln_err *err);
int exp_segments_prune(const char *root, uint64_t keep, int64_t older_than, uint64_t *ret_freed,
                       struct kiln_err *err);

/* ---- all of it ---- */

struct exp_export_opts {
	const json_t *stage_config; /* required, borrowed */
	/* The stage's root snapshot, whose descendants become layers. NULL: the base image's
	 * chain (snap_chain_id over its diff_ids, which is what snap_layer_apply named it);
	 * without a base (scratch), the root of `top`'s chain, where a parentless snapshot with
	 * an empty diff (an empty scratch snapshot) gives no layer. */
	const char *stop;
	const struct reg_platform *platform; /* for opening "base"; NULL: the config's */
	const char *const *names;
	size_t nnames;
	int64_t source_date_epoch; /* -1: unset */
	bool rewrite_timestamp;    /* clamp layer mtimes to source_date_epoch */
	bool no_cache;             /* re-tar even when the layer cache knows a snapshot */
	enum exp_compression compression;
	int compression_level;  /* -1: default */
	bool force_compression; /* recompress base layers of another compression */
	bool oci_mediatypes;    /* false: Docker media types */
};
#define EXP_EXPORT_OPTS_INIT                                                                       \
	{                                                                                          \
		.stage_config = NULL, .stop = NULL, .platform = NULL, .names = NULL, .nnames = 0,  \
		.source_date_epoch = -1, .rewrite_timestamp = false, .no_cache = false,            \
		.compression = EXP_COMPRESSION_GZIP, .compression_level = -1,                      \
		.force_compression = false, .oci_mediatypes = true                                 \
	}

/*
 * Export committed snapshot `top` (the target stage's result) as an image: layers of the
 * snapshots above the stage's root, then exp_image_commit. `top` equal to the root gives
 * the base image's layers with the merged config. Names are set last, only on success.
 */
int exp_image_export(struct snap_store *ss, struct reg_store *rs, const char *top,
                     const struct exp_export_opts *opts, struct exp_image *ret,
                     struct kiln_err *err);

/* ==== portable build cache: --cache-to / --cache-from (exporter/cache.c, owned by the
 * cache work; the rest of this header is the exporter's) ====
 *
 * Calling sequence:
 *
 *	struct exp_cache_spec to, from;
 *	exp_cache_spec_parse("type=local,dest=DIR,mode=max", true, &to, &err);
 *	exp_cache_spec_parse("type=local,src=DIR", false, &from, &err);
 *	struct exp_cache_importer *imp;
 *	exp_cache_importer_new(ss, rs, root, ops_vtable(), ops, &imp, &err);
 *	exp_cache_import(imp, &from, cache, &nrecords, &err);  // records written, no blob yet
 *	sv_solver_new(exp_cache_importer_ops(), imp, cache, ...); sv_solve(...);
 *	exp_cache_importer_materialize(imp, sv_solver_result(s, target), &err);
 *	struct exp_cache_export_opts eo = EXP_CACHE_EXPORT_OPTS_INIT; ...
 *	exp_cache_export(&to, &eo, &err);        // type=local, registry
 *	exp_cache_inline_apply(&eo, stage_config, &err);   // type=inline, before the image
 *	...export the image...
 *
 * What travels: one record per exported step (exec/file vertex): its cache key (keys are
 * stable across machines: op definitions, input keys, content digests, never snapshot
 * names), its parent (the key of the step below it, or the snapshot name of the stage's
 * root: a base image's chain id or "scratch", which the importing build makes itself
 * from the base image), the layer of its snapshot's diff, and its recipe, identity and
 * description (for --explain). The metadata is a JSON document (media type
 * EXP_CACHE_CONFIG_MT) used as the config of an OCI image manifest whose layers are the
 * step layers (and cache-mount layers). type=local: an OCI layout (index.json names the
 * manifest); type=registry: the manifest pushed under REF; type=inline: the metadata in
 * the image config's label EXP_CACHE_INLINE_LABEL, its layers the image's own (mode=min).
 *
 * Import writes a record per step whose result is the chain id its layer will have when
 * applied on its parent (snap_chain_id), with nothing fetched. The importer's ops wrap
 * the build's: such a result counts as existing (a hit) while still remote, if the blobs
 * of its unapplied chain are on offer (a file of the right size in the layout, or a
 * registry HEAD; otherwise a miss and the step runs). Its blob (and its parents') is
 * fetched, checked and applied only when a step that runs takes it as an input, or the
 * export needs it (exp_cache_importer_materialize for the image's top; a cache export
 * takes an unapplied record's blob as it is). So a cached step whose result nothing
 * needs (a stage whose COPY --from was itself a hit) is never downloaded. Ops'
 * content_key must not read input snapshots (today they read only the context).
 *
 * mode=max,cache-mounts=true also carries the contents of each RUN --mount=type=cache
 * directory (one layer per cache id, with the directory's own owner and mode beside it;
 * skipped with a warning above cache-mounts-max-size, default 1 GiB). Import unpacks one
 * into the mount's directory just before the first step using it runs, and only when
 * that directory is missing or empty (local contents win).
 */
#define EXP_CACHE_CONFIG_MT    "application/vnd.kiln.cache.config.v1+json"
#define EXP_CACHE_INLINE_LABEL "dev.kiln.cache.v1"

enum exp_cache_type { EXP_CACHE_LOCAL = 1, EXP_CACHE_REGISTRY, EXP_CACHE_INLINE };

struct exp_cache_spec {
	enum exp_cache_type type;
	char *dir; /* local: dest= (to) or src= (from) */
	char *ref; /* registry */
	bool max;  /* mode=max */
	bool cache_mounts;
	uint64_t cache_mounts_max; /* bytes per mount */
	bool ignore_error;         /* ignore-error=true: a failed export only warns */
	char *compression;         /* "gzip", "zstd", "uncompressed"; NULL: the exporter's */
	int compression_level;     /* -1: the compression's default */
};

/* Parse a buildx --cache-to (`to`) or --cache-from spec. A bare REF for --cache-from means
 * type=registry,ref=REF. -EINVAL naming the bad key. */
int exp_cache_spec_parse(const char *spec, bool to, struct exp_cache_spec *ret,
                         struct kiln_err *err);
void exp_cache_spec_release(struct exp_cache_spec *s);

struct sv_cache;
struct sv_solver;
struct sv_graph;
struct sv_vertex;
struct sv_ops;
struct exp_cache_importer;

struct exp_cache_export_opts {
	struct snap_store *ss;
	struct reg_store *rs;
	struct sv_cache *cache;
	const struct sv_solver *solver; /* after a successful sv_solve */
	const struct sv_graph *graph;
	const struct sv_vertex *target; /* the target stage's result vertex */
	const char *kiln_root;          /* cache mounts live under it */
	/* How step layers are made; NULL: EXP_LAYER_OPTS_INIT. Give the image export's, so
	 * the cache's layers are the image's blobs (inline needs exactly those). */
	const struct exp_layer_opts *layer_opts;
	/* The build's importer (NULL: none): imported records the solve hit but never
	 * applied are exported from their blobs. */
	struct exp_cache_importer *importer;
	/* Non-fatal notes (a cache mount over the cap...), appended; may be NULL. */
	struct kiln_strv *warnings;
};
#define EXP_CACHE_EXPORT_OPTS_INIT                                                                 \
	{                                                                                          \
		0                                                                                  \
	}

/* Export the cache of the solve (type local or registry). */
int exp_cache_export(const struct exp_cache_spec *spec, const struct exp_cache_export_opts *o,
                     struct kiln_err *err);
/* type=inline: the mode=min metadata into `stage_config`'s Labels (changed in place), before
 * the image export lays it over the base. Its layers must be the image's own: made with
 * the same layer options, the exporter's layer cache gives the same blobs (a layer the
 * image does not have is a miss at import, not an error). */
int exp_cache_inline_apply(const struct exp_cache_export_opts *o, json_t *stage_config,
                           struct kiln_err *err);

/* `inner` and `inner_data` are the build's ops, which the importer's ops wrap. */
int exp_cache_importer_new(struct snap_store *ss, struct reg_store *rs, const char *kiln_root,
                           const struct sv_ops *inner, void *inner_data,
                           struct exp_cache_importer **ret, struct kiln_err *err);
/* Read a cache (type local or registry; a registry image with inline metadata too) and
 * write its records into `cache`; *ret_records (may be NULL) gets how many were new. */
int exp_cache_import(struct exp_cache_importer *imp, const struct exp_cache_spec *spec,
                     struct sv_cache *cache, size_t *ret_records, struct kiln_err *err);
/* The ops to give sv_solver_new with the importer as their data (static storage). */
const struct sv_ops *exp_cache_importer_ops(void);
/* Fetch and apply imported snapshot `name` (and its parents) unless it exists; names the
 * importer does not know are left alone. For the export of a result the solve hit. */
int exp_cache_importer_materialize(struct exp_cache_importer *imp, const char *name,
                                   struct kiln_err *err);
/* Layers known from imported caches and how many were fetched so far. */
void exp_cache_importer_stats(struct exp_cache_importer *imp, size_t *ret_layers,
                              size_t *ret_fetched);
/* Notes gathered while fetching (a blob that could not be had...), owned by imp. */
const struct kiln_strv *exp_cache_importer_warnings(struct exp_cache_importer *imp);
void exp_cache_importer_free(struct exp_cache_importer *imp);

#endif
