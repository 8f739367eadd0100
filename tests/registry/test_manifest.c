/* Unit tests for registry/manifest.c: media type detection, round trips of manifests,
 * indexes and configs, platform selection, limits on untrusted documents. */
#include "testlib.h"
#include "registry/reg.h"

#define DA "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DB "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define DC "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define DD "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

static int
detect(const char *doc, const char *ct, enum reg_kind *k, struct kiln_err *err)
{
	return reg_media_detect(doc, strlen(doc), ct, NULL, k, err);
}

static void
test_manifest__detect_kinds(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	enum reg_kind k;
	assert_int_equal(detect("{\"schemaVersion\":2,\"mediaType\":\"" REG_MT_DOCKER_MANIFEST
	                        "\",\"config\":{},\"layers\":[]}",
	                        NULL, &k, &err),
	                 0);
	assert_int_equal(k, REG_KIND_DOCKER_MANIFEST);
	assert_int_equal(detect("{\"schemaVersion\":2,\"mediaType\":\"" REG_MT_DOCKER_LIST
	                        "\",\"manifests\":[]}",
	                        REG_MT_DOCKER_LIST "; charset=utf-8", &k, &err),
	                 0);
	assert_int_equal(k, REG_KIND_DOCKER_LIST);
	/* OCI allows leaving mediaType out: the shape decides. */
	assert_int_equal(detect("{\"schemaVersion\":2,\"manifests\":[]}", NULL, &k, &err), 0);
	assert_int_equal(k, REG_KIND_OCI_INDEX);
	assert_int_equal(detect("{\"schemaVersion\":2,\"config\":{},\"layers\":[]}",
	                        "application/json", &k, &err),
	                 0);
	assert_int_equal(k, REG_KIND_OCI_MANIFEST);
	/* ...or a specific Content-Type. */
	assert_int_equal(
	        detect("{\"schemaVersion\":2,\"manifests\":[]}", REG_MT_DOCKER_LIST, &k, &err), 0);
	assert_int_equal(k, REG_KIND_DOCKER_LIST);
}

static void
test_manifest__detect_rejects_ambiguity_and_conflicts(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	enum reg_kind k;
	assert_int_equal(
	        detect("{\"schemaVersion\":2,\"layers\":[],\"manifests\":[]}", NULL, &k, &err),
	        -EINVAL);
	assert_err_contains(&err, "ambiguous");
	assert_int_equal(detect("{\"schemaVersion\":2,\"mediaType\":\"" REG_MT_OCI_MANIFEST
	                        "\",\"layers\":[],\"manifests\":[]}",
	                        NULL, &k, &err),
	                 -EINVAL);
	assert_err_contains(&err, "ambiguous");
	/* mediaType says index, the body is a manifest. */
	assert_int_equal(detect("{\"schemaVersion\":2,\"mediaType\":\"" REG_MT_OCI_INDEX
	                        "\",\"config\":{},\"layers\":[]}",
	                        NULL, &k, &err),
	                 -EINVAL);
	assert_err_contains(&err, "fields of the other kind");
	/* mediaType and Content-Type disagree. */
	assert_int_equal(detect("{\"schemaVersion\":2,\"mediaType\":\"" REG_MT_OCI_MANIFEST
	                        "\",\"config\":{},\"layers\":[]}",
	                        REG_MT_DOCKER_MANIFEST, &k, &err),
	                 -EINVAL);
	assert_err_contains(&err, "conflicts with Content-Type");
	assert_int_equal(detect("{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}",
	                        "application/vnd.docker.distribution.manifest.v1+prettyjws", &k,
	                        &err),
	                 -EINVAL);
	assert_err_contains(&err, "unsupported manifest Content-Type");
	assert_int_equal(detect("{\"schemaVersion\":2,\"mediaType\":\"text/html\",\"layers\":[]}",
	                        NULL, &k, &err),
	                 -EINVAL);
	assert_err_contains(&err, "unsupported manifest media type");
	assert_int_equal(detect("{\"schemaVersion\":2}", NULL, &k, &err), -EINVAL);
	assert_err_contains(&err, "not a manifest");
	assert_int_equal(detect("[1,2]", NULL, &k, &err), -EINVAL);
	assert_err_contains(&err, "not a JSON object");
}

static void
test_manifest__limits(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	enum reg_kind k;
	struct reg_limits lim = REG_LIMITS_INIT;
	assert_int_equal(lim.max_manifest_bytes, 4 << 20);
	/* Size. */
	lim.max_manifest_bytes = 10;
	const char *small = "{\"schemaVersion\":2,\"manifests\":[]}";
	assert_int_equal(reg_media_detect(small, strlen(small), NULL, &lim, &k, &err), -EINVAL);
	assert_err_contains(&err, "more than the limit of 10");
	/* Depth, checked before jansson sees it. */
	struct kiln_buf deep = KILN_BUF_INIT;
	kiln_buf_addstr(&deep, "{\"schemaVersion\":2,\"manifests\":[],\"annotations\":");
	for (int i = 0; i < 100; i++)
		kiln_buf_addstr(&deep, "[");
	for (int i = 0; i < 100; i++)
		kiln_buf_addstr(&deep, "]");
	kiln_buf_addstr(&deep, "}");
	assert_int_equal(reg_media_detect(deep.buf, deep.len, NULL, NULL, &k, &err), -EINVAL);
	assert_err_contains(&err, "nests deeper than 64");
	kiln_buf_release(&deep);
	/* Layer count. */
	struct kiln_buf m = KILN_BUF_INIT;
	kiln_buf_addstr(&m, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" REG_MT_OCI_CONFIG
	                    "\",\"digest\":\"" DA "\",\"size\":1},\"layers\":[");
	for (int i = 0; i < 128; i++)
		kiln_buf_addf(&m, "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":1}",
		              i ? "," : "", REG_MT_OCI_LAYER_GZIP, DB);
	kiln_buf_addstr(&m, "]}");
	struct reg_manifest man = {0};
	assert_int_equal(reg_manifest_parse(m.buf, m.len, NULL, &man, &err), -EINVAL);
	assert_err_contains(&err, "128 layers, more than the limit of 127");
	lim = (struct reg_limits)REG_LIMITS_INIT;
	lim.max_layers = 200;
	assert_int_equal(reg_manifest_parse(m.buf, m.len, &lim, &man, &err), 0);
	assert_int_equal(man.n_layers, 128);
	reg_manifest_release(&man);
	kiln_buf_release(&m);
	/* Index fan-out. */
	struct kiln_buf ix = KILN_BUF_INIT;
	kiln_buf_addstr(&ix, "{\"schemaVersion\":2,\"manifests\":[");
	for (int i = 0; i < 1001; i++)
		kiln_buf_addf(&ix, "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":1}",
		              i ? "," : "", REG_MT_OCI_MANIFEST, DC);
	kiln_buf_addstr(&ix, "]}");
	struct reg_index idx = {0};
	assert_int_equal(reg_index_parse(ix.buf, ix.len, NULL, &idx, &err), -EINVAL);
	assert_err_contains(&err, "1001 entries, more than the limit of 1000");
	kiln_buf_release(&ix);
}

static void
test_manifest__rejects_bad_descriptors(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_manifest m = {0};
	const char *bad_digest = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":"
	                         "\"sha256:../../etc\",\"size\":1},\"layers\":[]}";
	assert_int_equal(reg_manifest_parse(bad_digest, strlen(bad_digest), NULL, &m, &err),
	                 -EINVAL);
	assert_err_contains(&err, "not a sha256 digest");
	const char *neg = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" DA
	                  "\",\"size\":-1},\"layers\":[]}";
	assert_int_equal(reg_manifest_parse(neg, strlen(neg), NULL, &m, &err), -EINVAL);
	assert_err_contains(&err, "no valid size");
	const char *dup = "{\"schemaVersion\":2,\"schemaVersion\":2,\"manifests\":[]}";
	struct reg_index idx = {0};
	assert_int_equal(reg_index_parse(dup, strlen(dup), NULL, &idx, &err), -EINVAL);
	assert_err_contains(&err, "not valid JSON");
}

static void
test_manifest__manifest_round_trip(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	const enum reg_kind kinds[] = {REG_KIND_OCI_MANIFEST, REG_KIND_DOCKER_MANIFEST};
	for (size_t t = 0; t < 2; t++) {
		struct reg_manifest m = {.kind = kinds[t]};
		m.config = (struct reg_descriptor){.media_type = kiln_xstrdup(REG_MT_OCI_CONFIG),
		                                   .size = 123};
		memcpy(m.config.digest, DA, sizeof(m.config.digest));
		m.n_layers = 2;
		m.layers = kiln_xcalloc(2, sizeof(*m.layers));
		for (size_t i = 0; i < 2; i++) {
			m.layers[i].media_type = kiln_xstrdup(REG_MT_OCI_LAYER_GZIP);
			m.layers[i].size = (int64_t)(1000 + i);
			memcpy(m.layers[i].digest, i ? DC : DB, sizeof(m.layers[i].digest));
		}
		m.layers[1].annotations = json_pack("{s:s}", "k", "v");
		m.annotations = json_pack("{s:s}", "org.example", "yes");
		struct kiln_buf b = KILN_BUF_INIT;
		assert_int_equal(reg_manifest_write(&m, &b, &err), 0);
		struct reg_manifest back = {0};
		assert_int_equal(reg_manifest_parse(b.buf, b.len, NULL, &back, &err), 0);
		assert_int_equal(back.kind, kinds[t]);
		assert_string_equal(back.config.digest, DA);
		assert_int_equal(back.config.size, 123);
		assert_int_equal(back.n_layers, 2);
		assert_string_equal(back.layers[1].digest, DC);
		assert_int_equal(back.layers[1].size, 1001);
		assert_string_equal(back.layers[0].media_type, REG_MT_OCI_LAYER_GZIP);
		assert_string_equal(
		        json_string_value(json_object_get(back.layers[1].annotations, "k")), "v");
		assert_string_equal(
		        json_string_value(json_object_get(back.annotations, "org.example")), "yes");
		/* Writing the parsed manifest gives the same bytes. */
		struct kiln_buf b2 = KILN_BUF_INIT;
		assert_int_equal(reg_manifest_write(&back, &b2, &err), 0);
		assert_string_equal(b.buf, b2.buf);
		kiln_buf_release(&b);
		kiln_buf_release(&b2);
		reg_manifest_release(&back);
		reg_manifest_release(&m);
	}
}

static struct reg_index
make_index(enum reg_kind kind)
{
	static const char *const plats[][3] = {
	        {"linux", "arm64", "v8"},   {"linux", "arm", "v7"},       {"linux", "amd64", NULL},
	        {"windows", "amd64", NULL}, {"unknown", "unknown", NULL},
	};
	struct reg_index idx = {.kind = kind};
	idx.n_manifests = KILN_ARRAY_SIZE(plats);
	idx.manifests = kiln_xcalloc(idx.n_manifests, sizeof(*idx.manifests));
	for (size_t i = 0; i < idx.n_manifests; i++) {
		struct reg_descriptor *d = &idx.manifests[i];
		d->media_type = kiln_xstrdup(REG_MT_OCI_MANIFEST);
		snprintf(d->digest, sizeof(d->digest), "sha256:%064zu", i);
		d->size = 500;
		d->has_platform = true;
		d->platform.os = kiln_xstrdup(plats[i][0]);
		d->platform.architecture = kiln_xstrdup(plats[i][1]);
		d->platform.variant = plats[i][2] ? kiln_xstrdup(plats[i][2]) : NULL;
	}
	idx.manifests[3].platform.os_version = kiln_xstrdup("10.0.17763.1");
	return idx;
}

static void
test_manifest__index_round_trip(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_index idx = make_index(REG_KIND_DOCKER_LIST);
	struct kiln_buf b = KILN_BUF_INIT;
	assert_int_equal(reg_index_write(&idx, &b, &err), 0);
	struct reg_index back = {0};
	assert_int_equal(reg_index_parse(b.buf, b.len, NULL, &back, &err), 0);
	assert_int_equal(back.kind, REG_KIND_DOCKER_LIST);
	assert_int_equal(back.n_manifests, idx.n_manifests);
	for (size_t i = 0; i < idx.n_manifests; i++) {
		assert_string_equal(back.manifests[i].digest, idx.manifests[i].digest);
		assert_true(back.manifests[i].has_platform);
		assert_string_equal(back.manifests[i].platform.os, idx.manifests[i].platform.os);
		assert_string_equal(back.manifests[i].platform.architecture,
		                    idx.manifests[i].platform.architecture);
	}
	assert_string_equal(back.manifests[0].platform.variant, "v8");
	assert_string_equal(back.manifests[3].platform.os_version, "10.0.17763.1");
	struct kiln_buf b2 = KILN_BUF_INIT;
	assert_int_equal(reg_index_write(&back, &b2, &err), 0);
	assert_string_equal(b.buf, b2.buf);
	kiln_buf_release(&b);
	kiln_buf_release(&b2);
	reg_index_release(&back);
	reg_index_release(&idx);
}

static void
test_manifest__platform_selection(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_index idx = make_index(REG_KIND_OCI_INDEX);
	/* This machine is linux/amd64 (the CI and dev hosts). */
	assert_int_equal(reg_index_select(&idx, NULL, &err), 2);
	struct reg_platform p = REG_PLATFORM_INIT;
	assert_int_equal(reg_platform_parse("linux/arm64", &p, &err), 0);
	assert_int_equal(reg_index_select(&idx, &p, &err), 0); /* v8 is arm64's default */
	reg_platform_release(&p);
	assert_int_equal(reg_platform_parse("linux/aarch64/v8", &p, &err), 0);
	assert_string_equal(p.architecture, "arm64");
	assert_int_equal(reg_index_select(&idx, &p, &err), 0);
	reg_platform_release(&p);
	assert_int_equal(reg_platform_parse("linux/arm", &p, &err), 0);
	assert_int_equal(reg_index_select(&idx, &p, &err), 1); /* arm means v7 */
	reg_platform_release(&p);
	assert_int_equal(reg_platform_parse("windows/amd64", &p, &err), 0);
	assert_int_equal(reg_index_select(&idx, &p, &err), 3);
	reg_platform_release(&p);
	assert_int_equal(reg_platform_parse("linux/s390x", &p, &err), 0);
	assert_int_equal(reg_index_select(&idx, &p, &err), -ENOENT);
	assert_err_contains(&err, "no manifest for platform linux/s390x");
	reg_platform_release(&p);
	assert_int_equal(reg_platform_parse("linux/arm/v6", &p, &err), 0);
	assert_int_equal(reg_index_select(&idx, &p, &err), -ENOENT);
	assert_err_contains(&err, "available: linux/arm64/v8, linux/arm/v7, linux/amd64");
	reg_platform_release(&p);
	assert_int_equal(reg_platform_parse("linux", &p, &err), -EINVAL);
	assert_err_contains(&err, "want os/arch[/variant]");
	assert_int_equal(reg_platform_parse("linux/amd64/v2/x", &p, &err), -EINVAL);
	kiln_err_release(&err);
	reg_platform_host(&p);
	char *s = reg_platform_string(&p);
	assert_string_equal(s, "linux/amd64");
	free(s);
	reg_platform_release(&p);
	reg_index_release(&idx);
}

static void
test_manifest__config_round_trip_keeps_unknown_fields(void **state)
{
	struct kiln_err err = KILN_ERR_INIT;
	const char *doc = "{\"created\":\"2024-01-02T03:04:05Z\",\"architecture\":\"arm64\","
	                  "\"variant\":\"v8\",\"os\":\"linux\",\"author\":\"someone\","
	                  "\"config\":{\"Env\":[\"A=1\"],\"Cmd\":[\"sh\"]},"
	                  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DA "\",\"" DB "\"]},"
	                  "\"history\":[{\"created_by\":\"x\"},{\"created_by\":\"y\"}]}";
	struct reg_config c = {0};
	assert_int_equal(reg_config_parse(doc, strlen(doc), NULL, &c, &err), 0);
	assert_string_equal(c.os, "linux");
	assert_string_equal(c.architecture, "arm64");
	assert_string_equal(c.variant, "v8");
	assert_string_equal(c.created, "2024-01-02T03:04:05Z");
	assert_int_equal(c.diff_ids.n, 2);
	assert_string_equal(c.diff_ids.v[1], DB);
	assert_int_equal(json_array_size(c.history), 2);
	kiln_strv_push(&c.diff_ids, DC);
	struct kiln_buf b = KILN_BUF_INIT;
	assert_int_equal(reg_config_write(&c, &b, &err), 0);
	struct reg_config back = {0};
	assert_int_equal(reg_config_parse(b.buf, b.len, NULL, &back, &err), 0);
	assert_int_equal(back.diff_ids.n, 3);
	assert_string_equal(back.diff_ids.v[2], DC);
	assert_string_equal(json_string_value(json_object_get(back.raw, "author")), "someone");
	assert_string_equal(
	        json_string_value(json_array_get(json_object_get(back.config, "Cmd"), 0)), "sh");
	assert_true(json_equal(back.history, c.history));
	kiln_buf_release(&b);
	reg_config_release(&back);
	reg_config_release(&c);
	/* A config built from scratch. */
	struct reg_config n = {.os = kiln_xstrdup("linux"), .architecture = kiln_xstrdup("amd64")};
	kiln_strv_push(&n.diff_ids, DD);
	assert_int_equal(reg_config_write(&n, &b, &err), 0);
	assert_int_equal(reg_config_parse(b.buf, b.len, NULL, &back, &err), 0);
	assert_string_equal(back.diff_ids.v[0], DD);
	assert_null(back.created);
	reg_config_release(&back);
	reg_config_release(&n);
	kiln_buf_release(&b);
	const char *bad = "{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{\"type\":"
	                  "\"layers\",\"diff_ids\":[\"md5:x\"]}}";
	assert_int_equal(reg_config_parse(bad, strlen(bad), NULL, &c, &err), -EINVAL);
	assert_err_contains(&err, "diff_id 0 is not a sha256 digest");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_manifest__detect_kinds),
	        cmocka_unit_test(test_manifest__detect_rejects_ambiguity_and_conflicts),
	        cmocka_unit_test(test_manifest__limits),
	        cmocka_unit_test(test_manifest__rejects_bad_descriptors),
	        cmocka_unit_test(test_manifest__manifest_round_trip),
	        cmocka_unit_test(test_manifest__index_round_trip),
	        cmocka_unit_test(test_manifest__platform_selection),
	        cmocka_unit_test(test_manifest__config_round_trip_keeps_unknown_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
