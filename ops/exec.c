/* Exec vertices (RUN): a fresh snapshot on input 0, the def's mounts, ex_run, commit. */
#include "ops_int.h"

#include "executor/ex.h"
#include "registry/reg.h"
#include "snapshot/snap.h"

#include <fcntl.h>

/* Lines of output kept for the error message of a failing step. */
#define TAIL_LINES 6

struct exec_out {
	struct sv_op_ctx *ctx;
	char *tail[TAIL_LINES];
	size_t ntail; /* lines seen */
};

static void
on_output(void *data, int stream, const char *line, size_t len)
{
	struct exec_out *eo = data;
	_cleanup_free_ char *l = kiln_xasprintf("%.*s\n", (int)len, line);
	sv_op_ctx_log(eo->ctx, stream, l, len + 1);
	size_t slot = eo->ntail++ % TAIL_LINES;
	free(eo->tail[slot]);
	eo->tail[slot] = kiln_xstrndup(line, len);
}

static void
exec_out_release(struct exec_out *eo)
{
	for (size_t i = 0; i < TAIL_LINES; i++)
		free(eo->tail[i]);
}

static size_t
key_len(const char *kv)
{
	return strcspn(kv, "=");
}

/* Set KEY=VALUE in env, replacing an entry with the same key. */
static void
env_set(struct kiln_strv *env, const char *kv)
{
	size_t n = key_len(kv);
	for (size_t i = 0; i < env->n; i++) {
		if (key_len(env->v[i]) == n && !strncmp(env->v[i], kv, n)) {
			free(env->v[i]);
			env->v[i] = kiln_xstrdup(kv);
			return;
		}
	}
	kiln_strv_push(env, kv);
}

/* convert.c's rules: the base image's Env first, the step's replace by key; a PATH the
 * step has only because the Dockerfile set none gives way to the image's. */
static int
build_env(struct ops *o, const struct sv_vertex *v, struct kiln_strv *env, struct kiln_err *err)
{
	const char *base = json_string_value(json_object_get(v->def, "base_env"));
	bool default_path = json_is_true(json_object_get(v->def, "default_path"));
	bool image_path = false;
	if (base) {
		const struct reg_image *img;
		if (ops_image_get(o, base, &img, err) < 0)
			return -1;
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(img->config.config, "Env"), i, e)
		{
			if (!json_is_string(e))
				continue;
			env_set(env, json_string_value(e));
			image_path |= kiln_str_has_prefix(json_string_value(e), "PATH=");
		}
	}
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(v->def, "env"), i, e)
	{
		const char *kv = json_string_value(e);
		if (!kv)
			continue;
		if (default_path && image_path && kiln_str_has_prefix(kv, "PATH="))
			continue;
		env_set(env, kv);
	}
	json_array_foreach(json_object_get(v->def, "proxy_env"), i, e)
	{
		if (json_is_string(e))
			env_set(env, json_string_value(e));
	}
	return 0;
}

static const char *
jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void
owner(const json_t *m, struct ex_mount *em)
{
	if (json_is_integer(json_object_get(m, "mode"))) {
		em->has_mode = true;
		em->mode = (uint32_t)json_integer_value(json_object_get(m, "mode"));
	}
	if (json_is_integer(json_object_get(m, "uid"))) {
		em->has_uid = true;
		em->uid = (uint32_t)json_integer_value(json_object_get(m, "uid"));
	}
	if (json_is_integer(json_object_get(m, "gid"))) {
		em->has_gid = true;
		em->gid = (uint32_t)json_integer_value(json_object_get(m, "gid"));
	}
}

/* The host path of `source` inside an input's root, resolved inside it (symlinks cannot
 * lead out): the real path of what openat-in-root found. */
static int
resolve_source(int rootfd, const char *root, const char *source, struct kiln_arena *arena,
               const char **ret, struct kiln_err *err)
{
	_cleanup_close_ int fd =
	        kiln_path_openat_in_root(rootfd, source ? source : "/", O_PATH, 0, err);
	if (fd < 0)
		return kiln_err_wrap(err, "mount source %s", source ? source : "/");
	char link[64], buf[4096];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, buf, sizeof(buf) - 1);
	if (n < 0)
		return kiln_err_set(err, errno, "readlink %s", link);
	buf[n] = '\0';
	size_t rl = strlen(root);
	_cleanup_free_ char *rootreal = realpath(root, NULL);
	const char *r = rootreal ? rootreal : root;
	rl = strlen(r);
	if (strncmp(buf, r, rl) != 0 || (buf[rl] != '\0' && buf[rl] != '/'))
		return kiln_err_invalid(err, "mount source %s leaves its root", source);
	*ret = kiln_arena_strdup(arena, buf);
	return 0;
}

/*
 * RUN --mount=type=cache,from=X,source=P: as BuildKit, the cache starts as a copy of P in
 * X, and is its own cache per (id, X's result, P) so another from or source never sees
 * it. Returns the cache id to give the executor, whose directory this fills when new
 * (copied aside, then renamed into place: a run that races us finds one or the other).
 */
static int
seed_cache(struct ops *o, const char *id, const char *input, int src_fd, const char *source,
           struct kiln_arena *arena, const char **ret, struct kiln_err *err)
{
	_cleanup_free_ char *sid = kiln_xasprintf("%s\nfrom %s:%s", id, input, source);
	*ret = kiln_arena_strdup(arena, sid);
	_cleanup_free_ char *area = kiln_xasprintf("%s/cache-mounts", o->opts.root);
	if (mkdir(area, 0700) < 0 && errno != EEXIST)
		return kiln_err_set(err, errno, "mkdir `%s`", area);
	_cleanup_close_ int afd = open(area, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (afd < 0)
		return kiln_err_set(err, errno, "open `%s`", area);
	_cleanup_free_ char *name = ex_cache_dir_name(sid);
	struct stat sb;
	if (fstatat(afd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	_cleanup_free_ char *rnd = ops_new_snapshot_name();
	_cleanup_free_ char *tmp = kiln_xasprintf(".seed-%s", rnd);
	if (mkdirat(afd, tmp, 0755) < 0)
		return kiln_err_set(err, errno, "mkdir `%s/%s`", area, tmp);
	int r = 0;
	{
		_cleanup_close_ int tfd = openat(afd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		_cleanup_json_ json_t *def = json_pack(
		        "{s:[{s:s, s:i, s:s, s:s, s:b, s:b, s:b}]}", "actions", "action", "copy",
		        "input", 1, "src", source, "dest", "/", "dir_contents_only", 1,
		        "create_dest_path", 1, "follow_symlinks", 1);
		int fds[2] = {tfd, src_fd};
		if (tfd < 0)
			r = kiln_err_set(err, errno, "open `%s/%s`", area, tmp);
		else if ((r = ops_file_run(def, tfd, fds, 2, NULL, err)) < 0)
			kiln_err_wrap(err, "cache mount from %s", source);
	}
	if (r >= 0 && renameat(afd, tmp, afd, name) < 0 && errno != EEXIST && errno != ENOTEMPTY)
		r = kiln_err_set(err, errno, "rename `%s/%s`", area, tmp);
	kiln_rm_rf_at(afd, tmp); /* gone already when renamed */
	return r;
}

/* The name of the filtered copy of `abs` whose kept files have digest `d`. */
static char *
filtered_name(const char *abs, const struct kiln_digest *d)
{
	char hex[KILN_DIGEST_HEX_LEN + 1];
	kiln_digest_format(d, hex);
	_cleanup_free_ char *in = kiln_xasprintf("%s%c%s", abs, '\0', hex);
	struct kiln_digest nd;
	kiln_sha256_buf(in, strlen(abs) + 1 + strlen(hex), &nd);
	kiln_digest_format(&nd, hex);
	return kiln_xasprintf("x-bind-%s", hex + strlen("sha256:"));
}

/*
 * `name` is now the filtered copy for this mount of `dir`: remember it in
 * <root>/bind-mounts/<slot> and remove the copy it replaces, so a mount keeps one copy
 * however often its files change. A copy in use (a concurrent run's view) stays,
 * for kiln prune --all.
 */
static void
filtered_replace(struct ops *o, const char *dir, const json_t *action, const char *name)
{
	_cleanup_free_ char *act = json_dumps(action, JSON_COMPACT | JSON_SORT_KEYS);
	_cleanup_free_ char *in = kiln_xasprintf("%s%c%s", dir, '\0', act ? act : "");
	struct kiln_digest d;
	kiln_sha256_buf(in, strlen(dir) + 1 + strlen(act ? act : ""), &d);
	char hex[KILN_DIGEST_HEX_LEN + 1];
	kiln_digest_format(&d, hex);
	_cleanup_free_ char *area = kiln_xasprintf("%s/bind-mounts", o->opts.root);
	if (mkdir(area, 0700) < 0 && errno != EEXIST)
		return;
	_cleanup_close_ int afd = open(area, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (afd < 0)
		return;
	const char *slot = hex + strlen("sha256:");
	_cleanup_buf_ struct kiln_buf old = KILN_BUF_INIT;
	{
		_cleanup_close_ int fd = openat(afd, slot, O_RDONLY | O_CLOEXEC);
		struct kiln_err e = KILN_ERR_INIT;
		if (fd >= 0)
			kiln_buf_read_fd(&old, fd, &e);
		kiln_err_release(&e);
	}
	if (kiln_str_eq(old.buf, name))
		return;
	struct kiln_err e = KILN_ERR_INIT;
	if (kiln_write_file_atomic_at(afd, slot, name, strlen(name), 0600, &e) == 0 &&
	    kiln_str_has_prefix(old.buf, "x-bind-") && snap_name_valid(old.buf))
		snap_remove(o->opts.snaps, old.buf, &e);
	kiln_err_release(&e);
}

/*
 * A bind of a local source whose .dockerignore leaves files out: BuildKit transfers only
 * the files it keeps, so the mount shows a copy of just those, made by the file op exactly
 * as COPY would select them. The copy is committed under the digest of the kept files
 * (what the step's cache key holds; mtimes are not in it, so a copy keeps those of the
 * files it was made from) and viewed read-only by every later run over the same files,
 * as BuildKit's local source keeps its synced copy: a --no-cache rebuild, another step or
 * a rebuild after an unrelated change copies nothing. A file changed while it was being
 * copied gives a copy for this run only.
 */
static int
filtered_source(struct ops *o, const struct sv_vertex *src_vertex, const char *dir, int src_fd,
                const char *source, struct snap_mount **ret_m, struct kiln_arena *arena,
                const char **ret, struct kiln_err *err)
{
	_cleanup_free_ char *abs = kiln_path_join("/", source ? source : "/");
	_cleanup_json_ json_t *a = json_pack(
	        "{s:s, s:i, s:s, s:s, s:b, s:b, s:b}", "action", "copy", "input", 1, "src", abs,
	        "dest", abs, "dir_contents_only", 1, "create_dest_path", 1, "follow_symlinks", 1);
	_cleanup_json_ json_t *ca = ops_context_action(a, src_vertex);
	struct kiln_digest before, after;
	if (ops_file_content_digest(ca, src_fd, o->index, &before, err) < 0)
		return kiln_err_wrap(err, "mount source %s", abs);
	_cleanup_free_ char *name = filtered_name(abs, &before);
	struct kiln_err e = KILN_ERR_INIT;
	/* A view fails when a prune removed the copy since: then copy again. */
	if (!snap_exists(o->opts.snaps, name) || snap_view(o->opts.snaps, name, ret_m, &e) < 0) {
		kiln_err_release(&e);
		_cleanup_json_ json_t *def = json_pack("{s:[O]}", "actions", ca);
		_cleanup_snap_mount_ struct snap_mount *m = NULL;
		if (snap_prepare(o->opts.snaps, NULL, &m, err) < 0)
			return -1;
		_cleanup_close_ int dfd =
		        open(snap_mount_path(m), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return kiln_err_set(err, errno, "open `%s`", snap_mount_path(m));
		int fds[2] = {dfd, src_fd};
		if (ops_file_run(def, dfd, fds, 2, NULL, err) < 0)
			return kiln_err_wrap(err, "mount source %s", abs);
		if (ops_file_content_digest(ca, src_fd, o->index, &after, err) < 0)
			return kiln_err_wrap(err, "mount source %s", abs);
		if (memcmp(&before, &after, sizeof(before))) {
			*ret_m = TAKE_PTR(m); /* changed while copied: this run's copy only */
		} else {
			int r = snap_commit(m, name, err);
			if (r < 0 && r != -EEXIST) /* EEXIST: a concurrent run made it first */
				return r;
			kiln_err_release(err);
			if (snap_view(o->opts.snaps, name, ret_m, err) < 0)
				return -1;
			if (r == 0)
				filtered_replace(o, dir, ca, name);
		}
	}
	const char *root = snap_mount_path(*ret_m);
	_cleanup_close_ int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kiln_err_set(err, errno, "open `%s`", root);
	return resolve_source(dfd, root, abs, arena, ret, err);
}

/* A mount's input: 1.. are open; 0 (from= naming what the step runs on, e.g. the stage's
 * own base image) gets a read-only view of its own. */
static int
mount_input(struct ops *o, struct ops_inputs *in, const char *const *inputs, const json_t *input,
            size_t *ret, struct kiln_err *err)
{
	json_int_t ix = json_integer_value(input);
	if (!json_is_integer(input) || ix < 0 || (size_t)ix >= in->n)
		return kiln_err_invalid(err, "bad mount input in the step's definition");
	if (ix == 0 && in->fds[0] < 0) {
		if (snap_view(o->opts.snaps, inputs[0], &in->views[0], err) < 0)
			return kiln_err_wrap(err, "view input 0");
		in->paths[0] = snap_mount_path(in->views[0]);
		in->fds[0] = open(in->paths[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (in->fds[0] < 0)
			return kiln_err_set(err, errno, "open `%s`", in->paths[0]);
	}
	*ret = (size_t)ix;
	return 0;
}

static int
build_mounts(struct ops *o, const struct sv_vertex *v, struct ops_inputs *in,
             const char *const *inputs, const char *cwd, struct kiln_arena *arena,
             struct snap_mount **filtered, struct ex_mount **ret, size_t *ret_n,
             struct kiln_err *err)
{
	json_t *mounts = json_object_get(v->def, "mounts");
	size_t n = json_array_size(mounts);
	struct ex_mount *ems = kiln_xcalloc(n ? n : 1, sizeof(*ems));
	size_t k = 0;
	size_t i;
	json_t *m;
	json_array_foreach(mounts, i, m)
	{
		const char *type = jstr(m, "type");
		struct ex_mount em = {0};
		const char *target = jstr(m, "target");
		if (target && target[0] != '/') {
			_cleanup_free_ char *abs = kiln_path_join(cwd, target);
			target = kiln_arena_strdup(arena, abs);
		}
		em.target = target;
		json_t *input = json_object_get(m, "input");
		if (!type)
			goto bad;
		if (kiln_str_eq(type, "bind")) {
			em.type = EX_MOUNT_BIND;
			size_t ix;
			if (mount_input(o, in, inputs, input, &ix, err) < 0)
				goto fail;
			const char *dir = ops_local_dir(o, inputs[ix]);
			bool ignores = dir && json_array_size(json_object_get(v->inputs[ix]->def,
			                                                      "exclude"));
			if (ignores ? filtered_source(o, v->inputs[ix], dir, in->fds[ix],
			                              jstr(m, "source"), &filtered[i], arena,
			                              &em.source, err) < 0
			            : resolve_source(in->fds[ix], in->paths[ix], jstr(m, "source"),
			                             arena, &em.source, err) < 0)
				goto fail;
			em.rw = !json_is_true(json_object_get(m, "readonly"));
		} else if (kiln_str_eq(type, "cache")) {
			em.type = EX_MOUNT_CACHE;
			em.id = jstr(m, "id");
			if (input) {
				size_t ix;
				if (mount_input(o, in, inputs, input, &ix, err) < 0)
					goto fail;
				const char *src = jstr(m, "source");
				if (seed_cache(o, em.id ? em.id : target, inputs[ix], in->fds[ix],
				               src ? src : "/", arena, &em.id, err) < 0)
					goto fail;
			}
			em.readonly = json_is_true(json_object_get(m, "readonly"));
			const char *sh = jstr(m, "sharing");
			em.sharing = sh && kiln_str_eq(sh, "private")  ? EX_SHARING_PRIVATE
			             : sh && kiln_str_eq(sh, "locked") ? EX_SHARING_LOCKED
			                                               : EX_SHARING_SHARED;
			owner(m, &em);
		} else if (kiln_str_eq(type, "tmpfs")) {
			em.type = EX_MOUNT_TMPFS;
			em.size = (uint64_t)json_integer_value(json_object_get(m, "size"));
		} else if (kiln_str_eq(type, "secret")) {
			em.type = EX_MOUNT_SECRET;
			em.id = jstr(m, "id");
			em.env = jstr(m, "env");
			owner(m, &em);
			const struct ops_secret *sec = NULL;
			for (size_t s = 0; em.id && s < o->opts.nsecrets; s++)
				if (kiln_str_eq(o->opts.secrets[s].id, em.id))
					sec = &o->opts.secrets[s];
			if (!sec) {
				if (json_is_true(json_object_get(m, "required"))) {
					kiln_err_invalid(err, "secret %s: not given with --secret",
					                 em.id ? em.id : "");
					goto fail;
				}
				continue; /* an optional secret that was not given is not mounted */
			}
			em.data = sec->data;
			em.data_len = sec->len;
		} else if (kiln_str_eq(type, "ssh")) {
			em.type = EX_MOUNT_SSH;
			em.id = jstr(m, "id");
			owner(m, &em);
			const char *id = em.id ? em.id : "default";
			const struct ops_ssh *ssh = NULL;
			for (size_t s = 0; s < o->opts.nssh; s++)
				if (kiln_str_eq(o->opts.ssh[s].id, id))
					ssh = &o->opts.ssh[s];
			if (!ssh) {
				/* as BuildKit: required unless the mount says required=false */
				json_t *req = json_object_get(m, "required");
				if (!json_is_false(req)) {
					kiln_err_invalid(err,
					                 "ssh mount id=%s: no agent or key given "
					                 "(kiln build --ssh %s=SOCKET|KEYFILE)",
					                 id, id);
					goto fail;
				}
				continue; /* an optional agent that was not given is not mounted */
			}
			em.source = ssh->socket;
		} else {
			goto bad;
		}
		if (ex_mount_check(&em, err) < 0)
			goto fail;
		ems[k++] = em;
	}
	*ret = ems;
	*ret_n = k;
	return 0;
bad:
	kiln_err_invalid(err, "bad mount %zu in the step's definition", i);
fail:
	free(ems);
	return -1;
}

/* The args joined by spaces and quoted as Go's %q, as BuildKit's error message has them. */
static void
args_quoted(const json_t *args, struct kiln_buf *out)
{
	size_t i;
	json_t *a;
	kiln_buf_addch(out, '"');
	json_array_foreach(args, i, a)
	{
		if (i)
			kiln_buf_addch(out, ' ');
		for (const char *p = json_string_value(a) ? json_string_value(a) : ""; *p; p++) {
			unsigned char c = (unsigned char)*p;
			if (c == '"' || c == '\\')
				kiln_buf_addf(out, "\\%c", c);
			else if (c == '\n')
				kiln_buf_addstr(out, "\\n");
			else if (c == '\t')
				kiln_buf_addstr(out, "\\t");
			else if (c < 0x20 || c == 0x7f)
				kiln_buf_addf(out, "\\x%02x", c);
			else
				kiln_buf_addch(out, (char)c);
		}
	}
	kiln_buf_addch(out, '"');
}

/* The filtered bind sources of one run, released after it. */
struct filtered {
	size_t n;
	struct snap_mount **m;
};

static void
filtered_release(struct filtered *f)
{
	for (size_t i = 0; i < f->n; i++)
		snap_mount_release(f->m[i]);
	free(f->m);
}

int
ops_exec_run(struct ops *o, struct sv_op_ctx *ctx, const struct sv_vertex *v,
             const char *const *inputs, char **ret_result, struct kiln_err *err)
{
	if (v->ninputs < 1)
		return kiln_err_invalid(err, "exec op without a root filesystem input");
	const char *network = jstr(v->def, "network");
	const char *security = jstr(v->def, "security");
	struct ex_run_opts ro = EX_RUN_OPTS_INIT;
	if (!network || kiln_str_eq(network, "default") || kiln_str_eq(network, "none")) {
		/* BuildKit's default network is the host's through a sandbox; kiln has no
		 * bridge yet, so "default" keeps the host's network as buildah does. */
		ro.network = network && kiln_str_eq(network, "none") ? EX_NET_NONE : EX_NET_HOST;
	} else if (kiln_str_eq(network, "host")) {
		if (!o->opts.allow_network_host)
			return kiln_err_invalid(err,
			                        "RUN --network=host needs --allow network.host");
		ro.network = EX_NET_HOST;
	} else {
		return kiln_err_invalid(err, "unknown network %s", network);
	}
	if (security && kiln_str_eq(security, "insecure") && !o->opts.allow_insecure)
		return kiln_err_invalid(err,
		                        "RUN --security=insecure needs --allow security.insecure");
	ro.privileged = security && kiln_str_eq(security, "insecure");

	_cleanup_strv_ struct kiln_strv env = KILN_STRV_INIT;
	if (build_env(o, v, &env, err) < 0)
		return -1;
	_cleanup_strv_ struct kiln_strv argv = KILN_STRV_INIT;
	size_t i;
	json_t *a;
	json_array_foreach(json_object_get(v->def, "args"), i, a)
	{
		if (!json_is_string(a))
			return kiln_err_invalid(err, "exec args must be strings");
		kiln_strv_push(&argv, json_string_value(a));
	}
	if (!argv.n)
		return kiln_err_invalid(err, "exec without args");
	const char *cwd = jstr(v->def, "cwd");
	if (!cwd || !*cwd)
		cwd = "/";
	const char *base = jstr(v->def, "base_env");
	const struct reg_image *base_img = NULL;
	if (base && ops_image_get(o, base, &base_img, err) < 0)
		return -1;
	if (base_img && json_is_true(json_object_get(v->def, "default_cwd"))) {
		/* No WORKDIR in the Dockerfile: the plan could not know the base image's. */
		const char *wd =
		        json_string_value(json_object_get(base_img->config.config, "WorkingDir"));
		if (wd && wd[0] == '/')
			cwd = wd;
	}

	_cleanup_(ops_inputs_release) struct ops_inputs in = {0};
	if (ops_inputs_open(o, inputs, v->ninputs, &in, err) < 0)
		return -1;
	_cleanup_arena_ struct kiln_arena *arena = kiln_arena_new();
	_cleanup_free_ struct ex_mount *mounts = NULL;
	size_t nmounts = 0;
	size_t nfiltered = json_array_size(json_object_get(v->def, "mounts"));
	_cleanup_(filtered_release) struct filtered fl = {
	        .n = nfiltered, .m = kiln_xcalloc(nfiltered + 1, sizeof(*fl.m))};
	if (build_mounts(o, v, &in, inputs, cwd, arena, fl.m, &mounts, &nmounts, err) < 0)
		return -1;

	_cleanup_snap_mount_ struct snap_mount *m = NULL;
	if (snap_prepare(o->opts.snaps, inputs[0], &m, err) < 0)
		return -1;

	ro.rootfs = snap_mount_path(m);
	ro.argv = kiln_strv_get(&argv);
	ro.env = kiln_strv_get(&env);
	const char *user = jstr(v->def, "user");
	if ((!user || !*user) && base_img) {
		/* No USER in the Dockerfile: the base image's, as BuildKit runs it (the plan
		 * cannot know it; "" is never a USER the Dockerfile set). */
		user = json_string_value(json_object_get(base_img->config.config, "User"));
	}
	ro.user = user && *user ? user : NULL;
	ro.cwd = cwd;
	ro.mounts = mounts;
	ro.nmounts = nmounts;
	ro.store_root = o->opts.root;
	struct exec_out eo = {.ctx = ctx};
	ro.output = on_output;
	ro.output_data = &eo;
	int cfd = -1;
	if (ops_cancel_fd_new(o, ctx, &cfd) < 0)
		return kiln_err_set(err, errno, "eventfd");
	ro.cancel_fd = cfd;
	struct ex_result res = {0};
	int r = ex_run(&ro, &res, err);
	ops_cancel_fd_close(o, ctx, cfd);
	if (r < 0) {
		exec_out_release(&eo);
		return r;
	}
	if (res.cancelled) {
		exec_out_release(&eo);
		return kiln_err_set(err, ECANCELED, "cancelled");
	}
	if (res.signal || res.exit_code) {
		_cleanup_buf_ struct kiln_buf msg = KILN_BUF_INIT;
		_cleanup_buf_ struct kiln_buf cmd = KILN_BUF_INIT;
		args_quoted(json_object_get(v->def, "args"), &cmd);
		kiln_buf_addf(&msg, "process %s did not complete successfully: ", cmd.buf);
		if (res.signal)
			kiln_buf_addf(&msg, "killed by signal %d", res.signal);
		else
			kiln_buf_addf(&msg, "exit code: %d", res.exit_code);
		size_t shown = eo.ntail < TAIL_LINES ? eo.ntail : TAIL_LINES;
		if (shown)
			kiln_buf_addstr(&msg, "\nlast lines of output:");
		for (size_t k = eo.ntail - shown; k < eo.ntail; k++)
			kiln_buf_addf(&msg, "\n  %s", eo.tail[k % TAIL_LINES]);
		exec_out_release(&eo);
		return kiln_err_invalid(err, "%s", msg.buf);
	}
	exec_out_release(&eo);
	_cleanup_free_ char *name = ops_new_snapshot_name();
	if (snap_commit(m, name, err) < 0)
		return -1;
	ops_record_size(o, ctx, name);
	*ret_result = TAKE_PTR(name);
	return 0;
}
