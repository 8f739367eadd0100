/*
 * The socket a RUN --mount=type=ssh sees. BuildKit never hands the container the agent's
 * own socket: each mount gets a fresh socket, owned by the mount's uid/gid with its mode
 * (default 0:0, 0600), that forwards every connection to the agent (sshforward's
 * MountSSHSocket). kiln does the same, for the same reasons: the owner and mode the
 * Dockerfile asks for apply in the container without touching the agent's socket on the
 * host (a user's $SSH_AUTH_SOCK must keep its owner), and an agent that checks its peer's
 * uid (OpenSSH's does) sees kiln, not a container user it does not know.
 *
 * One thread per run serves every ssh mount of that run: it accepts on each mount's
 * socket, connects to that mount's agent and copies bytes both ways until both sides
 * are done. It lives as long as the run: ex_sshfwd_free stops it and closes everything.
 */
#include "internal.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define FWD_CONNS_MAX 64 /* as kiln's own agent's client limit */

struct fwd_listener {
	int lfd;
	int agentfd; /* O_PATH on the agent's socket: connecting through /proc/self/fd has
	              * no sun_path length limit, and the inode cannot change under us */
};

/* One connection: a[0] the container's side, a[1] the agent's. A direction is done once
 * its reader saw EOF (the writer's side is then shut down for writing). */
struct fwd_conn {
	int fd[2];
	bool done[2]; /* done[i]: nothing more comes from fd[i] */
};

struct ex_sshfwd {
	int stopfd;
	pthread_t thread;
	bool started;
	struct fwd_listener *listeners;
	size_t nlisteners;
	struct fwd_conn conns[FWD_CONNS_MAX];
	size_t nconns;
};

void
ex_sshfwd_free(struct ex_sshfwd *f)
{
	if (!f)
		return;
	if (f->started) {
		uint64_t one = 1;
		(void)!write(f->stopfd, &one, sizeof(one));
		pthread_join(f->thread, NULL);
	}
	for (size_t i = 0; i < f->nconns; i++) {
		close(f->conns[i].fd[0]);
		close(f->conns[i].fd[1]);
	}
	for (size_t i = 0; i < f->nlisteners; i++) {
		kiln_closep(&f->listeners[i].lfd);
		kiln_closep(&f->listeners[i].agentfd);
	}
	kiln_closep(&f->stopfd);
	free(f->listeners);
	free(f);
}

struct ex_sshfwd *
ex_sshfwd_new(void)
{
	struct ex_sshfwd *f = kiln_xcalloc(1, sizeof(*f));
	f->stopfd = -1;
	return f;
}

int
ex_sshfwd_add(struct ex_sshfwd *f, const char *agent, int dirfd, const char *name, uid_t uid,
              gid_t gid, mode_t mode, struct kiln_err *err)
{
	if (f->started)
		return kiln_err_set(err, EBUSY, "ssh forwarder already started");
	_cleanup_close_ int agentfd = open(agent, O_PATH | O_CLOEXEC);
	if (agentfd < 0)
		return kiln_err_set(err, errno, "ssh agent socket %s", agent);
	struct stat st;
	if (fstat(agentfd, &st) < 0)
		return kiln_err_set(err, errno, "ssh agent socket %s", agent);
	if (!S_ISSOCK(st.st_mode))
		return kiln_err_set(err, ENOTSOCK, "ssh agent socket %s", agent);

	/* Bound through the directory's fd: the run directory's path may be longer than
	 * sun_path holds. */
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dirfd, name);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return kiln_err_set(err, ENAMETOOLONG, "ssh socket name %s", name);
	_cleanup_close_ int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return kiln_err_set(err, errno, "ssh forward socket");
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return kiln_err_set(err, errno, "bind ssh forward socket %s", name);
	/* The run directory (0700) keeps the host's users away until these are set. As
	 * BuildKit, only the permission bits apply: set-id bits mean nothing on a socket. */
	if (fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchmodat(dirfd, name, mode & 0777, 0) < 0)
		return kiln_err_set(err, errno, "ssh forward socket %s: set owner and mode", name);
	if (listen(lfd, 16) < 0)
		return kiln_err_set(err, errno, "listen on ssh forward socket %s", name);
	f->listeners = kiln_xreallocarray(f->listeners, f->nlisteners + 1, sizeof(*f->listeners));
	f->listeners[f->nlisteners++] = (struct fwd_listener){
	        .lfd = TAKE_FD(lfd),
	        .agentfd = TAKE_FD(agentfd),
	};
	return 0;
}

static void
conn_close(struct ex_sshfwd *f, size_t i)
{
	close(f->conns[i].fd[0]);
	close(f->conns[i].fd[1]);
	f->conns[i] = f->conns[--f->nconns];
}

static void
conn_accept(struct ex_sshfwd *f, const struct fwd_listener *l)
{
	_cleanup_close_ int cfd = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (cfd < 0 || f->nconns == FWD_CONNS_MAX)
		return;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d", l->agentfd);
	_cleanup_close_ int afd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* An agent that is gone closes the container's connection: the client sees EOF, as
	 * it would from a dead agent. */
	if (afd < 0 || connect(afd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return;
	f->conns[f->nconns++] = (struct fwd_conn){.fd = {TAKE_FD(cfd), TAKE_FD(afd)}};
}

/* Copy what fd[from] has to fd[!from]; false when the connection is to be closed. */
static bool
conn_pump(struct fwd_conn *c, int from, int stopfd)
{
	char buf[16384];
	ssize_t n = read(c->fd[from], buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n < 0)
		return false;
	if (n == 0) {
		/* Half a close: the other side may still answer what it was sent. */
		c->done[from] = true;
		shutdown(c->fd[!from], SHUT_WR);
		return !c->done[!from];
	}
	/* A peer that stops reading (a RUN that writes requests and never reads the answers
	 * fills the agent's socket, and the agent stops reading too) must not block this
	 * thread past the run's end: wait for room or for stopfd, never in send. */
	for (ssize_t off = 0; off < n;) {
		ssize_t w = send(c->fd[!from], buf + off, (size_t)(n - off),
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p[2] = {{.fd = c->fd[!from], .events = POLLOUT},
			                      {.fd = stopfd, .events = POLLIN}};
			if ((poll(p, 2, -1) < 0 && errno != EINTR) || p[1].revents)
				return false;
			continue;
		}
		if (w < 0)
			return false;
		off += w;
	}
	return true;
}

static void *
fwd_main(void *arg)
{
	struct ex_sshfwd *f = arg;
	size_t max = 1 + f->nlisteners + 2 * FWD_CONNS_MAX;
	struct pollfd *pfd = kiln_xcalloc(max, sizeof(*pfd));
	for (;;) {
		size_t n = 0;
		pfd[n++] = (struct pollfd){.fd = f->stopfd, .events = POLLIN};
		for (size_t i = 0; i < f->nlisteners; i++)
			pfd[n++] = (struct pollfd){.fd = f->listeners[i].lfd, .events = POLLIN};
		size_t first_conn = n;
		for (size_t i = 0; i < f->nconns; i++)
			for (int s = 0; s < 2; s++)
				/* a negative fd is skipped by poll: a finished direction */
				pfd[n++] = (struct pollfd){
				        .fd = f->conns[i].done[s] ? -1 : f->conns[i].fd[s],
				        .events = POLLIN};
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			break;
		/* connections first, from the end, as conn_close moves the last one down */
		for (size_t i = f->nconns; i-- > 0;) {
			bool ok = true;
			for (int s = 0; s < 2 && ok; s++)
				if (pfd[first_conn + 2 * i + s].revents)
					ok = conn_pump(&f->conns[i], s, f->stopfd);
			if (!ok)
				conn_close(f, i);
		}
		for (size_t i = 0; i < f->nlisteners; i++)
			if (pfd[1 + i].revents & POLLIN)
				conn_accept(f, &f->listeners[i]);
	}
	free(pfd);
	return NULL;
}

int
ex_sshfwd_start(struct ex_sshfwd *f, struct kiln_err *err)
{
	if (f->started || !f->nlisteners)
		return 0;
	f->stopfd = eventfd(0, EFD_CLOEXEC);
	if (f->stopfd < 0)
		return kiln_err_set(err, errno, "eventfd");
	/* Signals stay with the thread that waits for them (kiln build's signalfd). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int pr = pthread_create(&f->thread, NULL, fwd_main, f);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pr != 0)
		return kiln_err_set(err, pr, "ssh forwarder thread");
	f->started = true;
	return 0;
}
