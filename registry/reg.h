/*
 * kiln registry: OCI content — the content store, image references, manifests, indexes
 * and configs, the OCI image layout and docker archives, and the registry HTTP client.
 *
 * Calling sequence: see each section below.
 */
#ifndef KILN_REG_H
#define KILN_REG_H

#include "base/base.h"

#include <jansson.h>

/* ==== content store, references, manifests, layouts (owned by the store work) ==== */

/*
 * Calling sequence:
 *
 *	struct reg_store *st;
 *	reg_store_open(cmd_root(), &st, &err);           // creates ROOT/content/... on demand
 *	struct reg_ref ref;
 *	reg_ref_parse_normalized("busybox", &ref, &err); // docker.io/library/busybox
 *	reg_ref_default_tag(&ref);                       // ...:latest
 *	struct reg_ingest *in;
 *	reg_ingest_begin(st, want_digest, want_size, &in, &err);
 *	reg_ingest_write(in, data, len, &err);  ...      // size checked while streaming
 *	reg_ingest_commit(in, got_digest, &err);         // digest checked, fsync, rename
 *	reg_name_set(st, canonical_name, manifest_digest, &err);
 *	reg_image_open(st, "busybox", NULL, &img, &err); // name -> manifest (host platform) ->
 *config reg_store_free(st);
 *
 * Store layout under the root (shared with other modules, which use their own folders):
 *	content/blobs/sha256/<hex>   immutable blobs, only ever renamed into place whole
 *	content/tmp/ingest-*         temp files of running ingests, each flock()ed by its writer;
 *	                             an unlocked one belongs to a dead process and is removed
 *	content/names.json           name -> manifest digest, replaced by write-temp+fsync+rename
 *	content/names.lock           flock()ed around read-modify-write of names.json
 * Several processes may share one store. Blobs are never deleted by rmi (a later prune does).
 */

/* ---- the store ---- */

struct reg_store;
/* Open (creating as needed) the store below `root`, removing temp files left by dead
 * processes. Returns 0 or -errno. */
int reg_store_open(const char *root, struct reg_store **ret, struct kiln_err *err);
void reg_store_free(struct reg_store *st);
const char *reg_store_root(const struct reg_store *st);

/* ---- blobs (digests are validated before they become paths) ---- */

bool reg_blob_exists(struct reg_store *st, const char *digest);
/* Size of a stored blob, or -errno (-ENOENT when absent, -EINVAL for a bad digest). */
int64_t reg_blob_size(struct reg_store *st, const char *digest, struct kiln_err *err);
/* Open a blob read-only; returns an fd or -errno. */
int reg_blob_open(struct reg_store *st, const char *digest, struct kiln_err *err);
/* Read a whole blob into `out` (appended); fails with -EFBIG above `max` bytes. */
int reg_blob_read(struct reg_store *st, const char *digest, size_t max, struct kiln_buf *out,
                  struct kiln_err *err);
/* Store bytes; `want` (may be NULL) is the digest they must have. Writes the digest into
 * ret_digest (may be NULL). */
int reg_blob_put(struct reg_store *st, const void *data, size_t len, const char *want,
                 char ret_digest[KILN_DIGEST_HEX_LEN + 1], struct kiln_err *err);
/* Stream an fd to its end into the store, as reg_blob_put. */
int reg_blob_put_fd(struct reg_store *st, int fd, const char *want, int64_t want_size,
                    char ret_digest[KILN_DIGEST_HEX_LEN + 1], struct kiln_err *err);

/*
 * Streaming ingest. `want_digest` may be NULL (any content, e.g. a layer being built) and
 * `want_size` -1 (unknown). Writes past want_size fail at once; commit fails with
 * "digest mismatch" (or "size mismatch") when the content is not what was promised.
 * Commit and abort free the ingest; after any failure nothing is visible under the digest
 * and the temp file is gone. Until commit, the temp file is flock()ed by this process.
 */
struct reg_ingest;
int reg_ingest_begin(struct reg_store *st, const char *want_digest, int64_t want_size,
                     struct reg_ingest **ret, struct kiln_err *err);
int reg_ingest_write(struct reg_ingest *in, const void *data, size_t len, struct kiln_err *err);
int64_t reg_ingest_offset(const struct reg_ingest *in);
int reg_ingest_commit(struct reg_ingest *in, char ret_digest[KILN_DIGEST_HEX_LEN + 1],
                      struct kiln_err *err);
void reg_ingest_abort(struct reg_ingest *in);

/*
 * A layer written into the store: write tar entries to reg_layer_writer_archive(); the tar
 * is hashed (the diff_id) and gzip-compressed without timestamp into a blob ingest, so the
 * same entries give the same blob. _close finishes the tar and yields the diff_id; _commit
 * stores the blob and fills the descriptor (media type owned by it); _free aborts whatever
 * was not committed. Errors from writes land in the err given to _new.
 */
struct archive;
struct reg_layer_writer;
int reg_layer_writer_new(struct reg_store *st, struct reg_layer_writer **ret, struct kiln_err *err);
struct archive *reg_layer_writer_archive(struct reg_layer_writer *w);
/* The error for a failed libarchive call on the layer tar (or on `a`), naming `what`. */
int reg_layer_writer_fail(struct reg_layer_writer *w, const char *what);
int reg_layer_writer_fail_on(struct reg_layer_writer *w, struct archive *a, const char *what);
int reg_layer_writer_close(struct reg_layer_writer *w, char diff_id[KILN_DIGEST_HEX_LEN + 1]);
struct reg_descriptor;
int reg_layer_writer_commit(struct reg_layer_writer *w, struct reg_descriptor *layer);
void reg_layer_writer_free(struct reg_layer_writer *w);

/* ---- names: canonical reference strings -> manifest (or index) digests ---- */

struct reg_name {
	char *name; /* canonical, e.g. "docker.io/library/busybox:latest" */
	char digest[KILN_DIGEST_HEX_LEN + 1];
	int64_t updated; /* unix seconds when the name was last set */
};
/* Point `name` (a canonical reference with a tag) at `digest`, atomically under the lock. */
int reg_name_set(struct reg_store *st, const char *name, const char *digest, struct kiln_err *err);
/* -ENOENT (with a message) when the name is unknown. */
int reg_name_get(struct reg_store *st, const char *name, char digest[KILN_DIGEST_HEX_LEN + 1],
                 struct kiln_err *err);
/* -ENOENT when the name is unknown. The blobs stay. */
int reg_name_remove(struct reg_store *st, const char *name, struct kiln_err *err);
/* All names, sorted by name. Free with reg_names_free. */
int reg_name_list(struct reg_store *st, struct reg_name **ret, size_t *ret_n, struct kiln_err *err);
void reg_names_free(struct reg_name *v, size_t n);

/* ---- references, exactly as Docker's distribution/reference ---- */

struct reg_ref {
	char *domain; /* "docker.io", "localhost:5000", "[::1]:5000"; NULL only from reg_ref_parse
	               */
	char *path;   /* "library/busybox" */
	char *tag;    /* NULL when absent */
	char *digest; /* NULL when absent; any algorithm the grammar allows */
};
#define REG_REF_INIT                                                                               \
	{                                                                                          \
		0                                                                                  \
	}
#define REG_DEFAULT_DOMAIN "docker.io"
#define REG_NAME_MAX       255
/* Strict parse of `[domain/]path[:tag][@digest]` (reference.Parse): no defaults applied;
 * the first component counts as domain only when the grammar makes it one. */
int reg_ref_parse(const char *s, struct reg_ref *out, struct kiln_err *err);
/* reference.ParseNormalizedNamed: docker.io and library/ defaults, familiar input. */
int reg_ref_parse_normalized(const char *s, struct reg_ref *out, struct kiln_err *err);
/* Add tag "latest" when there is neither tag nor digest (reference.TagNameOnly). */
void reg_ref_default_tag(struct reg_ref *r);
void reg_ref_release(struct reg_ref *r);
/* "domain/path[:tag][@digest]"; the caller frees. */
char *reg_ref_string(const struct reg_ref *r);
/* "domain/path"; the caller frees. */
char *reg_ref_name(const struct reg_ref *r);
/* Short form for people: "busybox:latest", "user/app", "localhost:5000/x". Caller frees. */
char *reg_ref_familiar(const struct reg_ref *r);
/* Tag and digest grammar checks, for callers that get them separately. */
bool reg_ref_tag_valid(const char *tag);
bool reg_ref_digest_valid(const char *digest);

/* ---- media types, limits, descriptors ---- */

#define REG_MT_OCI_MANIFEST      "application/vnd.oci.image.manifest.v1+json"
#define REG_MT_OCI_INDEX         "application/vnd.oci.image.index.v1+json"
#define REG_MT_OCI_CONFIG        "application/vnd.oci.image.config.v1+json"
#define REG_MT_OCI_LAYER         "application/vnd.oci.image.layer.v1.tar"
#define REG_MT_OCI_LAYER_GZIP    "application/vnd.oci.image.layer.v1.tar+gzip"
#define REG_MT_OCI_LAYER_ZSTD    "application/vnd.oci.image.layer.v1.tar+zstd"
#define REG_MT_DOCKER_MANIFEST   "application/vnd.docker.distribution.manifest.v2+json"
#define REG_MT_DOCKER_LIST       "application/vnd.docker.distribution.manifest.list.v2+json"
#define REG_MT_DOCKER_CONFIG     "application/vnd.docker.container.image.v1+json"
#define REG_MT_DOCKER_LAYER      "application/vnd.docker.image.rootfs.diff.tar"
#define REG_MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
/* The Accept header value a client sends for manifests (all four kinds). */
#define REG_MANIFEST_ACCEPT                                                                        \
	REG_MT_OCI_INDEX ", " REG_MT_OCI_MANIFEST ", " REG_MT_DOCKER_LIST                          \
	                 ", " REG_MT_DOCKER_MANIFEST

enum reg_kind {
	REG_KIND_UNKNOWN = 0,
	REG_KIND_OCI_MANIFEST,
	REG_KIND_OCI_INDEX,
	REG_KIND_DOCKER_MANIFEST,
	REG_KIND_DOCKER_LIST,
};
static inline bool
reg_kind_is_index(enum reg_kind k)
{
	return k == REG_KIND_OCI_INDEX || k == REG_KIND_DOCKER_LIST;
}
const char *reg_kind_media_type(enum reg_kind k);

/* Limits on untrusted documents. */
struct reg_limits {
	size_t max_manifest_bytes; /* manifests, indexes and configs */
	size_t max_index_entries;
	size_t max_json_depth;
	size_t max_layers;
};
#define REG_LIMITS_INIT                                                                            \
	{                                                                                          \
		.max_manifest_bytes = 4 << 20, .max_index_entries = 1000, .max_json_depth = 64,    \
		.max_layers = 127                                                                  \
	}

/*
 * What a manifest document is. `content_type` is the HTTP Content-Type (parameters such as
 * "; charset=utf-8" ignored) or NULL. The kind comes from the mediaType field; without one,
 * from the shape (layers -> manifest, manifests -> index) where that is unambiguous. Rejects
 * (-EINVAL) a document with both `layers` and `manifests`, a mediaType that disagrees with
 * its shape, a Content-Type that disagrees with the mediaType (a generic
 * application/json or octet-stream Content-Type is accepted), oversized or too deep JSON.
 * `lim` NULL means REG_LIMITS_INIT.
 */
int reg_media_detect(const void *data, size_t len, const char *content_type,
                     const struct reg_limits *lim, enum reg_kind *ret, struct kiln_err *err);

struct reg_platform {
	char *os;
	char *architecture;
	char *variant;    /* NULL when absent */
	char *os_version; /* NULL when absent */
};
#define REG_PLATFORM_INIT                                                                          \
	{                                                                                          \
		0                                                                                  \
	}
/* "os/arch[/variant]", e.g. "linux/arm64/v8"; architecture aliases normalised (x86_64 ->
 * amd64, aarch64 -> arm64). */
int reg_platform_parse(const char *s, struct reg_platform *out, struct kiln_err *err);
/* The platform of this machine (linux/amd64 on x86-64). */
void reg_platform_host(struct reg_platform *out);
/* "os/arch[/variant]"; the caller frees. */
char *reg_platform_string(const struct reg_platform *p);
/* Does `have` run images built for `want` (variant defaults as containerd: arm64 -> v8)? */
bool reg_platform_match(const struct reg_platform *want, const struct reg_platform *have);
void reg_platform_release(struct reg_platform *p);

struct reg_descriptor {
	char *media_type;
	char digest[KILN_DIGEST_HEX_LEN + 1];
	int64_t size;
	bool has_platform;
	struct reg_platform platform; /* index entries */
	json_t *annotations;          /* owned object, or NULL */
};

/* An OCI image manifest or Docker schema2 manifest. */
struct reg_manifest {
	enum reg_kind kind;
	struct reg_descriptor config;
	struct reg_descriptor *layers;
	size_t n_layers;
	json_t *annotations; /* owned object, or NULL */
};
/* An OCI index or Docker manifest list. */
struct reg_index {
	enum reg_kind kind;
	struct reg_descriptor *manifests;
	size_t n_manifests;
	json_t *annotations;
};

/* Parse with limits (lim NULL = REG_LIMITS_INIT); descriptor digests are validated. On
 * failure `out` is left empty. */
int reg_manifest_parse(const void *data, size_t len, const struct reg_limits *lim,
                       struct reg_manifest *out, struct kiln_err *err);
/* Serialise (appends to out); the kind decides the mediaType written. */
int reg_manifest_write(const struct reg_manifest *m, struct kiln_buf *out, struct kiln_err *err);
void reg_manifest_release(struct reg_manifest *m);
int reg_index_parse(const void *data, size_t len, const struct reg_limits *lim,
                    struct reg_index *out, struct kiln_err *err);
int reg_index_write(const struct reg_index *idx, struct kiln_buf *out, struct kiln_err *err);
void reg_index_release(struct reg_index *idx);
/* Pick the entry for `want` (NULL = host). Returns its position or -ENOENT with the list of
 * platforms on offer in the message. */
int reg_index_select(const struct reg_index *idx, const struct reg_platform *want,
                     struct kiln_err *err);
void reg_descriptor_release(struct reg_descriptor *d);
void reg_descriptor_copy(struct reg_descriptor *dst, const struct reg_descriptor *src);

/* An image config (OCI and Docker share the format). Unknown fields survive a round trip. */
struct reg_config {
	char *created; /* RFC 3339, or NULL */
	char *os;
	char *architecture;
	char *variant;
	struct kiln_strv diff_ids;
	json_t *config;  /* the container config object ("Env", "Cmd", ...), owned, or NULL */
	json_t *history; /* array, owned, or NULL */
	json_t *raw;     /* the whole document as parsed, owned; NULL for a config built here */
};
int reg_config_parse(const void *data, size_t len, const struct reg_limits *lim,
                     struct reg_config *out, struct kiln_err *err);
int reg_config_write(const struct reg_config *c, struct kiln_buf *out, struct kiln_err *err);
void reg_config_release(struct reg_config *c);

/* ---- images in the store ---- */

struct reg_image {
	char *name; /* canonical name it was found by, or NULL when given a digest */
	char top_digest[KILN_DIGEST_HEX_LEN + 1];      /* what the name points to */
	char manifest_digest[KILN_DIGEST_HEX_LEN + 1]; /* the platform's manifest */
	struct reg_manifest manifest;
	struct kiln_buf manifest_raw;
	struct reg_config config;
	struct kiln_buf config_raw;
};
#define REG_IMAGE_INIT                                                                             \
	{                                                                                          \
		.manifest_raw = KILN_BUF_INIT, .config_raw = KILN_BUF_INIT                         \
	}
/* Resolve `ref` (familiar or canonical name, name@digest, or a bare "sha256:..." manifest
 * digest) to a manifest for `platform` (NULL = host) and its config, all read from the
 * store. -ENOENT when the image is not in the store. */
int reg_image_open(struct reg_store *st, const char *ref, const struct reg_platform *platform,
                   struct reg_image *out, struct kiln_err *err);
void reg_image_release(struct reg_image *img);
/* Store a manifest or index document (checked with reg_media_detect) under its digest. */
int reg_store_put_manifest(struct reg_store *st, const void *data, size_t len,
                           char ret_digest[KILN_DIGEST_HEX_LEN + 1], struct kiln_err *err);

/* ---- building images and moving them in and out (layout.c, archive.c, import.c) ---- */

struct reg_import_opts {
	const struct reg_platform *platform; /* NULL = host */
	int64_t clamp_mtime;                 /* -1 keeps mtimes; else newer ones become this */
	int64_t created;                     /* config "created", unix seconds; -1 = now */
	const char *created_by;              /* history entry text */
};
#define REG_IMPORT_OPTS_INIT                                                                       \
	{                                                                                          \
		.clamp_mtime = -1, .created = -1, .created_by = "kiln import"                      \
	}
/* Make a single-layer image from a directory or a tar file (any compression libarchive
 * reads): a deterministic tar (sorted, uid/gid/mode kept), gzip-compressed, and a config
 * with the layer's diff_id. Writes the manifest digest. The image has no name yet. */
int reg_import_rootfs(struct reg_store *st, const char *src, const struct reg_import_opts *o,
                      char ret_manifest[KILN_DIGEST_HEX_LEN + 1], struct kiln_err *err);

/* OCI image layout directories (image-layout spec 1.0.0). */
/* Create `dir` (if needed) with oci-layout, blobs/sha256 and an empty index.json. */
int reg_layout_init(const char *dir, struct kiln_err *err);
/* Copy a blob from the store into the layout (no-op if there). */
int reg_layout_put_blob(const char *dir, struct reg_store *st, const char *digest,
                        struct kiln_err *err);
int reg_layout_read_index(const char *dir, struct reg_index *out, struct kiln_err *err);
int reg_layout_write_index(const char *dir, const struct reg_index *idx, struct kiln_err *err);
/* Copy the image `top_digest` (manifest or index, with everything it references that is in
 * the store) into the layout and add it to index.json with ref name `ref_name` (may be
 * NULL; "org.opencontainers.image.ref.name" annotation). */
int reg_layout_add_image(const char *dir, struct reg_store *st, const char *top_digest,
                         const char *ref_name, struct kiln_err *err);

/* One image found in a loaded archive or layout. */
struct reg_loaded {
	char *name; /* canonical name, or NULL when the archive gives none */
	char digest[KILN_DIGEST_HEX_LEN + 1];
};
enum reg_archive_format {
	REG_ARCHIVE_OCI = 1, /* OCI layout (as a tar, or a directory for load) */
	REG_ARCHIVE_DOCKER,  /* `docker save` archive: manifest.json, repositories */
};
/* Load an OCI layout directory, an OCI layout tar, or a docker-save tar (detected) into the
 * store. Names are not set; the caller decides. Free the result with reg_loaded_free.
 * Every regular file of a tar is ingested as it streams past (blobs/sha256/<hex> checked
 * against its name); files the archive turns out not to need stay until a prune. */
int reg_archive_load(struct reg_store *st, const char *path, struct reg_loaded **ret, size_t *ret_n,
                     struct kiln_err *err);
void reg_loaded_free(struct reg_loaded *v, size_t n);
/* Write the image `ref` names as a tar file at `path` (replaced atomically). OCI: the
 * whole image (an index with the platforms the store has); docker: the host platform's
 * manifest, layers uncompressed. The name `ref` resolved to is recorded in the archive. */
int reg_archive_save(struct reg_store *st, const char *ref, enum reg_archive_format fmt,
                     const char *path, struct kiln_err *err);
/* The same for the image manifest `manifest_digest` (a manifest, or an index for OCI),
 * recorded under `name` (normalized; NULL: no name), for kiln build's outputs: still
 * renamed into place whole, but not fsync'd (an output like `docker save`'s, whose
 * durability is the caller's business; the store's blobs are). `path` "-" writes to
 * standard output. */
int reg_archive_save_image(struct reg_store *st, const char *manifest_digest, const char *name,
                           enum reg_archive_format fmt, const char *path, struct kiln_err *err);

/* ==== registry client: pull, push, auth (owned by the client work) ==== */

/*
 * Calling sequence:
 *
 *	struct reg_client_opts o = REG_CLIENT_OPTS_INIT;  // o.insecure for --insecure-registry
 *	struct reg_client *c;
 *	reg_client_new(ref.domain, &o, &c, &err);         // credentials from docker config.json
 *	reg_pull(c, st, &ref, platform, digest, &err);    // manifest(s) + blobs into the store
 *	reg_push(c, st, "app:1", &dest_ref, digest, &err);
 *	reg_client_free(c);
 *
 * The client speaks the Distribution API v2 over libcurl: HTTPS with the system CAs plus
 * the *.crt files in CERTS_D/HOST[:PORT] (Docker's /etc/docker/certs.d; a NAME.cert with
 * NAME.key there is the client certificate); plain HTTP only for loopback
 * hosts or `insecure` ones, and only after HTTPS failed. Requests are retried with
 * exponential backoff on 5xx, 429 and dropped connections; blob downloads resume with
 * Range. Auth: Basic, and Bearer tokens (realm/service/scope) cached per scope until they
 * expire. A username/password is never sent over plain HTTP, and nothing that
 * authenticates is sent to another host than the registry (a redirect to a storage CDN
 * goes bare). A client may be used from several threads at once.
 */

/* ---- pure helpers (unit-tested) ---- */

/* One parsed WWW-Authenticate challenge. Unset parameters are NULL. */
struct reg_auth_challenge {
	char *scheme; /* "Bearer" or "Basic" as sent (compare case-insensitively) */
	char *realm;
	char *service;
	char *scope;
	char *error; /* e.g. "insufficient_scope" */
};
/* Parse the first challenge of a WWW-Authenticate header (RFC 7235 auth-params, quoted
 * strings with backslash escapes). -EINVAL on a malformed header; `out` is left empty. */
int reg_auth_challenge_parse(const char *header, struct reg_auth_challenge *out,
                             struct kiln_err *err);
void reg_auth_challenge_release(struct reg_auth_challenge *c);
/* "Basic base64(user:pass)"; the caller frees. */
char *reg_auth_basic_header(const char *user, const char *pass);
/* Parse a token server's JSON answer ("token" or "access_token", "expires_in" defaulting to
 * 60 s). Writes the token (caller frees) and its lifetime in seconds. */
int reg_auth_token_parse(const char *json, size_t len, char **ret_token, int64_t *ret_expires_in,
                         struct kiln_err *err);

/* Docker's config.json: "$DOCKER_CONFIG/config.json", else "~/.docker/config.json". The
 * caller frees. */
char *reg_dockercfg_default_path(void);
/* The key Docker uses in "auths" for a registry host ("https://index.docker.io/v1/" for
 * Docker Hub, the host itself otherwise); the caller frees. */
char *reg_dockercfg_key(const char *host);
/* Credentials for `host` from the base64 "auth" field (or "username"/"password"). Returns 1
 * and fills ret_user and ret_pass (caller frees), 0 when the file or the entry is absent,
 * -errno when the file is unreadable or malformed. Keys with a scheme or path
 * ("https://host/v1/") match their host. */
int reg_dockercfg_get(const char *path, const char *host, char **ret_user, char **ret_pass,
                      struct kiln_err *err);
/* Store credentials for `host`, keeping every other field of the file; the file is
 * replaced atomically with mode 0600 (its directory is created 0700). */
int reg_dockercfg_set(const char *path, const char *host, const char *user, const char *pass,
                      struct kiln_err *err);
/* Remove the entry of `host` (and aliases of it); -ENOENT with a message when absent. */
int reg_dockercfg_remove(const char *path, const char *host, struct kiln_err *err);

/* Delay before retry number `attempt` (1 = first retry): base * 2^(attempt-1), at most cap. */
unsigned reg_backoff_ms(unsigned attempt, unsigned base_ms, unsigned cap_ms);
/* Is an HTTP status worth retrying (5xx, 429)? */
bool reg_http_status_retryable(long status);
/* "SCHEME://HOST/v2/REPO/KIND/REF" (KIND "manifests", "blobs", or "blobs/uploads/" with an
 * empty REF); repo and ref are checked against the reference grammar. The caller frees. */
char *reg_url_v2(const char *scheme, const char *host, const char *repo, const char *kind,
                 const char *ref);
/* Resolve a Location header (absolute, or relative to `base`); the caller frees; NULL when
 * it is not an http(s) URL. */
char *reg_url_resolve(const char *base, const char *location);
/* Append "name=value" (value URL-encoded) with '?' or '&' as fits; the caller frees. */
char *reg_url_add_query(const char *url, const char *name, const char *value);
/* The Docker certs.d directory name of a URL's authority: "host" or "host:port" when the
 * URL gives a port. The caller frees; NULL for an unparsable URL. */
char *reg_url_certs_name(const char *url);
/* May a request to `url` carry the registry's credentials (Basic header, or a token)?
 * Only when it goes to the registry's own scheme, host and port; `user_secret` (a password
 * rather than a token) further needs https. */
bool reg_url_may_send_auth(const char *url, const char *registry_base, bool user_secret);
/* localhost, 127.0.0.0/8, ::1 (with or without a port, IPv6 in brackets). */
bool reg_host_is_loopback(const char *host);

/* ---- the client ---- */

struct reg_client_opts {
	bool insecure;             /* --insecure-registry: no TLS verification, HTTP fallback */
	const char *certs_d;       /* NULL = /etc/docker/certs.d */
	const char *docker_config; /* NULL = reg_dockercfg_default_path() */
	const char *username;      /* with password: use these instead of config.json */
	const char *password;
	unsigned max_attempts; /* tries per request */
	unsigned backoff_base_ms;
	unsigned backoff_cap_ms;
	unsigned parallel;  /* concurrent blob transfers */
	int64_t chunk_size; /* blobs larger than this are uploaded in PATCH chunks */
	long connect_timeout_s;
	long low_speed_time_s; /* abort (and retry) a transfer stalled this long */
};
#define REG_CLIENT_OPTS_INIT                                                                       \
	{                                                                                          \
		.max_attempts = 5, .backoff_base_ms = 200, .backoff_cap_ms = 5000, .parallel = 4,  \
		.chunk_size = 32 << 20, .connect_timeout_s = 15, .low_speed_time_s = 30            \
	}

struct reg_client;
/* A client for one registry host ("host[:port]" as in a reference; "docker.io" means
 * Docker Hub). Does no I/O yet. */
int reg_client_new(const char *host, const struct reg_client_opts *o, struct reg_client **ret,
                   struct kiln_err *err);
void reg_client_free(struct reg_client *c);
/* GET /v2/ and authenticate if the registry asks (what `kiln login` checks). -EACCES with
 * "unauthorized" and the host when the credentials are refused. */
int reg_client_ping(struct reg_client *c, struct kiln_err *err);

/* GET a manifest or index by tag or digest into `body`, checked with reg_media_detect
 * against the Content-Type and, for a digest reference, against the digest. Writes the
 * kind and the digest of the bytes. -ENOENT when the registry does not know it. */
int reg_client_get_manifest(struct reg_client *c, const char *repo, const char *ref,
                            struct kiln_buf *body, enum reg_kind *ret_kind,
                            char ret_digest[KILN_DIGEST_HEX_LEN + 1], struct kiln_err *err);
/* HEAD a manifest: writes the registry's Docker-Content-Digest, or "" when it sends none.
 * -ENOENT when the registry does not know it, -EOPNOTSUPP when it answers HEAD with another
 * client error (GET may still work). */
int reg_client_head_manifest(struct reg_client *c, const char *repo, const char *ref,
                             char ret_digest[KILN_DIGEST_HEX_LEN + 1], struct kiln_err *err);
/* Download a blob into the store, verified against its digest and size; resumes with Range
 * after a dropped connection. A blob already in the store is not fetched. */
int reg_client_fetch_blob(struct reg_client *c, struct reg_store *st, const char *repo,
                          const char *digest, int64_t size, struct kiln_err *err);
/* HEAD a blob: 1 when the registry has it, 0 when not. */
int reg_client_blob_exists(struct reg_client *c, const char *repo, const char *digest,
                           struct kiln_err *err);
/* Upload a blob from the store unless the registry has it; tries a cross-repository mount
 * from `mount_from` (a repository on the same registry, may be NULL) first. Returns 1 when
 * bytes were sent, 0 when skipped or mounted. */
int reg_client_push_blob(struct reg_client *c, struct reg_store *st, const char *repo,
                         const char *digest, const char *mount_from, struct kiln_err *err);
/* reg_client_push_blob for each of `digests` (no cross-repository mount), a few at once
 * (reg_client_opts.parallel); the first failure is returned. */
int reg_client_push_blobs(struct reg_client *c, struct reg_store *st, const char *repo,
                          char *const *digests, size_t n, struct kiln_err *err);
/* PUT a manifest or index under `ref` (a tag or its digest). */
int reg_client_put_manifest(struct reg_client *c, const char *repo, const char *ref,
                            const char *media_type, const void *data, size_t len,
                            struct kiln_err *err);

/* Pull `ref` (tag or digest) into the store: the top document, the manifest for `platform`
 * (NULL = host) when it is an index, its config and layers (in parallel). A tag is first
 * resolved with HEAD, and documents already in the store are not downloaded again. Names
 * the image by its canonical reference when it has a tag. Writes the top digest. */
int reg_pull(struct reg_client *c, struct reg_store *st, const struct reg_ref *ref,
             const struct reg_platform *platform, char ret_digest[KILN_DIGEST_HEX_LEN + 1],
             struct kiln_err *err);
/* Push the stored image `src` (anything reg_image_open takes) to `dest` (a reference on
 * this client's host; tag "latest" when it has none): blobs (in parallel, mounted from the
 * source repository when src names one on the same host), then the manifest (and the index
 * when src names an index whose manifests are all in the store). Writes the pushed top
 * digest. */
int reg_push(struct reg_client *c, struct reg_store *st, const char *src,
             const struct reg_ref *dest, char ret_digest[KILN_DIGEST_HEX_LEN + 1],
             struct kiln_err *err);

#endif
