/* Unit tests for executor/user.c: passwd/group parsing and the USER resolution rules. */
#include "testlib.h"

#include "executor/ex.h"

#include <fcntl.h>
#include <sys/stat.h>

static const char passwd[] = "# comment line\n"
                             "root:x:0:0:root:/root:/bin/sh\n"
                             "\n"
                             "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                             "broken:x:notanumber:1:bad:/x:/bin/sh\n"
                             "+nisuser::::::\n"
                             "app:x:1000:1000:App User:/home/app:/bin/sh\r\n"
                             "nohome:x:1001:1001::\n"
                             "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";

static const char group[] = "root:x:0:\n"
                            "daemon:x:1:\n"
                            "app:x:1000:\n"
                            "staff:x:50:app, nohome\n"
                            "audio:x:29:nohome,app\n"
                            "video:x:44:application\n"
                            "nogroup:x:65534:\n";

static struct ex_user
resolve_ok(const char *spec)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct ex_user u = {0};
	int r = ex_user_resolve_text(spec, passwd, group, &u, &err);
	if (r < 0)
		fail_msg("resolve %s: %s", spec ? spec : "(null)", err.msg ? err.msg : "");
	return u;
}

static void
test_user__empty_spec_is_root(void **state)
{
	struct ex_user u = resolve_ok("");
	assert_int_equal(u.uid, 0);
	assert_int_equal(u.gid, 0);
	assert_string_equal(u.home, "/root");
	assert_int_equal(u.ngroups, 1);
	assert_int_equal(u.groups[0], 0);
	ex_user_release(&u);
	u = resolve_ok(NULL);
	assert_int_equal(u.uid, 0);
	ex_user_release(&u);
}

static void
test_user__name_gets_member_groups(void **state)
{
	struct ex_user u = resolve_ok("app");
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 1000);
	assert_string_equal(u.home, "/home/app");
	/* primary first, then staff (" app" with a space) and audio; not "application" */
	assert_int_equal(u.ngroups, 3);
	assert_int_equal(u.groups[0], 1000);
	assert_int_equal(u.groups[1], 50);
	assert_int_equal(u.groups[2], 29);
	ex_user_release(&u);
}

static void
test_user__numeric_uid_with_entry(void **state)
{
	struct ex_user u = resolve_ok("65534");
	assert_int_equal(u.uid, 65534);
	assert_int_equal(u.gid, 65534);
	assert_string_equal(u.home, "/nonexistent");
	ex_user_release(&u);
}

static void
test_user__numeric_uid_without_entry(void **state)
{
	struct ex_user u = resolve_ok("4242");
	assert_int_equal(u.uid, 4242);
	assert_int_equal(u.gid, 0);
	assert_string_equal(u.home, "/");
	assert_int_equal(u.ngroups, 1);
	ex_user_release(&u);
}

static void
test_user__explicit_group_by_name_and_id(void **state)
{
	struct ex_user u = resolve_ok("app:staff");
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 50);
	/* an explicit group replaces the member groups, as runc does */
	assert_int_equal(u.ngroups, 1);
	assert_int_equal(u.groups[0], 50);
	ex_user_release(&u);
	u = resolve_ok("1234:5678");
	assert_int_equal(u.uid, 1234);
	assert_int_equal(u.gid, 5678);
	ex_user_release(&u);
	u = resolve_ok("nobody:nogroup");
	assert_int_equal(u.uid, 65534);
	assert_int_equal(u.gid, 65534);
	ex_user_release(&u);
}

static void
test_user__missing_home_field_is_root_dir(void **state)
{
	struct ex_user u = resolve_ok("nohome");
	assert_int_equal(u.uid, 1001);
	assert_string_equal(u.home, "/");
	assert_int_equal(u.ngroups, 3); /* 1001, staff, audio */
	ex_user_release(&u);
}

static void
test_user__errors(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct ex_user u = {0};
	assert_int_equal(ex_user_resolve_text("ghost", passwd, group, &u, &err), -EINVAL);
	assert_err_contains(&err, "no user \"ghost\" in /etc/passwd");
	assert_int_equal(ex_user_resolve_text("app:ghosts", passwd, group, &u, &err), -EINVAL);
	assert_err_contains(&err, "no group \"ghosts\" in /etc/group");
	assert_int_equal(ex_user_resolve_text("app:", passwd, group, &u, &err), -EINVAL);
	assert_err_contains(&err, "empty group");
	assert_int_equal(ex_user_resolve_text("4294967295", passwd, group, &u, &err), -EINVAL);
	assert_err_contains(&err, "uid out of range");
	/* a malformed line is skipped, not matched */
	assert_int_equal(ex_user_resolve_text("broken", passwd, group, &u, &err), -EINVAL);
	assert_err_contains(&err, "no user \"broken\"");
	/* NIS lines are not users */
	assert_int_equal(ex_user_resolve_text("+nisuser", passwd, group, &u, &err), -EINVAL);
	kiln_err_release(&err);
	assert_null(u.home);
}

static void
test_user__no_files(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct ex_user u = {0};
	/* root works without /etc/passwd; numeric ids too; names do not */
	assert_int_equal(ex_user_resolve_text("root", NULL, NULL, &u, &err), 0);
	assert_int_equal(u.uid, 0);
	ex_user_release(&u);
	assert_int_equal(ex_user_resolve_text("12:34", NULL, NULL, &u, &err), 0);
	assert_int_equal(u.uid, 12);
	assert_int_equal(u.gid, 34);
	ex_user_release(&u);
	assert_int_equal(ex_user_resolve_text("app", NULL, NULL, &u, &err), -EINVAL);
	assert_err_contains(&err, "no user");
}

static void
test_user__resolve_at_reads_inside_root(void **state)
{
	char *dir = test_tmpdir_new();
	test_write_file(dir, "outside/passwd", "evil:x:0:0::/:/bin/sh\n");
	test_write_file(dir, "root/etc/group", "grp:x:77:evil\n");
	char *root = kiln_xasprintf("%s/root", dir);
	/* an absolute symlink must resolve inside the root, not to the host's file */
	char *link = kiln_xasprintf("%s/etc/passwd", root);
	char *target = kiln_xasprintf("%s/outside/passwd", dir);
	assert_int_equal(symlink(target, link), 0);
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(rootfd >= 0);

	struct kiln_err err = KILN_ERR_INIT;
	struct ex_user u = {0};
	assert_int_equal(ex_user_resolve_at(rootfd, "evil", &u, &err), -EINVAL);
	assert_err_contains(&err, "no user \"evil\"");

	unlink(link);
	test_write_file(root, "etc/passwd", "evil:x:5:6::/home/evil:/bin/sh\n");
	assert_int_equal(ex_user_resolve_at(rootfd, "evil", &u, &err), 0);
	assert_int_equal(u.uid, 5);
	assert_int_equal(u.gid, 6);
	assert_int_equal(u.ngroups, 2);
	assert_int_equal(u.groups[1], 77);
	ex_user_release(&u);

	close(rootfd);
	free(link);
	free(target);
	free(root);
	test_tmpdir_remove(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_user__empty_spec_is_root),
	        cmocka_unit_test(test_user__name_gets_member_groups),
	        cmocka_unit_test(test_user__numeric_uid_with_entry),
	        cmocka_unit_test(test_user__numeric_uid_without_entry),
	        cmocka_unit_test(test_user__explicit_group_by_name_and_id),
	        cmocka_unit_test(test_user__missing_home_field_is_root_dir),
	        cmocka_unit_test(test_user__errors),
	        cmocka_unit_test(test_user__no_files),
	        cmocka_unit_test(test_user__resolve_at_reads_inside_root),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
