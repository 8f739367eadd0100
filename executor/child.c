/*
 * The container's init process: it runs in fresh mount, PID, UTS, IPC (and maybe network)
 * namespaces, builds the container's view of the filesystem, drops privileges and execs.
 * It only sets up and execs (crun, bubblewrap): every failure goes back to the parent as a
 * message on the close-on-exec sync pipe, followed by _exit.
 *
 * Mount points are resolved inside the rootfs and mounted through their fds (new mount API
 * for binds, /proc/self/fd/N for filesystems), so a symlink planted in the image can never
 * redirect a mount to the host.
 */
#include "internal.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <net/if.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>

struct child {
	struct ex_plan *p;
	int rootfd;
	char *rootreal; /* the rootfs as /proc/self/fd shows it, to name created paths */
};

void
ex_msg_send(int fd, char type, int code, bool sys, const char *payload)
{
	char buf[sizeof(struct ex_msg_head) + EX_MSG_MAX];
	size_t len = payload ? strlen(payload) : 0;
	if (len > EX_MSG_MAX)
		len = EX_MSG_MAX;
	struct ex_msg_head h = {.type = type, .sys = sys, .code = code, .len = (uint32_t)len};
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), payload, len);
	ssize_t n;
	do
		n = write(fd, buf, sizeof(h) + len);
	while (n < 0 && errno == EINTR);
}

static void
fdpath(char buf[32], int fd)
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
}

/* ---- mount points ---- */

/* Where a directory fd is, as a path below the rootfs ("" for the rootfs itself). */
static int
rel_path(struct child *c, int dirfd, char **ret, struct kiln_err *err)
{
	char link[32], real[PATH_MAX];
	fdpath(link, dirfd);
	ssize_t n = readlink(link, real, sizeof(real) - 1);
	if (n < 0)
		return kiln_err_set(err, errno, "readlink %s", link);
	real[n] = '\0';
	size_t rl = strlen(c->rootreal);
	if (strncmp(real, c->rootreal, rl) || (real[rl] && real[rl] != '/'))
		return kiln_err_set(err, EXDEV, "%s is outside the rootfs", real);
	*ret = kiln_xstrdup(real + rl);
	return 0;
}

static int
report_created(struct child *c, int parentfd, const char *name, bool dir, struct kiln_err *err)
{
	_cleanup_free_ char *parent = NULL;
	int r = rel_path(c, parentfd, &parent, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *rel = kiln_xasprintf("%c%s/%s", dir ? 'd' : 'f', parent, name);
	if (strlen(rel) > EX_MSG_MAX)
		return kiln_err_set(err, ENAMETOOLONG, "mount point %s", rel + 1);
	ex_msg_send(c->p->sync_w, EX_MSG_CREATED, 0, false, rel);
	return 0;
}

static int
check_type(int fd, const char *path, bool dir, struct kiln_err *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return kiln_err_set(err, errno, "stat %s", path);
	if (dir && !S_ISDIR(st.st_mode))
		return kiln_err_set(err, ENOTDIR, "mount point %s", path);
	if (!dir && S_ISDIR(st.st_mode))
		return kiln_err_set(err, EISDIR, "mount point %s (mounting a file)", path);
	return 0;
}

/*
 * An O_PATH fd of `path` inside the rootfs, to mount on. What is missing is created: the
 * directories on the way and the last component (a directory, or an empty file when !dir),
 * and each created entry is reported to the parent, which removes it after the run. A
 * dangling symlink on the way is followed inside the rootfs, as runc does.
 */
static int
mountpoint(struct child *c, const char *path, bool dir, struct kiln_err *err)
{
	_cleanup_free_ char *todo = kiln_path_join("/", path);
	int links = 0;
	for (;;) {
		struct kiln_err e = KILN_ERR_INIT;
		int fd = kiln_path_openat_in_root(c->rootfd, todo, O_PATH, 0, &e);
		kiln_err_release(&e);
		if (fd >= 0) {
			int r = check_type(fd, path, dir, err);
			if (r < 0) {
				close(fd);
				return r;
			}
			return fd;
		}
		if (fd != -ENOENT)
			return kiln_err_set(err, -fd, "mount point %s", path);

		/* Find the first missing component. */
		char *slash = todo;
		_cleanup_close_ int parent = -1;
		for (;;) {
			char *next = strchr(slash + 1, '/');
			_cleanup_free_ char *prefix =
			        next ? kiln_xstrndup(todo, (size_t)(next - todo))
			             : kiln_xstrdup(todo);
			int pfd = kiln_path_openat_in_root(c->rootfd, prefix, O_PATH, 0, &e);
			kiln_err_release(&e);
			if (pfd == -ENOENT)
				break;
			if (pfd < 0)
				return kiln_err_set(err, -pfd, "mount point %s", path);
			if (parent >= 0)
				close(parent);
			parent = pfd;
			if (!next)
				return kiln_err_set(err, EAGAIN, "mount point %s changed", path);
			slash = next;
		}
		if (parent < 0)
			parent = openat(c->rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (parent < 0)
			return kiln_err_set(err, errno, "open rootfs");
		char *end = strchrnul(slash + 1, '/');
		bool last = !*end;
		_cleanup_free_ char *name = kiln_xstrndup(slash + 1, (size_t)(end - slash - 1));

		struct stat st;
		if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n = readlinkat(parent, name, target, sizeof(target) - 1);
			if (n < 0)
				return kiln_err_set(err, errno, "readlink in %s", path);
			target[n] = '\0';
			if (++links > 40)
				return kiln_err_set(err, ELOOP, "mount point %s", path);
			/* A relative target is relative to the directory really holding the
			 * link; the next round resolves everything inside the root again. */
			_cleanup_free_ char *dirpart = NULL;
			int r = rel_path(c, parent, &dirpart, err);
			if (r < 0)
				return r;
			_cleanup_free_ char *base =
			        target[0] == '/' ? kiln_xstrdup(target)
			                         : kiln_path_join(*dirpart ? dirpart : "/", target);
			char *joined = kiln_path_join(base, *end ? end + 1 : "");
			free(todo);
			todo = kiln_path_join("/", joined);
			free(joined);
			continue;
		}
		if (!last || dir) {
			if (mkdirat(parent, name, 0755) < 0)
				return kiln_err_set(err, errno, "create mount point %s", path);
		} else {
			int f = openat(parent, name,
			               O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (f < 0)
				return kiln_err_set(err, errno, "create mount point %s", path);
			close(f);
		}
		int r = report_created(c, parent, name, !last || dir, err);
		if (r < 0)
			return r;
	}
}

/* Bind-mount the tree at srcfd onto the mount point fd, read-only if asked. */
static int
bind_fd(int srcfd, int mpfd, bool recursive, uint64_t attrs, const char *what, struct kiln_err *err)
{
	_cleanup_close_ int tree =
	        (int)syscall(SYS_open_tree, srcfd, "",
	                     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH |
	                             (recursive ? AT_RECURSIVE : 0));
	if (tree < 0)
		return kiln_err_set(err, errno, "bind %s: open_tree", what);
	if (attrs) {
		struct mount_attr a = {.attr_set = attrs};
		if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &a,
		            sizeof(a)) < 0)
			return kiln_err_set(err, errno, "bind %s: mount_setattr", what);
	}
	if (syscall(SYS_move_mount, tree, "", mpfd, "",
	            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return kiln_err_set(err, errno, "bind %s: move_mount", what);
	return 0;
}

static int
bind_path(const char *host, int mpfd, uint64_t attrs, struct kiln_err *err)
{
	_cleanup_close_ int src = open(host, O_PATH | O_CLOEXEC);
	if (src < 0)
		return kiln_err_set(err, errno, "open %s", host);
	return bind_fd(src, mpfd, false, attrs, host, err);
}

static int
mount_fs(const char *src, int mpfd, const char *type, unsigned long flags, const char *data,
         const char *what, struct kiln_err *err)
{
	char p[32];
	fdpath(p, mpfd);
	if (mount(src, p, type, flags, data) < 0)
		return kiln_err_set(err, errno, "mount %s on %s", type, what);
	return 0;
}

/*
 * The kernel filesystems' mount points must be real directories: a symlink there would
 * have procfs or sysfs mounted somewhere else in the image (runc's CVE-2019-19921).
 */
static int
kernel_mountpoint(struct child *c, const char *path, struct kiln_err *err)
{
	struct stat st;
	if (fstatat(c->rootfd, path + 1, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
		return kiln_err_set(err, ENOTDIR, "%s in the rootfs is not a directory", path);
	return mountpoint(c, path, true, err);
}

/* Mount a kernel filesystem at /proc, /dev or /sys. */
static int
mount_at(struct child *c, const char *path, const char *type, unsigned long flags, const char *data,
         struct kiln_err *err)
{
	_cleanup_close_ int mp = kernel_mountpoint(c, path, err);
	if (mp < 0)
		return mp;
	return mount_fs(type, mp, type, flags, data, path, err);
}

/* ---- the standard mounts ---- */

static int
setup_dev(struct child *c, struct kiln_err *err)
{
	int r = mount_at(c, "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k",
	                 err);
	if (r < 0)
		return r;
	_cleanup_close_ int dev =
	        kiln_path_openat_in_root(c->rootfd, "/dev", O_PATH | O_DIRECTORY, 0, err);
	if (dev < 0)
		return dev;
	static const struct {
		const char *name;
		unsigned major, minor;
	} nodes[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
	             {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(nodes); i++) {
		const char *name = nodes[i].name;
		_cleanup_free_ char *host = kiln_xasprintf("/dev/%s", name);
		/* The container's own node where kiln may make one: a bind mount would share
		 * the host's inode, and the container's root could chmod or chown it. */
		if (mknodat(dev, name, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor)) ==
		    0) {
			if (fchmodat(dev, name, 0666, 0) < 0) /* past the umask */
				return kiln_err_set(err, errno, "chmod /dev/%s", name);
			continue;
		}
		if (errno != EPERM || access(host, F_OK) < 0)
			return kiln_err_set(err, errno, "mknod /dev/%s", name);
		int f = openat(dev, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
		if (f < 0)
			return kiln_err_set(err, errno, "create /dev/%s", name);
		close(f);
		_cleanup_close_ int mp = openat(dev, name, O_PATH | O_CLOEXEC | O_NOFOLLOW);
		if (mp < 0)
			return kiln_err_set(err, errno, "open /dev/%s", name);
		/* Host device nodes, bind-mounted: works where mknod would not (rootless). */
		r = bind_path(host, mp, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, err);
		if (r < 0)
			return r;
	}
	static const struct {
		const char *name, *data;
		unsigned long flags;
	} dirs[] = {
	        {"pts", "newinstance,ptmxmode=0666,mode=0620,gid=5", MS_NOSUID | MS_NOEXEC},
	        {"shm", "mode=1777,size=65536k", MS_NOSUID | MS_NODEV | MS_NOEXEC},
	        {"mqueue", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC},
	};
	static const char *const fstypes[] = {"devpts", "tmpfs", "mqueue"};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(dirs); i++) {
		if (mkdirat(dev, dirs[i].name, 0755) < 0)
			return kiln_err_set(err, errno, "mkdir /dev/%s", dirs[i].name);
		_cleanup_close_ int mp =
		        openat(dev, dirs[i].name, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (mp < 0)
			return kiln_err_set(err, errno, "open /dev/%s", dirs[i].name);
		r = mount_fs(fstypes[i], mp, fstypes[i], dirs[i].flags, dirs[i].data, dirs[i].name,
		             err);
		if (r < 0)
			return r;
	}
	static const char *const links[][2] = {
	        {"pts/ptmx", "ptmx"},          {"/proc/self/fd", "fd"},
	        {"/proc/self/fd/0", "stdin"},  {"/proc/self/fd/1", "stdout"},
	        {"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"},
	};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(links); i++)
		if (symlinkat(links[i][0], dev, links[i][1]) < 0)
			return kiln_err_set(err, errno, "symlink /dev/%s", links[i][1]);
	return 0;
}

/*
 * Docker's (and BuildKit's) masked and read-only kernel paths: host information and knobs
 * a build step has no business with. Both /proc and /sys are fresh kernel filesystems
 * here, so nothing in them was planted by the image.
 */
static int
mask_kernel_paths(struct child *c, struct kiln_err *err)
{
	static const char *const masked[] = {
	        "/proc/asound",
	        "/proc/acpi",
	        "/proc/kcore",
	        "/proc/keys",
	        "/proc/latency_stats",
	        "/proc/timer_list",
	        "/proc/timer_stats",
	        "/proc/sched_debug",
	        "/proc/scsi",
	        "/sys/firmware",
	        "/sys/devices/virtual/powercap",
	};
	static const char *const readonly[] = {
	        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	};
	struct kiln_err e = KILN_ERR_INIT;
	for (size_t i = 0; i < KILN_ARRAY_SIZE(masked); i++) {
		_cleanup_close_ int fd =
		        kiln_path_openat_in_root(c->rootfd, masked[i], O_PATH | O_NOFOLLOW, 0, &e);
		kiln_err_release(&e);
		if (fd < 0)
			continue; /* not on this kernel */
		struct stat st;
		if (fstat(fd, &st) < 0)
			return kiln_err_set(err, errno, "stat %s", masked[i]);
		int r = S_ISDIR(st.st_mode) ? mount_fs("tmpfs", fd, "tmpfs", MS_RDONLY, "size=0",
		                                       masked[i], err)
		                            : bind_path("/dev/null", fd, MOUNT_ATTR_RDONLY, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < KILN_ARRAY_SIZE(readonly); i++) {
		_cleanup_close_ int fd = kiln_path_openat_in_root(c->rootfd, readonly[i],
		                                                  O_PATH | O_NOFOLLOW, 0, &e);
		kiln_err_release(&e);
		if (fd < 0)
			continue;
		int r = bind_fd(fd, fd, true,
		                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
		                        MOUNT_ATTR_NOEXEC,
		                readonly[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int
setup_etc(struct child *c, struct kiln_err *err)
{
	/* Files written by the parent outside the rootfs: the layer never changes. */
	static const char *const files[][2] = {
	        {"hosts", "/etc/hosts"},
	        {"resolv.conf", "/etc/resolv.conf"},
	        {"hostname", "/etc/hostname"},
	};
	for (size_t i = 0; i < KILN_ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *host = kiln_xasprintf("%s/%s", c->p->rundir, files[i][0]);
		_cleanup_close_ int src = open(host, O_PATH | O_CLOEXEC);
		if (src < 0)
			return kiln_err_set(err, errno, "open %s", host);
		_cleanup_close_ int mp = mountpoint(c, files[i][1], false, err);
		if (mp < 0)
			return mp;
		int r = bind_fd(src, mp, false,
		                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
		                files[i][1], err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- RUN --mount ---- */

static int
write_secret(int dirfd, const struct ex_mnt_plan *mp, struct kiln_err *err)
{
	const struct ex_mount *m = mp->m;
	_cleanup_close_ int fd =
	        openat(dirfd, mp->secret, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return kiln_err_set(err, errno, "create secret %s", mp->target);
	const char *d = m->data;
	size_t left = m->data_len;
	while (left) {
		ssize_t n = write(fd, d, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kiln_err_set(err, errno, "write secret %s", mp->target);
		d += n;
		left -= (size_t)n;
	}
	if (fchown(fd, m->has_uid ? m->uid : 0, m->has_gid ? m->gid : 0) < 0 ||
	    fchmod(fd, m->has_mode ? m->mode : 0400) < 0)
		return kiln_err_set(err, errno, "secret %s: set owner and mode", mp->target);
	return 0;
}

static int
setup_mount(struct child *c, const struct ex_mnt_plan *mp, int secretsfd, struct kiln_err *err)
{
	const struct ex_mount *m = mp->m;
	_cleanup_close_ int target = mountpoint(c, mp->target, mp->dir, err);
	if (target < 0)
		return target;
	uint64_t ro = mp->readonly ? MOUNT_ATTR_RDONLY : 0;
	switch (m->type) {
	case EX_MOUNT_BIND:
	case EX_MOUNT_CACHE:
	case EX_MOUNT_SSH: {
		_cleanup_close_ int src = open(mp->src, O_PATH | O_CLOEXEC);
		if (src < 0)
			return kiln_err_set(err, errno, "open %s", mp->src);
		if (!mp->overlay)
			return bind_fd(src, target, m->type != EX_MOUNT_SSH, ro, mp->target, err);
		_cleanup_close_ int upper = open(mp->upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
		_cleanup_close_ int work = open(mp->work, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (upper < 0 || work < 0)
			return kiln_err_set(err, errno, "open overlay dirs for %s", mp->target);
		char lp[32], up[32], wp[32];
		fdpath(lp, src);
		fdpath(up, upper);
		fdpath(wp, work);
		_cleanup_free_ char *data =
		        kiln_xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", lp, up, wp);
		return mount_fs("overlay", target, "overlay", 0, data, mp->target, err);
	}
	case EX_MOUNT_TMPFS: {
		_cleanup_free_ char *data =
		        m->size ? kiln_xasprintf("mode=1777,size=%llu", (unsigned long long)m->size)
		                : kiln_xstrdup("mode=1777");
		return mount_fs("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, data, mp->target,
		                err);
	}
	case EX_MOUNT_SECRET: {
		int r = write_secret(secretsfd, mp, err);
		if (r < 0)
			return r;
		_cleanup_close_ int src = openat(secretsfd, mp->secret, O_PATH | O_CLOEXEC);
		if (src < 0)
			return kiln_err_set(err, errno, "open secret %s", mp->target);
		return bind_fd(src, target, false,
		               MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
		                       MOUNT_ATTR_NOEXEC,
		               mp->target, err);
	}
	}
	return kiln_err_set(err, EINVAL, "mount type %d", (int)m->type);
}

static int
setup_mounts(struct child *c, struct kiln_err *err)
{
	struct ex_plan *p = c->p;
	_cleanup_close_ int secretsfd = -1;
	if (p->secrets) {
		/* Secrets live on a tmpfs in this mount namespace only: the host sees the
		 * empty directory, and no layer ever holds their bytes. */
		_cleanup_free_ char *staging = kiln_xasprintf("%s/secrets", p->rundir);
		_cleanup_close_ int mp = open(staging, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (mp < 0)
			return kiln_err_set(err, errno, "open %s", staging);
		int r = mount_fs("tmpfs", mp, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		                 "mode=0700,size=16m", "secrets staging", err);
		if (r < 0)
			return r;
		secretsfd = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (secretsfd < 0)
			return kiln_err_set(err, errno, "open %s/secrets", p->rundir);
	}
	for (size_t i = 0; i < p->nmounts; i++) {
		if (!p->mounts[i].target)
			continue; /* a secret exposed only as an environment variable */
		int r = setup_mount(c, &p->mounts[i], secretsfd, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- the process ---- */

static int
loopback_up(struct kiln_err *err)
{
	_cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return kiln_err_set(err, errno, "socket");
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return kiln_err_set(err, errno, "get lo flags");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return kiln_err_set(err, errno, "bring lo up");
	return 0;
}

/* --security=insecure: the capabilities kiln itself holds, all of them as root. */
static int
keep_all_caps(struct ex_plan *p, struct kiln_err *err)
{
	if (setgroups(p->user.ngroups, p->user.groups) < 0)
		return kiln_err_set(err, errno, "setgroups");
	if (setresgid(p->user.gid, p->user.gid, p->user.gid) < 0)
		return kiln_err_set(err, errno, "setgid %u", (unsigned)p->user.gid);
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2] = {0};
	if (syscall(SYS_capget, &h, d) < 0)
		return kiln_err_set(err, errno, "capget");
	for (int i = 0; i < 2; i++) {
		d[i].effective = d[i].permitted;
		d[i].inheritable = 0;
	}
	if (syscall(SYS_capset, &h, d) < 0)
		return kiln_err_set(err, errno, "capset");
	if (setresuid(p->user.uid, p->user.uid, p->user.uid) < 0)
		return kiln_err_set(err, errno, "setuid %u", (unsigned)p->user.uid);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return kiln_err_set(err, errno, "pdeathsig");
	return 0;
}

static int
drop_privileges(struct ex_plan *p, struct kiln_err *err)
{
	if (p->o->privileged)
		return keep_all_caps(p, err);
	for (int cap = 0; cap < 64; cap++) {
		if (EX_DEFAULT_CAPS & (1ULL << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return kiln_err_set(err, errno, "drop capability %d from the bounding set",
			                    cap);
	}
	if (setgroups(p->user.ngroups, p->user.groups) < 0)
		return kiln_err_set(err, errno, "setgroups");
	if (setresgid(p->user.gid, p->user.gid, p->user.gid) < 0)
		return kiln_err_set(err, errno, "setgid %u", (unsigned)p->user.gid);
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2] = {0};
	d[0].effective = d[0].permitted = (uint32_t)EX_DEFAULT_CAPS;
	d[1].effective = d[1].permitted = (uint32_t)(EX_DEFAULT_CAPS >> 32);
	/* Inheritable stays empty, as Docker has done since CVE-2022-24769. */
	if (syscall(SYS_capset, &h, d) < 0)
		return kiln_err_set(err, errno, "capset");
	/* Leaving uid 0 clears the permitted and effective sets: a USER gets no capabilities,
	 * as with Docker. */
	if (setresuid(p->user.uid, p->user.uid, p->user.uid) < 0)
		return kiln_err_set(err, errno, "setuid %u", (unsigned)p->user.uid);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return kiln_err_set(err, errno, "no_new_privs");
	/* Changing credentials cleared the parent-death signal; kiln dying must still kill. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return kiln_err_set(err, errno, "pdeathsig");
	return 0;
}

/* execvpe with the container's PATH (glibc's would search the host's). */
static int
exec_command(struct ex_plan *p, struct kiln_err *err)
{
	char *const *argv = p->o->argv;
	char *const *envp = kiln_strv_get(&p->env);
	const char *file = argv[0];
	if (strchr(file, '/')) {
		execve(file, argv, envp);
		return kiln_err_set(err, errno, "exec %s", file);
	}
	int saved = ENOENT;
	const char *dirs = p->path ? p->path : "";
	for (const char *d = dirs;;) {
		const char *end = strchrnul(d, ':');
		_cleanup_free_ char *full =
		        kiln_xasprintf("%.*s%s%s", (int)(end - d), d, end == d ? "" : "/", file);
		execve(full, argv, envp);
		if (errno == EACCES)
			saved = EACCES;
		else if (errno != ENOENT && errno != ENOTDIR)
			return kiln_err_set(err, errno, "exec %s", full);
		if (!*end)
			break;
		d = end + 1;
	}
	if (saved == EACCES)
		return kiln_err_set(err, EACCES, "exec %s", file);
	kiln_err_invalid(err, "exec %s: executable file not found in $PATH", file);
	err->code = ENOENT;
	return -ENOENT;
}

static int
setup(struct child *c, struct kiln_err *err)
{
	struct ex_plan *p = c->p;
	const struct ex_run_opts *o = p->o;
	/* Our parent is kiln (CLONE_PARENT); if kiln dies, so does the container. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return kiln_err_set(err, errno, "pdeathsig");
	if (setsid() < 0)
		return kiln_err_set(err, errno, "setsid");
	if (dup2(p->out_w, 1) < 0 || dup2(p->err_w, 2) < 0)
		return kiln_err_set(err, errno, "dup2");

	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return kiln_err_set(err, errno, "make / a slave mount");
	if (mount(p->rootfs, p->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		return kiln_err_set(err, errno, "bind %s", p->rootfs);
	c->rootfd = open(p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (c->rootfd < 0)
		return kiln_err_set(err, errno, "open %s", p->rootfs);
	char link[32], real[PATH_MAX];
	fdpath(link, c->rootfd);
	ssize_t n = readlink(link, real, sizeof(real) - 1);
	if (n < 0)
		return kiln_err_set(err, errno, "readlink %s", link);
	real[n] = '\0';
	c->rootreal = kiln_xstrdup(kiln_str_eq(real, "/") ? "" : real);

	int r = mount_at(c, "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
	if (r < 0)
		return r;
	if (o->privileged) {
		/* The host's devices, as docker run --privileged has them. */
		_cleanup_close_ int dev = kernel_mountpoint(c, "/dev", err);
		_cleanup_close_ int hostdev = open("/dev", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dev < 0)
			return dev;
		if (hostdev < 0)
			return kiln_err_set(err, errno, "open /dev");
		if ((r = bind_fd(hostdev, dev, true, 0, "/dev", err)) < 0)
			return r;
	} else if ((r = setup_dev(c, err)) < 0) {
		return r;
	}
	_cleanup_close_ int sys = kernel_mountpoint(c, "/sys", err);
	if (sys < 0)
		return sys;
	unsigned long sysflags = (o->privileged ? 0 : MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC;
	if (mount_fs("sysfs", sys, "sysfs", sysflags, NULL, "/sys", err) < 0) {
		/* sysfs of the host's network namespace may refuse a new instance; a read-only
		 * bind of the host's /sys shows the same. */
		kiln_err_release(err);
		*err = (struct kiln_err)KILN_ERR_INIT;
		if ((r = bind_path("/sys", sys,
		                   (o->privileged ? 0 : MOUNT_ATTR_RDONLY) | MOUNT_ATTR_NOSUID |
		                           MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
		                   err)) < 0)
			return r;
	}
	if ((!o->privileged && (r = mask_kernel_paths(c, err)) < 0) || (r = setup_etc(c, err)) < 0)
		return r;
	if ((r = setup_mounts(c, err)) < 0)
		return r;
	/* The working directory is created after the mounts, so one inside a mount lands
	 * there; like Docker's WORKDIR it stays in the rootfs. */
	int cwd = kiln_path_mkdirat_in_root(c->rootfd, o->cwd, 0755, err);
	if (cwd < 0)
		return kiln_err_wrap(err, "working directory");
	close(cwd);

	const char *hn = o->hostname ? o->hostname : "kiln";
	if (sethostname(hn, strlen(hn)) < 0)
		return kiln_err_set(err, errno, "sethostname %s", hn);
	if (o->network == EX_NET_NONE && (r = loopback_up(err)) < 0)
		return r;

	if (fchdir(c->rootfd) < 0)
		return kiln_err_set(err, errno, "chdir %s", p->rootfs);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return kiln_err_set(err, errno, "pivot_root %s", p->rootfs);
	/* The old root is stacked under the new one; detach it (runc's trick). */
	if (umount2(".", MNT_DETACH) < 0)
		return kiln_err_set(err, errno, "detach the old root");
	if (chdir("/") < 0 || chdir(o->cwd) < 0)
		return kiln_err_set(err, errno, "chdir %s", o->cwd);
	/* stdin is the container's own /dev/null, never kiln's stdin. */
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0)
		return kiln_err_set(err, errno, "open /dev/null");
	close(null);

	if ((r = drop_privileges(p, err)) < 0)
		return r;
	/* Every fd but 0-2 closes at exec, the sync pipe among them: EOF means success. */
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		/* Kernels before 5.11: mark them one by one. */
		long max = sysconf(_SC_OPEN_MAX);
		for (int fd = 3; fd < (max > 0 ? max : 65536); fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	return exec_command(p, err);
}

_Noreturn void
ex_child_main(struct ex_plan *p)
{
	struct child c = {.p = p, .rootfd = -1};
	struct kiln_err err = KILN_ERR_INIT;
	setup(&c, &err);
	char *msg = err.msg ? err.msg : "container setup failed";
	ex_msg_send(p->sync_w, EX_MSG_ERROR, err.code ? err.code : EIO, err.sys, msg);
	_exit(127);
}
