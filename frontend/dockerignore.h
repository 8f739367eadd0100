/*
 * Internal: .dockerignore and --exclude patterns, matched as BuildKit's patternmatcher
 * (moby/patternmatcher) does: path.Clean'ed patterns, `*`, `?`, `[...]`, `**`, `!`
 * exceptions where the last matching pattern wins, and a match on a parent directory
 * counting for everything under it.
 */
#ifndef KILN_FE_DOCKERIGNORE_H
#define KILN_FE_DOCKERIGNORE_H

#include "fe.h"

struct fe_ignore;

/* Patterns from .dockerignore text; `file` names it in errors. */
int fe_ignore_parse(const char *file, const char *data, struct fe_ignore **ret,
		    struct kiln_err *err);
/* Patterns from a list (COPY --exclude); each is cleaned like a .dockerignore line. */
int fe_ignore_from_list(char *const *patterns, size_t n, struct fe_ignore **ret,
			struct kiln_err *err);
/*
 * The ignore file that applies to a build: <dockerfile>.dockerignore beside the Dockerfile
 * wins over CONTEXT/.dockerignore. *ret is an empty set when neither exists.
 */
int fe_ignore_load(const char *context_dir, const char *dockerfile, struct fe_ignore **ret,
		   struct kiln_err *err);
/* Does the pattern set exclude this context-relative slash path ("a/b", no leading "/")? */
bool fe_ignore_matches(const struct fe_ignore *ig, const char *path);
/* The cleaned patterns, in order, exceptions with their leading "!". */
size_t fe_ignore_count(const struct fe_ignore *ig);
const char *fe_ignore_pattern(const struct fe_ignore *ig, size_t i);
void fe_ignore_free(struct fe_ignore *ig);

#endif
