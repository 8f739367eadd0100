/*
 * Unit tests for executor/sshfwd.c: the socket an ssh mount's step sees carries the
 * mount's owner and mode and forwards to the agent both ways, a half close included.
 * Setting a socket's owner needs root (CI is root); skips when run by hand without it.
 */
#include "testlib.h"

#include "executor/internal.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static int
setup(void **state)
{
	if (geteuid() != 0) {
		print_message("needs root to set a socket's owner\n");
		exit(77);
	}
	*state = test_tmpdir_new();
	return 0;
}

static int
teardown(void **state)
{
	test_tmpdir_remove(*state);
	return 0;
}

static int
unix_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	assert_true(strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static int
unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	assert_true(strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void
read_exactly(int fd, const char *want)
{
	char buf[64] = {0};
	size_t n = 0, len = strlen(want);
	while (n < len) {
		ssize_t r = read(fd, buf + n, len - n);
		assert_true(r > 0);
		n += (size_t)r;
	}
	assert_string_equal(buf, want);
}

static void
test_sshfwd__owner_mode_and_forwarding(void **state)
{
	const char *dir = *state;
	_cleanup_free_ char *agent_path = kiln_xasprintf("%s/agent.sock", dir);
	_cleanup_close_ int agent = unix_listen(agent_path);
	_cleanup_close_ int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);

	struct kiln_err err = KILN_ERR_INIT;
	struct ex_sshfwd *f = ex_sshfwd_new();
	assert_int_equal(ex_sshfwd_add(f, agent_path, dirfd, "a.sock", 1000, 1001, 0640, &err), 0);
	/* set-id bits are dropped, as BuildKit does */
	assert_int_equal(ex_sshfwd_add(f, agent_path, dirfd, "b.sock", 0, 0, 04666, &err), 0);
	assert_int_equal(ex_sshfwd_start(f, &err), 0);

	struct stat st;
	assert_int_equal(fstatat(dirfd, "a.sock", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1001);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(fstatat(dirfd, "b.sock", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_mode & 07777, 0666);
	assert_int_equal(stat(agent_path, &st), 0);
	assert_int_equal(st.st_uid, 0); /* the agent's socket is left as it was */

	_cleanup_free_ char *a_path = kiln_xasprintf("%s/a.sock", dir);
	_cleanup_close_ int client = unix_connect(a_path);
	_cleanup_close_ int served = accept4(agent, NULL, NULL, SOCK_CLOEXEC);
	assert_true(served >= 0);
	assert_int_equal(write(client, "request", 7), 7);
	read_exactly(served, "request");
	/* the client is done sending: the agent sees EOF and may still answer */
	assert_int_equal(shutdown(client, SHUT_WR), 0);
	char c;
	assert_int_equal(read(served, &c, 1), 0);
	assert_int_equal(write(served, "answer", 6), 6);
	read_exactly(client, "answer");
	close(served);
	served = -1;
	assert_int_equal(read(client, &c, 1), 0);

	ex_sshfwd_free(f);
}

static void
test_sshfwd__agent_gone(void **state)
{
	const char *dir = *state;
	_cleanup_close_ int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct kiln_err err = KILN_ERR_INIT;
	struct ex_sshfwd *f = ex_sshfwd_new();
	_cleanup_free_ char *missing = kiln_xasprintf("%s/no-agent", dir);
	assert_int_equal(ex_sshfwd_add(f, missing, dirfd, "a.sock", 0, 0, 0600, &err), -ENOENT);
	assert_err_contains(&err, "no-agent");
	test_write_file(dir, "plain", "not a socket");
	_cleanup_free_ char *plain = kiln_xasprintf("%s/plain", dir);
	assert_int_equal(ex_sshfwd_add(f, plain, dirfd, "a.sock", 0, 0, 0600, &err), -ENOTSOCK);
	assert_err_contains(&err, "plain");

	/* an agent that stops listening after the run started: the client sees EOF */
	_cleanup_free_ char *agent_path = kiln_xasprintf("%s/agent.sock", dir);
	int agent = unix_listen(agent_path);
	assert_int_equal(ex_sshfwd_add(f, agent_path, dirfd, "a.sock", 0, 0, 0600, &err), 0);
	assert_int_equal(ex_sshfwd_start(f, &err), 0);
	close(agent);
	_cleanup_free_ char *a_path = kiln_xasprintf("%s/a.sock", dir);
	_cleanup_close_ int client = unix_connect(a_path);
	char c;
	assert_int_equal(read(client, &c, 1), 0);
	ex_sshfwd_free(f);
	ex_sshfwd_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_sshfwd__owner_mode_and_forwarding, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_sshfwd__agent_gone, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
