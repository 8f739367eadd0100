/*
 * Base image layers in another compression (BuildKit's force-compression): the stored
 * blob is decompressed and compressed again, once; a record maps the source blob and the
 * compression to the result, so later exports reuse it.
 */
#include "internal.h"

#include "registry/reg.h"

#include <archive.h>
#include <fcntl.h>

bool
exp_media_compression(const char *mt, enum exp_compression *ret)
{
	if (!mt)
		return false;
	if (kiln_str_eq(mt, REG_MT_OCI_LAYER_GZIP) || kiln_str_eq(mt, REG_MT_DOCKER_LAYER_GZIP))
		*ret = EXP_COMPRESSION_GZIP;
	else if (kiln_str_eq(mt, REG_MT_OCI_LAYER_ZSTD))
		*ret = EXP_COMPRESSION_ZSTD;
	else if (kiln_str_eq(mt, REG_MT_OCI_LAYER) || kiln_str_eq(mt, REG_MT_DOCKER_LAYER))
		*ret = EXP_COMPRESSION_NONE;
	else
		return false;
	return true;
}

static void
archive_read_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}

static int
recompress(struct reg_store *rs, const char *digest, const char *diff_id, enum exp_compression c,
           int level, struct exp_layer *ret, struct kiln_err *err)
{
	_cleanup_close_ int fd = reg_blob_open(rs, digest, err);
	if (fd < 0)
		return fd;
	_cleanup_(archive_read_freep) struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	struct archive_entry *e;
	if (archive_read_open_fd(a, fd, 1 << 20) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK)
		return kiln_err_invalid(err, "layer %s: %s", digest, archive_error_string(a));
	struct reg_ingest *in = NULL;
	struct exp_compressor *comp = NULL;
	int r = reg_ingest_begin(rs, NULL, -1, &in, err);
	if (r < 0)
		return r;
	r = exp_compressor_new(c, level, in, &comp, err);
	_cleanup_free_ char *buf = kiln_xmalloc(1 << 20);
	la_ssize_t n = 0;
	while (r >= 0 && (n = archive_read_data(a, buf, 1 << 20)) > 0)
		r = exp_compressor_write(comp, buf, (size_t)n, err);
	if (r >= 0 && n < 0)
		r = kiln_err_invalid(err, "layer %s: %s", digest, archive_error_string(a));
	char got[KILN_DIGEST_HEX_LEN + 1];
	if (r >= 0)
		r = exp_compressor_finish(comp, got, err);
	if (r >= 0 && !kiln_str_eq(got, diff_id))
		r = kiln_err_invalid(err, "layer %s: diff_id mismatch: expected %s, got %s", digest,
		                     diff_id, got);
	exp_compressor_free(comp);
	if (r < 0) {
		reg_ingest_abort(in);
		return r;
	}
	*ret = (struct exp_layer){.media_type = exp_compression_media_type(c),
	                          .size = reg_ingest_offset(in)};
	snprintf(ret->diff_id, sizeof(ret->diff_id), "%s", diff_id);
	return reg_ingest_commit(in, ret->digest, err);
}

int
exp_blob_recompress(struct reg_store *rs, const char *digest, const char *diff_id,
                    enum exp_compression c, int level, struct exp_layer *ret, struct kiln_err *err)
{
	if (!kiln_digest_valid(digest) || !kiln_digest_valid(diff_id))
		return kiln_err_invalid(err, "recompress: bad digest");
	level = exp_compression_level(c, level);
	_cleanup_free_ char *dir = kiln_xasprintf("%s/exporter/blobs", reg_store_root(rs));
	_cleanup_free_ char *file =
	        kiln_xasprintf("%s/%s.%s-%d.json", dir, digest + 7, exp_compression_name(c), level);
	json_error_t je;
	_cleanup_json_ json_t *j = json_load_file(file, 0, &je);
	const char *got = NULL;
	json_int_t size = -1;
	if (j && json_unpack(j, "{s:s,s:I}", "digest", &got, "size", &size) == 0 &&
	    kiln_digest_valid(got)) {
		struct kiln_err scratch = KILN_ERR_INIT;
		int64_t have = reg_blob_size(rs, got, &scratch);
		kiln_err_release(&scratch);
		if (have == size) {
			*ret = (struct exp_layer){.media_type = exp_compression_media_type(c),
			                          .size = size,
			                          .cached = true};
			snprintf(ret->diff_id, sizeof(ret->diff_id), "%s", diff_id);
			snprintf(ret->digest, sizeof(ret->digest), "%s", got);
			return 0;
		}
	}
	int r = recompress(rs, digest, diff_id, c, level, ret, err);
	if (r < 0)
		return kiln_err_wrap(err, "recompress layer %s as %s", digest,
		                     exp_compression_name(c));
	/* Only a speed-up: a record that cannot be written costs a recompression later. */
	struct kiln_err scratch = KILN_ERR_INIT;
	_cleanup_json_ json_t *rec = json_pack("{s:s,s:I,s:s}", "digest", ret->digest, "size",
	                                       (json_int_t)ret->size, "diff_id", diff_id);
	_cleanup_free_ char *text = json_dumps(rec, JSON_COMPACT);
	if (exp_mkdir_p(dir, &scratch) == 0)
		kiln_write_file_atomic_at(AT_FDCWD, file, text, strlen(text), 0644, &scratch);
	kiln_err_release(&scratch);
	return 0;
}
