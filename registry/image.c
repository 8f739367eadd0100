/* Images in the store: from a name or digest to the platform's manifest and its config. */
#include "reg.h"

void
reg_image_release(struct reg_image *img)
{
	if (!img)
		return;
	free(img->name);
	reg_manifest_release(&img->manifest);
	kiln_buf_release(&img->manifest_raw);
	reg_config_release(&img->config);
	kiln_buf_release(&img->config_raw);
	*img = (struct reg_image)REG_IMAGE_INIT;
}

int
reg_store_put_manifest(struct reg_store *st, const void *data, size_t len,
                       char ret_digest[KILN_DIGEST_HEX_LEN + 1], struct kiln_err *err)
{
	enum reg_kind k;
	int r = reg_media_detect(data, len, NULL, NULL, &k, err);
	if (r < 0)
		return r;
	return reg_blob_put(st, data, len, NULL, ret_digest, err);
}

/* Find what `ref` names: a bare digest, name@digest, or a name (tag "latest" by default). */
static int
resolve_top(struct reg_store *st, const char *ref, struct reg_image *img, struct kiln_err *err)
{
	if (kiln_digest_valid(ref)) {
		memcpy(img->top_digest, ref, sizeof(img->top_digest));
		return 0;
	}
	/* A bare 64-hex image ID means sha256, as docker's ParseAnyReference has it. */
	if (strlen(ref) == 64) {
		_cleanup_free_ char *d = kiln_xasprintf("sha256:%s", ref);
		if (kiln_digest_valid(d)) {
			memcpy(img->top_digest, d, sizeof(img->top_digest));
			return 0;
		}
	}
	struct reg_ref r = REG_REF_INIT;
	int ret = reg_ref_parse_normalized(ref, &r, err);
	if (ret < 0)
		return ret;
	if (r.digest) {
		if (!kiln_digest_valid(r.digest)) {
			ret = kiln_err_invalid(err, "only sha256 digests are supported: %s",
			                       r.digest);
			reg_ref_release(&r);
			return ret;
		}
		memcpy(img->top_digest, r.digest, sizeof(img->top_digest));
		img->name = reg_ref_name(&r);
		reg_ref_release(&r);
		return 0;
	}
	reg_ref_default_tag(&r);
	img->name = reg_ref_string(&r);
	reg_ref_release(&r);
	return reg_name_get(st, img->name, img->top_digest, err);
}

int
reg_image_open(struct reg_store *st, const char *ref, const struct reg_platform *platform,
               struct reg_image *out, struct kiln_err *err)
{
	struct reg_image img = REG_IMAGE_INIT;
	const struct reg_limits lim = REG_LIMITS_INIT;
	int r = resolve_top(st, ref, &img, err);
	if (r < 0)
		goto fail;
	memcpy(img.manifest_digest, img.top_digest, sizeof(img.manifest_digest));
	/* An index may point at another index (rare, but legal); follow a few levels. */
	for (int depth = 0;; depth++) {
		kiln_buf_reset(&img.manifest_raw);
		r = reg_blob_read(st, img.manifest_digest, lim.max_manifest_bytes,
		                  &img.manifest_raw, err);
		if (r < 0)
			goto fail;
		enum reg_kind k;
		r = reg_media_detect(img.manifest_raw.buf, img.manifest_raw.len, NULL, &lim, &k,
		                     err);
		if (r < 0)
			goto fail;
		if (!reg_kind_is_index(k))
			break;
		if (depth >= 4) {
			r = kiln_err_invalid(err, "indexes nest too deep");
			goto fail;
		}
		struct reg_index idx = {0};
		r = reg_index_parse(img.manifest_raw.buf, img.manifest_raw.len, &lim, &idx, err);
		if (r < 0)
			goto fail;
		r = reg_index_select(&idx, platform, err);
		if (r >= 0)
			memcpy(img.manifest_digest, idx.manifests[r].digest,
			       sizeof(img.manifest_digest));
		reg_index_release(&idx);
		if (r < 0)
			goto fail;
	}
	r = reg_manifest_parse(img.manifest_raw.buf, img.manifest_raw.len, &lim, &img.manifest,
	                       err);
	if (r < 0)
		goto fail;
	r = reg_blob_read(st, img.manifest.config.digest, lim.max_manifest_bytes, &img.config_raw,
	                  err);
	if (r < 0)
		goto fail;
	r = reg_config_parse(img.config_raw.buf, img.config_raw.len, &lim, &img.config, err);
	if (r < 0)
		goto fail;
	*out = img;
	return 0;
fail:
	kiln_err_wrap(err, "image %s", ref);
	reg_image_release(&img);
	return r;
}
