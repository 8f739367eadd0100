/* Internals shared by the solver's files: the cache store as the engine uses it. */
#ifndef KILN_SV_INT_H
#define KILN_SV_INT_H

#include "sv.h"

/*
 * Look a key up. Returns 1 when a record exists whose result `exists` confirms (NULL:
 * always): *ret_result gets the result id (caller frees) and *ret_fd the record, locked
 * shared (caller closes it when it no longer uses the result; touched so its last use is
 * now). Returns 0 on a miss (*ret_gone says a record was there but its result is gone;
 * corrupt records are removed), -errno on an I/O error.
 */
int sv_cache_lookup(struct sv_cache *c, const char *key,
                    bool (*exists)(void *data, const char *result), void *exists_data,
                    char **ret_result, int *ret_fd, bool *ret_gone, struct kiln_err *err);

struct sv_cache_put {
	const char *key;
	const char *result;
	uint64_t size;
	const char *identity;
	const char *description;
	const json_t *recipe;
	bool replace; /* --no-cache: a fresh result replaces the record instead of losing */
};

/*
 * Publish a record (write temp, fsync, lock shared, rename without replacing). Returns 0
 * when ours is in place (*ret_fd holds it), 1 when a valid record with an existing
 * result was there first and !p->replace (*ret_winner gets its result id, *ret_fd holds that
 * record), -errno on failure (nothing published).
 */
int sv_cache_put(struct sv_cache *c, const struct sv_cache_put *p,
                 bool (*exists)(void *data, const char *result), void *exists_data,
                 char **ret_winner, int *ret_fd, struct kiln_err *err);

/* The latest recipe stored for a step identity into *ret (new ref), NULL if none. */
int sv_cache_step_get(struct sv_cache *c, const char *identity, json_t **ret, struct kiln_err *err);
/* Replace the latest recipe of a step identity (atomically). */
int sv_cache_step_set(struct sv_cache *c, const char *identity, const json_t *recipe,
                      struct kiln_err *err);

/*
 * The lineage of a step: its recipe without the content key and components (the same op,
 * def and inputs over other file contents). <cache>/lineage/<lineage hex> names the key
 * of the latest record made by running it. get: the key into `key` ("" if none or
 * unreadable); set: replace it atomically.
 */
int sv_cache_lineage_get(struct sv_cache *c, const char *lineage, char key[KILN_DIGEST_HEX_LEN + 1],
                         struct kiln_err *err);
int sv_cache_lineage_set(struct sv_cache *c, const char *lineage, const char *key,
                         struct kiln_err *err);

#endif
