/* kiln plan: print the build graph of a Dockerfile without building anything. */
#include "cmd.h"
#include "frontend/fe.h"

#include <getopt.h>
#include <malloc.h>
#include <sys/mman.h>

static void
plan_usage(FILE *f)
{
	fprintf(f,
	        "Usage: kiln plan [-f Dockerfile] [--target T] [--build-arg K=V]... "
	        "[--platform P] [--format json|dot] CONTEXT\n"
	        "\n"
	        "Print the build graph (DAG) the solver runs for CONTEXT's Dockerfile.\n"
	        "\n"
	        "  -f, --file PATH      the Dockerfile (default CONTEXT/Dockerfile; - for stdin)\n"
	        "  --target STAGE       build this stage; stages it does not need are left out\n"
	        "  --build-arg K[=V]    set a build argument (K alone: from the environment)\n"
	        "  --platform P         target platform, os/arch[/variant] (default: host)\n"
	        "  --format json|dot    output format (default json)\n");
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
	        {"help", no_argument, NULL, 'h'},
	        {0},
	};
	struct fe_plan_opts o = FE_PLAN_OPTS_INIT;
	_cleanup_strv_ struct kiln_strv build_args = KILN_STRV_INIT;
	_cleanup_strv_ struct kiln_strv warnings = KILN_STRV_INIT;
	const char *format = "json", *file = NULL;
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
		case 'h':
			plan_usage(stdout);
			return 0;
		default:
			if (optopt && strchr("ftapF", optopt))
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

	plan_heap_prepare();
	plan_json_arena = kiln_arena_new();
	json_set_alloc_funcs(plan_json_alloc, plan_json_free);
	struct sv_graph *g = NULL;
	int r = fe_plan(&o, &g, &err);
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
