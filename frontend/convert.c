/*
 * Lowering: Dockerfile + context -> the build graph (BuildKit's dockerfile2llb).
 *
 * Stages are dispatched on demand, starting from the target: a stage is dispatched when
 * the target (or a stage it needs) names it in FROM, COPY --from or RUN --mount=from, so
 * stages the target does not need never reach the graph, and vertices are added in
 * topological order. A stage being dispatched is "visiting"; meeting it again is a cycle.
 *
 * Replay: a stage rooted on the same image (or scratch) as an earlier one, whose RUN, COPY,
 * ADD, WORKDIR, ENV, ARG, USER and SHELL lines repeat the earlier stage's, would only make
 * vertices that deduplicate to the earlier ones; it takes them from that stage instead
 * (metadata instructions still apply; the first difference or --from ends the replay).
 * The graph is the same with replay off (fe_plan_replay; tests compare both).
 *
 * What the ops get beyond sv.h's contract (all of it in the defs, nothing needs the
 * Dockerfile at build time):
 *
 *   exec: "base_env": R   the stage's root filesystem descends from image R, whose config
 *                         Env is unknown at plan time: at build time the image's entries
 *                         go first and "env" entries replace them by key;
 *         "default_path": true  the PATH in "env" is kiln's default because the Dockerfile
 *                         set none; an image PATH replaces it;
 *         "default_cwd": true  the Dockerfile set no WORKDIR and the base image's WorkingDir
 *                         was not known (no image_config) or empty: the image's replaces
 *                         "cwd" (FROM golang runs in /go);
 *         "proxy_env": [...]  HTTP_PROXY & co given with --build-arg and not declared with
 *                         ARG: added to the environment, never to the image config.
 *   file: copy {"input","src","dest" (ends in "/": a directory),"follow_symlinks",
 *               "dir_contents_only","allow_wildcard","allow_empty_wildcard",
 *               "create_dest_path","chown":{"user","group"},"mode","unpack","link",
 *               "parents","exclude"}, mkdir {"path","mode","parents","chown"},
 *               mkfile {"path","mode","data"}; COPY/ADD --link: the copy's input 0 is
 *               scratch, and a second file vertex [{"action":"merge","input":1}] on
 *               [stage, copy] is the step's result (BuildKit's MergeOp).
 *   source: {"type":"http","url":U,"filename":F,"checksum":C} for ADD <url>; a local
 *           source without "include" transfers the whole context; with "dir": D it is a
 *           --build-context directory (absolute), read like the context, its own
 *           .dockerignore in "exclude".
 *
 *   mounts: bind {"target","input","source","readonly"} (without from: a local source of
 *           just that path), cache {"target","id" (default: target),"sharing","readonly",
 *           "mode","uid","gid","input"/"source" with from}, tmpfs {"target","size"},
 *           secret {"id","target" (default /run/secrets/<id> unless "env"),"env",
 *           "required","mode","uid","gid"}, ssh {"id","target","required","mode",...}.
 *
 * Sharing: stages never share vertices except identical content: the same image source
 * (FROM busybox twice), the scratch vertex, and a local source of the same paths. Each
 * COPY/ADD gets its own local source listing only the paths it reads, so editing one
 * COPY line changes no other instruction's digest.
 *
 * Variables: one ordered list per stage is BuildKit's LLB state env (ENV and ARG values,
 * what words expand with and what RUN sees); the image config's Env gets ENV only. So an
 * ARG declared after an ENV of the same name wins in RUN but not in the config, as in
 * BuildKit. A stage FROM another stage runs that stage's triggers first, expanded when they
 * run; a stage FROM an image runs the image's triggers when fe_plan_opts.image_config gives
 * its config (kiln build), which also makes a relative WORKDIR start at its WorkingDir.
 *
 * A result's config is an OCI image config; "base": R says it is layered on image R's
 * config at build time: Env merges by key (ours win; PATH defaults when neither sets it),
 * Labels/ExposedPorts/Volumes merge by key, other members present here replace the base's
 * ("Cmd": null means ENTRYPOINT reset the base's Cmd), history is appended to the base's.
 */
#include "convert.h"
#include "dockerignore.h"
#include "instructions.h"
#include "shlex.h"

#include <ctype.h>
#include <sys/stat.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *const proxy_args[] = {
        "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
        "ftp_proxy",  "NO_PROXY",   "no_proxy",    "ALL_PROXY",   "all_proxy",
};
static const char *const platform_args[] = {
        "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
        "BUILDPLATFORM",  "BUILDOS",  "BUILDARCH",  "BUILDVARIANT",
};

static bool
in_list(const char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (kiln_str_eq(list[i], s))
			return true;
	return false;
}

/* Members set directly: json_pack parses its format on every call, and plans of long
 * Dockerfiles build thousands of these objects. */
/*
 * json_string without jansson's byte-by-byte UTF-8 check for all-ASCII text, which is
 * checked here 8 bytes at a time: that check was most of the cost of the 100,000 strings
 * a long plan makes (history, env, labels). Other text goes through json_string and its
 * check, so invalid UTF-8 still gives NULL.
 */
static json_t *
jstr(const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s), i = 0;
	uint64_t bits = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x;
		memcpy(&x, s + i, 8);
		bits |= x;
	}
	for (; i < n; i++)
		bits |= (unsigned char)s[i];
	if (bits & 0x8080808080808080ull)
		return json_string(s);
	return json_stringn_nocheck(s, n);
}

/* Keys are literals here (so ASCII): jansson's UTF-8 check of each is skipped. */
static void
jset_str(json_t *o, const char *key, const char *value)
{
	json_object_set_new_nocheck(o, key, jstr(value));
}

static json_t *
jobj_str(const char *key, const char *value)
{
	json_t *o = json_object();
	jset_str(o, key, value);
	return o;
}

static json_t *
jactions(json_t *action)
{
	json_t *a = json_array();
	json_array_append_new(a, action);
	json_t *o = json_object();
	json_object_set_new_nocheck(o, "actions", a);
	return o;
}

/* What a stage carries forward and a stage built FROM it inherits. */
struct cv_image {
	struct fe_vars env;     /* BuildKit's LLB state env: ENV and ARG values */
	struct fe_vars cfg_env; /* the image config's Env: ENV only */
	struct fe_vars args;    /* ARGs in scope with a value, for RUN's history text */
	json_t *config;         /* config members other than Env/WorkingDir/User/Shell */
	json_t *history;
	char *workdir; /* NULL: never set ("/") */
	char *user;
	struct kiln_strv shell; /* empty: /bin/sh -c */
	char *author;
	char *base; /* normalised image reference the stage descends from, NULL for scratch */
	char *base_workdir; /* the base image's WorkingDir when image_config told it, or NULL */
	bool base_known;    /* image_config gave the base image's config */
	bool cmd_set;
	json_t *env_json; /* RUN's "env", built once per change of `env` (NULL: none yet) */
	bool env_stale;   /* `env` changed since env_json was built */
	bool env_default_path;
	struct fe_cmd **triggers; /* this stage's ONBUILD triggers, run by stages FROM it */
	size_t ntriggers, atriggers;
};

enum { ST_NEW, ST_VISITING, ST_DONE };

struct cv_stage {
	size_t index;
	const char *name;  /* lowercased AS name, or NULL */
	const char *meta;  /* name or index as text */
	const char *label; /* name or "stage-N", for descriptions */
	struct fe_cmd *from;
	struct fe_cmd **cmds;
	size_t ncmds, acmds;
	int state;
	struct sv_vertex *vertex;
	struct cv_image img;
	struct fe_platform platform;
	char platform_str[100];
	size_t step, nsteps;
	/* Replay (see replay_ref): a stage rooted on an image or scratch records the vertex
	 * each instruction leaves, so a later stage with the same root and the same leading
	 * instructions reuses them instead of building definitions that would deduplicate. */
	bool replayable;
	struct fe_cmd **rel;      /* the instructions that lowering depends on, in order */
	struct sv_vertex **after; /* after[0]: the root; after[k + 1]: after rel[k] */
	struct replay_rec *rec;   /* what RUN/COPY/ADD/ENV rel[k] did beyond its vertex */
	size_t nafter;
};

/* What a replayed instruction repeats of the earlier stage's: its history entry (the
 * earlier stage's own, NULL: not recorded), for ENV the variables it set (expanded, KEY
 * VALUE ...), for WORKDIR the directory. */
struct replay_rec {
	json_t *entry;
	char *const *kv;
	size_t nkv;
	const char *workdir;
};

struct cv {
	const struct fe_plan_opts *opts;
	const char *file;
	struct fe_ast *ast;
	struct cv_stage *stages;
	size_t nstages;
	struct cv_stage **buckets; /* stage names, see stage_name_insert */
	size_t nbuckets;
	char **env_kv; /* do_env's last ENV, expanded (KEY VALUE ...), in the tree's arena */
	size_t env_nkv;
	struct fe_vars global;            /* global ARGs with a value, and the platform ARGs */
	struct kiln_strv global_declared; /* every global ARG name */
	struct fe_vars build_args;        /* --build-arg */
	struct fe_vars proxy;             /* proxy ARGs given with --build-arg */
	struct fe_platform target_platform;
	struct fe_ignore *ignore;
	struct sv_graph *g;
	struct sv_vertex *scratch;
	bool no_replay;
	struct sv_vertex *replay; /* the vertex the current instruction is known to make */
	struct cv_stage **roots;  /* replayable stages by root vertex (open addressing) */
	size_t nroots;
	json_t *exclude; /* the .dockerignore patterns, shared by every local source */
	struct cv_named *named; /* --build-context, see named_setup */
	size_t nnamed;
	struct fe_ast **trigger_asts; /* base images' ONBUILD triggers, parsed */
	size_t ntrigger_asts, atrigger_asts;
	struct kiln_strv config_refs; /* image_config's answers, asked once per "ref\nplatform" */
	json_t **configs;
	size_t aconfigs;
};

/* One --build-context, checked once before lowering. */
struct cv_named {
	const char *name;
	char *norm;      /* the name as a normalised image reference, or NULL */
	char *image;     /* docker-image://: the normalised reference (or a bare digest) */
	char *dir;       /* a directory: its absolute path */
	json_t *exclude; /* the directory's .dockerignore patterns */
};

static void
image_release(struct cv_image *img)
{
	fe_vars_release(&img->env);
	fe_vars_release(&img->cfg_env);
	fe_vars_release(&img->args);
	json_decref(img->config);
	json_decref(img->history);
	free(img->workdir);
	free(img->user);
	kiln_strv_release(&img->shell);
	free(img->author);
	free(img->base);
	free(img->base_workdir);
	free(img->triggers);
	json_decref(img->env_json);
	*img = (struct cv_image){0};
}

static void
image_env_changed(struct cv_image *img)
{
	img->env_stale = true;
}

/* Append strings up to a NULL: history and description texts are built for every
 * instruction, where printf's format parsing shows in profiles. */
static void __attribute__((sentinel)) buf_cat(struct kiln_buf *b, const char *s, ...)
{
	va_list ap;
	va_start(ap, s);
	for (; s; s = va_arg(ap, const char *))
		kiln_buf_addstr(b, s);
	va_end(ap);
}

static void
buf_num(struct kiln_buf *b, size_t n)
{
	char tmp[24], *p = tmp + sizeof(tmp);
	*--p = '\0';
	do
		*--p = (char)('0' + n % 10);
	while (n /= 10);
	kiln_buf_addstr(b, p);
}

static char *
xstrdup_or_null(const char *s)
{
	return s ? kiln_xstrdup(s) : NULL;
}

/* A stage built FROM another starts as a copy of it, minus its ONBUILD triggers (they run
 * instead) and its OnBuild config (consumed, as BuildKit does). */
static void
image_inherit(struct cv_image *dst, const struct cv_image *src)
{
	fe_vars_copy(&dst->env, &src->env);
	fe_vars_copy(&dst->cfg_env, &src->cfg_env);
	fe_vars_copy(&dst->args, &src->args);
	dst->config = json_deep_copy(src->config);
	json_object_del(dst->config, "OnBuild");
	dst->history = json_deep_copy(src->history);
	dst->workdir = xstrdup_or_null(src->workdir);
	dst->user = xstrdup_or_null(src->user);
	for (size_t i = 0; i < src->shell.n; i++)
		kiln_strv_push(&dst->shell, src->shell.v[i]);
	dst->author = xstrdup_or_null(src->author);
	dst->base = xstrdup_or_null(src->base);
	dst->base_workdir = xstrdup_or_null(src->base_workdir);
	dst->base_known = src->base_known;
	dst->cmd_set = false;
}

static const char *
vars_lookup_proxy(void *ctx, const char *name)
{
	struct cv *cv = ctx;
	return fe_vars_get(&cv->proxy, name);
}

static const char *
cmd_name(const struct fe_cmd *cmd)
{
	return fe_cmd_kind_name(cmd->kind);
}

static int cmd_err(struct cv *cv, const struct fe_cmd *cmd, struct kiln_err *err, const char *fmt,
                   ...) KILN_PRINTF(4, 5);
static int
cmd_err(struct cv *cv, const struct fe_cmd *cmd, struct kiln_err *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_buf_ struct kiln_buf sb = KILN_BUF_INIT;
	kiln_buf_vaddf(&sb, fmt, ap);
	va_end(ap);
	return kiln_err_at(err, cv->file, cmd->start_line, cmd->end_line, "%s", sb.buf);
}

/* Expand one word with the variables of `vars` (the stage's env, or the global ARGs). */
static int
expand_with(struct cv *cv, const struct fe_vars *vars, const struct fe_cmd *cmd, const char *word,
            char **ret, struct kiln_err *err)
{
	struct fe_shlex lx = {.escape = cv->ast->escape,
	                      .vars = vars,
	                      .lookup = vars_lookup_proxy,
	                      .lookup_ctx = cv};
	if (!strpbrk(word, "$\"'\\`")) {
		*ret = kiln_xstrdup(word);
		return 0;
	}
	int r = fe_expand_word(&lx, word, ret, err);
	if (r < 0) {
		kiln_err_wrap(err, "%s", cmd_name(cmd));
		return kiln_err_locate(err, cv->file, cmd->start_line, cmd->end_line);
	}
	return 0;
}

static int
expand(struct cv *cv, struct cv_stage *st, const struct fe_cmd *cmd, const char *word, char **ret,
       struct kiln_err *err)
{
	return expand_with(cv, &st->img.env, cmd, word, ret, err);
}

static int
expand_split(struct cv *cv, struct cv_stage *st, const struct fe_cmd *cmd, const char *word,
             struct kiln_strv *ret, struct kiln_err *err)
{
	struct fe_shlex lx = {.escape = cv->ast->escape,
	                      .vars = &st->img.env,
	                      .lookup = vars_lookup_proxy,
	                      .lookup_ctx = cv};
	int r = fe_expand_words(&lx, word, ret, err);
	if (r < 0) {
		kiln_err_wrap(err, "%s", cmd_name(cmd));
		return kiln_err_locate(err, cv->file, cmd->start_line, cmd->end_line);
	}
	return 0;
}

/*
 * Heredoc bodies of COPY expand like BuildKit's SkipProcessQuotes lexer: variables and
 * escapes are processed, quotes are kept. fe_shlex has no such mode, so quotes are escaped
 * first (an escaped character stays escaped). Only for the '\\' escape, as BuildKit.
 */
static int
expand_heredoc(struct cv *cv, struct cv_stage *st, const struct fe_cmd *cmd, const char *body,
               char **ret, struct kiln_err *err)
{
	_cleanup_buf_ struct kiln_buf sb = KILN_BUF_INIT;
	for (const char *p = body; *p; p++) {
		if (*p == '\\' && p[1]) {
			kiln_buf_add(&sb, p, 2);
			p++;
			continue;
		}
		if (*p == '"' || *p == '\'')
			kiln_buf_addch(&sb, '\\');
		kiln_buf_addch(&sb, *p);
	}
	struct fe_shlex lx = {.escape = '\\',
	                      .vars = &st->img.env,
	                      .lookup = vars_lookup_proxy,
	                      .lookup_ctx = cv};
	int r = fe_expand_word(&lx, sb.buf, ret, err);
	if (r < 0)
		return kiln_err_locate(err, cv->file, cmd->start_line, cmd->end_line);
	return 0;
}

/* ---- vertices ---- */

/* "[build 3/7] RUN make", as BuildKit names its steps. */
static char *
step_text(struct cv_stage *st, size_t step, const char *text)
{
	struct kiln_buf b = KILN_BUF_INIT;
	buf_cat(&b, "[", st->label, " ", NULL);
	buf_num(&b, step);
	kiln_buf_addch(&b, '/');
	buf_num(&b, st->nsteps);
	buf_cat(&b, "] ", text, NULL);
	return kiln_buf_detach(&b, NULL);
}

static struct sv_vertex *
add_vertex(struct cv *cv, struct cv_stage *st, const struct fe_cmd *cmd, enum sv_op op, json_t *def,
           struct sv_vertex *const *inputs, size_t ninputs, const char *what)
{
	_cleanup_free_ char *desc = NULL;
	if (!what && st && cmd)
		desc = step_text(st, st->step,
		                 cmd->node && cmd->node->original ? cmd->node->original
		                                                  : cmd_name(cmd));
	struct sv_vertex_meta meta = {
	        .stage = st ? st->meta : NULL,
	        .description = what ? what : desc,
	        .line = cmd ? cmd->start_line : 0,
	};
	return sv_graph_add(cv->g, op, def, inputs, ninputs, &meta);
}

/* The empty filesystem; one vertex, labelled with the first stage that uses it. */
static struct sv_vertex *
scratch_vertex(struct cv *cv, struct cv_stage *st)
{
	if (!cv->scratch)
		cv->scratch = add_vertex(cv, st, NULL, SV_OP_SOURCE, jobj_str("type", "scratch"),
		                         NULL, 0, "scratch");
	return cv->scratch;
}

static struct sv_vertex *
image_vertex(struct cv *cv, struct cv_stage *st, const struct fe_cmd *cmd, const char *ref,
             const char *platform)
{
	json_t *def = jobj_str("type", "image");
	jset_str(def, "ref", ref);
	jset_str(def, "platform", platform);
	_cleanup_free_ char *desc = NULL;
	_cleanup_free_ char *from_text = kiln_xasprintf("FROM %s", ref);
	if (st && cmd && cmd->kind == FE_CMD_FROM)
		desc = step_text(st, 1, from_text);
	else
		desc = kiln_xstrdup(from_text);
	return add_vertex(cv, st, cmd, SV_OP_SOURCE, def, NULL, 0, desc);
}

static json_t *
exclude_patterns(struct cv *cv)
{
	if (!cv->exclude) {
		cv->exclude = json_array();
		size_t n = fe_ignore_count(cv->ignore);
		for (size_t i = 0; i < n; i++)
			json_array_append_new(cv->exclude, jstr(fe_ignore_pattern(cv->ignore, i)));
	}
	return json_incref(cv->exclude);
}

/* The context as one instruction reads it: only the paths it names are transferred. */
static struct sv_vertex *
context_vertex(struct cv *cv, struct cv_stage *st, const struct fe_cmd *cmd, char *const *paths,
               size_t npaths)
{
	json_t *def = jobj_str("type", "local");
	jset_str(def, "name", "context");
	bool whole = false;
	json_t *inc = json_array();
	for (size_t i = 0; i < npaths; i++) {
		if (kiln_str_eq(paths[i], "."))
			whole = true;
		bool dup = false;
		for (size_t j = 0; j < i && !dup; j++)
			dup = kiln_str_eq(paths[i], paths[j]);
		if (!dup)
			json_array_append_new(inc, jstr(paths[i]));
	}
	if (whole)
		json_decref(inc);
	else
		json_object_set_new_nocheck(def, "include", inc);
	json_object_set_new_nocheck(def, "exclude", exclude_patterns(cv));
	return add_vertex(cv, st, cmd, SV_OP_SOURCE, def, NULL, 0, "[internal] load build context");
}

/* A context-relative path: no leading "/", cleaned, "." for the root. */
static char *
context_path(const char *p)
{
	_cleanup_free_ char *abs = kiln_path_join("/", p);
	return kiln_xstrdup(kiln_str_eq(abs, "/") ? "." : abs + 1);
}

struct inputs {
	struct sv_vertex *v[64];
	size_t n;
};

static int
inputs_add(struct inputs *in, struct sv_vertex *v)
{
	for (size_t i = 0; i < in->n; i++)
		if (in->v[i] == v)
			return (int)i;
	if (in->n == KILN_ARRAY_SIZE(in->v))
		abort(); /* a --mount/COPY source count this large is refused earlier */
	in->v[in->n] = v;
	return (int)in->n++;
}

static void
history_add(struct cv_image *img, const char *created_by, bool empty_layer)
{
	json_t *h = jobj_str("created_by", created_by);
	if (empty_layer)
		json_object_set_new_nocheck(h, "empty_layer", json_true());
	json_array_append_new(img->history, h);
}

/* ---- stage references ---- */

static int dispatch_stage(struct cv *cv, struct cv_stage *st, struct kiln_err *err);

static size_t
name_hash(const char *s)
{
	size_t h = 14695981039346656037ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)tolower((unsigned char)*s)) * 1099511628211ULL;
	return h;
}

static struct cv_stage *
stage_by_name(struct cv *cv, const char *name, size_t limit)
{
	if (!cv->nbuckets)
		return NULL;
	size_t mask = cv->nbuckets - 1;
	for (size_t b = name_hash(name) & mask;; b = (b + 1) & mask) {
		struct cv_stage *st = cv->buckets[b];
		if (!st)
			return NULL;
		if (strcasecmp(st->name, name) == 0)
			return st->index < limit ? st : NULL;
	}
}

/* Stage names go in an open-addressing table: a Dockerfile of thousands of stages must
 * not cost a scan of every earlier stage per FROM or --from. */
static void
stage_name_insert(struct cv *cv, struct cv_stage *st)
{
	size_t mask = cv->nbuckets - 1;
	size_t b = name_hash(st->name) & mask;
	while (cv->buckets[b])
		b = (b + 1) & mask;
	cv->buckets[b] = st;
}

static bool
all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* ---- --build-context ---- */

static int
named_setup(struct cv *cv, struct kiln_err *err)
{
	const struct fe_plan_opts *o = cv->opts;
	if (!o->nnamed_contexts)
		return 0;
	cv->named = kiln_xcalloc(o->nnamed_contexts, sizeof(*cv->named));
	for (size_t i = 0; i < o->nnamed_contexts; i++) {
		const struct fe_named_context *nc = &o->named_contexts[i];
		struct cv_named *n = &cv->named[cv->nnamed++];
		n->name = nc->name;
		if (!nc->name || !*nc->name || !nc->value || !*nc->value)
			return kiln_err_invalid(err, "--build-context: want NAME=VALUE");
		struct kiln_err e = KILN_ERR_INIT;
		if (fe_ref_normalize(nc->name, &n->norm, &e) < 0)
			kiln_err_release(&e); /* a name that is no image reference matches as is */
		const char *v = nc->value;
		if (kiln_str_has_prefix(v, "docker-image://")) {
			v += strlen("docker-image://");
			if (kiln_str_has_prefix(v, "sha256:") && kiln_digest_valid(v)) {
				n->image = kiln_xstrdup(v);
			} else if (fe_ref_normalize(v, &n->image, err) < 0) {
				return kiln_err_wrap(err, "--build-context %s=%s", nc->name,
				                     nc->value);
			}
		} else if (kiln_str_has_prefix(v, "oci-layout://")) {
			return kiln_err_invalid(err,
			                        "--build-context %s=%s: an OCI layout must be "
			                        "imported into the store first (kiln build does)",
			                        nc->name, nc->value);
		} else if (strstr(v, "://")) {
			return kiln_err_invalid(err,
			                        "--build-context %s=%s: unsupported source (want a "
			                        "directory, docker-image:// or oci-layout://)",
			                        nc->name, nc->value);
		} else {
			n->dir = realpath(v, NULL);
			struct stat sb;
			if (!n->dir || stat(n->dir, &sb) < 0)
				return kiln_err_set(err, errno, "--build-context %s=%s", nc->name,
				                    v);
			if (!S_ISDIR(sb.st_mode))
				return kiln_err_invalid(
				        err, "--build-context %s=%s: not a directory", nc->name, v);
			struct fe_ignore *ig = NULL;
			if (fe_ignore_load(n->dir, NULL, &ig, err) < 0)
				return kiln_err_wrap(err, "--build-context %s", nc->name);
			n->exclude = json_array();
			for (size_t k = 0; k < fe_ignore_count(ig); k++)
				json_array_append_new(n->exclude, jstr(fe_ignore_pattern(ig, k)));
			fe_ignore_free(ig);
		}
	}
	return 0;
}

/* The --build-context `name` stands for: named as given, or as the same image reference
 * (`FROM docker.io/library/alpine:latest` is `--build-context alpine=...`, as buildx). */
static struct cv_named *
named_find(struct cv *cv, const char *name)
{
	if (!cv->nnamed)
		return NULL;
	for (size_t i = 0; i < cv->nnamed; i++)
		if (kiln_str_eq(cv->named[i].name, name))
			return &cv->named[i];
	_cleanup_free_ char *norm = NULL;
	struct kiln_err e = KILN_ERR_INIT;
	if (fe_ref_normalize(name, &norm, &e) < 0) {
		kiln_err_release(&e);
		return NULL;
	}
	for (size_t i = 0; i < cv->nnamed; i++)
		if (cv->named[i].norm && kiln_str_eq(cv->named[i].norm, norm))
			return &cv->named[i];
	return NULL;
}

/* A directory context: read in place, with its own .dockerignore, like the main one. */
static struct sv_vertex *
named_dir_vertex(struct cv *cv, struct cv_stage *st, const struct fe_cmd *cmd, struct cv_named *n)
{
	json_t *def = jobj_str("type", "local");
	jset_str(def, "dir", n->dir);
	json_object_set_new_nocheck(def, "exclude", json_incref(n->exclude));
	_cleanup_free_ char *desc = kiln_xasprintf("[context %s] load from client", n->name);
	return add_vertex(cv, st, cmd, SV_OP_SOURCE, def, NULL, 0, desc);
}

/* A directory context as a stage's root filesystem: its files copied onto scratch. */
static struct sv_vertex *
named_dir_root(struct cv *cv, struct cv_stage *st, const struct fe_cmd *cmd, struct cv_named *n)
{
	struct sv_vertex *in[2] = {scratch_vertex(cv, st), named_dir_vertex(cv, st, cmd, n)};
	json_t *cp = json_pack("{s:s, s:i, s:s, s:s, s:b, s:b, s:b}", "action", "copy", "input", 1,
	                       "src", "/", "dest", "/", "dir_contents_only", 1, "create_dest_path",
	                       1, "follow_symlinks", 0);
	_cleanup_free_ char *text = kiln_xasprintf("FROM %s", n->name);
	_cleanup_free_ char *desc = step_text(st, 1, text);
	return add_vertex(cv, st, cmd, SV_OP_FILE, jactions(cp), in, 2, desc);
}

/*
 * Resolve a --from value (COPY, RUN --mount): a stage name, a stage index, or else an
 * image. Any stage may be named (BuildKit allows later stages); a stage still being
 * dispatched is a cycle.
 */
static int
resolve_from(struct cv *cv, struct cv_stage *st, const struct fe_cmd *cmd, const char *from,
             struct sv_vertex **ret, struct kiln_err *err)
{
	struct cv_stage *ref = NULL;
	if (all_digits(from)) {
		uint64_t idx;
		if (kiln_parse_u64(from, &idx) < 0 || idx >= cv->nstages)
			return cmd_err(cv, cmd, err, "%s --from=%s: invalid stage index %s",
			               cmd_name(cmd), from, from);
		ref = &cv->stages[idx];
	} else {
		ref = stage_by_name(cv, from, cv->nstages);
	}
	/* A context named as a stage replaces the stage (as buildx), one named as an image
	 * replaces the image. */
	struct cv_named *nf =
	        ref ? (ref->name ? named_find(cv, ref->name) : NULL) : named_find(cv, from);
	if (nf) {
		*ret = nf->dir ? named_dir_vertex(cv, st, cmd, nf)
		               : image_vertex(cv, st, cmd, nf->image, st->platform_str);
		return 0;
	}
	if (ref) {
		if (ref == st || ref->state == ST_VISITING)
			return cmd_err(cv, cmd, err,
			               "%s --from=%s: circular dependency detected on stage: %s",
			               cmd_name(cmd), from, ref->meta);
		if (ref->state == ST_NEW) {
			int r = dispatch_stage(cv, ref, err);
			if (r < 0)
				return r;
		}
		*ret = ref->vertex;
		return 0;
	}
	_cleanup_free_ char *norm = NULL;
	if (fe_ref_normalize(from, &norm, err) < 0) {
		kiln_err_wrap(err, "%s --from=%s", cmd_name(cmd), from);
		return kiln_err_locate(err, cv->file, cmd->start_line, cmd->end_line);
	}
	*ret = image_vertex(cv, st, cmd, norm, st->platform_str);
	return 0;
}

/* ---- instructions that only change the image config ---- */

static void
join_history(struct kiln_buf *sb, const char *word, char *const *kv, size_t n)
{
	kiln_buf_addstr(sb, word);
	for (size_t i = 0; i < n; i++)
		buf_cat(sb, " ", kv[i], NULL);
}

static int
do_env(struct cv *cv, struct cv_stage *st, struct fe_cmd *cmd, struct kiln_err *err)
{
	/* Every word sees the variables as they were before the instruction. */
	_cleanup_strv_ struct kiln_strv kv = KILN_STRV_INIT;
	for (size_t i = 0; i < cmd->kv.nkvs; i++) {
		char *k, *v;
		int r = expand(cv, st, cmd, cmd->kv.kvs[i].key, &k, err);
		if (r < 0)
			return r;
		kiln_strv_push_take(&kv, k);
		r = expand(cv, st, cmd, cmd->kv.kvs[i].value ? cmd->kv.kvs[i].value : "", &v, err);
		if (r < 0)
			return r;
		kiln_strv_push_take(&kv, v);
	}
	if (cmd->kind == FE_CMD_ENV) {
		cv->env_kv = kiln_arena_array(cv->ast->arena, kv.n + 1, sizeof(char *));
		for (size_t i = 0; i < kv.n; i++)
			cv->env_kv[i] = kiln_arena_strdup(cv->ast->arena, kv.v[i]);
		cv->env_nkv = kv.n;
	}
	_cleanup_buf_ struct kiln_buf h = KILN_BUF_INIT;
	kiln_buf_addstr(&h, cmd->kind == FE_CMD_ENV ? "ENV" : "LABEL");
	for (size_t i = 0; i < kv.n; i += 2) {
		if (cmd->kind == FE_CMD_ENV) {
			if (!*kv.v[i])
				return cmd_err(cv, cmd, err, "ENV names can not be blank");
			fe_vars_set(&st->img.env, kv.v[i], kv.v[i + 1]);
			image_env_changed(&st->img);
			fe_vars_set(&st->img.cfg_env, kv.v[i], kv.v[i + 1]);
		} else {
			if (!*kv.v[i])
				return cmd_err(cv, cmd, err, "LABEL names can not be blank");
			json_t *labels = json_object_get(st->img.config, "Labels");
			if (!labels)
				json_object_set_new_nocheck(st->img.config, "Labels",
				                            labels = json_object());
			json_object_set_new(labels, kv.v[i], jstr(kv.v[i + 1]));
		}
		buf_cat(&h, " ", kv.v[i], "=", kv.v[i + 1], NULL);
	}
	history_add(&st->img, h.buf, true);
	return 0;
}

static bool
is_platform_arg(const char *k)
{
	return in_list(platform_args, KILN_ARRAY_SIZE(platform_args), k);
}

static int
do_arg(struct cv *cv, struct cv_stage *st, struct fe_cmd *cmd, struct kiln_err *err)
{
	_cleanup_strv_ struct kiln_strv hist = KILN_STRV_INIT;
	for (size_t i = 0; i < cmd->kv.nkvs; i++) {
		const struct fe_kv *a = &cmd->kv.kvs[i];
		_cleanup_free_ char *value = NULL;
		const char *given =
		        is_platform_arg(a->key) ? NULL : fe_vars_get(&cv->build_args, a->key);
		if (given) {
			value = kiln_xstrdup(given);
		} else if (a->value) {
			int r = expand(cv, st, cmd, a->value, &value, err);
			if (r < 0)
				return r;
		} else {
			/* `ARG name` in a stage takes the global ARG's value. */
			const char *g = fe_vars_get(&cv->global, a->key);
			value = xstrdup_or_null(g);
		}
		if (value) {
			fe_vars_set(&st->img.env, a->key, value);
			image_env_changed(&st->img);
			fe_vars_set(&st->img.args, a->key, value);
			kiln_strv_pushf(&hist, "%s=%s", a->key, value);
		} else {
			kiln_strv_push(&hist, a->key);
		}
	}
	_cleanup_buf_ struct kiln_buf h = KILN_BUF_INIT;
	join_history(&h, "ARG", hist.v, hist.n);
	history_add(&st->img, h.buf, true);
	return 0;
}

static json_t *
strv_json(char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, jstr(v[i]));
	return a;
}

/* CMD/ENTRYPOINT/RUN/HEALTHCHECK words: exec form as written, shell form via SHELL. */
/* The argv a command line runs: exec form as written, shell form via the SHELL. */
static void
cmdline_argv(struct cv_stage *st, const struct fe_cmdline *cl, struct kiln_strv *argv)
{
	if (!cl->shell_form) {
		for (size_t i = 0; i < cl->argc; i++)
			kiln_strv_push(argv, cl->argv[i]);
		return;
	}
	if (st->img.shell.n) {
		for (size_t i = 0; i < st->img.shell.n; i++)
			kiln_strv_push(argv, st->img.shell.v[i]);
	} else {
		kiln_strv_push(argv, "/bin/sh");
		kiln_strv_push(argv, "-c");
	}
	struct kiln_buf joined = KILN_BUF_INIT;
	for (size_t i = 0; i < cl->argc; i++) {
		if (i)
			kiln_buf_addch(&joined, ' ');
		kiln_buf_addstr(&joined, cl->argv[i]);
	}
	kiln_strv_push_take(argv, kiln_buf_detach(&joined, NULL));
}

static json_t *
cmdline_json(struct cv_stage *st, const struct fe_cmdline *cl)
{
	_cleanup_strv_ struct kiln_strv argv = KILN_STRV_INIT;
	cmdline_argv(st, cl, &argv);
	return strv_json(argv.v, argv.n);
}

static void
history_json(struct cv_image *img, const char *word, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	_cleanup_free_ char *h = kiln_xasprintf("%s %s", word, s);
	json_free_t jfree; /* jansson's allocator, not always malloc's (see cmd/plan.c) */
	json_get_alloc_funcs(NULL, &jfree);
	jfree(s);
	history_add(img, h, true);
}

static int
do_cmd_entrypoint(struct cv *cv, struct cv_stage *st, struct fe_cmd *cmd, struct kiln_err *err)
{
	json_t *v = cmdline_json(st, &cmd->cmdline);
	if (cmd->kind == FE_CMD_CMD) {
		json_object_set_nocheck(st->img.config, "Cmd", v);
		st->img.cmd_set = true;
		history_json(&st->img, "CMD", v);
	} else {
		json_object_set_nocheck(st->img.config, "Entrypoint", v);
		/* ENTRYPOINT drops an inherited CMD unless this stage set one. */
		if (!st->img.cmd_set)
			json_object_set_new_nocheck(st->img.config, "Cmd", json_null());
		history_json(&st->img, "ENTRYPOINT", v);
	}
	json_decref(v);
	return 0;
}

static int
do_shell(struct cv *cv, struct cv_stage *st, struct fe_cmd *cmd, struct kiln_err *err)
{
	if (cmd->cmdline.argc == 0)
		return cmd_err(cv, cmd, err, "SHELL requires at least one argument");
	kiln_strv_release(&st->img.shell);
	for (size_t i = 0; i < cmd->cmdline.argc; i++)
		kiln_strv_push(&st->img.shell, cmd->cmdline.argv[i]);
	json_t *v = strv_json(st->img.shell.v, st->img.shell.n);
	history_json(&st->img, "SHELL", v);
	json_decref(v);
	return 0;
}

static int
parse_port(const char *s, uint64_t *ret)
{
	return kiln_parse_u64(s, ret) < 0 || *ret > 65535 ? -EINVAL : 0;
}

static int
do_expose(struct cv *cv, struct cv_stage *st, struct fe_cmd *cmd, struct kiln_err *err)
{
	_cleanup_strv_ struct kiln_strv ports = KILN_STRV_INIT;
	for (size_t i = 0; i < cmd->list.nwords; i++) {
		int r = expand_split(cv, st, cmd, cmd->list.words[i], &ports, err);
		if (r < 0)
			return r;
	}
	json_t *exposed = json_object_get(st->img.config, "ExposedPorts");
	if (!exposed)
		json_object_set_new_nocheck(st->img.config, "ExposedPorts",
		                            exposed = json_object());
	_cleanup_buf_ struct kiln_buf h = KILN_BUF_INIT;
	kiln_buf_addstr(&h, "EXPOSE");
	for (size_t i = 0; i < ports.n; i++) {
		_cleanup_free_ char *spec = kiln_xstrdup(ports.v[i]);
		char *slash = strchr(spec, '/');
		const char *proto = "tcp";
		if (slash) {
			*slash = '\0';
			proto = slash + 1;
			for (char *c = slash + 1; *c; c++)
				*c = tolower((unsigned char)*c);
			if (!kiln_str_eq(proto, "tcp") && !kiln_str_eq(proto, "udp") &&
			    !kiln_str_eq(proto, "sctp"))
				return cmd_err(cv, cmd, err, "EXPOSE %s: invalid proto \"%s\"",
				               ports.v[i], proto);
		}
		/* An "ip:" prefix is docker-run syntax; EXPOSE takes the container port. */
		char *port = strrchr(spec, ':') ? strrchr(spec, ':') + 1 : spec;
		char *dash = strchr(port, '-');
		uint64_t lo, hi;
		if (dash)
			*dash = '\0';
		if (parse_port(port, &lo) < 0 || (dash && parse_port(dash + 1, &hi) < 0))
			return cmd_err(cv, cmd, err, "EXPOSE %s: invalid port", ports.v[i]);
		if (!dash)
			hi = lo;
		if (hi < lo)
			return cmd_err(cv, cmd, err, "EXPOSE %s: invalid port range", ports.v[i]);
		for (uint64_t p = lo; p <= hi; p++) {
			char key[32];
			snprintf(key, sizeof(key), "%u/%s", (unsigned)p, proto);
			json_object_set_new(exposed, key, json_object());
			kiln_buf_addf(&h, " %s", key);
		}
	}
	history_add(&st->img, h.buf, true);
	return 0;
}

static int
do_volume(struct cv *cv, struct cv_stage *st, struct fe_cmd *cmd, struct kiln_err *err)
{
	json_t *vols = json_object_get(st->img.config, "Volumes");
	if (!vols)
		json_object_set_new_nocheck(st->img.config, "Volumes", vols = json_object());
	_cleanup_buf_ struct kiln_buf h = KILN_BUF_INIT;
	kiln_buf_addstr(&h, "VOLUME");
	for (size_t i = 0; i < cmd->list.nwords; i++) {
		_cleanup_free_ char *v = NULL;
		int r = expand(cv, st, cmd, cmd->list.words[i], &v, err);
		if (r < 0)
			return r;
		if (!*v)
			return cmd_err(cv, cmd, err, "VOLUME specified can not be an empty string");
		json_object_set_new(vols, v, json_object());
		kiln_buf_addf(&h, " %s", v);
	}
	history_add(&st->img, h.buf, true);
	return 0;
}

static int
do_value(struct cv *cv, struct cv_stage *st, struct fe_cmd *cmd, struct kiln_err *err)
{
	_cleanup_free_ char *v = NULL;
	if (cmd->kind == FE_CMD_MAINTAINER) {
		v = kiln_xstrdup(cmd->value);
	} else {
		int r = expand(cv, st, cmd, cmd->value, &v, err);
		if (r < 0)
			return r;
	}
	_cleanup_free_ char *h = kiln_xasprintf("%s %s", cmd_name(cmd), v);
	switch (cmd->kind) {
	case FE_CMD_USER:
		if (!*v)
			return cmd_err(cv, cmd, err, "USER requires a value");
		free(st->img.user);
		st->img.user = TAKE_PTR(v);
		break;
	case FE_CMD_STOPSIGNAL: {
		const char *s = v;
		if (kiln_str_has_prefix(s, "SIG"))
			s += 3;
		if (!*s)
			return cmd_err(cv, cmd, err, "STOPSIGNAL: invalid signal \"%s\"", v);
		for (const char *c = s; *c; c++)
			if (!isalnum((unsigned char)*c) && *c != '+' && *c != '-')
				return cmd_err(cv, cmd, err, "STOPSIGNAL: invalid signal \"%s\"",
				               v);
		json_object_set_new_nocheck(st->img.config, "StopSignal", jstr(v));
		break;
	}
	case FE_CMD_MAINTAINER:
		free(st->img.author);
		st->img.author = TAKE_PTR(v);
		break;
	default:
		abort();
	}
	history_add(&st->img, h, true);
	return 0;
}

static int
do_healthcheck(struct cv *cv, struct cv_stage *st, struct fe_cmd *cmd, struct kiln_err *err)
{
	json_t *hc = json_object();
	json_t *test = json_array();
	if (cmd->healthcheck.none) {
		json_array_append_new(test, jstr("NONE"));
	} else {
		const struct fe_cmdline *t = &cmd->healthcheck.test;
		if (t->shell_form) {
			_cleanup_buf_ struct kiln_buf joined = KILN_BUF_INIT;
			for (size_t i = 0; i < t->argc; i++) {
				if (i)
					kiln_buf_addch(&joined, ' ');
				kiln_buf_addstr(&joined, t->argv[i]);
			}
			json_array_append_new(test, jstr("CMD-SHELL"));
			json_array_append_new(test, jstr(joined.buf));
		} else {
			json_array_append_new(test, jstr("CMD"));
			for (size_t i = 0; i < t->argc; i++)
				json_array_append_new(test, jstr(t->argv[i]));
		}
	}
	json_object_set_new_nocheck(hc, "Test", test);
	if (cmd->healthcheck.interval)
		json_object_set_new_nocheck(hc, "Interval",
		                            json_integer(cmd->healthcheck.interval));
	if (cmd->healthcheck.timeout)
		json_object_set_new_nocheck(hc, "Timeout", json_integer(cmd->healthcheck.timeout));
	if (cmd->healthcheck.start_period)
		json_object_set_new_nocheck(hc, "StartPeriod",
		                            json_integer(cmd->healthcheck.start_period));
	if (cmd->healthcheck.start_interval)
		json_object_set_new_nocheck(hc, "StartInterval",
		                            json_integer(cmd->healthcheck.start_interval));
	if (cmd->healthcheck.retries >= 0 && !cmd->healthcheck.none)
		json_object_set_new_nocheck(hc, "Retries", json_integer(cmd->healthcheck.retries));
	history_json(&st->img, "HEALTHCHECK", hc);
	json_object_set_new_nocheck(st->img.config, "Healthcheck", hc);
	return 0;
}

static int
do_onbuild(struct cv *cv, struct cv_stage *st, struct fe_cmd *cmd, struct kiln_err *err)
{
	json_t *ob = json_object_get(st->img.config, "OnBuild");
	if (!ob)
		json_object_set_new_nocheck(st->img.config, "OnBuild", ob = json_array());
	json_array_append_new(ob, jstr(cmd->onbuild.expression));
	KILN_GROW(st->img.triggers, st->img.atriggers, st->img.ntriggers + 1);
	st->img.triggers[st->img.ntriggers++] = cmd->onbuild.cmd;
	_cleanup_free_ char *h = kiln_xasprintf("ONBUILD %s", cmd->onbuild.expression);
	history_add(&st->img, h, true);
	return 0;
}

/* ---- WORKDIR ---- */

/* A path as the stage sees it: absolute as written, else below the working directory. */
static char *
resolve_dir(struct cv_stage *st, const char *p)
{
	if (p[0] == '/')
		return kiln_path_clean(p);
	/* Without a WORKDIR of the Dockerfile: the base image's (BuildKit knows it). */
	return kiln_path_join(st->img.workdir        ? st->img.workdir
	                      : st->img.base_workdir ? st->img.base_workdir
	                                             : "/",
	                      p);
}

static json_t *
chown_json(const char *spec)
{
	json_t *o = json_object();
	const char *colon = strchr(spec, ':');
	if (colon) {
		json_object_set_new_nocheck(o, "user", json_stringn(spec, colon - spec));
		json_object_set_new_nocheck(o, "group", jstr(colon + 1));
	} else {
		json_object_set_new_nocheck(o, "user", jstr(spec));
	}
	return o;
}

static int
do_workdir(struct cv *cv, struct cv_stage *st, struct fe_cmd *cmd, struct kiln_err *err)
{
	_cleanup_free_ char *v = NULL;
	int r = expand(cv, st, cmd, cmd->value, &v, err);
	if (r < 0)
		return r;
	if (!*v)
		return cmd_err(cv, cmd, err, "WORKDIR requires a path");
	char *wd = resolve_dir(st, v);
	free(st->img.workdir);
	st->img.workdir = wd;
	_cleanup_buf_ struct kiln_buf h = KILN_BUF_INIT;
	buf_cat(&h, "WORKDIR ", wd, NULL);
	history_add(&st->img, h.buf, false);
	if (cv->replay) {
		st->vertex = cv->replay;
		return 0;
	}
	/* WORKDIR creates the directory (owned by USER), as BuildKit does. */
	json_t *mk = jobj_str("action", "mkdir");
	jset_str(mk, "path", wd);
	json_object_set_new_nocheck(mk, "mode", json_integer(0755));
	json_object_set_new_nocheck(mk, "parents", json_true());
	if (st->img.user)
		json_object_set_new_nocheck(mk, "chown", chown_json(st->img.user));
	json_t *def = jactions(mk);
	st->vertex = add_vertex(cv, st, cmd, SV_OP_FILE, def, &st->vertex, 1, NULL);
	return 0;
}

/* ---- RUN ---- */

/* Is `s` exactly one heredoc marker (`<<EOF`, `<<-"EOF"`, `3<<EOF`) naming `name`? */
static bool
heredoc_marker_only(const char *s, const char *name)
{
	while (isspace((unsigned char)*s))
		s++;
	while (isdigit((unsigned char)*s))
		s++;
	if (strncmp(s, "<<", 2) != 0)
		return false;
	s += 2;
	if (*s == '-')
		s++;
	while (isspace((unsigned char)*s))
		s++;
	char q = 0;
	if (*s == '"' || *s == '\'')
		q = *s++;
	size_t n = strlen(name);
	if (strncmp(s, name, n) != 0)
		return false;
	s += n;
	if (q && *s++ != q)
		return false;
	while (isspace((unsigned char)*s))
		s++;
	return *s == '\0';
}

static const char *
sharing_name(enum fe_mount_sharing s)
{
	switch (s) {
	case FE_SHARING_PRIVATE:
		return "private";
	case FE_SHARING_LOCKED:
		return "locked";
	default:
		return "shared";
	}
}

static void
mount_owner(json_t *m, const struct fe_mount *mt, uint32_t mode)
{
	json_object_set_new_nocheck(m, "mode", json_integer(mt->has_mode ? mt->mode : mode));
	json_object_set_new_nocheck(m, "uid", json_integer(mt->has_uid ? mt->uid : 0));
	json_object_set_new_nocheck(m, "gid", json_integer(mt->has_gid ? mt->gid : 0));
}

static int
run_mount(struct cv *cv, struct cv_stage *st, const struct fe_cmd *cmd, const struct fe_mount *mt,
          size_t nth, struct inputs *in, json_t *mounts, struct kiln_err *err)
{
	json_t *m = json_object();
	json_array_append_new(mounts, m);
	_cleanup_free_ char *target = NULL;
	if (mt->target)
		target = resolve_dir(st, mt->target);

	switch (mt->type) {
	case FE_MOUNT_BIND:
	case FE_MOUNT_CACHE: {
		bool bind = mt->type == FE_MOUNT_BIND;
		if (!target)
			return cmd_err(cv, cmd, err, "RUN --mount=type=%s: target is required",
			               bind ? "bind" : "cache");
		json_object_set_new_nocheck(m, "type", jstr(bind ? "bind" : "cache"));
		json_object_set_new_nocheck(m, "target", jstr(target));
		struct sv_vertex *src = NULL;
		_cleanup_free_ char *source = NULL;
		if (mt->from) {
			int r = resolve_from(cv, st, cmd, mt->from, &src, err);
			if (r < 0)
				return r;
			source = kiln_path_join("/", mt->source ? mt->source : "/");
		} else if (bind) {
			/* A bind of the context transfers only the mounted path. */
			_cleanup_free_ char *rel = context_path(mt->source ? mt->source : ".");
			char *paths[] = {rel};
			src = context_vertex(cv, st, cmd, paths, 1);
			source = kiln_path_join("/", rel);
		}
		if (src) {
			json_object_set_new_nocheck(m, "input", json_integer(inputs_add(in, src)));
			json_object_set_new_nocheck(m, "source", jstr(source));
		}
		json_object_set_new_nocheck(m, "readonly", json_boolean(mt->readonly));
		if (!bind) {
			json_object_set_new_nocheck(m, "id", jstr(mt->id ? mt->id : target));
			json_object_set_new_nocheck(m, "sharing", jstr(sharing_name(mt->sharing)));
			mount_owner(m, mt, 0755);
		}
		break;
	}
	case FE_MOUNT_TMPFS:
		if (!target)
			return cmd_err(cv, cmd, err, "RUN --mount=type=tmpfs: target is required");
		json_object_set_new_nocheck(m, "type", jstr("tmpfs"));
		json_object_set_new_nocheck(m, "target", jstr(target));
		if (mt->size)
			json_object_set_new_nocheck(m, "size", json_integer((json_int_t)mt->size));
		break;
	case FE_MOUNT_SECRET: {
		json_object_set_new_nocheck(m, "type", jstr("secret"));
		_cleanup_free_ char *id = NULL;
		if (mt->id)
			id = kiln_xstrdup(mt->id);
		else if (target)
			id = kiln_xstrdup(strrchr(target, '/') + 1);
		if (!id || !*id)
			return cmd_err(cv, cmd, err,
			               "RUN --mount=type=secret: id or target is required");
		json_object_set_new_nocheck(m, "id", jstr(id));
		if (target)
			json_object_set_new_nocheck(m, "target", jstr(target));
		else if (!mt->env)
			json_object_set_new_nocheck(
			        m, "target",
			        json_string_nocheck(
			                kiln_arena_printf(cv->ast->arena, "/run/secrets/%s", id)));
		if (mt->env)
			json_object_set_new_nocheck(m, "env", jstr(mt->env));
		json_object_set_new_nocheck(m, "required", json_boolean(mt->required));
		mount_owner(m, mt, 0400);
		break;
	}
	case FE_MOUNT_SSH:
		json_object_set_new_nocheck(m, "type", jstr("ssh"));
		json_object_set_new_nocheck(m, "id", jstr(mt->id ? mt->id : "default"));
		if (target)
			json_object_set_new_nocheck(m, "target", jstr(target));
		else
			json_object_set_new_nocheck(
			        m, "target",
			        json_string_nocheck(kiln_arena_printf(
			                cv->ast->arena, "/run/buildkit/ssh_agent.%zu", nth)));
		json_object_set_new_nocheck(m, "required", json_boolean(mt->required));
		mount_owner(m, mt, 0600);
		break;
	}
	return 0;
}

static bool
str_in_vars(const struct fe_vars *v, const char *key)
{
	return fe_vars_get(v, key) != NULL;
}

/* History as BuildKit writes it: "RUN |N k=v ... argv # buildkit". */
static void
run_history(struct cv_stage *st, const struct kiln_strv *flatp)
{
	_cleanup_buf_ struct kiln_buf h = KILN_BUF_INIT;
	kiln_buf_addstr(&h, "RUN ");
	if (st->img.args.kv.n) {
		kiln_buf_addch(&h, '|');
		buf_num(&h, st->img.args.kv.n);
		for (size_t i = 0; i < st->img.args.kv.n; i++)
			buf_cat(&h, " ", st->img.args.kv.v[i], NULL);
		kiln_buf_addch(&h, ' ');
	}
	for (size_t i = 0; i < flatp->n; i++)
		buf_cat(&h, i ? " " : "", flatp->v[i], NULL);
	kiln_buf_addstr(&h, " # buildkit");
	history_add(&st->img, h.buf, false);
}

static int
do_run(struct cv *cv, struct cv_stage *st, struct fe_cmd *cmd, struct kiln_err *err)
{
	struct inputs in = {.n = 0};
	inputs_add(&in, st->vertex);
	int r;
	_cleanup_json_ json_t *mounts = json_array();
	_cleanup_json_ json_t *args = NULL;
	_cleanup_strv_ struct kiln_strv flat = KILN_STRV_INIT;

	struct fe_cmdline cl = cmd->run.cmd;
	const char *one[1];
	if (cmd->run.nheredocs) {
		if (!cl.shell_form || cl.argc != 1)
			return cmd_err(cv, cmd, err, "RUN: heredocs need the shell form");
		const struct fe_heredoc *h = &cmd->run.heredocs[0];
		if (cmd->run.nheredocs == 1 && heredoc_marker_only(cl.argv[0], h->name)) {
			if (kiln_str_has_prefix(h->content, "#!") && cv->replay) {
				one[0] =
				        kiln_arena_printf(cv->ast->arena, "/dev/pipes/%s", h->name);
			} else if (kiln_str_has_prefix(h->content, "#!")) {
				/* A script with its interpreter: mount it and run the file. */
				_cleanup_free_ char *path = kiln_path_join("/", h->name);
				json_t *mk =
				        json_pack("{s:s, s:s, s:i, s:s}", "action", "mkfile",
				                  "path", path, "mode", 0755, "data", h->content);
				json_t *fdef = json_pack("{s:[o]}", "actions", mk);
				struct sv_vertex *scratch = scratch_vertex(cv, st);
				struct sv_vertex *script =
				        add_vertex(cv, st, cmd, SV_OP_FILE, fdef, &scratch, 1,
				                   "[internal] preparing inline document");
				json_array_append_new(mounts,
				                      json_pack("{s:s, s:s, s:i, s:s, s:b}", "type",
				                                "bind", "target", "/dev/pipes/",
				                                "input", inputs_add(&in, script),
				                                "source", "/", "readonly", 1));
				one[0] =
				        kiln_arena_printf(cv->ast->arena, "/dev/pipes/%s", h->name);
			} else {
				one[0] = h->content;
			}
		} else {
			/* The shell reads the heredocs itself: hand it the text as written. */
			struct kiln_buf full = KILN_BUF_INIT;
			kiln_buf_addstr(&full, cl.argv[0]);
			for (size_t i = 0; i < cmd->run.nheredocs; i++)
				kiln_buf_addf(&full, "\n%s%s", cmd->run.heredocs[i].content,
				              cmd->run.heredocs[i].name);
			one[0] = kiln_arena_strdup(cv->ast->arena, full.buf);
			kiln_buf_release(&full);
		}
		cl.argv = one;
		cl.argc = 1;
	}
	cmdline_argv(st, &cl, &flat);
	if (cv->replay) {
		st->vertex = cv->replay;
		run_history(st, &flat);
		return 0;
	}
	args = strv_json(flat.v, flat.n);

	/* --mount values expand (BuildKit expands each field); re-parse those that use $. */
	const char **mount_specs = NULL;
	size_t nspecs = 0;
	if (cmd->node) {
		mount_specs =
		        kiln_arena_array(cv->ast->arena, cmd->node->nflags + 1, sizeof(char *));
		for (size_t i = 0; i < cmd->node->nflags; i++)
			if (kiln_str_has_prefix(cmd->node->flags[i], "--mount="))
				mount_specs[nspecs++] = cmd->node->flags[i] + 8;
	}
	if (cmd->run.nmounts > 32)
		return cmd_err(cv, cmd, err, "RUN: too many --mount flags");
	for (size_t i = 0; i < cmd->run.nmounts; i++) {
		struct fe_mount mt = cmd->run.mounts[i];
		if (nspecs == cmd->run.nmounts && strchr(mount_specs[i], '$')) {
			_cleanup_free_ char *spec = NULL;
			int r = expand(cv, st, cmd, mount_specs[i], &spec, err);
			if (r < 0)
				return r;
			r = fe_mount_parse(cv->ast->arena, spec, &mt, err);
			if (r < 0)
				return kiln_err_locate(err, cv->file, cmd->start_line,
				                       cmd->end_line);
		}
		int r = run_mount(cv, st, cmd, &mt, i, &in, mounts, err);
		if (r < 0)
			return r;
	}

	_cleanup_free_ char *network = NULL, *security = NULL;
	r = expand(cv, st, cmd, cmd->run.network ? cmd->run.network : "default", &network, err);
	if (r < 0)
		return r;
	if (!kiln_str_eq(network, "default") && !kiln_str_eq(network, "none") &&
	    !kiln_str_eq(network, "host"))
		return cmd_err(cv, cmd, err, "RUN: unsupported network mode \"%s\"", network);
	r = expand(cv, st, cmd, cmd->run.security ? cmd->run.security : "sandbox", &security, err);
	if (r < 0)
		return r;
	if (!kiln_str_eq(security, "sandbox") && !kiln_str_eq(security, "insecure"))
		return cmd_err(cv, cmd, err, "RUN: unsupported security mode \"%s\"", security);

	/* The environment: ENV and ARG values in order (BuildKit's state env). */
	if (!st->img.env_json || st->img.env_stale) {
		/* ENV and ARG append or replace in place, so most entries are where the last
		 * array had them: share those strings rather than copy every entry for every
		 * RUN after each ENV (quadratic in allocations on long stages). */
		json_t *prev = st->img.env_json;
		json_t *env = json_array();
		size_t n = st->img.env.kv.n;
		bool add_path = !fe_vars_get(&st->img.env, "PATH");
		for (size_t i = 0; i < n + add_path; i++) {
			const char *kv = i < n ? st->img.env.kv.v[i] : "PATH=" DEFAULT_PATH;
			json_t *old = json_array_get(prev, i);
			if (old && strcmp(json_string_value(old), kv) == 0)
				json_array_append(env, old);
			else
				json_array_append_new(env, jstr(kv));
		}
		st->img.env_default_path = add_path && st->img.base != NULL;
		json_decref(prev);
		st->img.env_json = env;
		st->img.env_stale = false;
	}
	bool default_path = st->img.env_default_path;
	json_t *def = json_object();
	json_object_set_nocheck(def, "args", args);
	json_object_set_nocheck(def, "env",
	                        st->img.env_json); /* shared, never changed once built */
	jset_str(def, "cwd",
	         st->img.workdir        ? st->img.workdir
	         : st->img.base_workdir ? st->img.base_workdir
	                                : "/");
	if (!st->img.workdir && !st->img.base_workdir && st->img.base)
		json_object_set_new_nocheck(def, "default_cwd", json_true());
	jset_str(def, "user", st->img.user ? st->img.user : "");
	jset_str(def, "network", network);
	jset_str(def, "security", security);
	json_object_set_nocheck(def, "mounts", mounts);
	if (st->img.base)
		json_object_set_new_nocheck(def, "base_env", jstr(st->img.base));
	if (default_path)
		json_object_set_new_nocheck(def, "default_path", json_true());
	json_t *proxy = NULL;
	for (size_t i = 0; i < cv->proxy.kv.n; i++) {
		const char *kv = cv->proxy.kv.v[i];
		_cleanup_free_ char *k = kiln_xstrndup(kv, strcspn(kv, "="));
		if (str_in_vars(&st->img.env, k))
			continue;
		if (!proxy)
			proxy = json_array();
		json_array_append_new(proxy, jstr(kv));
	}
	if (proxy)
		json_object_set_new_nocheck(def, "proxy_env", proxy);

	st->vertex = add_vertex(cv, st, cmd, SV_OP_EXEC, def, in.v, in.n, NULL);

	run_history(st, &flat);
	return 0;
}

/* ---- COPY / ADD ---- */

static bool
is_url(const char *s)
{
	return kiln_str_has_prefix(s, "http://") || kiln_str_has_prefix(s, "https://");
}

static bool
is_git(const char *s)
{
	return kiln_str_has_prefix(s, "git@") || kiln_str_has_prefix(s, "git://") ||
	       (is_url(s) && (kiln_str_has_suffix(s, ".git") || strstr(s, ".git#")));
}

/* The file name an URL download gets: its last path segment, "index.html" for none. */
static char *
url_filename(const char *url)
{
	const char *p = strstr(url, "://") + 3;
	size_t end = strcspn(p, "?#");
	const char *slash = memrchr(p, '/', end);
	if (!slash || (size_t)(slash - p) + 1 >= end)
		return kiln_xstrdup("index.html");
	return kiln_xstrndup(slash + 1, end - (slash - p) - 1);
}

static int
parse_chmod(struct cv *cv, const struct fe_cmd *cmd, const char *s, json_t **ret,
            struct kiln_err *err)
{
	uint64_t mode = 0;
	bool octal = *s != '\0';
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '7') {
			octal = false;
			break;
		}
		mode = mode * 8 + (uint64_t)(*c - '0');
		if (mode > 07777)
			return cmd_err(cv, cmd, err, "%s --chmod=%s: invalid mode", cmd_name(cmd),
			               s);
	}
	if (octal) {
		*ret = json_integer((json_int_t)mode);
		return 0;
	}
	/* Symbolic modes (u+x,g-w) are applied by the op to each file's own mode. */
	for (const char *c = s; *c; c++)
		if (!strchr("ugoa+-=rwxXst,", *c) || !*s)
			return cmd_err(cv, cmd, err, "%s --chmod=%s: invalid mode", cmd_name(cmd),
			               s);
	*ret = jstr(s);
	return 0;
}

struct copy_opts {
	const char *dest, *chown;
	json_t *mode, *excludes;
	bool add;
	const struct fe_cmd *cmd;
};

static json_t *
copy_action(const struct copy_opts *co, int input, const char *src, bool wildcard, bool url)
{
	json_t *a = jobj_str("action", "copy");
	json_object_set_new_nocheck(a, "input", json_integer(input));
	jset_str(a, "src", src);
	jset_str(a, "dest", co->dest);
	json_object_set_new_nocheck(a, "follow_symlinks", json_true());
	json_object_set_new_nocheck(a, "dir_contents_only", json_true());
	json_object_set_new_nocheck(a, "allow_wildcard", json_boolean(wildcard));
	json_object_set_new_nocheck(a, "allow_empty_wildcard", json_boolean(wildcard));
	json_object_set_new_nocheck(a, "create_dest_path", json_true());
	if (co->chown && *co->chown)
		json_object_set_new_nocheck(a, "chown", chown_json(co->chown));
	if (co->mode)
		json_object_set_nocheck(a, "mode", co->mode);
	/* ADD unpacks local archives unless --unpack=false, URLs only with --unpack=true. */
	if (co->add)
		json_object_set_new_nocheck(
		        a, "unpack",
		        json_boolean(url ? co->cmd->copy.unpack == 1 : co->cmd->copy.unpack != 0));
	if (co->cmd->copy.link)
		json_object_set_new_nocheck(a, "link", json_true());
	if (co->cmd->copy.parents)
		json_object_set_new_nocheck(a, "parents", json_true());
	if (co->excludes)
		json_object_set_nocheck(a, "exclude", co->excludes);
	if (co->add && co->cmd->copy.keep_git_dir)
		json_object_set_new_nocheck(a, "keep_git_dir", json_true());
	return a;
}

/* BuildKit's --chown: "root" and numbers are ids, anything else a name to look up. */
static bool
link_id(const char *s, size_t len)
{
	if (len == 4 && strncmp(s, "root", 4) == 0)
		return true;
	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/*
 * --link --chown: the copy is made on an empty root, which has no /etc/passwd or
 * /etc/group, so names cannot be looked up. BuildKit fails such a build late ("invalid
 * user index: -1", moby/buildkit#2987) and now refuses it when converting; so does kiln,
 * at the line. "root" is id 0 (BuildKit's parseUID), written as such so the op needs no
 * passwd.
 */
static int
link_chown(struct cv *cv, const struct fe_cmd *cmd, char **chown, struct kiln_err *err)
{
	const char *s = *chown;
	const char *colon = strchr(s, ':');
	size_t ulen = colon ? (size_t)(colon - s) : strlen(s);
	const char *g = colon ? colon + 1 : NULL;
	if ((ulen && !link_id(s, ulen)) || (g && *g && !link_id(g, strlen(g))))
		return cmd_err(cv, cmd, err,
		               "%s --link --chown=%s: user and group names cannot be looked up "
		               "with --link (the copy does not see the stage's /etc/passwd); "
		               "use numeric ids",
		               cmd_name(cmd), s);
	struct kiln_buf b = KILN_BUF_INIT;
	if (ulen == 4 && strncmp(s, "root", 4) == 0)
		kiln_buf_addstr(&b, "0");
	else
		kiln_buf_add(&b, s, ulen);
	if (g) {
		kiln_buf_addch(&b, ':');
		kiln_buf_addstr(&b, kiln_str_eq(g, "root") ? "0" : g);
	}
	free(*chown);
	*chown = kiln_buf_detach(&b, NULL);
	return 0;
}

/*
 * The second half of a --link copy (BuildKit's llb.Merge of [stage, copy on scratch]): a
 * file vertex whose one action merges input 1, the copy, onto input 0, the stage. The
 * copy's vertex does not depend on the stage, so it stays cached when a step below it
 * changes, and the exporter gives the merge the copy's own layer (ops/merge.c).
 */
static struct sv_vertex *
link_merge(struct cv *cv, struct cv_stage *st, const struct fe_cmd *cmd, struct sv_vertex *copy)
{
	struct sv_vertex *in[2] = {st->vertex, copy};
	_cleanup_free_ char *text = kiln_xasprintf(
	        "LINK %s", cmd->node && cmd->node->original ? cmd->node->original : cmd_name(cmd));
	_cleanup_free_ char *desc = step_text(st, st->step, text);
	json_t *def = json_pack("{s:[{s:s, s:i}]}", "actions", "action", "merge", "input", 1);
	return add_vertex(cv, st, cmd, SV_OP_FILE, def, in, 2, desc);
}

static int
do_copy(struct cv *cv, struct cv_stage *st, struct fe_cmd *cmd, struct kiln_err *err)
{
	bool add = cmd->kind == FE_CMD_ADD;
	const char *name = add ? "ADD" : "COPY";
	struct inputs in = {.n = 0};
	/* --link copies onto an empty root, merged onto the stage afterwards (link_merge).
	 * As in BuildKit, not with --chmod: that copy is made on the stage as without --link. */
	bool link = cmd->copy.link && !(cmd->copy.chmod && *cmd->copy.chmod);
	inputs_add(&in, link ? scratch_vertex(cv, st) : st->vertex);
	int r;

	_cleanup_free_ char *from = NULL, *chown = NULL, *chmod = NULL, *checksum = NULL;
	if (cmd->copy.from && (r = expand(cv, st, cmd, cmd->copy.from, &from, err)) < 0)
		return r;
	if (cmd->copy.chown && (r = expand(cv, st, cmd, cmd->copy.chown, &chown, err)) < 0)
		return r;
	if (cmd->copy.chmod && (r = expand(cv, st, cmd, cmd->copy.chmod, &chmod, err)) < 0)
		return r;
	if (cmd->copy.checksum && (r = expand(cv, st, cmd, cmd->copy.checksum, &checksum, err)) < 0)
		return r;
	if (from && add)
		return cmd_err(cv, cmd, err, "ADD does not support --from; use COPY --from");
	_cleanup_json_ json_t *mode = NULL;
	if (chmod && *chmod && (r = parse_chmod(cv, cmd, chmod, &mode, err)) < 0)
		return r;
	if (link && chown && *chown && (r = link_chown(cv, cmd, &chown, err)) < 0)
		return r;

	_cleanup_free_ char *rawdest = NULL;
	if ((r = expand(cv, st, cmd, cmd->copy.dest, &rawdest, err)) < 0)
		return r;
	size_t nsrc = cmd->copy.nsources;
	size_t nall = nsrc + cmd->copy.nheredocs;
	if (nall > 32)
		return cmd_err(cv, cmd, err, "%s: too many sources", name);
	size_t dl = strlen(rawdest);
	bool dest_dir = dl == 0 || rawdest[dl - 1] == '/' || kiln_str_eq(rawdest, ".") ||
	                kiln_str_has_suffix(rawdest, "/.");
	if (nall > 1 && !dest_dir)
		return cmd_err(cv, cmd, err,
		               "When using %s with more than one source file, the destination must "
		               "be a directory and end with a /",
		               name);
	_cleanup_free_ char *dest = resolve_dir(st, rawdest);
	if (dest_dir && !kiln_str_eq(dest, "/")) {
		char *d = kiln_xasprintf("%s/", dest);
		free(dest);
		dest = d;
	}

	/* Expand every source first, then gather the context paths into one local source. */
	_cleanup_strv_ struct kiln_strv srcs = KILN_STRV_INIT;
	_cleanup_strv_ struct kiln_strv ctx = KILN_STRV_INIT;
	struct sv_vertex *from_v = NULL;
	if (from && (r = resolve_from(cv, st, cmd, from, &from_v, err)) < 0)
		return r;
	for (size_t i = 0; i < nsrc; i++) {
		const char *raw = cmd->copy.sources[i];
		char *s;
		if ((r = expand(cv, st, cmd, raw, &s, err)) < 0)
			return r;
		kiln_strv_push_take(&srcs, s);
		if (add && is_git(s))
			return cmd_err(cv, cmd, err, "ADD %s: git sources are not supported", s);
		if (add && is_url(s))
			continue;
		if (checksum)
			return cmd_err(
			        cv, cmd, err,
			        "ADD --checksum=%s: checksum can't be specified for non-HTTP(S) "
			        "sources",
			        checksum);
		if (!from_v)
			kiln_strv_push_take(&ctx, context_path(s));
	}
	if (checksum && !kiln_digest_valid(checksum))
		return cmd_err(cv, cmd, err, "ADD --checksum=%s: want sha256:<64 hex digits>",
		               checksum);
	if (cv->replay) {
		_cleanup_buf_ struct kiln_buf h = KILN_BUF_INIT;
		kiln_buf_addstr(&h, name);
		for (size_t i = 0; i < srcs.n; i++)
			buf_cat(&h, " ", srcs.v[i], NULL);
		for (size_t i = 0; i < cmd->copy.nheredocs; i++)
			buf_cat(&h, " <<", cmd->copy.heredocs[i].name, NULL);
		buf_cat(&h, " ", dest, " # buildkit", NULL);
		history_add(&st->img, h.buf, false);
		st->vertex = cv->replay;
		return 0;
	}
	struct sv_vertex *ctx_v = NULL;
	if (ctx.n)
		ctx_v = context_vertex(cv, st, cmd, ctx.v, ctx.n);

	_cleanup_json_ json_t *excludes = NULL;
	if (cmd->copy.nexcludes) {
		excludes = json_array();
		for (size_t j = 0; j < cmd->copy.nexcludes; j++) {
			char *e;
			if ((r = expand(cv, st, cmd, cmd->copy.excludes[j], &e, err)) < 0)
				return r;
			json_array_append_new(excludes, jstr(e));
			free(e);
		}
	}
	struct copy_opts co = {.dest = dest,
	                       .chown = chown,
	                       .mode = mode,
	                       .excludes = excludes,
	                       .add = add,
	                       .cmd = cmd};
	_cleanup_json_ json_t *actions = json_array();
	_cleanup_buf_ struct kiln_buf h = KILN_BUF_INIT;
	kiln_buf_addf(&h, "%s", name);
	if (from)
		kiln_buf_addf(&h, " --from=%s", from);
	for (size_t i = 0; i < srcs.n; i++) {
		const char *s = srcs.v[i];
		_cleanup_free_ char *src = NULL;
		int input;
		bool url = add && is_url(s);
		if (url) {
			_cleanup_free_ char *fname = url_filename(s);
			json_t *def = json_pack("{s:s, s:s, s:s}", "type", "http", "url", s,
			                        "filename", fname);
			if (checksum)
				json_object_set_new_nocheck(def, "checksum", jstr(checksum));
			struct sv_vertex *hv =
			        add_vertex(cv, st, cmd, SV_OP_SOURCE, def, NULL, 0, s);
			input = inputs_add(&in, hv);
			src = kiln_path_join("/", fname);
		} else {
			input = inputs_add(&in, from_v ? from_v : ctx_v);
			/* --parents keeps a "/./" pivot (the part after it is what is kept under
			 * dest), which cleaning would erase. */
			const char *rel = s;
			while (rel[0] == '/' || (rel[0] == '.' && rel[1] == '/'))
				rel += rel[0] == '/' ? 1 : 2;
			if (cmd->copy.parents && strstr(rel, "/./"))
				src = kiln_xasprintf("/%s", rel);
			else
				src = kiln_path_join("/", s);
		}
		json_array_append_new(actions, copy_action(&co, input, src, !url, url));
		buf_cat(&h, " ", s, NULL);
	}
	for (size_t i = 0; i < cmd->copy.nheredocs; i++) {
		/* An inline file: made on scratch, then copied like any source. */
		const struct fe_heredoc *hd = &cmd->copy.heredocs[i];
		_cleanup_free_ char *data = NULL;
		if (hd->expand) {
			if ((r = expand_heredoc(cv, st, cmd, hd->content, &data, err)) < 0)
				return r;
		} else {
			data = kiln_xstrdup(hd->content);
		}
		_cleanup_free_ char *src = kiln_path_join("/", hd->name);
		json_t *mk = json_pack("{s:s, s:s, s:i, s:s}", "action", "mkfile", "path", src,
		                       "mode", 0644, "data", data);
		struct sv_vertex *scratch = scratch_vertex(cv, st);
		struct sv_vertex *f =
		        add_vertex(cv, st, cmd, SV_OP_FILE, json_pack("{s:[o]}", "actions", mk),
		                   &scratch, 1, "[internal] preparing inline document");
		json_array_append_new(actions,
		                      copy_action(&co, inputs_add(&in, f), src, false, false));
		kiln_buf_addf(&h, " <<%s", hd->name);
	}
	buf_cat(&h, " ", dest, " # buildkit", NULL);
	json_t *def = json_object();
	json_object_set_nocheck(def, "actions", actions);
	struct sv_vertex *fv = add_vertex(cv, st, cmd, SV_OP_FILE, def, in.v, in.n, NULL);
	st->vertex = link ? link_merge(cv, st, cmd, fv) : fv;
	history_add(&st->img, h.buf, false);
	return 0;
}

/* ---- stages ---- */

static int
dispatch_cmd(struct cv *cv, struct cv_stage *st, struct fe_cmd *cmd, struct kiln_err *err)
{
	switch (cmd->kind) {
	case FE_CMD_RUN:
		return do_run(cv, st, cmd, err);
	case FE_CMD_COPY:
	case FE_CMD_ADD:
		return do_copy(cv, st, cmd, err);
	case FE_CMD_ENV:
	case FE_CMD_LABEL:
		return do_env(cv, st, cmd, err);
	case FE_CMD_ARG:
		return do_arg(cv, st, cmd, err);
	case FE_CMD_WORKDIR:
		return do_workdir(cv, st, cmd, err);
	case FE_CMD_CMD:
	case FE_CMD_ENTRYPOINT:
		return do_cmd_entrypoint(cv, st, cmd, err);
	case FE_CMD_SHELL:
		return do_shell(cv, st, cmd, err);
	case FE_CMD_EXPOSE:
		return do_expose(cv, st, cmd, err);
	case FE_CMD_VOLUME:
		return do_volume(cv, st, cmd, err);
	case FE_CMD_USER:
	case FE_CMD_STOPSIGNAL:
	case FE_CMD_MAINTAINER:
		return do_value(cv, st, cmd, err);
	case FE_CMD_HEALTHCHECK:
		return do_healthcheck(cv, st, cmd, err);
	case FE_CMD_ONBUILD:
		return do_onbuild(cv, st, cmd, err);
	case FE_CMD_FROM:
		break;
	}
	return cmd_err(cv, cmd, err, "%s: unexpected here", cmd_name(cmd));
}

/* ---- replay ---- */

/* Can an instruction's vertex be taken from an identical earlier stage? Not when it names
 * another stage or image (--from): what that resolves to, and whether it is a cycle,
 * depends on the stage it is in. */
static bool
cmd_replayable(const struct fe_cmd *cmd)
{
	if (!cmd->node || !cmd->node->original)
		return false;
	if (cmd->kind == FE_CMD_COPY || cmd->kind == FE_CMD_ADD)
		return !cmd->copy.from;
	if (cmd->kind == FE_CMD_RUN) {
		for (size_t i = 0; i < cmd->run.nmounts; i++)
			if (cmd->run.mounts[i].from)
				return false;
		for (size_t i = 0; i < cmd->node->nflags; i++)
			if (strchr(cmd->node->flags[i], '$'))
				return false; /* an expanded --mount could name a stage */
	}
	return true;
}

/* Instructions that change what later instructions lower to (the vertex, the variables,
 * WORKDIR, USER, SHELL). The others only touch the image config, so stages that differ in
 * a LABEL or EXPOSE still replay each other. */
static bool
affects_lowering(const struct fe_cmd *cmd)
{
	switch (cmd->kind) {
	case FE_CMD_RUN:
	case FE_CMD_COPY:
	case FE_CMD_ADD:
	case FE_CMD_WORKDIR:
	case FE_CMD_ENV:
	case FE_CMD_ARG:
	case FE_CMD_USER:
	case FE_CMD_SHELL:
		return true;
	default:
		return false;
	}
}

/* The same instruction text (flags, words and heredoc bodies): with the same state before
 * it, it makes the same vertex. */
static bool
cmd_same(const struct fe_cmd *a, const struct fe_cmd *b)
{
	const struct fe_node *x = a->node, *y = b->node;
	if (a->kind != b->kind || !kiln_str_eq(x->original, y->original) ||
	    x->nheredocs != y->nheredocs)
		return false;
	for (size_t i = 0; i < x->nheredocs; i++) {
		const struct fe_heredoc *p = &x->heredocs[i], *q = &y->heredocs[i];
		if (p->expand != q->expand || p->content_len != q->content_len ||
		    !kiln_str_eq(p->name, q->name) ||
		    memcmp(p->content, q->content, p->content_len) != 0)
			return false;
	}
	return true;
}

static size_t
ptr_hash(const void *p)
{
	uintptr_t v = (uintptr_t)p;
	return (size_t)((v >> 4) * 0x9E3779B97F4A7C15ULL);
}

/*
 * The earlier stage this one can replay: same root vertex (image with platform, or
 * scratch), same platform, and, as both start from a fresh state, the same variables.
 * Registers `st` as the reference for the next stage with its root.
 */
static struct cv_stage *
replay_ref(struct cv *cv, struct cv_stage *st, struct sv_vertex *root)
{
	if (cv->no_replay)
		return NULL;
	size_t mask = cv->nroots - 1;
	size_t b = ptr_hash(root) & mask;
	for (; cv->roots[b]; b = (b + 1) & mask) {
		struct cv_stage *ref = cv->roots[b];
		if (ref->after[0] == root) {
			cv->roots[b] = st;
			return kiln_str_eq(ref->platform_str, st->platform_str) ? ref : NULL;
		}
	}
	cv->roots[b] = st;
	return NULL;
}

static void
image_init_empty(struct cv_image *img)
{
	img->config = json_object();
	img->history = json_array();
}

/* One ONBUILD trigger of a base image, parsed as the instruction it is (ONBUILD's own
 * checks apply), placed on the FROM line for errors and progress. */
static int
parse_trigger(struct cv *cv, const struct fe_cmd *from, const char *base, const char *trigger,
              struct fe_cmd **ret, struct kiln_err *err)
{
	_cleanup_free_ char *text = kiln_xasprintf("ONBUILD %s\n", trigger);
	struct fe_ast *ast = NULL;
	struct fe_cmd *cmd = NULL;
	int r = fe_parse(cv->file, text, strlen(text), &ast, err);
	if (r >= 0) {
		KILN_GROW(cv->trigger_asts, cv->atrigger_asts, cv->ntrigger_asts + 1);
		cv->trigger_asts[cv->ntrigger_asts++] = ast;
		if (ast->nnodes != 1)
			r = kiln_err_invalid(err, "want one instruction");
		else
			r = fe_cmd_parse(ast->arena, cv->file, &ast->nodes[0], &cmd, err);
	}
	if (r < 0) {
		_cleanup_free_ char *msg = kiln_xstrdup(err->msg ? err->msg : "bad trigger");
		kiln_err_release(err);
		return kiln_err_at(err, cv->file, from->start_line, from->end_line,
		                   "FROM %s: ONBUILD trigger \"%s\": %s", base, trigger, msg);
	}
	*ret = cmd->onbuild.cmd;
	(*ret)->start_line = from->start_line;
	(*ret)->end_line = from->end_line;
	return 0;
}

/* What the base image's config tells the plan: its WorkingDir and its ONBUILD triggers,
 * which run right after FROM (BuildKit's dispatchOnBuildTriggers). */
static int
base_config(struct cv *cv, struct cv_stage *st, const struct fe_cmd *from,
            struct fe_cmd ***ret_triggers, size_t *ret_n, struct kiln_err *err)
{
	_cleanup_free_ char *key = kiln_xasprintf("%s\n%s", st->img.base, st->platform_str);
	json_t *doc = NULL;
	size_t at = 0;
	while (at < cv->config_refs.n && !kiln_str_eq(cv->config_refs.v[at], key))
		at++;
	if (at < cv->config_refs.n) {
		doc = cv->configs[at];
	} else {
		doc = cv->opts->image_config(cv->opts->image_config_data, st->img.base,
		                             st->platform_str);
		KILN_GROW(cv->configs, cv->aconfigs, cv->config_refs.n + 1);
		cv->configs[cv->config_refs.n] = doc;
		kiln_strv_push(&cv->config_refs, key);
	}
	if (!doc)
		return 0;
	json_t *c = json_object_get(doc, "config");
	st->img.base_known = true;
	const char *wd = json_string_value(json_object_get(c, "WorkingDir"));
	if (wd && *wd)
		st->img.base_workdir = kiln_path_join("/", wd);
	json_t *ob = json_object_get(c, "OnBuild");
	size_t n = json_array_size(ob);
	if (!n)
		return 0;
	struct fe_cmd **t = kiln_arena_array(cv->ast->arena, n, sizeof(*t));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *trig = json_string_value(json_array_get(ob, i));
		if (!trig || !*trig)
			continue;
		int r = parse_trigger(cv, from, st->img.base, trig, &t[k], err);
		if (r < 0)
			return r;
		k++;
	}
	*ret_triggers = t;
	*ret_n = k;
	return 0;
}

static int
dispatch_stage(struct cv *cv, struct cv_stage *st, struct kiln_err *err)
{
	struct fe_cmd *from = st->from;
	st->state = ST_VISITING;

	/* FROM words expand with the global ARGs only. */
	_cleanup_free_ char *base = NULL, *plat = NULL;
	int r = expand_with(cv, &cv->global, from, from->from.image, &base, err);
	if (r < 0)
		return r;
	if (!*base)
		return cmd_err(cv, from, err, "FROM: base name (%s) should not be blank",
		               from->from.image);
	st->platform = cv->target_platform;
	if (from->from.platform) {
		r = expand_with(cv, &cv->global, from, from->from.platform, &plat, err);
		if (r < 0)
			return r;
		r = fe_platform_parse(plat, &st->platform, err);
		if (r < 0) {
			kiln_err_wrap(err, "FROM --platform");
			return kiln_err_locate(err, cv->file, from->start_line, from->end_line);
		}
	}
	fe_platform_format(&st->platform, st->platform_str);

	/* A stage can be FROM an earlier stage only; a later or its own name is an image. */
	struct cv_named *self = st->name ? named_find(cv, st->name) : NULL; /* replaces st */
	struct cv_named *nb = NULL;
	struct cv_stage *parent = self ? NULL : stage_by_name(cv, base, st->index);
	struct fe_cmd **triggers = NULL;
	size_t ntriggers = 0;
	st->nsteps = st->ncmds + 1;
	st->step = 1;
	if (parent) {
		if (parent->state == ST_VISITING)
			return cmd_err(cv, from, err,
			               "FROM %s: circular dependency detected on stage: %s", base,
			               parent->meta);
		if (parent->state == ST_NEW && (r = dispatch_stage(cv, parent, err)) < 0)
			return r;
		image_inherit(&st->img, &parent->img);
		st->vertex = parent->vertex;
		triggers = parent->img.triggers;
		ntriggers = parent->img.ntriggers;
		st->platform = parent->platform;
		memcpy(st->platform_str, parent->platform_str, sizeof(st->platform_str));
	} else if (!self && kiln_str_eq(base, "scratch")) {
		image_init_empty(&st->img);
		/* BuildKit's empty image has a PATH. */
		fe_vars_set(&st->img.env, "PATH", DEFAULT_PATH);
		fe_vars_set(&st->img.cfg_env, "PATH", DEFAULT_PATH);
		st->vertex = scratch_vertex(cv, st);
	} else if ((nb = self ? self : named_find(cv, base)) && nb->dir) {
		image_init_empty(&st->img);
		fe_vars_set(&st->img.env, "PATH", DEFAULT_PATH);
		fe_vars_set(&st->img.cfg_env, "PATH", DEFAULT_PATH);
		st->vertex = named_dir_root(cv, st, from, nb);
	} else {
		_cleanup_free_ char *ref = NULL;
		if (nb) {
			ref = kiln_xstrdup(nb->image);
		} else if (fe_ref_normalize(base, &ref, err) < 0) {
			kiln_err_wrap(err, "FROM %s", base);
			return kiln_err_locate(err, cv->file, from->start_line, from->end_line);
		}
		image_init_empty(&st->img);
		st->img.base = kiln_xstrdup(ref);
		if (cv->opts->image_config &&
		    (r = base_config(cv, st, from, &triggers, &ntriggers, err)) < 0)
			return r;
		st->nsteps += ntriggers; /* before FROM's "[1/n]" is written */
		st->vertex = image_vertex(cv, st, from, ref, st->platform_str);
	}
	if (parent)
		st->nsteps += ntriggers;

	/* The parent's ONBUILD triggers run first, at the line of their ONBUILD. */
	for (size_t i = 0; i < ntriggers; i++) {
		st->step++;
		if ((r = dispatch_cmd(cv, st, triggers[i], err)) < 0)
			return r;
	}

	struct cv_stage *ref = NULL;
	st->replayable = !parent;
	if (st->replayable) {
		st->rel = kiln_xreallocarray(NULL, st->ncmds + 1, sizeof(*st->rel));
		st->after = kiln_xreallocarray(NULL, st->ncmds + 1, sizeof(*st->after));
		st->rec = kiln_xreallocarray(NULL, st->ncmds + 1, sizeof(*st->rec));
		st->after[0] = st->vertex;
		st->nafter = 1;
		ref = replay_ref(cv, st, st->vertex);
	}
	struct sv_vertex *saved = cv->replay;
	size_t ncmds = self ? 0 : st->ncmds;
	for (size_t i = 0; i < ncmds; i++) {
		struct fe_cmd *cmd = st->cmds[i];
		bool rel = affects_lowering(cmd);
		size_t k = st->nafter - 1;
		st->step++;
		cv->replay = NULL;
		if (rel && ref && k + 1 < ref->nafter && cmd_replayable(cmd) &&
		    cmd_same(cmd, ref->rel[k]))
			cv->replay = ref->after[k + 1];
		else if (rel)
			ref = NULL;
		size_t nhist = json_array_size(st->img.history);
		struct replay_rec rec = {0};
		if (cv->replay && ref->rec[k].entry) {
			/* A replayed RUN, COPY, ADD, ENV or WORKDIR repeats the earlier stage's:
			 * the same instruction on the same variables, WORKDIR, USER and SHELL adds
			 * the same history entry and sets the same variables or directory. Taking
			 * them spares expanding and joining it all again, and sharing the entry
			 * (history entries are not changed once made; the exporter merges deep
			 * copies) spares a megabyte of a long plan's heap, pages the kernel would
			 * zero. */
			rec = ref->rec[k];
			for (size_t j = 0; j + 1 < rec.nkv; j += 2) {
				fe_vars_set(&st->img.env, rec.kv[j], rec.kv[j + 1]);
				image_env_changed(&st->img);
				fe_vars_set(&st->img.cfg_env, rec.kv[j], rec.kv[j + 1]);
			}
			if (rec.workdir) {
				free(st->img.workdir);
				st->img.workdir = kiln_xstrdup(rec.workdir);
			}
			json_array_append(st->img.history, rec.entry);
			st->vertex = cv->replay;
			r = 0;
		} else {
			cv->env_kv = NULL;
			r = dispatch_cmd(cv, st, cmd, err);
			bool env = cmd->kind == FE_CMD_ENV && cv->env_kv;
			bool wd = cmd->kind == FE_CMD_WORKDIR && st->img.workdir;
			if (r >= 0 &&
			    (env || wd || cmd->kind == FE_CMD_RUN || cmd->kind == FE_CMD_COPY ||
			     cmd->kind == FE_CMD_ADD) &&
			    json_array_size(st->img.history) == nhist + 1) {
				rec.entry = json_array_get(st->img.history, nhist);
				rec.kv = env ? cv->env_kv : NULL;
				rec.nkv = env ? cv->env_nkv : 0;
				rec.workdir =
				        wd ? kiln_arena_strdup(cv->ast->arena, st->img.workdir)
				           : NULL;
			}
		}
		cv->replay = NULL;
		if (r < 0) {
			cv->replay = saved;
			return r;
		}
		if (rel && st->replayable) {
			st->rel[k] = cmd;
			st->rec[k] = rec;
			st->after[st->nafter++] = st->vertex;
		}
	}
	cv->replay = saved;
	st->state = ST_DONE;
	return 0;
}

static json_t *
vars_json(const struct fe_vars *v)
{
	json_t *a = json_array();
	for (size_t i = 0; i < v->kv.n; i++)
		json_array_append_new(a, jstr(v->kv.v[i]));
	return a;
}

/* The OCI image config a stage ends with. */
static json_t *
stage_config(struct cv_stage *st)
{
	struct cv_image *img = &st->img;
	json_t *c = json_object();
	json_object_set_new_nocheck(c, "Env", vars_json(&img->cfg_env));
	const char *keys[] = {"Cmd",     "Entrypoint", "Labels",      "ExposedPorts",
	                      "Volumes", "StopSignal", "Healthcheck", "OnBuild"};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(img->config, keys[i]);
		if (v)
			json_object_set(c, keys[i], v);
	}
	if (img->workdir)
		json_object_set_new_nocheck(c, "WorkingDir", jstr(img->workdir));
	if (img->user)
		json_object_set_new_nocheck(c, "User", jstr(img->user));
	if (img->shell.n)
		json_object_set_new_nocheck(c, "Shell", strv_json(img->shell.v, img->shell.n));

	json_t *o =
	        json_pack("{s:s, s:s}", "architecture", st->platform.arch, "os", st->platform.os);
	if (st->platform.variant[0])
		json_object_set_new_nocheck(o, "variant", jstr(st->platform.variant));
	if (img->author)
		json_object_set_new_nocheck(o, "author", jstr(img->author));
	json_object_set_new_nocheck(o, "config", c);
	json_object_set_new_nocheck(o, "rootfs",
	                            json_pack("{s:s, s:[]}", "type", "layers", "diff_ids"));
	json_object_set_nocheck(o, "history", img->history);
	if (img->base)
		json_object_set_new_nocheck(o, "base", jstr(img->base));
	return o;
}

/* ---- set-up: build args, global ARGs, stages ---- */

static void
set_platform_args(struct fe_vars *v, const char *prefix, const struct fe_platform *p)
{
	char buf[100], key[32];
	fe_platform_format(p, buf);
	snprintf(key, sizeof(key), "%sPLATFORM", prefix);
	fe_vars_set(v, key, buf);
	snprintf(key, sizeof(key), "%sOS", prefix);
	fe_vars_set(v, key, p->os);
	snprintf(key, sizeof(key), "%sARCH", prefix);
	fe_vars_set(v, key, p->arch);
	snprintf(key, sizeof(key), "%sVARIANT", prefix);
	fe_vars_set(v, key, p->variant);
}

static int
setup_args(struct cv *cv, struct kiln_err *err)
{
	const struct fe_plan_opts *o = cv->opts;
	for (char *const *a = o->build_args; a && *a; a++) {
		const char *eq = strchr(*a, '=');
		_cleanup_free_ char *k = eq ? kiln_xstrndup(*a, eq - *a) : kiln_xstrdup(*a);
		const char *v = eq ? eq + 1 : getenv(k);
		if (!*k)
			return kiln_err_invalid(err, "--build-arg %s: empty name", *a);
		if (!v)
			continue; /* `--build-arg K` with K unset passes nothing, as docker */
		fe_vars_set(&cv->build_args, k, v);
		if (in_list(proxy_args, KILN_ARRAY_SIZE(proxy_args), k))
			fe_vars_set(&cv->proxy, k, v);
	}
	struct fe_platform build;
	fe_platform_host(&build);
	cv->target_platform = build;
	if (o->platform && fe_platform_parse(o->platform, &cv->target_platform, err) < 0)
		return kiln_err_wrap(err, "--platform");
	set_platform_args(&cv->global, "TARGET", &cv->target_platform);
	set_platform_args(&cv->global, "BUILD", &build);
	return 0;
}

/* ARGs before the first FROM: global, usable in FROM, inherited by `ARG name` in a stage. */
static int
global_arg(struct cv *cv, struct fe_cmd *cmd, struct kiln_err *err)
{
	for (size_t i = 0; i < cmd->kv.nkvs; i++) {
		const struct fe_kv *a = &cmd->kv.kvs[i];
		kiln_strv_push(&cv->global_declared, a->key);
		if (is_platform_arg(a->key) && !a->value)
			continue;
		const char *given = fe_vars_get(&cv->build_args, a->key);
		if (given) {
			fe_vars_set(&cv->global, a->key, given);
		} else if (a->value) {
			_cleanup_free_ char *v = NULL;
			int r = expand_with(cv, &cv->global, cmd, a->value, &v, err);
			if (r < 0)
				return r;
			fe_vars_set(&cv->global, a->key, v);
		}
	}
	return 0;
}

static bool
valid_stage_name(const char *s)
{
	if (!(*s >= 'a' && *s <= 'z'))
		return false;
	for (s++; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) &&
		    !strchr("-_.", *s))
			return false;
	return true;
}

static int
split_stages(struct cv *cv, struct kiln_err *err)
{
	struct fe_ast *ast = cv->ast;
	size_t nfrom = 0;
	for (size_t i = 0; i < ast->nnodes; i++)
		nfrom += (ast->nodes[i].name[0] | 0x20) == 'f' && /* spares most strcasecmp calls */
		         strcasecmp(ast->nodes[i].name, "from") == 0;
	cv->stages = kiln_xcalloc(nfrom ? nfrom : 1, sizeof(*cv->stages));
	for (cv->nbuckets = 16; cv->nbuckets < 2 * nfrom; cv->nbuckets *= 2)
		;
	cv->buckets = kiln_xcalloc(cv->nbuckets, sizeof(*cv->buckets));
	cv->nroots = cv->nbuckets;
	cv->roots = kiln_xcalloc(cv->nroots, sizeof(*cv->roots));
	struct cv_stage *cur = NULL;
	for (size_t i = 0; i < ast->nnodes; i++) {
		struct fe_cmd *cmd;
		int r = fe_cmd_parse(ast->arena, cv->file, &ast->nodes[i], &cmd, err);
		if (r < 0)
			return r;
		if (cmd->kind == FE_CMD_FROM) {
			cur = &cv->stages[cv->nstages];
			cur->index = cv->nstages++;
			cur->from = cmd;
			cur->meta = kiln_arena_printf(ast->arena, "%zu", cur->index);
			cur->label = kiln_arena_printf(ast->arena, "stage-%zu", cur->index);
			if (cmd->from.stage_name) {
				char *n = kiln_arena_strdup(ast->arena, cmd->from.stage_name);
				for (char *c = n; *c; c++)
					*c = tolower((unsigned char)*c);
				if (!valid_stage_name(n))
					return cmd_err(
					        cv, cmd, err,
					        "invalid name for build stage: \"%s\", name "
					        "can't start with a number or contain symbols",
					        cmd->from.stage_name);
				if (stage_by_name(cv, n, cur->index))
					return cmd_err(cv, cmd, err, "duplicate stage name \"%s\"",
					               n);
				cur->name = cur->meta = cur->label = n;
				stage_name_insert(cv, cur);
			}
			continue;
		}
		if (!cur) {
			if (cmd->kind != FE_CMD_ARG)
				return cmd_err(
				        cv, cmd, err,
				        "%s before the first FROM: no build stage in current "
				        "context",
				        cmd_name(cmd));
			if ((r = global_arg(cv, cmd, err)) < 0)
				return r;
			continue;
		}
		KILN_GROW(cur->cmds, cur->acmds, cur->ncmds + 1);
		cur->cmds[cur->ncmds++] = cmd;
	}
	if (cv->nstages == 0)
		return kiln_err_at(err, cv->file, 0, 0, "the Dockerfile has no FROM instruction");
	return 0;
}

int
fe_plan(const struct fe_plan_opts *opts, struct sv_graph **ret, struct kiln_err *err)
{
	return fe_plan_replay(opts, true, ret, err);
}

int
fe_plan_replay(const struct fe_plan_opts *opts, bool replay, struct sv_graph **ret,
               struct kiln_err *err)
{
	if (!opts->context_dir)
		return kiln_err_invalid(err, "no build context given");
	struct stat sb;
	if (stat(opts->context_dir, &sb) < 0)
		return kiln_err_set(err, errno, "build context `%s`", opts->context_dir);
	if (!S_ISDIR(sb.st_mode))
		return kiln_err_invalid(err, "build context `%s` is not a directory",
		                        opts->context_dir);
	_cleanup_free_ char *df_path = opts->dockerfile
	                                       ? kiln_xstrdup(opts->dockerfile)
	                                       : kiln_path_join(opts->context_dir, "Dockerfile");
	_cleanup_buf_ struct kiln_buf text = KILN_BUF_INIT;
	const char *data = opts->dockerfile_data;
	size_t len = data ? strlen(data) : 0;
	if (!data) {
		if (kiln_buf_read_file(&text, df_path, err) < 0)
			return kiln_err_wrap(err, "read Dockerfile");
		data = text.buf;
		len = text.len;
	}

	struct cv cv = {.opts = opts,
	                .no_replay = !replay,
	                .file = opts->dockerfile
	                                ? opts->dockerfile
	                                : (opts->dockerfile_data ? "Dockerfile" : df_path)};
	int r = fe_parse(cv.file, data, len, &cv.ast, err);
	if (r < 0)
		return r;
	/* The tree holds copies: the text's memory goes back to malloc for the graph, which
	 * then touches fewer fresh pages (zeroing them was a fifth of a long plan). */
	kiln_buf_release(&text);
	if (opts->warnings) {
		for (char *const *w = fe_ast_warnings(cv.ast); w && *w; w++)
			kiln_strv_push(opts->warnings, *w);
	}
	cv.g = sv_graph_new();
	if ((r = setup_args(&cv, err)) < 0)
		goto out;
	if ((r = split_stages(&cv, err)) < 0)
		goto out;
	if ((r = fe_ignore_load(opts->context_dir, opts->dockerfile_data ? NULL : df_path,
	                        &cv.ignore, err)) < 0)
		goto out;
	if ((r = named_setup(&cv, err)) < 0)
		goto out;

	struct cv_stage *target = &cv.stages[cv.nstages - 1];
	if (opts->target) {
		target = stage_by_name(&cv, opts->target, cv.nstages);
		if (!target) {
			r = kiln_err_at(err, cv.file, 0, 0,
			                "target stage \"%s\" could not be found", opts->target);
			goto out;
		}
	}
	if ((r = dispatch_stage(&cv, target, err)) < 0)
		goto out;
	for (size_t i = 0; i < cv.nstages; i++) {
		struct cv_stage *st = &cv.stages[i];
		if (st->state == ST_DONE)
			sv_graph_add_result(cv.g, st->meta, st->vertex, stage_config(st),
			                    st == target);
	}
	if (opts->warnings) {
		/* BuildKit's warning for --build-arg values no ARG consumed. */
		for (size_t i = 0; i < cv.build_args.kv.n; i++) {
			const char *kv = cv.build_args.kv.v[i];
			_cleanup_free_ char *k = kiln_xstrndup(kv, strcspn(kv, "="));
			bool used = in_list(proxy_args, KILN_ARRAY_SIZE(proxy_args), k) ||
			            in_list((const char *const *)cv.global_declared.v,
			                    cv.global_declared.n, k);
			for (size_t s = 0; s < cv.nstages && !used; s++)
				for (size_t c = 0; c < cv.stages[s].ncmds && !used; c++) {
					struct fe_cmd *cmd = cv.stages[s].cmds[c];
					if (cmd->kind != FE_CMD_ARG)
						continue;
					for (size_t j = 0; j < cmd->kv.nkvs && !used; j++)
						used = kiln_str_eq(cmd->kv.kvs[j].key, k);
				}
			if (!used)
				kiln_strv_pushf(opts->warnings,
				                "build-arg \"%s\" was not consumed by any ARG", k);
		}
	}
	*ret = TAKE_PTR(cv.g);
	r = 0;
out:
	for (size_t i = 0; i < cv.nstages; i++) {
		image_release(&cv.stages[i].img);
		free(cv.stages[i].cmds);
		free(cv.stages[i].after);
		free(cv.stages[i].rec);
		free(cv.stages[i].rel);
	}
	free(cv.stages);
	free(cv.buckets);
	free(cv.roots);
	fe_vars_release(&cv.global);
	kiln_strv_release(&cv.global_declared);
	fe_vars_release(&cv.build_args);
	fe_vars_release(&cv.proxy);
	fe_ignore_free(cv.ignore);
	json_decref(cv.exclude);
	for (size_t i = 0; i < cv.nnamed; i++) {
		free(cv.named[i].norm);
		free(cv.named[i].image);
		free(cv.named[i].dir);
		json_decref(cv.named[i].exclude);
	}
	free(cv.named);
	for (size_t i = 0; i < cv.ntrigger_asts; i++)
		fe_ast_free(cv.trigger_asts[i]);
	free(cv.trigger_asts);
	for (size_t i = 0; i < cv.config_refs.n; i++)
		json_decref(cv.configs[i]);
	free(cv.configs);
	kiln_strv_release(&cv.config_refs);
	sv_graph_free(cv.g);
	fe_ast_free(cv.ast);
	return r;
}
