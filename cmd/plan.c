/* kiln plan: print the build graph of a Dockerfile without building anything. */
#include "cmd.h"
#include "frontend/fe.h"
#include "ops/ops.h"
#include "registry/reg.h"

#include <getopt.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>

static void
plan_usage(FILE *f)
{
	fprintf(f,
	        "Usage: kiln plan [-f Dockerfile] [--target T] [--build-arg K=V]... "
	        "[--build-context NAME=VALUE]... [--pull] [--platform P] [--format json|dot] "
	        "CONTEXT\n"
	        "\n"
	        "Print the build graph (DAG) the solver runs for CONTEXT's Dockerfile. Base\n"
	        "images in the store (--root) give their ONBUILD triggers and WorkingDir, as in\n"
	        "kiln build; nothing is pulled unless --pull.\n"
	        "\n"
	        "  -f, --file PATH      the Dockerfile (default CONTEXT/Dockerfile; - for stdin)\n"
	        "  --target STAGE       build this stage; stages it does not need are left out\n"
	        "  --build-arg K[=V]    set a build argument (K alone: from the environment)\n"
	        "  --build-context NAME=DIR|docker-image://REF|oci-layout://DIR[:TAG|@DIGEST]\n"
	        "                       stand in for FROM NAME, --from=NAME (repeatable)\n"
	        "  --pull               ask the registry for base images' configs, as build "
	        "--pull\n"
	        "  --platform P         target platform, os/arch[/variant] (default: host)\n"
	        "  --format json|dot    output format (default json)\n");
}

/*
 * Base images' configs for the plan, as kiln build has them: an oci-layout:// context's
 * from its layout, read in place (planning loads nothing into the store); others from the
 * store, or with --pull from their registry (ops_plan_image_config).
 */
struct plan_images {
	struct ops_plan_images store; /* .reg NULL: no store to read */
	struct kiln_strv layout_dirs, layout_digests;
};

static json_t *
plan_image_config(void *data, const char *ref, const char *platform)
{
	struct plan_images *pi = data;
	for (size_t i = 0; i < pi->layout_digests.n; i++) {
		if (!kiln_str_eq(pi->layout_digests.v[i], ref))
			continue;
		struct kiln_err err = KILN_ERR_INIT;
		json_t *doc = cmd_oci_layout_config(pi->layout_dirs.v[i], ref, &err);
		kiln_err_release(&err); /* planned without it, as an image not in the store */
		return doc;
	}
	return pi->store.reg ? ops_plan_image_config(&pi->store, ref, platform) : NULL;
}

/* --build-context NAME=VALUE as kiln build takes it; an oci-layout:// value becomes the
 * docker-image://sha256:... of the image it names, as kiln build passes it. */
static int
plan_contexts(const struct kiln_strv *specs, struct plan_images *pi, struct kiln_strv *strs,
              struct fe_named_context *ncs, struct kiln_err *err)
{
	for (size_t i = 0; i < specs->n; i++) {
		const char *kv = specs->v[i];
		const char *eq = strchr(kv, '=');
		if (!eq || eq == kv || !eq[1])
			return kiln_err_invalid(err, "--build-context %s: want NAME=VALUE", kv);
		kiln_strv_pushf(strs, "%.*s", (int)(eq - kv), kv);
		ncs[i].name = strs->v[strs->n - 1];
		ncs[i].value = eq + 1;
		if (!kiln_str_has_prefix(eq + 1, "oci-layout://"))
			continue;
		char *dir = NULL, *digest = NULL;
		if (cmd_oci_layout_pick(eq + 1 + strlen("oci-layout://"), &dir, &digest, err) < 0)
			return kiln_err_wrap(err, "--build-context %s", ncs[i].name);
		kiln_strv_pushf(strs, "docker-image://%s", digest);
		ncs[i].value = strs->v[strs->n - 1];
		kiln_strv_push_take(&pi->layout_dirs, dir);
		kiln_strv_push_take(&pi->layout_digests, digest);
	}
	return 0;
}

/*
 * For the length of one `kiln plan`, jansson allocates from an arena and frees nothing:
 * a long Dockerfile's graph is a hundred thousand small JSON values, and malloc and free
 * of each were a large part of the run. The graph lives until the process prints it, so
 * little memory is held back. Only cmd/ may set this: it is process-wide.
 */
static struct kiln_arena *plan_json_arena;

static void *
plan_json_alloc(size_t n)
{
	return kiln_arena_alloc_uninit(plan_json_arena, n); /* malloc's stand-in */
}

static void
plan_json_free(void *p)
{
	(void)p;
}

/*
 * Planning a long Dockerfile touches some 15 MB of fresh heap; a page fault per 4 KiB was
 * a sixth of the run. Grow the heap once, by enough, and ask for transparent huge pages
 * on it (a no-op where THP is off). Best effort: any failure just leaves small pages.
 */
static void
plan_heap_prepare(void)
{
	const size_t huge = 2u << 20, pad = 32u << 20;
	mallopt(M_TRIM_THRESHOLD, (int)(2 * pad)); /* keep the grown heap */
	mallopt(M_TOP_PAD, (int)pad);
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	uintptr_t start = (uintptr_t)sbrk(0);
	void *volatile grow = malloc(256u << 10); /* more than the heap has left: grows it */
	free(grow);
	uintptr_t lo = (start + huge - 1) & ~(uintptr_t)(huge - 1);
	uintptr_t hi = (uintptr_t)sbrk(0) & ~(uintptr_t)(huge - 1);
	if (hi > lo)
		madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
}

/* Back to malloc once no JSON value from the arena is left. */
static void
plan_json_release(void)
{
	json_set_alloc_funcs(malloc, free);
	kiln_arena_free(TAKE_PTR(plan_json_arena));
}

int
cmd_plan(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"file", required_argument, NULL, 'f'},
	        {"target", required_argument, NULL, 't'},
	        {"build-arg", required_argument, NULL, 'a'},
	        {"platform", required_argument, NULL, 'p'},
	        {"format", required_argument, NULL, 'F'},
	        {"build-context", required_argument, NULL, 'c'},
	        {"pull", no_argument, NULL, 'P'},
	        {"help", no_argument, NULL, 'h'},
	        {0},
	};
	struct fe_plan_opts o = FE_PLAN_OPTS_INIT;
	_cleanup_strv_ struct kiln_strv build_args = KILN_STRV_INIT;
	_cleanup_strv_ struct kiln_strv warnings = KILN_STRV_INIT;
	_cleanup_strv_ struct kiln_strv contexts = KILN_STRV_INIT;
	const char *format = "json", *file = NULL;
	bool pull = false;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+f:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			file = optarg;
			break;
		case 't':
			o.target = optarg;
			break;
		case 'a':
			kiln_strv_push(&build_args, optarg);
			break;
		case 'p':
			o.platform = optarg;
			break;
		case 'F':
			format = optarg;
			break;
		case 'c':
			kiln_strv_push(&contexts, optarg);
			break;
		case 'P':
			pull = true;
			break;
		case 'h':
			plan_usage(stdout);
			return 0;
		default:
			if (optopt && strchr("ftapFc", optopt))
				fprintf(stderr, "kiln plan: option needs a value\n");
			else
				fprintf(stderr, "kiln plan: unknown option \"%s\"\n",
				        argv[optind - 1]);
			plan_usage(stderr);
			return KILN_EXIT_USAGE;
		}
	}
	if (!kiln_str_eq(format, "json") && !kiln_str_eq(format, "dot")) {
		fprintf(stderr, "kiln plan: unknown format \"%s\" (json or dot)\n", format);
		return KILN_EXIT_USAGE;
	}
	if (argc - optind != 1) {
		fprintf(stderr, "kiln plan: %s\n",
		        argc - optind == 0 ? "a build context is required" : "too many arguments");
		plan_usage(stderr);
		return KILN_EXIT_USAGE;
	}
	o.context_dir = argv[optind];
	o.build_args = kiln_strv_get(&build_args);
	o.warnings = &warnings;

	struct kiln_err err = KILN_ERR_INIT;
	_cleanup_buf_ struct kiln_buf text = KILN_BUF_INIT;
	if (file && kiln_str_eq(file, "-")) {
		if (cmd_read_input("-", &text, &err) < 0) {
			cmd_print_err(&err);
			return KILN_EXIT_FAIL;
		}
		o.dockerfile_data = text.buf;
	} else {
		o.dockerfile = file;
	}

	struct plan_images pi = {
	        .store = {.pull_always = pull, .store_only = !pull},
	        .layout_dirs = KILN_STRV_INIT,
	        .layout_digests = KILN_STRV_INIT,
	};
	_cleanup_strv_ struct kiln_strv ctx_strs = KILN_STRV_INIT;
	_cleanup_free_ struct fe_named_context *ncs = kiln_xcalloc(contexts.n + 1, sizeof(*ncs));
	int r = plan_contexts(&contexts, &pi, &ctx_strs, ncs, &err);
	/* Planning never makes a store: one that is not there has no images to tell of
	 * (--pull needs one, for the configs it fetches). */
	struct stat st;
	if (r >= 0 && (pull || stat(cmd_root(), &st) == 0) &&
	    reg_store_open(cmd_root(), &pi.store.reg, &err) < 0) {
		if (pull)
			r = kiln_err_wrap(&err, "--pull");
		else
			kiln_err_release(&err);
	}
	if (r < 0) {
		kiln_strv_release(&pi.layout_dirs);
		kiln_strv_release(&pi.layout_digests);
		cmd_print_err(&err);
		return KILN_EXIT_FAIL;
	}
	o.named_contexts = ncs;
	o.nnamed_contexts = contexts.n;
	o.image_config = plan_image_config;
	o.image_config_data = &pi;

	plan_heap_prepare();
	plan_json_arena = kiln_arena_new();
	json_set_alloc_funcs(plan_json_alloc, plan_json_free);
	struct sv_graph *g = NULL;
	r = fe_plan(&o, &g, &err);
	/* Before the JSON arena goes: nothing may free a JSON value after it. */
	reg_store_free(pi.store.reg);
	kiln_strv_release(&pi.layout_dirs);
	kiln_strv_release(&pi.layout_digests);
	for (size_t i = 0; i < warnings.n; i++)
		fprintf(stderr, "warning: %s\n", warnings.v[i]);
	if (r < 0) {
		plan_json_release();
		cmd_print_err(&err);
		return KILN_EXIT_FAIL;
	}
	/* Written with write(2), before the graph is freed: stdio would allocate its buffer
	 * after the thousands of frees, and glibc consolidates every freed chunk first. The
	 * JSON is streamed: a long Dockerfile's plan is megabytes. */
	if (kiln_str_eq(format, "dot")) {
		_cleanup_buf_ struct kiln_buf out = KILN_BUF_INIT;
		sv_graph_to_dot(g, &out);
		r = kiln_write_all(STDOUT_FILENO, out.buf, out.len, &err);
	} else {
		r = sv_graph_write_json(g, STDOUT_FILENO, &err);
	}
	/* The arena takes every JSON value with it: walking the defs to drop references one
	 * by one was a millisecond of a long plan. */
	for (size_t i = 0; i < g->nvertices; i++)
		g->vertices[i]->def = NULL;
	for (size_t i = 0; i < g->nresults; i++)
		g->results[i].config = NULL;
	sv_graph_free(g);
	plan_json_release();
	if (r < 0) {
		kiln_err_wrap(&err, "write output");
		cmd_print_err(&err);
		return KILN_EXIT_FAIL;
	}
	return 0;
}
