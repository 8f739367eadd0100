/*
 * kiln frontend: Dockerfile text -> parse tree -> typed instructions -> build graph.
 *
 * Calling sequence (BuildKit's three steps, each usable alone):
 *
 *	struct fe_ast *ast;
 *	fe_parse("Dockerfile", text, len, &ast, &err);    // text -> node tree
 *	fe_ast_dump(ast, &out);                           // BuildKit's parser Dump() format
 *	fe_ast_to_json(ast, &out, &err);                  // typed instructions as JSON
 *
 *	struct fe_plan_opts o = FE_PLAN_OPTS_INIT;
 *	o.context_dir = "."; o.dockerfile = "Dockerfile"; o.target = "build";
 *	struct sv_graph *g;
 *	fe_plan(&o, &g, &err);                            // Dockerfile + context -> DAG
 *	sv_graph_free(g);
 *	fe_ast_free(ast);
 *
 * Errors about the Dockerfile carry its file name and line (kiln_err.file/line).
 */
#ifndef KILN_FE_H
#define KILN_FE_H

#include "base/base.h"
#include "solver/sv.h"

struct fe_ast;

/* Parse a Dockerfile. `file` names it in errors. On success *ret owns the tree. */
int fe_parse(const char *file, const char *data, size_t len, struct fe_ast **ret,
	     struct kiln_err *err);
void fe_ast_free(struct fe_ast *ast);
/* Notes for the user (e.g. "syntax directive ignored"), one per line; may be empty. */
char *const *fe_ast_warnings(const struct fe_ast *ast);
/* BuildKit's parser dump: one "(instr ...)\n" line per instruction. */
void fe_ast_dump(const struct fe_ast *ast, struct kiln_buf *out);
/* The typed instructions as a JSON document (see frontend/instructions.c). Fails on an
 * unknown instruction or a bad flag, with the line. */
int fe_ast_to_json(const struct fe_ast *ast, struct kiln_buf *out, struct kiln_err *err);

/* A --mount spec, as RUN --mount and `kiln run --mount` write it. */
enum fe_mount_type { FE_MOUNT_BIND, FE_MOUNT_CACHE, FE_MOUNT_TMPFS, FE_MOUNT_SECRET, FE_MOUNT_SSH };
enum fe_mount_sharing { FE_SHARING_SHARED, FE_SHARING_PRIVATE, FE_SHARING_LOCKED };

struct fe_mount {
	enum fe_mount_type type;
	const char *target; /* NULL when not given (secret/ssh have defaults) */
	const char *source;
	const char *from;
	const char *id;
	const char *env;    /* secret: expose as this environment variable */
	bool readonly;      /* bind defaults to read-only, cache to read-write */
	bool required;
	enum fe_mount_sharing sharing;
	bool has_mode, has_uid, has_gid;
	uint32_t mode, uid, gid;
	uint64_t size; /* tmpfs size in bytes, 0 = unset */
};

/* Parse a --mount value ("type=cache,target=/x,..."), already expanded: every value is
 * checked. (fe_cmd_parse checks the raw value and leaves values holding `$` to this second
 * pass.) Strings are allocated in `arena`; the error has no line: the caller adds it. */
int fe_mount_parse(struct kiln_arena *arena, const char *spec, struct fe_mount *ret,
		   struct kiln_err *err);

/* VALUE: a directory (absolute or relative to the working directory), or
 * docker-image://REF (an image, as FROM takes it; REF may be a bare "sha256:..." manifest
 * digest of an image in the store, which is how kiln build passes an imported
 * oci-layout://DIR[:TAG|@DIGEST]). */
struct fe_named_context {
	const char *name;
	const char *value;
};

struct fe_plan_opts {
	const char *context_dir; /* the build context directory */
	const char *dockerfile;  /* path of the Dockerfile; NULL: CONTEXT/Dockerfile */
	const char *dockerfile_data; /* Dockerfile text already read (stdin), or NULL */
	const char *target;      /* stage name or NULL for the last stage */
	char *const *build_args; /* "K=V" or "K" (take from the environment), NULL-terminated */
	const char *platform;    /* "os/arch[/variant]" or NULL for the host */
	struct kiln_strv *warnings; /* if not NULL, notes for the user (parser, unused
				     * build args) are appended, even when fe_plan fails */
	/* --build-context NAME=VALUE, as buildx: NAME stands for FROM NAME, COPY --from=NAME
	 * and RUN --mount=from=NAME, before a stage or an image of that name. */
	const struct fe_named_context *named_contexts;
	size_t nnamed_contexts;
	/* Optional: the OCI config document (new reference) of base image `ref` (normalised)
	 * for `platform` ("os/arch"), pulled when missing; NULL when unknown. With it the plan
	 * runs the image's ONBUILD triggers and resolves a relative WORKDIR against its
	 * WorkingDir; without it (kiln plan) neither is known. */
	json_t *(*image_config)(void *data, const char *ref, const char *platform);
	void *image_config_data;
};
#define FE_PLAN_OPTS_INIT {0}

/* Lower a Dockerfile into the build graph the solver runs. */
int fe_plan(const struct fe_plan_opts *opts, struct sv_graph **ret, struct kiln_err *err);

/*
 * Lint: BuildKit's build checks plus kiln's rules for fast, small builds.
 *
 *	struct fe_lint_opts o = FE_LINT_OPTS_INIT;
 *	o.context_dir = ".";                      // for CopyIgnoredFile (.dockerignore)
 *	struct fe_lint_finding *f; size_t n;
 *	fe_lint(ast, &o, &f, &n, &err);
 *	fe_lint_findings_free(f, n);
 *
 * The `# check=skip=A,B|all;error=true` directive (or a BUILDKIT_DOCKERFILE_CHECK build arg,
 * which wins over it) selects rules; error=true raises warnings to errors.
 */
enum fe_lint_severity { FE_LINT_INFO, FE_LINT_WARNING, FE_LINT_ERROR };

struct fe_lint_rule {
	const char *name;        /* BuildKit's name for BuildKit's rules */
	enum fe_lint_severity severity;
	const char *description; /* one line */
	const char *url;         /* BuildKit's documentation page; NULL for kiln's rules */
	bool buildkit;           /* one of BuildKit's rules (false: kiln's own) */
};

struct fe_lint_finding {
	const struct fe_lint_rule *rule;
	enum fe_lint_severity severity; /* the rule's, raised to error by error=true */
	const char *file;               /* the tree's file name: valid while the tree is */
	int line, end_line;             /* the instruction's first and last lines */
	char *message;
};

struct fe_lint_opts {
	const char *context_dir; /* NULL: CopyIgnoredFile has no .dockerignore to read */
	const char *dockerfile;  /* path of the Dockerfile, for <Dockerfile>.dockerignore */
	char *const *build_args; /* "K=V", NULL-terminated or NULL; BUILDKIT_DOCKERFILE_CHECK */
	/* Optional: the environment ("K=V") of an external base image, NULL when unknown. With
	 * it UndefinedVar is exact; without it only names of well-known minimal images are. */
	char *const *(*image_env)(void *ctx, const char *image);
	void *image_env_ctx;
};
#define FE_LINT_OPTS_INIT {0}

/* Run every enabled rule over a parsed Dockerfile. On success *ret (malloc'ed, sorted by
 * line) holds *ret_n findings. Fails on an instruction fe_cmd_parse rejects (with its line),
 * a malformed check directive or build arg, or an unreadable .dockerignore. */
int fe_lint(const struct fe_ast *ast, const struct fe_lint_opts *opts,
	    struct fe_lint_finding **ret, size_t *ret_n, struct kiln_err *err);
void fe_lint_findings_free(struct fe_lint_finding *findings, size_t n);
/* Every rule, BuildKit's first; static storage. */
const struct fe_lint_rule *fe_lint_rules_list(size_t *ret_n);
const struct fe_lint_rule *fe_lint_rule_find(const char *name);
const char *fe_lint_severity_name(enum fe_lint_severity s); /* "error", "warning", "info" */

#endif
