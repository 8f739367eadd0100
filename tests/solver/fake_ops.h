/* Fake ops for the solver tests: results are files under <dir>/results, content keys
 * read files under <dir>/ctx, and each vertex's def says how it behaves:
 *   {"name":N, "heavy":bool, "fail":bool, "block":bool, "barrier":bool,
 *    "wait_for":M, "reads":FILE, "args":{K:V}, "commit_fail":bool, "log":TEXT,
 *    "finish_anyway":bool (with block: succeed once cancelled),
 *    "lineage":bool (log "prev=ID" or "prev=none": sv_op_ctx_lineage_previous)}
 * Header-only (static) so each test binary stays one source file. */
#ifndef KILN_TEST_FAKE_OPS_H
#define KILN_TEST_FAKE_OPS_H

#include "testlib.h"

#include "solver/sv.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

struct fake {
	char *dir;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	json_t *runs;      /* name -> runs started */
	json_t *cancels;   /* name -> cancels seen */
	unsigned cur, max; /* heavy runs at once */
	unsigned barrier;  /* "barrier" runs wait until this many run at once */
	unsigned seq;
	unsigned discards;
	bool exists_false; /* result_exists says no */
};

static void
fake_init(struct fake *f, const char *dir)
{
	*f = (struct fake){.dir = kiln_xstrdup(dir)};
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->runs = json_object();
	f->cancels = json_object();
	char *p = kiln_xasprintf("%s/results", dir);
	mkdir(p, 0755);
	free(p);
}

static void
fake_release(struct fake *f)
{
	json_decref(f->runs);
	json_decref(f->cancels);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cond);
	free(f->dir);
}

static const char *
fake_name(const struct sv_vertex *v)
{
	return json_string_value(json_object_get(v->def, "name"));
}

static bool
fake_flag(const struct sv_vertex *v, const char *k)
{
	return json_is_true(json_object_get(v->def, k));
}

static void
fake_count(json_t *o, const char *name)
{
	json_object_set_new(o, name,
	                    json_integer(json_integer_value(json_object_get(o, name)) + 1));
}

/* Under f->mu; how many times `name` ran. */
static int
fake_runs(struct fake *f, const char *name)
{
	pthread_mutex_lock(&f->mu);
	int n = (int)json_integer_value(json_object_get(f->runs, name));
	pthread_mutex_unlock(&f->mu);
	return n;
}

static int
fake_total_runs(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	int n = 0;
	const char *k;
	json_t *v;
	json_object_foreach(f->runs, k, v) n += (int)json_integer_value(v);
	pthread_mutex_unlock(&f->mu);
	return n;
}

/* Wait (f->mu held) until pred holds; a 20 s deadline turns a scheduling bug into a
 * failure instead of a hang. Returns false on the deadline. */
#define FAKE_WAIT_UNTIL(f, pred)                                                                   \
	({                                                                                         \
		struct timespec _dl;                                                               \
		clock_gettime(CLOCK_REALTIME, &_dl);                                               \
		_dl.tv_sec += 20;                                                                  \
		bool _ok = true;                                                                   \
		while (!(pred)) {                                                                  \
			if (pthread_cond_timedwait(&(f)->cond, &(f)->mu, &_dl) == ETIMEDOUT) {     \
				_ok = (pred);                                                      \
				break;                                                             \
			}                                                                          \
		}                                                                                  \
		_ok;                                                                               \
	})

static bool
fake_heavy(void *data, const struct sv_vertex *v)
{
	return fake_flag(v, "heavy");
}

static char *
fake_identity(void *data, const struct sv_vertex *v)
{
	return kiln_xasprintf("step %s", fake_name(v));
}

static void
sha_hex(const void *p, size_t n, char out[KILN_DIGEST_HEX_LEN + 1])
{
	struct kiln_digest d;
	kiln_sha256_buf(p, n, &d);
	kiln_digest_format(&d, out);
}

static int
fake_content_key(void *data, struct sv_op_ctx *ctx, const struct sv_vertex *v,
                 const char *const *inputs, char **ret, struct kiln_err *err)
{
	struct fake *f = data;
	char hex[KILN_DIGEST_HEX_LEN + 1];
	const char *k;
	json_t *val;
	json_object_foreach(json_object_get(v->def, "args"), k, val)
	{
		const char *s = json_string_value(val);
		sha_hex(s, strlen(s), hex);
		char *name = kiln_xasprintf("build-arg %s", k);
		sv_op_ctx_add_component(ctx, name, hex);
		free(name);
	}
	const char *reads = json_string_value(json_object_get(v->def, "reads"));
	if (!reads)
		return 0;
	_cleanup_free_ char *path = kiln_xasprintf("%s/ctx/%s", f->dir, reads);
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	int r = kiln_buf_read_file(&b, path, err);
	if (r < 0)
		return r;
	sha_hex(b.buf, b.len, hex);
	_cleanup_free_ char *name = kiln_xasprintf("file %s", reads);
	sv_op_ctx_add_component(ctx, name, hex);
	*ret = kiln_xstrdup(hex);
	return 0;
}

static void
fake_on_cancel(void *data)
{
	struct fake *f = data;
	pthread_mutex_lock(&f->mu);
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->mu);
}

static int
fake_run(void *data, struct sv_op_ctx *ctx, const struct sv_vertex *v, const char *const *inputs,
         char **ret_result, struct kiln_err *err)
{
	struct fake *f = data;
	const char *name = fake_name(v);
	bool heavy = fake_flag(v, "heavy");
	int r = 0;
	pthread_mutex_lock(&f->mu);
	if (heavy) {
		f->cur++;
		if (f->cur > f->max)
			f->max = f->cur;
	}
	pthread_cond_broadcast(&f->cond);
	if (fake_flag(v, "barrier") &&
	    !FAKE_WAIT_UNTIL(f, f->cur >= f->barrier || f->max >= f->barrier))
		r = kiln_err_invalid(err, "barrier of %u never reached (max %u)", f->barrier,
		                     f->max);
	const char *wait_for = json_string_value(json_object_get(v->def, "wait_for"));
	if (!r && wait_for && !FAKE_WAIT_UNTIL(f, json_object_get(f->runs, wait_for) != NULL))
		r = kiln_err_invalid(err, "%s never ran", wait_for);
	/* Counted once past wait_for, so waiting for M means M is past its own wait. */
	fake_count(f->runs, name);
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->mu);
	const char *log = json_string_value(json_object_get(v->def, "log"));
	if (log)
		sv_op_ctx_log(ctx, 1, log, strlen(log));
	if (fake_flag(v, "lineage")) {
		_cleanup_free_ char *prev = NULL;
		struct kiln_err e = KILN_ERR_INIT;
		int pr = sv_op_ctx_lineage_previous(ctx, &prev, &e);
		assert_true(pr >= 0);
		sv_op_ctx_logf(ctx, 1, "prev=%s", pr > 0 ? prev : "none");
	}

	if (!r && fake_flag(v, "block")) {
		sv_op_ctx_on_cancel(ctx, fake_on_cancel, f);
		pthread_mutex_lock(&f->mu);
		bool seen = FAKE_WAIT_UNTIL(f, sv_op_ctx_cancelled(ctx));
		if (seen)
			fake_count(f->cancels, name);
		pthread_mutex_unlock(&f->mu);
		sv_op_ctx_on_cancel(ctx, NULL, NULL);
		if (!seen)
			r = kiln_err_invalid(err, "no cancel");
		else if (!fake_flag(v, "finish_anyway"))
			r = kiln_err_set(err, ECANCELED, "killed");
	}
	if (!r && fake_flag(v, "fail"))
		r = kiln_err_invalid(err, "process \"%s\" exited with status 1", name);
	pthread_mutex_lock(&f->mu);
	if (heavy)
		f->cur--;
	unsigned seq = f->seq++;
	pthread_mutex_unlock(&f->mu);
	if (r < 0)
		return r;

	char *id = kiln_xasprintf("%s-%d-%u", name, (int)getpid(), seq);
	_cleanup_free_ char *path = kiln_xasprintf("%s/results/%s", f->dir, id);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	for (size_t i = 0; i < v->ninputs; i++)
		dprintf(fd, "%s\n", inputs[i]);
	close(fd);
	sv_op_ctx_set_size(ctx, 100 + seq);
	*ret_result = id;
	return 0;
}

static int
fake_commit(void *data, const struct sv_vertex *v, const char *result, struct kiln_err *err)
{
	if (fake_flag(v, "commit_fail"))
		return kiln_err_set(err, ENOSPC, "commit %s", result);
	return 0;
}

static bool
fake_exists(void *data, const char *result)
{
	struct fake *f = data;
	if (f->exists_false)
		return false;
	_cleanup_free_ char *path = kiln_xasprintf("%s/results/%s", f->dir, result);
	return access(path, F_OK) == 0;
}

static void
fake_discard(void *data, const char *result)
{
	struct fake *f = data;
	_cleanup_free_ char *path = kiln_xasprintf("%s/results/%s", f->dir, result);
	unlink(path);
	pthread_mutex_lock(&f->mu);
	f->discards++;
	pthread_mutex_unlock(&f->mu);
}

static const struct sv_ops fake_ops = {
        .heavy = fake_heavy,
        .identity = fake_identity,
        .content_key = fake_content_key,
        .run = fake_run,
        .commit = fake_commit,
        .result_exists = fake_exists,
        .discard = fake_discard,
};

/* A vertex named `name` with extra def fields from `extra` (a JSON object text or NULL). */
static struct sv_vertex *
fake_vertex(struct sv_graph *g, enum sv_op op, const char *name, const char *extra,
            struct sv_vertex *const *inputs, size_t n, const char *stage, int line)
{
	json_t *def = extra ? json_loads(extra, 0, NULL) : json_object();
	assert_non_null(def);
	json_object_set_new(def, "name", json_string(name));
	_cleanup_free_ char *desc =
	        kiln_xasprintf("%s %s", op == SV_OP_EXEC ? "RUN" : "STEP", name);
	struct sv_vertex_meta m = {.stage = stage, .description = desc, .line = line};
	return sv_graph_add(g, op, def, inputs, n, &m);
}

/* Number of record files in <root>/cache/records. */
static int
count_records(const char *root)
{
	_cleanup_free_ char *p = kiln_xasprintf("%s/cache/records", root);
	DIR *d = opendir(p);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

#endif
