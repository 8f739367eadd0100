/* http sources (ADD <url>): the file downloaded with libcurl into a fresh snapshot. */
#include "ops_int.h"

#include "snapshot/snap.h"

#include <curl/curl.h>
#include <fcntl.h>

struct dl {
	struct ops *o;
	int fd;
	struct kiln_sha256 *h;
	struct sv_op_ctx *ctx;
	int write_errno;
};

static size_t
on_data(char *data, size_t size, size_t n, void *arg)
{
	struct dl *d = arg;
	size_t len = size * n;
	for (size_t off = 0; off < len;) {
		ssize_t w = write(d->fd, data + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			d->write_errno = errno;
			return 0;
		}
		off += (size_t)w;
	}
	kiln_sha256_update(d->h, data, len);
	return len;
}

static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct dl *d = arg;
	return (d->ctx && sv_op_ctx_cancelled(d->ctx)) || ops_interrupted(d->o) ? 1 : 0;
}

static void
curl_cleanup(CURL **c)
{
	if (*c)
		curl_easy_cleanup(*c);
}

/* Download `url` into file `name` of a new snapshot; *ret_snap gets the committed name and
 * ret_digest the content's sha256. */
static int
download(struct ops *o, struct sv_op_ctx *ctx, const char *url, const char *name, char **ret_snap,
         char ret_digest[KILN_DIGEST_HEX_LEN + 1], struct kiln_err *err)
{
	if (!name || !*name || strchr(name, '/') || kiln_str_eq(name, ".") ||
	    kiln_str_eq(name, ".."))
		name = "index.html";
	_cleanup_snap_mount_ struct snap_mount *m = NULL;
	if (snap_prepare(o->opts.snaps, NULL, &m, err) < 0)
		return -1;
	_cleanup_close_ int root = open(snap_mount_path(m), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return kiln_err_set(err, errno, "open `%s`", snap_mount_path(m));
	/* BuildKit gives downloaded files mode 0600. */
	_cleanup_close_ int fd =
	        openat(root, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return kiln_err_set(err, errno, "create `%s`", name);
	struct dl d = {.o = o, .fd = fd, .h = kiln_sha256_new(), .ctx = ctx};
	char curl_err[CURL_ERROR_SIZE] = "";
	_cleanup_(curl_cleanup) CURL *c = curl_easy_init();
	if (!c) {
		kiln_sha256_free(d.h);
		return kiln_err_set(err, ENOMEM, "curl_easy_init");
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "kiln/0.1");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &d);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	CURLcode cr = curl_easy_perform(c);
	struct kiln_digest dg;
	kiln_sha256_final(d.h, &dg);
	if (cr != CURLE_OK) {
		if (d.write_errno)
			return kiln_err_set(err, d.write_errno, "write `%s`", name);
		if (cr == CURLE_ABORTED_BY_CALLBACK)
			return kiln_err_set(err, ECANCELED, "download %s", url);
		return kiln_err_set(err, EIO, "download %s: %s", url,
		                    *curl_err ? curl_err : curl_easy_strerror(cr));
	}
	if (fsync(fd) < 0)
		return kiln_err_set(err, errno, "fsync `%s`", name);
	kiln_digest_format(&dg, ret_digest);
	_cleanup_free_ char *snap = ops_new_snapshot_name();
	if (snap_commit(m, snap, err) < 0)
		return -1;
	*ret_snap = TAKE_PTR(snap);
	return 0;
}

static const char *
def_str(const struct sv_vertex *v, const char *k)
{
	return json_string_value(json_object_get(v->def, k));
}

static int
fetch(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v, char **ret_snap,
      char digest[KILN_DIGEST_HEX_LEN + 1], struct kiln_err *err)
{
	const char *url = def_str(v, "url");
	if (!url)
		return kiln_err_invalid(err, "http source without a url");
	if (download(o, ctx, url, def_str(v, "filename"), ret_snap, digest, err) < 0)
		return -1;
	const char *want = def_str(v, "checksum");
	if (want && !kiln_str_eq(want, digest)) {
		struct kiln_err e = KILN_ERR_INIT;
		snap_remove(o->opts.snaps, *ret_snap, &e);
		kiln_err_release(&e);
		free(TAKE_PTR(*ret_snap));
		return kiln_err_invalid(err, "ADD %s: checksum mismatch: want %s, got %s", url,
		                        want, digest);
	}
	return 0;
}

int
ops_http_content_key(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v, char **ret,
                     struct kiln_err *err)
{
	/* With --checksum the content is known without a download (BuildKit does the same). */
	const char *want = def_str(v, "checksum");
	if (want) {
		*ret = kiln_xstrdup(want);
		return 0;
	}
	/* Otherwise the key is the content: download once now, and let run take it. */
	char *snap = NULL;
	char digest[KILN_DIGEST_HEX_LEN + 1];
	if (fetch(o, ctx, v, &snap, digest, err) < 0)
		return -1;
	pthread_mutex_lock(&o->mu);
	KILN_GROW(o->downloads, o->adownloads, o->ndownloads + 1);
	o->downloads[o->ndownloads++] = (struct ops_download){.vertex = v, .snapshot = snap};
	pthread_mutex_unlock(&o->mu);
	*ret = kiln_xstrdup(digest);
	return 0;
}

int
ops_http_run(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v, char **ret_result,
             struct kiln_err *err)
{
	pthread_mutex_lock(&o->mu);
	for (size_t i = 0; i < o->ndownloads; i++) {
		if (o->downloads[i].vertex == v && o->downloads[i].snapshot) {
			*ret_result = TAKE_PTR(o->downloads[i].snapshot);
			pthread_mutex_unlock(&o->mu);
			return 0;
		}
	}
	pthread_mutex_unlock(&o->mu);
	char digest[KILN_DIGEST_HEX_LEN + 1];
	return fetch(o, ctx, v, ret_result, digest, err);
}

void
ops_downloads_release(struct ops *o)
{
	for (size_t i = 0; i < o->ndownloads; i++) {
		/* Downloaded for a key that was then found in the cache: not needed. */
		if (o->downloads[i].snapshot) {
			struct kiln_err e = KILN_ERR_INIT;
			snap_remove(o->opts.snaps, o->downloads[i].snapshot, &e);
			kiln_err_release(&e);
			free(o->downloads[i].snapshot);
		}
	}
	free(o->downloads);
	o->downloads = NULL;
	o->ndownloads = o->adownloads = 0;
}
