/* Unit tests for solver/cachestore.c: records written whole and read back, corrupt ones
 * cleaned, the first writer of a key winning, prune skipping records in use (also from
 * another process), step recipes, stale temps. */
#include "testlib.h"

#include "solver/sv_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define K1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define K2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define K3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

struct fixture {
	char *dir;
	struct sv_cache *c;
};

static int
setup(void **state)
{
	struct fixture *x = kiln_xcalloc(1, sizeof(*x));
	x->dir = test_tmpdir_new();
	struct kiln_err err = KILN_ERR_INIT;
	if (sv_cache_open(x->dir, &x->c, &err) < 0)
		fail_msg("open: %s", kiln_err_format(&err));
	*state = x;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *x = *state;
	sv_cache_free(x->c);
	test_tmpdir_remove(x->dir);
	free(x);
	return 0;
}

static bool
exists_yes(void *data, const char *result)
{
	return true;
}

static bool
exists_no(void *data, const char *result)
{
	return false;
}

/* Put a record and return the held fd. */
static int
put(struct fixture *x, const char *key, const char *result, uint64_t size)
{
	json_t *recipe = json_pack("{s:s}", "op", "exec");
	struct sv_cache_put p = {.key = key,
	                         .result = result,
	                         .size = size,
	                         .identity = "step 1",
	                         .description = "RUN make",
	                         .recipe = recipe};
	char *winner = NULL;
	int fd = -1;
	struct kiln_err err = KILN_ERR_INIT;
	int r = sv_cache_put(x->c, &p, exists_yes, NULL, &winner, &fd, &err);
	if (r < 0)
		fail_msg("put: %s", kiln_err_format(&err));
	assert_int_equal(r, 0);
	assert_null(winner);
	json_decref(recipe);
	return fd;
}

static char *
record_path(struct fixture *x, const char *key)
{
	return kiln_xasprintf("%s/cache/records/%s", x->dir, key + 7);
}

struct seen {
	int n;
	struct sv_cache_entry e[8];
	char *results[8];
};

static int
collect(void *data, const struct sv_cache_entry *e)
{
	struct seen *s = data;
	s->e[s->n] = *e;
	s->results[s->n] = kiln_xstrdup(e->result);
	s->e[s->n].key = s->e[s->n].result = s->e[s->n].identity = s->e[s->n].description = NULL;
	s->n++;
	return 0;
}

static void
seen_release(struct seen *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->results[i]);
}

static void
test_cachestore__record_round_trip(void **state)
{
	struct fixture *x = *state;
	time_t t0 = time(NULL);
	int fd = put(x, K1, "snap-1", 4096);
	close(fd);
	char *res = NULL;
	bool gone = true;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(sv_cache_lookup(x->c, K1, exists_yes, NULL, &res, &fd, &gone, &err), 1);
	assert_string_equal(res, "snap-1");
	assert_false(gone);
	assert_true(fd >= 0);
	close(fd);
	free(res);
	assert_int_equal(sv_cache_lookup(x->c, K2, exists_yes, NULL, &res, &fd, &gone, &err), 0);
	assert_int_equal(sv_cache_lookup(x->c, "sha256:nope", NULL, NULL, &res, &fd, &gone, &err),
	                 -EINVAL);
	assert_err_contains(&err, "invalid cache key");

	struct seen s = {0};
	assert_int_equal(sv_cache_list(x->c, collect, &s, &err), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.results[0], "snap-1");
	assert_int_equal(s.e[0].size, 4096);
	assert_true(s.e[0].created >= t0 && s.e[0].created <= time(NULL));
	assert_true(s.e[0].last_used >= t0);
	seen_release(&s);

	/* The record is JSON naming its recipe; no temp is left behind. */
	_cleanup_free_ char *p = record_path(x, K1);
	_cleanup_buf_ struct kiln_buf b = KILN_BUF_INIT;
	assert_int_equal(kiln_buf_read_file(&b, p, &err), 0);
	json_t *doc = json_loads(b.buf, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "key")), K1);
	assert_string_equal(json_string_value(json_object_get(doc, "description")), "RUN make");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(doc, "recipe"), "op")), "exec");
	json_decref(doc);
	_cleanup_free_ char *tmp = kiln_xasprintf("%s/cache/tmp", x->dir);
	DIR *d = opendir(tmp);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	assert_int_equal(n, 0);
}

static void
test_cachestore__corrupt_record_is_a_miss_and_removed(void **state)
{
	struct fixture *x = *state;
	close(put(x, K1, "snap-1", 0));
	_cleanup_free_ char *p = record_path(x, K1);
	assert_int_equal(truncate(p, 12), 0);
	char *res = NULL;
	int fd = -1;
	bool gone = false;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(sv_cache_lookup(x->c, K1, exists_yes, NULL, &res, &fd, &gone, &err), 0);
	assert_false(gone);
	assert_int_equal(access(p, F_OK), -1);

	/* A record whose key does not match its name is as bad. */
	close(put(x, K2, "snap-2", 0));
	_cleanup_free_ char *p2 = record_path(x, K2);
	assert_int_equal(rename(p2, p), 0);
	assert_int_equal(sv_cache_lookup(x->c, K1, exists_yes, NULL, &res, &fd, &gone, &err), 0);
	assert_int_equal(access(p, F_OK), -1);
}

static void
test_cachestore__gone_result_is_a_miss_and_kept(void **state)
{
	struct fixture *x = *state;
	close(put(x, K1, "snap-1", 0));
	char *res = NULL;
	int fd = -1;
	bool gone = false;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(sv_cache_lookup(x->c, K1, exists_no, NULL, &res, &fd, &gone, &err), 0);
	assert_true(gone);
	_cleanup_free_ char *p = record_path(x, K1);
	assert_int_equal(access(p, F_OK), 0);

	/* A new result for the key replaces the stale record. */
	json_t *recipe = json_object();
	struct sv_cache_put pp = {.key = K1, .result = "snap-new", .recipe = recipe};
	char *winner = NULL;
	assert_int_equal(sv_cache_put(x->c, &pp, exists_no, NULL, &winner, &fd, &err), 0);
	assert_null(winner);
	close(fd);
	json_decref(recipe);
	assert_int_equal(sv_cache_lookup(x->c, K1, exists_yes, NULL, &res, &fd, &gone, &err), 1);
	assert_string_equal(res, "snap-new");
	free(res);
	close(fd);
}

static void
test_cachestore__first_writer_of_a_key_wins(void **state)
{
	struct fixture *x = *state;
	close(put(x, K1, "first", 0));
	json_t *recipe = json_object();
	struct sv_cache_put p = {.key = K1, .result = "second", .recipe = recipe};
	char *winner = NULL;
	int fd = -1;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(sv_cache_put(x->c, &p, exists_yes, NULL, &winner, &fd, &err), 1);
	assert_string_equal(winner, "first");
	free(winner);
	close(fd);
	/* --no-cache replaces instead. */
	p.replace = true;
	winner = NULL;
	assert_int_equal(sv_cache_put(x->c, &p, exists_yes, NULL, &winner, &fd, &err), 0);
	assert_null(winner);
	close(fd);
	char *res = NULL;
	bool gone;
	assert_int_equal(sv_cache_lookup(x->c, K1, exists_yes, NULL, &res, &fd, &gone, &err), 1);
	assert_string_equal(res, "second");
	free(res);
	close(fd);
	json_decref(recipe);
}

struct racer {
	struct sv_cache *c;
	char result[16];
	char *winner;
	int r;
	pthread_barrier_t *start;
};

static void *
race_put(void *arg)
{
	struct racer *rc = arg;
	json_t *recipe = json_object();
	struct sv_cache_put p = {.key = K3, .result = rc->result, .recipe = recipe};
	int fd = -1;
	struct kiln_err err = KILN_ERR_INIT;
	pthread_barrier_wait(rc->start);
	rc->r = sv_cache_put(rc->c, &p, exists_yes, NULL, &rc->winner, &fd, &err);
	if (fd >= 0)
		close(fd);
	kiln_err_release(&err);
	json_decref(recipe);
	return NULL;
}

static void
test_cachestore__racing_writers_agree_on_one_result(void **state)
{
	struct fixture *x = *state;
	enum { N = 8 };
	struct racer rc[N];
	pthread_t t[N];
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, N);
	for (int i = 0; i < N; i++) {
		rc[i] = (struct racer){.c = x->c, .start = &start};
		snprintf(rc[i].result, sizeof(rc[i].result), "r%d", i);
		assert_int_equal(pthread_create(&t[i], NULL, race_put, &rc[i]), 0);
	}
	int won = -1;
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		assert_true(rc[i].r == 0 || rc[i].r == 1);
		if (rc[i].r == 0) {
			assert_int_equal(won, -1);
			won = i;
		}
	}
	assert_true(won >= 0);
	for (int i = 0; i < N; i++) {
		if (i != won)
			assert_string_equal(rc[i].winner, rc[won].result);
		free(rc[i].winner);
	}
	pthread_barrier_destroy(&start);
}

static bool
prune_all(void *data, const struct sv_cache_entry *e)
{
	int *calls = data;
	(*calls)++;
	return true;
}

static bool
prune_big(void *data, const struct sv_cache_entry *e)
{
	return e->size > 100;
}

static void
test_cachestore__prune_skips_records_in_use(void **state)
{
	struct fixture *x = *state;
	int held = put(x, K1, "a", 1000); /* in use by "a solver" */
	close(put(x, K2, "b", 1000));
	close(put(x, K3, "c", 10));
	struct kiln_err err = KILN_ERR_INIT;
	size_t removed = 99;
	assert_int_equal(sv_cache_prune(x->c, prune_big, NULL, &removed, &err), 0);
	assert_int_equal(removed, 1); /* K2; K1 is busy, K3 is small */
	_cleanup_free_ char *p1 = record_path(x, K1);
	_cleanup_free_ char *p2 = record_path(x, K2);
	_cleanup_free_ char *p3 = record_path(x, K3);
	assert_int_equal(access(p1, F_OK), 0);
	assert_int_equal(access(p2, F_OK), -1);
	assert_int_equal(access(p3, F_OK), 0);

	/* Another process cannot take it either while we hold it. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sv_cache *c = NULL;
		struct kiln_err e = KILN_ERR_INIT;
		int calls = 0;
		size_t n = 0;
		if (sv_cache_open(x->dir, &c, &e) < 0 ||
		    sv_cache_prune(c, prune_all, &calls, &n, &e) < 0)
			_exit(2);
		sv_cache_free(c);
		_exit(n == 1 && calls == 1 ? 0 : 1); /* only K3 */
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(access(p1, F_OK), 0);
	assert_int_equal(access(p3, F_OK), -1);

	close(held);
	int calls = 0;
	assert_int_equal(sv_cache_prune(x->c, prune_all, &calls, &removed, &err), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(access(p1, F_OK), -1);
}

static void
test_cachestore__step_recipes(void **state)
{
	struct fixture *x = *state;
	struct kiln_err err = KILN_ERR_INIT;
	json_t *got = (json_t *)1;
	assert_int_equal(sv_cache_step_get(x->c, "stage 0 step 3", &got, &err), 0);
	assert_null(got);
	json_t *r1 = json_pack("{s:s}", "def", "d1");
	json_t *r2 = json_pack("{s:s}", "def", "d2");
	assert_int_equal(sv_cache_step_set(x->c, "stage 0 step 3", r1, &err), 0);
	assert_int_equal(sv_cache_step_set(x->c, "stage 0 step 3", r2, &err), 0);
	assert_int_equal(sv_cache_step_get(x->c, "stage 0 step 3", &got, &err), 0);
	assert_true(json_equal(got, r2));
	json_decref(got);
	assert_int_equal(sv_cache_step_get(x->c, "stage 0 step 4", &got, &err), 0);
	assert_null(got);
	json_decref(r1);
	json_decref(r2);
}

static void
test_cachestore__stale_temps_of_dead_writers_are_removed(void **state)
{
	struct fixture *x = *state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	_cleanup_free_ char *dead = kiln_xasprintf("tmp/%d-0", (int)pid);
	_cleanup_free_ char *live = kiln_xasprintf("tmp/%d-0", (int)getpid());
	_cleanup_free_ char *cdir = kiln_xasprintf("%s/cache", x->dir);
	test_write_file(cdir, dead, "{\"key\":");
	test_write_file(cdir, live, "{\"key\":");
	sv_cache_free(x->c);
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(sv_cache_open(x->dir, &x->c, &err), 0);
	_cleanup_free_ char *pd = kiln_xasprintf("%s/%s", cdir, dead);
	_cleanup_free_ char *pl = kiln_xasprintf("%s/%s", cdir, live);
	assert_int_equal(access(pd, F_OK), -1);
	assert_int_equal(access(pl, F_OK), 0); /* its writer may still finish */
	assert_string_equal(sv_cache_path(x->c), cdir);
}

static void
test_cachestore__lookup_marks_last_use(void **state)
{
	struct fixture *x = *state;
	close(put(x, K1, "snap-1", 0));
	_cleanup_free_ char *p = record_path(x, K1);
	struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
	assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
	struct seen s = {0};
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(sv_cache_list(x->c, collect, &s, &err), 0);
	assert_int_equal(s.e[0].last_used, 1000000000);
	seen_release(&s);

	time_t t0 = time(NULL);
	char *res = NULL;
	int fd = -1;
	bool gone;
	assert_int_equal(sv_cache_lookup(x->c, K1, exists_yes, NULL, &res, &fd, &gone, &err), 1);
	free(res);
	close(fd);
	s = (struct seen){0};
	assert_int_equal(sv_cache_list(x->c, collect, &s, &err), 0);
	assert_true(s.e[0].last_used >= t0);
	assert_true(s.e[0].created < s.e[0].last_used + 2);
	seen_release(&s);
}

/* Records from an imported cache: written when the key is free or its result is gone,
 * a usable local record kept, read back whole, and the step's recipe seeded once. */
static void
test_cachestore__imported_records(void **state)
{
	struct fixture *x = *state;
	struct kiln_err err = KILN_ERR_INIT;
	json_t *recipe = json_pack("{s:i, s:s}", "v", 1, "def", K3);
	assert_int_equal(sv_cache_record_import(x->c, K1, "chain-a", "s\nRUN a", "RUN a", recipe,
	                                        NULL, NULL, &err),
	                 1);
	json_t *doc = NULL;
	assert_int_equal(sv_cache_record_get(x->c, K1, &doc, &err), 0);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "result")), "chain-a");
	assert_string_equal(json_string_value(json_object_get(doc, "description")), "RUN a");
	assert_true(json_equal(json_object_get(doc, "recipe"), recipe));
	json_decref(doc);

	/* A record whose result exists here wins over the import. */
	assert_int_equal(sv_cache_record_import(x->c, K1, "chain-b", NULL, NULL, NULL, exists_yes,
	                                        NULL, &err),
	                 0);
	char *res = NULL;
	int fd = -1;
	bool gone = false;
	assert_int_equal(sv_cache_lookup(x->c, K1, NULL, NULL, &res, &fd, &gone, &err), 1);
	assert_string_equal(res, "chain-a");
	free(res);
	close(fd);
	/* One whose result is gone is replaced. */
	assert_int_equal(sv_cache_record_import(x->c, K1, "chain-b", NULL, NULL, NULL, exists_no,
	                                        NULL, &err),
	                 1);
	assert_int_equal(sv_cache_lookup(x->c, K1, NULL, NULL, &res, &fd, &gone, &err), 1);
	assert_string_equal(res, "chain-b");
	free(res);
	close(fd);

	/* The step had no history: the imported recipe became its latest; a later import
	 * does not overwrite a history that exists. */
	json_t *got = NULL;
	assert_int_equal(sv_cache_step_get(x->c, "s\nRUN a", &got, &err), 0);
	assert_true(got && json_equal(got, recipe));
	json_decref(got);
	json_t *other = json_pack("{s:i, s:s}", "v", 1, "def", K2);
	assert_int_equal(sv_cache_record_import(x->c, K2, "chain-c", "s\nRUN a", "RUN a", other,
	                                        NULL, NULL, &err),
	                 1);
	assert_int_equal(sv_cache_step_get(x->c, "s\nRUN a", &got, &err), 0);
	assert_true(got && json_equal(got, recipe));
	json_decref(got);
	json_decref(other);
	json_decref(recipe);

	/* No record, or a bad key. */
	assert_int_equal(sv_cache_record_get(x->c, K3, &doc, &err), 0);
	assert_null(doc);
	assert_int_equal(sv_cache_record_get(x->c, "sha256:nope", &doc, &err), -EINVAL);
	kiln_err_release(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_cachestore__lookup_marks_last_use, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_cachestore__record_round_trip, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_cachestore__corrupt_record_is_a_miss_and_removed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cachestore__gone_result_is_a_miss_and_kept,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cachestore__first_writer_of_a_key_wins, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_cachestore__racing_writers_agree_on_one_result,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cachestore__prune_skips_records_in_use, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_cachestore__step_recipes, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_cachestore__stale_temps_of_dead_writers_are_removed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cachestore__imported_records, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
