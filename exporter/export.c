/*
 * exp_image_export: a stage's top snapshot -> layers -> image, in one call for kiln build.
 *
 * The stage's root is found rather than asked for: an image source's snapshot is named by
 * snap_layer_apply after the chain ID of the image's diff_ids, so the base image's config
 * says where the new layers start. Scratch has no such name; an ops binding may give it an
 * empty parentless snapshot, which must not become a layer (BuildKit's scratch has none).
 */
#include "internal.h"

#include "registry/reg.h"
#include "snapshot/snap.h"

int
exp_image_export(struct snap_store *ss, struct reg_store *rs, const char *top,
                 const struct exp_export_opts *o, struct exp_image *ret, struct kiln_err *err)
{
	if (!o || !json_is_object(o->stage_config))
		return kiln_err_invalid(err, "export image: no stage config");
	struct reg_image base = REG_IMAGE_INIT;
	const char *base_ref = json_string_value(json_object_get(o->stage_config, "base"));
	_cleanup_free_ char *chain = NULL;
	struct exp_layer *layers = NULL;
	size_t n = 0;
	int r = 0;
	if (base_ref) {
		r = exp_base_open(rs, o->stage_config, o->platform, base_ref, &base, err);
		if (r < 0)
			goto out;
		for (size_t i = 0; i < base.config.diff_ids.n; i++) {
			char *next = snap_chain_id(chain, base.config.diff_ids.v[i]);
			free(chain);
			chain = next;
		}
	}
	const char *stop = o->stop ? o->stop : chain;
	struct exp_layer_opts lo = EXP_LAYER_OPTS_INIT;
	lo.source_date_epoch = o->source_date_epoch;
	lo.rewrite_timestamp = o->rewrite_timestamp;
	lo.no_cache = o->no_cache;
	lo.compression = o->compression;
	lo.compression_level = o->compression_level;
	r = exp_chain_layers(ss, top, stop, rs, &lo, &layers, &n, err);
	if (r < 0)
		goto out;
	size_t skip = 0;
	if (!stop && n > 0 && layers[0].empty)
		skip = 1; /* the empty scratch root */
	struct exp_image_opts io = EXP_IMAGE_OPTS_INIT;
	io.stage_config = o->stage_config;
	io.base = base_ref ? &base : NULL;
	io.platform = o->platform;
	io.layers = layers + skip;
	io.nlayers = n - skip;
	io.names = o->names;
	io.nnames = o->nnames;
	io.source_date_epoch = o->source_date_epoch;
	io.oci_mediatypes = o->oci_mediatypes;
	io.force_compression = o->force_compression;
	io.compression = o->compression;
	io.compression_level = o->compression_level;
	r = exp_image_commit(rs, &io, ret, err);
out:
	exp_layers_free(layers, n);
	reg_image_release(&base);
	if (r < 0)
		kiln_err_wrap(err, "export image");
	return r;
}
