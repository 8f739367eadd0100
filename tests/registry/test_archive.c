/* Unit tests for registry/archive.c: save as OCI or docker archive, load back (tar and
 * directory), and refuse archives whose content is not what they claim. */
#include "common.h"

#include <archive.h>
#include <archive_entry.h>

static struct reg_store *
second_store(struct fixture *f, const char *name)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_store *st;
	char *p = kiln_xasprintf("%s/%s", f->dir, name);
	assert_int_equal(reg_store_open(p, &st, &err), 0);
	free(p);
	return st;
}

static void
load_one(struct reg_store *st, const char *path, const char *want_name,
         char digest[KILN_DIGEST_HEX_LEN + 1])
{
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_loaded *v;
	size_t n;
	if (reg_archive_load(st, path, &v, &n, &err) < 0)
		fail_msg("load %s: %s", path, kiln_err_format(&err));
	assert_int_equal(n, 1);
	if (want_name)
		assert_string_equal(v[0].name, want_name);
	else
		assert_null(v[0].name);
	memcpy(digest, v[0].digest, KILN_DIGEST_HEX_LEN + 1);
	reg_loaded_free(v, n);
}

static void
test_archive__oci_round_trip(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	char d[KILN_DIGEST_HEX_LEN + 1], got[KILN_DIGEST_HEX_LEN + 1];
	fixture_import(f, d);
	assert_int_equal(reg_name_set(f->st, "docker.io/library/app:1", d, &err), 0);
	char *tar = kiln_xasprintf("%s/app.tar", f->dir);
	assert_int_equal(reg_archive_save(f->st, "app:1", REG_ARCHIVE_OCI, tar, &err), 0);
	struct reg_store *st2 = second_store(f, "store2");
	load_one(st2, tar, "docker.io/library/app:1", got);
	assert_string_equal(got, d);
	struct reg_image a = REG_IMAGE_INIT, b = REG_IMAGE_INIT;
	assert_int_equal(reg_image_open(f->st, d, NULL, &a, &err), 0);
	assert_int_equal(reg_image_open(st2, d, NULL, &b, &err), 0);
	assert_string_equal(a.config_raw.buf, b.config_raw.buf);
	assert_string_equal(a.manifest.layers[0].digest, b.manifest.layers[0].digest);
	reg_image_release(&a);
	reg_image_release(&b);
	reg_store_free(st2);

	/* The same image written as a layout directory loads too. */
	char *dir = kiln_xasprintf("%s/layout", f->dir);
	assert_int_equal(reg_layout_add_image(dir, f->st, d, NULL, &err), 0);
	struct reg_store *st3 = second_store(f, "store3");
	load_one(st3, dir, NULL, got);
	assert_string_equal(got, d);
	reg_store_free(st3);
	free(dir);
	free(tar);
}

static void
test_archive__docker_round_trip(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	char d[KILN_DIGEST_HEX_LEN + 1], got[KILN_DIGEST_HEX_LEN + 1];
	fixture_import(f, d);
	assert_int_equal(reg_name_set(f->st, "localhost:5000/team/app:v2", d, &err), 0);
	char *tar = kiln_xasprintf("%s/app-docker.tar", f->dir);
	assert_int_equal(reg_archive_save(f->st, "localhost:5000/team/app:v2", REG_ARCHIVE_DOCKER,
	                                  tar, &err),
	                 0);
	/* manifest.json names the image the familiar way, as docker does. */
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_filename(a, tar, 4096), ARCHIVE_OK);
	struct archive_entry *e;
	bool seen = false;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		if (!kiln_str_eq(archive_entry_pathname(e), "manifest.json"))
			continue;
		char buf[1024] = {0};
		assert_true(archive_read_data(a, buf, sizeof(buf) - 1) > 0);
		assert_non_null(strstr(buf, "\"RepoTags\":[\"localhost:5000/team/app:v2\"]"));
		seen = true;
	}
	archive_read_free(a);
	assert_true(seen);

	struct reg_store *st2 = second_store(f, "store2");
	load_one(st2, tar, "localhost:5000/team/app:v2", got);
	/* Layers travel uncompressed in a docker archive: the config is the same, the layer
	 * is now its own diff_id. */
	struct reg_image orig = REG_IMAGE_INIT, back = REG_IMAGE_INIT;
	assert_int_equal(reg_image_open(f->st, d, NULL, &orig, &err), 0);
	assert_int_equal(reg_image_open(st2, got, NULL, &back, &err), 0);
	assert_string_equal(orig.manifest.config.digest, back.manifest.config.digest);
	assert_string_equal(back.manifest.layers[0].digest, orig.config.diff_ids.v[0]);
	assert_string_equal(back.manifest.layers[0].media_type, REG_MT_OCI_LAYER);
	reg_image_release(&orig);
	reg_image_release(&back);
	reg_store_free(st2);
	free(tar);
}

static void
write_entry(struct archive *w, const char *name, const char *data)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)strlen(data));
	assert_int_equal(archive_write_header(w, e), ARCHIVE_OK);
	assert_int_equal(archive_write_data(w, data, strlen(data)), (la_ssize_t)strlen(data));
	archive_entry_free(e);
}

static void
test_archive__tampered_blob_rejected(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	char *tar = kiln_xasprintf("%s/bad.tar", f->dir);
	struct archive *w = archive_write_new();
	archive_write_set_format_pax_restricted(w);
	assert_int_equal(archive_write_open_filename(w, tar), ARCHIVE_OK);
	write_entry(w, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	write_entry(w, "index.json", "{\"schemaVersion\":2,\"manifests\":[]}");
	/* A blob whose name is not the digest of its content. */
	write_entry(w,
	            "blobs/sha256/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	            "not what the name says");
	archive_write_close(w);
	archive_write_free(w);
	struct reg_loaded *v = NULL;
	size_t n = 0;
	assert_int_equal(reg_archive_load(f->st, tar, &v, &n, &err), -EINVAL);
	assert_err_contains(&err, "digest mismatch");
	assert_false(reg_blob_exists(
	        f->st, "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	char *tmp = kiln_xasprintf("%s/store/content/tmp", f->dir);
	assert_int_equal(rmdir(tmp), 0); /* empty: no temp file left */
	free(tmp);
	free(tar);
}

static void
test_archive__unknown_archive_and_missing_blob(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	char *tar = kiln_xasprintf("%s/other.tar", f->dir);
	struct archive *w = archive_write_new();
	archive_write_set_format_pax_restricted(w);
	assert_int_equal(archive_write_open_filename(w, tar), ARCHIVE_OK);
	write_entry(w, "hello.txt", "hi");
	archive_write_close(w);
	archive_write_free(w);
	struct reg_loaded *v = NULL;
	size_t n = 0;
	assert_int_equal(reg_archive_load(f->st, tar, &v, &n, &err), -EINVAL);
	assert_err_contains(&err, "neither an OCI layout");

	w = archive_write_new();
	archive_write_set_format_pax_restricted(w);
	assert_int_equal(archive_write_open_filename(w, tar), ARCHIVE_OK);
	write_entry(w, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	write_entry(
	        w, "index.json",
	        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" REG_MT_OCI_MANIFEST
	        "\",\"digest\":\"sha256:"
	        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",\"size\":9}]}");
	archive_write_close(w);
	archive_write_free(w);
	assert_int_equal(reg_archive_load(f->st, tar, &v, &n, &err), -ENOENT);
	assert_err_contains(&err, "missing from the archive");
	free(tar);
}

static void
write_symlink(struct archive *w, const char *name, const char *target)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFLNK);
	archive_entry_set_perm(e, 0777);
	archive_entry_set_symlink(e, target);
	assert_int_equal(archive_write_header(w, e), ARCHIVE_OK);
	archive_entry_free(e);
}

static void
write_docker_archive(const char *path, const char *layer, const char *diff_id)
{
	char *cfg = kiln_xasprintf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{"
	                           "\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
	                           diff_id);
	struct archive *w = archive_write_new();
	archive_write_set_format_pax_restricted(w);
	assert_int_equal(archive_write_open_filename(w, path), ARCHIVE_OK);
	/* The link comes before its target, as it may in a real archive. */
	write_symlink(w, "0123/layer.tar", "../layer0.tar");
	write_entry(w, "0123/json", "{}");
	write_entry(w, "layer0.tar", layer);
	write_entry(w, "config.json", cfg);
	write_entry(w, "manifest.json",
	            "[{\"Config\":\"config.json\",\"RepoTags\":[\"busybox:x\"],"
	            "\"Layers\":[\"0123/layer.tar\"]}]");
	archive_write_close(w);
	archive_write_free(w);
	free(cfg);
}

static void
test_archive__docker_archive_with_symlinked_layer(void **state)
{
	struct fixture *f = *state;
	struct kiln_err err = KILN_ERR_INIT;
	const char *layer = "pretend this is a layer tar";
	struct kiln_digest dd;
	char diff[KILN_DIGEST_HEX_LEN + 1], got[KILN_DIGEST_HEX_LEN + 1];
	kiln_sha256_buf(layer, strlen(layer), &dd);
	kiln_digest_format(&dd, diff);
	char *tar = kiln_xasprintf("%s/docker.tar", f->dir);
	write_docker_archive(tar, layer, diff);
	load_one(f->st, tar, "docker.io/library/busybox:x", got);
	struct reg_image img = REG_IMAGE_INIT;
	assert_int_equal(reg_image_open(f->st, got, NULL, &img, &err), 0);
	assert_string_equal(img.manifest.layers[0].digest, diff);
	assert_int_equal(img.manifest.layers[0].size, (int64_t)strlen(layer));
	reg_image_release(&img);
	/* A layer that is not what the config says is refused. */
	write_docker_archive(tar, "another layer", diff);
	struct reg_loaded *v = NULL;
	size_t n = 0;
	assert_int_equal(reg_archive_load(f->st, tar, &v, &n, &err), -EINVAL);
	assert_err_contains(&err, "but the config says");
	free(tar);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_archive__oci_round_trip, fixture_setup,
	                                        fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_archive__docker_round_trip, fixture_setup,
	                                        fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_archive__tampered_blob_rejected, fixture_setup,
	                                        fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_archive__unknown_archive_and_missing_blob,
	                                        fixture_setup, fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_archive__docker_archive_with_symlinked_layer,
	                                        fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
