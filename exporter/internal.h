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

#endif
