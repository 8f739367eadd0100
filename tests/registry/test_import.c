/* Unit tests for registry/import.c: a deterministic single-layer image from a rootfs. */
#include "common.h"

#include <archive.h>
#include <archive_entry.h>
#include <utime.h>

static void
test_import__layer_and_config(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	char d[KILN_DIGEST_HEX_LEN + 1];
	fixture_import(f, d);
	struct reg_image img = REG_IMAGE_INIT;
	assert_int_equal(reg_image_open(f->st, d, NULL, &img, &err), 0);
	assert_int_equal(img.manifest.kind, REG_KIND_OCI_MANIFEST);
	assert_int_equal(img.manifest.n_layers, 1);
	assert_string_equal(img.manifest.layers[0].media_type, REG_MT_OCI_LAYER_GZIP);
	assert_int_equal(img.manifest.layers[0].size,
	                 reg_blob_size(f->st, img.manifest.layers[0].digest, &err));
	assert_string_equal(img.manifest.config.media_type, REG_MT_OCI_CONFIG);
	assert_string_equal(img.config.os, "linux");
	assert_string_equal(img.config.architecture, "amd64");
	assert_string_equal(img.config.created, "2023-11-14T22:13:20Z");
	assert_int_equal(img.config.diff_ids.n, 1);
	assert_int_equal(json_array_size(img.config.history), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(img.config.history, 0),
	                                                      "created_by")),
	                    "kiln import");

	/* Read the layer back: sorted entries, modes, links; the uncompressed bytes hash to
	 * the diff_id. */
	int fd = reg_blob_open(f->st, img.manifest.layers[0].digest, &err);
	assert_true(fd >= 0);
	struct archive *a = archive_read_new();
	archive_read_support_filter_gzip(a);
	archive_read_support_format_raw(a);
	assert_int_equal(archive_read_open_fd(a, fd, 4096), ARCHIVE_OK);
	struct archive_entry *e;
	assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
	struct kiln_buf tar = KILN_BUF_INIT;
	char buf[4096];
	la_ssize_t n;
	while ((n = archive_read_data(a, buf, sizeof(buf))) > 0)
		kiln_buf_add(&tar, buf, (size_t)n);
	archive_read_free(a);
	close(fd);
	struct kiln_digest dd;
	char diff[KILN_DIGEST_HEX_LEN + 1];
	kiln_sha256_buf(tar.buf, tar.len, &dd);
	kiln_digest_format(&dd, diff);
	assert_string_equal(diff, img.config.diff_ids.v[0]);

	a = archive_read_new();
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_memory(a, tar.buf, tar.len), ARCHIVE_OK);
	static const char *const want[] = {"bin/", "bin/sh",       "bin/tool", "bin/tool2",
	                                   "etc/", "etc/hostname", "tmp/"};
	size_t i = 0;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		assert_true(i < KILN_ARRAY_SIZE(want));
		const char *p = archive_entry_pathname(e);
		size_t pl = strlen(p), wl = strlen(want[i]);
		/* directories may or may not carry their trailing slash */
		assert_true(strncmp(p, want[i], pl) == 0 && (pl == wl || pl + 1 == wl));
		assert_int_equal(archive_entry_uid(e), getuid());
		assert_true(archive_entry_mtime(e) <= 1700000000);
		if (kiln_str_eq(want[i], "bin/sh"))
			assert_string_equal(archive_entry_symlink(e), "tool");
		if (kiln_str_eq(want[i], "bin/tool"))
			assert_int_equal(archive_entry_perm(e), 0755);
		if (kiln_str_eq(want[i], "bin/tool2"))
			assert_string_equal(archive_entry_hardlink(e), "bin/tool");
		if (kiln_str_eq(want[i], "tmp/"))
			assert_int_equal(archive_entry_perm(e), 01777);
		i++;
	}
	assert_int_equal(i, KILN_ARRAY_SIZE(want));
	archive_read_free(a);
	kiln_buf_release(&tar);
	reg_image_release(&img);
}

static void
test_import__deterministic(void **state)
{
	struct fixture *f = *state;
	char a[KILN_DIGEST_HEX_LEN + 1], b[KILN_DIGEST_HEX_LEN + 1];
	fixture_import(f, a);
	/* Touching a file to a newer time changes nothing once mtimes are clamped. */
	char *p = kiln_xasprintf("%s/etc/hostname", f->rootfs);
	struct utimbuf ut = {.actime = 1800000000, .modtime = 1800000000};
	assert_int_equal(utime(p, &ut), 0);
	free(p);
	fixture_import(f, b);
	assert_string_equal(a, b);
	/* Without clamping, the new mtime shows. */
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_import_opts o = REG_IMPORT_OPTS_INIT;
	o.created = 1700000000;
	assert_int_equal(reg_import_rootfs(f->st, f->rootfs, &o, b, &err), 0);
	assert_string_not_equal(a, b);
}

static void
test_import__from_tar_and_errors(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	/* Write the rootfs as a gzip tar, then import that. */
	char *tarpath = kiln_xasprintf("%s/rootfs.tar.gz", f->dir);
	struct archive *w = archive_write_new();
	archive_write_set_format_pax_restricted(w);
	archive_write_add_filter_gzip(w);
	assert_int_equal(archive_write_open_filename(w, tarpath), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "hello.txt");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0600);
	archive_entry_set_size(e, 3);
	archive_entry_set_mtime(e, 1900000000, 0);
	assert_int_equal(archive_write_header(w, e), ARCHIVE_OK);
	assert_int_equal(archive_write_data(w, "hi\n", 3), 3);
	archive_entry_free(e);
	archive_write_close(w);
	archive_write_free(w);
	struct reg_import_opts o = REG_IMPORT_OPTS_INIT;
	o.clamp_mtime = 1700000000;
	o.created = 1700000000;
	char d[KILN_DIGEST_HEX_LEN + 1];
	assert_int_equal(reg_import_rootfs(f->st, tarpath, &o, d, &err), 0);
	struct reg_image img = REG_IMAGE_INIT;
	assert_int_equal(reg_image_open(f->st, d, NULL, &img, &err), 0);
	assert_int_equal(img.manifest.n_layers, 1);
	reg_image_release(&img);
	free(tarpath);

	char *missing = kiln_xasprintf("%s/nope", f->dir);
	assert_int_equal(reg_import_rootfs(f->st, missing, &o, d, &err), -ENOENT);
	assert_err_contains(&err, "import");
	free(missing);
	char *notar = kiln_xasprintf("%s/rootfs/etc/hostname", f->dir);
	assert_true(reg_import_rootfs(f->st, notar, &o, d, &err) < 0);
	kiln_err_release(&err);
	free(notar);
	/* Failed imports leave no temp file. */
	char *tmp = kiln_xasprintf("%s/store/content/tmp", f->dir);
	assert_int_equal(rmdir(tmp), 0);
	free(tmp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_import__layer_and_config, fixture_setup,
	                                        fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_import__deterministic, fixture_setup,
	                                        fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_import__from_tar_and_errors, fixture_setup,
	                                        fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
