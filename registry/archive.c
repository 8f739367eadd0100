/*
 * Image archives: `kiln save` writes an OCI layout or a `docker save` archive as a tar;
 * `kiln load` reads either (as a tar, or an OCI layout directory) back into the store.
 *
 * Loading a tar streams every regular file straight into the store (blobs/sha256/<hex>
 * entries verified against their names), remembering path -> digest; the small JSON files
 * that describe the archive are kept in memory. Only then is the archive interpreted, so
 * the order of entries in the tar does not matter and nothing is extracted to disk.
 */
#include "internal.h"

#include <fcntl.h>
#include <sys/stat.h>

#define MAX_META (4u << 20)

/* ---- reading: a tar or a directory, seen as path -> blob ---- */

struct src_file {
	char *path;
	char digest[KILN_DIGEST_HEX_LEN + 1];
	int64_t size;
};

struct src {
	struct reg_store *st;
	const char *dir; /* a directory source, or NULL for a tar */
	struct src_file *files;
	size_t n_files, alloc_files;
	struct kiln_buf index_json, manifest_json, oci_layout;
	bool has_index, has_manifest, has_layout;
};

static void
src_release(struct src *s)
{
	for (size_t i = 0; i < s->n_files; i++)
		free(s->files[i].path);
	free(s->files);
	kiln_buf_release(&s->index_json);
	kiln_buf_release(&s->manifest_json);
	kiln_buf_release(&s->oci_layout);
}

/* "./a//b" -> "a/b"; NULL for names that climb out or are empty. */
static char *
clean_name(const char *name)
{
	char *c = kiln_path_clean(name[0] == '/' ? name + 1 : name);
	if (kiln_str_eq(c, ".") || kiln_str_eq(c, "..") || kiln_str_has_prefix(c, "../")) {
		free(c);
		return NULL;
	}
	return c;
}

/* blobs/<alg>/<hex> -> "sha256:<hex>" when it is a sha256 blob path. */
static char *
blob_path_digest(const char *path)
{
	if (!kiln_str_has_prefix(path, "blobs/sha256/"))
		return NULL;
	char *d = kiln_xasprintf("sha256:%s", path + 13);
	if (!kiln_digest_valid(d)) {
		free(d);
		return NULL;
	}
	return d;
}

static int
read_tar(struct src *s, const char *path, struct kiln_err *err)
{
	_cleanup_archive_read_ struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK)
		return kiln_err_set(err, archive_errno(a) > 0 ? archive_errno(a) : EINVAL,
		                    "open `%s`: %s", path, archive_error_string(a));
	_cleanup_strv_ struct kiln_strv links = KILN_STRV_INIT; /* name, target, ... */
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		if (archive_entry_filetype(e) == AE_IFLNK) {
			/* Older docker-save archives link <id>/layer.tar to another layer's
			 * file; resolved against the directory once all files are read. */
			_cleanup_free_ char *name = clean_name(archive_entry_pathname(e));
			const char *target = archive_entry_symlink(e);
			if (!name || !target || target[0] == '/')
				continue;
			const char *slash = strrchr(name, '/');
			_cleanup_free_ char *dir =
			        slash ? kiln_xstrndup(name, (size_t)(slash - name))
			              : kiln_xstrdup("");
			_cleanup_free_ char *joined = kiln_path_join(dir, target);
			char *resolved = clean_name(joined);
			if (!resolved)
				continue;
			kiln_strv_push_take(&links, TAKE_PTR(name));
			kiln_strv_push_take(&links, resolved);
			continue;
		}
		if (archive_entry_filetype(e) != AE_IFREG)
			continue;
		_cleanup_free_ char *name = clean_name(archive_entry_pathname(e));
		if (!name)
			continue;
		if (archive_entry_hardlink(e)) {
			/* A second name for a file already read: same blob. */
			_cleanup_free_ char *target = clean_name(archive_entry_hardlink(e));
			for (size_t i = 0; target && i < s->n_files; i++) {
				if (!kiln_str_eq(s->files[i].path, target))
					continue;
				KILN_GROW(s->files, s->alloc_files, s->n_files + 1);
				s->files[s->n_files] = s->files[i];
				s->files[s->n_files].path = TAKE_PTR(name);
				s->n_files++;
				break;
			}
			continue;
		}
		struct kiln_buf *meta = NULL;
		bool *flag = NULL;
		if (kiln_str_eq(name, "index.json"))
			meta = &s->index_json, flag = &s->has_index;
		else if (kiln_str_eq(name, "manifest.json"))
			meta = &s->manifest_json, flag = &s->has_manifest;
		else if (kiln_str_eq(name, "oci-layout"))
			meta = &s->oci_layout, flag = &s->has_layout;
		const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
		if (!meta && (kiln_str_eq(base, "json") || kiln_str_eq(base, "VERSION") ||
		              kiln_str_eq(name, "repositories")))
			continue; /* legacy docker-save files kiln does not need */
		const void *buf;
		size_t len;
		la_int64_t off;
		int dr;
		if (meta) {
			kiln_buf_reset(meta);
			while ((dr = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
				if (meta->len + len > MAX_META)
					return kiln_err_invalid(
					        err, "`%s` in the archive is too large", name);
				kiln_buf_add(meta, buf, len);
			}
			if (dr != ARCHIVE_EOF)
				return kiln_err_invalid(err, "read `%s`: %s", path,
				                        archive_error_string(a));
			*flag = true;
			continue;
		}
		_cleanup_free_ char *want = blob_path_digest(name);
		struct reg_ingest *in;
		int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
		int ir = reg_ingest_begin(s->st, want, size, &in, err);
		if (ir < 0)
			return ir;
		while ((dr = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
			ir = reg_ingest_write(in, buf, len, err);
			if (ir < 0)
				break;
		}
		if (ir >= 0 && dr != ARCHIVE_EOF)
			ir = kiln_err_invalid(err, "read `%s`: %s", path, archive_error_string(a));
		if (ir < 0) {
			reg_ingest_abort(in);
			return kiln_err_wrap(err, "%s", name);
		}
		KILN_GROW(s->files, s->alloc_files, s->n_files + 1);
		struct src_file *f = &s->files[s->n_files];
		f->size = reg_ingest_offset(in);
		ir = reg_ingest_commit(in, f->digest, err);
		if (ir < 0)
			return kiln_err_wrap(err, "%s", name);
		f->path = TAKE_PTR(name);
		s->n_files++;
	}
	if (r != ARCHIVE_EOF)
		return kiln_err_invalid(err, "read `%s`: %s", path, archive_error_string(a));
	for (size_t l = 0; l + 1 < links.n; l += 2) {
		for (size_t i = 0; i < s->n_files; i++) {
			if (!kiln_str_eq(s->files[i].path, links.v[l + 1]))
				continue;
			KILN_GROW(s->files, s->alloc_files, s->n_files + 1);
			s->files[s->n_files] = s->files[i];
			s->files[s->n_files].path = kiln_xstrdup(links.v[l]);
			s->n_files++;
			break;
		}
	}
	return 0;
}

static int
read_dir_meta(struct src *s, const char *name, struct kiln_buf *b, bool *flag, struct kiln_err *err)
{
	_cleanup_close_ int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kiln_err_set(err, errno, "open `%s`", s->dir);
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : kiln_err_set(err, errno, "open `%s/%s`", s->dir, name);
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size > (off_t)MAX_META) {
		close(fd);
		return kiln_err_invalid(err, "`%s/%s` is too large", s->dir, name);
	}
	int r = kiln_buf_read_fd(b, fd, err);
	close(fd);
	*flag = r >= 0;
	return r;
}

/* The blob at `path` in the source, in the store; `want` (may be NULL) is checked. */
static int
src_blob(struct src *s, const char *path, const char *want, char digest[KILN_DIGEST_HEX_LEN + 1],
         int64_t *size, struct kiln_err *err)
{
	_cleanup_free_ char *name = clean_name(path);
	if (!name)
		return kiln_err_invalid(err, "bad path `%s` in the archive", path);
	if (!s->dir) {
		for (size_t i = 0; i < s->n_files; i++) {
			if (!kiln_str_eq(s->files[i].path, name))
				continue;
			if (want && !kiln_str_eq(want, s->files[i].digest))
				return kiln_err_invalid(err,
				                        "digest mismatch: `%s` is %s, expected %s",
				                        name, s->files[i].digest, want);
			memcpy(digest, s->files[i].digest, KILN_DIGEST_HEX_LEN + 1);
			*size = s->files[i].size;
			return 0;
		}
		return kiln_err_set(err, ENOENT, "`%s` is missing from the archive", name);
	}
	_cleanup_close_ int dfd = open(s->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kiln_err_set(err, errno, "open `%s`", s->dir);
	_cleanup_close_ int fd = kiln_path_openat_in_root(dfd, name, O_RDONLY, 0, err);
	if (fd < 0)
		return kiln_err_wrap(err, "`%s` in `%s`", name, s->dir);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return kiln_err_set(err, errno, "stat `%s`", name);
	int r = reg_blob_put_fd(s->st, fd, want, -1, digest, err);
	if (r < 0)
		return kiln_err_wrap(err, "%s", name);
	*size = (int64_t)st.st_size;
	return 0;
}

/* Bring the image `d` of an OCI layout into the store: manifests, then what they name. */
static int
load_oci_tree(struct src *s, const char *digest, int depth, bool optional, struct kiln_err *err)
{
	const struct reg_limits lim = REG_LIMITS_INIT;
	char got[KILN_DIGEST_HEX_LEN + 1];
	int64_t size;
	if (depth > 4)
		return kiln_err_invalid(err, "indexes nest too deep");
	_cleanup_free_ char *path = kiln_xasprintf("blobs/sha256/%s", digest + 7);
	int r = src_blob(s, path, digest, got, &size, err);
	if (r < 0) {
		if (optional && r == -ENOENT) {
			kiln_err_release(err);
			return 0;
		}
		return r;
	}
	_cleanup_buf_ struct kiln_buf raw = KILN_BUF_INIT;
	r = reg_blob_read(s->st, digest, lim.max_manifest_bytes, &raw, err);
	if (r < 0)
		return r;
	enum reg_kind k;
	r = reg_media_detect(raw.buf, raw.len, NULL, &lim, &k, err);
	if (r < 0)
		return kiln_err_wrap(err, "%s", digest);
	if (reg_kind_is_index(k)) {
		struct reg_index idx = {0};
		r = reg_index_parse(raw.buf, raw.len, &lim, &idx, err);
		/* A layout may hold only some platforms of an index. */
		for (size_t i = 0; r >= 0 && i < idx.n_manifests; i++)
			r = load_oci_tree(s, idx.manifests[i].digest, depth + 1, true, err);
		reg_index_release(&idx);
		return r;
	}
	struct reg_manifest m = {0};
	r = reg_manifest_parse(raw.buf, raw.len, &lim, &m, err);
	for (size_t i = 0; r >= 0 && i < m.n_layers + 1; i++) {
		const char *d = i == 0 ? m.config.digest : m.layers[i - 1].digest;
		free(path);
		path = kiln_xasprintf("blobs/sha256/%s", d + 7);
		r = src_blob(s, path, d, got, &size, err);
	}
	reg_manifest_release(&m);
	return r;
}

static void
add_loaded(struct reg_loaded **v, size_t *n, const char *name, const char *digest)
{
	*v = kiln_xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[*n].name = name ? kiln_xstrdup(name) : NULL;
	memcpy((*v)[*n].digest, digest, KILN_DIGEST_HEX_LEN + 1);
	(*n)++;
}

static int
load_oci(struct src *s, struct reg_loaded **v, size_t *n, struct kiln_err *err)
{
	struct reg_index idx = {0};
	int r = reg_index_parse(s->index_json.buf, s->index_json.len, NULL, &idx, err);
	if (r < 0)
		return kiln_err_wrap(err, "index.json");
	for (size_t i = 0; r >= 0 && i < idx.n_manifests; i++) {
		r = load_oci_tree(s, idx.manifests[i].digest, 0, false, err);
		if (r < 0)
			break;
		_cleanup_free_ char *name = reg_name_from_annotations(idx.manifests[i].annotations);
		add_loaded(v, n, name, idx.manifests[i].digest);
	}
	reg_index_release(&idx);
	return r;
}

/* The layer media type from the first bytes: docker-save layers may be compressed. */
static const char *
sniff_layer(struct reg_store *st, const char *digest)
{
	unsigned char m[4] = {0};
	_cleanup_close_ int fd = reg_blob_open(st, digest, NULL);
	if (fd < 0 || read(fd, m, sizeof(m)) < 2)
		return REG_MT_OCI_LAYER;
	if (m[0] == 0x1f && m[1] == 0x8b)
		return REG_MT_OCI_LAYER_GZIP;
	if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
		return REG_MT_OCI_LAYER_ZSTD;
	return REG_MT_OCI_LAYER;
}

/* manifest.json: [{"Config": path, "RepoTags": [...], "Layers": [paths]}] */
static int
load_docker(struct src *s, struct reg_loaded **v, size_t *n, struct kiln_err *err)
{
	const struct reg_limits lim = REG_LIMITS_INIT;
	json_error_t je;
	_cleanup_json_ json_t *j = json_loadb(s->manifest_json.buf, s->manifest_json.len, 0, &je);
	if (!json_is_array(j))
		return kiln_err_invalid(err, "manifest.json: not a JSON array%s%s", j ? "" : ": ",
		                        j ? "" : je.text);
	size_t i;
	json_t *e;
	json_array_foreach(j, i, e)
	{
		const char *cfg = json_string_value(json_object_get(e, "Config"));
		json_t *layers = json_object_get(e, "Layers");
		if (!cfg || !json_is_array(layers))
			return kiln_err_invalid(
			        err, "manifest.json entry %zu lacks Config or Layers", i);
		if (json_array_size(layers) > lim.max_layers)
			return kiln_err_invalid(err, "manifest.json entry %zu has too many layers",
			                        i);
		struct reg_manifest m = {.kind = REG_KIND_OCI_MANIFEST};
		_cleanup_buf_ struct kiln_buf mb = KILN_BUF_INIT;
		_cleanup_buf_ struct kiln_buf cb = KILN_BUF_INIT;
		struct reg_config c = {0};
		char top[KILN_DIGEST_HEX_LEN + 1];
		int r = src_blob(s, cfg, NULL, m.config.digest, &m.config.size, err);
		if (r >= 0)
			r = reg_blob_read(s->st, m.config.digest, lim.max_manifest_bytes, &cb, err);
		if (r >= 0)
			r = reg_config_parse(cb.buf, cb.len, &lim, &c, err);
		if (r >= 0 && c.diff_ids.n != json_array_size(layers))
			r = kiln_err_invalid(err,
			                     "manifest.json entry %zu: %zu layers but %zu diff_ids",
			                     i, json_array_size(layers), c.diff_ids.n);
		m.config.media_type = kiln_xstrdup(REG_MT_OCI_CONFIG);
		m.layers = kiln_xcalloc(json_array_size(layers) + 1, sizeof(*m.layers));
		for (size_t k = 0; r >= 0 && k < json_array_size(layers); k++) {
			const char *lp = json_string_value(json_array_get(layers, k));
			if (!lp) {
				r = kiln_err_invalid(err, "manifest.json: layer %zu is not a path",
				                     k);
				break;
			}
			struct reg_descriptor *d = &m.layers[m.n_layers++];
			r = src_blob(s, lp, NULL, d->digest, &d->size, err);
			if (r < 0)
				break;
			d->media_type = kiln_xstrdup(sniff_layer(s->st, d->digest));
			/* An uncompressed layer is its own diff_id: check it. */
			if (kiln_str_eq(d->media_type, REG_MT_OCI_LAYER) &&
			    !kiln_str_eq(d->digest, c.diff_ids.v[k]))
				r = kiln_err_invalid(err, "layer `%s` is %s but the config says %s",
				                     lp, d->digest, c.diff_ids.v[k]);
		}
		if (r >= 0)
			r = reg_manifest_write(&m, &mb, err);
		if (r >= 0)
			r = reg_blob_put(s->st, mb.buf, mb.len, NULL, top, err);
		reg_manifest_release(&m);
		reg_config_release(&c);
		if (r < 0)
			return kiln_err_wrap(err, "manifest.json entry %zu", i);
		json_t *tags = json_object_get(e, "RepoTags");
		size_t t;
		json_t *tag;
		bool named = false;
		json_array_foreach(tags, t, tag)
		{
			struct reg_ref ref = REG_REF_INIT;
			if (!json_is_string(tag) ||
			    reg_ref_parse_normalized(json_string_value(tag), &ref, NULL) < 0)
				continue;
			reg_ref_default_tag(&ref);
			_cleanup_free_ char *canon = reg_ref_string(&ref);
			reg_ref_release(&ref);
			add_loaded(v, n, canon, top);
			named = true;
		}
		if (!named)
			add_loaded(v, n, NULL, top);
	}
	return 0;
}

void
reg_loaded_free(struct reg_loaded *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].name);
	free(v);
}

int
reg_archive_load(struct reg_store *st, const char *path, struct reg_loaded **ret, size_t *ret_n,
                 struct kiln_err *err)
{
	struct src s = {.st = st,
	                .index_json = KILN_BUF_INIT,
	                .manifest_json = KILN_BUF_INIT,
	                .oci_layout = KILN_BUF_INIT};
	struct reg_loaded *v = NULL;
	size_t n = 0;
	struct stat sb;
	int r;
	if (stat(path, &sb) < 0) {
		r = kiln_err_set(err, errno, "load `%s`", path);
		goto out;
	}
	if (S_ISDIR(sb.st_mode)) {
		s.dir = path;
		r = read_dir_meta(&s, "index.json", &s.index_json, &s.has_index, err);
		if (r >= 0)
			r = read_dir_meta(&s, "oci-layout", &s.oci_layout, &s.has_layout, err);
		if (r >= 0)
			r = read_dir_meta(&s, "manifest.json", &s.manifest_json, &s.has_manifest,
			                  err);
	} else {
		r = read_tar(&s, path, err);
	}
	if (r < 0)
		goto out;
	/* Docker 25+ writes both; the OCI index is the richer description. */
	if (s.has_index && s.has_layout)
		r = load_oci(&s, &v, &n, err);
	else if (s.has_manifest)
		r = load_docker(&s, &v, &n, err);
	else
		r = kiln_err_invalid(err, "neither an OCI layout (oci-layout, index.json) nor a "
		                          "docker-save archive (manifest.json)");
out:
	src_release(&s);
	if (r < 0) {
		reg_loaded_free(v, n);
		return kiln_err_wrap(err, "load `%s`", path);
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* ---- writing ---- */

struct sink {
	struct archive *a;
	struct kiln_err *err;
	int fd;
	/* Bytes libarchive is about to hand over that are in the file already: a blob
	 * copied by copy_file_range, which the tar writer must still count. */
	int64_t swallow;
};

/* libarchive's write callback, unbuffered (bytes_per_block 0): each call writes at once,
 * so the file offset is always where the tar is, and a blob's bytes can go in between. */
static la_ssize_t
sink_write(struct archive *a, void *data, const void *buf, size_t len)
{
	struct sink *k = data;
	size_t skip = k->swallow < (int64_t)len ? (size_t)k->swallow : len;
	k->swallow -= (int64_t)skip;
	const char *p = (const char *)buf + skip;
	size_t left = len - skip;
	while (left) {
		ssize_t n = write(k->fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			archive_set_error(a, errno, "write archive");
			return -1;
		}
		p += n;
		left -= (size_t)n;
	}
	return (la_ssize_t)len;
}

static int
sink_fail(struct sink *k, const char *what)
{
	int e = archive_errno(k->a);
	return kiln_err_set(k->err, e > 0 ? e : EIO, "%s: %s", what,
	                    archive_error_string(k->a) ? archive_error_string(k->a)
	                                               : "write error");
}

static int
sink_header(struct sink *k, const char *name, mode_t type, int64_t size)
{
	_cleanup_entry_ struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
	archive_entry_set_mtime(e, 0, 0);
	if (type == AE_IFREG)
		archive_entry_set_size(e, size);
	if (archive_write_header(k->a, e) != ARCHIVE_OK)
		return sink_fail(k, name);
	return 0;
}

static int
sink_data(struct sink *k, const void *data, size_t len)
{
	if (len && archive_write_data(k->a, data, len) < 0)
		return sink_fail(k, "write archive");
	return 0;
}

static int
sink_bytes(struct sink *k, const char *name, const void *data, size_t len)
{
	int r = sink_header(k, name, AE_IFREG, (int64_t)len);
	return r < 0 ? r : sink_data(k, data, len);
}

/* A blob's bytes, read and written in user space: the fallback of sink_blob. */
static int
sink_blob_read(struct sink *k, int fd, const char *digest)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kiln_err_set(k->err, errno, "read blob %s", digest);
		if (n == 0)
			return 0;
		int r = sink_data(k, buf, (size_t)n);
		if (r < 0)
			return r;
	}
}

/*
 * A blob as one tar entry. Its bytes go file to file in the kernel (copy_file_range: no
 * copy through user space, a clone where the filesystem can), then libarchive is fed as
 * many zero bytes, which sink_write swallows, so that it pads and counts the entry as it
 * would have. Where the kernel cannot (a pipe, an old kernel) the bytes are read as
 * before.
 */
static int
sink_blob(struct sink *k, struct reg_store *st, const char *name, const char *digest)
{
	static const char zeros[1 << 16];
	_cleanup_close_ int fd = reg_blob_open(st, digest, k->err);
	if (fd < 0)
		return fd;
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return kiln_err_set(k->err, errno, "blob %s", digest);
	int r = sink_header(k, name, AE_IFREG, (int64_t)sb.st_size);
	if (r < 0)
		return r;
	int64_t done = 0;
	while (done < sb.st_size) {
		ssize_t n = copy_file_range(fd, NULL, k->fd, NULL, (size_t)(sb.st_size - done), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the rest by read and write, from where the copy stopped */
		done += n;
	}
	k->swallow = done;
	for (int64_t left = done; left > 0 && r >= 0; left -= (int64_t)sizeof(zeros))
		r = sink_data(k, zeros,
		              left < (int64_t)sizeof(zeros) ? (size_t)left : sizeof(zeros));
	k->swallow = 0;
	if (r >= 0 && done < sb.st_size)
		r = sink_blob_read(k, fd, digest);
	return r;
}

/* Stream a layer blob decompressed (gzip, zstd or none) to `k`, or only measure it and
 * check its digest against `diff_id` when k is NULL. */
static int
layer_uncompressed(struct reg_store *st, const char *digest, const char *diff_id, struct sink *k,
                   int64_t *ret_size, struct kiln_err *err)
{
	_cleanup_close_ int fd = reg_blob_open(st, digest, err);
	if (fd < 0)
		return fd;
	_cleanup_archive_read_ struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	struct archive_entry *e;
	if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK)
		return kiln_err_invalid(err, "layer %s: %s", digest, archive_error_string(a));
	struct kiln_sha256 *sha = k ? NULL : kiln_sha256_new();
	int64_t size = 0;
	char buf[65536];
	la_ssize_t n;
	int r = 0;
	while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) {
		size += n;
		if (sha)
			kiln_sha256_update(sha, buf, (size_t)n);
		else if ((r = sink_data(k, buf, (size_t)n)) < 0)
			break;
	}
	if (r >= 0 && n < 0)
		r = kiln_err_invalid(err, "layer %s: %s", digest, archive_error_string(a));
	if (sha) {
		struct kiln_digest d;
		char got[KILN_DIGEST_HEX_LEN + 1];
		kiln_sha256_final(sha, &d);
		kiln_digest_format(&d, got);
		if (r >= 0 && !kiln_str_eq(got, diff_id))
			r = kiln_err_invalid(err, "layer %s: diff_id mismatch: expected %s, got %s",
			                     digest, diff_id, got);
	}
	*ret_size = size;
	return r;
}

static int
save_oci(struct sink *k, struct reg_store *st, const struct reg_image *img, struct kiln_err *err)
{
	_cleanup_strv_ struct kiln_strv blobs = KILN_STRV_INIT;
	struct reg_descriptor top = {0};
	struct reg_index idx = {.kind = REG_KIND_OCI_INDEX};
	_cleanup_buf_ struct kiln_buf ib = KILN_BUF_INIT;
	static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
	int r = reg_image_blobs(st, img->top_digest, &blobs, &top, err);
	if (r < 0)
		return r;
	if (img->name)
		top.annotations = reg_ref_annotations(img->name);
	idx.manifests = &top;
	idx.n_manifests = 1;
	r = reg_index_write(&idx, &ib, err);
	reg_descriptor_release(&top);
	if (r < 0)
		return r;
	if ((r = sink_bytes(k, "oci-layout", layout, strlen(layout))) < 0 ||
	    (r = sink_bytes(k, "index.json", ib.buf, ib.len)) < 0 ||
	    (r = sink_header(k, "blobs", AE_IFDIR, 0)) < 0 ||
	    (r = sink_header(k, "blobs/sha256", AE_IFDIR, 0)) < 0)
		return r;
	for (size_t i = 0; i < blobs.n; i++) {
		_cleanup_free_ char *name = kiln_xasprintf("blobs/sha256/%s", blobs.v[i] + 7);
		if ((r = sink_blob(k, st, name, blobs.v[i])) < 0)
			return r;
	}
	return 0;
}

/* The classic `docker save` layout: <config-hex>.json, <diff-id-hex>/layer.tar
 * (uncompressed), manifest.json and repositories. */
static int
save_docker(struct sink *k, struct reg_store *st, const struct reg_image *img, struct kiln_err *err)
{
	const struct reg_manifest *m = &img->manifest;
	if (m->n_layers != img->config.diff_ids.n)
		return kiln_err_invalid(err, "manifest has %zu layers but config %zu diff_ids",
		                        m->n_layers, img->config.diff_ids.n);
	_cleanup_free_ char *cfgname = kiln_xasprintf("%s.json", m->config.digest + 7);
	int r = sink_bytes(k, cfgname, img->config_raw.buf, img->config_raw.len);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *layers = json_array();
	for (size_t i = 0; i < m->n_layers; i++) {
		const char *diff = img->config.diff_ids.v[i];
		_cleanup_free_ char *dir = kiln_xstrdup(diff + 7);
		_cleanup_free_ char *name = kiln_xasprintf("%s/layer.tar", diff + 7);
		int64_t size;
		r = layer_uncompressed(st, m->layers[i].digest, diff, NULL, &size, err);
		if (r < 0)
			return r;
		if ((r = sink_header(k, dir, AE_IFDIR, 0)) < 0 ||
		    (r = sink_header(k, name, AE_IFREG, size)) < 0)
			return r;
		int64_t again;
		r = layer_uncompressed(st, m->layers[i].digest, diff, k, &again, err);
		if (r < 0)
			return r;
		json_array_append_new(layers, json_string(name));
	}
	_cleanup_json_ json_t *tags = json_array();
	_cleanup_json_ json_t *repos = json_object();
	if (img->name) {
		struct reg_ref ref = REG_REF_INIT;
		if (reg_ref_parse_normalized(img->name, &ref, NULL) >= 0 && ref.tag) {
			_cleanup_free_ char *fam = reg_ref_familiar(&ref);
			json_array_append_new(tags, json_string(fam));
			free(ref.tag);
			ref.tag = NULL;
			_cleanup_free_ char *repo = reg_ref_familiar(&ref);
			const char *top =
			        m->n_layers ? img->config.diff_ids.v[m->n_layers - 1] + 7 : "";
			json_object_set_new(repos, repo,
			                    json_pack("{s:s}", strrchr(fam, ':') + 1, top));
		}
		reg_ref_release(&ref);
	}
	_cleanup_json_ json_t *man =
	        json_pack("[{s:s,s:O,s:O}]", "Config", cfgname, "RepoTags", tags, "Layers", layers);
	_cleanup_free_ char *ms = json_dumps(man, JSON_COMPACT);
	_cleanup_free_ char *rs = json_dumps(repos, JSON_COMPACT);
	if ((r = sink_bytes(k, "manifest.json", ms, strlen(ms))) < 0)
		return r;
	if (json_object_size(repos))
		r = sink_bytes(k, "repositories", rs, strlen(rs));
	return r;
}

/* Write `img` as a `fmt` archive to `path` (temp file, fsync when `durable`, rename), or
 * to standard output when path is "-". */
static int
save_image(struct reg_store *st, const struct reg_image *img, enum reg_archive_format fmt,
           const char *path, bool durable, struct kiln_err *err)
{
	_cleanup_(kiln_output_release) struct kiln_output o = KILN_OUTPUT_INIT;
	if (kiln_output_open(&o, path, err) < 0)
		return -err->code;
	_cleanup_archive_write_ struct archive *a = archive_write_new();
	struct sink k = {.a = a, .err = err, .fd = o.fd};
	int r = 0;
	archive_write_set_format_pax_restricted(a);
	/* No blocking (the same bytes: the last block is not padded): see sink_write. */
	archive_write_set_bytes_per_block(a, 0);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open2(a, &k, NULL, sink_write, NULL, NULL) != ARCHIVE_OK) {
		r = sink_fail(&k, "open archive");
		goto out;
	}
	r = fmt == REG_ARCHIVE_DOCKER ? save_docker(&k, st, img, err) : save_oci(&k, st, img, err);
	if (r >= 0 && archive_write_close(a) != ARCHIVE_OK)
		r = sink_fail(&k, "finish archive");
	if (r >= 0)
		r = kiln_output_commit(&o, durable, err);
out:
	return r;
}

int
reg_archive_save_image(struct reg_store *st, const char *manifest_digest, const char *name,
                       enum reg_archive_format fmt, const char *path, struct kiln_err *err)
{
	struct reg_image img = REG_IMAGE_INIT;
	int r = reg_image_open(st, manifest_digest, NULL, &img, err);
	if (r >= 0) {
		free(img.name);
		img.name = NULL;
		if (name) {
			struct reg_ref ref = REG_REF_INIT;
			r = reg_ref_parse_normalized(name, &ref, err);
			if (r >= 0) {
				reg_ref_default_tag(&ref);
				img.name = reg_ref_string(&ref);
			}
			reg_ref_release(&ref);
		}
	}
	if (r >= 0)
		r = save_image(st, &img, fmt, path, false, err);
	reg_image_release(&img);
	if (r < 0)
		return kiln_err_wrap(err, "save %s", name ? name : manifest_digest);
	return 0;
}

int
reg_archive_save(struct reg_store *st, const char *ref, enum reg_archive_format fmt,
                 const char *path, struct kiln_err *err)
{
	struct reg_image img = REG_IMAGE_INIT;
	int r = reg_image_open(st, ref, NULL, &img, err);
	if (r >= 0)
		r = save_image(st, &img, fmt, path, true, err);
	if (r < 0)
		kiln_err_wrap(err, "save %s", ref);
	reg_image_release(&img);
	return r;
}
