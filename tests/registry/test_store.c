/* Unit tests for registry/store.c: atomic ingest, stale temp files, the names index under
 * concurrent writers. */
#include "testlib.h"
#include "registry/reg.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

struct fixture {
	char *dir;
	struct reg_store *st;
};

static int
setup(void **state)
{
	struct fixture *f = kiln_xcalloc(1, sizeof(*f));
	struct kiln_err err = KILN_ERR_INIT;
	f->dir = test_tmpdir_new();
	assert_int_equal(reg_store_open(f->dir, &f->st, &err), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	reg_store_free(f->st);
	test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static size_t
count_entries(const char *dir, const char *sub)
{
	char *p = kiln_xasprintf("%s/%s", dir, sub);
	DIR *d = opendir(p);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	free(p);
	return n;
}

static void
digest_of(const char *s, char out[KILN_DIGEST_HEX_LEN + 1])
{
	struct kiln_digest d;
	kiln_sha256_buf(s, strlen(s), &d);
	kiln_digest_format(&d, out);
}

static void
test_store__put_and_read_back(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	char want[KILN_DIGEST_HEX_LEN + 1], got[KILN_DIGEST_HEX_LEN + 1];
	digest_of("hello", want);
	assert_int_equal(reg_blob_put(f->st, "hello", 5, want, got, &err), 0);
	assert_string_equal(got, want);
	assert_true(reg_blob_exists(f->st, want));
	assert_int_equal(reg_blob_size(f->st, want, &err), 5);
	struct kiln_buf b = KILN_BUF_INIT;
	assert_int_equal(reg_blob_read(f->st, want, 100, &b, &err), 0);
	assert_string_equal(b.buf, "hello");
	kiln_buf_reset(&b);
	assert_int_equal(reg_blob_read(f->st, want, 4, &b, &err), -EFBIG);
	assert_err_contains(&err, "limit");
	kiln_buf_release(&b);
	/* Putting it again is a no-op that still checks the content. */
	assert_int_equal(reg_blob_put(f->st, "hello", 5, want, NULL, &err), 0);
	assert_int_equal(reg_blob_put(f->st, "hellO", 5, want, NULL, &err), -EINVAL);
	assert_err_contains(&err, "digest mismatch");
	assert_int_equal(count_entries(f->dir, "content/tmp"), 0);
}

/* A second ingest of stored bytes leaves the stored file as it is (same inode: no
 * rename over it) and no temp file. */
static void
test_store__ingest_of_a_stored_blob_keeps_the_stored_file(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	char want[KILN_DIGEST_HEX_LEN + 1], got[KILN_DIGEST_HEX_LEN + 1] = "";
	digest_of("layer bytes", want);
	assert_int_equal(reg_blob_put(f->st, "layer bytes", 11, NULL, NULL, &err), 0);
	char *p = kiln_xasprintf("%s/content/blobs/sha256/%s", f->dir, want + 7);
	struct stat before, after;
	assert_int_equal(stat(p, &before), 0);
	struct reg_ingest *in;
	assert_int_equal(reg_ingest_begin(f->st, NULL, -1, &in, &err), 0);
	assert_int_equal(reg_ingest_write(in, "layer ", 6, &err), 0);
	assert_int_equal(reg_ingest_write(in, "bytes", 5, &err), 0);
	assert_int_equal(reg_ingest_commit(in, got, &err), 0);
	assert_string_equal(got, want);
	assert_int_equal(stat(p, &after), 0);
	assert_int_equal(after.st_ino, before.st_ino);
	assert_int_equal(count_entries(f->dir, "content/tmp"), 0);
	struct kiln_buf b = KILN_BUF_INIT;
	assert_int_equal(reg_blob_read(f->st, want, 100, &b, &err), 0);
	assert_memory_equal(b.buf, "layer bytes", 11);
	kiln_buf_release(&b);
	free(p);
}

static void
test_store__wrong_digest_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	char want[KILN_DIGEST_HEX_LEN + 1];
	digest_of("the real content", want);
	struct reg_ingest *in;
	assert_int_equal(reg_ingest_begin(f->st, want, -1, &in, &err), 0);
	assert_int_equal(count_entries(f->dir, "content/tmp"), 1);
	assert_int_equal(reg_ingest_write(in, "forged content!!", 16, &err), 0);
	assert_int_equal(reg_ingest_commit(in, NULL, &err), -EINVAL);
	assert_err_contains(&err, "digest mismatch");
	assert_false(reg_blob_exists(f->st, want));
	assert_int_equal(count_entries(f->dir, "content/blobs/sha256"), 0);
	assert_int_equal(count_entries(f->dir, "content/tmp"), 0);
}

static void
test_store__wrong_size_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	char want[KILN_DIGEST_HEX_LEN + 1];
	digest_of("abcdef", want);
	struct reg_ingest *in;
	/* Too long: refused while streaming. */
	assert_int_equal(reg_ingest_begin(f->st, want, 3, &in, &err), 0);
	assert_int_equal(reg_ingest_write(in, "abcdef", 6, &err), -EINVAL);
	assert_err_contains(&err, "size mismatch");
	reg_ingest_abort(in);
	/* Too short: refused at commit, even though the digest would match. */
	assert_int_equal(reg_ingest_begin(f->st, want, 10, &in, &err), 0);
	assert_int_equal(reg_ingest_write(in, "abcdef", 6, &err), 0);
	assert_int_equal(reg_ingest_commit(in, NULL, &err), -EINVAL);
	assert_err_contains(&err, "size mismatch");
	assert_false(reg_blob_exists(f->st, want));
	assert_int_equal(count_entries(f->dir, "content/tmp"), 0);
	assert_int_equal(count_entries(f->dir, "content/blobs/sha256"), 0);
}

static void
test_store__invalid_digest_never_becomes_a_path(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_ingest *in = NULL;
	assert_int_equal(reg_ingest_begin(f->st, "sha256:../../etc/passwd", -1, &in, &err),
	                 -EINVAL);
	assert_err_contains(&err, "invalid digest");
	assert_null(in);
	assert_false(reg_blob_exists(f->st, "sha256:../x"));
	assert_int_equal(reg_blob_open(f->st, "../../etc/passwd", &err), -EINVAL);
	kiln_err_release(&err);
	assert_int_equal(reg_name_set(f->st, "docker.io/library/x:1", "sha256:abc", &err), -EINVAL);
	assert_err_contains(&err, "invalid digest");
}

static void
test_store__stale_temp_removed_live_one_kept(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	/* A temp file nobody holds a lock on: its writer died. */
	test_write_file(f->dir, "content/tmp/ingest-dead01", "half a blob");
	/* A live ingest of this process holds its lock. */
	struct reg_ingest *in;
	assert_int_equal(reg_ingest_begin(f->st, NULL, -1, &in, &err), 0);
	assert_int_equal(reg_ingest_write(in, "partial", 7, &err), 0);
	assert_int_equal(count_entries(f->dir, "content/tmp"), 2);
	/* flock locks belong to the open file description, so a second open in this process
	 * cannot take the live file's lock either. */
	struct reg_store *other;
	assert_int_equal(reg_store_open(f->dir, &other, &err), 0);
	assert_int_equal(count_entries(f->dir, "content/tmp"), 1);
	char d[KILN_DIGEST_HEX_LEN + 1];
	assert_int_equal(reg_ingest_commit(in, d, &err), 0);
	assert_true(reg_blob_exists(other, d));
	assert_int_equal(count_entries(f->dir, "content/tmp"), 0);
	reg_store_free(other);
}

static void
test_store__names_set_get_remove_list(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	char a[KILN_DIGEST_HEX_LEN + 1], b[KILN_DIGEST_HEX_LEN + 1], got[KILN_DIGEST_HEX_LEN + 1];
	digest_of("a", a);
	digest_of("b", b);
	assert_int_equal(reg_name_get(f->st, "docker.io/library/x:1", got, &err), -ENOENT);
	assert_err_contains(&err, "no image named docker.io/library/x:1");
	assert_int_equal(reg_name_set(f->st, "docker.io/library/x:1", a, &err), 0);
	assert_int_equal(reg_name_set(f->st, "docker.io/library/a:1", b, &err), 0);
	assert_int_equal(reg_name_set(f->st, "docker.io/library/x:1", b, &err), 0);
	assert_int_equal(reg_name_get(f->st, "docker.io/library/x:1", got, &err), 0);
	assert_string_equal(got, b);
	struct reg_name *v;
	size_t n;
	assert_int_equal(reg_name_list(f->st, &v, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].name, "docker.io/library/a:1");
	assert_string_equal(v[1].name, "docker.io/library/x:1");
	assert_true(v[1].updated > 0);
	reg_names_free(v, n);
	assert_int_equal(reg_name_remove(f->st, "docker.io/library/x:1", &err), 0);
	assert_int_equal(reg_name_remove(f->st, "docker.io/library/x:1", &err), -ENOENT);
	kiln_err_release(&err);
	assert_int_equal(reg_name_get(f->st, "docker.io/library/a:1", got, &err), 0);
	/* No temp file of the index is left behind. */
	assert_int_equal(count_entries(f->dir, "content"), 4); /* blobs tmp names.json names.lock */
}

static void
test_store__stale_index_temp_and_nested_root(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	/* A names index temp file left by a writer killed before its rename. */
	test_write_file(f->dir, "content/names.json.tmp-99999", "{\"trunc");
	char d[KILN_DIGEST_HEX_LEN + 1];
	digest_of("x", d);
	assert_int_equal(reg_name_set(f->st, "docker.io/library/x:1", d, &err), 0);
	char *p = kiln_xasprintf("%s/content/names.json.tmp-99999", f->dir);
	assert_int_equal(access(p, F_OK), -1);
	free(p);
	/* A root whose parents do not exist yet. */
	struct reg_store *st;
	p = kiln_xasprintf("%s/a/b/c", f->dir);
	assert_int_equal(reg_store_open(p, &st, &err), 0);
	assert_string_equal(reg_store_root(st), p);
	reg_store_free(st);
	free(p);
}

#define PER_CHILD 40

static void
test_store__concurrent_name_updates_from_two_processes(void **state)
{
	struct fixture *f = *state;
	char d[KILN_DIGEST_HEX_LEN + 1];
	digest_of("shared", d);
	pid_t pids[2];
	for (int c = 0; c < 2; c++) {
		pids[c] = fork();
		assert_true(pids[c] >= 0);
		if (pids[c] == 0) {
			/* Each child opens its own store handle, as a separate kiln would. */
			struct kiln_err err = KILN_ERR_INIT;
			struct reg_store *st;
			if (reg_store_open(f->dir, &st, &err) < 0)
				_exit(1);
			for (int i = 0; i < PER_CHILD; i++) {
				char name[64];
				snprintf(name, sizeof(name), "docker.io/library/p%d:%d", c, i);
				if (reg_name_set(st, name, d, &err) < 0)
					_exit(2);
			}
			reg_store_free(st);
			_exit(0);
		}
	}
	for (int c = 0; c < 2; c++) {
		int status;
		assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_name *v;
	size_t n;
	assert_int_equal(reg_name_list(f->st, &v, &n, &err), 0);
	/* No update was lost to a concurrent read-modify-write. */
	assert_int_equal(n, 2 * PER_CHILD);
	reg_names_free(v, n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_store__put_and_read_back, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_store__ingest_of_a_stored_blob_keeps_the_stored_file, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store__wrong_digest_leaves_nothing, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_store__wrong_size_leaves_nothing, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_store__invalid_digest_never_becomes_a_path,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store__stale_temp_removed_live_one_kept, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_store__names_set_get_remove_list, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_store__concurrent_name_updates_from_two_processes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store__stale_index_temp_and_nested_root, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
