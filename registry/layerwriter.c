/*
 * Writing a layer into the store: the caller writes tar entries; their bytes are hashed on
 * the way (the diff_id) and gzip-compressed, with no timestamp or name in the gzip header,
 * into a blob ingest, so the same entries always give the same blob. Used by `kiln import`
 * and by the exporter.
 */
#include "internal.h"

struct reg_layer_writer {
	struct reg_ingest *in;
	struct kiln_sha256 *diff;
	struct archive *gz;  /* raw + gzip, writes to `in` */
	struct archive *tar; /* pax tar, writes to `gz` */
	struct kiln_err *err;
	int failed; /* -errno from the ingest, kept because libarchive only sees -1 */
};

static la_ssize_t
gz_out(struct archive *a, void *data, const void *buf, size_t len)
{
	struct reg_layer_writer *w = data;
	struct kiln_err scratch = KILN_ERR_INIT;
	int r = reg_ingest_write(w->in, buf, len, w->err ? w->err : &scratch);
	kiln_err_release(&scratch);
	if (r < 0) {
		w->failed = r;
		archive_set_error(a, -r, "write layer to store");
		return -1;
	}
	return (la_ssize_t)len;
}

static la_ssize_t
tar_out(struct archive *a, void *data, const void *buf, size_t len)
{
	struct reg_layer_writer *w = data;
	kiln_sha256_update(w->diff, buf, len);
	if (archive_write_data(w->gz, buf, len) < 0) {
		archive_set_error(a, archive_errno(w->gz), "%s", archive_error_string(w->gz));
		return -1;
	}
	return (la_ssize_t)len;
}

int
reg_layer_writer_fail(struct reg_layer_writer *w, const char *what)
{
	return reg_layer_writer_fail_on(w, w->tar, what);
}

int
reg_layer_writer_fail_on(struct reg_layer_writer *w, struct archive *a, const char *what)
{
	if (w->failed)
		return kiln_err_wrap(w->err, "%s", what);
	int e = archive_errno(a);
	return kiln_err_set(w->err, e > 0 ? e : EIO, "%s: %s", what,
	                    archive_error_string(a) ? archive_error_string(a) : "libarchive error");
}

int
reg_layer_writer_new(struct reg_store *st, struct reg_layer_writer **ret, struct kiln_err *err)
{
	struct reg_layer_writer *w = kiln_xcalloc(1, sizeof(*w));
	w->err = err;
	int r = reg_ingest_begin(st, NULL, -1, &w->in, err);
	if (r < 0) {
		free(w);
		return r;
	}
	w->diff = kiln_sha256_new();
	w->gz = archive_write_new();
	w->tar = archive_write_new();
	_cleanup_entry_ struct archive_entry *raw = archive_entry_new();
	archive_write_set_format_raw(w->gz);
	archive_write_add_filter_gzip(w->gz);
	archive_write_set_filter_option(w->gz, "gzip", "timestamp", NULL);
	archive_write_set_bytes_in_last_block(w->gz, 1);
	archive_write_set_format_pax_restricted(w->tar);
	/* xattrs once, as SCHILY.xattr.* (what Go's archive/tar and containerd read), not
	 * again base64-encoded as LIBARCHIVE.xattr.* */
	archive_write_set_format_option(w->tar, "pax", "xattrheader", "SCHILY");
	archive_write_set_bytes_in_last_block(w->tar, 1);
	archive_entry_set_pathname(raw, "layer.tar");
	archive_entry_set_filetype(raw, AE_IFREG);
	if (archive_write_open2(w->gz, w, NULL, gz_out, NULL, NULL) != ARCHIVE_OK ||
	    archive_write_header(w->gz, raw) != ARCHIVE_OK) {
		r = reg_layer_writer_fail_on(w, w->gz, "start layer");
		reg_layer_writer_free(w);
		return r;
	}
	if (archive_write_open2(w->tar, w, NULL, tar_out, NULL, NULL) != ARCHIVE_OK) {
		r = reg_layer_writer_fail_on(w, w->tar, "start layer");
		reg_layer_writer_free(w);
		return r;
	}
	*ret = w;
	return 0;
}

struct archive *
reg_layer_writer_archive(struct reg_layer_writer *w)
{
	return w->tar;
}

int
reg_layer_writer_close(struct reg_layer_writer *w, char diff_id[KILN_DIGEST_HEX_LEN + 1])
{
	if (archive_write_close(w->tar) != ARCHIVE_OK)
		return reg_layer_writer_fail_on(w, w->tar, "finish layer tar");
	if (archive_write_close(w->gz) != ARCHIVE_OK)
		return reg_layer_writer_fail_on(w, w->gz, "finish layer compression");
	struct kiln_digest d;
	kiln_sha256_final(w->diff, &d);
	w->diff = NULL;
	kiln_digest_format(&d, diff_id);
	return 0;
}

int
reg_layer_writer_commit(struct reg_layer_writer *w, struct reg_descriptor *layer)
{
	layer->size = reg_ingest_offset(w->in);
	int r = reg_ingest_commit(w->in, layer->digest, w->err);
	w->in = NULL;
	if (r < 0)
		return r;
	layer->media_type = kiln_xstrdup(REG_MT_OCI_LAYER_GZIP);
	return 0;
}

void
reg_layer_writer_free(struct reg_layer_writer *w)
{
	if (!w)
		return;
	/* Freeing an open writer flushes it through the callbacks: do it while their state
	 * is alive, and keep errors from the flush out of the caller's error. */
	w->err = NULL;
	archive_write_free(w->tar);
	archive_write_free(w->gz);
	if (w->in)
		reg_ingest_abort(w->in);
	kiln_sha256_free(w->diff);
	free(w);
}
