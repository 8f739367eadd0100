/*
 * Internal to frontend/: helpers of the converter (frontend/convert*.c) that are worth
 * testing alone — image reference and platform normalisation as BuildKit/containerd do it.
 */
#ifndef KILN_FE_CONVERT_H
#define KILN_FE_CONVERT_H

#include "fe.h"

/*
 * Normalise an image reference as docker's ParseNormalizedNamed + TagNameOnly do:
 * "busybox" -> "docker.io/library/busybox:latest", "localhost:5000/x" keeps its registry,
 * a digest is kept (and no ":latest" is added to it). *ret is malloc'ed. -EINVAL with a
 * message ("invalid reference format: ...") when `ref` is not a valid reference.
 */
int fe_ref_normalize(const char *ref, char **ret, struct kiln_err *err);

/*
 * fe_plan with replay switched on or off. Replay reuses the vertices of an earlier stage
 * with the same root and the same leading instructions instead of building definitions
 * that would deduplicate to them; the graph must be the same either way (tests check).
 */
int fe_plan_replay(const struct fe_plan_opts *opts, bool replay, struct sv_graph **ret,
                   struct kiln_err *err);

struct fe_platform {
	char os[32];
	char arch[32];
	char variant[32]; /* "" when none */
};

/* Parse "os/arch[/variant]" and normalise it as containerd's platforms.Normalize does
 * (x86_64 -> amd64, aarch64 -> arm64 without v8, arm -> arm/v7, ...). */
int fe_platform_parse(const char *s, struct fe_platform *ret, struct kiln_err *err);
/* The platform of the machine kiln runs on. */
void fe_platform_host(struct fe_platform *ret);
/* "os/arch" or "os/arch/variant" into out. */
void fe_platform_format(const struct fe_platform *p, char out[100]);

#endif
