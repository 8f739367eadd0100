/*
 * OCI image layout directories: oci-layout, index.json, blobs/sha256/<hex>. Every file is
 * written to a temp name and renamed, so a reader of the layout never sees half a blob.
 */
#include "internal.h"

#include <fcntl.h>
#include <sys/stat.h>

#define LAYOUT_FILE    "oci-layout"
#define LAYOUT_CONTENT "{\"imageLayoutVersion\":\"1.0.0\"}"
#define REF_NAME       "org.opencontainers.image.ref.name"
#define IMAGE_NAME     "io.containerd.image.name"

json_t *
reg_ref_annotations(const char *name)
{
	struct reg_ref r = REG_REF_INIT;
	if (reg_ref_parse_normalized(name, &r, NULL) < 0 || !r.tag) {
		reg_ref_release(&r);
		return json_pack("{s:s}", REF_NAME, name);
	}
	_cleanup_free_ char *full = reg_ref_string(&r);
	json_t *a = json_pack("{s:s,s:s}", IMAGE_NAME, full, REF_NAME, r.tag);
	reg_ref_release(&r);
	return a;
}

char *
reg_name_from_annotations(json_t *a)
{
	const char *n = json_string_value(json_object_get(a, IMAGE_NAME));
	if (!n) {
		n = json_string_value(json_object_get(a, REF_NAME));
		/* A bare tag ("latest") names no repository. */
		if (!n || (!strchr(n, ':') && !strchr(n, '/')))
			return NULL;
	}
	struct reg_ref r = REG_REF_INIT;
	if (reg_ref_parse_normalized(n, &r, NULL) < 0)
		return NULL;
	reg_ref_default_tag(&r);
	char *s = reg_ref_string(&r);
	reg_ref_release(&r);
	return s;
}

static void
push_unique(struct kiln_strv *v, const char *d)
{
	for (size_t i = 0; i < v->n; i++)
		if (kiln_str_eq(v->v[i], d))
			return;
	kiln_strv_push(v, d);
}

static int
collect(struct reg_store *st, const char *digest, int depth, struct kiln_strv *out,
        enum reg_kind *ret_kind, int64_t *ret_size, struct kiln_err *err)
{
	const struct reg_limits lim = REG_LIMITS_INIT;
	_cleanup_buf_ struct kiln_buf raw = KILN_BUF_INIT;
	if (depth > 4)
		return kiln_err_invalid(err, "indexes nest too deep");
	int r = reg_blob_read(st, digest, lim.max_manifest_bytes, &raw, err);
	if (r < 0)
		return r;
	enum reg_kind k;
	r = reg_media_detect(raw.buf, raw.len, NULL, &lim, &k, err);
	if (r < 0)
		return kiln_err_wrap(err, "%s", digest);
	push_unique(out, digest);
	if (ret_kind)
		*ret_kind = k;
	if (ret_size)
		*ret_size = (int64_t)raw.len;
	if (reg_kind_is_index(k)) {
		struct reg_index idx = {0};
		r = reg_index_parse(raw.buf, raw.len, &lim, &idx, err);
		if (r < 0)
			return kiln_err_wrap(err, "%s", digest);
		for (size_t i = 0; i < idx.n_manifests && r >= 0; i++)
			if (reg_blob_exists(st, idx.manifests[i].digest))
				r = collect(st, idx.manifests[i].digest, depth + 1, out, NULL, NULL,
				            err);
		reg_index_release(&idx);
		return r;
	}
	struct reg_manifest m = {0};
	r = reg_manifest_parse(raw.buf, raw.len, &lim, &m, err);
	if (r < 0)
		return kiln_err_wrap(err, "%s", digest);
	const struct reg_descriptor *ds[1] = {&m.config};
	for (size_t i = 0; i < m.n_layers + 1; i++) {
		const struct reg_descriptor *d = i == 0 ? ds[0] : &m.layers[i - 1];
		if (!reg_blob_exists(st, d->digest)) {
			r = kiln_err_set(err, ENOENT, "image %s: blob %s is not in the store",
			                 digest, d->digest);
			break;
		}
		push_unique(out, d->digest);
	}
	reg_manifest_release(&m);
	return r;
}

int
reg_image_blobs(struct reg_store *st, const char *top, struct kiln_strv *digests,
                struct reg_descriptor *ret_top, struct kiln_err *err)
{
	enum reg_kind k = REG_KIND_UNKNOWN;
	int64_t size = 0;
	int r = collect(st, top, 0, digests, &k, &size, err);
	if (r < 0)
		return r;
	*ret_top = (struct reg_descriptor){
	        .media_type = kiln_xstrdup(reg_kind_media_type(k)),
	        .size = size,
	};
	memcpy(ret_top->digest, top, sizeof(ret_top->digest));
	return 0;
}

static int
open_dir(const char *dir, const char *sub, bool create, struct kiln_err *err)
{
	_cleanup_free_ char *p = sub ? kiln_xasprintf("%s/%s", dir, sub) : kiln_xstrdup(dir);
	if (create && mkdir(p, 0755) < 0 && errno != EEXIST)
		return kiln_err_set(err, errno, "create `%s`", p);
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return kiln_err_set(err, errno, "open `%s`", p);
	return fd;
}

int
reg_layout_init(const char *dir, struct kiln_err *err)
{
	_cleanup_close_ int dfd = open_dir(dir, NULL, true, err);
	if (dfd < 0)
		return dfd;
	_cleanup_close_ int b = open_dir(dir, "blobs", true, err);
	if (b < 0)
		return b;
	_cleanup_close_ int s = open_dir(dir, "blobs/sha256", true, err);
	if (s < 0)
		return s;
	int r = kiln_write_file_atomic_at(dfd, LAYOUT_FILE, LAYOUT_CONTENT, strlen(LAYOUT_CONTENT),
	                                  0644, err);
	if (r < 0)
		return r;
	if (faccessat(dfd, "index.json", F_OK, 0) == 0)
		return 0;
	struct reg_index idx = {.kind = REG_KIND_OCI_INDEX};
	return reg_layout_write_index(dir, &idx, err);
}

int
reg_layout_put_blob(const char *dir, struct reg_store *st, const char *digest, struct kiln_err *err)
{
	if (!kiln_digest_valid(digest))
		return kiln_err_invalid(err, "invalid digest `%s`", digest);
	_cleanup_close_ int s = open_dir(dir, "blobs/sha256", false, err);
	if (s < 0)
		return s;
	const char *hex = digest + 7;
	if (faccessat(s, hex, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	_cleanup_close_ int src = reg_blob_open(st, digest, err);
	if (src < 0)
		return src;
	_cleanup_free_ char *tmp = kiln_xasprintf(".%s.tmp-%d", hex, getpid());
	_cleanup_close_ int fd = openat(s, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return kiln_err_set(err, errno, "create blob in layout `%s`", dir);
	char buf[65536];
	int r = 0;
	for (;;) {
		ssize_t n = read(src, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = kiln_err_set(err, errno, "read blob %s", digest);
			break;
		}
		if (n == 0)
			break;
		r = kiln_write_all(fd, buf, (size_t)n, err);
		if (r < 0)
			break;
	}
	if (r >= 0 && fsync(fd) < 0)
		r = kiln_err_set(err, errno, "fsync blob %s", digest);
	if (r >= 0 && renameat(s, tmp, s, hex) < 0)
		r = kiln_err_set(err, errno, "rename blob %s", digest);
	if (r < 0)
		unlinkat(s, tmp, 0);
	return r;
}

int
reg_layout_read_index(const char *dir, struct reg_index *out, struct kiln_err *err)
{
	_cleanup_free_ char *p = kiln_xasprintf("%s/index.json", dir);
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	int r = kiln_buf_read_file(&b, p, err);
	if (r < 0)
		return r;
	r = reg_index_parse(b.buf, b.len, NULL, out, err);
	return r < 0 ? kiln_err_wrap(err, "%s", p) : 0;
}

int
reg_layout_write_index(const char *dir, const struct reg_index *idx, struct kiln_err *err)
{
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	int r = reg_index_write(idx, &b, err);
	if (r < 0)
		return r;
	_cleanup_close_ int dfd = open_dir(dir, NULL, false, err);
	if (dfd < 0)
		return dfd;
	return kiln_write_file_atomic_at(dfd, "index.json", b.buf, b.len, 0644, err);
}

int
reg_layout_add_image(const char *dir, struct reg_store *st, const char *top_digest,
                     const char *ref_name, struct kiln_err *err)
{
	_cleanup_strv_ struct kiln_strv blobs = KILN_STRV_INIT;
	struct reg_descriptor top = {0};
	struct reg_index idx = {0};
	int r = reg_layout_init(dir, err);
	if (r < 0)
		return r;
	r = reg_image_blobs(st, top_digest, &blobs, &top, err);
	for (size_t i = 0; r >= 0 && i < blobs.n; i++)
		r = reg_layout_put_blob(dir, st, blobs.v[i], err);
	if (r >= 0)
		r = reg_layout_read_index(dir, &idx, err);
	if (r < 0)
		goto out;
	if (ref_name) {
		/* A name names one image: drop an older entry of that name. */
		top.annotations = reg_ref_annotations(ref_name);
		_cleanup_free_ char *want = reg_name_from_annotations(top.annotations);
		size_t w = 0;
		for (size_t i = 0; i < idx.n_manifests; i++) {
			_cleanup_free_ char *n =
			        reg_name_from_annotations(idx.manifests[i].annotations);
			if (n && want && kiln_str_eq(n, want))
				reg_descriptor_release(&idx.manifests[i]);
			else
				idx.manifests[w++] = idx.manifests[i];
		}
		idx.n_manifests = w;
	}
	idx.manifests =
	        kiln_xreallocarray(idx.manifests, idx.n_manifests + 1, sizeof(*idx.manifests));
	idx.manifests[idx.n_manifests++] = top;
	top = (struct reg_descriptor){0};
	r = reg_layout_write_index(dir, &idx, err);
out:
	reg_descriptor_release(&top);
	reg_index_release(&idx);
	return r;
}
