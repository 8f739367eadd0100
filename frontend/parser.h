/*
 * Internal: the Dockerfile parse tree (BuildKit's parser.Node, flattened).
 *
 * One fe_node per instruction. Arguments are split per instruction exactly as BuildKit's
 * parser does (see ../shared/spec/parse-dump.md): for ENV/LABEL they are KEY, VALUE, SEP
 * triples ("=" for the KEY=VALUE form, "" for the legacy form); for ONBUILD `sub` holds the
 * nested instruction. Everything is allocated in the tree's arena.
 */
#ifndef KILN_FE_PARSER_H
#define KILN_FE_PARSER_H

#include "fe.h"

struct fe_heredoc {
	const char *name;    /* the delimiter, unquoted */
	const char *content; /* the body; every line ends in "\n" */
	bool expand;         /* the delimiter was unquoted: the body expands variables */
	bool chomp;          /* <<- : leading tabs were stripped from the body */
	int fd;              /* the digits before << (3<<EOF), -1 when absent */
	/* Byte lengths of name and content (a Dockerfile may hold NUL bytes). */
	size_t name_len, content_len;
};

struct fe_node {
	const char *name;     /* lowercased instruction word */
	const char *original; /* the logical line, trimmed */
	const char **flags;   /* "--name=value", unquoted and unescaped */
	size_t nflags;
	const char **args;
	size_t nargs;
	bool json;            /* args came from a JSON array (exec form) */
	struct fe_node *sub;  /* ONBUILD's instruction */
	struct fe_heredoc *heredocs;
	size_t nheredocs;
	int start_line, end_line; /* 1-based physical lines, inclusive */
	/* Byte lengths of name, flags[i] and args[i]: a Dockerfile may hold NUL bytes, which
	 * the dump must print (\x00); everyone else can use the strings as C strings. */
	size_t name_len;
	size_t *flag_lens;
	size_t *arg_lens;
};

struct fe_ast {
	struct kiln_arena *arena;
	const char *file;
	struct fe_node *nodes;
	size_t nnodes;
	char escape;      /* '\\' or '`' */
	const char *syntax; /* the syntax directive's value, or NULL */
	const char *check;  /* the check directive's value, or NULL */
	struct kiln_strv warnings;
};

/* Go strconv.Quote of s (len bytes) appended to out. */
void fe_go_quote(struct kiln_buf *out, const char *s, size_t len);

#endif
