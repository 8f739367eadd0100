/*
 * kiln build: Dockerfile + context -> an image in the store.
 *
 *	kiln build [-f FILE] [-t NAME]... [--target T] [--build-arg K=V]... [--secret SPEC]...
 *		   [--ssh default|ID=PATH] [--no-cache] [--no-cache-filter STAGE] [--jobs N]
 *		   [--pull] [--metadata-file F] [--platform HOST]
 *		   [--progress auto|tty|plain|quiet|rawjson] [--iidfile F] [--explain] [--check]
 *		   [--allow network.host|security.insecure] [-o type=local,dest=DIR] CONTEXT
 *
 * fe_plan lowers the Dockerfile, the solver runs the target stage's vertices through the
 * ops (ops/ops.h) with the persistent cache, and the exporter turns the target's snapshot
 * chain above its base image into layers and an image named by every -t. CONTEXT `-`
 * reads the Dockerfile from standard input, with an empty context.
 * Exit status: 0 built, 1 the build failed, 2 usage.
 */
#include "cmd.h"
#include "exporter/exp.h"
#include "frontend/fe.h"
#include "ops/ops.h"
#include "registry/reg.h"
#include "snapshot/snap.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>

static void
usage(FILE *f)
{
	fprintf(f,
	        "Usage: kiln build [OPTIONS] CONTEXT\n"
	        "  -f, --file FILE          the Dockerfile (default CONTEXT/Dockerfile; - = "
	        "stdin)\n"
	        "  -t, --tag NAME           name the image (repeatable)\n"
	        "  --target STAGE           build this stage\n"
	        "  --build-arg K[=V]        set a build argument (repeatable)\n"
	        "  --secret id=ID,src=FILE|env=VAR   a secret for RUN --mount=type=secret\n"
	        "  --ssh default|ID=SOCKET  an ssh agent for RUN --mount=type=ssh\n"
	        "  --no-cache               run every step\n"
	        "  --no-cache-filter STAGE  run every step of these stages (repeatable, a,b)\n"
	        "  --pull                   fetch base images again even when stored\n"
	        "  --platform P             the host's platform only, for now\n"
	        "  --jobs N                 RUN steps at once (default: no limit)\n"
	        "  --progress MODE          auto|tty|plain|quiet|rawjson\n"
	        "  --iidfile FILE           write the image id (config digest) to FILE\n"
	        "  --metadata-file FILE     containerimage.digest and .config.digest as JSON\n"
	        "  --explain                say why each step missed the cache\n"
	        "  --check                  run the build checks (kiln lint) only, build nothing\n"
	        "  --allow ENT              network.host, security.insecure\n"
	        "  -o, --output SPEC        type=local,dest=DIR: the final stage's files\n");
}

enum progress { PROGRESS_PLAIN, PROGRESS_QUIET, PROGRESS_RAWJSON };

/* Progress state: step numbers in the order steps are first seen. */
struct prog {
	enum progress mode;
	FILE *out;
	size_t *numbers; /* by vertex index; 0 = not seen */
	size_t nvertices;
	size_t next;
};

static size_t
step_number(struct prog *p, const struct sv_vertex *v)
{
	if (v->index >= p->nvertices)
		return 0;
	if (!p->numbers[v->index])
		p->numbers[v->index] = ++p->next;
	return p->numbers[v->index];
}

static void
print_log(struct prog *p, size_t n, const char *data, size_t len)
{
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t l = nl ? (size_t)(nl - data) : len;
		fprintf(p->out, "#%zu %.*s\n", n, (int)l, data);
		if (!nl)
			break;
		len -= l + 1;
		data = nl + 1;
	}
}

static void
on_event(void *data, const struct sv_event *ev)
{
	struct prog *p = data;
	const struct sv_vertex *v = ev->vertex;
	const char *desc = v->description ? v->description : sv_op_name(v->op);
	if (p->mode == PROGRESS_QUIET)
		return;
	if (p->mode == PROGRESS_RAWJSON) {
		_cleanup_json_ json_t *j =
		        json_pack("{s:s, s:s, s:s}", "event", sv_event_name(ev->type), "vertex",
		                  v->digest_hex, "name", desc);
		if (ev->cache_key)
			json_object_set_new(j, "cache_key", json_string(ev->cache_key));
		if (ev->explain)
			json_object_set_new(j, "explain", json_string(ev->explain));
		if (ev->type == SV_EVENT_LOG) {
			json_object_set_new(j, "stream", json_integer(ev->stream));
			json_object_set_new(j, "data", json_stringn(ev->data, ev->len));
		}
		if (ev->type == SV_EVENT_FINISHED || ev->type == SV_EVENT_FAILED)
			json_object_set_new(j, "duration_ns",
			                    json_integer((json_int_t)ev->duration_ns));
		if (ev->type == SV_EVENT_FAILED && ev->err && ev->err->msg)
			json_object_set_new(j, "error", json_string(ev->err->msg));
		char *s = json_dumps(j, JSON_COMPACT);
		if (s)
			fprintf(p->out, "%s\n", s);
		free(s);
		fflush(p->out);
		return;
	}
	size_t n = step_number(p, v);
	switch (ev->type) {
	case SV_EVENT_STARTED:
		fprintf(p->out, "#%zu %s\n", n, desc);
		if (ev->explain)
			fprintf(p->out, "#%zu explain: %s\n", n, ev->explain);
		break;
	case SV_EVENT_CACHED:
		fprintf(p->out, "#%zu %s\n#%zu CACHED\n", n, desc, n);
		break;
	case SV_EVENT_LOG:
		print_log(p, n, ev->data, ev->len);
		break;
	case SV_EVENT_FINISHED:
		fprintf(p->out, "#%zu DONE %.1fs\n", n, (double)ev->duration_ns / 1e9);
		break;
	case SV_EVENT_FAILED:
		fprintf(p->out, "#%zu ERROR: %s\n", n,
		        ev->err && ev->err->msg ? ev->err->msg : "failed");
		break;
	case SV_EVENT_CANCELLED:
		fprintf(p->out, "#%zu CANCELED\n", n);
		break;
	}
	fflush(p->out);
}

struct build_args {
	const char *file, *context, *target, *iidfile, *output, *ssh, *metadata_file, *platform;
	struct kiln_strv tags, build_args, no_cache_stages;
	struct cmd_secrets secrets;
	bool no_cache, pull, explain, check, allow_host, allow_insecure;
	unsigned jobs;
	enum progress progress;
};

static void
build_args_release(struct build_args *a)
{
	kiln_strv_release(&a->tags);
	kiln_strv_release(&a->build_args);
	kiln_strv_release(&a->no_cache_stages);
	cmd_secrets_release(&a->secrets);
}

/* --no-cache-filter: stage names (case-insensitive, as stage names are) or indexes. */
static bool
no_cache_stage(void *data, const char *stage)
{
	const struct build_args *a = data;
	for (size_t i = 0; i < a->no_cache_stages.n; i++)
		if (!strcasecmp(a->no_cache_stages.v[i], stage))
			return true;
	return false;
}

/* -o type=local,dest=DIR -> DIR. */
static int
parse_output(const char *spec, char **ret_dest, struct kiln_err *err)
{
	_cleanup_free_ char *copy = kiln_xstrdup(spec);
	const char *type = NULL, *dest = NULL;
	for (char *save = NULL, *f = strtok_r(copy, ",", &save); f;
	     f = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(f, '=');
		if (!eq) {
			/* buildx: a bare path is type=local,dest=PATH */
			if (!type && !dest) {
				type = "local";
				dest = f;
				continue;
			}
			return kiln_err_invalid(err, "--output %s: %s is not key=value", spec, f);
		}
		*eq = '\0';
		if (kiln_str_eq(f, "type"))
			type = eq + 1;
		else if (kiln_str_eq(f, "dest"))
			dest = eq + 1;
		else
			return kiln_err_invalid(err, "--output %s: unknown key %s", spec, f);
	}
	if (!type || !kiln_str_eq(type, "local"))
		return kiln_err_invalid(err, "--output %s: only type=local is supported yet", spec);
	if (!dest || !*dest)
		return kiln_err_invalid(err, "--output %s: dest= is required", spec);
	*ret_dest = kiln_xstrdup(dest);
	return 0;
}

static int
parse_args(int argc, char **argv, struct build_args *a, struct kiln_err *err)
{
	static const char *const valued[] = {
	        "--file",          "--tag",      "--target", "--build-arg",
	        "--secret",        "--ssh",      "--jobs",   "--progress",
	        "--iidfile",       "--allow",    "--output", "--no-cache-filter",
	        "--metadata-file", "--platform",
	};
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (arg[0] != '-' || kiln_str_eq(arg, "-")) {
			if (a->context)
				return kiln_err_invalid(err, "more than one CONTEXT given");
			a->context = arg;
			continue;
		}
		if (kiln_str_eq(arg, "-h") || kiln_str_eq(arg, "--help"))
			return 1;
		if (kiln_str_eq(arg, "--no-cache")) {
			a->no_cache = true;
			continue;
		}
		if (kiln_str_eq(arg, "--pull")) {
			a->pull = true;
			continue;
		}
		if (kiln_str_eq(arg, "--explain")) {
			a->explain = true;
			continue;
		}
		if (kiln_str_eq(arg, "--check")) {
			a->check = true;
			continue;
		}
		if (kiln_str_eq(arg, "-q") || kiln_str_eq(arg, "--quiet")) {
			a->progress = PROGRESS_QUIET;
			continue;
		}
		const char *name = NULL, *val = NULL;
		if (kiln_str_eq(arg, "-f"))
			name = "--file";
		else if (kiln_str_eq(arg, "-t"))
			name = "--tag";
		else if (kiln_str_eq(arg, "-o"))
			name = "--output";
		for (size_t k = 0; !name && k < KILN_ARRAY_SIZE(valued); k++) {
			size_t n = strlen(valued[k]);
			if (!strncmp(arg, valued[k], n) && (arg[n] == '=' || !arg[n])) {
				name = valued[k];
				val = arg[n] == '=' ? arg + n + 1 : NULL;
			}
		}
		if (!name)
			return kiln_err_invalid(err, "unknown option %s", arg);
		if (!val) {
			if (i + 1 >= argc)
				return kiln_err_invalid(err, "%s needs a value", arg);
			val = argv[++i];
		}
		if (kiln_str_eq(name, "--file")) {
			a->file = val;
		} else if (kiln_str_eq(name, "--tag")) {
			kiln_strv_push(&a->tags, val);
		} else if (kiln_str_eq(name, "--target")) {
			a->target = val;
		} else if (kiln_str_eq(name, "--build-arg")) {
			kiln_strv_push(&a->build_args, val);
		} else if (kiln_str_eq(name, "--secret")) {
			if (cmd_secrets_add(&a->secrets, val, err) < 0)
				return -1;
		} else if (kiln_str_eq(name, "--ssh")) {
			a->ssh = val;
		} else if (kiln_str_eq(name, "--jobs")) {
			uint64_t n;
			if (kiln_parse_u64(val, &n) < 0 || n == 0 || n > 1024)
				return kiln_err_invalid(err,
				                        "--jobs takes a number from 1 to 1024");
			a->jobs = (unsigned)n;
		} else if (kiln_str_eq(name, "--progress")) {
			if (kiln_str_eq(val, "plain") || kiln_str_eq(val, "auto") ||
			    kiln_str_eq(val, "tty"))
				a->progress = PROGRESS_PLAIN; /* no live view yet */
			else if (kiln_str_eq(val, "quiet"))
				a->progress = PROGRESS_QUIET;
			else if (kiln_str_eq(val, "rawjson"))
				a->progress = PROGRESS_RAWJSON;
			else
				return kiln_err_invalid(
				        err,
				        "--progress must be auto, tty, plain, quiet or rawjson");
		} else if (kiln_str_eq(name, "--iidfile")) {
			a->iidfile = val;
		} else if (kiln_str_eq(name, "--allow")) {
			if (kiln_str_eq(val, "network.host"))
				a->allow_host = true;
			else if (kiln_str_eq(val, "security.insecure"))
				a->allow_insecure = true;
			else
				return kiln_err_invalid(
				        err, "--allow takes network.host or security.insecure");
		} else if (kiln_str_eq(name, "--output")) {
			a->output = val;
		} else if (kiln_str_eq(name, "--no-cache-filter")) {
			_cleanup_free_ char *copy = kiln_xstrdup(val);
			for (char *save = NULL, *f = strtok_r(copy, ",", &save); f;
			     f = strtok_r(NULL, ",", &save))
				kiln_strv_push(&a->no_cache_stages, f);
		} else if (kiln_str_eq(name, "--metadata-file")) {
			a->metadata_file = val;
		} else if (kiln_str_eq(name, "--platform")) {
			a->platform = val;
		}
	}
	if (!a->context)
		return kiln_err_invalid(err, "no CONTEXT given");
	return 0;
}

/* Base images' Env for lint's UndefinedVar, from the store (NULL when not there). */
struct lint_images {
	struct reg_store *reg;
	struct kiln_strv *envs;
	size_t n, alloc;
};

static char *const *
lint_image_env(void *data, const char *image)
{
	struct lint_images *li = data;
	if (!li->reg)
		return NULL;
	struct reg_image img = REG_IMAGE_INIT;
	struct kiln_err err = KILN_ERR_INIT;
	if (reg_image_open(li->reg, image, NULL, &img, &err) < 0) {
		kiln_err_release(&err);
		return NULL;
	}
	KILN_GROW(li->envs, li->alloc, li->n + 1);
	struct kiln_strv *env = &li->envs[li->n++];
	*env = (struct kiln_strv)KILN_STRV_INIT;
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(img.config.config, "Env"), i, e)
	{
		if (json_is_string(e))
			kiln_strv_push(env, json_string_value(e));
	}
	reg_image_release(&img);
	return kiln_strv_get(env);
}

/*
 * The build checks at the start of a build, as BuildKit runs them: findings are printed
 * (unless quiet) and the build goes on, except that findings raised to errors by
 * `# check=error=true` (or BUILDKIT_DOCKERFILE_CHECK) stop it. Returns how many errors.
 */
static size_t
lint(const char *file, const char *text, const char *context, const char *dockerfile,
     char *const *build_args, struct reg_store *reg, bool print)
{
	size_t errors = 0;
	struct lint_images li = {.reg = reg};
	struct kiln_err err = KILN_ERR_INIT;
	struct fe_ast *ast = NULL;
	if (fe_parse(file, text, strlen(text), &ast, &err) < 0) {
		kiln_err_release(&err); /* fe_plan reports parse errors */
		return 0;
	}
	struct fe_lint_opts lo = FE_LINT_OPTS_INIT;
	lo.context_dir = context;
	lo.dockerfile = dockerfile;
	lo.build_args = build_args;
	lo.image_env = lint_image_env;
	lo.image_env_ctx = &li;
	struct fe_lint_finding *f = NULL;
	size_t nf = 0;
	if (fe_lint(ast, &lo, &f, &nf, &err) < 0) {
		kiln_err_release(&err);
	} else {
		for (size_t i = 0; i < nf; i++) {
			errors += f[i].severity == FE_LINT_ERROR;
			if (print)
				fprintf(stderr, "%s:%d: %s %s: %s\n", f[i].file, f[i].line,
				        fe_lint_severity_name(f[i].severity), f[i].rule->name,
				        f[i].message);
		}
		if (print && nf)
			fprintf(stderr, "%zu build check finding(s)\n", nf);
		fe_lint_findings_free(f, nf);
	}
	fe_ast_free(ast);
	for (size_t i = 0; i < li.n; i++)
		kiln_strv_release(&li.envs[i]);
	free(li.envs);
	return errors;
}

static int
write_file(const char *path, const char *text, struct kiln_err *err)
{
	return kiln_write_file_atomic_at(AT_FDCWD, path, text, strlen(text), 0644, err);
}

/* Ctrl-C, SIGTERM and SIGHUP stop the build cleanly: running steps are killed, nothing
 * half-done is committed, mounts and snapshots are released on the way out. */
struct sigwatch {
	struct ops *ops;
	int sfd, stopfd;
	pthread_t thread;
	bool started;
	bool fired;
};

static void *
sigwatch_main(void *arg)
{
	struct sigwatch *w = arg;
	struct pollfd p[2] = {{.fd = w->sfd, .events = POLLIN},
	                      {.fd = w->stopfd, .events = POLLIN}};
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (p[1].revents)
			return NULL;
		if (p[0].revents) {
			struct signalfd_siginfo si;
			(void)!read(w->sfd, &si, sizeof(si));
			if (!w->fired)
				fprintf(stderr, "kiln: interrupted; stopping the build\n");
			w->fired = true;
			ops_interrupt(w->ops);
		}
	}
}

static void
sigwatch_start(struct sigwatch *w, struct ops *ops)
{
	*w = (struct sigwatch){.ops = ops, .sfd = -1, .stopfd = -1};
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	/* Blocked before the solver's threads exist, so they inherit the mask. */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	w->sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	w->stopfd = eventfd(0, EFD_CLOEXEC);
	if (w->sfd >= 0 && w->stopfd >= 0 &&
	    pthread_create(&w->thread, NULL, sigwatch_main, w) == 0)
		w->started = true;
}

static void
sigwatch_stop(struct sigwatch *w)
{
	if (w->started) {
		uint64_t one = 1;
		(void)!write(w->stopfd, &one, sizeof(one));
		pthread_join(w->thread, NULL);
	}
	if (w->sfd >= 0)
		close(w->sfd);
	if (w->stopfd >= 0)
		close(w->stopfd);
	w->started = false;
	w->sfd = w->stopfd = -1;
}

struct build {
	struct reg_store *reg;
	struct snap_store *snaps;
	struct sv_cache *cache;
	struct ops *ops;
	struct sv_solver *solver;
	struct sv_graph *graph;
	struct ops_secret *secrets;
	char *tmp_context; /* the empty context of `kiln build -` */
	struct prog prog;
	struct sigwatch sig;
};

static void
build_release(struct build *b)
{
	sigwatch_stop(&b->sig);
	sv_solver_free(b->solver);
	sv_graph_free(b->graph);
	ops_free(b->ops);
	sv_cache_free(b->cache);
	snap_store_free(b->snaps);
	reg_store_free(b->reg);
	free(b->secrets);
	free(b->tmp_context);
	free(b->prog.numbers);
}

static int
build(struct build_args *a, struct build *b, struct kiln_err *err)
{
	const char *context = a->context;
	_cleanup_buf_ struct kiln_buf stdin_text = KILN_BUF_INIT;
	const char *file_name = "Dockerfile";
	const char *dockerfile = NULL;
	if (kiln_str_eq(context, "-")) {
		/* docker build -: the Dockerfile on stdin, no context. */
		if (cmd_read_input("-", &stdin_text, err) < 0)
			return -1;
		/* One empty directory in the store, shared and kept: a killed build leaves
		 * nothing behind in /tmp. */
		b->tmp_context = kiln_xasprintf("%s/empty-context", cmd_root());
		if (mkdir(cmd_root(), 0700) < 0 && errno != EEXIST)
			return kiln_err_set(err, errno, "mkdir `%s`", cmd_root());
		if (mkdir(b->tmp_context, 0755) < 0 && errno != EEXIST)
			return kiln_err_set(err, errno, "mkdir `%s`", b->tmp_context);
		context = b->tmp_context;
	} else if (a->file && kiln_str_eq(a->file, "-")) {
		if (cmd_read_input("-", &stdin_text, err) < 0)
			return -1;
	} else if (a->file) {
		dockerfile = a->file;
		file_name = a->file;
	}
	_cleanup_buf_ struct kiln_buf df_text = KILN_BUF_INIT;
	_cleanup_free_ char *df_path =
	        dockerfile ? kiln_xstrdup(dockerfile) : kiln_path_join(context, "Dockerfile");
	const char *text = stdin_text.buf;
	if (!stdin_text.len) {
		if (kiln_buf_read_file(&df_text, df_path, err) < 0)
			return kiln_err_wrap(err, "read Dockerfile");
		text = df_text.buf;
	}
	char *const *bargs = kiln_strv_get(&a->build_args);
	if (reg_store_open(cmd_root(), &b->reg, err) < 0)
		return -1;
	size_t check_errors = lint(file_name, text, context, dockerfile, bargs, b->reg,
	                           a->check || a->progress != PROGRESS_QUIET);
	if (check_errors)
		return kiln_err_invalid(err, "%zu build check error(s) (check=error=true)",
		                        check_errors);
	struct fe_plan_opts po = FE_PLAN_OPTS_INIT;
	po.context_dir = context;
	po.dockerfile = dockerfile;
	po.dockerfile_data = stdin_text.len ? stdin_text.buf : NULL;
	po.target = a->target;
	po.build_args = bargs;
	po.platform = a->platform;
	_cleanup_strv_ struct kiln_strv warnings = KILN_STRV_INIT;
	po.warnings = &warnings;
	int r = fe_plan(&po, &b->graph, err);
	for (size_t i = 0; i < warnings.n; i++)
		fprintf(stderr, "kiln: warning: %s\n", warnings.v[i]);
	if (r < 0)
		return r;
	if (a->check)
		return 0; /* --check: the checks and the plan only, nothing is built */
	const struct sv_result *res = NULL;
	for (size_t i = 0; i < b->graph->nresults; i++)
		if (b->graph->results[i].target)
			res = &b->graph->results[i];
	if (!res)
		return kiln_err_invalid(err, "the Dockerfile has no target stage");

	struct snap_store_opts so = SNAP_STORE_OPTS_INIT;
	if (snap_driver_parse(cmd_snapshotter(), &so.driver, err) < 0)
		return -EINVAL;
	if (snap_store_open(cmd_root(), &so, &b->snaps, err) < 0)
		return -1;
	if (snap_store_notice(b->snaps))
		fprintf(stderr, "kiln: notice: %s\n", snap_store_notice(b->snaps));
	if (sv_cache_open(cmd_root(), &b->cache, err) < 0)
		return -1;

	b->secrets = kiln_xcalloc(a->secrets.n ? a->secrets.n : 1, sizeof(*b->secrets));
	for (size_t i = 0; i < a->secrets.n; i++)
		b->secrets[i] = (struct ops_secret){.id = a->secrets.v[i].id,
		                                    .data = a->secrets.v[i].data.buf,
		                                    .len = a->secrets.v[i].data.len};
	struct ops_opts oo = OPS_OPTS_INIT;
	oo.root = cmd_root();
	oo.snaps = b->snaps;
	oo.reg = b->reg;
	oo.context_dir = context;
	oo.secrets = b->secrets;
	oo.nsecrets = a->secrets.n;
	oo.allow_network_host = a->allow_host;
	oo.allow_insecure = a->allow_insecure;
	oo.pull_always = a->pull;
	if (a->ssh) {
		/* default | default=SOCKET | ID=SOCKET: one agent for every ssh mount. */
		const char *eq = strchr(a->ssh, '=');
		oo.ssh_socket = eq ? eq + 1 : getenv("SSH_AUTH_SOCK");
		if (!oo.ssh_socket || !*oo.ssh_socket)
			return kiln_err_invalid(err, "--ssh %s: no socket and no $SSH_AUTH_SOCK",
			                        a->ssh);
	}
	if (ops_new(&oo, &b->ops, err) < 0)
		return -1;

	b->prog.mode = a->progress;
	b->prog.out = stderr;
	b->prog.nvertices = b->graph->nvertices;
	b->prog.numbers = kiln_xcalloc(b->graph->nvertices + 1, sizeof(size_t));
	struct sv_solve_opts sopts = SV_SOLVE_OPTS_INIT;
	sopts.jobs = a->jobs;
	sopts.no_cache = a->no_cache;
	sopts.explain = a->explain;
	if (a->no_cache_stages.n) {
		sopts.no_cache_filter = no_cache_stage;
		sopts.no_cache_filter_data = a;
	}
	sopts.progress = on_event;
	sopts.progress_data = &b->prog;
	sopts.source_file = file_name;
	if (sv_solver_new(ops_vtable(), b->ops, b->cache, &sopts, &b->solver, err) < 0)
		return -1;
	struct sv_vertex *want = res->vertex;
	sigwatch_start(&b->sig, b->ops);
	r = sv_solve(b->solver, b->graph, &want, 1, err);
	sigwatch_stop(&b->sig);
	struct kiln_err serr = KILN_ERR_INIT;
	ops_save(b->ops, &serr); /* the stat index only speeds up the next build */
	kiln_err_release(&serr);
	if (r < 0)
		return r;

	/* Export: the layers above the stage's base (its image's chain or scratch). */
	const char *top = sv_solver_result(b->solver, res->vertex);
	const struct sv_vertex *root = ops_stage_root(res->vertex);
	const char *stop = sv_solver_result(b->solver, root);
	if (!top || !stop)
		return kiln_err_invalid(err, "the target stage has no result");
	uint64_t t0 = (uint64_t)time(NULL);
	size_t n = ++b->prog.next;
	if (a->progress == PROGRESS_PLAIN)
		fprintf(stderr, "#%zu exporting to image\n", n);
	struct exp_layer_opts lo = EXP_LAYER_OPTS_INIT;
	struct exp_layer *layers = NULL;
	size_t nlayers = 0;
	if (exp_chain_layers(b->snaps, top, stop, b->reg, &lo, &layers, &nlayers, err) < 0)
		return kiln_err_wrap(err, "export layers");
	struct exp_image_opts io = EXP_IMAGE_OPTS_INIT;
	io.stage_config = res->config;
	io.layers = layers;
	io.nlayers = nlayers;
	io.names = (const char *const *)kiln_strv_get(&a->tags);
	io.nnames = a->tags.n;
	/* As BuildKit: the build arg, else the environment. */
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	for (size_t i = 0; i < a->build_args.n; i++)
		if (kiln_str_has_prefix(a->build_args.v[i], "SOURCE_DATE_EPOCH="))
			sde = a->build_args.v[i] + strlen("SOURCE_DATE_EPOCH=");
	uint64_t sdev;
	if (sde && *sde && kiln_parse_u64(sde, &sdev) == 0)
		io.source_date_epoch = (int64_t)sdev;
	struct exp_image img;
	r = exp_image_commit(b->reg, &io, &img, err);
	exp_layers_free(layers, nlayers);
	if (r < 0)
		return kiln_err_wrap(err, "export image");
	if (a->progress == PROGRESS_PLAIN) {
		fprintf(stderr, "#%zu writing image %s\n", n, img.config_digest);
		for (size_t i = 0; i < a->tags.n; i++)
			fprintf(stderr, "#%zu naming to %s\n", n, a->tags.v[i]);
		fprintf(stderr, "#%zu DONE %.1fs\n", n, (double)((uint64_t)time(NULL) - t0));
	}
	if (a->output) {
		_cleanup_free_ char *dest = NULL;
		if (parse_output(a->output, &dest, err) < 0)
			return -EINVAL;
		if (ops_export_local(b->ops, top, dest, err) < 0)
			return -1;
	}
	if (a->iidfile && write_file(a->iidfile, img.config_digest, err) < 0)
		return -1;
	if (a->metadata_file) {
		/* BuildKit's keys, so scripts written for buildx read them unchanged. */
		_cleanup_json_ json_t *md =
		        json_pack("{s:s, s:s}", "containerimage.digest", img.manifest_digest,
		                  "containerimage.config.digest", img.config_digest);
		if (a->tags.n)
			json_object_set_new(md, "image.name",
			                    json_string(kiln_strv_get(&a->tags)[0]));
		char *text = json_dumps(md, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (!text)
			return kiln_err_set(err, ENOMEM, "metadata JSON");
		int wr = write_file(a->metadata_file, text, err);
		free(text);
		if (wr < 0)
			return -1;
	}
	if (a->progress == PROGRESS_QUIET)
		printf("%s\n", img.config_digest);
	return 0;
}

int
cmd_build(int argc, char **argv)
{
	struct build_args a = {.progress = PROGRESS_PLAIN};
	struct kiln_err err = KILN_ERR_INIT;
	int r = parse_args(argc, argv, &a, &err);
	if (r != 0) {
		if (r < 0) {
			fprintf(stderr, "kiln build: %s\n", err.msg ? err.msg : "bad arguments");
			kiln_err_release(&err);
			usage(stderr);
		} else {
			usage(stdout);
		}
		build_args_release(&a);
		return r < 0 ? KILN_EXIT_USAGE : 0;
	}
	if (a.output) {
		_cleanup_free_ char *dest = NULL;
		if (parse_output(a.output, &dest, &err) < 0) {
			cmd_print_err(&err);
			build_args_release(&a);
			return KILN_EXIT_USAGE;
		}
	}
	struct build b = {.sig = {.sfd = -1, .stopfd = -1}};
	r = build(&a, &b, &err);
	if (r < 0) {
		/* "Dockerfile:7: RUN false: ...": the line already says where; the step's
		 * "[stage 2/5] " prefix is for the progress output. */
		if (err.file && err.msg && err.msg[0] == '[') {
			char *end = strstr(err.msg, "] ");
			if (end)
				memmove(err.msg, end + 2, strlen(end + 2) + 1);
		}
		cmd_print_err(&err);
	}
	build_release(&b);
	build_args_release(&a);
	return r < 0 ? KILN_EXIT_FAIL : 0;
}
