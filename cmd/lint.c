/* kiln lint: BuildKit's build checks and kiln's rules, as text, JSON or SARIF 2.1.0. */
#include "cmd.h"
#include "frontend/fe.h"

#include <jansson.h>

static void
lint_usage(FILE *f)
{
	fprintf(f,
	        "Usage: kiln lint [-f FILE] [--format text|json|sarif] [--error-on warning|info]\n"
	        "                 [--build-arg K=V]... [--list] [CONTEXT]\n"
	        "\n"
	        "Check a Dockerfile (default CONTEXT/Dockerfile, or ./Dockerfile; -f - or a\n"
	        "CONTEXT of - reads standard input) against BuildKit's rules and kiln's rules\n"
	        "for fast, small builds.\n"
	        "With CONTEXT, CopyIgnoredFile reads its .dockerignore.\n"
	        "\n"
	        "  -f, --file FILE       the Dockerfile\n"
	        "      --format FMT      text (FILE:LINE: severity Rule: message), json or sarif\n"
	        "      --error-on LEVEL  exit 1 on a finding at or above LEVEL (default warning)\n"
	        "      --build-arg K=V   a build arg; "
	        "BUILDKIT_DOCKERFILE_CHECK=skip=...;error=true\n"
	        "                        overrides the # check= directive\n"
	        "      --list            print every rule: name, severity, description\n"
	        "  -h, --help            show this help\n"
	        "\n"
	        "Exit status: 0 clean, 1 findings at or above --error-on, 2 usage or parse "
	        "error.\n");
}

enum fmt { FMT_TEXT, FMT_JSON, FMT_SARIF };

/* Valid UTF-8 of s for JSON (jansson refuses anything else): each bad byte becomes U+FFFD.
 * The messages quote the Dockerfile, which may hold any bytes. */
static json_t *
jstr(const char *s)
{
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		size_t n = *p < 0x80         ? 1
		           : (*p >> 5) == 6  ? 2
		           : (*p >> 4) == 14 ? 3
		           : (*p >> 3) == 30 ? 4
		                             : 0;
		uint32_t r = n == 1   ? *p
		             : n == 2 ? (*p & 0x1f)
		             : n == 3 ? (*p & 0x0f)
		                      : (*p & 0x07);
		size_t i = 1;
		for (; n > 1 && i < n && (p[i] & 0xc0) == 0x80; i++)
			r = (r << 6) | (p[i] & 0x3f);
		static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
		if (n == 0 || i < n || r < min[n] || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff)) {
			kiln_buf_add_rune(&b, 0xfffd);
			p++;
			continue;
		}
		kiln_buf_add(&b, p, n);
		p += n;
	}
	return json_stringn(b.buf, b.len);
}

/* Append v to a. Every string is ASCII or passed through jstr, so a json_pack failure
 * is a bug in this file: say so rather than print a silently shorter list. */
static void
push(json_t *a, json_t *v)
{
	if (!v) {
		fprintf(stderr, "kiln lint: internal error: cannot build the JSON output\n");
		abort();
	}
	json_array_append_new(a, v);
}

static const char *
sarif_level(enum fe_lint_severity s)
{
	return s == FE_LINT_ERROR ? "error" : s == FE_LINT_WARNING ? "warning" : "note";
}

/* A relative URI reference for a path: percent-encode what a URI cannot hold. */
static char *
path_uri(const char *p)
{
	struct kiln_buf b = KILN_BUF_INIT;
	for (; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c > 0x20 && c < 0x7f && !strchr("%\"<>\\^`{|}#?[]", c))
			kiln_buf_addch(&b, c);
		else
			kiln_buf_addf(&b, "%%%02X", c);
	}
	return kiln_buf_detach(&b, NULL);
}

static json_t *
rules_json(void)
{
	size_t n;
	const struct fe_lint_rule *r = fe_lint_rules_list(&n);
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		push(a, json_pack("{s:s, s:s, s:s, s:s*, s:s}", "name", r[i].name, "severity",
		                  fe_lint_severity_name(r[i].severity), "description",
		                  r[i].description, "url", r[i].url, "origin",
		                  r[i].buildkit ? "buildkit" : "kiln"));
	return a;
}

static json_t *
sarif_json(const struct fe_lint_finding *f, size_t nf)
{
	size_t n;
	const struct fe_lint_rule *r = fe_lint_rules_list(&n);
	json_t *rules = json_array();
	for (size_t i = 0; i < n; i++)
		push(rules, json_pack("{s:s, s:s, s:{s:s}, s:{s:s}, s:s*}", "id", r[i].name, "name",
		                      r[i].name, "shortDescription", "text", r[i].description,
		                      "defaultConfiguration", "level", sarif_level(r[i].severity),
		                      "helpUri", r[i].url));
	json_t *results = json_array();
	for (size_t i = 0; i < nf; i++) {
		_cleanup_free_ char *uri = path_uri(f[i].file);
		push(results,
		     json_pack("{s:s, s:I, s:s, s:{s:o}, s:[{s:{s:{s:s}, s:{s:i, s:i}}}]}",
		               "ruleId", f[i].rule->name, "ruleIndex", (json_int_t)(f[i].rule - r),
		               "level", sarif_level(f[i].severity), "message", "text",
		               jstr(f[i].message), "locations", "physicalLocation",
		               "artifactLocation", "uri", uri, "region", "startLine", f[i].line,
		               "endLine", f[i].end_line >= f[i].line ? f[i].end_line : f[i].line));
	}
	return json_pack("{s:s, s:s, s:[{s:{s:{s:s, s:s, s:o}}, s:o}]}", "$schema",
	                 "https://docs.oasis-open.org/sarif/sarif/v2.1.0/os/schemas/"
	                 "sarif-schema-2.1.0.json",
	                 "version", "2.1.0", "runs", "tool", "driver", "name", "kiln", "version",
	                 "0.1.0", "rules", rules, "results", results);
}

static int
print_json(json_t *j)
{
	if (!j)
		return -1;
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!s)
		return -1;
	int r = printf("%s\n", s) < 0 ? -1 : 0;
	free(s);
	return r;
}

int
cmd_lint(int argc, char **argv)
{
	const char *file = NULL, *context = NULL;
	enum fmt fmt = FMT_TEXT;
	enum fe_lint_severity error_on = FE_LINT_WARNING;
	bool list = false, opts_done = false;
	_cleanup_strv_ struct kiln_strv build_args = KILN_STRV_INIT;
	struct kiln_err err = KILN_ERR_INIT;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (opts_done || a[0] != '-' || !a[1]) {
			if (context) {
				fprintf(stderr, "kiln lint: more than one CONTEXT given\n");
				return KILN_EXIT_USAGE;
			}
			context = a;
			continue;
		}
		if (kiln_str_eq(a, "--")) {
			opts_done = true;
			continue;
		}
		if (kiln_str_eq(a, "-h") || kiln_str_eq(a, "--help")) {
			lint_usage(stdout);
			return 0;
		}
		if (kiln_str_eq(a, "--list")) {
			list = true;
			continue;
		}
		/* options with a value: --opt V, --opt=V, -f V */
		static const char *const valued[] = {"--file", "--format", "--error-on",
		                                     "--build-arg"};
		const char *name = NULL, *val = NULL;
		if (kiln_str_eq(a, "-f")) {
			name = "--file";
		} else {
			for (size_t k = 0; k < KILN_ARRAY_SIZE(valued); k++) {
				size_t n = strlen(valued[k]);
				if (!strncmp(a, valued[k], n) && (a[n] == '=' || !a[n])) {
					name = valued[k];
					val = a[n] == '=' ? a + n + 1 : NULL;
				}
			}
		}
		if (!name) {
			fprintf(stderr, "kiln lint: unknown option \"%s\"\n", a);
			lint_usage(stderr);
			return KILN_EXIT_USAGE;
		}
		if (!val) {
			if (i + 1 >= argc) {
				fprintf(stderr, "kiln lint: %s needs a value\n", name);
				return KILN_EXIT_USAGE;
			}
			val = argv[++i];
		}
		if (kiln_str_eq(name, "--file")) {
			file = val;
		} else if (kiln_str_eq(name, "--format")) {
			if (kiln_str_eq(val, "text"))
				fmt = FMT_TEXT;
			else if (kiln_str_eq(val, "json"))
				fmt = FMT_JSON;
			else if (kiln_str_eq(val, "sarif"))
				fmt = FMT_SARIF;
			else {
				fprintf(stderr,
				        "kiln lint: unknown format \"%s\" (text, json, sarif)\n",
				        val);
				return KILN_EXIT_USAGE;
			}
		} else if (kiln_str_eq(name, "--error-on")) {
			if (kiln_str_eq(val, "warning"))
				error_on = FE_LINT_WARNING;
			else if (kiln_str_eq(val, "info"))
				error_on = FE_LINT_INFO;
			else if (kiln_str_eq(val, "error"))
				error_on = FE_LINT_ERROR;
			else {
				fprintf(stderr,
				        "kiln lint: --error-on takes warning or info, not \"%s\"\n",
				        val);
				return KILN_EXIT_USAGE;
			}
		} else {
			if (!*val || *val == '=') {
				fprintf(stderr, "kiln lint: --build-arg wants K=V, not \"%s\"\n",
				        val);
				return KILN_EXIT_USAGE;
			}
			if (strchr(val, '=')) {
				kiln_strv_push(&build_args, val);
			} else {
				/* "K" alone takes the value from the environment, as docker does */
				const char *env = getenv(val);
				if (env)
					kiln_strv_pushf(&build_args, "%s=%s", val, env);
			}
		}
	}

	if (list) {
		if (fmt != FMT_TEXT) {
			_cleanup_json_ json_t *j = rules_json();
			return print_json(j) < 0 ? KILN_EXIT_FAIL : 0;
		}
		size_t n;
		const struct fe_lint_rule *r = fe_lint_rules_list(&n);
		for (size_t i = 0; i < n; i++)
			printf("%-32s %-8s %s\n", r[i].name, fe_lint_severity_name(r[i].severity),
			       r[i].description);
		return fflush(stdout) == 0 ? 0 : KILN_EXIT_FAIL;
	}

	_cleanup_free_ char *default_file = NULL;
	if (context && kiln_str_eq(context, "-")) {
		/* `kiln lint -`: the Dockerfile on standard input, no context (docker build -) */
		if (file) {
			fprintf(stderr, "kiln lint: - reads the Dockerfile from standard input; "
			                "do not also give -f\n");
			return KILN_EXIT_USAGE;
		}
		file = "-";
		context = NULL;
	}
	if (!file) {
		default_file = context ? kiln_path_join(context, "Dockerfile")
		                       : kiln_xstrdup("Dockerfile");
		file = default_file;
	}
	_cleanup_buf_ struct kiln_buf data = KILN_BUF_INIT;
	if (cmd_read_input(file, &data, &err) < 0) {
		cmd_print_err(&err);
		return KILN_EXIT_USAGE;
	}
	struct fe_ast *ast;
	if (fe_parse(file, data.buf, data.len, &ast, &err) < 0) {
		cmd_print_err(&err);
		return KILN_EXIT_USAGE;
	}
	struct fe_lint_opts o = FE_LINT_OPTS_INIT;
	o.context_dir = context;
	o.dockerfile = kiln_str_eq(file, "-") ? NULL : file;
	o.build_args = kiln_strv_get(&build_args);
	struct fe_lint_finding *f = NULL;
	size_t nf = 0;
	int rc = fe_lint(ast, &o, &f, &nf, &err);
	if (rc < 0) {
		fe_ast_free(ast);
		cmd_print_err(&err);
		return KILN_EXIT_USAGE;
	}

	int out = 0;
	if (fmt == FMT_TEXT) {
		for (size_t i = 0; i < nf; i++)
			if (printf("%s:%d: %s %s: %s\n", f[i].file, f[i].line,
			           fe_lint_severity_name(f[i].severity), f[i].rule->name,
			           f[i].message) < 0)
				out = -1;
	} else if (fmt == FMT_JSON) {
		_cleanup_json_ json_t *a = json_array();
		for (size_t i = 0; i < nf; i++)
			push(a, json_pack("{s:o, s:i, s:i, s:s, s:s, s:o, s:s*}", "file",
			                  jstr(f[i].file), "line", f[i].line, "end_line",
			                  f[i].end_line, "severity",
			                  fe_lint_severity_name(f[i].severity), "rule",
			                  f[i].rule->name, "message", jstr(f[i].message), "url",
			                  f[i].rule->url));
		out = print_json(a);
	} else {
		_cleanup_json_ json_t *s = sarif_json(f, nf);
		out = print_json(s);
	}
	bool failing = false;
	for (size_t i = 0; i < nf; i++)
		failing |= f[i].severity >= error_on;
	fe_lint_findings_free(f, nf);
	fe_ast_free(ast);
	if (out < 0 || fflush(stdout) != 0) {
		fprintf(stderr, "kiln lint: writing output failed\n");
		return KILN_EXIT_FAIL;
	}
	return failing ? 1 : 0;
}
