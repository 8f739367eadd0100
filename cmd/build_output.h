/*
 * kiln build's outputs (-o/--output, --push, -t), as buildx has them:
 *
 *	struct cmd_outputs o = CMD_OUTPUTS_INIT;
 *	cmd_outputs_parse(&o, "type=oci,dest=img.tar", &err);     // per -o, several allowed
 *	cmd_outputs_finish(&o, tags, ntags, push, iidfile != NULL);  // defaults from -t/--push
 *	...solve...
 *	cmd_outputs_export(&o, &ctx, &res, &err);                  // every output, in order
 *	cmd_outputs_metadata(&res, path, &err);                    // --metadata-file
 *	cmd_outputs_release(&o); cmd_export_result_release(&res);
 *
 * Types: image (the store; push=true pushes each name), registry (image + push), oci
 * (dest=FILE.tar, or a layout directory with tar=false; dest=- is standard output),
 * docker (a `docker save` archive), local (the final stage's files in dest=DIR), tar (the
 * same as a tar, dest=FILE or -). Image keys: name=, compression=gzip|zstd|uncompressed,
 * compression-level=, force-compression=, oci-mediatypes=, rewrite-timestamp=,
 * registry.insecure=. Without -o: an image in the store, named by -t (none: unnamed).
 */
#ifndef KILN_CMD_BUILD_OUTPUT_H
#define KILN_CMD_BUILD_OUTPUT_H

#include "base/base.h"
#include "exporter/exp.h"

#include <jansson.h>
#include <stdio.h>

enum cmd_output_type {
	CMD_OUTPUT_IMAGE,
	CMD_OUTPUT_REGISTRY,
	CMD_OUTPUT_OCI,
	CMD_OUTPUT_DOCKER,
	CMD_OUTPUT_LOCAL,
	CMD_OUTPUT_TAR,
};

struct cmd_output {
	enum cmd_output_type type;
	char *dest;
	struct kiln_strv names;
	bool push, tar, force_compression, oci_mediatypes, rewrite_timestamp, insecure;
	enum exp_compression compression;
	int compression_level;
};

struct cmd_outputs {
	struct cmd_output *v;
	size_t n;
};
#define CMD_OUTPUTS_INIT                                                                           \
	{                                                                                          \
		0                                                                                  \
	}

/* Parse one -o SPEC and add it. -EINVAL with the reason. */
int cmd_outputs_parse(struct cmd_outputs *o, const char *spec, struct kiln_err *err);
/* Apply -t, --push and the defaults; -EINVAL when an output cannot work (a push with no
 * name). `need_image`: --iidfile wants an image even when only files are exported. */
int cmd_outputs_finish(struct cmd_outputs *o, char *const *tags, size_t ntags, bool push,
                       bool need_image, struct kiln_err *err);
void cmd_outputs_release(struct cmd_outputs *o);
/* The layer options an output exports with (its compression, rewrite-timestamp). */
void cmd_output_layer_opts(const struct cmd_output *out, int64_t source_date_epoch,
                           struct exp_layer_opts *lo);
/* The first output that makes an image (not local or tar), or NULL. */
const struct cmd_output *cmd_outputs_first_image(const struct cmd_outputs *o);

struct snap_store;
struct reg_store;
struct ops;
struct cmd_export_ctx {
	struct snap_store *ss;
	struct reg_store *rs;
	struct ops *ops;
	const char *top, *stop;     /* the target's snapshot and its stage's root */
	const json_t *stage_config; /* borrowed */
	int64_t source_date_epoch;  /* -1: unset */
	/* The image's creation time: SOURCE_DATE_EPOCH, else the export's start, taken once so
	 * every output of one build names the same config. */
	int64_t created;
	struct progress *progress; /* the exporting step's lines go here; NULL: none */
};

struct cmd_export_result {
	bool have_image; /* the first image output's image */
	struct exp_image img;
	const char *manifest_media_type;
	struct kiln_strv names;
};

int cmd_outputs_export(const struct cmd_outputs *o, const struct cmd_export_ctx *c,
                       struct cmd_export_result *res, struct kiln_err *err);
/* BuildKit's keys: containerimage.digest, .config.digest, .descriptor, image.name. */
int cmd_outputs_metadata(const struct cmd_export_result *res, const char *path,
                         struct kiln_err *err);
void cmd_export_result_release(struct cmd_export_result *res);

#endif
