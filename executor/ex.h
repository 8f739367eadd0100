/*
 * kiln executor: run one process in a container whose root filesystem is a directory.
 *
 * Calling sequence:
 *
 *	struct ex_mount m[] = {{.type = EX_MOUNT_CACHE, .target = "/root/.cache"}};
 *	struct ex_run_opts o = EX_RUN_OPTS_INIT;
 *	o.rootfs = "/var/lib/kiln/snapshots/42/merged";  // mounted by the caller
 *	o.argv = (char *const[]){"/bin/sh", "-c", "make", NULL};
 *	o.env = env; o.user = "app"; o.cwd = "/src";
 *	o.mounts = m; o.nmounts = 1; o.store_root = "/var/lib/kiln";
 *	o.output = on_line; o.output_data = ctx;       // called once per line, in order
 *	o.cancel_fd = fd;                              // readable => kill the container
 *	struct ex_result res;
 *	if (ex_run(&o, &res, &err) < 0)
 *		...setup failed (bad USER, exec ENOENT, ...): nothing was left behind...
 *	else if (res.signal || res.exit_code)
 *		...the process ran and failed...
 *
 * The container has its own mount, PID, UTS and IPC namespaces (and network namespace
 * with only loopback for EX_NET_NONE); a fresh /proc, a minimal /dev, a read-only /sys,
 * and /etc/hosts, /etc/resolv.conf and /etc/hostname bind-mounted read-only from files
 * outside the rootfs. The process runs as the USER resolved from the rootfs's own
 * /etc/passwd and /etc/group, with Docker's default capabilities (inheritable empty),
 * no_new_privs, and only fds 0-2 open (stdin is /dev/null).
 *
 * The executor knows nothing of images: the caller mounts the rootfs and resolves mount
 * sources. Mount points it must create in the rootfs (missing /etc/hosts, /run/secrets/x,
 * directories on the way) are removed again after the run, without following symlinks.
 * When ex_run returns, every process of the container is dead and every mount it made
 * is gone. Needs root (rootless mode is planned). Thread-safe: no global state; the
 * calling thread must live until ex_run returns (it is the container's parent). Runs on
 * the same rootfs must not overlap: removing a mount point one run created would detach
 * it from the other (the solver gives every run its own snapshot).
 */
#ifndef KILN_EX_H
#define KILN_EX_H

#include "base/base.h"

enum ex_mount_type { EX_MOUNT_BIND, EX_MOUNT_CACHE, EX_MOUNT_TMPFS, EX_MOUNT_SECRET, EX_MOUNT_SSH };
enum ex_sharing { EX_SHARING_SHARED, EX_SHARING_PRIVATE, EX_SHARING_LOCKED };
enum ex_network { EX_NET_HOST, EX_NET_NONE };

/*
 * One RUN --mount, sources already resolved by the caller. Targets are absolute paths in
 * the container (a relative target is the caller's to join with the working directory).
 *
 * - bind:   `source` is a host path (file or directory). Read-only unless `rw`: then writes
 *           go to a throwaway layer (an overlay with a temporary upper) and are discarded.
 * - cache:  a persistent directory <store_root>/cache-mounts/<ex_cache_dir_name(id)>,
 *           `id` defaulting to the target; `mode`/`uid`/`gid` (0755, 0, 0) apply when it
 *           is created. sharing: shared (concurrent runs share it), locked (the run waits
 *           for, then holds, an exclusive flock), private (a fresh empty directory when
 *           another run holds it). `readonly` mounts it read-only.
 * - tmpfs:  an empty tmpfs, `size` bytes (0: the kernel default).
 * - secret: `data`/`data_len` placed on a tmpfs (never in the rootfs), mode 0400 unless
 *           has_mode, at `target` or /run/secrets/<id>; with `env`, also (or, when no
 *           target is given, only) exported as that environment variable.
 * - ssh:    `source` is an agent socket on the host. As BuildKit, the container sees a
 *           socket of the run's own at `target` or /run/buildkit/ssh_agent.<N> (N counts
 *           ssh mounts from 0), owned by `uid`:`gid` with `mode`'s permission bits (0, 0,
 *           0600 unless has_*), that forwards each connection to `source`; the agent's
 *           socket is neither exposed nor changed. The first one sets SSH_AUTH_SOCK
 *           unless the environment has it.
 */
struct ex_mount {
	enum ex_mount_type type;
	const char *target; /* NULL: default for secret/ssh; required otherwise */
	const char *source;
	const char *id;
	const char *env;
	bool rw;       /* bind only */
	bool readonly; /* cache only */
	enum ex_sharing sharing;
	bool has_mode, has_uid, has_gid;
	uint32_t mode, uid, gid;
	uint64_t size;
	const void *data; /* secret content */
	size_t data_len;
};

/* Check one mount's fields against its type (which options it takes, required fields,
 * absolute target). Returns 0 or -EINVAL with a message naming the option. */
int ex_mount_check(const struct ex_mount *m, struct kiln_err *err);

/* The one path component a cache id maps to below <store_root>/cache-mounts: a readable,
 * sanitised prefix of the id and 16 hex digits of its SHA-256, so distinct ids never
 * share a directory and no id ("../../etc", "/", "") names a path outside the cache
 * area. The caller frees. */
char *ex_cache_dir_name(const char *id);

/* ---- users: USER resolved from the rootfs's own files, never from NSS ---- */

struct ex_user {
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* supplementary groups, the primary gid first */
	size_t ngroups;
	char *home; /* from passwd, "/" when there is no entry */
};

/*
 * Resolve a USER spec ("", "name", "uid", "name:group", "uid:gid", ...) against the text of
 * passwd and group files (either NULL when the file is missing), as runc does: a name must
 * exist in passwd; a numeric uid without an entry runs with gid 0 and home "/"; a group
 * name must exist in group. Without an explicit group, the supplementary groups are those
 * that list the user's name. On failure *ret is untouched.
 */
int ex_user_resolve_text(const char *spec, const char *passwd, const char *group,
                         struct ex_user *ret, struct kiln_err *err);
/* The same, reading /etc/passwd and /etc/group inside `rootfd` (kiln_path_openat_in_root). */
int ex_user_resolve_at(int rootfd, const char *spec, struct ex_user *ret, struct kiln_err *err);
void ex_user_release(struct ex_user *u);

/* ---- running ---- */

#define EX_STREAM_STDOUT 1
#define EX_STREAM_STDERR 2

/* One line of output (without its newline; a last line without one is delivered too; a
 * line longer than 64 KiB is delivered in pieces). `line` is valid during the call. */
typedef void (*ex_output_fn)(void *data, int stream, const char *line, size_t len);

struct ex_run_opts {
	const char *rootfs; /* required: the root directory, already mounted */
	char *const *argv;  /* required, NULL-terminated; argv[0] searched in the env's PATH */
	char *const *env;   /* KEY=VALUE, NULL-terminated; PATH and HOME get defaults */
	const char *user;   /* NULL or "": root */
	const char *cwd;    /* absolute; created (inside the rootfs) when missing */
	const char *hostname;
	enum ex_network network;
	const struct ex_mount *mounts;
	size_t nmounts;
	const char *store_root; /* required with cache mounts */
	const char *tmpdir;     /* for the run's host files; NULL: $TMPDIR or /tmp */
	uint64_t timeout_ms;    /* 0: none; counts from the call, waiting for locks too */
	int cancel_fd;          /* -1, or an fd that becomes readable to kill the run; it is
	                         * polled, never read, so one eventfd (or a signalfd for
	                         * Ctrl-C) can cancel many sibling runs at once */
	ex_output_fn output;    /* NULL: output is discarded */
	void *output_data;
	/* RUN --security=insecure (BuildKit's insecure mode, docker run --privileged): every
	 * capability kiln has, no no_new_privs, the host's /dev bound in, /sys read-write, no
	 * masked or read-only /proc and /sys paths. (kiln has no seccomp filter either way.) */
	bool privileged;
};
#define EX_RUN_OPTS_INIT                                                                           \
	{                                                                                          \
		.cwd = "/", .hostname = "kiln", .network = EX_NET_HOST, .cancel_fd = -1,           \
	}

struct ex_result {
	int exit_code;  /* when signal == 0 */
	int signal;     /* the signal that ended the process, or 0 */
	bool timed_out; /* killed because timeout_ms passed */
	bool cancelled; /* killed because cancel_fd became readable */
};

/*
 * Run opts->argv in a new container on opts->rootfs and wait for it, streaming its output.
 * Returns 0 when the process ran (whatever its exit status, see *ret) or -errno when it
 * could not be started (bad options, unknown USER, a failed mount, "exec /bin/foo: No
 * such file or directory"), or when a timeout or cancel came before a cache lock was
 * taken. A timeout or cancel after the start kills the whole PID namespace and returns 0
 * with timed_out/cancelled set.
 */
int ex_run(const struct ex_run_opts *opts, struct ex_result *ret, struct kiln_err *err);

#endif
