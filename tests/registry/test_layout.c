/* Unit tests for registry/layout.c: OCI image layout directories. */
#include "common.h"

#include <fcntl.h>

static void
test_layout__init_add_and_read_back(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	char d[KILN_DIGEST_HEX_LEN + 1];
	fixture_import(f, d);
	char *dir = kiln_xasprintf("%s/layout", f->dir);
	assert_int_equal(reg_layout_init(dir, &err), 0);
	struct reg_index idx = {0};
	assert_int_equal(reg_layout_read_index(dir, &idx, &err), 0);
	assert_int_equal(idx.n_manifests, 0);
	reg_index_release(&idx);

	assert_int_equal(reg_layout_add_image(dir, f->st, d, "docker.io/library/app:1", &err), 0);
	assert_int_equal(reg_layout_add_image(dir, f->st, d, "docker.io/library/app:2", &err), 0);
	/* The same name again replaces its entry. */
	assert_int_equal(reg_layout_add_image(dir, f->st, d, "docker.io/library/app:1", &err), 0);
	assert_int_equal(reg_layout_read_index(dir, &idx, &err), 0);
	assert_int_equal(idx.n_manifests, 2);
	assert_string_equal(idx.manifests[0].digest, d);
	assert_string_equal(idx.manifests[0].media_type, REG_MT_OCI_MANIFEST);
	assert_int_equal(idx.manifests[0].size, reg_blob_size(f->st, d, &err));
	assert_string_equal(json_string_value(json_object_get(idx.manifests[0].annotations,
	                                                      "org.opencontainers.image.ref.name")),
	                    "2");
	assert_string_equal(json_string_value(json_object_get(idx.manifests[1].annotations,
	                                                      "io.containerd.image.name")),
	                    "docker.io/library/app:1");
	reg_index_release(&idx);

	/* Every blob is there under its digest, and the oci-layout marker. */
	struct reg_image img = REG_IMAGE_INIT;
	assert_int_equal(reg_image_open(f->st, d, NULL, &img, &err), 0);
	const char *blobs[] = {d, img.manifest.config.digest, img.manifest.layers[0].digest};
	for (size_t i = 0; i < 3; i++) {
		char *p = kiln_xasprintf("%s/blobs/sha256/%s", dir, blobs[i] + 7);
		struct kiln_buf b = KILN_BUF_INIT;
		assert_int_equal(kiln_buf_read_file(&b, p, &err), 0);
		struct kiln_digest dd;
		char got[KILN_DIGEST_HEX_LEN + 1];
		kiln_sha256_buf(b.buf, b.len, &dd);
		kiln_digest_format(&dd, got);
		assert_string_equal(got, blobs[i]);
		kiln_buf_release(&b);
		free(p);
	}
	reg_image_release(&img);
	char *p = kiln_xasprintf("%s/oci-layout", dir);
	struct kiln_buf b = KILN_BUF_INIT;
	assert_int_equal(kiln_buf_read_file(&b, p, &err), 0);
	assert_string_equal(b.buf, "{\"imageLayoutVersion\":\"1.0.0\"}");
	kiln_buf_release(&b);
	free(p);
	free(dir);
}

static void
test_layout__missing_blob_is_an_error(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	char *dir = kiln_xasprintf("%s/layout", f->dir);
	assert_int_equal(
	        reg_layout_add_image(
	                dir, f->st,
	                "sha256:0123456789012345678901234567890123456789012345678901234567890123",
	                NULL, &err),
	        -ENOENT);
	assert_err_contains(&err, "blob sha256:0123");
	assert_int_equal(reg_layout_put_blob(dir, f->st, "sha256:nothex", &err), -EINVAL);
	assert_err_contains(&err, "invalid digest");
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_layout__init_add_and_read_back, fixture_setup,
	                                        fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_layout__missing_blob_is_an_error,
	                                        fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
