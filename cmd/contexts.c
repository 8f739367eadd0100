/* --build-context oci-layout://DIR[:TAG|@DIGEST], shared by kiln build and kiln plan. */
#include "cmd.h"
#include "registry/reg.h"

int
cmd_oci_layout_pick(const char *spec, char **ret_dir, char **ret_digest, struct kiln_err *err)
{
	_cleanup_free_ char *dir = kiln_xstrdup(spec);
	const char *tag = NULL, *digest = NULL;
	char *at = strrchr(dir, '@');
	char *slash = strrchr(dir, '/');
	char *colon = strrchr(slash ? slash : dir, ':');
	if (at) {
		*at = '\0';
		digest = at + 1;
		if (!kiln_digest_valid(digest))
			return kiln_err_invalid(err, "oci-layout://%s: bad digest", spec);
	} else if (colon) {
		*colon = '\0';
		tag = colon + 1;
	}
	struct reg_index idx = {0};
	if (reg_layout_read_index(dir, &idx, err) < 0)
		return kiln_err_wrap(err, "oci-layout://%s", spec);
	const char *pick = digest;
	for (size_t i = 0; !pick && i < idx.n_manifests; i++) {
		const char *n = json_string_value(json_object_get(
		        idx.manifests[i].annotations, "org.opencontainers.image.ref.name"));
		const char *c = n ? strrchr(n, ':') : NULL;
		const char *t = c && !strchr(c, '/') ? c + 1 : n;
		if (tag ? t && kiln_str_eq(t, tag)
		        : idx.n_manifests == 1 || (t && kiln_str_eq(t, "latest")))
			pick = idx.manifests[i].digest;
	}
	_cleanup_free_ char *ref = pick ? kiln_xstrdup(pick) : NULL;
	reg_index_release(&idx);
	if (!ref)
		return kiln_err_set(err, ENOENT, "oci-layout://%s: no image %s in index.json", spec,
		                    tag ? tag : "tagged latest");
	*ret_dir = TAKE_PTR(dir);
	*ret_digest = TAKE_PTR(ref);
	return 0;
}

/* A blob of the layout, at most 4 MiB (manifests, indexes and configs are small). */
static int
layout_blob(const char *dir, const char *digest, struct kiln_buf *out, struct kiln_err *err)
{
	if (!kiln_digest_valid(digest))
		return kiln_err_invalid(err, "bad digest `%s`", digest);
	_cleanup_free_ char *path =
	        kiln_xasprintf("%s/blobs/sha256/%s", dir, digest + strlen("sha256:"));
	int r = kiln_buf_read_file(out, path, err);
	if (r < 0)
		return r;
	if (out->len > 4 << 20)
		return kiln_err_invalid(err, "`%s`: too large for a manifest or config", path);
	return 0;
}

json_t *
cmd_oci_layout_config(const char *dir, const char *digest, struct kiln_err *err)
{
	_cleanup_buf_ struct kiln_buf doc = KILN_BUF_INIT;
	_cleanup_free_ char *want = kiln_xstrdup(digest);
	enum reg_kind kind;
	if (layout_blob(dir, want, &doc, err) < 0 ||
	    reg_media_detect(doc.buf, doc.len, NULL, NULL, &kind, err) < 0)
		return NULL;
	if (reg_kind_is_index(kind)) {
		/* The host's image, as kiln build takes from the loaded index. */
		struct reg_index idx = {0};
		int pos = reg_index_parse(doc.buf, doc.len, NULL, &idx, err);
		if (pos >= 0)
			pos = reg_index_select(&idx, NULL, err);
		if (pos >= 0) {
			free(want);
			want = kiln_xstrdup(idx.manifests[pos].digest);
		}
		reg_index_release(&idx);
		kiln_buf_reset(&doc);
		if (pos < 0 || layout_blob(dir, want, &doc, err) < 0)
			return NULL;
	}
	struct reg_manifest m = {0};
	if (reg_manifest_parse(doc.buf, doc.len, NULL, &m, err) < 0)
		return NULL;
	kiln_buf_reset(&doc);
	int r = layout_blob(dir, m.config.digest, &doc, err);
	reg_manifest_release(&m);
	if (r < 0)
		return NULL;
	json_error_t je;
	json_t *config = json_loadb(doc.buf, doc.len, 0, &je);
	if (!config)
		kiln_err_invalid(err, "image config in `%s`: %s", dir, je.text);
	return config;
}
