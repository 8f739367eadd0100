/*
 * kiln build: Dockerfile + context -> an image in the store.
 *
 *	kiln build [-f FILE] [-t NAME]... [--target T] [--build-arg K=V]... [--secret SPEC]...
 *		   [--ssh default|ID[=SOCKET|KEYFILE[,KEYFILE]]]... [--no-cache]
 *		   [--no-cache-filter STAGE] [--jobs N]
 *		   [--pull] [--metadata-file F] [--platform HOST]
 *		   [--progress auto|tty|plain|quiet|rawjson] [--iidfile F] [--explain] [--check]
 *		   [--allow network.host|security.insecure] [-o type=local,dest=DIR]
 *		   [--build-context NAME=DIR|docker-image://REF|oci-layout://DIR[:TAG|@DIGEST]]...
 *		   CONTEXT
 *
 * fe_plan lowers the Dockerfile, the solver runs the target stage's vertices through the
 * ops (ops/ops.h) with the persistent cache, and the exporter turns the target's snapshot
 * chain above its base image into layers and an image named by every -t. CONTEXT `-`
 * reads the Dockerfile from standard input, with an empty context.
 * Exit status: 0 built, 1 the build failed, 2 usage.
 */
#include "build_output.h"
#include "cmd.h"
#include "progress.h"
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
	        "  --ssh default|ID[=SOCKET|KEY[,KEY]]  an ssh agent (or key files) for\n"
	        "                           RUN --mount=type=ssh,id=ID (repeatable)\n"
	        "  --no-cache               run every step\n"
	        "  --no-cache-filter STAGE  run every step of these stages (repeatable, a,b)\n"
	        "  --cache-to SPEC          type=local,dest=D|registry,ref=R|inline[,mode=max]\n"
	        "  --cache-from SPEC        type=local,src=D|registry,ref=R (repeatable)\n"
	        "  --pull                   fetch base images again even when stored\n"
	        "  --platform P             the host's platform only, for now\n"
	        "  --jobs N                 RUN steps at once (default: no limit)\n"
	        "  --progress MODE          auto|tty|plain|quiet|rawjson\n"
	        "  --iidfile FILE           write the image id (config digest) to FILE\n"
	        "  --metadata-file FILE     containerimage.digest and .config.digest as JSON\n"
	        "  --explain                say why each step missed the cache\n"
	        "  --check                  run the build checks (kiln lint) only, build nothing\n"
	        "  --allow ENT              network.host, security.insecure\n"
	        "  --build-context NAME=DIR|docker-image://REF|oci-layout://DIR[:TAG|@DIGEST]\n"
	        "                           stand in for FROM NAME, --from=NAME (repeatable)\n"
	        "  -o, --output SPEC        type=image|registry|oci|docker|local|tar[,dest=..]\n"
	        "                           [,name=..][,push=true][,compression=gzip|zstd]\n"
	        "                           [,compression-level=N][,force-compression=true]\n"
	        "                           [,oci-mediatypes=false][,rewrite-timestamp=true]\n"
	        "                           [,tar=false] (repeatable; as buildx)\n"
	        "  --push                   push the image (-o type=registry)\n");
}

struct build_args {
	const char *file, *context, *target, *iidfile, *metadata_file, *platform;
	struct cmd_outputs outputs;
	bool push;
	struct kiln_strv tags, build_args, no_cache_stages, contexts, ssh;
	struct cmd_secrets secrets;
	struct kiln_strv cache_to, cache_from; /* --cache-to, --cache-from specs */
	bool no_cache, pull, explain, check, allow_host, allow_insecure;
	unsigned jobs;
	enum progress_mode progress;
};

static void
build_args_release(struct build_args *a)
{
	kiln_strv_release(&a->cache_to);
	kiln_strv_release(&a->cache_from);
	kiln_strv_release(&a->tags);
	kiln_strv_release(&a->build_args);
	kiln_strv_release(&a->no_cache_stages);
	kiln_strv_release(&a->contexts);
	kiln_strv_release(&a->ssh);
	cmd_secrets_release(&a->secrets);
	cmd_outputs_release(&a->outputs);
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

static int
parse_args(int argc, char **argv, struct build_args *a, struct kiln_err *err)
{
	static const char *const valued[] = {
	        "--file",          "--tag",      "--target",   "--build-arg",
	        "--secret",        "--ssh",      "--jobs",     "--progress",
	        "--iidfile",       "--allow",    "--output",   "--no-cache-filter",
	        "--metadata-file", "--platform", "--cache-to", "--cache-from",
	        "--build-context",
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
		if (kiln_str_eq(arg, "--push")) {
			a->push = true;
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
		if (kiln_str_eq(name, "--cache-to") || kiln_str_eq(name, "--cache-from")) {
			bool to = kiln_str_eq(name, "--cache-to");
			struct exp_cache_spec cs = {0};
			if (exp_cache_spec_parse(val, to, &cs, err) < 0)
				return -1;
			exp_cache_spec_release(&cs);
			kiln_strv_push(to ? &a->cache_to : &a->cache_from, val);
		} else if (kiln_str_eq(name, "--file")) {
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
			kiln_strv_push(&a->ssh, val);
		} else if (kiln_str_eq(name, "--jobs")) {
			uint64_t n;
			if (kiln_parse_u64(val, &n) < 0 || n == 0 || n > 1024)
				return kiln_err_invalid(err,
				                        "--jobs takes a number from 1 to 1024");
			a->jobs = (unsigned)n;
		} else if (kiln_str_eq(name, "--progress")) {
			if (progress_mode_parse(val, &a->progress) < 0)
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
			if (cmd_outputs_parse(&a->outputs, val, err) < 0)
				return -1;
		} else if (kiln_str_eq(name, "--no-cache-filter")) {
			_cleanup_free_ char *copy = kiln_xstrdup(val);
			for (char *save = NULL, *f = strtok_r(copy, ",", &save); f;
			     f = strtok_r(NULL, ",", &save))
				kiln_strv_push(&a->no_cache_stages, f);
		} else if (kiln_str_eq(name, "--metadata-file")) {
			a->metadata_file = val;
		} else if (kiln_str_eq(name, "--platform")) {
			a->platform = val;
		} else if (kiln_str_eq(name, "--build-context")) {
			const char *eq = strchr(val, '=');
			if (!eq || eq == val || !eq[1])
				return kiln_err_invalid(err, "--build-context %s: want NAME=VALUE",
				                        val);
			kiln_strv_push(&a->contexts, val);
		}
	}
	if (!a->context)
		return kiln_err_invalid(err, "no CONTEXT given");
	if (cmd_outputs_finish(&a->outputs, kiln_strv_get(&a->tags), a->tags.n, a->push,
	                       a->iidfile || a->metadata_file, err) < 0)
		return -1;
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

/* oci-layout://DIR[:TAG|@DIGEST] -> the layout's image loaded into the store, as the bare
 * digest the plan takes (docker-image://sha256:...). Without TAG or DIGEST: the only
 * image, else the one tagged "latest" (buildx's default). */
static int
import_oci_layout(struct reg_store *reg, const char *spec, char **ret, struct kiln_err *err)
{
	_cleanup_free_ char *dir = NULL, *ref = NULL;
	if (cmd_oci_layout_pick(spec, &dir, &ref, err) < 0)
		return -1;
	struct reg_loaded *loaded = NULL;
	size_t nloaded = 0;
	if (reg_archive_load(reg, dir, &loaded, &nloaded, err) < 0)
		return kiln_err_wrap(err, "oci-layout://%s", spec);
	reg_loaded_free(loaded, nloaded);
	*ret = TAKE_PTR(ref);
	return 0;
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
	struct progress *prog;
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
				progress_printf(w->prog, "kiln: interrupted; stopping the build");
			w->fired = true;
			ops_interrupt(w->ops);
		}
	}
}

static void
sigwatch_start(struct sigwatch *w, struct ops *ops, struct progress *prog)
{
	*w = (struct sigwatch){.ops = ops, .prog = prog, .sfd = -1, .stopfd = -1};
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
	struct exp_cache_importer *importer; /* --cache-from */
	struct sv_graph *graph;
	struct ops_secret *secrets;
	char *tmp_context;   /* the empty context of `kiln build -` */
	struct ops_ssh *ssh; /* --ssh: ids and sockets, owned */
	size_t nssh;
	struct ops_sshagent **agents; /* kiln's own agents for --ssh ID=KEYFILE */
	size_t nagents;
	struct progress *prog;
	struct sigwatch sig;
};

static void
build_release(struct build *b)
{
	sigwatch_stop(&b->sig);
	sv_solver_free(b->solver);
	exp_cache_importer_free(b->importer);
	sv_graph_free(b->graph);
	ops_free(b->ops);
	for (size_t i = 0; i < b->nagents; i++)
		ops_sshagent_free(b->agents[i]);
	free(b->agents);
	for (size_t i = 0; i < b->nssh; i++) {
		free((char *)b->ssh[i].id);
		free((char *)b->ssh[i].socket);
	}
	free(b->ssh);
	sv_cache_free(b->cache);
	snap_store_free(b->snaps);
	reg_store_free(b->reg);
	free(b->secrets);
	free(b->tmp_context);
	progress_free(b->prog);
}

/*
 * --ssh as buildx takes it: `default` or `ID` ($SSH_AUTH_SOCK), `ID=SOCKET` (an agent),
 * `ID=KEYFILE[,KEYFILE]` (private keys, served by an agent of kiln's own whose socket
 * sits in a private directory under the store's tmp/). One socket per id.
 */
static int
ssh_setup(const struct build_args *a, struct build *b, struct kiln_err *err)
{
	b->ssh = kiln_xcalloc(a->ssh.n + 1, sizeof(*b->ssh));
	b->agents = kiln_xcalloc(a->ssh.n + 1, sizeof(*b->agents));
	for (size_t i = 0; i < a->ssh.n; i++) {
		const char *spec = a->ssh.v[i];
		const char *eq = strchr(spec, '=');
		_cleanup_free_ char *id =
		        eq ? kiln_xstrndup(spec, (size_t)(eq - spec)) : kiln_xstrdup(spec);
		if (!*id)
			return kiln_err_invalid(err, "--ssh %s: no id before =", spec);
		for (size_t k = 0; k < b->nssh; k++)
			if (kiln_str_eq(b->ssh[k].id, id))
				return kiln_err_invalid(err, "--ssh: id %s given twice", id);
		const char *paths = eq ? eq + 1 : getenv("SSH_AUTH_SOCK");
		if (!paths || !*paths)
			return kiln_err_invalid(
			        err,
			        "--ssh %s: no socket or key given and $SSH_AUTH_SOCK "
			        "is not set",
			        spec);
		_cleanup_strv_ struct kiln_strv keys = KILN_STRV_INIT;
		_cleanup_free_ char *socket = NULL;
		_cleanup_free_ char *copy = kiln_xstrdup(paths);
		size_t npaths = 0;
		for (char *save = NULL, *f = strtok_r(copy, ",", &save); f;
		     f = strtok_r(NULL, ",", &save), npaths++) {
			struct stat st;
			_cleanup_free_ char *abs = realpath(f, NULL);
			if (!abs || stat(abs, &st) < 0)
				return kiln_err_set(err, errno, "--ssh %s: `%s`", id, f);
			if (S_ISSOCK(st.st_mode) && !socket)
				socket = TAKE_PTR(abs);
			else if (S_ISREG(st.st_mode))
				kiln_strv_push(&keys, abs);
			else
				return kiln_err_invalid(
				        err,
				        "--ssh %s: `%s` is neither an agent socket nor a key file",
				        id, f);
		}
		if (socket && npaths > 1)
			return kiln_err_invalid(err, "--ssh %s: an agent socket is given alone",
			                        id);
		if (keys.n) {
			_cleanup_free_ char *tmp = kiln_path_join(cmd_root(), "tmp");
			struct ops_sshagent *ag;
			if (ops_sshagent_start(tmp, (const char *const *)kiln_strv_get(&keys),
			                       keys.n, &ag, err) < 0)
				return kiln_err_wrap(err, "--ssh %s", id);
			b->agents[b->nagents++] = ag;
			socket = kiln_xstrdup(ops_sshagent_socket(ag));
		}
		b->ssh[b->nssh++] =
		        (struct ops_ssh){.id = TAKE_PTR(id), .socket = TAKE_PTR(socket)};
	}
	return 0;
}

/* --cache-from: each cache's records go into the store; their layers are fetched only
 * when a step hits one. A cache that cannot be read is a warning, as in buildx. */
static int
cache_import(struct build_args *a, struct build *b)
{
	if (!a->cache_from.n)
		return 0;
	struct kiln_err err = KILN_ERR_INIT;
	if (exp_cache_importer_new(b->snaps, b->reg, cmd_root(), ops_vtable(), b->ops, &b->importer,
	                           &err) < 0) {
		cmd_print_err(&err);
		return -1;
	}
	for (size_t i = 0; i < a->cache_from.n; i++) {
		struct exp_cache_spec cs = {0};
		size_t n = 0;
		if (exp_cache_spec_parse(a->cache_from.v[i], false, &cs, &err) < 0 ||
		    exp_cache_import(b->importer, &cs, b->cache, &n, &err) < 0)
			fprintf(stderr, "kiln: warning: cache from %s not imported: %s\n",
			        a->cache_from.v[i], err.msg ? err.msg : "failed");
		else if (a->progress == PROGRESS_PLAIN)
			fprintf(stderr, "kiln: imported %zu cache record(s) from %s\n", n,
			        a->cache_from.v[i]);
		kiln_err_release(&err);
		exp_cache_spec_release(&cs);
	}
	return 0;
}

static void
cache_import_report(struct build_args *a, struct build *b)
{
	if (!b->importer)
		return;
	const struct kiln_strv *w = exp_cache_importer_warnings(b->importer);
	for (size_t i = 0; i < w->n; i++)
		fprintf(stderr, "kiln: warning: %s\n", w->v[i]);
	size_t layers, fetched;
	exp_cache_importer_stats(b->importer, &layers, &fetched);
	if (a->progress == PROGRESS_PLAIN)
		fprintf(stderr, "kiln: cache layers fetched: %zu of %zu\n", fetched, layers);
}

/*
 * After the solve: the target's imported chain is fetched for the export, type=inline
 * puts the cache metadata into the target's stage config (so the image export carries
 * it), and every other --cache-to is written. Before the image export, which needs
 * nothing of this but the fetched chain.
 */
/* SOURCE_DATE_EPOCH as BuildKit takes it: the build arg, else the environment; -1: unset. */
static int64_t
source_date_epoch(const struct build_args *a)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	for (size_t i = 0; i < a->build_args.n; i++)
		if (kiln_str_has_prefix(a->build_args.v[i], "SOURCE_DATE_EPOCH="))
			sde = a->build_args.v[i] + strlen("SOURCE_DATE_EPOCH=");
	uint64_t v;
	if (sde && *sde && kiln_parse_u64(sde, &v) == 0 && v <= INT64_MAX)
		return (int64_t)v;
	return -1;
}

static int
cache_out(struct build_args *a, struct build *b, const struct sv_result *res, struct kiln_err *err)
{
	const char *top = sv_solver_result(b->solver, res->vertex);
	if (top && exp_cache_importer_materialize(b->importer, top, err) < 0)
		return kiln_err_wrap(err, "imported cache");
	_cleanup_strv_ struct kiln_strv warnings = KILN_STRV_INIT;
	struct exp_cache_export_opts o = EXP_CACHE_EXPORT_OPTS_INIT;
	o.ss = b->snaps;
	o.rs = b->reg;
	o.cache = b->cache;
	o.solver = b->solver;
	o.graph = b->graph;
	o.target = res->vertex;
	o.kiln_root = cmd_root();
	o.importer = b->importer;
	o.warnings = &warnings;
	/* Inline records name the image's own layers, so they are made with its options. */
	struct exp_layer_opts image_lo;
	const struct cmd_output *image_out = cmd_outputs_first_image(&a->outputs);
	if (image_out)
		cmd_output_layer_opts(image_out, source_date_epoch(a), &image_lo);
	for (size_t i = 0; i < a->cache_to.n; i++) {
		struct exp_cache_spec cs = {0};
		if (exp_cache_spec_parse(a->cache_to.v[i], true, &cs, err) < 0)
			return -1;
		o.layer_opts = cs.type == EXP_CACHE_INLINE && image_out ? &image_lo : NULL;
		int r = cs.type == EXP_CACHE_INLINE ? exp_cache_inline_apply(&o, res->config, err)
		                                    : exp_cache_export(&cs, &o, err);
		for (size_t k = 0; k < warnings.n; k++)
			fprintf(stderr, "kiln: warning: %s\n", warnings.v[k]);
		kiln_strv_release(&warnings);
		if (r < 0 && cs.ignore_error) {
			fprintf(stderr, "kiln: warning: cache to %s: %s\n", a->cache_to.v[i],
			        err->msg ? err->msg : "failed");
			kiln_err_release(err);
			r = 0;
		}
		exp_cache_spec_release(&cs);
		if (r < 0)
			return kiln_err_wrap(err, "export cache to %s", a->cache_to.v[i]);
	}
	cache_import_report(a, b);
	return 0;
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
	_cleanup_free_ struct fe_named_context *ncs = kiln_xcalloc(a->contexts.n + 1, sizeof(*ncs));
	_cleanup_strv_ struct kiln_strv ncvals = KILN_STRV_INIT;
	for (size_t i = 0; i < a->contexts.n; i++) {
		char *kv = a->contexts.v[i];
		const char *val = strchr(kv, '=') + 1;
		kiln_strv_pushf(&ncvals, "%.*s", (int)(val - 1 - kv), kv);
		ncs[i].name = ncvals.v[ncvals.n - 1];
		if (kiln_str_has_prefix(val, "oci-layout://")) {
			_cleanup_free_ char *ref = NULL;
			if (import_oci_layout(b->reg, val + strlen("oci-layout://"), &ref, err) < 0)
				return kiln_err_wrap(err, "--build-context %s", ncs[i].name);
			kiln_strv_pushf(&ncvals, "docker-image://%s", ref);
			ncs[i].value = ncvals.v[ncvals.n - 1];
		} else {
			ncs[i].value = val;
		}
	}
	po.named_contexts = ncs;
	po.nnamed_contexts = a->contexts.n;
	struct ops_plan_images pi = {.reg = b->reg, .pull_always = a->pull};
	po.image_config = ops_plan_image_config; /* ONBUILD triggers, WorkingDir */
	po.image_config_data = &pi;
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
	if (ssh_setup(a, b, err) < 0)
		return -1;
	oo.ssh = b->ssh;
	oo.nssh = b->nssh;
	if (ops_new(&oo, &b->ops, err) < 0)
		return -1;

	b->prog = progress_new(a->progress, stderr, b->graph, res->vertex);
	struct sv_solve_opts sopts = SV_SOLVE_OPTS_INIT;
	sopts.jobs = a->jobs;
	sopts.no_cache = a->no_cache;
	sopts.explain = a->explain;
	if (a->no_cache_stages.n) {
		sopts.no_cache_filter = no_cache_stage;
		sopts.no_cache_filter_data = a;
	}
	sopts.progress = progress_event;
	sopts.progress_data = b->prog;
	sopts.source_file = file_name;
	if (cache_import(a, b) < 0)
		return -1;
	if (sv_solver_new(b->importer ? exp_cache_importer_ops() : ops_vtable(),
	                  b->importer ? (void *)b->importer : b->ops, b->cache, &sopts, &b->solver,
	                  err) < 0)
		return -1;
	struct sv_vertex *want = res->vertex;
	sigwatch_start(&b->sig, b->ops, b->prog);
	r = sv_solve(b->solver, b->graph, &want, 1, err);
	sigwatch_stop(&b->sig);
	struct kiln_err serr = KILN_ERR_INIT;
	ops_save(b->ops, &serr); /* the stat index only speeds up the next build */
	kiln_err_release(&serr);
	if (r < 0 || cache_out(a, b, res, err) < 0) {
		cache_import_report(a, b);
		return -1;
	}

	/* Export: the layers above the stage's base (its image's chain or scratch). */
	const char *top = sv_solver_result(b->solver, res->vertex);
	const struct sv_vertex *root = ops_stage_root(res->vertex);
	const char *stop = sv_solver_result(b->solver, root);
	if (!top || !stop)
		return kiln_err_invalid(err, "the target stage has no result");
	struct cmd_export_ctx ec = {.ss = b->snaps,
	                            .rs = b->reg,
	                            .ops = b->ops,
	                            .top = top,
	                            .stop = stop,
	                            .stage_config = res->config,
	                            .source_date_epoch = -1,
	                            .progress = b->prog};
	progress_export_begin(b->prog, "exporting to image");
	ec.source_date_epoch = source_date_epoch(a);
	ec.created = ec.source_date_epoch >= 0 ? ec.source_date_epoch : (int64_t)time(NULL);
	struct cmd_export_result xr = {0};
	r = cmd_outputs_export(&a->outputs, &ec, &xr, err);
	progress_export_done(b->prog, r >= 0);
	if (r >= 0 && a->iidfile && xr.have_image)
		r = write_file(a->iidfile, xr.img.config_digest, err);
	if (r >= 0 && a->metadata_file)
		r = cmd_outputs_metadata(&xr, a->metadata_file, err);
	if (r >= 0 && progress_mode(b->prog) == PROGRESS_QUIET && xr.have_image)
		printf("%s\n", xr.img.config_digest);
	cmd_export_result_release(&xr);
	return r < 0 ? -1 : 0;
}

int
cmd_build(int argc, char **argv)
{
	struct build_args a = {.progress = PROGRESS_AUTO};
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
	struct build b = {.sig = {.sfd = -1, .stopfd = -1}};
	r = build(&a, &b, &err);
	progress_finish(b.prog, r >= 0); /* the live view ends before the error is printed */
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
