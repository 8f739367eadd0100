/* Unit tests for solver/solve.c: the engine over fake ops (tests/solver/fake_ops.h):
 * scheduling, job slots, cancellation, the persistent cache across solvers and
 * processes, explanations and the no-cache options. No timings: concurrency is checked
 * with counters and barriers. */
#include "fake_ops.h"

#include <sys/wait.h>

struct fixture {
	char *dir; /* kiln root and fake results */
	struct fake f;
	struct sv_cache *cache;
	struct kiln_buf events; /* one line per event */
	pthread_mutex_t ev_mu;
};

static int
setup(void **state)
{
	struct fixture *x = kiln_xcalloc(1, sizeof(*x));
	x->dir = test_tmpdir_new();
	fake_init(&x->f, x->dir);
	kiln_buf_init(&x->events, 0);
	pthread_mutex_init(&x->ev_mu, NULL);
	struct kiln_err err = KILN_ERR_INIT;
	if (sv_cache_open(x->dir, &x->cache, &err) < 0)
		fail_msg("cache open: %s", kiln_err_format(&err));
	*state = x;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *x = *state;
	sv_cache_free(x->cache);
	fake_release(&x->f);
	kiln_buf_release(&x->events);
	pthread_mutex_destroy(&x->ev_mu);
	test_tmpdir_remove(x->dir);
	free(x);
	return 0;
}

static void
on_event(void *data, const struct sv_event *ev)
{
	struct fixture *x = data;
	pthread_mutex_lock(&x->ev_mu);
	kiln_buf_addf(&x->events, "%s %s", sv_event_name(ev->type), fake_name(ev->vertex));
	if (ev->explain)
		kiln_buf_addf(&x->events, " why=%s", ev->explain);
	if (ev->type == SV_EVENT_LOG)
		kiln_buf_addf(&x->events, " log=%.*s", (int)ev->len, ev->data);
	if (ev->type == SV_EVENT_FAILED) {
		_cleanup_free_ char *m = kiln_err_format(ev->err);
		kiln_buf_addf(&x->events, " err=%s", m);
	}
	kiln_buf_addch(&x->events, '\n');
	pthread_mutex_unlock(&x->ev_mu);
}

static bool
has_event(struct fixture *x, const char *line)
{
	_cleanup_free_ char *needle = kiln_xasprintf("%s\n", line);
	return strstr(x->events.buf, needle) != NULL;
}

/* Solve `want` with a fresh solver; returns sv_solve's result. The solver goes to *ret_s
 * when asked for (caller frees), else it is freed. */
static int
solve(struct fixture *x, struct sv_graph *g, struct sv_vertex *const *want, size_t n,
      struct sv_solve_opts *o, struct sv_solver **ret_s, struct kiln_err *err)
{
	struct sv_solve_opts def = SV_SOLVE_OPTS_INIT;
	if (!o)
		o = &def;
	o->progress = on_event;
	o->progress_data = x;
	struct sv_solver *s = NULL;
	assert_int_equal(sv_solver_new(&fake_ops, &x->f, x->cache, o, &s, err), 0);
	int r = sv_solve(s, g, want, n, err);
	if (ret_s)
		*ret_s = s;
	else
		sv_solver_free(s);
	return r;
}

static void
solve_ok(struct fixture *x, struct sv_graph *g, struct sv_vertex *const *want, size_t n,
         struct sv_solve_opts *o)
{
	struct kiln_err err = KILN_ERR_INIT;
	if (solve(x, g, want, n, o, NULL, &err) < 0)
		fail_msg("solve: %s", kiln_err_format(&err));
}

/* A -> B, A -> C, (B, C) -> D, plus E on A that nobody wants. */
static struct sv_graph *
diamond(struct sv_vertex **ret_d, struct sv_vertex **ret_e)
{
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *a = fake_vertex(g, SV_OP_SOURCE, "A", NULL, NULL, 0, "0", 1);
	struct sv_vertex *b = fake_vertex(g, SV_OP_EXEC, "B", "{\"heavy\":true}", &a, 1, "0", 2);
	struct sv_vertex *c = fake_vertex(g, SV_OP_EXEC, "C", "{\"heavy\":true}", &a, 1, "0", 3);
	struct sv_vertex *bc[] = {b, c};
	*ret_d = fake_vertex(g, SV_OP_FILE, "D", NULL, bc, 2, "0", 4);
	if (ret_e)
		*ret_e = fake_vertex(g, SV_OP_EXEC, "E", NULL, &a, 1, "0", 5);
	return g;
}

static void
test_solve__diamond_runs_each_vertex_once(void **state)
{
	struct fixture *x = *state;
	struct sv_vertex *d, *e;
	struct sv_graph *g = diamond(&d, &e);
	struct sv_solver *s = NULL;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(solve(x, g, &d, 1, NULL, &s, &err), 0);
	assert_int_equal(fake_runs(&x->f, "A"), 1);
	assert_int_equal(fake_runs(&x->f, "B"), 1);
	assert_int_equal(fake_runs(&x->f, "C"), 1);
	assert_int_equal(fake_runs(&x->f, "D"), 1);
	assert_int_equal(fake_runs(&x->f, "E"), 0); /* not needed */
	assert_non_null(sv_solver_result(s, d));
	assert_null(sv_solver_result(s, e));
	assert_true(kiln_digest_valid(sv_solver_cache_key(s, d)));
	/* D got both parents' results, in input order. */
	_cleanup_free_ char *p = kiln_xasprintf("%s/results/%s", x->dir, sv_solver_result(s, d));
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	assert_int_equal(kiln_buf_read_file(&b, p, &err), 0);
	_cleanup_free_ char *want = kiln_xasprintf("%s\n%s\n", sv_solver_result(s, d->inputs[0]),
	                                           sv_solver_result(s, d->inputs[1]));
	assert_string_equal(b.buf, want);
	assert_true(has_event(x, "finished D"));
	assert_int_equal(count_records(x->dir), 4);
	sv_solver_free(s);
	sv_graph_free(g);
}

static void
test_solve__independent_heavy_vertices_fill_the_jobs(void **state)
{
	struct fixture *x = *state;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *v[6];
	for (int i = 0; i < 6; i++) {
		char name[8];
		snprintf(name, sizeof(name), "H%d", i);
		v[i] = fake_vertex(g, SV_OP_EXEC, name, "{\"heavy\":true,\"barrier\":true}", NULL,
		                   0, "0", i + 1);
	}
	x->f.barrier = 3;
	struct sv_solve_opts o = {.jobs = 3};
	solve_ok(x, g, v, 6, &o);
	assert_int_equal(x->f.max, 3);
	assert_int_equal(fake_total_runs(&x->f), 6);
	sv_graph_free(g);
}

static void
test_solve__one_job_runs_heavy_vertices_one_at_a_time(void **state)
{
	struct fixture *x = *state;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *v[4];
	for (int i = 0; i < 4; i++) {
		char name[8];
		snprintf(name, sizeof(name), "H%d", i);
		v[i] = fake_vertex(g, SV_OP_EXEC, name, "{\"heavy\":true}", NULL, 0, "0", i + 1);
	}
	struct sv_solve_opts o = {.jobs = 1};
	solve_ok(x, g, v, 4, &o);
	assert_int_equal(x->f.max, 1);
	assert_int_equal(fake_total_runs(&x->f), 4);
	sv_graph_free(g);
}

static void
test_solve__light_vertices_take_no_slot(void **state)
{
	struct fixture *x = *state;
	struct sv_graph *g = sv_graph_new();
	/* With one slot, H holds it until L has run: L must not need a slot. */
	struct sv_vertex *v[2];
	v[0] = fake_vertex(g, SV_OP_EXEC, "H", "{\"heavy\":true,\"wait_for\":\"L\"}", NULL, 0, "0",
	                   1);
	v[1] = fake_vertex(g, SV_OP_SOURCE, "L", NULL, NULL, 0, "0", 2);
	struct sv_solve_opts o = {.jobs = 1};
	solve_ok(x, g, v, 2, &o);
	assert_int_equal(fake_runs(&x->f, "H"), 1);
	assert_int_equal(fake_runs(&x->f, "L"), 1);
	sv_graph_free(g);
}

static void
test_solve__failure_cancels_siblings_and_keeps_nothing(void **state)
{
	struct fixture *x = *state;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *base = fake_vertex(g, SV_OP_SOURCE, "base", NULL, NULL, 0, "0", 1);
	/* B blocks until cancelled; F fails once B runs; N needs F and never starts. */
	struct sv_vertex *b = fake_vertex(g, SV_OP_EXEC, "B", "{\"heavy\":true,\"block\":true}",
	                                  &base, 1, "0", 2);
	struct sv_vertex *f =
	        fake_vertex(g, SV_OP_EXEC, "F", "{\"heavy\":true,\"fail\":true,\"wait_for\":\"B\"}",
	                    &base, 1, "0", 7);
	struct sv_vertex *n = fake_vertex(g, SV_OP_EXEC, "N", NULL, &f, 1, "0", 8);
	struct sv_vertex *want[] = {b, n};
	struct sv_solve_opts o = {.jobs = 2};
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(solve(x, g, want, 2, &o, NULL, &err), -EINVAL);
	_cleanup_free_ char *msg = kiln_err_format(&err);
	assert_string_equal(msg, "Dockerfile:7: RUN F: process \"F\" exited with status 1");
	kiln_err_release(&err);
	pthread_mutex_lock(&x->f.mu);
	assert_int_equal(json_integer_value(json_object_get(x->f.cancels, "B")), 1);
	pthread_mutex_unlock(&x->f.mu);
	assert_int_equal(fake_runs(&x->f, "N"), 0);
	assert_true(has_event(x, "cancelled B"));
	assert_true(strstr(x->events.buf, "failed F err=Dockerfile:7: RUN F:"));
	/* Only the base, which finished before anything failed, has a record. */
	assert_int_equal(count_records(x->dir), 1);
	sv_graph_free(g);
}

static void
test_solve__error_location_uses_source_file_option(void **state)
{
	struct fixture *x = *state;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *f = fake_vertex(g, SV_OP_EXEC, "F", "{\"fail\":true}", NULL, 0, "0", 3);
	struct sv_solve_opts o = {.source_file = "build/Dockerfile.dev"};
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(solve(x, g, &f, 1, &o, NULL, &err), -EINVAL);
	assert_err_contains(&err, "build/Dockerfile.dev:3: RUN F: process");
	assert_int_equal(count_records(x->dir), 0);
	sv_graph_free(g);
}

static void
test_solve__cache_hit_in_a_fresh_solver(void **state)
{
	struct fixture *x = *state;
	struct sv_vertex *d;
	struct sv_graph *g = diamond(&d, NULL);
	struct sv_solver *s1 = NULL, *s2 = NULL;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(solve(x, g, &d, 1, NULL, &s1, &err), 0);
	assert_int_equal(fake_total_runs(&x->f), 4);

	/* A new graph object, cache handle and solver: only the directory is shared. */
	struct sv_vertex *d2;
	struct sv_graph *g2 = diamond(&d2, NULL);
	sv_cache_free(x->cache);
	assert_int_equal(sv_cache_open(x->dir, &x->cache, &err), 0);
	kiln_buf_reset(&x->events);
	assert_int_equal(solve(x, g2, &d2, 1, NULL, &s2, &err), 0);
	assert_int_equal(fake_total_runs(&x->f), 4); /* nothing ran again */
	assert_string_equal(sv_solver_result(s2, d2), sv_solver_result(s1, d));
	assert_string_equal(sv_solver_cache_key(s2, d2), sv_solver_cache_key(s1, d));
	assert_true(has_event(x, "cached A"));
	assert_true(has_event(x, "cached D"));
	assert_null(strstr(x->events.buf, "started"));
	sv_solver_free(s1);
	sv_solver_free(s2);
	sv_graph_free(g);
	sv_graph_free(g2);
}

/* In a child: solve the diamond on the fixture's root; exit 0 on success. */
static void
child_solve(struct fixture *x, int go_fd)
{
	struct fake f;
	fake_init(&f, x->dir);
	if (go_fd >= 0) {
		char c;
		if (read(go_fd, &c, 1) != 1)
			_exit(3);
	}
	struct sv_cache *c = NULL;
	struct kiln_err err = KILN_ERR_INIT;
	if (sv_cache_open(x->dir, &c, &err) < 0)
		_exit(2);
	struct sv_vertex *d;
	struct sv_graph *g = diamond(&d, NULL);
	struct sv_solver *s = NULL;
	int r = sv_solver_new(&fake_ops, &f, c, NULL, &s, &err);
	if (r == 0)
		r = sv_solve(s, g, &d, 1, &err);
	if (r == 0 && !fake_exists(&f, sv_solver_result(s, d)))
		r = -1;
	sv_solver_free(s);
	sv_graph_free(g);
	sv_cache_free(c);
	fake_release(&f);
	_exit(r == 0 ? 0 : 1);
}

static void
test_solve__cache_hit_across_processes(void **state)
{
	struct fixture *x = *state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_solve(x, -1);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(count_records(x->dir), 4);

	struct sv_vertex *d;
	struct sv_graph *g = diamond(&d, NULL);
	solve_ok(x, g, &d, 1, NULL);
	assert_int_equal(fake_total_runs(&x->f), 0); /* all from the child's records */
	assert_true(has_event(x, "cached D"));
	sv_graph_free(g);
}

static void
test_solve__concurrent_processes_share_one_cache(void **state)
{
	struct fixture *x = *state;
	int go[2];
	assert_int_equal(pipe(go), 0);
	pid_t pids[2];
	for (int i = 0; i < 2; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(go[1]);
			child_solve(x, go[0]);
		}
	}
	close(go[0]);
	assert_int_equal(write(go[1], "gg", 2), 2); /* start both at once */
	close(go[1]);
	for (int i = 0; i < 2; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	assert_int_equal(count_records(x->dir), 4);
	struct sv_vertex *d;
	struct sv_graph *g = diamond(&d, NULL);
	solve_ok(x, g, &d, 1, NULL);
	assert_int_equal(fake_total_runs(&x->f), 0);
	sv_graph_free(g);
}

/* S -> X (reads ctx/a) -> Y, and S -> Z. */
static struct sv_graph *
copy_graph(struct sv_vertex **want, const char *x_extra)
{
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *s = fake_vertex(g, SV_OP_SOURCE, "S", NULL, NULL, 0, "0", 1);
	struct sv_vertex *xv = fake_vertex(g, SV_OP_FILE, "X", x_extra, &s, 1, "0", 2);
	want[0] = fake_vertex(g, SV_OP_EXEC, "Y", "{\"heavy\":true}", &xv, 1, "0", 3);
	want[1] = fake_vertex(g, SV_OP_EXEC, "Z", "{\"heavy\":true}", &s, 1, "0", 4);
	return g;
}

static void
test_solve__content_change_misses_that_vertex_and_its_dependents(void **state)
{
	struct fixture *x = *state;
	test_write_file(x->dir, "ctx/a", "one");
	struct sv_vertex *want[2];
	struct sv_graph *g = copy_graph(want, "{\"reads\":\"a\"}");
	solve_ok(x, g, want, 2, NULL);
	assert_int_equal(fake_total_runs(&x->f), 4);

	test_write_file(x->dir, "ctx/a", "two");
	kiln_buf_reset(&x->events);
	struct sv_solve_opts o = {.explain = true};
	solve_ok(x, g, want, 2, &o);
	assert_int_equal(fake_runs(&x->f, "S"), 1);
	assert_int_equal(fake_runs(&x->f, "Z"), 1);
	assert_int_equal(fake_runs(&x->f, "X"), 2);
	assert_int_equal(fake_runs(&x->f, "Y"), 2);
	assert_true(has_event(x, "started X why=STEP X: file a under STEP X changed"));
	assert_true(has_event(x, "started Y why=RUN Y: parent step changed"));
	assert_true(has_event(x, "cached Z"));

	/* Same content again as the first build: both old records are still there. */
	test_write_file(x->dir, "ctx/a", "one");
	solve_ok(x, g, want, 2, NULL);
	assert_int_equal(fake_runs(&x->f, "X"), 2);
	sv_graph_free(g);
}

/* The log line of vertex `name`'s lineage lookup in the last events ("prev=..."). */
static char *
prev_of(struct fixture *x, const char *name)
{
	_cleanup_free_ char *needle = kiln_xasprintf("log %s log=prev=", name);
	const char *p = strstr(x->events.buf, needle);
	if (!p)
		return NULL;
	p += strlen(needle);
	return kiln_xstrndup(p, strcspn(p, "\n"));
}

static void
test_solve__lineage_previous_is_the_last_run_over_other_content(void **state)
{
	struct fixture *x = *state;
	test_write_file(x->dir, "ctx/a", "one");
	struct sv_vertex *want[2];
	struct sv_graph *g = copy_graph(want, "{\"reads\":\"a\",\"lineage\":true}");
	solve_ok(x, g, want, 1, NULL);
	_cleanup_free_ char *p1 = prev_of(x, "X");
	assert_string_equal(p1, "none");

	/* Other content: the first run's result is offered. */
	test_write_file(x->dir, "ctx/a", "two");
	kiln_buf_reset(&x->events);
	solve_ok(x, g, want, 1, NULL);
	_cleanup_free_ char *p2 = prev_of(x, "X");
	assert_true(kiln_str_has_prefix(p2, "X-"));
	assert_int_equal(fake_runs(&x->f, "X"), 2);

	/* --no-cache offers nothing, but its run becomes the latest. */
	test_write_file(x->dir, "ctx/a", "three");
	kiln_buf_reset(&x->events);
	struct sv_solve_opts o = {.no_cache = true};
	solve_ok(x, g, want, 1, &o);
	_cleanup_free_ char *p3 = prev_of(x, "X");
	assert_string_equal(p3, "none");
	test_write_file(x->dir, "ctx/a", "four");
	kiln_buf_reset(&x->events);
	solve_ok(x, g, want, 1, NULL);
	_cleanup_free_ char *p4 = prev_of(x, "X");
	assert_true(kiln_str_has_prefix(p4, "X-"));
	assert_string_not_equal(p4, p2);

	/* A result that no longer exists is not offered. */
	test_write_file(x->dir, "ctx/a", "five");
	kiln_buf_reset(&x->events);
	x->f.exists_false = true;
	solve_ok(x, g, want, 1, NULL);
	_cleanup_free_ char *p5 = prev_of(x, "X");
	assert_string_equal(p5, "none");
	sv_graph_free(g);
}

static void
test_solve__explain_build_arg_change(void **state)
{
	struct fixture *x = *state;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *v = fake_vertex(
	        g, SV_OP_EXEC, "R", "{\"args\":{\"FOO\":\"1\",\"BAR\":\"x\"}}", NULL, 0, "0", 5);
	struct sv_solve_opts o = {.explain = true};
	solve_ok(x, g, &v, 1, &o);
	assert_true(
	        has_event(x, "started R why=RUN R: no earlier build of this step in the cache"));
	sv_graph_free(g);

	g = sv_graph_new();
	v = fake_vertex(g, SV_OP_EXEC, "R", "{\"args\":{\"FOO\":\"2\",\"BAR\":\"x\"}}", NULL, 0,
	                "0", 5);
	kiln_buf_reset(&x->events);
	solve_ok(x, g, &v, 1, &o);
	assert_true(has_event(x, "started R why=RUN R: build arg FOO changed"));
	sv_graph_free(g);
}

static void
test_solve__explain_parent_change(void **state)
{
	struct fixture *x = *state;
	struct sv_vertex *want[2];
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *p = fake_vertex(g, SV_OP_EXEC, "P", "{\"v\":1}", NULL, 0, "0", 1);
	want[0] = fake_vertex(g, SV_OP_EXEC, "C", NULL, &p, 1, "0", 2);
	solve_ok(x, g, want, 1, NULL);
	sv_graph_free(g);

	g = sv_graph_new();
	p = fake_vertex(g, SV_OP_EXEC, "P", "{\"v\":2}", NULL, 0, "0", 1);
	want[0] = fake_vertex(g, SV_OP_EXEC, "C", NULL, &p, 1, "0", 2);
	struct sv_solve_opts o = {.explain = true};
	kiln_buf_reset(&x->events);
	solve_ok(x, g, want, 1, &o);
	assert_true(has_event(x, "started P why=RUN P: the definition of RUN P changed"));
	assert_true(has_event(x, "started C why=RUN C: parent step changed"));
	sv_graph_free(g);
}

static void
test_solve__no_cache_runs_all_and_replaces_records(void **state)
{
	struct fixture *x = *state;
	struct sv_vertex *d;
	struct sv_graph *g = diamond(&d, NULL);
	struct sv_solver *s1 = NULL, *s2 = NULL;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(solve(x, g, &d, 1, NULL, &s1, &err), 0);
	struct sv_solve_opts o = {.no_cache = true, .explain = true};
	assert_int_equal(solve(x, g, &d, 1, &o, &s2, &err), 0);
	assert_int_equal(fake_total_runs(&x->f), 8);
	assert_true(has_event(x, "started D why=STEP D: cache disabled for this step"));
	assert_string_not_equal(sv_solver_result(s1, d), sv_solver_result(s2, d));
	assert_int_equal(count_records(x->dir), 4);
	sv_solver_free(s1);

	/* The fresh results are the ones recorded. */
	struct sv_solver *s3 = NULL;
	assert_int_equal(solve(x, g, &d, 1, NULL, &s3, &err), 0);
	assert_int_equal(fake_total_runs(&x->f), 8);
	assert_string_equal(sv_solver_result(s3, d), sv_solver_result(s2, d));
	sv_solver_free(s2);
	sv_solver_free(s3);
	sv_graph_free(g);
}

static bool
filter_stage_b(void *data, const char *stage)
{
	return kiln_str_eq(stage, (const char *)data);
}

static void
test_solve__no_cache_filter_by_stage(void **state)
{
	struct fixture *x = *state;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *a = fake_vertex(g, SV_OP_SOURCE, "A", NULL, NULL, 0, "build", 1);
	struct sv_vertex *want[2];
	want[0] = fake_vertex(g, SV_OP_EXEC, "B", NULL, &a, 1, "build", 2);
	want[1] = fake_vertex(g, SV_OP_EXEC, "C", NULL, NULL, 0, "final", 3);
	solve_ok(x, g, want, 2, NULL);
	struct sv_solve_opts o = {.no_cache_filter = filter_stage_b,
	                          .no_cache_filter_data = "build"};
	solve_ok(x, g, want, 2, &o);
	assert_int_equal(fake_runs(&x->f, "A"), 2);
	assert_int_equal(fake_runs(&x->f, "B"), 2);
	assert_int_equal(fake_runs(&x->f, "C"), 1);
	sv_graph_free(g);
}

static void
test_solve__commit_failure_leaves_no_record(void **state)
{
	struct fixture *x = *state;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *a = fake_vertex(g, SV_OP_SOURCE, "A", NULL, NULL, 0, "0", 1);
	struct sv_vertex *b =
	        fake_vertex(g, SV_OP_EXEC, "B", "{\"commit_fail\":true}", &a, 1, "0", 6);
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(solve(x, g, &b, 1, NULL, NULL, &err), -ENOSPC);
	assert_err_contains(&err, "Dockerfile:6: RUN B: commit B-");
	assert_int_equal(count_records(x->dir), 1); /* A only */
	assert_int_equal(x->f.discards, 1);
	sv_graph_free(g);
}

static void
test_solve__corrupt_record_is_a_miss_and_is_replaced(void **state)
{
	struct fixture *x = *state;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *a = fake_vertex(g, SV_OP_SOURCE, "A", NULL, NULL, 0, "0", 1);
	struct sv_solver *s = NULL;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(solve(x, g, &a, 1, NULL, &s, &err), 0);
	_cleanup_free_ char *rec =
	        kiln_xasprintf("%s/cache/records/%s", x->dir, sv_solver_cache_key(s, a) + 7);
	sv_solver_free(s);
	assert_int_equal(truncate(rec, 9), 0); /* half a JSON object */
	assert_int_equal(solve(x, g, &a, 1, NULL, &s, &err), 0);
	assert_int_equal(fake_runs(&x->f, "A"), 2);
	sv_solver_free(s);
	/* The record was rewritten whole: a third solve hits. */
	assert_int_equal(solve(x, g, &a, 1, NULL, NULL, &err), 0);
	assert_int_equal(fake_runs(&x->f, "A"), 2);
	sv_graph_free(g);
}

static void
test_solve__missing_result_is_a_miss(void **state)
{
	struct fixture *x = *state;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *a = fake_vertex(g, SV_OP_SOURCE, "A", NULL, NULL, 0, "0", 1);
	solve_ok(x, g, &a, 1, NULL);
	x->f.exists_false = true;
	struct sv_solve_opts o = {.explain = true};
	solve_ok(x, g, &a, 1, &o);
	assert_int_equal(fake_runs(&x->f, "A"), 2);
	assert_true(has_event(x, "started A why=STEP A: the cached result no longer exists"));
	sv_graph_free(g);
}

static void
test_solve__logs_reach_the_progress_callback(void **state)
{
	struct fixture *x = *state;
	struct sv_graph *g = sv_graph_new();
	struct sv_vertex *a =
	        fake_vertex(g, SV_OP_EXEC, "A", "{\"log\":\"hello\"}", NULL, 0, "0", 1);
	solve_ok(x, g, &a, 1, NULL);
	assert_string_equal(x->events.buf, "started A\nlog A log=hello\nfinished A\n");
	sv_graph_free(g);
}

static void
test_solve__without_a_cache_everything_runs(void **state)
{
	struct fixture *x = *state;
	struct sv_vertex *d;
	struct sv_graph *g = diamond(&d, NULL);
	struct kiln_err err = KILN_ERR_INIT;
	for (int i = 0; i < 2; i++) {
		struct sv_solver *s = NULL;
		assert_int_equal(sv_solver_new(&fake_ops, &x->f, NULL, NULL, &s, &err), 0);
		assert_int_equal(sv_solve(s, g, &d, 1, &err), 0);
		sv_solver_free(s);
	}
	assert_int_equal(fake_total_runs(&x->f), 8);
	assert_int_equal(count_records(x->dir), 0);
	sv_graph_free(g);
}

static void
test_solve__equal_keys_run_once(void **state)
{
	struct fixture *x = *state;
	struct sv_graph *g = sv_graph_new();
	/* Two vertices that differ in the graph but share a cache key: the engine must not
	 * build that key twice. (Editing a def after adding it is the only way to get equal
	 * keys from different digests with these ops.) */
	struct sv_vertex *want[2];
	want[0] = fake_vertex(g, SV_OP_EXEC, "Q", "{\"heavy\":true,\"x\":1}", NULL, 0, "0", 1);
	want[1] = fake_vertex(g, SV_OP_EXEC, "Q", "{\"heavy\":true,\"x\":2}", NULL, 0, "0", 2);
	assert_ptr_not_equal(want[0], want[1]);
	json_object_del(want[0]->def, "x");
	json_object_del(want[1]->def, "x");
	struct sv_solver *s = NULL;
	struct kiln_err err = KILN_ERR_INIT;
	struct sv_solve_opts o = {.jobs = 2};
	assert_int_equal(solve(x, g, want, 2, &o, &s, &err), 0);
	assert_int_equal(fake_runs(&x->f, "Q"), 1);
	assert_string_equal(sv_solver_result(s, want[0]), sv_solver_result(s, want[1]));
	assert_true(has_event(x, "cached Q"));
	sv_solver_free(s);
	sv_graph_free(g);
}

static int
count_lines(const char *text, const char *prefix)
{
	int n = 0;
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		n += kiln_str_has_prefix(p, prefix);
	return n;
}

static void
test_solve__results_finished_after_a_cancel_are_discarded(void **state)
{
	struct fixture *x = *state;
	struct sv_graph *g = sv_graph_new();
	/* B sees the cancel and still returns a result, which must not be kept. L (light)
	 * lets W ask for a slot only once F runs: with B and F holding both slots, W must
	 * give up when F fails rather than take F's slot. */
	struct sv_vertex *b = fake_vertex(g, SV_OP_EXEC, "B",
	                                  "{\"heavy\":true,\"block\":true,\"finish_anyway\":true}",
	                                  NULL, 0, "0", 2);
	struct sv_vertex *f =
	        fake_vertex(g, SV_OP_EXEC, "F", "{\"heavy\":true,\"fail\":true,\"wait_for\":\"B\"}",
	                    NULL, 0, "0", 3);
	struct sv_vertex *l =
	        fake_vertex(g, SV_OP_SOURCE, "L", "{\"wait_for\":\"F\"}", NULL, 0, "0", 4);
	struct sv_vertex *w = fake_vertex(g, SV_OP_EXEC, "W", "{\"heavy\":true}", &l, 1, "0", 5);
	struct sv_vertex *want[] = {b, f, w};
	struct sv_solve_opts o = {.jobs = 2};
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(solve(x, g, want, 3, &o, NULL, &err), -EINVAL);
	assert_err_contains(&err, "Dockerfile:3: RUN F: process \"F\" exited with status 1");
	assert_int_equal(fake_runs(&x->f, "B"), 1);
	assert_int_equal(fake_runs(&x->f, "W"), 0);
	assert_true(has_event(x, "cancelled B"));
	assert_true(x->f.discards >= 1); /* B's result, and L's if it ended after the cancel */
	/* Records exist exactly for the vertices that finished. */
	assert_int_equal(count_records(x->dir), count_lines(x->events.buf, "finished "));
	assert_int_equal(count_lines(x->events.buf, "finished B"), 0);
	sv_graph_free(g);
}

static void
test_solve__vertex_outside_the_graph_is_refused(void **state)
{
	struct fixture *x = *state;
	struct sv_graph *g = sv_graph_new(), *other = sv_graph_new();
	fake_vertex(g, SV_OP_SOURCE, "A", NULL, NULL, 0, "0", 1);
	struct sv_vertex *b = fake_vertex(other, SV_OP_SOURCE, "B", NULL, NULL, 0, "0", 1);
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(solve(x, g, &b, 1, NULL, NULL, &err), -EINVAL);
	assert_err_contains(&err, "vertex not in the graph");
	assert_int_equal(fake_total_runs(&x->f), 0);
	sv_graph_free(g);
	sv_graph_free(other);
}

static void
test_solve__default_identity_is_stage_and_description(void **state)
{
	struct fixture *x = *state;
	struct sv_ops ops = fake_ops;
	ops.identity = NULL;
	ops.heavy = NULL; /* exec is heavy by default */
	struct kiln_err err = KILN_ERR_INIT;
	for (int round = 0; round < 2; round++) {
		struct sv_graph *g = sv_graph_new();
		struct sv_vertex *v =
		        fake_vertex(g, SV_OP_EXEC, "R",
		                    round ? "{\"args\":{\"V\":\"2\"}}" : "{\"args\":{\"V\":\"1\"}}",
		                    NULL, 0, "build", 4);
		struct sv_solve_opts o = {
		        .explain = true, .progress = on_event, .progress_data = x};
		struct sv_solver *s = NULL;
		assert_int_equal(sv_solver_new(&ops, &x->f, x->cache, &o, &s, &err), 0);
		assert_int_equal(sv_solve(s, g, &v, 1, &err), 0);
		sv_solver_free(s);
		sv_graph_free(g);
	}
	assert_true(has_event(x, "started R why=RUN R: build arg V changed"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_solve__vertex_outside_the_graph_is_refused,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_solve__default_identity_is_stage_and_description, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_solve__diamond_runs_each_vertex_once, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_solve__independent_heavy_vertices_fill_the_jobs, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_solve__one_job_runs_heavy_vertices_one_at_a_time, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_solve__light_vertices_take_no_slot, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_solve__failure_cancels_siblings_and_keeps_nothing, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_solve__error_location_uses_source_file_option,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_solve__cache_hit_in_a_fresh_solver, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_solve__cache_hit_across_processes, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_solve__concurrent_processes_share_one_cache,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_solve__content_change_misses_that_vertex_and_its_dependents, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_solve__lineage_previous_is_the_last_run_over_other_content, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(test_solve__explain_build_arg_change, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_solve__explain_parent_change, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_solve__no_cache_runs_all_and_replaces_records,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_solve__no_cache_filter_by_stage, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_solve__commit_failure_leaves_no_record, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_solve__corrupt_record_is_a_miss_and_is_replaced, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_solve__missing_result_is_a_miss, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_solve__logs_reach_the_progress_callback, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_solve__without_a_cache_everything_runs, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_solve__equal_keys_run_once, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_solve__results_finished_after_a_cancel_are_discarded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
