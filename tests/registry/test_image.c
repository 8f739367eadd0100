/* Unit tests for registry/image.c: from a name, digest or image ID to manifest and config,
 * through an index to the right platform. */
#include "common.h"

/* Put an index over the imported manifest and a foreign-platform entry into the store. */
static void
make_index(struct fixture *f, const char *manifest, char out[KILN_DIGEST_HEX_LEN + 1])
{
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_index idx = {.kind = REG_KIND_OCI_INDEX, .n_manifests = 2};
	idx.manifests = kiln_xcalloc(2, sizeof(*idx.manifests));
	const char *arch[] = {"arm64", "amd64"};
	for (size_t i = 0; i < 2; i++) {
		struct reg_descriptor *d = &idx.manifests[i];
		d->media_type = kiln_xstrdup(REG_MT_OCI_MANIFEST);
		memcpy(d->digest,
		       i ? manifest
		         : "sha256:"
		           "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
		       KILN_DIGEST_HEX_LEN + 1);
		d->size = reg_blob_size(f->st, manifest, &err);
		d->has_platform = true;
		d->platform.os = kiln_xstrdup("linux");
		d->platform.architecture = kiln_xstrdup(arch[i]);
	}
	struct kiln_buf b = KILN_BUF_INIT;
	assert_int_equal(reg_index_write(&idx, &b, &err), 0);
	assert_int_equal(reg_store_put_manifest(f->st, b.buf, b.len, out, &err), 0);
	kiln_buf_release(&b);
	reg_index_release(&idx);
}

static void
test_image__open_by_name_digest_and_id(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	char d[KILN_DIGEST_HEX_LEN + 1];
	fixture_import(f, d);
	assert_int_equal(reg_name_set(f->st, "docker.io/library/base:1", d, &err), 0);
	assert_int_equal(reg_name_set(f->st, "docker.io/library/base:latest", d, &err), 0);
	const char *refs[] = {"base:1", "docker.io/library/base:1", "base", d, d + 7};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(refs); i++) {
		struct reg_image img = REG_IMAGE_INIT;
		if (reg_image_open(f->st, refs[i], NULL, &img, &err) < 0)
			fail_msg("%s: %s", refs[i], kiln_err_format(&err));
		assert_string_equal(img.top_digest, d);
		assert_string_equal(img.manifest_digest, d);
		assert_int_equal(img.config.diff_ids.n, 1);
		assert_true(img.config_raw.len > 0);
		reg_image_release(&img);
	}
	struct reg_image img = REG_IMAGE_INIT;
	assert_int_equal(reg_image_open(f->st, "base:2", NULL, &img, &err), -ENOENT);
	assert_err_contains(&err, "no image named docker.io/library/base:2");
	assert_int_equal(reg_image_open(f->st, "Base", NULL, &img, &err), -EINVAL);
	assert_err_contains(&err, "must be lowercase");
}

static void
test_image__index_picks_platform(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	char d[KILN_DIGEST_HEX_LEN + 1], top[KILN_DIGEST_HEX_LEN + 1];
	fixture_import(f, d);
	make_index(f, d, top);
	assert_int_equal(reg_name_set(f->st, "localhost:5000/multi:1", top, &err), 0);
	struct reg_image img = REG_IMAGE_INIT;
	assert_int_equal(reg_image_open(f->st, "localhost:5000/multi:1", NULL, &img, &err), 0);
	assert_string_equal(img.top_digest, top);
	assert_string_equal(img.manifest_digest, d);
	assert_string_equal(img.name, "localhost:5000/multi:1");
	reg_image_release(&img);
	/* The arm64 manifest is not in the store. */
	struct reg_platform p = REG_PLATFORM_INIT;
	assert_int_equal(reg_platform_parse("linux/arm64", &p, &err), 0);
	assert_int_equal(reg_image_open(f->st, top, &p, &img, &err), -ENOENT);
	assert_err_contains(&err, "blob sha256:eeee");
	reg_platform_release(&p);
	assert_int_equal(reg_platform_parse("linux/ppc64le", &p, &err), 0);
	assert_int_equal(reg_image_open(f->st, top, &p, &img, &err), -ENOENT);
	assert_err_contains(&err, "no manifest for platform linux/ppc64le");
	reg_platform_release(&p);
}

static void
test_image__put_manifest_rejects_non_manifests(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	char d[KILN_DIGEST_HEX_LEN + 1];
	const char *doc = "{\"schemaVersion\":2,\"layers\":[],\"manifests\":[]}";
	assert_int_equal(reg_store_put_manifest(f->st, doc, strlen(doc), d, &err), -EINVAL);
	assert_err_contains(&err, "ambiguous");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_image__open_by_name_digest_and_id,
	                                        fixture_setup, fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_image__index_picks_platform, fixture_setup,
	                                        fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_image__put_manifest_rejects_non_manifests,
	                                        fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
