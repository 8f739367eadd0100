/* Internal to exporter/: cleanup wrappers for libarchive handles and small shared helpers. */
#ifndef KILN_EXP_INTERNAL_H
#define KILN_EXP_INTERNAL_H

#include "exp.h"

#include <archive.h>
#include <archive_entry.h>

static inline void
exp_archive_write_freep(struct archive **a)
{
	if (*a)
		archive_write_free(*a);
}
static inline void
exp_archive_entry_freep(struct archive_entry **e)
{
	if (*e)
		archive_entry_free(*e);
}
#define _cleanup_archive_write_ _cleanup_(exp_archive_write_freep)
#define _cleanup_entry_         _cleanup_(exp_archive_entry_freep)

/* The empty layer BuildKit writes for an empty diff (a gzip of an empty tar, 1024 zero
 * bytes), byte for byte, so kiln's empty layers share its digest. */
#define EXP_EMPTY_LAYER_DIGEST                                                                     \
	"sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1"
#define EXP_EMPTY_LAYER_DIFF_ID                                                                    \
	"sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
extern const unsigned char exp_empty_layer[32];

/* "YYYY-MM-DDTHH:MM:SSZ" for unix time t into buf. */
void exp_rfc3339(int64_t t, char buf[32]);

struct reg_image;
struct reg_platform;
/* Open the base image `ref` for the platform (NULL: the stage config's os/architecture/
 * variant, else the host's); errors say "base image REF". */
int exp_base_open(struct reg_store *rs, const json_t *stage_config,
                  const struct reg_platform *platform, const char *ref, struct reg_image *img,
                  struct kiln_err *err);

/* A tar stream -> compressed blob in a store ingest, diff_id and blob digest in one pass
 * (compress.c). The ingest stays the caller's; on failure free the compressor and abort
 * the ingest. */
struct reg_ingest;
struct exp_compressor;
int exp_compressor_new(enum exp_compression kind, int level, struct reg_ingest *in,
                       struct exp_compressor **ret, struct kiln_err *err);
int exp_compressor_write(struct exp_compressor *c, const void *data, size_t len,
                         struct kiln_err *err);
/* Writing without a copy: the room left in the buffer the next bytes go to (never 0),
 * then how many of them were put there. For file data read straight into it. */
size_t exp_compressor_space(struct exp_compressor *c, unsigned char **ret);
int exp_compressor_commit(struct exp_compressor *c, size_t len, struct kiln_err *err);
int exp_compressor_finish(struct exp_compressor *c, char diff_id[KILN_DIGEST_HEX_LEN + 1],
                          struct kiln_err *err);
int64_t exp_compressor_tar_size(const struct exp_compressor *c);
void exp_compressor_free(struct exp_compressor *c);
/*
 * gzip: end the current chunk here (nothing to do for the other compressions). With
 * `fresh` the next chunk starts without a dictionary, so the compressed bytes from here to
 * the next cut depend only on the bytes in between: the layer writer cuts where a big
 * file's data starts (fresh) and ends. The output depends on the cuts and the tar only.
 */
#define EXP_SEGMENT_MIN ((int64_t)4 << 20) /* files at least this big are cut out */
int exp_compressor_cut(struct exp_compressor *c, bool fresh, struct kiln_err *err);
/* gzip at a level above 0: keep deflated chunks in the segment cache directory `dir`
 * (segcache.c; created here) and, with `lookup`, take them from there. Call before the
 * first write. Other compressions ignore it. */
int exp_compressor_set_cache(struct exp_compressor *c, const char *dir, bool lookup,
                             struct kiln_err *err);
/* After finish: the tar bytes whose compressed bytes came from the segment cache, and the
 * entries written to it. */
int64_t exp_compressor_reused(const struct exp_compressor *c);
size_t exp_compressor_cache_added(const struct exp_compressor *c);

/* ---- the segment cache (segcache.c) ---- */
/* <root>/exporter/segments/<compression>-<level> (caller frees). */
char *exp_segments_dir(const char *root, enum exp_compression c, int level);
/* The entry name of a chunk: hex SHA-256 of the level, dictionary and bytes. */
void exp_segment_key(int level, const void *dict, size_t dict_len, const void *in, size_t in_len,
                     char ret[65]);
/* A checked entry: true and the output (caller frees), its length and the input's crc32;
 * false for a missing entry, or a torn or corrupt one (which is removed). */
bool exp_segment_load(const char *dir, const char *key, size_t in_len, unsigned char **ret_out,
                      size_t *ret_out_len, uint32_t *ret_crc);
/* Write an entry (temp name, rename; no fsync: see segcache.c). false when it could not be. */
bool exp_segment_store(const char *dir, const char *key, size_t in_len, uint32_t crc,
                       const unsigned char *out, size_t out_len);
/* After an export that added entries: prune to EXP_SEGMENTS_MAX unless done lately. */
void exp_segments_bound(const char *root);
/* mkdir -p, mode 0700. */
int exp_mkdir_p(const char *path, struct kiln_err *err);
/* Online CPUs, 1..64. */
size_t exp_cpus(void);

/* The compression a layer media type says (false when none of ours: foreign layers). */
bool exp_media_compression(const char *media_type, enum exp_compression *ret);

/*
 * A stored layer blob (`digest`, of type `media_type`, uncompressed content `diff_id`) in
 * compression `c` at `level`: decompressed and compressed again once, then remembered
 * (<root>/exporter/blobs/<hex>.<compression>-<level>.json). The diff_id is checked.
 */
int exp_blob_recompress(struct reg_store *rs, const char *digest, const char *diff_id,
                        enum exp_compression c, int level, struct exp_layer *ret,
                        struct kiln_err *err);

#endif
