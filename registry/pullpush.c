/* Pull and push whole images: documents in order, blobs of an image in parallel. */
#include "registry/client_internal.h"

#include <pthread.h>

/* ---- a small pool: the blobs of one image move concurrently ---- */

struct blob_job {
	const char *digest;
	int64_t size;
	int r;
	struct kiln_err err;
};

struct pool {
	struct reg_client *c;
	struct reg_store *st;
	const char *repo;
	const char *mount_from;
	bool push;
	struct blob_job *jobs;
	size_t n, next;
	bool failed;
	pthread_mutex_t lock;
};

static void *
pool_worker(void *arg)
{
	struct pool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		if (p->failed || p->next >= p->n) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		struct blob_job *j = &p->jobs[p->next++];
		pthread_mutex_unlock(&p->lock);
		if (p->push)
			j->r = reg_client_push_blob(p->c, p->st, p->repo, j->digest, p->mount_from,
			                            &j->err);
		else
			j->r = reg_client_fetch_blob(p->c, p->st, p->repo, j->digest, j->size,
			                             &j->err);
		if (j->r < 0) {
			pthread_mutex_lock(&p->lock);
			p->failed = true; /* let running transfers finish, start no new ones */
			pthread_mutex_unlock(&p->lock);
		}
	}
}

static int
pool_run(struct pool *p, struct kiln_err *err)
{
	unsigned nthreads = regc_opts(p->c)->parallel;
	if (nthreads > p->n)
		nthreads = p->n;
	pthread_mutex_init(&p->lock, NULL);
	pthread_t *th = kiln_xcalloc(nthreads ? nthreads : 1, sizeof(*th));
	unsigned started = 0;
	for (; started < nthreads; started++)
		if (pthread_create(&th[started], NULL, pool_worker, p) != 0)
			break;
	if (started == 0)
		pool_worker(p); /* no threads to be had: do it here */
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
	pthread_mutex_destroy(&p->lock);
	int r = 0;
	for (size_t i = 0; i < p->n; i++) {
		if (p->jobs[i].r < 0 && r == 0) {
			*err = p->jobs[i].err;
			p->jobs[i].err = (struct kiln_err)KILN_ERR_INIT;
			r = p->jobs[i].r;
		}
		kiln_err_release(&p->jobs[i].err);
	}
	return r;
}

static int
move_blobs(struct reg_client *c, struct reg_store *st, const char *repo, const char *mount_from,
           bool push, const struct reg_manifest *m, struct kiln_err *err)
{
	size_t n = m->n_layers + 1;
	_cleanup_free_ struct blob_job *jobs = kiln_xcalloc(n, sizeof(*jobs));
	size_t k = 0;
	/* Each blob once, even when an image repeats a layer. */
	for (size_t i = 0; i <= m->n_layers; i++) {
		const struct reg_descriptor *d = i < m->n_layers ? &m->layers[i] : &m->config;
		bool dup = false;
		for (size_t j = 0; j < k; j++)
			dup = dup || kiln_str_eq(jobs[j].digest, d->digest);
		if (!dup)
			jobs[k++] = (struct blob_job){.digest = d->digest, .size = d->size};
	}
	struct pool p = {.c = c,
	                 .st = st,
	                 .repo = repo,
	                 .mount_from = mount_from,
	                 .push = push,
	                 .jobs = jobs,
	                 .n = k};
	return pool_run(&p, err);
}

int
reg_client_push_blobs(struct reg_client *c, struct reg_store *st, const char *repo,
                      char *const *digests, size_t n, struct kiln_err *err)
{
	_cleanup_free_ struct blob_job *jobs = kiln_xcalloc(n ? n : 1, sizeof(*jobs));
	for (size_t i = 0; i < n; i++)
		jobs[i] = (struct blob_job){.digest = digests[i]};
	struct pool p = {.c = c, .st = st, .repo = repo, .push = true, .jobs = jobs, .n = n};
	return pool_run(&p, err);
}

/* ---- pull ---- */

/* A manifest or index by digest from the store when it is there, else from the registry. */
static int
get_document(struct reg_client *c, struct reg_store *st, const char *repo, const char *ref,
             struct kiln_buf *out, enum reg_kind *kind, char digest[KILN_DIGEST_HEX_LEN + 1],
             struct kiln_err *err)
{
	struct reg_limits lim = REG_LIMITS_INIT;
	if (kiln_digest_valid(ref) && reg_blob_exists(st, ref)) {
		struct kiln_err e = KILN_ERR_INIT;
		if (reg_blob_read(st, ref, lim.max_manifest_bytes, out, &e) >= 0 &&
		    reg_media_detect(out->buf, out->len, NULL, &lim, kind, &e) >= 0) {
			memcpy(digest, ref, KILN_DIGEST_HEX_LEN + 1);
			return 0;
		}
		/* Not a document we can use: fetch it as if it were absent. */
		kiln_err_release(&e);
		kiln_buf_reset(out);
	}
	return reg_client_get_manifest(c, repo, ref, out, kind, digest, err);
}

int
reg_pull(struct reg_client *c, struct reg_store *st, const struct reg_ref *ref,
         const struct reg_platform *platform, char ret_digest[KILN_DIGEST_HEX_LEN + 1],
         struct kiln_err *err)
{
	const char *want = ref->digest ? ref->digest : ref->tag ? ref->tag : "latest";
	_cleanup_buf_ struct kiln_buf top = KILN_BUF_INIT;
	enum reg_kind kind;
	char top_digest[KILN_DIGEST_HEX_LEN + 1];
	char head[KILN_DIGEST_HEX_LEN + 1] = "";
	int r = 0;
	if (!ref->digest) {
		r = reg_client_head_manifest(c, ref->path, want, head, err);
		if (r < 0 && r != -EOPNOTSUPP)
			return r;
		if (r < 0)
			kiln_err_release(err); /* a registry that answers HEAD badly: GET decides */
	}
	if (head[0] && reg_blob_exists(st, head))
		r = get_document(c, st, ref->path, head, &top, &kind, top_digest, err);
	else
		r = reg_client_get_manifest(c, ref->path, want, &top, &kind, top_digest, err);
	if (r < 0)
		return r;

	_cleanup_buf_ struct kiln_buf child = KILN_BUF_INIT;
	const struct kiln_buf *mbuf = &top;
	if (reg_kind_is_index(kind)) {
		struct reg_index idx = {0};
		r = reg_index_parse(top.buf, top.len, NULL, &idx, err);
		if (r < 0)
			return kiln_err_wrap(err, "%s/%s@%s", regc_host(c), ref->path, top_digest);
		r = reg_index_select(&idx, platform, err);
		if (r < 0) {
			reg_index_release(&idx);
			return kiln_err_wrap(err, "%s/%s", regc_host(c), ref->path);
		}
		char want_child[KILN_DIGEST_HEX_LEN + 1], got[KILN_DIGEST_HEX_LEN + 1];
		memcpy(want_child, idx.manifests[r].digest, sizeof(want_child));
		reg_index_release(&idx);
		enum reg_kind ckind;
		r = get_document(c, st, ref->path, want_child, &child, &ckind, got, err);
		if (r < 0)
			return r;
		if (reg_kind_is_index(ckind))
			return regc_err(err, EPROTO, "%s/%s@%s: nested indexes are not supported",
			                regc_host(c), ref->path, want_child);
		mbuf = &child;
	}

	struct reg_manifest m = {0};
	r = reg_manifest_parse(mbuf->buf, mbuf->len, NULL, &m, err);
	if (r < 0)
		return kiln_err_wrap(err, "%s/%s", regc_host(c), ref->path);
	r = move_blobs(c, st, ref->path, NULL, false, &m, err);
	reg_manifest_release(&m);
	if (r < 0)
		return r;

	/* Documents after the blobs they point to, so the store never holds a dangling one. */
	char d[KILN_DIGEST_HEX_LEN + 1];
	if (mbuf == &child) {
		r = reg_store_put_manifest(st, child.buf, child.len, d, err);
		if (r < 0)
			return r;
	}
	r = reg_store_put_manifest(st, top.buf, top.len, d, err);
	if (r < 0)
		return r;
	if (ref->tag) {
		struct reg_ref named = {.domain = ref->domain, .path = ref->path, .tag = ref->tag};
		_cleanup_free_ char *name = reg_ref_string(&named);
		r = reg_name_set(st, name, top_digest, err);
		if (r < 0)
			return r;
	}
	memcpy(ret_digest, top_digest, KILN_DIGEST_HEX_LEN + 1);
	return 0;
}

/* ---- push ---- */

static int
push_manifest_of(struct reg_client *c, struct reg_store *st, const char *repo,
                 const char *mount_from, const char *digest, const char *put_ref,
                 struct kiln_err *err)
{
	_cleanup_buf_ struct kiln_buf raw = KILN_BUF_INIT;
	struct reg_limits lim = REG_LIMITS_INIT;
	int r = reg_blob_read(st, digest, lim.max_manifest_bytes, &raw, err);
	if (r < 0)
		return r;
	struct reg_manifest m = {0};
	r = reg_manifest_parse(raw.buf, raw.len, NULL, &m, err);
	if (r < 0)
		return kiln_err_wrap(err, "manifest %s", digest);
	r = move_blobs(c, st, repo, mount_from, true, &m, err);
	const char *mt = reg_kind_media_type(m.kind);
	if (r >= 0)
		r = reg_client_put_manifest(c, repo, put_ref, mt, raw.buf, raw.len, err);
	reg_manifest_release(&m);
	return r;
}

int
reg_push(struct reg_client *c, struct reg_store *st, const char *src, const struct reg_ref *dest,
         char ret_digest[KILN_DIGEST_HEX_LEN + 1], struct kiln_err *err)
{
	if (dest->digest && !dest->tag)
		return kiln_err_invalid(err, "push needs a tag, not a digest: %s", dest->digest);
	const char *tag = dest->tag ? dest->tag : "latest";
	struct reg_image img = REG_IMAGE_INIT;
	_cleanup_buf_ struct kiln_buf top = KILN_BUF_INIT;
	struct reg_index idx = {0};
	int r = reg_image_open(st, src, NULL, &img, err);
	if (r < 0)
		return r;

	/* An image that came from another repository of this registry can be mounted. */
	_cleanup_free_ char *mount_from = NULL;
	struct reg_ref sref = REG_REF_INIT;
	struct kiln_err ignored = KILN_ERR_INIT;
	if (!kiln_str_has_prefix(src, "sha256:") &&
	    reg_ref_parse_normalized(src, &sref, &ignored) == 0 &&
	    kiln_str_eq(sref.domain, regc_host(c)) && !kiln_str_eq(sref.path, dest->path))
		mount_from = kiln_xstrdup(sref.path);
	reg_ref_release(&sref);
	kiln_err_release(&ignored);

	r = regc_ensure_base(c, err);
	if (r < 0)
		goto out;

	bool whole_index = false;
	if (!kiln_str_eq(img.top_digest, img.manifest_digest)) {
		struct reg_limits lim = REG_LIMITS_INIT;
		r = reg_blob_read(st, img.top_digest, lim.max_manifest_bytes, &top, err);
		if (r >= 0)
			r = reg_index_parse(top.buf, top.len, NULL, &idx, err);
		if (r < 0)
			goto out;
		/* Push the whole index only when we hold every manifest it lists. */
		whole_index = true;
		for (size_t i = 0; i < idx.n_manifests; i++)
			whole_index = whole_index && reg_blob_exists(st, idx.manifests[i].digest);
	}
	if (whole_index) {
		for (size_t i = 0; i < idx.n_manifests && r >= 0; i++)
			r = push_manifest_of(c, st, dest->path, mount_from, idx.manifests[i].digest,
			                     idx.manifests[i].digest, err);
		if (r >= 0)
			r = reg_client_put_manifest(c, dest->path, tag,
			                            reg_kind_media_type(idx.kind), top.buf, top.len,
			                            err);
		if (r >= 0)
			memcpy(ret_digest, img.top_digest, KILN_DIGEST_HEX_LEN + 1);
	} else {
		r = push_manifest_of(c, st, dest->path, mount_from, img.manifest_digest, tag, err);
		if (r >= 0)
			memcpy(ret_digest, img.manifest_digest, KILN_DIGEST_HEX_LEN + 1);
	}
out:
	reg_index_release(&idx);
	reg_image_release(&img);
	return r < 0 ? r : 0;
}
