/*
 * kiln run: run a command in a throwaway container.
 *
 *	kiln run [--network none|host] [--mount SPEC]... [-e K[=V]]... [-u USER] [-w DIR]
 *		 [--hostname NAME] [--timeout SECONDS] IMAGE [CMD [ARG]...]
 *	kiln run --rootfs DIR [OPTIONS] CMD [ARG]...
 *
 * IMAGE is an image in the store: its layers are unpacked into snapshots (once; they are
 * shared), and the container runs on a fresh read-write snapshot that is thrown away
 * afterwards. The image's Env, WorkingDir, User, Entrypoint and Cmd are the defaults, as
 * with docker run. With --rootfs, a plain directory is the root filesystem.
 *
 * SPEC is RUN --mount's syntax (type=cache,target=/x,...). A secret's src= is a host file
 * whose content is handed over; an ssh mount's src= is an agent socket ($SSH_AUTH_SOCK by
 * default). Exit status: the command's, 128+N when signal N ended it, 124 on timeout,
 * 125 when kiln failed, 126/127 when the command could not be executed, 2 on usage.
 */
#include "cmd.h"
#include "executor/ex.h"
#include "registry/reg.h"
#include "snapshot/snap.h"

#include <signal.h>
#include <sys/signalfd.h>

#define EXIT_SETUP   125
#define EXIT_TIMEOUT 124

static void
usage(FILE *f)
{
	fprintf(f, "Usage: kiln run --rootfs DIR [OPTIONS] CMD [ARG]...\n"
	           "  --rootfs DIR           root filesystem directory\n"
	           "  --network none|host    network (default host)\n"
	           "  --mount SPEC           type=bind|cache|tmpfs|secret|ssh,target=...,...\n"
	           "  -e, --env K[=V]        environment variable (K alone: from kiln's env)\n"
	           "  -u, --user USER        user[:group], names or ids from the rootfs\n"
	           "  -w, --workdir DIR      working directory (created when missing)\n"
	           "  --hostname NAME        hostname (default kiln)\n"
	           "  --timeout SECONDS      kill the container after this long\n");
}

/* Mount specs own their strings and secret contents for the run. */
struct mount_specs {
	struct ex_mount *v;
	size_t n, alloc;
	struct kiln_strv strings;
	struct kiln_buf *secrets;
	size_t nsecrets;
};

static const char *
keep(struct mount_specs *ms, const char *s, size_t len)
{
	kiln_strv_push_take(&ms->strings, kiln_xstrndup(s, len));
	return ms->strings.v[ms->strings.n - 1];
}

static bool
parse_bool(const char *v, bool *out)
{
	if (!v || kiln_str_eq(v, "true") || kiln_str_eq(v, "1"))
		*out = true;
	else if (kiln_str_eq(v, "false") || kiln_str_eq(v, "0"))
		*out = false;
	else
		return false;
	return true;
}

static int
parse_size(const char *v, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || end == v)
		return -1;
	uint64_t mul = 1;
	if (*end == 'k' || *end == 'K')
		mul = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		mul = 1024 * 1024, end++;
	else if (*end == 'g' || *end == 'G')
		mul = 1024 * 1024 * 1024, end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end || (n && mul > UINT64_MAX / n))
		return -1;
	*out = n * mul;
	return 0;
}

static int
parse_u32(const char *v, int base, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long n = strtoul(v, &end, base);
	if (errno || end == v || *end || n > UINT32_MAX)
		return -1;
	*out = (uint32_t)n;
	return 0;
}

static int
parse_mount(struct mount_specs *ms, const char *spec, struct kiln_err *err)
{
	struct ex_mount m = {.type = EX_MOUNT_BIND};
	bool readonly = false, rw = false, ro_given = false;
	for (const char *p = spec; *p;) {
		const char *end = strchrnul(p, ',');
		const char *eq = memchr(p, '=', (size_t)(end - p));
		const char *key = keep(ms, p, (size_t)((eq ? eq : end) - p));
		const char *val = eq ? keep(ms, eq + 1, (size_t)(end - eq - 1)) : NULL;
		p = *end ? end + 1 : end;
		bool b;
		if (kiln_str_eq(key, "type") && val) {
			static const char *const types[] = {"bind", "cache", "tmpfs", "secret",
			                                    "ssh"};
			size_t i = 0;
			while (i < KILN_ARRAY_SIZE(types) && !kiln_str_eq(val, types[i]))
				i++;
			if (i == KILN_ARRAY_SIZE(types))
				return kiln_err_invalid(err, "--mount %s: unknown type %s", spec,
				                        val);
			m.type = (enum ex_mount_type)i;
		} else if ((kiln_str_eq(key, "target") || kiln_str_eq(key, "dst") ||
		            kiln_str_eq(key, "destination")) &&
		           val) {
			m.target = val;
		} else if ((kiln_str_eq(key, "source") || kiln_str_eq(key, "src")) && val) {
			m.source = val;
		} else if (kiln_str_eq(key, "id") && val) {
			m.id = val;
		} else if (kiln_str_eq(key, "env") && val) {
			m.env = val;
		} else if ((kiln_str_eq(key, "ro") || kiln_str_eq(key, "readonly")) &&
		           parse_bool(val, &b)) {
			readonly = b, ro_given = true;
		} else if ((kiln_str_eq(key, "rw") || kiln_str_eq(key, "readwrite")) &&
		           parse_bool(val, &b)) {
			rw = b;
		} else if (kiln_str_eq(key, "sharing") && val) {
			if (kiln_str_eq(val, "shared"))
				m.sharing = EX_SHARING_SHARED;
			else if (kiln_str_eq(val, "private"))
				m.sharing = EX_SHARING_PRIVATE;
			else if (kiln_str_eq(val, "locked"))
				m.sharing = EX_SHARING_LOCKED;
			else
				return kiln_err_invalid(err, "--mount %s: unknown sharing %s", spec,
				                        val);
		} else if (kiln_str_eq(key, "mode") && val && !parse_u32(val, 8, &m.mode)) {
			m.has_mode = true;
		} else if (kiln_str_eq(key, "uid") && val && !parse_u32(val, 10, &m.uid)) {
			m.has_uid = true;
		} else if (kiln_str_eq(key, "gid") && val && !parse_u32(val, 10, &m.gid)) {
			m.has_gid = true;
		} else if (kiln_str_eq(key, "size") && val && !parse_size(val, &m.size)) {
		} else if (kiln_str_eq(key, "required") && parse_bool(val, &b)) {
		} else {
			return kiln_err_invalid(err, "--mount %s: bad option %s%s%s", spec, key,
			                        val ? "=" : "", val ? val : "");
		}
	}
	if (m.type == EX_MOUNT_BIND)
		m.rw = ro_given ? !readonly : rw;
	else if (m.type == EX_MOUNT_CACHE)
		m.readonly = readonly && !rw;
	else if (ro_given || rw)
		return kiln_err_invalid(err, "--mount %s: ro/rw are for bind and cache mounts",
		                        spec);
	if (m.type == EX_MOUNT_SECRET) {
		/* The executor takes the content, not a path: read it here. */
		if (!m.source)
			return kiln_err_invalid(err, "--mount %s: a secret needs src=FILE", spec);
		ms->secrets =
		        kiln_xreallocarray(ms->secrets, ms->nsecrets + 1, sizeof(*ms->secrets));
		struct kiln_buf *b = &ms->secrets[ms->nsecrets++];
		*b = (struct kiln_buf)KILN_BUF_INIT;
		if (kiln_buf_read_file(b, m.source, err) < 0)
			return kiln_err_wrap(err, "--mount %s", spec);
		m.data = b->buf;
		m.data_len = b->len;
		if (!m.id) {
			const char *slash = strrchr(m.source, '/');
			m.id = slash ? slash + 1 : m.source;
		}
		m.source = NULL;
	}
	if (m.type == EX_MOUNT_SSH && !m.source) {
		m.source = getenv("SSH_AUTH_SOCK");
		if (!m.source || !*m.source)
			return kiln_err_invalid(err, "--mount %s: no src= and no $SSH_AUTH_SOCK",
			                        spec);
	}
	KILN_GROW(ms->v, ms->alloc, ms->n + 1);
	ms->v[ms->n++] = m;
	return 0;
}

static void
mount_specs_release(struct mount_specs *ms)
{
	free(ms->v);
	kiln_strv_release(&ms->strings);
	for (size_t i = 0; i < ms->nsecrets; i++)
		kiln_buf_release(&ms->secrets[i]);
	free(ms->secrets);
}

/* An image's root filesystem on a throwaway snapshot, and its defaults. */
struct image_root {
	struct reg_store *reg;
	struct snap_store *snaps;
	struct snap_mount *mount;
	struct reg_image img;
	struct kiln_strv env, argv;
	char *cwd, *user;
};

static void
image_root_release(struct image_root *ir)
{
	snap_mount_release(ir->mount); /* unmounts and discards the container's writes */
	snap_store_free(ir->snaps);
	reg_image_release(&ir->img);
	reg_store_free(ir->reg);
	kiln_strv_release(&ir->env);
	kiln_strv_release(&ir->argv);
	free(ir->cwd);
	free(ir->user);
}

static void
json_strings(json_t *arr, struct kiln_strv *out)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		if (json_is_string(v))
			kiln_strv_push(out, json_string_value(v));
	}
}

static int
image_root_open(struct image_root *ir, const char *ref, const char *entrypoint, char **cmd,
                struct kiln_err *err)
{
	if (reg_store_open(cmd_root(), &ir->reg, err) < 0)
		return -1;
	if (reg_image_open(ir->reg, ref, NULL, &ir->img, err) < 0)
		return kiln_err_wrap(err, "image %s (kiln load, import or build it first)", ref);
	const struct reg_manifest *m = &ir->img.manifest;
	const struct kiln_strv *diff_ids = &ir->img.config.diff_ids;
	if (diff_ids->n != m->n_layers)
		return kiln_err_invalid(err, "image %s: %zu layers but %zu diff_ids", ref,
		                        m->n_layers, diff_ids->n);
	if (snap_store_open(cmd_root(), NULL, &ir->snaps, err) < 0)
		return -1;
	_cleanup_free_ char *chain = NULL;
	for (size_t i = 0; i < m->n_layers; i++) {
		_cleanup_close_ int fd = reg_blob_open(ir->reg, m->layers[i].digest, err);
		if (fd < 0)
			return fd;
		char *next = NULL;
		if (snap_layer_apply(ir->snaps, chain, fd, m->layers[i].media_type, diff_ids->v[i],
		                     &next, err) < 0)
			return kiln_err_wrap(err, "layer %s", m->layers[i].digest);
		free(chain);
		chain = next;
	}
	if (snap_prepare(ir->snaps, chain, &ir->mount, err) < 0)
		return -1;

	json_t *cfg = ir->img.config.config;
	json_strings(json_object_get(cfg, "Env"), &ir->env);
	const char *wd = json_string_value(json_object_get(cfg, "WorkingDir"));
	const char *user = json_string_value(json_object_get(cfg, "User"));
	ir->cwd = wd && *wd ? kiln_xstrdup(wd) : NULL;
	ir->user = user && *user ? kiln_xstrdup(user) : NULL;
	/* docker run: the given command replaces Cmd; Entrypoint stays in front, and
	 * --entrypoint replaces both. */
	if (entrypoint && *entrypoint)
		kiln_strv_push(&ir->argv, entrypoint);
	else if (!entrypoint)
		json_strings(json_object_get(cfg, "Entrypoint"), &ir->argv);
	if ((cmd && *cmd) || entrypoint)
		for (; *cmd; cmd++)
			kiln_strv_push(&ir->argv, *cmd);
	else
		json_strings(json_object_get(cfg, "Cmd"), &ir->argv);
	if (!ir->argv.n)
		return kiln_err_invalid(err, "image %s has no Cmd or Entrypoint; give a command",
		                        ref);
	return 0;
}

static void
print_line(void *data, int stream, const char *line, size_t len)
{
	FILE *f = stream == EX_STREAM_STDERR ? stderr : stdout;
	fwrite(line, 1, len, f);
	fputc('\n', f);
	fflush(f);
}

static int
run(int argc, char **argv, struct mount_specs *ms, struct kiln_strv *env, struct image_root *ir)
{
	struct ex_run_opts o = EX_RUN_OPTS_INIT;
	bool cwd_set = false;
	const char *entrypoint = NULL;
	struct kiln_err err = KILN_ERR_INIT;
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		if (kiln_str_eq(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-')
			break;
		if (kiln_str_eq(a, "-h") || kiln_str_eq(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (!next) {
			fprintf(stderr, "kiln run: %s needs a value\n", a);
			return KILN_EXIT_USAGE;
		}
		i++;
		if (kiln_str_eq(a, "--rootfs")) {
			o.rootfs = next;
		} else if (kiln_str_eq(a, "--network")) {
			if (kiln_str_eq(next, "none"))
				o.network = EX_NET_NONE;
			else if (kiln_str_eq(next, "host") || kiln_str_eq(next, "default"))
				o.network = EX_NET_HOST;
			else {
				fprintf(stderr, "kiln run: --network must be none or host\n");
				return KILN_EXIT_USAGE;
			}
		} else if (kiln_str_eq(a, "--mount")) {
			if (parse_mount(ms, next, &err) < 0) {
				cmd_print_err(&err);
				return KILN_EXIT_USAGE;
			}
		} else if (kiln_str_eq(a, "-e") || kiln_str_eq(a, "--env")) {
			if (strchr(next, '='))
				kiln_strv_push(env, next);
			else if (getenv(next))
				kiln_strv_pushf(env, "%s=%s", next, getenv(next));
		} else if (kiln_str_eq(a, "-u") || kiln_str_eq(a, "--user")) {
			o.user = next;
		} else if (kiln_str_eq(a, "-w") || kiln_str_eq(a, "--workdir")) {
			o.cwd = next;
			cwd_set = true;
		} else if (kiln_str_eq(a, "--entrypoint")) {
			entrypoint = next;
		} else if (kiln_str_eq(a, "--hostname")) {
			o.hostname = next;
		} else if (kiln_str_eq(a, "--timeout")) {
			uint64_t secs;
			if (kiln_parse_u64(next, &secs) < 0 || secs > UINT64_MAX / 1000) {
				fprintf(stderr, "kiln run: --timeout takes whole seconds\n");
				return KILN_EXIT_USAGE;
			}
			o.timeout_ms = secs * 1000;
		} else {
			fprintf(stderr, "kiln run: unknown option %s\n", a);
			usage(stderr);
			return KILN_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return KILN_EXIT_USAGE;
	}
	/* Ctrl-C, SIGTERM and SIGHUP cancel the run: kiln kills the container and cleans up
	 * instead of dying with mounts and processes behind. Blocked from here on, so a
	 * Ctrl-C while layers unpack cancels the run as soon as it starts. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	_cleanup_close_ int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	o.cancel_fd = sfd;
	if (o.rootfs && entrypoint) {
		fprintf(stderr, "kiln run: --entrypoint is for images; with --rootfs give the "
		                "command\n");
		return KILN_EXIT_USAGE;
	}
	if (o.rootfs) {
		o.argv = argv + i;
		o.env = kiln_strv_get(env);
	} else {
		const char *image = argv[i++];
		if (image_root_open(ir, image, entrypoint, argv + i, &err) < 0) {
			cmd_print_err(&err);
			return EXIT_SETUP;
		}
		o.rootfs = snap_mount_path(ir->mount);
		o.argv = kiln_strv_get(&ir->argv);
		/* The image's environment first: a later -e of the same key wins. */
		for (size_t k = 0; k < env->n; k++)
			kiln_strv_push(&ir->env, env->v[k]);
		o.env = kiln_strv_get(&ir->env);
		if (!cwd_set && ir->cwd)
			o.cwd = ir->cwd;
		if (!o.user)
			o.user = ir->user;
	}
	/* As in RUN --mount, a relative target is relative to the working directory. */
	for (size_t k = 0; k < ms->n; k++) {
		struct ex_mount *m = &ms->v[k];
		if (m->target && m->target[0] != '/') {
			char *abs = kiln_path_join(o.cwd, m->target);
			kiln_strv_push_take(&ms->strings, abs);
			m->target = abs;
		}
		if (ex_mount_check(m, &err) < 0) {
			cmd_print_err(&err);
			return KILN_EXIT_USAGE;
		}
	}
	o.mounts = ms->v;
	o.nmounts = ms->n;
	o.store_root = cmd_root();
	o.output = print_line;

	struct ex_result res;
	int r = ex_run(&o, &res, &err);
	if (r < 0) {
		int code = err.code;
		bool exec = err.msg && kiln_str_has_prefix(err.msg, "exec ");
		cmd_print_err(&err);
		if (exec)
			return code == ENOENT ? 127 : 126;
		return EXIT_SETUP;
	}
	if (res.timed_out) {
		fprintf(stderr, "kiln: timed out after %llu s; the container was killed\n",
		        (unsigned long long)(o.timeout_ms / 1000));
		return EXIT_TIMEOUT;
	}
	if (res.cancelled) {
		fprintf(stderr, "kiln: interrupted; the container was killed\n");
		return 130;
	}
	if (res.signal)
		return 128 + res.signal;
	return res.exit_code;
}

int
cmd_run(int argc, char **argv)
{
	struct mount_specs ms = {0};
	struct kiln_strv env = KILN_STRV_INIT;
	struct image_root ir = {.img = REG_IMAGE_INIT};
	int r = run(argc, argv, &ms, &env, &ir);
	image_root_release(&ir);
	mount_specs_release(&ms);
	kiln_strv_release(&env);
	return r;
}
