/* kiln parse: print a Dockerfile's parse tree (BuildKit's Dump format) or its typed
 * instructions as JSON. */
#include "cmd.h"
#include "frontend/fe.h"

static void
parse_usage(FILE *f)
{
	fprintf(f, "Usage: kiln parse [--dump | --format=json] [FILE|-]\n"
	           "\n"
	           "Parse a Dockerfile (default ./Dockerfile; - reads standard input).\n"
	           "\n"
	           "  --dump           print the parse tree as BuildKit's parser Dump() does\n"
	           "  --format=json    print the typed instructions as JSON\n"
	           "  -h, --help       show this help\n");
}

int
cmd_parse(int argc, char **argv)
{
	const char *path = NULL;
	bool json = false, opts_done = false;
	struct kiln_err err = KILN_ERR_INIT;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!opts_done && a[0] == '-' && a[1] != '\0') {
			if (kiln_str_eq(a, "--")) {
				opts_done = true;
			} else if (kiln_str_eq(a, "-h") || kiln_str_eq(a, "--help")) {
				parse_usage(stdout);
				return 0;
			} else if (kiln_str_eq(a, "--dump")) {
				json = false;
			} else if (kiln_str_eq(a, "--format=json")) {
				json = true;
			} else if (kiln_str_eq(a, "--format") ||
			           kiln_str_has_prefix(a, "--format=")) {
				const char *v =
				        a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
				if (!v) {
					fprintf(stderr, "kiln parse: --format needs a value\n");
					return KILN_EXIT_USAGE;
				}
				if (kiln_str_eq(v, "json")) {
					json = true;
				} else if (kiln_str_eq(v, "dump")) {
					json = false;
				} else {
					fprintf(stderr, "kiln parse: unknown format \"%s\"\n", v);
					return KILN_EXIT_USAGE;
				}
			} else {
				fprintf(stderr, "kiln parse: unknown option \"%s\"\n", a);
				parse_usage(stderr);
				return KILN_EXIT_USAGE;
			}
			continue;
		}
		if (path) {
			fprintf(stderr, "kiln parse: more than one file given\n");
			return KILN_EXIT_USAGE;
		}
		path = a;
	}
	if (!path)
		path = "Dockerfile";

	_cleanup_buf_ struct kiln_buf data = KILN_BUF_INIT;
	if (cmd_read_input(path, &data, &err) < 0) {
		cmd_print_err(&err);
		return KILN_EXIT_FAIL;
	}
	struct fe_ast *ast;
	if (fe_parse(path, data.buf, data.len, &ast, &err) < 0) {
		cmd_print_err(&err);
		return KILN_EXIT_FAIL;
	}
	for (char *const *w = fe_ast_warnings(ast); *w; w++)
		fprintf(stderr, "warning: %s\n", *w);

	_cleanup_buf_ struct kiln_buf out = KILN_BUF_INIT;
	int rc = 0;
	if (json) {
		if (fe_ast_to_json(ast, &out, &err) < 0) {
			cmd_print_err(&err);
			rc = KILN_EXIT_FAIL;
		}
	} else {
		fe_ast_dump(ast, &out);
	}
	if (rc == 0 && (fwrite(out.buf, 1, out.len, stdout) != out.len || fflush(stdout) != 0)) {
		fprintf(stderr, "kiln parse: writing output failed\n");
		rc = KILN_EXIT_FAIL;
	}
	fe_ast_free(ast);
	return rc;
}
