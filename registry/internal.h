/* Internal to registry/: helpers shared by the layout, archive and import code. */
#ifndef KILN_REG_INTERNAL_H
#define KILN_REG_INTERNAL_H

#include "reg.h"

#include <archive.h>
#include <archive_entry.h>

static inline void
reg_archive_write_freep(struct archive **a)
{
	if (*a)
		archive_write_free(*a);
}
static inline void
reg_archive_read_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}
static inline void
reg_archive_entry_freep(struct archive_entry **e)
{
	if (*e)
		archive_entry_free(*e);
}
#define _cleanup_archive_write_ _cleanup_(reg_archive_write_freep)
#define _cleanup_archive_read_  _cleanup_(reg_archive_read_freep)
#define _cleanup_entry_         _cleanup_(reg_archive_entry_freep)

/* Every blob of the image `top` (manifest or index) that must travel with it, top first,
 * without duplicates: manifests, configs, layers. Children of an index that are not in the
 * store are left out (a partial multi-platform image); a manifest's config and layers must
 * be there. `ret_top` gets the top descriptor (media type, digest, size). */
int reg_image_blobs(struct reg_store *st, const char *top, struct kiln_strv *digests,
                    struct reg_descriptor *ret_top, struct kiln_err *err);

/* Annotations naming an image in an OCI index, as docker and containerd write them:
 * io.containerd.image.name (canonical name) and org.opencontainers.image.ref.name (tag). */
json_t *reg_ref_annotations(const char *name);
/* The canonical name in such annotations, or NULL (a bare tag names no repository). */
char *reg_name_from_annotations(json_t *annotations);


#endif
