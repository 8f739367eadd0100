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
 * SPEC is RUN --mount's syntax (type=cache,target=/x,...); secrets come from --secret as
 * with kiln build (id=ID,src=FILE|env=VAR); an ssh mount's src= is an agent socket
 * ($SSH_AUTH_SOCK by default). Exit status: the command's, 128+N when signal N ended it, 124 on
 *timeout, 125 when kiln failed, 126/127 when the command could not be executed, 2 on usage.
 */
#include "cmd.h"
#include "executor/ex.h"
#include "frontend/fe.h"
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
	           "  --secret id=ID,src=FILE|env=VAR  a secret for type=secret mounts\n"
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
	struct kiln_arena *arena;   /* the parsed specs' strings */
	struct cmd_secrets secrets; /* --secret: ids and contents */
};

/* The same spec syntax and checks as RUN --mount (fe_mount_parse); what differs is where
 * sources come from: a bind's source is a host path, a secret's content comes from
 * --secret, an ssh src= is an agent socket ($SSH_AUTH_SOCK by default). */
static int
parse_mount(struct mount_specs *ms, const char *spec, const struct cmd_secrets *secrets,
            struct kiln_err *err)
{
	struct fe_mount fm;
	if (fe_mount_parse(ms->arena, spec, &fm, err) < 0)
		return kiln_err_wrap(err, "--mount %s", spec);
	if (fm.from)
		return kiln_err_invalid(
		        err, "--mount %s: from= needs a build; kiln run mounts host paths", spec);
	struct ex_mount m = {
	        .type = (enum ex_mount_type)fm.type,
	        .target = fm.target,
	        .source = fm.source,
	        .id = fm.id,
	        .env = fm.env,
	        .sharing = (enum ex_sharing)fm.sharing,
	        .has_mode = fm.has_mode,
	        .has_uid = fm.has_uid,
	        .has_gid = fm.has_gid,
	        .mode = fm.mode,
	        .uid = fm.uid,
	        .gid = fm.gid,
	        .size = fm.size,
	};
	if (fm.type == FE_MOUNT_BIND)
		m.rw = !fm.readonly;
	else if (fm.type == FE_MOUNT_CACHE)
		m.readonly = fm.readonly;
	if (m.type == EX_MOUNT_SECRET) {
		/* As RUN --mount: source= is another name for id=, and the id defaults to the
		 * target's base name. The content comes from --secret. */
		const char *id = fm.id ? fm.id : fm.source;
		if (!id && fm.target) {
			const char *slash = strrchr(fm.target, '/');
			id = slash ? slash + 1 : fm.target;
		}
		const struct cmd_secret *sec = id ? cmd_secrets_find(secrets, id) : NULL;
		if (!sec) {
			if (fm.required)
				return kiln_err_invalid(
				        err, "--mount %s: secret %s not given with --secret", spec,
				        id ? id : "(no id)");
			return 0; /* an optional secret that was not given is not mounted */
		}
		m.id = sec->id;
		m.source = NULL;
		m.data = sec->data.buf;
		m.data_len = sec->data.len;
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
	kiln_arena_free(ms->arena);
	cmd_secrets_release(&ms->secrets);
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
	struct snap_store_opts so = SNAP_STORE_OPTS_INIT;
	if (snap_driver_parse(cmd_snapshotter(), &so.driver, err) < 0)
		return -EINVAL;
	if (snap_store_open(cmd_root(), &so, &ir->snaps, err) < 0)
		return -1;
	if (snap_store_notice(ir->snaps))
		fprintf(stderr, "kiln: notice: %s\n", snap_store_notice(ir->snaps));
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
	_cleanup_strv_ struct kiln_strv mount_args = KILN_STRV_INIT;
	struct cmd_secrets *secrets = &ms->secrets;
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
			kiln_strv_push(&mount_args, next);
		} else if (kiln_str_eq(a, "--secret")) {
			if (cmd_secrets_add(secrets, next, &err) < 0) {
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
	for (size_t k = 0; k < mount_args.n; k++) {
		if (parse_mount(ms, mount_args.v[k], secrets, &err) < 0) {
			cmd_print_err(&err);
			return KILN_EXIT_USAGE;
		}
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
			_cleanup_free_ char *abs = kiln_path_join(o.cwd, m->target);
			m->target = kiln_arena_strdup(ms->arena, abs);
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
	struct mount_specs ms = {.arena = kiln_arena_new()};
	struct kiln_strv env = KILN_STRV_INIT;
	struct image_root ir = {.img = REG_IMAGE_INIT};
	int r = run(argc, argv, &ms, &env, &ir);
	image_root_release(&ir);
	mount_specs_release(&ms);
	kiln_strv_release(&env);
	return r;
}
