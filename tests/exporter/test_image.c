/* Unit tests for exporter/image.c: the plan's stage config laid over the base image's
 * config by convert.c's rules, diff_ids and history lined up with the layers, a stable
 * manifest, names, and an image other tools (umoci, skopeo) accept once saved. */
#include "snapshot/layer_tar.h"

#include "exporter/exp.h"
#include "registry/reg.h"
#include "snapshot/snap.h"

#include <sys/wait.h>

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define SDE          1700000000

struct fixture {
	char *dir;
	char *root;
	struct reg_store *rs;
	char rootfs_manifest[KILN_DIGEST_HEX_LEN + 1]; /* "rootfs:1", imported */
};

static int
setup(void **state)
{
	struct fixture *f = kiln_xcalloc(1, sizeof(*f));
	f->dir = test_tmpdir_new();
	f->root = kiln_xasprintf("%s/root", f->dir);
	struct kiln_err err = KILN_ERR_INIT;
	if (reg_store_open(f->root, &f->rs, &err) < 0)
		fail_msg("open store: %s", kiln_err_format(&err));
	test_write_file(f->dir, "rootfs/bin/base-file", "from the base\n");
	_cleanup_free_ char *rootfs = kiln_xasprintf("%s/rootfs", f->dir);
	struct reg_import_opts io = REG_IMPORT_OPTS_INIT;
	io.clamp_mtime = 1000;
	io.created = 1000;
	if (reg_import_rootfs(f->rs, rootfs, &io, f->rootfs_manifest, &err) < 0 ||
	    reg_name_set(f->rs, "docker.io/library/rootfs:1", f->rootfs_manifest, &err) < 0)
		fail_msg("import: %s", kiln_err_format(&err));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	reg_store_free(f->rs);
	test_tmpdir_remove(f->dir);
	free(f->root);
	free(f);
	return 0;
}

static json_t *
J(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	if (!j)
		fail_msg("bad test JSON: %s: %s", je.text, text);
	return j;
}

/* Compact dump of member `key` of merged config "config". */
static char *
cfg_member(const json_t *merged, const char *key)
{
	json_t *v = json_object_get(json_object_get(merged, "config"), key);
	return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

#define ASSERT_MEMBER(merged, key, want)                                                           \
	do {                                                                                       \
		char *_got = cfg_member((merged), (key));                                          \
		if (!(want)) {                                                                     \
			assert_null(_got);                                                         \
		} else {                                                                           \
			assert_non_null(_got);                                                     \
			assert_string_equal(_got, (want));                                         \
		}                                                                                  \
		free(_got);                                                                        \
	} while (0)

/* ---- the merge rules, one by one ---- */

static void
test_image__merge_env_by_key_ours_win(void **state)
{
	_cleanup_json_ json_t *base = J("{\"config\":{\"Env\":[\"A=1\",\"PATH=/x\",\"B=2\"]}}");
	_cleanup_json_ json_t *ours = J("{\"config\":{\"Env\":[\"B=3\",\"C=4\",\"A=5\"]}}");
	_cleanup_json_ json_t *m = exp_config_merge(base, ours);
	ASSERT_MEMBER(m, "Env", "[\"A=5\",\"PATH=/x\",\"B=3\",\"C=4\"]");
}

static void
test_image__merge_path_default_when_neither_sets_it(void **state)
{
	_cleanup_json_ json_t *base = J("{\"config\":{\"Env\":[\"A=1\"]}}");
	_cleanup_json_ json_t *ours = J("{\"config\":{\"Env\":[\"C=4\"]}}");
	_cleanup_json_ json_t *m = exp_config_merge(base, ours);
	ASSERT_MEMBER(m, "Env", "[\"A=1\",\"" DEFAULT_PATH "\",\"C=4\"]");

	/* ours sets PATH: it takes the place BuildKit's default would have */
	_cleanup_json_ json_t *ours2 = J("{\"config\":{\"Env\":[\"C=4\",\"PATH=/mine\"]}}");
	_cleanup_json_ json_t *m2 = exp_config_merge(base, ours2);
	ASSERT_MEMBER(m2, "Env", "[\"A=1\",\"PATH=/mine\",\"C=4\"]");

	/* no base at all (scratch) */
	_cleanup_json_ json_t *m3 = exp_config_merge(NULL, ours);
	ASSERT_MEMBER(m3, "Env", "[\"" DEFAULT_PATH "\",\"C=4\"]");
}

static void
test_image__merge_labels_ports_volumes_by_key(void **state)
{
	_cleanup_json_ json_t *base =
	        J("{\"config\":{\"Labels\":{\"a\":\"1\",\"b\":\"2\"},"
	          "\"ExposedPorts\":{\"80/tcp\":{}},\"Volumes\":{\"/v\":{}}}}");
	_cleanup_json_ json_t *ours =
	        J("{\"config\":{\"Labels\":{\"b\":\"3\",\"c\":\"4\"},"
	          "\"ExposedPorts\":{\"443/tcp\":{}},\"Volumes\":{\"/w\":{}}}}");
	_cleanup_json_ json_t *m = exp_config_merge(base, ours);
	ASSERT_MEMBER(m, "Labels", "{\"a\":\"1\",\"b\":\"3\",\"c\":\"4\"}");
	ASSERT_MEMBER(m, "ExposedPorts", "{\"80/tcp\":{},\"443/tcp\":{}}");
	ASSERT_MEMBER(m, "Volumes", "{\"/v\":{},\"/w\":{}}");
}

static void
test_image__merge_cmd_null_resets_others_replace(void **state)
{
	_cleanup_json_ json_t *base =
	        J("{\"config\":{\"Cmd\":[\"sh\"],\"Entrypoint\":[\"/old\"],\"WorkingDir\":\"/b\","
	          "\"User\":\"1\",\"StopSignal\":\"SIGTERM\",\"OnBuild\":[\"RUN x\"]}}");
	_cleanup_json_ json_t *ours =
	        J("{\"config\":{\"Cmd\":null,\"Entrypoint\":[\"/new\"],\"WorkingDir\":\"/w\"}}");
	_cleanup_json_ json_t *m = exp_config_merge(base, ours);
	ASSERT_MEMBER(m, "Cmd", NULL);
	ASSERT_MEMBER(m, "Entrypoint", "[\"/new\"]");
	ASSERT_MEMBER(m, "WorkingDir", "\"/w\"");
	ASSERT_MEMBER(m, "User", "\"1\"");             /* kept */
	ASSERT_MEMBER(m, "StopSignal", "\"SIGTERM\""); /* kept */
	ASSERT_MEMBER(m, "OnBuild", NULL);             /* triggers do not pass on */

	/* a Cmd of ours replaces the base's */
	_cleanup_json_ json_t *ours2 = J("{\"config\":{\"Cmd\":[\"run\"]}}");
	_cleanup_json_ json_t *m2 = exp_config_merge(base, ours2);
	ASSERT_MEMBER(m2, "Cmd", "[\"run\"]");
	ASSERT_MEMBER(m2, "Entrypoint", "[\"/old\"]");
}

static void
test_image__merge_history_appended_platform_ours(void **state)
{
	_cleanup_json_ json_t *base = J(
	        "{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\",\"author\":\"b\","
	        "\"container_config\":{},\"history\":[{\"created_by\":\"base\"}]}");
	_cleanup_json_ json_t *ours =
	        J("{\"architecture\":\"amd64\",\"os\":\"linux\",\"base\":\"x\","
	          "\"history\":[{\"created_by\":\"RUN a\"},{\"created_by\":\"ENV b\","
	          "\"empty_layer\":true}]}");
	_cleanup_json_ json_t *m = exp_config_merge(base, ours);
	_cleanup_free_ char *h = json_dumps(json_object_get(m, "history"), JSON_COMPACT);
	assert_string_equal(h, "[{\"created_by\":\"base\"},{\"created_by\":\"RUN a\"},"
	                       "{\"created_by\":\"ENV b\",\"empty_layer\":true}]");
	assert_string_equal(json_string_value(json_object_get(m, "architecture")), "amd64");
	assert_null(json_object_get(m, "variant")); /* the base's variant is not ours */
	assert_string_equal(json_string_value(json_object_get(m, "author")), "b");
	assert_null(json_object_get(m, "container_config"));
	assert_null(json_object_get(m, "base"));
}

/* ---- committing images ---- */

/* A real gzip layer in the store with files `ents`. */
static struct exp_layer
make_layer(struct fixture *f, const struct tar_ent *ents, size_t n)
{
	struct exp_layer l = {.media_type = REG_MT_OCI_LAYER_GZIP};
	struct kiln_err err = KILN_ERR_INIT;
	int plain = tar_build(ents, n, NULL);
	struct kiln_buf b = KILN_BUF_INIT;
	assert_int_equal(kiln_buf_read_fd(&b, plain, &err), 0);
	close(plain);
	struct kiln_digest d;
	kiln_sha256_buf(b.buf, b.len, &d);
	kiln_digest_format(&d, l.diff_id);
	kiln_buf_release(&b);
	int gz = tar_build(ents, n, "gzip");
	if (reg_blob_put_fd(f->rs, gz, NULL, -1, l.digest, &err) < 0)
		fail_msg("put layer: %s", kiln_err_format(&err));
	close(gz);
	l.size = reg_blob_size(f->rs, l.digest, &err);
	assert_true(l.size > 0);
	return l;
}

static const struct tar_ent L_BASE[] = {TD("etc"), TF("etc/base.conf", "x=1\n")};
static const struct tar_ent L_APP[] = {TD("app"), TF("app/hello", "hello\n")};

static struct exp_image
commit(struct fixture *f, const char *stage, const struct exp_layer *layers, size_t n,
       const char *const *names, size_t nnames, int64_t sde)
{
	_cleanup_json_ json_t *cfg = J(stage);
	struct exp_image_opts o = EXP_IMAGE_OPTS_INIT;
	o.stage_config = cfg;
	o.layers = layers;
	o.nlayers = n;
	o.names = names;
	o.nnames = nnames;
	o.source_date_epoch = sde;
	struct exp_image img;
	struct kiln_err err = KILN_ERR_INIT;
	if (exp_image_commit(f->rs, &o, &img, &err) < 0)
		fail_msg("commit: %s", kiln_err_format(&err));
	return img;
}

#define STAGE_BASE                                                                                 \
	"{\"architecture\":\"amd64\",\"os\":\"linux\",\"base\":\"docker.io/library/rootfs:1\","    \
	"\"config\":{\"Env\":[\"A=1\",\"KEEP=k\"],\"Cmd\":[\"sh\"],\"Labels\":{\"a\":\"1\"},"      \
	"\"OnBuild\":[\"RUN echo hi\"]},\"history\":[{\"created_by\":\"ENV A=1 KEEP=k\","          \
	"\"empty_layer\":true},{\"created_by\":\"COPY etc /etc\"}]}"
#define STAGE_APP                                                                                  \
	"{\"architecture\":\"amd64\",\"os\":\"linux\",\"base\":\"docker.io/library/base:1\","      \
	"\"config\":{\"Env\":[\"A=2\",\"B=1\"],\"Labels\":{\"b\":\"2\"},\"Entrypoint\":[\"/e\"],"  \
	"\"Cmd\":null},\"history\":[{\"created_by\":\"ENV A=2 B=1\",\"empty_layer\":true},"        \
	"{\"created_by\":\"COPY app /app\"}]}"

static void
open_image(struct fixture *f, const char *ref, struct reg_image *img)
{
	struct kiln_err err = KILN_ERR_INIT;
	if (reg_image_open(f->rs, ref, NULL, img, &err) < 0)
		fail_msg("open %s: %s", ref, kiln_err_format(&err));
}

static void
test_image__commit_on_a_base(void **state)
{
	struct fixture *f = *state;
	struct exp_layer lb = make_layer(f, L_BASE, KILN_ARRAY_SIZE(L_BASE));
	const char *bn[] = {"base:1"};
	struct exp_image bi = commit(f, STAGE_BASE, &lb, 1, bn, 1, SDE);
	struct exp_layer la = make_layer(f, L_APP, KILN_ARRAY_SIZE(L_APP));
	const char *an[] = {"app", "localhost:5000/team/app:v2"};
	struct exp_image ai = commit(f, STAGE_APP, &la, 1, an, 2, SDE);
	assert_string_not_equal(ai.manifest_digest, bi.manifest_digest);

	/* names */
	struct kiln_err err = KILN_ERR_INIT;
	char d[KILN_DIGEST_HEX_LEN + 1];
	assert_int_equal(reg_name_get(f->rs, "docker.io/library/app:latest", d, &err), 0);
	assert_string_equal(d, ai.manifest_digest);
	assert_int_equal(reg_name_get(f->rs, "localhost:5000/team/app:v2", d, &err), 0);
	assert_string_equal(d, ai.manifest_digest);

	/* what `kiln inspect` sees */
	struct reg_image base = REG_IMAGE_INIT, rootfs = REG_IMAGE_INIT, app = REG_IMAGE_INIT;
	open_image(f, "rootfs:1", &rootfs);
	open_image(f, "base:1", &base);
	open_image(f, "app", &app);
	assert_int_equal(app.manifest.kind, REG_KIND_OCI_MANIFEST);
	assert_string_equal(app.manifest.config.digest, ai.config_digest);
	assert_int_equal(app.manifest_raw.len, (size_t)ai.manifest_size);
	/* diff_ids: the base's, then ours; layers: the base's blobs as they are */
	assert_int_equal(app.config.diff_ids.n, 3);
	assert_string_equal(app.config.diff_ids.v[0], rootfs.config.diff_ids.v[0]);
	assert_string_equal(app.config.diff_ids.v[1], lb.diff_id);
	assert_string_equal(app.config.diff_ids.v[2], la.diff_id);
	assert_int_equal(app.manifest.n_layers, 3);
	assert_string_equal(app.manifest.layers[0].digest, rootfs.manifest.layers[0].digest);
	assert_int_equal(app.manifest.layers[0].size, rootfs.manifest.layers[0].size);
	assert_string_equal(app.manifest.layers[1].digest, lb.digest);
	assert_string_equal(app.manifest.layers[2].digest, la.digest);
	assert_int_equal(app.manifest.layers[2].size, la.size);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(app.manifest.layers[i].media_type, REG_MT_OCI_LAYER_GZIP);
	/* created */
	assert_string_equal(app.config.created, "2023-11-14T22:13:20Z");
	/* config: merged twice down the chain */
	_cleanup_free_ char *env = json_dumps(json_object_get(app.config.config, "Env"), 0);
	assert_string_equal(env, "[\"" DEFAULT_PATH "\", \"A=2\", \"KEEP=k\", \"B=1\"]");
	_cleanup_free_ char *labels = json_dumps(json_object_get(app.config.config, "Labels"), 0);
	assert_string_equal(labels, "{\"a\": \"1\", \"b\": \"2\"}");
	assert_null(json_object_get(app.config.config, "Cmd"));
	assert_null(json_object_get(app.config.config, "OnBuild"));
	assert_non_null(json_object_get(base.config.config, "OnBuild"));
	assert_string_equal(json_string_value(json_array_get(
	                            json_object_get(app.config.config, "Entrypoint"), 0)),
	                    "/e");
	/* history: rootfs's 1 + base's 2 + ours 2, each non-empty one a layer */
	assert_int_equal(json_array_size(app.config.history), 5);
	size_t nonempty = 0, i;
	json_t *h;
	json_array_foreach(app.config.history, i, h)
	{
		nonempty += !json_is_true(json_object_get(h, "empty_layer"));
		assert_non_null(json_object_get(h, "created"));
	}
	assert_int_equal(nonempty, 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(app.config.history, 4),
	                                                      "created")),
	                    "2023-11-14T22:13:20Z");
	assert_string_equal(json_string_value(json_object_get(json_array_get(app.config.history, 0),
	                                                      "created_by")),
	                    "kiln import");
	assert_null(json_object_get(app.config.raw, "base"));
	reg_image_release(&rootfs);
	reg_image_release(&base);
	reg_image_release(&app);
}

static void
test_image__manifest_digest_stable(void **state)
{
	struct fixture *f = *state;
	struct exp_layer lb = make_layer(f, L_BASE, KILN_ARRAY_SIZE(L_BASE));
	struct exp_image a = commit(f, STAGE_BASE, &lb, 1, NULL, 0, SDE);
	struct exp_image b = commit(f, STAGE_BASE, &lb, 1, NULL, 0, SDE);
	assert_string_equal(a.manifest_digest, b.manifest_digest);
	assert_string_equal(a.config_digest, b.config_digest);
	/* another time, another image id */
	struct exp_image c = commit(f, STAGE_BASE, &lb, 1, NULL, 0, SDE + 1);
	assert_string_not_equal(a.config_digest, c.config_digest);
	assert_string_not_equal(a.manifest_digest, c.manifest_digest);
	/* the config blob is what the id says */
	struct reg_image img = REG_IMAGE_INIT;
	open_image(f, a.manifest_digest, &img);
	struct kiln_digest d;
	char hex[KILN_DIGEST_HEX_LEN + 1];
	kiln_sha256_buf(img.config_raw.buf, img.config_raw.len, &d);
	kiln_digest_format(&d, hex);
	assert_string_equal(hex, a.config_digest);
	reg_image_release(&img);
}

static void
test_image__docker_media_types_and_force_compression(void **state)
{
	struct fixture *f = *state;
	struct exp_layer lb = make_layer(f, L_BASE, KILN_ARRAY_SIZE(L_BASE));
	_cleanup_json_ json_t *cfg = J(STAGE_BASE);
	struct exp_image_opts o = EXP_IMAGE_OPTS_INIT;
	o.stage_config = cfg;
	o.layers = &lb;
	o.nlayers = 1;
	o.source_date_epoch = SDE;
	struct kiln_err err = KILN_ERR_INIT;

	/* oci-mediatypes=false: Docker's manifest, config and layer types, same blobs */
	o.oci_mediatypes = false;
	struct exp_image di;
	assert_int_equal(exp_image_commit(f->rs, &o, &di, &err), 0);
	struct reg_image img = REG_IMAGE_INIT;
	open_image(f, di.manifest_digest, &img);
	assert_int_equal(img.manifest.kind, REG_KIND_DOCKER_MANIFEST);
	assert_string_equal(img.manifest.config.media_type, REG_MT_DOCKER_CONFIG);
	assert_int_equal(img.manifest.n_layers, 2);
	for (size_t i = 0; i < 2; i++)
		assert_string_equal(img.manifest.layers[i].media_type, REG_MT_DOCKER_LAYER_GZIP);
	assert_string_equal(img.manifest.layers[1].digest, lb.digest);
	reg_image_release(&img);

	/* force-compression=zstd: the base's gzip layer is recompressed, its diff_id kept */
	o.oci_mediatypes = true;
	o.force_compression = true;
	o.compression = EXP_COMPRESSION_ZSTD;
	struct exp_image zi;
	assert_int_equal(exp_image_commit(f->rs, &o, &zi, &err), 0);
	struct reg_image z = REG_IMAGE_INIT, rootfs = REG_IMAGE_INIT;
	open_image(f, zi.manifest_digest, &z);
	open_image(f, "rootfs:1", &rootfs);
	assert_string_equal(z.manifest.layers[0].media_type, REG_MT_OCI_LAYER_ZSTD);
	assert_string_not_equal(z.manifest.layers[0].digest, rootfs.manifest.layers[0].digest);
	assert_string_equal(z.config.diff_ids.v[0], rootfs.config.diff_ids.v[0]);
	/* the new layer given as gzip is left alone: force applies to the base's */
	assert_string_equal(z.manifest.layers[1].digest, lb.digest);
	/* once: the same blob again, from the record */
	struct exp_image again;
	assert_int_equal(exp_image_commit(f->rs, &o, &again, &err), 0);
	assert_string_equal(again.manifest_digest, zi.manifest_digest);
	/* without force, the base's blob as it is */
	o.force_compression = false;
	struct exp_image keep;
	assert_int_equal(exp_image_commit(f->rs, &o, &keep, &err), 0);
	struct reg_image k = REG_IMAGE_INIT;
	open_image(f, keep.manifest_digest, &k);
	assert_string_equal(k.manifest.layers[0].digest, rootfs.manifest.layers[0].digest);
	reg_image_release(&k);
	reg_image_release(&z);
	reg_image_release(&rootfs);
}

static void
test_image__scratch_and_created_now(void **state)
{
	struct fixture *f = *state;
	struct exp_layer la = make_layer(f, L_APP, KILN_ARRAY_SIZE(L_APP));
	const char *names[] = {"scratchy:1"};
	time_t before = time(NULL);
	commit(f,
	       "{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\",\"config\":{"
	       "\"Env\":"
	       "[\"" DEFAULT_PATH "\"]},\"history\":[{\"created_by\":\"COPY app /app\"}]}",
	       &la, 1, names, 1, -1);
	struct reg_image img = REG_IMAGE_INIT;
	struct reg_platform arm = {.os = "linux", .architecture = "arm64", .variant = "v8"};
	struct kiln_err err = KILN_ERR_INIT;
	if (reg_image_open(f->rs, "scratchy:1", &arm, &img, &err) < 0)
		fail_msg("open: %s", kiln_err_format(&err));
	assert_int_equal(img.config.diff_ids.n, 1);
	assert_string_equal(img.config.diff_ids.v[0], la.diff_id);
	assert_string_equal(img.config.architecture, "arm64");
	assert_string_equal(img.config.variant, "v8");
	_cleanup_free_ char *env = json_dumps(json_object_get(img.config.config, "Env"), 0);
	assert_string_equal(env, "[\"" DEFAULT_PATH "\"]");
	struct tm tm = {0};
	assert_non_null(strptime(img.config.created, "%Y-%m-%dT%H:%M:%SZ", &tm));
	time_t created = timegm(&tm);
	assert_true(created >= before && created <= time(NULL));
	reg_image_release(&img);
}

static void
test_image__history_fitted_to_layers(void **state)
{
	struct fixture *f = *state;
	struct exp_layer la = make_layer(f, L_APP, KILN_ARRAY_SIZE(L_APP));
	/* the plan expected two layers, the chain had one: the first of ours turns empty */
	struct exp_image a = commit(f,
	                            "{\"architecture\":\"amd64\",\"os\":\"linux\",\"history\":["
	                            "{\"created_by\":\"WORKDIR /app\"},"
	                            "{\"created_by\":\"COPY app /app\"}]}",
	                            &la, 1, NULL, 0, SDE);
	struct reg_image img = REG_IMAGE_INIT;
	open_image(f, a.manifest_digest, &img);
	assert_int_equal(json_array_size(img.config.history), 2);
	assert_true(json_is_true(
	        json_object_get(json_array_get(img.config.history, 0), "empty_layer")));
	assert_null(json_object_get(json_array_get(img.config.history, 1), "empty_layer"));
	reg_image_release(&img);

	/* more layers than history: an entry is added */
	struct exp_layer two[] = {la, make_layer(f, L_BASE, KILN_ARRAY_SIZE(L_BASE))};
	struct exp_image b = commit(f,
	                            "{\"architecture\":\"amd64\",\"os\":\"linux\",\"history\":["
	                            "{\"created_by\":\"COPY app /app\"}]}",
	                            two, 2, NULL, 0, SDE);
	open_image(f, b.manifest_digest, &img);
	assert_int_equal(json_array_size(img.config.history), 2);
	assert_int_equal(img.config.diff_ids.n, 2);
	assert_null(json_object_get(json_array_get(img.config.history, 1), "empty_layer"));
	reg_image_release(&img);
}

static void
test_image__errors(void **state)
{
	struct fixture *f = *state;
	struct exp_layer la = make_layer(f, L_APP, KILN_ARRAY_SIZE(L_APP));
	_cleanup_json_ json_t *cfg = J("{\"architecture\":\"amd64\",\"os\":\"linux\"}");
	struct exp_image_opts o = EXP_IMAGE_OPTS_INIT;
	o.stage_config = cfg;
	o.layers = &la;
	o.nlayers = 1;
	const char *names[] = {"good:1", "Bad:Name"};
	o.names = names;
	o.nnames = 2;
	struct exp_image img;
	struct kiln_err err = KILN_ERR_INIT;
	assert_int_equal(exp_image_commit(f->rs, &o, &img, &err), -EINVAL);
	assert_err_contains(&err, "image name `Bad:Name`");
	char d[KILN_DIGEST_HEX_LEN + 1];
	assert_int_equal(reg_name_get(f->rs, "docker.io/library/good:1", d, &err), -ENOENT);
	kiln_err_release(&err);

	const char *digest_name[] = {
	        "x@sha256:"
	        "4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1"};
	o.names = digest_name;
	o.nnames = 1;
	assert_int_equal(exp_image_commit(f->rs, &o, &img, &err), -EINVAL);
	assert_err_contains(&err, "a digest cannot be a name");

	/* a base that is not in the store */
	_cleanup_json_ json_t *missing = J("{\"architecture\":\"amd64\",\"os\":\"linux\","
	                                   "\"base\":\"docker.io/library/nowhere:1\"}");
	o.stage_config = missing;
	o.nnames = 0;
	assert_int_equal(exp_image_commit(f->rs, &o, &img, &err), -ENOENT);
	assert_err_contains(&err, "base image docker.io/library/nowhere:1");

	/* a layer that is not in the store */
	struct exp_layer ghost = la;
	snprintf(ghost.digest, sizeof(ghost.digest), "sha256:%064d", 0);
	o.stage_config = cfg;
	o.layers = &ghost;
	assert_int_equal(exp_image_commit(f->rs, &o, &img, &err), -ENOENT);
	assert_err_contains(&err, "not in the store");

	o.stage_config = NULL;
	assert_int_equal(exp_image_commit(f->rs, &o, &img, &err), -EINVAL);
	assert_err_contains(&err, "no stage config");
}

/* Run a shell command; its exit status. */
static int sh(const char *fmt, ...) KILN_PRINTF(1, 2);
static int
sh(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *cmd = NULL;
	assert_true(vasprintf(&cmd, fmt, ap) >= 0);
	va_end(ap);
	int st = system(cmd);
	free(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
test_image__saved_oci_accepted_by_umoci_and_skopeo(void **state)
{
	struct fixture *f = *state;
	if (sh("command -v umoci >/dev/null && command -v skopeo >/dev/null") != 0) {
		print_message("umoci or skopeo missing\n");
		exit(77);
	}
	struct exp_layer lb = make_layer(f, L_BASE, KILN_ARRAY_SIZE(L_BASE));
	const char *bn[] = {"base:1"};
	commit(f, STAGE_BASE, &lb, 1, bn, 1, SDE);
	struct exp_layer la = make_layer(f, L_APP, KILN_ARRAY_SIZE(L_APP));
	const char *an[] = {"app:1"};
	struct exp_image ai = commit(f, STAGE_APP, &la, 1, an, 1, SDE);

	/* what `kiln save --format oci` writes */
	_cleanup_free_ char *tar = kiln_xasprintf("%s/app.tar", f->dir);
	struct kiln_err err = KILN_ERR_INIT;
	if (reg_archive_save(f->rs, "app:1", REG_ARCHIVE_OCI, tar, &err) < 0)
		fail_msg("save: %s", kiln_err_format(&err));
	const char *d = f->dir;
	assert_int_equal(sh("mkdir %s/oci && tar -xf %s -C %s/oci", d, tar, d), 0);
	/* skopeo reads the layout and finds our manifest */
	assert_int_equal(sh("skopeo inspect --raw oci:%s/oci > %s/raw.json", d, d), 0);
	_cleanup_free_ char *raw = slurp(d, "raw.json");
	assert_non_null(raw);
	struct kiln_digest md;
	char hex[KILN_DIGEST_HEX_LEN + 1];
	kiln_sha256_buf(raw, strlen(raw), &md);
	kiln_digest_format(&md, hex);
	assert_string_equal(hex, ai.manifest_digest);
	assert_int_equal(sh("skopeo inspect --config oci:%s/oci > %s/config.json", d, d), 0);
	_cleanup_free_ char *cfg = slurp(d, "config.json");
	assert_non_null(strstr(cfg, "\"B=1\""));
	/* umoci unpacks it (checking every blob's digest and every layer's diff_id) */
	assert_int_equal(sh("cd %s && umoci ls --layout oci > tags && test -s tags", d), 0);
	assert_int_equal(sh("cd %s && umoci unpack --rootless --image \"oci:$(head -n1 tags)\" "
	                    "bundle >/dev/null",
	                    d),
	                 0);
	_cleanup_free_ char *bundle = kiln_xasprintf("%s/bundle/rootfs", d);
	_cleanup_free_ char *hello = slurp(bundle, "app/hello");
	_cleanup_free_ char *conf = slurp(bundle, "etc/base.conf");
	_cleanup_free_ char *from_rootfs = slurp(bundle, "bin/base-file");
	assert_string_equal(hello, "hello\n");
	assert_string_equal(conf, "x=1\n");
	assert_string_equal(from_rootfs, "from the base\n");
	_cleanup_free_ char *spec = slurp(d, "bundle/config.json");
	assert_non_null(spec);
	assert_non_null(strstr(spec, "\"/e\""));
}

static void
change_rootfs(const char *p)
{
	_cleanup_free_ char *gone = kiln_xasprintf("%s/bin/base-file", p);
	assert_int_equal(unlink(gone), 0);
	test_write_file(p, "app/run", "#!/bin/sh\n");
	_cleanup_free_ char *run = kiln_xasprintf("%s/app/run", p);
	_cleanup_free_ char *run2 = kiln_xasprintf("%s/app/run2", p);
	assert_int_equal(chown(run, 4321, 8765), 0);
	assert_int_equal(chmod(run, 0751), 0);
	assert_int_equal(link(run, run2), 0);
	assert_int_equal(lsetxattr(run, "user.note", "hi", 2, 0), 0);
	_cleanup_free_ char *lnk = kiln_xasprintf("%s/app/sh", p);
	assert_int_equal(symlink("run", lnk), 0);
}

/* The whole way ops will go: base image -> snapshot chain -> a step -> layers -> image,
 * then a saved layout that umoci unpacks with the step's changes. */
static void
test_image__snapshot_to_image_unpacks_with_umoci(void **state)
{
	struct fixture *f = *state;
	if (geteuid() != 0) {
		print_message("needs root\n");
		exit(77);
	}
	struct kiln_err err = KILN_ERR_INIT;
	struct snap_store_opts so = SNAP_STORE_OPTS_INIT;
	struct snap_store *ss = NULL;
	if (snap_store_open(f->root, &so, &ss, &err) < 0)
		fail_msg("snap store: %s", kiln_err_format(&err));
	struct reg_image base = REG_IMAGE_INIT;
	open_image(f, "rootfs:1", &base);
	_cleanup_free_ char *chain = NULL;
	int fd = reg_blob_open(f->rs, base.manifest.layers[0].digest, &err);
	assert_true(fd >= 0);
	if (snap_layer_apply(ss, NULL, fd, base.manifest.layers[0].media_type,
	                     base.config.diff_ids.v[0], &chain, &err) < 0)
		fail_msg("apply: %s", kiln_err_format(&err));
	close(fd);
	reg_image_release(&base);
	{
		_cleanup_snap_mount_ struct snap_mount *m = NULL;
		assert_int_equal(snap_prepare(ss, chain, &m, &err), 0);
		change_rootfs(snap_mount_path(m));
		assert_int_equal(snap_commit(m, "step-1", &err), 0);
	}
	_cleanup_json_ json_t *cfg = J("{\"architecture\":\"amd64\",\"os\":\"linux\",\"base\":"
	                               "\"docker.io/library/rootfs:1\","
	                               "\"config\":{\"Env\":[],\"Cmd\":[\"/app/run\"]},"
	                               "\"history\":[{\"created_by\":\"RUN make\"}]}");
	struct exp_export_opts eo = EXP_EXPORT_OPTS_INIT;
	eo.stage_config = cfg;
	const char *names[] = {"built:1"};
	eo.names = names;
	eo.nnames = 1;
	eo.source_date_epoch = SDE;
	eo.rewrite_timestamp = true;
	struct exp_image img;
	if (exp_image_export(ss, f->rs, "step-1", &eo, &img, &err) < 0)
		fail_msg("export: %s", kiln_err_format(&err));
	struct reg_image built = REG_IMAGE_INIT;
	open_image(f, "built:1", &built);
	assert_int_equal(built.manifest.n_layers, 2); /* the base's and the step's */
	assert_string_equal(built.manifest_digest, img.manifest_digest);
	reg_image_release(&built);

	/* the root itself: the base's layers under the merged config */
	eo.names = NULL;
	eo.nnames = 0;
	if (exp_image_export(ss, f->rs, chain, &eo, &img, &err) < 0)
		fail_msg("export root: %s", kiln_err_format(&err));
	open_image(f, img.manifest_digest, &built);
	assert_int_equal(built.manifest.n_layers, 1);
	reg_image_release(&built);
	snap_store_free(ss);

	_cleanup_free_ char *tar = kiln_xasprintf("%s/built.tar", f->dir);
	if (reg_archive_save(f->rs, "built:1", REG_ARCHIVE_OCI, tar, &err) < 0)
		fail_msg("save: %s", kiln_err_format(&err));
	const char *d = f->dir;
	assert_int_equal(sh("mkdir %s/oci && tar -xf %s -C %s/oci", d, tar, d), 0);
	assert_int_equal(sh("cd %s && umoci ls --layout oci > tags && test -s tags", d), 0);
	assert_int_equal(
	        sh("cd %s && umoci unpack --image \"oci:$(head -n1 tags)\" bundle >/dev/null", d),
	        0);
	_cleanup_free_ char *rootfs = kiln_xasprintf("%s/bundle/rootfs", d);
	struct stat a, b;
	assert_false(lexists(rootfs, "bin/base-file", NULL)); /* the whiteout applied */
	assert_true(lexists(rootfs, "app/run", &a));
	assert_true(lexists(rootfs, "app/run2", &b));
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_mode, S_IFREG | 0751);
	assert_int_equal(a.st_uid, 4321);
	assert_int_equal(a.st_gid, 8765);
	assert_true(a.st_mtime <= SDE);
	_cleanup_free_ char *note = xattr_of(rootfs, "app/run", "user.note");
	assert_non_null(note);
	assert_string_equal(note, "hi");
	struct stat l;
	assert_true(lexists(rootfs, "app/sh", &l));
	assert_true(S_ISLNK(l.st_mode));
	umount_below(f->dir);
}

static void
add_app(const char *p)
{
	test_write_file(p, "app/hello", "hello\n");
}

static void
test_image__export_scratch_drops_empty_root(void **state)
{
	struct fixture *f = *state;
	if (geteuid() != 0) {
		print_message("needs root\n");
		exit(77);
	}
	struct kiln_err err = KILN_ERR_INIT;
	struct snap_store_opts so = SNAP_STORE_OPTS_INIT;
	struct snap_store *ss = NULL;
	if (snap_store_open(f->root, &so, &ss, &err) < 0)
		fail_msg("snap store: %s", kiln_err_format(&err));
	const char *steps[] = {"scratch", "copy"};
	for (size_t i = 0; i < 2; i++) {
		_cleanup_snap_mount_ struct snap_mount *m = NULL;
		assert_int_equal(snap_prepare(ss, i ? steps[i - 1] : NULL, &m, &err), 0);
		if (i)
			add_app(snap_mount_path(m));
		assert_int_equal(snap_commit(m, steps[i], &err), 0);
	}
	_cleanup_json_ json_t *cfg = J(
	        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"" DEFAULT_PATH
	        "\"]},\"history\":[{\"created_by\":\"COPY app /app\"}]}");
	struct exp_export_opts eo = EXP_EXPORT_OPTS_INIT;
	eo.stage_config = cfg;
	eo.source_date_epoch = SDE;
	struct exp_image a, b;
	assert_int_equal(exp_image_export(ss, f->rs, "copy", &eo, &a, &err), 0);
	eo.stop = "scratch";
	assert_int_equal(exp_image_export(ss, f->rs, "copy", &eo, &b, &err), 0);
	assert_string_equal(a.manifest_digest, b.manifest_digest);
	struct reg_image img = REG_IMAGE_INIT;
	open_image(f, a.manifest_digest, &img);
	assert_int_equal(img.manifest.n_layers, 1);
	assert_int_equal(img.config.diff_ids.n, 1);
	assert_int_equal(json_array_size(img.config.history), 1);
	reg_image_release(&img);

	eo.stop = "nonsense";
	assert_true(exp_image_export(ss, f->rs, "copy", &eo, &b, &err) < 0);
	assert_err_contains(&err, "export image");
	snap_store_free(ss);
	umount_below(f->dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_image__merge_env_by_key_ours_win),
	        cmocka_unit_test_setup_teardown(
	                test_image__docker_media_types_and_force_compression, setup, teardown),
	        cmocka_unit_test(test_image__merge_path_default_when_neither_sets_it),
	        cmocka_unit_test(test_image__merge_labels_ports_volumes_by_key),
	        cmocka_unit_test(test_image__merge_cmd_null_resets_others_replace),
	        cmocka_unit_test(test_image__merge_history_appended_platform_ours),
	        cmocka_unit_test_setup_teardown(test_image__commit_on_a_base, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_image__manifest_digest_stable, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_image__scratch_and_created_now, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_image__history_fitted_to_layers, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_image__errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_image__saved_oci_accepted_by_umoci_and_skopeo,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_image__snapshot_to_image_unpacks_with_umoci,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_image__export_scratch_drops_empty_root, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
