/*
 * Internal: the linter's model of a Dockerfile, shared by lint.c (the engine, the
 * BuildKit rules) and lint_kiln.c (kiln's rules for speed and size).
 *
 * fe_lint parses every node into a typed command once, groups the commands into stages
 * and hands the model to each rule; a rule reports through lint_report, which drops
 * findings of rules the check directive skips.
 */
#ifndef KILN_FE_LINT_H
#define KILN_FE_LINT_H

#include "instructions.h"
#include "shlex.h"

enum lint_rule_id {
	/* BuildKit's rules */
	R_STAGE_NAME_CASING,
	R_FROM_AS_CASING,
	R_NO_EMPTY_CONTINUATION,
	R_CONSISTENT_INSTRUCTION_CASING,
	R_DUPLICATE_STAGE_NAME,
	R_RESERVED_STAGE_NAME,
	R_JSON_ARGS_RECOMMENDED,
	R_MAINTAINER_DEPRECATED,
	R_UNDEFINED_ARG_IN_FROM,
	R_WORKDIR_RELATIVE_PATH,
	R_UNDEFINED_VAR,
	R_MULTIPLE_INSTRUCTIONS_DISALLOWED,
	R_LEGACY_KEY_VALUE_FORMAT,
	R_REDUNDANT_TARGET_PLATFORM,
	R_SECRETS_USED_IN_ARG_OR_ENV,
	R_INVALID_DEFAULT_ARG_IN_FROM,
	R_FROM_PLATFORM_FLAG_CONST_DISALLOWED,
	R_COPY_IGNORED_FILE,
	R_EXPOSE_PROTO_CASING,
	R_EXPOSE_INVALID_FORMAT,
	/* kiln's rules */
	R_COPY_CONTEXT_BEFORE_INSTALL,
	R_APT_UPDATE_WITHOUT_INSTALL,
	R_APT_INSTALL_WITHOUT_YES,
	R_APT_INSTALL_RECOMMENDS,
	R_APT_LISTS_NOT_REMOVED,
	R_APK_ADD_WITHOUT_NO_CACHE,
	R_YUM_DNF_CACHE_NOT_CLEANED,
	R_PIP_WITHOUT_NO_CACHE_DIR,
	R_NPM_INSTALL_WITH_LOCKFILE,
	R_PACKAGE_CACHE_MOUNT,
	R_CHOWN_CHMOD_AFTER_COPY,
	R_REMOVE_IN_LATER_LAYER,
	R_FROM_LATEST_TAG,
	R_ADD_LOCAL_NON_ARCHIVE,
	R_RUN_CD_USE_WORKDIR,
	R_FINAL_STAGE_RUNS_AS_ROOT,
	R_BUILD_TOOLS_IN_FINAL_STAGE,
	R__COUNT
};

struct lint_stage {
	const struct fe_cmd *from;
	const char *name;     /* lowercased AS name, NULL without */
	const char *image;    /* the base as written */
	char *image_expanded; /* with global ARG defaults; NULL when a variable was unset */
	int base;             /* index of the stage it builds on, -1 for an image */
	bool scratch;
	size_t first, count; /* its commands: lint.cmds[first .. first+count) */
	bool copied_from;    /* another stage copies or mounts from it */
	bool built_on;       /* another stage is FROM it */
	const char *workdir; /* the WORKDIR after its last instruction (kiln rules) */
	bool shipped;        /* its layers can end up in an image the build outputs */
};

struct lint {
	const struct fe_ast *ast;
	const struct fe_lint_opts *opts;
	struct kiln_arena *arena;
	struct fe_cmd **cmds; /* one per node, in order */
	size_t ncmds;
	size_t nmeta; /* commands before the first FROM (global ARGs) */
	struct lint_stage *stages;
	size_t nstages;
	struct fe_vars meta; /* global ARGs with their defaults and the automatic ones */
	struct kiln_strv meta_no_default; /* global ARGs declared without a default */
	struct fe_ignore *ignore;         /* NULL without a context */
	bool skip[R__COUNT];
	bool error; /* error=true */
	struct fe_lint_finding *findings;
	size_t nfindings, alloc;
	struct kiln_err *err;
};

void lint_report(struct lint *l, enum lint_rule_id rule, const struct fe_cmd *at, const char *fmt,
                 ...) KILN_PRINTF(4, 5);

/* The stage index of a --from/from= reference (name or number), -1 when none. */
int lint_stage_ref(const struct lint *l, size_t before, const char *ref);

/* kiln's rules (lint_kiln.c). */
void lint_kiln_rules(struct lint *l);

#endif
