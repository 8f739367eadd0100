/*
 * kiln build's outputs: parsing -o specs the way buildx does (CSV with quotes) and
 * exporting the built stage to each. Each image output gets its own layers in its own
 * compression; the layer cache makes a second output of the same compression (or a
 * rebuild that changed nothing) cost no compression at all.
 */
#include "build_output.h"

#include "cmd.h"
#include "progress.h"
#include "ops/ops.h"
#include "registry/reg.h"
#include "snapshot/snap.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const type_names[] = {
        [CMD_OUTPUT_IMAGE] = "image", [CMD_OUTPUT_REGISTRY] = "registry",
        [CMD_OUTPUT_OCI] = "oci",     [CMD_OUTPUT_DOCKER] = "docker",
        [CMD_OUTPUT_LOCAL] = "local", [CMD_OUTPUT_TAR] = "tar",
};

static bool
is_image(enum cmd_output_type t)
{
	return t == CMD_OUTPUT_IMAGE || t == CMD_OUTPUT_REGISTRY || t == CMD_OUTPUT_OCI ||
	       t == CMD_OUTPUT_DOCKER;
}

/* Split CSV fields: commas inside double quotes do not split, quotes are removed. */
static void
split_csv(const char *s, struct kiln_strv *out)
{
	struct kiln_buf f = KILN_BUF_INIT;
	bool quoted = false;
	for (const char *p = s;; p++) {
		if (*p == '"') {
			quoted = !quoted;
		} else if ((*p == ',' && !quoted) || !*p) {
			kiln_strv_push(out, f.buf ? f.buf : "");
			kiln_buf_reset(&f);
			if (!*p)
				break;
		} else {
			kiln_buf_addch(&f, *p);
		}
	}
	kiln_buf_release(&f);
}

static int
parse_bool(const char *spec, const char *key, const char *v, bool *ret, struct kiln_err *err)
{
	if (kiln_str_eq(v, "true") || kiln_str_eq(v, "1") || !*v)
		*ret = true;
	else if (kiln_str_eq(v, "false") || kiln_str_eq(v, "0"))
		*ret = false;
	else
		return kiln_err_invalid(err, "--output %s: %s takes true or false", spec, key);
	return 0;
}

int
cmd_outputs_parse(struct cmd_outputs *o, const char *spec, struct kiln_err *err)
{
	struct cmd_output out = {.tar = true,
	                         .oci_mediatypes = true,
	                         .compression = EXP_COMPRESSION_GZIP,
	                         .compression_level = -1};
	bool have_type = false, have_oci = false;
	int r = 0;
	_cleanup_strv_ struct kiln_strv fields = KILN_STRV_INIT;
	split_csv(spec, &fields);
	if (kiln_str_eq(spec, "-")) {
		/* buildx: `-o -` is a tar of the files on standard output */
		out.type = CMD_OUTPUT_TAR;
		out.dest = kiln_xstrdup("-");
		have_type = true;
	}
	for (size_t i = 0; !kiln_str_eq(spec, "-") && i < fields.n && r >= 0; i++) {
		char *f = fields.v[i];
		char *eq = strchr(f, '=');
		if (!eq) {
			/* buildx: a bare path is type=local,dest=PATH */
			if (i == 0 && fields.n == 1 && *f) {
				out.type = CMD_OUTPUT_LOCAL;
				out.dest = kiln_xstrdup(f);
				have_type = true;
				continue;
			}
			r = kiln_err_invalid(err, "--output %s: %s is not key=value", spec, f);
			break;
		}
		*eq = '\0';
		const char *k = f, *v = eq + 1;
		if (kiln_str_eq(k, "type")) {
			size_t t;
			for (t = 0; t < KILN_ARRAY_SIZE(type_names); t++)
				if (kiln_str_eq(v, type_names[t]))
					break;
			if (t == KILN_ARRAY_SIZE(type_names)) {
				r = kiln_err_invalid(
				        err,
				        "--output %s: type must be image, registry, oci, "
				        "docker, local or tar",
				        spec);
				break;
			}
			out.type = (enum cmd_output_type)t;
			have_type = true;
		} else if (kiln_str_eq(k, "dest")) {
			free(out.dest);
			out.dest = kiln_xstrdup(v);
		} else if (kiln_str_eq(k, "name") || kiln_str_eq(k, "names")) {
			_cleanup_strv_ struct kiln_strv names = KILN_STRV_INIT;
			split_csv(v, &names);
			for (size_t n = 0; n < names.n; n++)
				if (*names.v[n])
					kiln_strv_push(&out.names, names.v[n]);
		} else if (kiln_str_eq(k, "push")) {
			r = parse_bool(spec, k, v, &out.push, err);
		} else if (kiln_str_eq(k, "tar")) {
			r = parse_bool(spec, k, v, &out.tar, err);
		} else if (kiln_str_eq(k, "force-compression")) {
			r = parse_bool(spec, k, v, &out.force_compression, err);
		} else if (kiln_str_eq(k, "oci-mediatypes")) {
			r = parse_bool(spec, k, v, &out.oci_mediatypes, err);
			have_oci = true;
		} else if (kiln_str_eq(k, "rewrite-timestamp")) {
			r = parse_bool(spec, k, v, &out.rewrite_timestamp, err);
		} else if (kiln_str_eq(k, "registry.insecure")) {
			r = parse_bool(spec, k, v, &out.insecure, err);
		} else if (kiln_str_eq(k, "compression")) {
			if (exp_compression_parse(v, &out.compression) < 0)
				r = kiln_err_invalid(
				        err,
				        "--output %s: compression must be gzip, zstd or "
				        "uncompressed",
				        spec);
		} else if (kiln_str_eq(k, "compression-level")) {
			uint64_t n;
			if (kiln_parse_u64(v, &n) < 0 || n > 22)
				r = kiln_err_invalid(
				        err, "--output %s: compression-level takes 0 to 22", spec);
			else
				out.compression_level = (int)n;
		} else if (kiln_str_eq(k, "store") || kiln_str_eq(k, "unpack")) {
			/* BuildKit's image exporter keys that mean nothing without containerd */
		} else {
			r = kiln_err_invalid(err, "--output %s: unknown key %s", spec, k);
		}
	}
	if (r >= 0 && !have_type)
		r = kiln_err_invalid(err, "--output %s: type= is required", spec);
	if (r >= 0 &&
	    (out.type == CMD_OUTPUT_LOCAL || out.type == CMD_OUTPUT_TAR ||
	     out.type == CMD_OUTPUT_OCI || out.type == CMD_OUTPUT_DOCKER) &&
	    (!out.dest || !*out.dest))
		r = kiln_err_invalid(err, "--output %s: dest= is required", spec);
	if (r >= 0 && out.type == CMD_OUTPUT_OCI && !out.tar && kiln_str_eq(out.dest, "-"))
		r = kiln_err_invalid(err, "--output %s: tar=false needs a directory", spec);
	if (r < 0) {
		free(out.dest);
		kiln_strv_release(&out.names);
		return r;
	}
	/* BuildKit's docker exporter writes Docker media types unless told otherwise. */
	if (out.type == CMD_OUTPUT_DOCKER && !have_oci)
		out.oci_mediatypes = false;
	if (out.type == CMD_OUTPUT_REGISTRY)
		out.push = true;
	o->v = kiln_xreallocarray(o->v, o->n + 1, sizeof(*o->v));
	o->v[o->n++] = out;
	return 0;
}

int
cmd_outputs_finish(struct cmd_outputs *o, char *const *tags, size_t ntags, bool push,
                   bool need_image, struct kiln_err *err)
{
	bool have_image = false;
	for (size_t i = 0; i < o->n; i++)
		have_image = have_image || is_image(o->v[i].type);
	if (push) {
		/* --push: the image output pushes; without one, type=registry */
		bool set = false;
		for (size_t i = 0; i < o->n; i++)
			if (o->v[i].type == CMD_OUTPUT_IMAGE || o->v[i].type == CMD_OUTPUT_REGISTRY)
				set = o->v[i].push = true;
		if (!set) {
			int r = cmd_outputs_parse(o, "type=registry", err);
			if (r < 0)
				return r;
			have_image = true;
		}
	}
	if (!have_image && (o->n == 0 || need_image)) {
		int r = cmd_outputs_parse(o, "type=image", err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < o->n; i++) {
		struct cmd_output *out = &o->v[i];
		if (is_image(out->type) && !out->names.n)
			for (size_t k = 0; k < ntags; k++)
				kiln_strv_push(&out->names, tags[k]);
		if (out->push && !out->names.n)
			return kiln_err_invalid(err,
			                        "--output type=%s: pushing needs a name (-t or "
			                        "name=)",
			                        type_names[out->type]);
		if (out->compression == EXP_COMPRESSION_ZSTD && !out->oci_mediatypes) {
			fprintf(stderr, "kiln: warning: zstd compression needs OCI media types; "
			                "oci-mediatypes=true\n");
			out->oci_mediatypes = true;
		}
	}
	return 0;
}

void
cmd_outputs_release(struct cmd_outputs *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->v[i].dest);
		kiln_strv_release(&o->v[i].names);
	}
	free(o->v);
	*o = (struct cmd_outputs)CMD_OUTPUTS_INIT;
}

void
cmd_export_result_release(struct cmd_export_result *res)
{
	kiln_strv_release(&res->names);
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void say(const struct cmd_export_ctx *c, const char *fmt, ...) KILN_PRINTF(2, 3);
static void
say(const struct cmd_export_ctx *c, const char *fmt, ...)
{
	if (!c->progress)
		return;
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *line = NULL;
	if (vasprintf(&line, fmt, ap) >= 0)
		progress_export_logf(c->progress, "%s", line);
	va_end(ap);
}

static int
push_names(const struct cmd_output *out, const struct cmd_export_ctx *c, const char *digest,
           struct kiln_err *err)
{
	for (size_t i = 0; i < out->names.n; i++) {
		struct reg_ref ref = REG_REF_INIT;
		struct reg_client *cl = NULL;
		char pushed[KILN_DIGEST_HEX_LEN + 1];
		struct reg_client_opts co = REG_CLIENT_OPTS_INIT;
		co.certs_d = getenv("KILN_CERTS_D");
		co.insecure = out->insecure;
		int r = reg_ref_parse_normalized(out->names.v[i], &ref, err);
		if (r >= 0) {
			reg_ref_default_tag(&ref);
			say(c, "pushing %s", out->names.v[i]);
			r = reg_client_new(ref.domain, &co, &cl, err);
		}
		if (r >= 0)
			r = reg_push(cl, c->rs, digest, &ref, pushed, err);
		reg_client_free(cl);
		reg_ref_release(&ref);
		if (r < 0)
			return kiln_err_wrap(err, "push %s", out->names.v[i]);
	}
	return 0;
}

static void
archive_write_freep(struct archive **a)
{
	if (*a)
		archive_write_free(*a);
}
static void
archive_read_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}
static void
archive_entry_freep(struct archive_entry **e)
{
	if (*e)
		archive_entry_free(*e);
}

/* A directory tree as a tar (numeric owners), entries relative to `dir`. */
static int
tar_dir(const char *dir, const char *dest, struct kiln_err *err)
{
	_cleanup_(kiln_output_release) struct kiln_output o = KILN_OUTPUT_INIT;
	if (kiln_output_open(&o, dest, err) < 0)
		return -err->code;
	_cleanup_(archive_write_freep) struct archive *w = archive_write_new();
	_cleanup_(archive_read_freep) struct archive *rd = archive_read_disk_new();
	archive_write_set_format_pax_restricted(w);
	archive_write_set_bytes_in_last_block(w, 1);
	archive_read_disk_set_symlink_physical(rd);
	int r = 0;
	const char *what = "open";
	struct archive *bad = w;
	if (archive_write_open_fd(w, o.fd) != ARCHIVE_OK)
		goto fail;
	bad = rd;
	if (archive_read_disk_open(rd, dir) != ARCHIVE_OK)
		goto fail;
	size_t plen = strlen(dir);
	for (;;) {
		_cleanup_(archive_entry_freep) struct archive_entry *e = archive_entry_new();
		int ar = archive_read_next_header2(rd, e);
		if (ar == ARCHIVE_EOF)
			break;
		bad = rd;
		what = "read";
		if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN)
			goto fail;
		archive_read_disk_descend(rd);
		const char *p = archive_entry_pathname(e);
		const char *rel = strlen(p) > plen ? p + plen + 1 : "";
		if (!*rel)
			continue; /* the top directory itself */
		_cleanup_free_ char *name = kiln_xstrdup(rel);
		archive_entry_set_pathname(e, name);
		archive_entry_set_uname(e, NULL);
		archive_entry_set_gname(e, NULL);
		bad = w;
		what = "write";
		if (archive_write_header(w, e) != ARCHIVE_OK)
			goto fail;
		if (archive_entry_filetype(e) != AE_IFREG || archive_entry_size(e) == 0)
			continue;
		_cleanup_close_ int in = open(archive_entry_sourcepath(e), O_RDONLY | O_CLOEXEC);
		if (in < 0) {
			r = kiln_err_set(err, errno, "open `%s`", archive_entry_sourcepath(e));
			goto out;
		}
		char buf[65536];
		ssize_t n;
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (archive_write_data(w, buf, (size_t)n) < 0)
				goto fail;
	}
	bad = w;
	what = "finish";
	if (archive_write_close(w) != ARCHIVE_OK)
		goto fail;
	return kiln_output_commit(&o, true, err);
fail:
	r = kiln_err_set(err, archive_errno(bad) > 0 ? archive_errno(bad) : EIO, "%s tar: %s", what,
	                 archive_error_string(bad) ? archive_error_string(bad) : "error");
out:
	return r;
}

static int
export_tar(const struct cmd_export_ctx *c, const char *dest, struct kiln_err *err)
{
	/* The files as type=local writes them, then one tar of them; the scratch copy is in
	 * the kiln root so a killed build leaves it where a prune finds it. */
	_cleanup_free_ char *dir = kiln_xasprintf("%s/tmp", cmd_root());
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return kiln_err_set(err, errno, "mkdir `%s`", dir);
	_cleanup_free_ char *tmp = kiln_xasprintf("%s/tar-out-XXXXXX", dir);
	if (!mkdtemp(tmp))
		return kiln_err_set(err, errno, "mkdtemp `%s`", tmp);
	int r = ops_export_local(c->ops, c->top, tmp, err);
	if (r >= 0)
		r = tar_dir(tmp, dest, err);
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		kiln_rm_rf_at(dfd, strrchr(tmp, '/') + 1);
	return r;
}

void
cmd_output_layer_opts(const struct cmd_output *out, int64_t source_date_epoch,
                      struct exp_layer_opts *lo)
{
	*lo = (struct exp_layer_opts)EXP_LAYER_OPTS_INIT;
	lo->source_date_epoch = source_date_epoch;
	lo->rewrite_timestamp = out->rewrite_timestamp && source_date_epoch >= 0;
	lo->compression = out->compression;
	lo->compression_level = out->compression_level;
}

const struct cmd_output *
cmd_outputs_first_image(const struct cmd_outputs *o)
{
	for (size_t i = 0; i < o->n; i++)
		if (o->v[i].type != CMD_OUTPUT_LOCAL && o->v[i].type != CMD_OUTPUT_TAR)
			return &o->v[i];
	return NULL;
}

static int
export_image(const struct cmd_output *out, const struct cmd_export_ctx *c, struct exp_image *img,
             struct kiln_err *err)
{
	double t0 = now_s();
	struct exp_layer_opts lo;
	cmd_output_layer_opts(out, c->source_date_epoch, &lo);
	struct exp_layer *layers = NULL;
	size_t n = 0;
	int r = exp_chain_layers(c->ss, c->top, c->stop, c->rs, &lo, &layers, &n, err);
	if (r < 0)
		return kiln_err_wrap(err, "export layers");
	size_t fresh = 0;
	int64_t reused = 0;
	for (size_t i = 0; i < n; i++) {
		fresh += !layers[i].cached;
		reused += layers[i].reused;
	}
	char note[64] = "";
	if (reused)
		snprintf(note, sizeof(note), ", %.1f MB reused", (double)reused / 1e6);
	say(c, "exporting layers (%s, %zu new of %zu%s) %.3fs",
	    exp_compression_name(out->compression), fresh, n, note, now_s() - t0);
	bool store_names = out->type == CMD_OUTPUT_IMAGE || out->type == CMD_OUTPUT_REGISTRY;
	struct exp_image_opts io = EXP_IMAGE_OPTS_INIT;
	io.stage_config = c->stage_config;
	io.layers = layers;
	io.nlayers = n;
	io.names = store_names ? (const char *const *)out->names.v : NULL;
	io.nnames = store_names ? out->names.n : 0;
	io.source_date_epoch = c->created;
	io.oci_mediatypes = out->oci_mediatypes;
	io.force_compression = out->force_compression;
	io.compression = out->compression;
	io.compression_level = out->compression_level;
	r = exp_image_commit(c->rs, &io, img, err);
	exp_layers_free(layers, n);
	if (r < 0)
		return kiln_err_wrap(err, "export image");
	say(c, "writing image %s", img->config_digest);
	say(c, "manifest %s", img->manifest_digest);
	for (size_t i = 0; store_names && i < out->names.n; i++)
		say(c, "naming to %s", out->names.v[i]);
	return 0;
}

int
cmd_outputs_export(const struct cmd_outputs *o, const struct cmd_export_ctx *c,
                   struct cmd_export_result *res, struct kiln_err *err)
{
	for (size_t i = 0; i < o->n; i++) {
		const struct cmd_output *out = &o->v[i];
		int r = 0;
		if (out->type == CMD_OUTPUT_LOCAL) {
			say(c, "copying files to %s", out->dest);
			r = ops_export_local(c->ops, c->top, out->dest, err);
		} else if (out->type == CMD_OUTPUT_TAR) {
			say(c, "sending tarball to %s", out->dest);
			r = export_tar(c, out->dest, err);
		} else {
			struct exp_image img;
			r = export_image(out, c, &img, err);
			const char *name = out->names.n ? out->names.v[0] : NULL;
			if (r >= 0 && out->push)
				r = push_names(out, c, img.manifest_digest, err);
			if (r >= 0 && out->type == CMD_OUTPUT_OCI && out->tar) {
				say(c, "sending OCI archive to %s", out->dest);
				r = reg_archive_save_image(c->rs, img.manifest_digest, name,
				                           REG_ARCHIVE_OCI, out->dest, err);
			} else if (r >= 0 && out->type == CMD_OUTPUT_OCI) {
				say(c, "writing OCI layout %s", out->dest);
				for (size_t k = 0; r >= 0 && k < (out->names.n ? out->names.n : 1);
				     k++)
					r = reg_layout_add_image(
					        out->dest, c->rs, img.manifest_digest,
					        out->names.n ? out->names.v[k] : NULL, err);
			} else if (r >= 0 && out->type == CMD_OUTPUT_DOCKER) {
				say(c, "sending docker archive to %s", out->dest);
				r = reg_archive_save_image(c->rs, img.manifest_digest, name,
				                           REG_ARCHIVE_DOCKER, out->dest, err);
			}
			if (r >= 0 && !res->have_image) {
				res->have_image = true;
				res->img = img;
				res->manifest_media_type = out->oci_mediatypes
				                                   ? REG_MT_OCI_MANIFEST
				                                   : REG_MT_DOCKER_MANIFEST;
				for (size_t k = 0; k < out->names.n; k++)
					kiln_strv_push(&res->names, out->names.v[k]);
			}
		}
		if (r < 0)
			return kiln_err_wrap(err, "output type=%s", type_names[out->type]);
	}
	return 0;
}

int
cmd_outputs_metadata(const struct cmd_export_result *res, const char *path, struct kiln_err *err)
{
	_cleanup_json_ json_t *md = json_object();
	if (res->have_image) {
		json_object_set_new(md, "containerimage.digest",
		                    json_string(res->img.manifest_digest));
		json_object_set_new(md, "containerimage.config.digest",
		                    json_string(res->img.config_digest));
		json_object_set_new(md, "containerimage.descriptor",
		                    json_pack("{s:s,s:s,s:I}", "mediaType",
		                              res->manifest_media_type, "digest",
		                              res->img.manifest_digest, "size",
		                              (json_int_t)res->img.manifest_size));
		if (res->names.n) {
			struct kiln_buf b = KILN_BUF_INIT;
			for (size_t i = 0; i < res->names.n; i++) {
				if (i)
					kiln_buf_addch(&b, ',');
				kiln_buf_addstr(&b, res->names.v[i]);
			}
			json_object_set_new(md, "image.name", json_string(b.buf));
			kiln_buf_release(&b);
		}
	}
	_cleanup_free_ char *text = json_dumps(md, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text)
		return kiln_err_set(err, ENOMEM, "metadata JSON");
	return kiln_write_file_atomic_at(AT_FDCWD, path, text, strlen(text), 0644, err);
}
