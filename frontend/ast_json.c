/*
 * `kiln parse --format=json`: the typed instructions (frontend/instructions.c) as JSON.
 *
 * The document, printed with 2-space indentation and keys always in this order:
 *
 *	{
 *	  "file": "Dockerfile",
 *	  "escape": "\\",                       the escape character in effect
 *	  "instructions": [ INSTR, ... ]        in file order
 *	}
 *
 * INSTR, for every instruction:
 *	"instruction": "COPY",                  canonical upper-case name
 *	"start_line": 3, "end_line": 4,         1-based physical lines, inclusive
 *	"flags": ["--from=a", ...],             flag words as parsed, unexpanded
 *	"args": [...],                          the parse tree's arguments (ENV/LABEL: K,V,SEP)
 *	"heredocs": [{"name", "content", "expand", "chomp"}, ...]
 * then the fields of its kind (null where a value is unset; strings are raw, unexpanded):
 *	FROM         "image", "stage" (lower-cased), "platform"
 *	RUN          "command": [...], "shell_form": bool, "mounts": [MOUNT...],
 *	             "network", "security"
 *	CMD, ENTRYPOINT, SHELL
 *	             "command": [...], "shell_form": bool (shell form: one string)
 *	ENV, LABEL, ARG
 *	             "pairs": [{"key", "value"}...] (ARG without default: value null)
 *	MAINTAINER, USER, WORKDIR, STOPSIGNAL
 *	             "value"
 *	EXPOSE       "ports": [...]             as written, not sorted
 *	VOLUME       "volumes": [...]
 *	ADD, COPY    "sources": [...] (heredoc sources are in "heredocs"), "dest", "from",
 *	             "chown", "chmod", "link", "parents", "exclude": [...], "checksum",
 *	             "keep_git_dir", "unpack" (null when not given)
 *	HEALTHCHECK  "none": bool, "test": [...] (without the CMD word), "shell_form",
 *	             "interval", "timeout", "start_period", "start_interval" (nanoseconds),
 *	             "retries"
 *	ONBUILD      "expression": the trigger as written, "trigger": INSTR
 * MOUNT: "type", "target", "source", "from", "id", "readonly", "sharing" (cache only),
 *	"mode", "uid", "gid" (integers), "size" (bytes), "required", "env".
 *
 * The first instruction that fails to parse (unknown instruction, bad flag, ...) fails
 * the whole document, with its line.
 */
#include "instructions.h"

#include <jansson.h>

/* A JSON string of `len` bytes; bytes that are not UTF-8 become U+FFFD, which jansson
 * needs. NUL bytes are kept (printed as \u0000). */
static json_t *
jstrn(const char *s, size_t len)
{
	json_t *j = json_stringn(s, len);
	if (j)
		return j;
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	while (p < end) {
		int n = *p < 0x80             ? 1
		        : (*p & 0xe0) == 0xc0 ? 2
		        : (*p & 0xf0) == 0xe0 ? 3
		        : (*p & 0xf8) == 0xf0 ? 4
		                              : 0;
		bool ok = n > 0 && end - p >= n;
		for (int i = 1; ok && i < n; i++)
			ok = (p[i] & 0xc0) == 0x80;
		if (ok) {
			/* Let jansson judge overlong forms and surrogates. */
			json_t *t = json_stringn((const char *)p, (size_t)n);
			if (t) {
				json_decref(t);
				kiln_buf_add(&b, p, (size_t)n);
				p += n;
				continue;
			}
		}
		kiln_buf_add_rune(&b, 0xFFFD);
		p++;
	}
	return json_stringn(b.buf, b.len);
}

static json_t *
jstr(const char *s)
{
	return s ? jstrn(s, strlen(s)) : json_null();
}

/* A node's flags or args: with their byte lengths when the parser recorded them, so
 * NUL bytes in the Dockerfile survive. */
static json_t *
jnode_strs(const char *const *v, const size_t *lens, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, lens ? jstrn(v[i], lens[i]) : jstr(v[i]));
	return a;
}

static json_t *
jstrs(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, jstr(v[i]));
	return a;
}

static json_t *
jns(int64_t ns)
{
	return ns ? json_integer(ns) : json_null();
}

static json_t *
heredocs_json(const struct fe_heredoc *h, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "name", jstr(h[i].name));
		json_object_set_new(o, "content", jstr(h[i].content));
		json_object_set_new(o, "expand", json_boolean(h[i].expand));
		json_object_set_new(o, "chomp", json_boolean(h[i].chomp));
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *
mount_json(const struct fe_mount *m)
{
	static const char *const types[] = {"bind", "cache", "tmpfs", "secret", "ssh"};
	static const char *const sharing[] = {"shared", "private", "locked"};
	json_t *o = json_object();
	json_object_set_new(o, "type", json_string(types[m->type]));
	json_object_set_new(o, "target", jstr(m->target));
	json_object_set_new(o, "source", jstr(m->source));
	json_object_set_new(o, "from", jstr(m->from));
	json_object_set_new(o, "id", jstr(m->id));
	json_object_set_new(o, "readonly", json_boolean(m->readonly));
	json_object_set_new(o, "sharing",
	                    m->type == FE_MOUNT_CACHE ? json_string(sharing[m->sharing])
	                                              : json_null());
	json_object_set_new(o, "mode", m->has_mode ? json_integer(m->mode) : json_null());
	json_object_set_new(o, "uid", m->has_uid ? json_integer(m->uid) : json_null());
	json_object_set_new(o, "gid", m->has_gid ? json_integer(m->gid) : json_null());
	json_object_set_new(o, "size", m->size ? json_integer((json_int_t)m->size) : json_null());
	json_object_set_new(o, "required", json_boolean(m->required));
	json_object_set_new(o, "env", jstr(m->env));
	return o;
}

static void
cmdline_json(json_t *o, const char *key, const struct fe_cmdline *cl)
{
	json_object_set_new(o, key, jstrs(cl->argv, cl->argc));
	json_object_set_new(o, "shell_form", json_boolean(cl->shell_form));
}

static json_t *
cmd_json(const struct fe_cmd *c)
{
	const struct fe_node *n = c->node;
	json_t *o = json_object();
	json_object_set_new(o, "instruction", json_string(fe_cmd_kind_name(c->kind)));
	json_object_set_new(o, "start_line", json_integer(c->start_line));
	json_object_set_new(o, "end_line", json_integer(c->end_line));
	json_object_set_new(o, "flags", jnode_strs(n->flags, n->flag_lens, n->nflags));
	json_object_set_new(o, "args", jnode_strs(n->args, n->arg_lens, n->nargs));
	json_object_set_new(o, "heredocs", heredocs_json(n->heredocs, n->nheredocs));

	switch (c->kind) {
	case FE_CMD_FROM:
		json_object_set_new(o, "image", jstr(c->from.image));
		json_object_set_new(o, "stage", jstr(c->from.stage_name));
		json_object_set_new(o, "platform", jstr(c->from.platform));
		break;
	case FE_CMD_RUN: {
		cmdline_json(o, "command", &c->run.cmd);
		json_t *a = json_array();
		for (size_t i = 0; i < c->run.nmounts; i++)
			json_array_append_new(a, mount_json(&c->run.mounts[i]));
		json_object_set_new(o, "mounts", a);
		json_object_set_new(o, "network", jstr(c->run.network));
		json_object_set_new(o, "security", jstr(c->run.security));
		break;
	}
	case FE_CMD_CMD:
	case FE_CMD_ENTRYPOINT:
	case FE_CMD_SHELL:
		cmdline_json(o, "command", &c->cmdline);
		break;
	case FE_CMD_ENV:
	case FE_CMD_LABEL:
	case FE_CMD_ARG: {
		json_t *a = json_array();
		for (size_t i = 0; i < c->kv.nkvs; i++) {
			json_t *p = json_object();
			json_object_set_new(p, "key", jstr(c->kv.kvs[i].key));
			json_object_set_new(p, "value", jstr(c->kv.kvs[i].value));
			json_array_append_new(a, p);
		}
		json_object_set_new(o, "pairs", a);
		break;
	}
	case FE_CMD_MAINTAINER:
	case FE_CMD_USER:
	case FE_CMD_WORKDIR:
	case FE_CMD_STOPSIGNAL:
		json_object_set_new(o, "value", jstr(c->value));
		break;
	case FE_CMD_EXPOSE:
		json_object_set_new(o, "ports", jstrs(c->list.words, c->list.nwords));
		break;
	case FE_CMD_VOLUME:
		json_object_set_new(o, "volumes", jstrs(c->list.words, c->list.nwords));
		break;
	case FE_CMD_ADD:
	case FE_CMD_COPY:
		json_object_set_new(o, "sources", jstrs(c->copy.sources, c->copy.nsources));
		json_object_set_new(o, "dest", jstr(c->copy.dest));
		json_object_set_new(o, "from", jstr(c->copy.from));
		json_object_set_new(o, "chown", jstr(c->copy.chown));
		json_object_set_new(o, "chmod", jstr(c->copy.chmod));
		json_object_set_new(o, "link", json_boolean(c->copy.link));
		json_object_set_new(o, "parents", json_boolean(c->copy.parents));
		json_object_set_new(o, "exclude", jstrs(c->copy.excludes, c->copy.nexcludes));
		json_object_set_new(o, "checksum", jstr(c->copy.checksum));
		json_object_set_new(o, "keep_git_dir", json_boolean(c->copy.keep_git_dir));
		json_object_set_new(o, "unpack",
		                    c->copy.unpack < 0 ? json_null()
		                                       : json_boolean(c->copy.unpack));
		break;
	case FE_CMD_HEALTHCHECK:
		json_object_set_new(o, "none", json_boolean(c->healthcheck.none));
		json_object_set_new(o, "test",
		                    jstrs(c->healthcheck.test.argv, c->healthcheck.test.argc));
		json_object_set_new(o, "shell_form", json_boolean(c->healthcheck.test.shell_form));
		json_object_set_new(o, "interval", jns(c->healthcheck.interval));
		json_object_set_new(o, "timeout", jns(c->healthcheck.timeout));
		json_object_set_new(o, "start_period", jns(c->healthcheck.start_period));
		json_object_set_new(o, "start_interval", jns(c->healthcheck.start_interval));
		json_object_set_new(o, "retries",
		                    c->healthcheck.retries < 0
		                            ? json_null()
		                            : json_integer(c->healthcheck.retries));
		break;
	case FE_CMD_ONBUILD:
		json_object_set_new(o, "expression", jstr(c->onbuild.expression));
		json_object_set_new(o, "trigger", cmd_json(c->onbuild.cmd));
		break;
	}
	return o;
}

int
fe_ast_to_json(const struct fe_ast *ast, struct kiln_buf *out, struct kiln_err *err)
{
	_cleanup_arena_ struct kiln_arena *arena = kiln_arena_new();
	_cleanup_json_ json_t *doc = json_object();
	json_t *list = json_array();
	char esc[2] = {ast->escape ? ast->escape : '\\', '\0'};

	json_object_set_new(doc, "file", jstr(ast->file));
	json_object_set_new(doc, "escape", json_string(esc));
	json_object_set_new(doc, "instructions", list);
	for (size_t i = 0; i < ast->nnodes; i++) {
		struct fe_cmd *c;
		int r = fe_cmd_parse(arena, ast->file, &ast->nodes[i], &c, err);
		if (r < 0)
			return r;
		json_array_append_new(list, cmd_json(c));
	}
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!s)
		return kiln_err_set(err, ENOMEM, "format JSON");
	kiln_buf_addstr(out, s);
	kiln_buf_addch(out, '\n');
	free(s);
	return 0;
}
