/*
 * kiln du / kiln prune: the build cache's space.
 *
 *	kiln du                       records of the build cache: size, last use, step
 *	kiln prune [--all] [--keep-storage SIZE]
 *
 * prune removes cache records and the snapshots steps made for them: without options, those
 * unused for 48 hours; --all every one; --keep-storage the least recently used until the
 * rest fit in SIZE (bytes, or with K/M/G suffixes). Records a running build uses are
 * skipped (sv_cache_prune), and a snapshot another snapshot is built on stays until its
 * children go, so pruning is safe while builds run. --all also removes step snapshots no
 * record names that are older than ten minutes. Base image chains are not removed (kiln
 * run shares them); snapshots are only those named by the ops for steps ("x-...").
 * The exporter's segment cache (compressed chunks of layers) goes the same way: entries
 * unused for 48 hours, all with --all, the least recently used beyond SIZE with
 * --keep-storage; du shows its size.
 */
#include "cmd.h"
#include "exporter/exp.h"
#include "ops/ops.h"
#include "snapshot/snap.h"
#include "solver/sv.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

static void
human(uint64_t n, char out[32])
{
	const char *u[] = {"B", "kB", "MB", "GB", "TB"};
	double v = (double)n;
	size_t i = 0;
	while (v >= 1000 && i + 1 < KILN_ARRAY_SIZE(u)) {
		v /= 1000;
		i++;
	}
	snprintf(out, 32, i ? "%.1f%s" : "%.0f%s", v, u[i]);
}

struct du {
	uint64_t total;
	size_t n;
};

static int
du_one(void *data, const struct sv_cache_entry *e)
{
	struct du *d = data;
	char size[32];
	human(e->size, size);
	int64_t ago = (int64_t)time(NULL) - e->last_used;
	printf("%-14.14s %10s %8llds ago  %s\n", e->key + 7, size, (long long)(ago < 0 ? 0 : ago),
	       e->description ? e->description : "");
	d->total += e->size;
	d->n++;
	return 0;
}

int
cmd_du(int argc, char **argv)
{
	if (argc > 1) {
		bool help = kiln_str_eq(argv[1], "-h") || kiln_str_eq(argv[1], "--help");
		fprintf(help ? stdout : stderr, "Usage: kiln du\n");
		return help ? 0 : KILN_EXIT_USAGE;
	}
	struct kiln_err err = KILN_ERR_INIT;
	struct sv_cache *c = NULL;
	if (sv_cache_open(cmd_root(), &c, &err) < 0) {
		cmd_print_err(&err);
		return KILN_EXIT_FAIL;
	}
	printf("%-14s %10s %13s  %s\n", "KEY", "SIZE", "LAST USED", "STEP");
	struct du d = {0};
	int r = sv_cache_list(c, du_one, &d, &err);
	sv_cache_free(c);
	if (r < 0) {
		cmd_print_err(&err);
		return KILN_EXIT_FAIL;
	}
	char total[32];
	human(d.total, total);
	printf("Total: %s in %zu records\n", total, d.n);
	uint64_t seg = 0;
	size_t nseg = 0;
	if (exp_segments_usage(cmd_root(), &seg, &nseg, &err) < 0) {
		cmd_print_err(&err);
		return KILN_EXIT_FAIL;
	}
	human(seg, total);
	printf("Segment cache: %s in %zu entries\n", total, nseg);
	return 0;
}

static int
parse_size(const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	uint64_t mul = 1;
	if (*end) {
		switch (*end) {
		case 'k':
		case 'K':
			mul = 1000;
			break;
		case 'm':
		case 'M':
			mul = 1000 * 1000;
			break;
		case 'g':
		case 'G':
			mul = 1000 * 1000 * 1000;
			break;
		default:
			return -EINVAL;
		}
		end++;
		if (*end == 'b' || *end == 'B')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*ret = v * mul;
	return 0;
}

struct prune {
	struct snap_store *snaps;
	bool all;
	int64_t older_than; /* last use before this: remove */
	int64_t lru_cutoff; /* with --keep-storage: records used at or before this go */
	bool progress;      /* a pass removed something */
	uint64_t freed;
};

static bool
prune_one(void *data, const struct sv_cache_entry *e)
{
	struct prune *p = data;
	bool want = p->all || e->last_used < p->older_than || e->last_used <= p->lru_cutoff;
	if (!want)
		return false;
	if (e->result && kiln_str_has_prefix(e->result, "x-") && snap_name_valid(e->result)) {
		struct kiln_err err = KILN_ERR_INIT;
		int r = snap_remove(p->snaps, e->result, &err);
		kiln_err_release(&err);
		/* Another snapshot is built on it: keep the record until its children go. */
		if (r < 0 && r != -ENOENT)
			return false;
		ops_result_forget(cmd_root(), e->result);
	}
	p->progress = true;
	p->freed += e->size;
	return true;
}

struct lru {
	int64_t *used; /* last use of the record, then of it and what is built on it */
	uint64_t *size;
	char **result; /* the record's snapshot, NULL when it names none */
	size_t n, alloc;
	uint64_t total;
};

static int
lru_one(void *data, const struct sv_cache_entry *e)
{
	struct lru *l = data;
	if (l->n == l->alloc) {
		l->alloc = l->alloc ? l->alloc * 2 : 64;
		l->used = kiln_xreallocarray(l->used, l->alloc, sizeof(*l->used));
		l->size = kiln_xreallocarray(l->size, l->alloc, sizeof(*l->size));
		l->result = kiln_xreallocarray(l->result, l->alloc, sizeof(*l->result));
	}
	l->used[l->n] = e->last_used;
	l->size[l->n] = e->size;
	l->result[l->n++] = e->result ? kiln_xstrdup(e->result) : NULL;
	l->total += e->size;
	return 0;
}

static void
lru_release(struct lru *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->result[i]);
	free(l->result);
	free(l->used);
	free(l->size);
}

struct lru_index {
	const char *result;
	size_t i;
};

static int
lru_index_cmp(const void *a, const void *b)
{
	return strcmp(((const struct lru_index *)a)->result, ((const struct lru_index *)b)->result);
}

/* A parent's snapshot can only go with every snapshot built on it, so a record counts as
 * used as late as anything built on it: otherwise a parent used a second before its child
 * would be chosen, refused (the child still stands) and nothing over the limit freed. */
static void
lru_inherit_children(struct lru *l, struct snap_store *snaps)
{
	struct lru_index *idx = kiln_xreallocarray(NULL, l->n ? l->n : 1, sizeof(*idx));
	size_t *parent = kiln_xreallocarray(NULL, l->n ? l->n : 1, sizeof(*parent));
	size_t n = 0;
	for (size_t i = 0; i < l->n; i++)
		if (l->result[i])
			idx[n++] = (struct lru_index){.result = l->result[i], .i = i};
	qsort(idx, n, sizeof(*idx), lru_index_cmp);
	for (size_t i = 0; i < l->n; i++) {
		parent[i] = SIZE_MAX;
		_cleanup_free_ char *p = NULL;
		struct kiln_err err = KILN_ERR_INIT;
		if (l->result[i] && snap_parent(snaps, l->result[i], &p, &err) >= 0 && p) {
			struct lru_index key = {.result = p};
			const struct lru_index *hit =
			        bsearch(&key, idx, n, sizeof(*idx), lru_index_cmp);
			if (hit)
				parent[i] = hit->i;
		}
		kiln_err_release(&err);
	}
	/* Raise parents to their children's times until nothing changes: as many passes as
	 * the longest chain of steps. */
	for (bool changed = true; changed;) {
		changed = false;
		for (size_t i = 0; i < l->n; i++)
			if (parent[i] != SIZE_MAX && l->used[parent[i]] < l->used[i]) {
				l->used[parent[i]] = l->used[i];
				changed = true;
			}
	}
	free(parent);
	free(idx);
}

/* The last-use time at or before which records must go for the rest to fit in `keep`. */
static int64_t
lru_cutoff(struct lru *l, uint64_t keep)
{
	int64_t cutoff = INT64_MIN;
	uint64_t total = l->total;
	while (total > keep) {
		size_t oldest = SIZE_MAX;
		for (size_t i = 0; i < l->n; i++)
			if (l->used[i] != INT64_MAX &&
			    (oldest == SIZE_MAX || l->used[i] < l->used[oldest]))
				oldest = i;
		if (oldest == SIZE_MAX)
			break;
		cutoff = l->used[oldest];
		total -= l->size[oldest];
		l->used[oldest] = INT64_MAX;
	}
	return cutoff;
}

/*
 * --all: step snapshots no record names any more (a --no-cache build replaced the record,
 * a build was killed before writing it). Only those older than ten minutes: a running
 * build writes its record right after the commit, and may be building on the snapshot.
 * snap.h documents meta/<name> as the list of committed snapshots.
 */
static size_t
prune_orphans(struct snap_store *snaps)
{
	_cleanup_free_ char *meta = kiln_xasprintf("%s/meta", snap_store_path(snaps));
	size_t removed = 0;
	bool progress = true;
	while (progress) {
		progress = false;
		_cleanup_close_ int dfd = open(meta, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
		if (dfd < 0 || kiln_dir_names(dfd, &names) < 0)
			break;
		for (size_t i = 0; i < names.n; i++) {
			struct stat st;
			if (!kiln_str_has_prefix(names.v[i], "x-") ||
			    !snap_name_valid(names.v[i]) ||
			    fstatat(dfd, names.v[i], &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    st.st_mtime > time(NULL) - 600)
				continue;
			struct kiln_err err = KILN_ERR_INIT;
			if (snap_remove(snaps, names.v[i], &err) == 0) {
				removed++;
				progress = true;
			}
			kiln_err_release(&err);
		}
	}
	return removed;
}

int
cmd_prune(int argc, char **argv)
{
	bool all = false, keep_set = false;
	uint64_t keep = 0;
	for (int i = 1; i < argc; i++) {
		if (kiln_str_eq(argv[i], "--all") || kiln_str_eq(argv[i], "-a")) {
			all = true;
		} else if (kiln_str_eq(argv[i], "--keep-storage") && i + 1 < argc) {
			if (parse_size(argv[++i], &keep) < 0) {
				fprintf(stderr, "kiln prune: bad size %s\n", argv[i]);
				return KILN_EXIT_USAGE;
			}
			keep_set = true;
		} else if (kiln_str_eq(argv[i], "-h") || kiln_str_eq(argv[i], "--help")) {
			printf("Usage: kiln prune [--all] [--keep-storage SIZE]\n");
			return 0;
		} else {
			fprintf(stderr,
			        "kiln prune: unknown option %s\n"
			        "Usage: kiln prune [--all] [--keep-storage SIZE]\n",
			        argv[i]);
			return KILN_EXIT_USAGE;
		}
	}
	struct kiln_err err = KILN_ERR_INIT;
	struct sv_cache *c = NULL;
	struct snap_store *snaps = NULL;
	struct snap_store_opts so = SNAP_STORE_OPTS_INIT;
	int rc = KILN_EXIT_FAIL;
	if (snap_driver_parse(cmd_snapshotter(), &so.driver, &err) < 0 ||
	    sv_cache_open(cmd_root(), &c, &err) < 0 ||
	    snap_store_open(cmd_root(), &so, &snaps, &err) < 0)
		goto out;
	struct prune p = {.snaps = snaps,
	                  .all = all,
	                  .older_than = keep_set ? INT64_MIN : (int64_t)time(NULL) - 48 * 3600,
	                  .lru_cutoff = INT64_MIN};
	if (keep_set && !all) {
		struct lru l = {0};
		int r = sv_cache_list(c, lru_one, &l, &err);
		if (r >= 0) {
			lru_inherit_children(&l, snaps);
			p.lru_cutoff = lru_cutoff(&l, keep);
		}
		lru_release(&l);
		if (r < 0)
			goto out;
	}
	/* Children before parents: repeat while a pass frees something. */
	size_t removed = 0;
	do {
		size_t n = 0;
		p.progress = false;
		if (sv_cache_prune(c, prune_one, &p, &n, &err) < 0)
			goto out;
		removed += n;
	} while (p.progress);
	size_t orphans = all ? prune_orphans(snaps) : 0;
	ops_results_sweep(cmd_root(), snaps);
	uint64_t seg_freed = 0;
	if (exp_segments_prune(cmd_root(),
	                       all        ? 0
	                       : keep_set ? keep
	                                  : UINT64_MAX,
	                       all || keep_set ? -1 : p.older_than, &seg_freed, &err) < 0)
		goto out;
	p.freed += seg_freed;
	char freed[32];
	human(p.freed, freed);
	printf("Removed %zu records, %s", removed, freed);
	if (orphans)
		printf(", and %zu snapshots no record used", orphans);
	printf("\n");
	rc = 0;
out:
	if (rc)
		cmd_print_err(&err);
	snap_store_free(snaps);
	sv_cache_free(c);
	return rc;
}
