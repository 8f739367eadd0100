/*
 * kiln solver: a generic DAG of build operations. It knows no Dockerfile.
 *
 * Calling sequence:
 *
 *	struct sv_graph *g = sv_graph_new();
 *	struct sv_vertex *base = sv_graph_add(g, SV_OP_SOURCE, def, NULL, 0, &meta);
 *	struct sv_vertex *run  = sv_graph_add(g, SV_OP_EXEC, def2, &base, 1, &meta2);
 *	sv_graph_add_result(g, "build", run, config);
 *	sv_graph_to_json(g, &out); sv_graph_to_dot(g, &out);
 *	sv_graph_free(g);
 *
 * A vertex is an operation (`op`) with a JSON definition (`def`) and ordered inputs.
 * Its digest is SHA-256 over its op, its def (sv_json_digest's encoding) and its inputs' digests,
 * so it is stable across runs and covers everything the operation depends on; adding a
 * vertex whose digest is already in the graph returns the existing one (identical
 * vertices run once). Metadata (stage, description, line) is not part of the digest.
 *
 * Definitions by op (the contract between the frontend and the ops that run them):
 *   source: {"type":"image","ref":R,"platform":P} | {"type":"local","name":"context",
 *            "include":[...], "exclude":[...]} | {"type":"scratch"}
 *   exec:   {"args":[...],"env":[...],"cwd":D,"user":U,"network":N,"security":S,
 *            "mounts":[{"type":..,"target":..,"input":I,"source":..,"readonly":..,...}]}
 *            input 0 is the root filesystem; mounts name further inputs by index.
 *   file:   {"actions":[{"action":"copy"|"mkdir"|"mkfile",...}]}; input 0 is the
 *            destination filesystem, further inputs are copy sources by index.
 *            {"actions":[{"action":"merge","input":1}]} (COPY --link): input 1's files
 *            applied onto input 0, as unpacking input 1's layer there would.
 */
#ifndef KILN_SV_H
#define KILN_SV_H

#include "base/base.h"

#include <jansson.h>

enum sv_op { SV_OP_SOURCE, SV_OP_EXEC, SV_OP_FILE };

struct sv_vertex_meta {
	const char *stage;       /* stage name or index as text */
	const char *description; /* e.g. "RUN make" */
	int line;                /* Dockerfile line, 0 if none */
};

struct sv_vertex {
	struct kiln_digest digest;
	char digest_hex[KILN_DIGEST_HEX_LEN + 1];
	enum sv_op op;
	json_t *def;
	struct sv_vertex **inputs;
	size_t ninputs;
	char *stage;
	char *description;
	int line;
	size_t index; /* position in the graph, in insertion (topological) order */
};

struct sv_result {
	char *name; /* stage name, or its index as text */
	struct sv_vertex *vertex;
	json_t *config; /* the OCI image config the stage ends with */
	bool target;    /* the stage the build was asked for */
};

struct sv_graph {
	struct sv_vertex **vertices;
	size_t nvertices, alloc;
	struct sv_vertex **by_digest; /* open-addressing table for dedup, size a power of 2 */
	size_t by_digest_size;
	struct sv_array_memo *hash_memo; /* see solver/graph.c */
	struct sv_result *results;
	size_t nresults, results_alloc;
};

struct sv_graph *sv_graph_new(void);
void sv_graph_free(struct sv_graph *g);
/* Add a vertex; takes ownership of `def`. Inputs must already be in the graph. Returns the
 * vertex (an existing one when identical). Values in `def` may be shared with other defs
 * (e.g. one env array by consecutive RUNs), but none may change once added. */
struct sv_vertex *sv_graph_add(struct sv_graph *g, enum sv_op op, json_t *def,
                               struct sv_vertex *const *inputs, size_t ninputs,
                               const struct sv_vertex_meta *meta);
/* Record a stage's result; takes ownership of `config`, whose values, like a def's, may be
 * shared but must not change once added (the JSON writer prints shared ones once). */
void sv_graph_add_result(struct sv_graph *g, const char *name, struct sv_vertex *vertex,
                         json_t *config, bool target);
const char *sv_op_name(enum sv_op op);
/* A digest of a JSON value's content (object members in key order, types and lengths
 * included), stable across runs and jansson versions. */
void sv_json_digest(const json_t *value, struct kiln_digest *out);
/* {"vertices":[{digest,op,inputs,stage,description,line,def}...],"results":[...]} */
void sv_graph_to_json(const struct sv_graph *g, struct kiln_buf *out);
/* The same JSON written to fd as it is produced, in 64 KiB writes; -errno on a failed
 * write (the output is then incomplete). */
int sv_graph_write_json(const struct sv_graph *g, int fd, struct kiln_err *err);
/* Graphviz dot. */
void sv_graph_to_dot(const struct sv_graph *g, struct kiln_buf *out);

/*
 * ---- running a graph: the engine, cache keys and the cache store ----
 *
 * Calling sequence:
 *
 *	struct sv_cache *c;
 *	sv_cache_open(kiln_root, &c, &err);              // <root>/cache/, shared by processes
 *	struct sv_ops ops = {.run = my_run, .commit = my_commit, ...};   // the only binding
 *	struct sv_solve_opts o = SV_SOLVE_OPTS_INIT;     // .jobs, .no_cache, .progress, ...
 *	struct sv_solver *s;
 *	sv_solver_new(&ops, ops_data, c, &o, &s, &err);
 *	if (sv_solve(s, g, wanted, nwanted, &err) < 0) ...err names the failing vertex...
 *	sv_solver_result(s, wanted[0]);                  // the op's result id, e.g. a snapshot
 *	...export results; records used stay locked shared until...
 *	sv_solver_free(s);
 *	sv_cache_prune(c, pred, data, &n, &err);         // records in use are skipped
 *	sv_cache_free(c);
 *
 * The engine runs every needed vertex whose inputs are ready at once, each on its own
 * thread. Vertices the op calls heavy (RUN steps) wait for one of `jobs` slots; light ones
 * (pulls, context hashing, copies) never wait for a slot. Per vertex, in order:
 *	1. ops->content_key: a digest of the files the op reads (and named components);
 *	2. cache key = sha256 of the recipe {op, def digest, input cache keys, content
 *	   digest, components} (see sv_recipe_new); a vertex whose key equals one already
 *	   running or done in this solve waits for it and takes its result;
 *	3. a cache record for the key whose result ops->result_exists() confirms: cached;
 *	4. otherwise ops->run (heavy: holding a slot), ops->commit, then the record is written.
 * A failure cancels the solve: every running vertex's context is flagged and its cancel
 * callback called, nothing new starts, results of vertices that finish after the cancel
 * are discarded uncommitted, and sv_solve returns the first error wrapped with the
 * vertex's description and located at its line (opts.source_file, default "Dockerfile").
 * No cache record is ever written for a failed, cancelled or uncommitted vertex.
 *
 * Progress events are delivered one at a time (the engine serialises the callback), from
 * the engine's threads. The engine keeps no global state; one sv_solve per solver at a time.
 */

/* Per-vertex context an op's callbacks receive. */
struct sv_op_ctx;

struct sv_ops {
	/* Whether `v` takes a job slot. NULL: exec vertices are heavy, others light. */
	bool (*heavy)(void *data, const struct sv_vertex *v);
	/* A name for "the same step" across builds, e.g. "stage 1, instruction 3", for
	 * explaining misses (caller frees). NULL (or a NULL return): stage + description. */
	char *(*identity)(void *data, const struct sv_vertex *v);
	/* Optional. The digest ("sha256:...") of exactly what the op reads beyond its
	 * definition and inputs (COPY: content, mode, uid/gid, symlink targets of the files it
	 * copies; never mtime, secrets or cache-mount contents) into *ret (caller frees; NULL
	 * for none). May name components with sv_op_ctx_add_component (they are stored in
	 * every record, so name the few that explain a miss best: changed files, build args,
	 * not thousands). `inputs` are the inputs' result ids. Runs on the vertex's thread
	 * without a job slot. */
	int (*content_key)(void *data, struct sv_op_ctx *ctx, const struct sv_vertex *v,
	                   const char *const *inputs, char **ret, struct kiln_err *err);
	/* Required. Run the vertex on its inputs' result ids; *ret_result gets a malloc'd,
	 * opaque result id (a snapshot name). Should stop early once sv_op_ctx_cancelled(). */
	int (*run)(void *data, struct sv_op_ctx *ctx, const struct sv_vertex *v,
	           const char *const *inputs, char **ret_result, struct kiln_err *err);
	/* Optional. Make a result durable; the cache record is written only after this. */
	int (*commit)(void *data, const struct sv_vertex *v, const char *result,
	              struct kiln_err *err);
	/* Optional. Whether a cached result id still exists; false makes the lookup a miss.
	 * NULL: results always exist. */
	bool (*result_exists)(void *data, const char *result);
	/* Optional. Drop a result that will not be used: run succeeded but the solve was
	 * cancelled or commit failed, or another process stored the same key first. */
	void (*discard)(void *data, const char *result);
};

/* Whether the solve was cancelled (another vertex failed). Safe from any thread. */
bool sv_op_ctx_cancelled(struct sv_op_ctx *ctx);
/* Call fn(fn_data) once when the solve is cancelled (at once if it already is), e.g. to
 * kill the step's PID namespace. fn runs on the failing vertex's thread and must not call
 * the solver; NULL clears it. Once a call that clears it returns, fn is not running and
 * will not run, so clear it before the data it uses goes away. */
void sv_op_ctx_on_cancel(struct sv_op_ctx *ctx, void (*fn)(void *), void *fn_data);
/* A log line (or chunk) from the op; `stream` is 1 (stdout) or 2 (stderr). */
void sv_op_ctx_log(struct sv_op_ctx *ctx, int stream, const char *data, size_t len);
void sv_op_ctx_logf(struct sv_op_ctx *ctx, int stream, const char *fmt, ...) KILN_PRINTF(3, 4);
/* From content_key: a named part of the key, e.g. ("file src/a.c", digest) or
 * ("build-arg FOO", digest); it enters the key and lets --explain name what changed. */
void sv_op_ctx_add_component(struct sv_op_ctx *ctx, const char *name, const char *digest);
/*
 * From run: the result of the latest run of this step's lineage, i.e. the same op, def
 * and input keys whatever the content key said (the same COPY over other file contents),
 * so an op may build its result from it incrementally. Returns 1 with *ret (caller frees)
 * when a record still holds such a result and result_exists() confirms it; the record is
 * then locked shared until sv_solver_free, so prune keeps the result meanwhile. Returns 0
 * when there is none, when the cache is off for the vertex (--no-cache) or the latest
 * run had this very key; -errno on an I/O error. Calling it also makes the vertex's
 * record, once written, the lineage's latest.
 */
int sv_op_ctx_lineage_previous(struct sv_op_ctx *ctx, char **ret, struct kiln_err *err);
/* From run: the size in bytes of the result, kept in its cache record for prune. */
void sv_op_ctx_set_size(struct sv_op_ctx *ctx, uint64_t size);

enum sv_event_type {
	SV_EVENT_STARTED,   /* a cache miss is about to run (explain says why, if asked) */
	SV_EVENT_CACHED,    /* the result came from the cache (or an equal vertex) */
	SV_EVENT_LOG,       /* a log chunk from the op */
	SV_EVENT_FINISHED,  /* ran and committed; duration_ns */
	SV_EVENT_FAILED,    /* err says why */
	SV_EVENT_CANCELLED, /* stopped because another vertex failed */
};

/* "started", "cached", "log", "finished", "failed", "cancelled" (for --progress=rawjson). */
const char *sv_event_name(enum sv_event_type type);

struct sv_event {
	enum sv_event_type type;
	const struct sv_vertex *vertex;
	const char *cache_key;      /* NULL before it is known */
	const char *explain;        /* STARTED with opts.explain: one line on why it missed */
	int stream;                 /* LOG: 1 or 2 */
	const char *data;           /* LOG */
	size_t len;                 /* LOG */
	uint64_t duration_ns;       /* FINISHED, FAILED */
	const struct kiln_err *err; /* FAILED */
};

struct sv_solve_opts {
	unsigned jobs; /* heavy vertices at once; 0 = no limit (as BuildKit) */
	bool no_cache; /* look nothing up; fresh results still replace the records */
	/* Look nothing up for vertices of stages the predicate returns true for. */
	bool (*no_cache_filter)(void *data, const char *stage);
	void *no_cache_filter_data;
	bool explain; /* fill sv_event.explain on misses */
	void (*progress)(void *data, const struct sv_event *ev);
	void *progress_data;
	const char *source_file; /* locates errors at a vertex's line; NULL = "Dockerfile" */
};
#define SV_SOLVE_OPTS_INIT                                                                         \
	{                                                                                          \
		.jobs = 0                                                                          \
	}

struct sv_cache;
struct sv_solver;

/* `cache` may be NULL (nothing cached); it must outlive the solver. `opts` is copied
 * (NULL: defaults). */
int sv_solver_new(const struct sv_ops *ops, void *ops_data, struct sv_cache *cache,
                  const struct sv_solve_opts *opts, struct sv_solver **ret, struct kiln_err *err);
/* Releases results and the shared locks on the cache records the solves used. */
void sv_solver_free(struct sv_solver *s);
/*
 * Run the vertices `want` (and what they need, nothing else) of `g`. Returns 0, or -errno
 * with err naming the failing vertex. `g` must outlive the solver's results.
 */
int sv_solve(struct sv_solver *s, const struct sv_graph *g, struct sv_vertex *const *want,
             size_t nwant, struct kiln_err *err);
/* After a successful sv_solve: a vertex's result id and cache key (owned by the solver,
 * valid until the next sv_solve or sv_solver_free), or NULL for a vertex not needed. */
const char *sv_solver_result(const struct sv_solver *s, const struct sv_vertex *v);
const char *sv_solver_cache_key(const struct sv_solver *s, const struct sv_vertex *v);

/*
 * The recipe of a cache key: {"v":1,"op":..,"def":sha256(canonical {op,def}),
 * "inputs":[input cache keys],"content":digest (if any),"components":{name:digest}}.
 * The key is the sha256 of its canonical JSON (sorted keys, compact). Returns a new ref.
 */
json_t *sv_recipe_new(const struct sv_vertex *v, const char *const *input_keys, const char *content,
                      json_t *components);
void sv_recipe_key(const json_t *recipe, char out[KILN_DIGEST_HEX_LEN + 1]);
/* One line on why `now` differs from `before` (the last recipe of the same step; NULL if
 * none), e.g. "file src/a.c under COPY . /src changed", "build arg FOO changed",
 * "parent step changed". `description` names the step. */
void sv_recipe_explain(const json_t *before, const json_t *now, const char *description,
                       struct kiln_buf *out);

/*
 * The persistent cache: <kiln_root>/cache/records/<key hex> holds one record (JSON:
 * key, result, created, size, identity, description, recipe; last use is the file's
 * mtime), <root>/cache/steps/<sha256(identity)> the latest recipe of each step for
 * explaining misses, <root>/cache/lineage/<lineage key> the latest record of a step's
 * lineage for sv_op_ctx_lineage_previous (prune drops those whose record went). Records
 * appear by write-temp + fsync + rename, only after the op's commit. Two processes
 * building one key both run it; the first rename wins and the other takes the winner's
 * result (discarding its own). A record in use by a solver is locked shared (flock), so
 * prune skips it. Unreadable records count as misses and are removed.
 */
struct sv_cache_entry {
	const char *key;
	const char *result;
	int64_t created;   /* unix seconds */
	int64_t last_used; /* unix seconds */
	uint64_t size;     /* bytes, 0 if the op gave none */
	const char *identity;
	const char *description;
};

int sv_cache_open(const char *kiln_root, struct sv_cache **ret, struct kiln_err *err);
void sv_cache_free(struct sv_cache *c);
const char *sv_cache_path(const struct sv_cache *c);
/* Call fn for each readable record; a negative return from fn stops and is returned. */
int sv_cache_list(struct sv_cache *c, int (*fn)(void *data, const struct sv_cache_entry *e),
                  void *data, struct kiln_err *err);
/* Delete each record fn returns true for, unless a solver is using it. fn runs with the
 * record locked exclusively, so it may remove the result (a snapshot) first. Unreadable
 * records are deleted without asking fn. The number deleted goes to *ret_removed (may be
 * NULL). Safe while solves run in this or other processes. */
int sv_cache_prune(struct sv_cache *c, bool (*fn)(void *data, const struct sv_cache_entry *e),
                   void *data, size_t *ret_removed, struct kiln_err *err);

/* ---- records for the portable cache (exporter/cache.c: --cache-to, --cache-from) ---- */

/* The stored record of `key` (JSON: key, result, recipe, identity, description, ...) into
 * *ret as a new ref, or NULL when there is none or it is unreadable. */
int sv_cache_record_get(struct sv_cache *c, const char *key, json_t **ret, struct kiln_err *err);
/* Write a record made elsewhere (an imported cache) for `key` -> `result`. A record
 * already there whose result `exists` confirms (NULL: any record) is kept: returns 0;
 * otherwise ours is published: returns 1. `recipe`, `identity`, `description` may be
 * NULL; with both identity and recipe, a step with no history here gets the recipe as its
 * latest (so --explain compares a miss with the imported step). */
int sv_cache_record_import(struct sv_cache *c, const char *key, const char *result,
                           const char *identity, const char *description, const json_t *recipe,
                           bool (*exists)(void *data, const char *result), void *exists_data,
                           struct kiln_err *err);

#endif
