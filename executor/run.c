/*
 * ex_run: the parent side. It prepares what lives on the host (a private run directory with
 * hosts/resolv.conf/hostname, overlay uppers, cache directories and their locks), starts
 * the container, streams its output, enforces the timeout and cancel, and afterwards
 * removes everything it or the child created.
 *
 * Process shape: kiln forks a short-lived middle process, which unshares the namespaces
 * and clones the container init with CLONE_PARENT, so the init is kiln's own child: kiln
 * can wait for it and kill it by pid with no reuse race, and killing the init of a PID
 * namespace kills every process in it. The middle is needed because fork() (not a raw
 * clone) is the only safe way out of a threaded process: it keeps malloc consistent.
 */
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#define DEFAULT_PATH   "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define LINE_MAX_BYTES (64 * 1024)

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- host files ---- */

static int
write_file_at(int dirfd, const char *name, const char *content, mode_t mode, struct kiln_err *err)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode);
	if (fd < 0)
		return kiln_err_set(err, errno, "create %s", name);
	size_t len = strlen(content);
	if (write(fd, content, len) != (ssize_t)len)
		return kiln_err_set(err, errno ? errno : EIO, "write %s", name);
	return 0;
}

/* mkdir -p for host paths kiln itself chose (the store root). */
static int
mkdir_p(const char *path, mode_t mode, struct kiln_err *err)
{
	_cleanup_free_ char *p = kiln_xstrdup(path);
	for (char *s = p + 1;; s++) {
		if (*s && *s != '/')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return kiln_err_set(err, errno, "mkdir %s", p);
		*s = c;
		if (!c)
			return 0;
	}
}

static int
write_etc_files(struct ex_plan *p, struct kiln_err *err)
{
	const char *hn = p->o->hostname ? p->o->hostname : "kiln";
	_cleanup_free_ char *hosts = kiln_xasprintf(
	        "127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost ip6-loopback\n", hn);
	_cleanup_free_ char *hostname = kiln_xasprintf("%s\n", hn);
	_cleanup_buf_ struct kiln_buf resolv = KILN_BUF_INIT;
	struct kiln_err e = KILN_ERR_INIT;
	if (kiln_buf_read_file(&resolv, "/etc/resolv.conf", &e) < 0) {
		kiln_err_release(&e);
		kiln_buf_reset(&resolv);
		kiln_buf_addstr(&resolv, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
	}
	int r;
	if ((r = write_file_at(p->runfd, "hosts", hosts, 0644, err)) < 0 ||
	    (r = write_file_at(p->runfd, "hostname", hostname, 0644, err)) < 0 ||
	    (r = write_file_at(p->runfd, "resolv.conf", resolv.buf, 0644, err)) < 0)
		return r;
	return 0;
}

/* ---- environment ---- */

static const char *
env_get(struct kiln_strv *env, const char *key)
{
	size_t kl = strlen(key);
	for (size_t i = 0; i < env->n; i++)
		if (!strncmp(env->v[i], key, kl) && env->v[i][kl] == '=')
			return env->v[i] + kl + 1;
	return NULL;
}

/* Set key=value, replacing an earlier value (a later -e wins, as with docker run). */
static void
env_set(struct kiln_strv *env, const char *key, const char *value, size_t vlen)
{
	size_t kl = strlen(key);
	char *kv = kiln_xasprintf("%s=%.*s", key, (int)vlen, value);
	for (size_t i = 0; i < env->n; i++)
		if (!strncmp(env->v[i], key, kl) && env->v[i][kl] == '=') {
			free(env->v[i]);
			env->v[i] = kv;
			return;
		}
	kiln_strv_push_take(env, kv);
}

/* ---- cache mounts ---- */

/* flock, giving up on cancel or timeout: another build may hold a locked cache for long. */
static int
lock_wait(int fd, int op, const struct ex_run_opts *o, uint64_t deadline, const char *what,
          struct kiln_err *err)
{
	for (;;) {
		if (flock(fd, op | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return kiln_err_set(err, errno, "lock cache %s", what);
		if (deadline && now_ms() >= deadline)
			return kiln_err_set(err, ETIMEDOUT, "waiting for cache %s", what);
		struct pollfd pfd = {.fd = o->cancel_fd, .events = POLLIN};
		if (o->cancel_fd >= 0 && poll(&pfd, 1, 100) > 0)
			return kiln_err_set(err, ECANCELED, "waiting for cache %s", what);
		if (o->cancel_fd < 0)
			poll(NULL, 0, 100);
	}
}

/* Create a directory with its final owner and mode under a temporary name, then rename
 * it into place, so no run ever sees a cache directory with the wrong owner. */
static int
create_dir_at(int dirfd, const char *name, const struct ex_mount *m, struct kiln_err *err)
{
	_cleanup_free_ char *tmp = kiln_xasprintf(".tmp-%s-%d", name, (int)getpid());
	if (mkdirat(dirfd, tmp, 0700) < 0)
		return kiln_err_set(err, errno, "mkdir cache %s", name);
	if (fchownat(dirfd, tmp, m->has_uid ? m->uid : 0, m->has_gid ? m->gid : 0,
	             AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchmodat(dirfd, tmp, m->has_mode ? m->mode : 0755, 0) < 0) {
		int e = errno;
		unlinkat(dirfd, tmp, AT_REMOVEDIR);
		return kiln_err_set(err, e, "cache %s: set owner and mode", name);
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		int e = errno;
		unlinkat(dirfd, tmp, AT_REMOVEDIR);
		if (e != EEXIST && e != ENOTEMPTY)
			return kiln_err_set(err, e, "cache %s", name);
	}
	return 0;
}

static int
prepare_cache(struct ex_plan *p, struct ex_mnt_plan *mp, size_t idx, uint64_t deadline,
              struct kiln_err *err)
{
	const struct ex_run_opts *o = p->o;
	const struct ex_mount *m = mp->m;
	if (!o->store_root)
		return kiln_err_invalid(err, "--mount type=cache needs a store root");
	_cleanup_free_ char *area = kiln_xasprintf("%s/cache-mounts", o->store_root);
	int r = mkdir_p(area, 0700, err);
	if (r < 0)
		return r;
	_cleanup_close_ int areafd = open(area, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (areafd < 0)
		return kiln_err_set(err, errno, "open %s", area);
	_cleanup_free_ char *name = ex_cache_dir_name(m->id ? m->id : m->target);
	int fd = openat(areafd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if ((r = create_dir_at(areafd, name, m, err)) < 0)
			return r;
		fd = openat(areafd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return kiln_err_set(err, errno, "open cache %s/%s", area, name);
	mp->lockfd = fd;
	mp->src = kiln_xasprintf("%s/%s", area, name);
	const char *what = m->id ? m->id : m->target;
	switch (m->sharing) {
	case EX_SHARING_SHARED:
		return lock_wait(fd, LOCK_SH, o, deadline, what, err);
	case EX_SHARING_LOCKED:
		return lock_wait(fd, LOCK_EX, o, deadline, what, err);
	case EX_SHARING_PRIVATE:
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK)
			return kiln_err_set(err, errno, "lock cache %s", what);
		/* In use elsewhere: this run gets a fresh directory of its own. */
		close(TAKE_FD(mp->lockfd));
		free(mp->src);
		_cleanup_free_ char *own = kiln_xasprintf("cache%zu", idx);
		mp->src = kiln_xasprintf("%s/%s", p->rundir, own);
		return create_dir_at(p->runfd, own, m, err);
	}
	return 0;
}

/* ---- plan ---- */

static int
prepare_bind(struct ex_plan *p, struct ex_mnt_plan *mp, size_t idx, struct kiln_err *err)
{
	const struct ex_mount *m = mp->m;
	struct stat st;
	if (stat(m->source, &st) < 0)
		return kiln_err_set(err, errno, "--mount source %s", m->source);
	mp->dir = S_ISDIR(st.st_mode);
	mp->src = kiln_xstrdup(m->source);
	if (!m->rw)
		return 0;
	/* rw: the writes go to a throwaway copy, never to the source. */
	_cleanup_free_ char *d = kiln_xasprintf("bind%zu", idx);
	if (mkdirat(p->runfd, d, 0700) < 0)
		return kiln_err_set(err, errno, "mkdir %s/%s", p->rundir, d);
	_cleanup_close_ int dfd = openat(p->runfd, d, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kiln_err_set(err, errno, "open %s/%s", p->rundir, d);
	if (mp->dir) {
		if (mkdirat(dfd, "upper", 0755) < 0 || mkdirat(dfd, "work", 0700) < 0)
			return kiln_err_set(err, errno, "mkdir overlay dirs in %s", p->rundir);
		/* The upper's root takes the source's owner and mode, as the merged root shows. */
		if (fchownat(dfd, "upper", st.st_uid, st.st_gid, 0) < 0 ||
		    fchmodat(dfd, "upper", st.st_mode & 07777, 0) < 0)
			return kiln_err_set(err, errno, "overlay upper for %s", m->source);
		mp->upper = kiln_xasprintf("%s/%s/upper", p->rundir, d);
		mp->work = kiln_xasprintf("%s/%s/work", p->rundir, d);
		mp->overlay = true;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return kiln_err_invalid(err, "--mount type=bind,rw: %s is not a file or directory",
		                        m->source);
	_cleanup_close_ int in = open(m->source, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int out =
	        openat(dfd, "file", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, st.st_mode & 07777);
	if (in < 0 || out < 0)
		return kiln_err_set(err, errno, "copy %s", m->source);
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			return kiln_err_set(err, errno ? errno : EIO, "copy %s", m->source);
	if (n < 0)
		return kiln_err_set(err, errno, "copy %s", m->source);
	if (fchown(out, st.st_uid, st.st_gid) < 0)
		return kiln_err_set(err, errno, "copy %s", m->source);
	free(mp->src);
	mp->src = kiln_xasprintf("%s/%s/file", p->rundir, d);
	return 0;
}

static int
prepare_mounts(struct ex_plan *p, uint64_t deadline, struct kiln_err *err)
{
	const struct ex_run_opts *o = p->o;
	p->mounts = kiln_xcalloc(o->nmounts ? o->nmounts : 1, sizeof(*p->mounts));
	p->nmounts = o->nmounts;
	for (size_t i = 0; i < o->nmounts; i++)
		p->mounts[i].lockfd = -1; /* plan_release closes it, even after a failure */
	size_t nssh = 0;
	for (size_t i = 0; i < o->nmounts; i++) {
		struct ex_mnt_plan *mp = &p->mounts[i];
		const struct ex_mount *m = &o->mounts[i];
		mp->m = m;
		mp->dir = true;
		int r = ex_mount_check(m, err);
		if (r < 0)
			return r;
		if (m->target)
			mp->target = kiln_path_clean(m->target);
		switch (m->type) {
		case EX_MOUNT_BIND:
			mp->readonly = !m->rw;
			r = prepare_bind(p, mp, i, err);
			break;
		case EX_MOUNT_CACHE:
			mp->readonly = m->readonly;
			r = prepare_cache(p, mp, i, deadline, err);
			break;
		case EX_MOUNT_TMPFS:
			break;
		case EX_MOUNT_SECRET:
			mp->dir = false;
			mp->readonly = true;
			mp->secret = kiln_xasprintf("secret%zu", i);
			if (!mp->target && !m->env)
				mp->target = kiln_xasprintf("/run/secrets/%s", m->id);
			if (m->env)
				env_set(&p->env, m->env, m->data ? m->data : "", m->data_len);
			if (mp->target && !p->secrets) {
				if (mkdirat(p->runfd, "secrets", 0700) < 0)
					return kiln_err_set(err, errno, "mkdir %s/secrets",
					                    p->rundir);
				p->secrets = true;
			}
			break;
		case EX_MOUNT_SSH: {
			mp->dir = false;
			if (!mp->target)
				mp->target = kiln_xasprintf("/run/buildkit/ssh_agent.%zu", nssh);
			if (nssh++ == 0 && !env_get(&p->env, "SSH_AUTH_SOCK"))
				env_set(&p->env, "SSH_AUTH_SOCK", mp->target, strlen(mp->target));
			/* The container gets a socket of its own with the mount's owner and
			 * mode (BuildKit's defaults 0:0 0600), forwarding to the agent. */
			_cleanup_free_ char *name = kiln_xasprintf("ssh%zu.sock", i);
			mp->src = kiln_xasprintf("%s/%s", p->rundir, name);
			if (!p->sshfwd)
				p->sshfwd = ex_sshfwd_new();
			r = ex_sshfwd_add(p->sshfwd, m->source, p->runfd, name,
			                  m->has_uid ? m->uid : 0, m->has_gid ? m->gid : 0,
			                  m->has_mode ? m->mode : 0600, err);
			break;
		}
		}
		if (r < 0)
			return kiln_err_wrap(err, "--mount target=%s", m->target ? m->target : "");
	}
	return p->sshfwd ? ex_sshfwd_start(p->sshfwd, err) : 0;
}

static void
plan_release(struct ex_plan *p)
{
	/* before the run directory goes: the forwarder's sockets live there */
	ex_sshfwd_free(p->sshfwd);
	for (size_t i = 0; i < p->nmounts; i++) {
		struct ex_mnt_plan *mp = &p->mounts[i];
		free(mp->target);
		free(mp->secret);
		free(mp->src);
		free(mp->upper);
		free(mp->work);
		kiln_closep(&mp->lockfd); /* drops a cache lock */
	}
	free(p->mounts);
	if (p->runfd >= 0) {
		_cleanup_free_ char *parent = kiln_xstrdup(p->rundir);
		char *slash = strrchr(parent, '/');
		*slash = '\0';
		_cleanup_close_ int pfd =
		        open(*parent ? parent : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (pfd >= 0)
			kiln_rm_rf_at(pfd, slash + 1); /* best effort; stops at mounts */
		close(p->runfd);
	}
	free(p->rundir);
	free(p->rootfs);
	ex_user_release(&p->user);
	kiln_strv_release(&p->env);
}

/*
 * Remove a mount point the child created, walking the recorded path inside the rootfs
 * with O_NOFOLLOW: if the process replaced a directory on the way with a symlink, we stop
 * rather than follow it. Directories go only when empty; files only when still the
 * empty regular file we made.
 */
static void
remove_created(int rootfd, const char *rec)
{
	bool dir = rec[0] == 'd';
	_cleanup_free_ char *path = kiln_xstrdup(rec + 1);
	char *base = strrchr(path, '/');
	if (!base || !base[1])
		return;
	*base++ = '\0';
	_cleanup_close_ int cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	for (char *s = path, *tok; cur >= 0 && (tok = strsep(&s, "/"));) {
		if (!*tok)
			continue;
		if (kiln_str_eq(tok, "..") || kiln_str_eq(tok, "."))
			return;
		int next = openat(cur, tok, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(cur);
		cur = next;
	}
	if (cur < 0)
		return;
	struct stat st;
	if (fstatat(cur, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (dir && S_ISDIR(st.st_mode))
		unlinkat(cur, base, AT_REMOVEDIR);
	else if (!dir && S_ISREG(st.st_mode) && st.st_size == 0)
		unlinkat(cur, base, 0);
}

/* ---- output ---- */

struct stream {
	int fd;
	int id;
	struct kiln_buf buf;
};

static void
emit_lines(const struct ex_run_opts *o, struct stream *s, bool eof)
{
	size_t start = 0;
	for (;;) {
		size_t avail = s->buf.len - start;
		/* A newline right after 64 KiB still ends that line, not an empty next one. */
		size_t look = avail <= LINE_MAX_BYTES ? avail : LINE_MAX_BYTES + 1;
		char *nl = memchr(s->buf.buf + start, '\n', look);
		size_t len;
		if (nl)
			len = (size_t)(nl - (s->buf.buf + start));
		else if (avail > LINE_MAX_BYTES)
			len = LINE_MAX_BYTES; /* a piece of an overlong line */
		else if (eof && avail)
			len = avail;
		else
			break;
		if (o->output)
			o->output(o->output_data, s->id, s->buf.buf + start, len);
		start += len + (nl ? 1 : 0);
	}
	if (start) {
		memmove(s->buf.buf, s->buf.buf + start, s->buf.len - start);
		kiln_buf_setlen(&s->buf, s->buf.len - start);
	}
}

/* Read what is there; returns false at EOF. */
static bool
pump(const struct ex_run_opts *o, struct stream *s)
{
	kiln_buf_grow(&s->buf, 65536);
	ssize_t n = read(s->fd, s->buf.buf + s->buf.len, 65536);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0) {
		emit_lines(o, s, true);
		return false;
	}
	kiln_buf_setlen(&s->buf, s->buf.len + (size_t)n);
	emit_lines(o, s, false);
	return true;
}

/* ---- processes ---- */

_Noreturn static void
middle_main(struct ex_plan *p)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
	if (p->o->network == EX_NET_NONE)
		flags |= CLONE_NEWNET;
	if (unshare(flags) < 0) {
		ex_msg_send(p->sync_w, EX_MSG_ERROR, errno, true, "unshare namespaces");
		_exit(127);
	}
	/* This process is single-threaded, so a raw clone is as safe as fork here. */
	long pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0) {
		ex_msg_send(p->sync_w, EX_MSG_ERROR, errno, true, "clone the container init");
		_exit(127);
	}
	if (pid == 0)
		ex_child_main(p);
	ex_msg_send(p->sync_w, EX_MSG_PID, (int)pid, false, NULL);
	_exit(0);
}

static int
open_pidfd(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

struct supervise {
	pid_t middle, init;
	int pidfd;
	bool kill_pending, killed;
	struct kiln_buf sync;
	struct kiln_strv created;
	struct kiln_err child_err;
	bool child_failed;
};

static void
kill_init(struct supervise *s)
{
	if (s->init > 0 && !s->killed) {
		kill(s->init, SIGKILL);
		s->killed = true;
	} else if (s->init <= 0) {
		s->kill_pending = true;
	}
}

static void
parse_sync(struct supervise *s)
{
	size_t off = 0;
	while (s->sync.len - off >= sizeof(struct ex_msg_head)) {
		struct ex_msg_head h;
		memcpy(&h, s->sync.buf + off, sizeof(h));
		if (s->sync.len - off - sizeof(h) < h.len)
			break;
		const char *payload = s->sync.buf + off + sizeof(h);
		if (h.type == EX_MSG_PID) {
			s->init = h.code;
			s->pidfd = open_pidfd(s->init);
			if (s->kill_pending)
				kill_init(s);
		} else if (h.type == EX_MSG_CREATED) {
			kiln_strv_push_take(&s->created, kiln_xstrndup(payload, h.len));
		} else if (h.type == EX_MSG_ERROR && !s->child_failed) {
			s->child_failed = true;
			if (h.sys)
				kiln_err_set(&s->child_err, h.code, "%.*s", (int)h.len, payload);
			else {
				kiln_err_invalid(&s->child_err, "%.*s", (int)h.len, payload);
				s->child_err.code = h.code;
			}
		}
		off += sizeof(h) + h.len;
	}
	memmove(s->sync.buf, s->sync.buf + off, s->sync.len - off);
	kiln_buf_setlen(&s->sync, s->sync.len - off);
}

static int
supervise(struct ex_plan *p, int sync_r, struct stream *out, struct stream *errs, uint64_t deadline,
          struct supervise *s, struct ex_result *res)
{
	const struct ex_run_opts *o = p->o;
	bool sync_open = true, out_open = true, err_open = true, exited = false;
	while (sync_open || out_open || err_open || (s->init > 0 && !exited)) {
		struct pollfd fds[5];
		int idx[5];
		nfds_t n = 0;
		if (sync_open)
			fds[n] = (struct pollfd){.fd = sync_r, .events = POLLIN}, idx[n++] = 0;
		if (out_open)
			fds[n] = (struct pollfd){.fd = out->fd, .events = POLLIN}, idx[n++] = 1;
		if (err_open)
			fds[n] = (struct pollfd){.fd = errs->fd, .events = POLLIN}, idx[n++] = 2;
		if (s->pidfd >= 0 && !exited)
			fds[n] = (struct pollfd){.fd = s->pidfd, .events = POLLIN}, idx[n++] = 3;
		if (o->cancel_fd >= 0 && !res->cancelled && !res->timed_out)
			fds[n] = (struct pollfd){.fd = o->cancel_fd, .events = POLLIN},
			idx[n++] = 4;
		int timeout = -1;
		if (deadline && !res->timed_out && !res->cancelled) {
			uint64_t t = now_ms();
			timeout = t >= deadline
			                  ? 0
			                  : (int)(deadline - t > 60000 ? 60000 : deadline - t);
		}
		/* Without a pidfd (pidfd_open failed), look for the exit now and then. */
		if (s->init > 0 && s->pidfd < 0 && !exited && (timeout < 0 || timeout > 100))
			timeout = 100;
		int r = poll(fds, n, timeout);
		if (r < 0 && errno != EINTR)
			return -errno;
		for (nfds_t i = 0; r > 0 && i < n; i++) {
			if (!fds[i].revents)
				continue;
			switch (idx[i]) {
			case 0: {
				kiln_buf_grow(&s->sync, 4096);
				ssize_t k = read(sync_r, s->sync.buf + s->sync.len, 4096);
				if (k < 0 && errno == EINTR)
					break;
				if (k <= 0) {
					sync_open = false;
					break;
				}
				kiln_buf_setlen(&s->sync, s->sync.len + (size_t)k);
				parse_sync(s);
				break;
			}
			case 1:
				out_open = pump(o, out);
				break;
			case 2:
				err_open = pump(o, errs);
				break;
			case 3:
				exited = true;
				break;
			case 4:
				res->cancelled = true;
				kill_init(s);
				break;
			}
		}
		if (deadline && !res->timed_out && !res->cancelled && now_ms() >= deadline) {
			res->timed_out = true;
			kill_init(s);
		}
		if (s->init > 0 && s->pidfd < 0 && !exited) {
			siginfo_t si = {0};
			if (waitid(P_PID, (id_t)s->init, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
			    si.si_pid)
				exited = true;
		}
		/* Setup failed before the init existed: nothing more will come. */
		if (!sync_open && s->init <= 0)
			break;
	}
	return 0;
}

int
ex_run(const struct ex_run_opts *o, struct ex_result *ret, struct kiln_err *err)
{
	if (geteuid() != 0)
		return kiln_err_set(
		        err, EPERM,
		        "running containers needs root today (rootless mode is planned)");
	if (!o->rootfs || !*o->rootfs)
		return kiln_err_invalid(err, "no rootfs given");
	if (!o->argv || !o->argv[0] || !*o->argv[0])
		return kiln_err_invalid(err, "no command given");
	const char *cwd = o->cwd ? o->cwd : "/";
	if (cwd[0] != '/')
		return kiln_err_invalid(err, "working directory %s is not absolute", cwd);
	/* The hostname goes into /etc/hosts too: it must be one line of a DNS name. */
	const char *hn = o->hostname ? o->hostname : "kiln";
	if (!*hn || strlen(hn) > 63 ||
	    strspn(hn, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	               "0123456789.-") != strlen(hn))
		return kiln_err_invalid(err, "hostname \"%s\" is not a DNS name", hn);
	uint64_t deadline = o->timeout_ms ? now_ms() + o->timeout_ms : 0;
	struct ex_run_opts opts = *o;
	opts.cwd = cwd;

	struct ex_plan p = {.o = &opts, .runfd = -1, .out_w = -1, .err_w = -1, .sync_w = -1};
	struct supervise s = {.pidfd = -1, .sync = KILN_BUF_INIT};
	struct stream out = {.fd = -1, .id = EX_STREAM_STDOUT, .buf = KILN_BUF_INIT};
	struct stream errs = {.fd = -1, .id = EX_STREAM_STDERR, .buf = KILN_BUF_INIT};
	int sync_r = -1, r;
	struct ex_result res = {0};

	p.rootfs = kiln_xstrdup(o->rootfs);
	_cleanup_close_ int rootfd = open(p.rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		r = kiln_err_set(err, errno, "rootfs %s", p.rootfs);
		goto out;
	}
	if ((r = ex_user_resolve_at(rootfd, o->user, &p.user, err)) < 0)
		goto out;
	for (char *const *e = o->env; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq || eq == *e) {
			r = kiln_err_invalid(err, "environment entry \"%s\" is not KEY=VALUE", *e);
			goto out;
		}
		_cleanup_free_ char *key = kiln_xstrndup(*e, (size_t)(eq - *e));
		env_set(&p.env, key, eq + 1, strlen(eq + 1));
	}
	if (!env_get(&p.env, "PATH"))
		env_set(&p.env, "PATH", DEFAULT_PATH, strlen(DEFAULT_PATH));
	if (!env_get(&p.env, "HOME"))
		env_set(&p.env, "HOME", p.user.home, strlen(p.user.home));

	const char *tmp = o->tmpdir ? o->tmpdir : getenv("TMPDIR");
	p.rundir = kiln_xasprintf("%s/kiln-run-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(p.rundir)) {
		r = kiln_err_set(err, errno, "mkdtemp %s", p.rundir);
		goto out;
	}
	p.runfd = open(p.rundir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (p.runfd < 0) {
		r = kiln_err_set(err, errno, "open %s", p.rundir);
		goto out;
	}
	if ((r = write_etc_files(&p, err)) < 0 || (r = prepare_mounts(&p, deadline, err)) < 0)
		goto out;
	/* PATH may have been set by a secret env= too: look it up last. */
	p.path = env_get(&p.env, "PATH");

	int pipes[3][2];
	for (int i = 0; i < 3; i++)
		pipes[i][0] = pipes[i][1] = -1;
	for (int i = 0; i < 3; i++)
		if (pipe2(pipes[i], O_CLOEXEC) < 0) {
			r = kiln_err_set(err, errno, "pipe");
			for (int j = 0; j < 3; j++) {
				kiln_closep(&pipes[j][0]);
				kiln_closep(&pipes[j][1]);
			}
			goto out;
		}
	out.fd = pipes[0][0], p.out_w = pipes[0][1];
	errs.fd = pipes[1][0], p.err_w = pipes[1][1];
	sync_r = pipes[2][0], p.sync_w = pipes[2][1];

	s.middle = fork();
	if (s.middle < 0) {
		r = kiln_err_set(err, errno, "fork");
		goto out;
	}
	if (s.middle == 0)
		middle_main(&p);
	kiln_closep(&p.out_w);
	kiln_closep(&p.err_w);
	kiln_closep(&p.sync_w);

	r = supervise(&p, sync_r, &out, &errs, deadline, &s, &res);
	while (waitpid(s.middle, NULL, 0) < 0 && errno == EINTR)
		;
	if (r < 0) {
		/* poll failed: never leave the container running. */
		kill_init(&s);
		r = kiln_err_set(err, -r, "supervise the container");
	}
	if (s.init > 0) {
		int status = 0;
		while (waitpid(s.init, &status, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(status))
			res.exit_code = WEXITSTATUS(status);
		else if (WIFSIGNALED(status))
			res.signal = WTERMSIG(status);
	}
	if (r == 0 && s.child_failed) {
		*err = s.child_err;
		s.child_err = (struct kiln_err)KILN_ERR_INIT;
		r = -err->code;
	} else if (r == 0 && s.init <= 0 && !res.cancelled && !res.timed_out) {
		r = kiln_err_set(err, EIO, "the container did not start");
	} else if (r == 0 && s.init <= 0) {
		r = kiln_err_set(err, res.cancelled ? ECANCELED : ETIMEDOUT, "container setup");
	}

out:
	/* The namespace is gone with its init: what the child created in the rootfs is no
	 * longer a mount point and can go. */
	if (s.created.n) {
		_cleanup_close_ int fresh = open(p.rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
		for (size_t i = s.created.n; fresh >= 0 && i-- > 0;)
			remove_created(fresh, s.created.v[i]);
	}
	kiln_strv_release(&s.created);
	kiln_buf_release(&s.sync);
	kiln_err_release(&s.child_err);
	kiln_closep(&s.pidfd);
	kiln_closep(&sync_r);
	kiln_closep(&out.fd);
	kiln_closep(&errs.fd);
	kiln_buf_release(&out.buf);
	kiln_buf_release(&errs.buf);
	kiln_closep(&p.out_w);
	kiln_closep(&p.err_w);
	kiln_closep(&p.sync_w);
	plan_release(&p);
	if (r >= 0)
		*ret = res;
	return r < 0 ? r : 0;
}
