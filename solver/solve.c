/*
 * The engine: runs the needed part of a graph, one thread per running vertex, heavy
 * vertices limited to `jobs` at once. The calling thread only schedules: it starts every
 * vertex whose inputs are done and sleeps on `cond` until something finishes. All shared
 * state is under `mu`; an op's callbacks run without it.
 */
#include "sv_int.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

enum vstate_state { V_PENDING, V_RUNNING, V_DONE, V_FAILED, V_CANCELLED };

struct vstate;

struct sv_op_ctx {
	struct sv_solver *s;
	struct vstate *vs;
	atomic_bool cancelled;
	pthread_mutex_t mu; /* the cancel callback */
	void (*cancel_fn)(void *);
	void *cancel_data;
	json_t *components;
	uint64_t size;
	/* The key of the recipe without content (sv_cache_lineage_get), whether the op
	 * asked for its previous result (then the record is noted as the lineage's latest),
	 * and whether the cache may be read for the vertex. */
	char lineage[KILN_DIGEST_HEX_LEN + 1];
	bool lineage_wanted;
	bool use_cache;
};

struct vstate {
	struct sv_vertex *v;
	enum vstate_state state;
	bool needed;
	bool thread_started;
	pthread_t thread;
	bool keyed, claimed; /* the key is known; this vertex owns it in this solve */
	bool has_slot;
	char key[KILN_DIGEST_HEX_LEN + 1];
	char *result;
	struct sv_op_ctx ctx;
};

struct sv_solver {
	struct sv_ops ops;
	void *ops_data;
	struct sv_cache *cache;
	struct sv_solve_opts opts;
	unsigned jobs;

	pthread_mutex_t mu;
	pthread_cond_t cond; /* any vertex finished, a slot freed, or the solve failed */
	pthread_mutex_t progress_mu;

	struct vstate *vs;
	size_t nvs;
	unsigned heavy_running, running;
	bool failed;
	struct kiln_err first_err;

	int *held; /* cache records in use, locked shared */
	size_t nheld, held_alloc;
};

/* ---- op context ---- */

bool
sv_op_ctx_cancelled(struct sv_op_ctx *ctx)
{
	return atomic_load(&ctx->cancelled);
}

void
sv_op_ctx_on_cancel(struct sv_op_ctx *ctx, void (*fn)(void *), void *fn_data)
{
	pthread_mutex_lock(&ctx->mu);
	ctx->cancel_fn = fn;
	ctx->cancel_data = fn_data;
	if (fn && atomic_load(&ctx->cancelled)) {
		ctx->cancel_fn = NULL;
		fn(fn_data);
	}
	pthread_mutex_unlock(&ctx->mu);
}

static void
ctx_cancel(struct sv_op_ctx *ctx)
{
	atomic_store(&ctx->cancelled, true);
	pthread_mutex_lock(&ctx->mu);
	void (*fn)(void *) = ctx->cancel_fn;
	ctx->cancel_fn = NULL; /* once */
	if (fn)
		fn(ctx->cancel_data);
	pthread_mutex_unlock(&ctx->mu);
}

const char *
sv_event_name(enum sv_event_type type)
{
	switch (type) {
	case SV_EVENT_STARTED:
		return "started";
	case SV_EVENT_CACHED:
		return "cached";
	case SV_EVENT_LOG:
		return "log";
	case SV_EVENT_FINISHED:
		return "finished";
	case SV_EVENT_FAILED:
		return "failed";
	case SV_EVENT_CANCELLED:
		return "cancelled";
	}
	return "unknown";
}

static void
emit(struct sv_solver *s, struct sv_event *ev)
{
	if (!s->opts.progress)
		return;
	pthread_mutex_lock(&s->progress_mu);
	s->opts.progress(s->opts.progress_data, ev);
	pthread_mutex_unlock(&s->progress_mu);
}

void
sv_op_ctx_log(struct sv_op_ctx *ctx, int stream, const char *data, size_t len)
{
	struct vstate *vs = ctx->vs;
	struct sv_event ev = {.type = SV_EVENT_LOG,
	                      .vertex = vs->v,
	                      .cache_key = vs->keyed ? vs->key : NULL,
	                      .stream = stream,
	                      .data = data,
	                      .len = len};
	emit(ctx->s, &ev);
}

void
sv_op_ctx_logf(struct sv_op_ctx *ctx, int stream, const char *fmt, ...)
{
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	kiln_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	sv_op_ctx_log(ctx, stream, b.buf, b.len);
}

void
sv_op_ctx_add_component(struct sv_op_ctx *ctx, const char *name, const char *digest)
{
	json_object_set_new(ctx->components, name, json_string(digest));
}

void
sv_op_ctx_set_size(struct sv_op_ctx *ctx, uint64_t size)
{
	ctx->size = size;
}

static void hold_fd(struct sv_solver *s, int fd);

int
sv_op_ctx_lineage_previous(struct sv_op_ctx *ctx, char **ret, struct kiln_err *err)
{
	struct sv_solver *s = ctx->s;
	*ret = NULL;
	ctx->lineage_wanted = true;
	if (!s->cache || !ctx->use_cache || !ctx->lineage[0])
		return 0;
	char key[KILN_DIGEST_HEX_LEN + 1];
	if (sv_cache_lineage_get(s->cache, ctx->lineage, key, err) < 0)
		return -1;
	if (!key[0] || kiln_str_eq(key, ctx->vs->key))
		return 0;
	int fd = -1;
	bool gone = false;
	int r = sv_cache_lookup(s->cache, key, s->ops.result_exists, s->ops_data, ret, &fd, &gone,
	                        err);
	if (r <= 0)
		return r;
	/* Locked shared like the records this solve uses, so prune keeps the result. */
	hold_fd(s, fd);
	return 1;
}

/* ---- solver ---- */

int
sv_solver_new(const struct sv_ops *ops, void *ops_data, struct sv_cache *cache,
              const struct sv_solve_opts *opts, struct sv_solver **ret, struct kiln_err *err)
{
	if (!ops || !ops->run)
		return kiln_err_invalid(err, "solver: ops without run");
	struct sv_solver *s = kiln_xcalloc(1, sizeof(*s));
	s->ops = *ops;
	s->ops_data = ops_data;
	s->cache = cache;
	if (opts)
		s->opts = *opts;
	/* No limit by default, as BuildKit: RUN steps often wait (sleep, network, disk) rather
	 * than compute, and the kernel shares the CPUs among the ones that compute. */
	s->jobs = s->opts.jobs ? s->opts.jobs : UINT_MAX;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cond, NULL);
	pthread_mutex_init(&s->progress_mu, NULL);
	*ret = s;
	return 0;
}

static void
states_free(struct sv_solver *s)
{
	for (size_t i = 0; i < s->nvs; i++) {
		free(s->vs[i].result);
		json_decref(s->vs[i].ctx.components);
		pthread_mutex_destroy(&s->vs[i].ctx.mu);
	}
	free(s->vs);
	s->vs = NULL;
	s->nvs = 0;
}

void
sv_solver_free(struct sv_solver *s)
{
	if (!s)
		return;
	states_free(s);
	for (size_t i = 0; i < s->nheld; i++)
		close(s->held[i]);
	free(s->held);
	kiln_err_release(&s->first_err);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->progress_mu);
	free(s);
}

static struct vstate *
state_of(const struct sv_solver *s, const struct sv_vertex *v)
{
	if (!v || v->index >= s->nvs || s->vs[v->index].v != v)
		return NULL;
	return &s->vs[v->index];
}

const char *
sv_solver_result(const struct sv_solver *s, const struct sv_vertex *v)
{
	struct vstate *vs = state_of(s, v);
	return vs && vs->state == V_DONE ? vs->result : NULL;
}

const char *
sv_solver_cache_key(const struct sv_solver *s, const struct sv_vertex *v)
{
	struct vstate *vs = state_of(s, v);
	return vs && vs->state == V_DONE && vs->keyed ? vs->key : NULL;
}

static void
hold_fd(struct sv_solver *s, int fd)
{
	pthread_mutex_lock(&s->mu);
	KILN_GROW(s->held, s->held_alloc, s->nheld + 1);
	s->held[s->nheld++] = fd;
	pthread_mutex_unlock(&s->mu);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *
vertex_desc(const struct sv_vertex *v)
{
	return v->description ? v->description : sv_op_name(v->op);
}

static bool
vertex_heavy(struct sv_solver *s, const struct sv_vertex *v)
{
	if (s->ops.heavy)
		return s->ops.heavy(s->ops_data, v);
	return v->op == SV_OP_EXEC;
}

static char *
vertex_identity(struct sv_solver *s, const struct sv_vertex *v)
{
	char *id = s->ops.identity ? s->ops.identity(s->ops_data, v) : NULL;
	if (id)
		return id;
	return kiln_xasprintf("%s\n%s", v->stage ? v->stage : "", vertex_desc(v));
}

static bool
cache_enabled(struct sv_solver *s, const struct sv_vertex *v)
{
	if (!s->cache || s->opts.no_cache)
		return false;
	if (s->opts.no_cache_filter &&
	    s->opts.no_cache_filter(s->opts.no_cache_filter_data, v->stage ? v->stage : ""))
		return false;
	return true;
}

/*
 * Another vertex of this solve with the same key: wait while it runs, then take its
 * result. Returns 1 with *ret_result when adopted, 0 when this vertex now owns the key,
 * -ECANCELED when the solve failed meanwhile.
 */
static int
claim_key(struct sv_solver *s, struct vstate *vs, char **ret_result)
{
	int r = 0;
	pthread_mutex_lock(&s->mu);
	vs->keyed = true;
	for (;;) {
		if (s->failed) {
			r = -ECANCELED;
			break;
		}
		struct vstate *owner = NULL;
		for (size_t i = 0; i < s->nvs && !owner; i++) {
			struct vstate *o = &s->vs[i];
			if (o != vs && o->keyed && o->claimed && kiln_str_eq(o->key, vs->key))
				owner = o;
		}
		if (!owner) {
			vs->claimed = true;
			break;
		}
		if (owner->state == V_DONE) {
			*ret_result = kiln_xstrdup(owner->result);
			r = 1;
			break;
		}
		pthread_cond_wait(&s->cond, &s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* Wait for a job slot; -ECANCELED if the solve fails meanwhile. The slot is given back
 * by vertex_main once the vertex's outcome is recorded, so a failing step's slot never
 * goes to a new step before the failure stops the solve. */
static int
slot_take(struct sv_solver *s, struct vstate *vs)
{
	int r = 0;
	pthread_mutex_lock(&s->mu);
	while (!s->failed && s->heavy_running >= s->jobs)
		pthread_cond_wait(&s->cond, &s->mu);
	if (s->failed)
		r = -ECANCELED;
	else
		s->heavy_running++;
	vs->has_slot = r == 0;
	pthread_mutex_unlock(&s->mu);
	return r;
}

static bool
solve_failed(struct sv_solver *s)
{
	pthread_mutex_lock(&s->mu);
	bool failed = s->failed;
	pthread_mutex_unlock(&s->mu);
	return failed;
}

static void
explain_miss(struct sv_solver *s, struct vstate *vs, const char *identity, const json_t *recipe,
             bool use_cache, bool gone, struct kiln_buf *out)
{
	const char *desc = vertex_desc(vs->v);
	if (!s->cache) {
		kiln_buf_addf(out, "%s: no cache", desc);
	} else if (!use_cache) {
		kiln_buf_addf(out, "%s: cache disabled for this step", desc);
	} else if (gone) {
		kiln_buf_addf(out, "%s: the cached result no longer exists", desc);
	} else {
		json_t *before = NULL;
		struct kiln_err e = KILN_ERR_INIT;
		sv_cache_step_get(s->cache, identity, &before, &e);
		kiln_err_release(&e);
		sv_recipe_explain(before, recipe, desc, out);
		json_decref(before);
	}
}

/* Keep the step's latest recipe current; losing it only loses an explanation. */
static void
note_step(struct sv_solver *s, const char *identity, const json_t *recipe, const char *key)
{
	struct kiln_err e = KILN_ERR_INIT;
	json_t *before = NULL;
	sv_cache_step_get(s->cache, identity, &before, &e);
	char k[KILN_DIGEST_HEX_LEN + 1] = "";
	if (before)
		sv_recipe_key(before, k);
	if (!kiln_str_eq(k, key))
		sv_cache_step_set(s->cache, identity, recipe, &e);
	json_decref(before);
	kiln_err_release(&e);
}

/* Everything a vertex does once its inputs are done. Returns 0 with vs->result set. */
static int
vertex_process(struct sv_solver *s, struct vstate *vs, struct kiln_err *err)
{
	const struct sv_vertex *v = vs->v;
	struct sv_op_ctx *ctx = &vs->ctx;
	_cleanup_free_ const char **in_results =
	        kiln_xreallocarray(NULL, v->ninputs + 1, sizeof(char *));
	_cleanup_free_ const char **in_keys =
	        kiln_xreallocarray(NULL, v->ninputs + 1, sizeof(char *));
	for (size_t i = 0; i < v->ninputs; i++) {
		struct vstate *in = &s->vs[v->inputs[i]->index];
		in_results[i] = in->result;
		in_keys[i] = in->key;
	}
	in_results[v->ninputs] = in_keys[v->ninputs] = NULL;

	_cleanup_free_ char *content = NULL;
	if (s->ops.content_key) {
		int r = s->ops.content_key(s->ops_data, ctx, v, in_results, &content, err);
		if (r < 0)
			return r;
	}
	_cleanup_json_ json_t *recipe = sv_recipe_new(v, in_keys, content, ctx->components);
	sv_recipe_key(recipe, vs->key);
	_cleanup_json_ json_t *lineage = sv_recipe_new(v, in_keys, NULL, NULL);
	sv_recipe_key(lineage, ctx->lineage);
	_cleanup_free_ char *identity = vertex_identity(s, v);

	int r = claim_key(s, vs, &vs->result);
	if (r < 0)
		return r;
	if (r > 0) {
		emit(s, &(struct sv_event){
		                .type = SV_EVENT_CACHED, .vertex = v, .cache_key = vs->key});
		return 0;
	}

	bool use_cache = cache_enabled(s, v), gone = false;
	ctx->use_cache = use_cache;
	if (use_cache) {
		int fd = -1;
		r = sv_cache_lookup(s->cache, vs->key, s->ops.result_exists, s->ops_data,
		                    &vs->result, &fd, &gone, err);
		if (r < 0)
			return r;
		if (r > 0) {
			hold_fd(s, fd);
			note_step(s, identity, recipe, vs->key);
			emit(s, &(struct sv_event){.type = SV_EVENT_CACHED,
			                           .vertex = v,
			                           .cache_key = vs->key});
			return 0;
		}
	}

	_cleanup_buf_ struct kiln_buf why = KILN_BUF_INIT;
	if (s->opts.explain)
		explain_miss(s, vs, identity, recipe, use_cache, gone, &why);
	bool heavy = vertex_heavy(s, v);
	if (heavy && (r = slot_take(s, vs)) < 0)
		return r;
	if (sv_op_ctx_cancelled(ctx) || solve_failed(s))
		return -ECANCELED;
	emit(s, &(struct sv_event){.type = SV_EVENT_STARTED,
	                           .vertex = v,
	                           .cache_key = vs->key,
	                           .explain = s->opts.explain ? why.buf : NULL});
	uint64_t t0 = now_ns();
	_cleanup_free_ char *result = NULL;
	r = s->ops.run(s->ops_data, ctx, v, in_results, &result, err);
	if (r < 0)
		return r;
	if (!result)
		return kiln_err_invalid(err, "%s op returned no result", sv_op_name(v->op));
	/* A result finished after the cancel may be half of what was asked: never keep it. */
	if (sv_op_ctx_cancelled(ctx)) {
		if (s->ops.discard)
			s->ops.discard(s->ops_data, result);
		return -ECANCELED;
	}
	if (s->ops.commit && (r = s->ops.commit(s->ops_data, v, result, err)) < 0) {
		if (s->ops.discard)
			s->ops.discard(s->ops_data, result);
		return r;
	}
	if (s->cache) {
		struct sv_cache_put p = {.key = vs->key,
		                         .result = result,
		                         .size = ctx->size,
		                         .identity = identity,
		                         .description = v->description,
		                         .recipe = recipe,
		                         .replace = !use_cache};
		_cleanup_free_ char *winner = NULL;
		int fd = -1;
		r = sv_cache_put(s->cache, &p, s->ops.result_exists, s->ops_data, &winner, &fd,
		                 err);
		if (r < 0) {
			/* The solve fails; an unrecorded result would only leak. */
			if (s->ops.discard)
				s->ops.discard(s->ops_data, result);
			return r;
		}
		hold_fd(s, fd);
		if (r > 0) {
			/* Another build stored this key first; children use its result. */
			if (s->ops.discard)
				s->ops.discard(s->ops_data, result);
			free(result);
			result = TAKE_PTR(winner);
		}
		note_step(s, identity, recipe, vs->key);
		if (ctx->lineage_wanted) {
			/* Losing it only loses the next incremental run. */
			struct kiln_err e = KILN_ERR_INIT;
			sv_cache_lineage_set(s->cache, ctx->lineage, vs->key, &e);
			kiln_err_release(&e);
		}
	}
	vs->result = TAKE_PTR(result);
	emit(s, &(struct sv_event){.type = SV_EVENT_FINISHED,
	                           .vertex = v,
	                           .cache_key = vs->key,
	                           .duration_ns = now_ns() - t0});
	return 0;
}

/* With s->mu held: the first failure stops the solve; nothing starts after this, and
 * vertices waiting for a slot or an equal key give up. */
static void
fail_locked(struct sv_solver *s, struct kiln_err *err)
{
	s->failed = true;
	s->first_err = *err;
	*err = (struct kiln_err)KILN_ERR_INIT;
	pthread_cond_broadcast(&s->cond);
}

/* Without s->mu: flag every other vertex and call the cancel callbacks of running ops.
 * Outside the lock so a callback that blocks (killing a process) stalls no scheduling. */
static void
cancel_all(struct sv_solver *s, struct vstate *self)
{
	for (size_t i = 0; i < s->nvs; i++) {
		if (&s->vs[i] != self)
			ctx_cancel(&s->vs[i].ctx);
	}
}

static void *
vertex_main(void *arg)
{
	struct vstate *vs = arg;
	struct sv_solver *s = vs->ctx.s;
	struct kiln_err err = KILN_ERR_INIT;
	uint64_t t0 = now_ns();
	int r = vertex_process(s, vs, &err);
	if (r < 0) {
		if (!err.code)
			kiln_err_set(&err, -r, "%s failed", sv_op_name(vs->v->op));
		kiln_err_wrap(&err, "%s", vertex_desc(vs->v));
		if (vs->v->line > 0)
			kiln_err_locate(&err,
			                s->opts.source_file ? s->opts.source_file : "Dockerfile",
			                vs->v->line, vs->v->line);
	}
	/* An error after the solve failed elsewhere is a consequence of the cancel (a killed
	 * step), not a second failure; only the first one is reported. */
	enum vstate_state end = V_DONE;
	pthread_mutex_lock(&s->mu);
	if (r < 0 && (s->failed || sv_op_ctx_cancelled(&vs->ctx))) {
		end = V_CANCELLED;
	} else if (r < 0) {
		end = V_FAILED;
		fail_locked(s, &err);
	}
	pthread_mutex_unlock(&s->mu);
	if (end == V_FAILED)
		cancel_all(s, vs);
	if (end == V_FAILED)
		emit(s, &(struct sv_event){.type = SV_EVENT_FAILED,
		                           .vertex = vs->v,
		                           .cache_key = vs->keyed ? vs->key : NULL,
		                           .duration_ns = now_ns() - t0,
		                           .err = &s->first_err});
	else if (end == V_CANCELLED)
		emit(s, &(struct sv_event){.type = SV_EVENT_CANCELLED,
		                           .vertex = vs->v,
		                           .cache_key = vs->keyed ? vs->key : NULL});
	pthread_mutex_lock(&s->mu);
	vs->state = end;
	s->running--;
	if (vs->has_slot)
		s->heavy_running--;
	vs->has_slot = false;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	kiln_err_release(&err);
	return NULL;
}

static bool
inputs_done(const struct sv_solver *s, const struct vstate *vs)
{
	for (size_t i = 0; i < vs->v->ninputs; i++) {
		if (s->vs[vs->v->inputs[i]->index].state != V_DONE)
			return false;
	}
	return true;
}

int
sv_solve(struct sv_solver *s, const struct sv_graph *g, struct sv_vertex *const *want, size_t nwant,
         struct kiln_err *err)
{
	states_free(s);
	kiln_err_release(&s->first_err);
	s->failed = false;
	s->running = s->heavy_running = 0;
	s->nvs = g->nvertices;
	s->vs = kiln_xcalloc(s->nvs ? s->nvs : 1, sizeof(*s->vs));
	for (size_t i = 0; i < s->nvs; i++) {
		struct vstate *vs = &s->vs[i];
		vs->v = g->vertices[i];
		vs->ctx.s = s;
		vs->ctx.vs = vs;
		atomic_init(&vs->ctx.cancelled, false);
		pthread_mutex_init(&vs->ctx.mu, NULL);
		vs->ctx.components = json_object();
	}
	for (size_t i = 0; i < nwant; i++) {
		if (!state_of(s, want[i]))
			return kiln_err_invalid(err, "solve: vertex not in the graph");
		s->vs[want[i]->index].needed = true;
	}
	/* Inputs come before their users in the graph, so one backward pass marks all. */
	for (size_t i = s->nvs; i-- > 0;) {
		if (!s->vs[i].needed)
			continue;
		for (size_t j = 0; j < s->vs[i].v->ninputs; j++)
			s->vs[s->vs[i].v->inputs[j]->index].needed = true;
	}

	pthread_mutex_lock(&s->mu);
	for (;;) {
		for (size_t i = 0; i < s->nvs && !s->failed; i++) {
			struct vstate *vs = &s->vs[i];
			if (!vs->needed || vs->state != V_PENDING || !inputs_done(s, vs))
				continue;
			vs->state = V_RUNNING;
			int e = pthread_create(&vs->thread, NULL, vertex_main, vs);
			if (e != 0) {
				vs->state = V_FAILED;
				struct kiln_err te = KILN_ERR_INIT;
				kiln_err_set(&te, e, "start a thread for %s", vertex_desc(vs->v));
				fail_locked(s, &te);
				pthread_mutex_unlock(&s->mu);
				cancel_all(s, vs);
				pthread_mutex_lock(&s->mu);
				break;
			}
			vs->thread_started = true;
			s->running++;
		}
		if (!s->running)
			break;
		pthread_cond_wait(&s->cond, &s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < s->nvs; i++) {
		if (s->vs[i].thread_started)
			pthread_join(s->vs[i].thread, NULL);
		s->vs[i].thread_started = false;
	}
	for (size_t i = 0; i < s->nvs && !s->failed; i++) {
		/* Cannot happen in a DAG whose inputs precede their users; never report a
		 * success with results missing. */
		if (s->vs[i].needed && s->vs[i].state != V_DONE)
			return kiln_err_set(err, EDEADLK, "solve: %s never became ready",
			                    vertex_desc(s->vs[i].v));
	}
	if (s->failed) {
		int code = s->first_err.code ? s->first_err.code : EIO;
		if (err) {
			kiln_err_release(err);
			*err = s->first_err;
		} else {
			kiln_err_release(&s->first_err);
		}
		s->first_err = (struct kiln_err)KILN_ERR_INIT;
		return -code;
	}
	return 0;
}
