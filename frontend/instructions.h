/*
 * Internal: typed instructions (BuildKit's frontend/dockerfile/instructions).
 *
 * fe_cmd_parse turns one parse-tree node into a typed command: it checks the flags each
 * instruction accepts (and their values), the argument count and form, and parses
 * --mount specs. Words that Dockerfile semantics expand (COPY sources, ENV values, ...)
 * are kept raw here: expansion needs the variables in scope, which only the converter
 * (frontend/convert.c) knows. Strings point into the tree's arena or are allocated in it.
 */
#ifndef KILN_FE_INSTRUCTIONS_H
#define KILN_FE_INSTRUCTIONS_H

#include "parser.h"

enum fe_cmd_kind {
	FE_CMD_FROM,
	FE_CMD_RUN,
	FE_CMD_CMD,
	FE_CMD_ENTRYPOINT,
	FE_CMD_SHELL,
	FE_CMD_LABEL,
	FE_CMD_MAINTAINER,
	FE_CMD_EXPOSE,
	FE_CMD_ENV,
	FE_CMD_ADD,
	FE_CMD_COPY,
	FE_CMD_ARG,
	FE_CMD_ONBUILD,
	FE_CMD_STOPSIGNAL,
	FE_CMD_HEALTHCHECK,
	FE_CMD_USER,
	FE_CMD_VOLUME,
	FE_CMD_WORKDIR,
};

struct fe_kv {
	const char *key;
	const char *value; /* NULL for `ARG name` without a default */
};

/* How a command's arguments were written. */
struct fe_cmdline {
	const char **argv;
	size_t argc;
	bool shell_form; /* one string to run with the SHELL (argv[0]) */
};

struct fe_cmd {
	enum fe_cmd_kind kind;
	const struct fe_node *node;
	int start_line, end_line;

	union {
		struct {
			const char *image;
			const char *stage_name; /* NULL without AS */
			const char *platform;   /* --platform value or NULL */
		} from;
		struct {
			struct fe_cmdline cmd;
			struct fe_mount *mounts;
			size_t nmounts;
			const char *network;  /* default|none|host or NULL */
			const char *security; /* sandbox|insecure or NULL */
			struct fe_heredoc *heredocs;
			size_t nheredocs;
		} run;
		struct fe_cmdline cmdline; /* CMD, ENTRYPOINT, SHELL (always exec form) */
		struct {
			struct fe_kv *kvs; /* ENV, LABEL, ARG */
			size_t nkvs;
		} kv;
		struct {
			const char **words; /* EXPOSE ports, VOLUME paths */
			size_t nwords;
		} list;
		const char *value; /* MAINTAINER, STOPSIGNAL, USER, WORKDIR */
		struct {
			const char **sources; /* raw, unexpanded */
			size_t nsources;
			const char *dest;
			const char *from, *chown, *chmod, *checksum;
			bool link, parents, keep_git_dir;
			int unpack; /* -1 unset, 0 false, 1 true */
			const char **excludes;
			size_t nexcludes;
			struct fe_heredoc *heredocs; /* sources given inline */
			size_t nheredocs;
		} copy; /* COPY and ADD */
		struct {
			bool none;
			struct fe_cmdline test; /* CMD form; argv without the "CMD" word */
			int64_t interval, timeout, start_period, start_interval; /* ns, 0 = unset */
			int retries; /* -1 = unset */
		} healthcheck;
		struct {
			const char *expression; /* the trigger as written, e.g. "RUN make" */
			struct fe_cmd *cmd;     /* the parsed trigger */
		} onbuild;
	};
};

/* Parse one node into a typed command allocated in `arena`. Errors carry `file` and the
 * node's lines: unknown instruction, unknown or repeated flag, bad flag value, wrong
 * argument count, bad --mount. */
int fe_cmd_parse(struct kiln_arena *arena, const char *file, const struct fe_node *node,
		 struct fe_cmd **ret, struct kiln_err *err);
/* Parse a Go duration ("30s", "1m30s", "1.5h") into nanoseconds. */
int fe_duration_parse(const char *s, int64_t *ret_ns);
const char *fe_cmd_kind_name(enum fe_cmd_kind kind); /* "RUN", "COPY", ... */

#endif
