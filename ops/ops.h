/*
 * kiln ops: the solver's operations bound to the snapshot store, the executor and the
 * registry store. The one place where a vertex's def becomes mounts and processes.
 *
 * Calling sequence:
 *
 *	struct ops_opts o = OPS_OPTS_INIT;
 *	o.root = cmd_root(); o.snaps = ss; o.reg = rs; o.context_dir = ".";
 *	o.secrets = secrets; o.nsecrets = n;           // --secret, borrowed
 *	o.ssh = ssh; o.nssh = n;                        // --ssh ID=SOCKET, borrowed
 *	struct ops *ops;
 *	ops_new(&o, &ops, &err);
 *	sv_solver_new(ops_vtable(), ops, cache, &so, &solver, &err);
 *	sv_solve(...);
 *	const char *snap = sv_solver_result(solver, v);      // a committed snapshot name
 *	ops_stage_root(ops, g, v, ...);                      // what the stage is built on
 *	ops_save(ops, &err);                                 // the stat index, once at the end
 *	ops_free(ops);
 *
 * Result ids are snapshot names in o.snaps, except the build context, whose result is
 * OPS_RESULT_CONTEXT: file and exec ops read the context directory in place (no copy).
 *   source image: the image from the store (pulled when missing unless no_pull), its layers
 *                 applied as a chain (snap_layer_apply); the result is
 *                 the top chain id; the content key is the manifest digest, so a tag
 *                 that moves misses the cache. Host platform only.
 *   source scratch: an empty committed snapshot.
 *   exec:   a fresh snapshot on input 0, the def's mounts, env merged onto the base
 *           image's Env (convert.c's rules), ex_run, committed on exit code 0.
 *   file:   a fresh snapshot on input 0, ops_file_run (ops/file.h), committed. One copy
 *           from a local directory keeps a manifest (<root>/cache/copies/<snapshot>) and,
 *           when its step last ran over other content, runs on a hard-link clone of that
 *           result writing only what changed (the incremental copy; ops_file_env).
 *   merge:  (a file def with one "merge" action, COPY --link) a fresh snapshot on input 0
 *           with input 1's files applied as its layer would be, labelled
 *           SNAP_LABEL_LAYER = input 1 so the exporter writes input 1's own layer.
 * Thread-safe: the solver calls these from several threads at once.
 */
#ifndef KILN_OPS_H
#define KILN_OPS_H

#include "base/base.h"
#include "solver/sv.h"

struct snap_store;
struct reg_store;

#define OPS_RESULT_CONTEXT "local:context"

struct ops_secret {
	const char *id;
	const void *data;
	size_t len;
};

/* An ssh agent for RUN --mount=type=ssh,id=ID (a mount without id= asks for "default"). */
struct ops_ssh {
	const char *id;
	const char *socket; /* the agent's unix socket on the host */
};

struct ops_opts {
	const char *root;                 /* kiln root: cache mounts, the stat index */
	struct snap_store *snaps;         /* borrowed */
	struct reg_store *reg;            /* borrowed */
	const char *context_dir;          /* the build context */
	const struct ops_secret *secrets; /* --secret, borrowed */
	size_t nsecrets;
	const struct ops_ssh *ssh; /* --ssh, borrowed; a mount whose id is missing fails */
	size_t nssh;               /* unless it says required=false */
	bool allow_network_host; /* --allow network.host */
	bool allow_insecure;     /* --allow security.insecure */
	bool no_pull;            /* a base image missing from the store is an error, not pulled */
	bool pull_always; /* --pull: fetch the newest manifest even when the image is stored */
};
#define OPS_OPTS_INIT                                                                              \
	{                                                                                          \
		0                                                                                  \
	}

struct ops;

int ops_new(const struct ops_opts *opts, struct ops **ret, struct kiln_err *err);
/* Write the stat index back (call once after the build). */
int ops_save(struct ops *ops, struct kiln_err *err);
void ops_free(struct ops *ops);
/* The vtable to give sv_solver_new with the ops as its data. Static storage. */
const struct sv_ops *ops_vtable(void);

/* Stop the build (Ctrl-C): running steps are killed and fail, no new step starts. Safe
 * from any thread, e.g. one waiting on a signalfd. */
void ops_interrupt(struct ops *ops);

/* The vertex a stage's root filesystem starts from: follow input 0 from `v` down to its
 * source vertex (image or scratch). */
const struct sv_vertex *ops_stage_root(const struct sv_vertex *v);

/* fe_plan_opts.image_config with a struct ops_plan_images as its data: the image's config
 * document from the store, or when missing (unless store_only) or with pull_always (as
 * --pull) its manifest and config from the registry, without the layers; NULL when it
 * cannot be had (the build then fails on the image with the reason). */
struct ops_plan_images {
	struct reg_store *reg;
	bool pull_always;
	bool store_only; /* kiln plan without --pull: never ask a registry */
};
json_t *ops_plan_image_config(void *plan_images, const char *ref, const char *platform);

/* What the ops keep beside result `result` of kiln root `root` (a copy's manifest, for
 * incremental reruns) goes; call once the result is removed. */
void ops_result_forget(const char *root, const char *result);
/* The same for every result no longer in `snaps` (e.g. a build killed between its commit
 * and its cache record left it, and prune removed that snapshot). */
void ops_results_sweep(const char *root, struct snap_store *snaps);

/* Copy the files of committed snapshot `snapshot` into directory `dest` (created when
 * missing), as `-o type=local,dest=DIR` does. On failure DIR is partly written. */
int ops_export_local(struct ops *ops, const char *snapshot, const char *dest, struct kiln_err *err);

/*
 * kiln's own ssh agent, serving private key files (`--ssh ID=KEYFILE[,KEYFILE]`) over a
 * unix socket, as buildx does. ops_sshagent_start reads every key (unencrypted OpenSSH
 * or PEM/PKCS#8 files: Ed25519, RSA, ECDSA P-256/384/521; a bad or encrypted key is an
 * error naming its file), creates a private directory (0700) below `tmp_dir` (created
 * when missing) holding the socket, and answers on a thread of its own: list the keys,
 * sign with them (rsa-sha2-256/512 as asked), nothing else. ops_sshagent_socket is the
 * socket's path, valid until ops_sshagent_free, which stops the thread and removes the
 * socket and its directory. Accepts NULL.
 */
struct ops_sshagent;
int ops_sshagent_start(const char *tmp_dir, const char *const *keyfiles, size_t nkeys,
                       struct ops_sshagent **ret, struct kiln_err *err);
const char *ops_sshagent_socket(const struct ops_sshagent *a);
void ops_sshagent_free(struct ops_sshagent *a);

#endif
