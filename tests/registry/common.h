/* Helpers shared by the registry tests: a store in a fresh directory, a small rootfs. */
#ifndef KILN_TEST_REGISTRY_COMMON_H
#define KILN_TEST_REGISTRY_COMMON_H

#include "testlib.h"
#include "registry/reg.h"

#include <sys/stat.h>

struct fixture {
	char *dir;
	char *rootfs;
	struct reg_store *st;
};

static inline int
fixture_setup(void **state)
{
	struct fixture *f = kiln_xcalloc(1, sizeof(*f));
	struct kiln_err err = KILN_ERR_INIT;
	f->dir = test_tmpdir_new();
	char *root = kiln_xasprintf("%s/store", f->dir);
	assert_int_equal(reg_store_open(root, &f->st, &err), 0);
	free(root);
	/* A tiny root filesystem: files, a symlink, an empty directory, a hard link. */
	test_write_file(f->dir, "rootfs/bin/tool", "#!/bin/sh\necho hi\n");
	test_write_file(f->dir, "rootfs/etc/hostname", "kiln\n");
	f->rootfs = kiln_xasprintf("%s/rootfs", f->dir);
	char *p = kiln_xasprintf("%s/bin/sh", f->rootfs);
	assert_int_equal(symlink("tool", p), 0);
	free(p);
	p = kiln_xasprintf("%s/bin/tool", f->rootfs);
	assert_int_equal(chmod(p, 0755), 0);
	char *q = kiln_xasprintf("%s/bin/tool2", f->rootfs);
	assert_int_equal(link(p, q), 0);
	free(p);
	free(q);
	p = kiln_xasprintf("%s/tmp", f->rootfs);
	assert_int_equal(mkdir(p, 01777), 0);
	assert_int_equal(chmod(p, 01777), 0);
	free(p);
	*state = f;
	return 0;
}

static inline int
fixture_teardown(void **state)
{
	struct fixture *f = *state;
	reg_store_free(f->st);
	free(f->rootfs);
	test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

/* Import the fixture's rootfs with fixed times, so digests are reproducible. */
static inline void
fixture_import(struct fixture *f, char out[KILN_DIGEST_HEX_LEN + 1])
{
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_import_opts o = REG_IMPORT_OPTS_INIT;
	o.created = 1700000000;
	o.clamp_mtime = 1700000000;
	if (reg_import_rootfs(f->st, f->rootfs, &o, out, &err) < 0)
		fail_msg("import: %s", kiln_err_format(&err));
}

#endif
