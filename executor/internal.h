/* Internal to executor/: the plan the parent prepares and the container child carries out. */
#ifndef KILN_EX_INTERNAL_H
#define KILN_EX_INTERNAL_H

#include "ex.h"

/* Docker's default capability set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID
 * SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP. */
#define EX_DEFAULT_CAPS 0xa80425fbULL

/* One mount, with everything the host side had to do already done. */
struct ex_mnt_plan {
	const struct ex_mount *m;
	char *target; /* cleaned absolute path in the container */
	/* Host paths, opened by the child only after it entered its mount namespace: a mount
	 * of the parent's namespace can neither be cloned nor stacked on from there. */
	char *src;   /* bind/ssh source, cache directory, or NULL */
	char *upper; /* overlay upper and work directories in the run directory */
	char *work;
	int lockfd;    /* the cache directory, holding the flock for the run, or -1 */
	bool dir;      /* the mount point is a directory */
	bool readonly; /* bind without rw, cache with readonly, secrets */
	bool overlay;  /* a rw bind of a directory: overlay with `src` as lower */
	char *secret;  /* secret: file name in the staging tmpfs */
};

/* Messages from the child processes to the parent over the close-on-exec sync pipe. */
enum {
	EX_MSG_PID = 'P',     /* code: the container init's pid (from the middle process) */
	EX_MSG_CREATED = 'C', /* payload: 'd' or 'f' + a path the child created in the rootfs */
	EX_MSG_ERROR = 'E',   /* code: errno, sys: strerror applies, payload: the message */
};
struct ex_msg_head {
	char type;
	bool sys;
	int32_t code;
	uint32_t len;
};
#define EX_MSG_MAX 4000 /* head + payload stay below PIPE_BUF: writes are atomic */

struct ex_plan {
	const struct ex_run_opts *o;
	char *rootfs;
	struct ex_user user;
	struct kiln_strv env;
	const char *path; /* PATH from env, for the exec search */
	char *rundir;     /* a private temporary directory on the host */
	int runfd;
	struct ex_mnt_plan *mounts;
	size_t nmounts;
	bool secrets; /* the run directory has a "secrets" dir to stage them on a tmpfs */
	struct ex_sshfwd *sshfwd; /* the ssh mounts' sockets, or NULL */
	int out_w, err_w, sync_w;
};

/*
 * The sockets of a run's ssh mounts (sshfwd.c). ex_sshfwd_add creates socket `name` in
 * directory `dirfd`, owned by uid:gid with mode's permission bits, that forwards each
 * connection to the agent socket at host path `agent` (opened now: a missing agent fails
 * here). ex_sshfwd_start serves them all on one thread (no-op without sockets);
 * ex_sshfwd_free stops it and closes every connection, leaving the socket files to the
 * directory's owner. Accepts NULL.
 */
struct ex_sshfwd;
struct ex_sshfwd *ex_sshfwd_new(void);
int ex_sshfwd_add(struct ex_sshfwd *f, const char *agent, int dirfd, const char *name, uid_t uid,
                  gid_t gid, mode_t mode, struct kiln_err *err);
int ex_sshfwd_start(struct ex_sshfwd *f, struct kiln_err *err);
void ex_sshfwd_free(struct ex_sshfwd *f);

/* Send one message; failures are ignored (the parent then sees EOF and a bad status). */
void ex_msg_send(int fd, char type, int code, bool sys, const char *payload);

/* The container's init: set up namespaces' contents and exec. Never returns; on failure
 * it sends EX_MSG_ERROR and exits 127. */
_Noreturn void ex_child_main(struct ex_plan *p);

#endif
