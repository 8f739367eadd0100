/*
 * Path handling: lexical cleaning, and opening untrusted paths inside a root directory.
 *
 * Everything kiln writes into a snapshot is named by the user or by a layer tar, so a
 * path must never escape the root it is meant for: not by "..", not by an absolute or
 * relative symlink planted in the tree. openat2(RESOLVE_IN_ROOT) does this in the kernel;
 * where it is missing (ENOSYS, or EPERM under seccomp), we walk the components ourselves
 * with O_NOFOLLOW, resolving symlinks against the root by hand (systemd's chaseat).
 */
#include "base.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

char *
kiln_path_clean(const char *path)
{
	size_t n = strlen(path);
	if (n == 0)
		return kiln_xstrdup(".");
	bool rooted = path[0] == '/';
	char *out = kiln_xmalloc(n + 2);
	size_t w = 0, r = 0, dotdot = 0;
	if (rooted) {
		out[w++] = '/';
		r = 1;
		dotdot = 1;
	}
	while (r < n) {
		if (path[r] == '/') {
			r++;
		} else if (path[r] == '.' && (r + 1 == n || path[r + 1] == '/')) {
			r++;
		} else if (path[r] == '.' && path[r + 1] == '.' && (r + 2 == n || path[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && out[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					out[w++] = '/';
				out[w++] = '.';
				out[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				out[w++] = '/';
			while (r < n && path[r] != '/')
				out[w++] = path[r++];
		}
	}
	if (w == 0)
		out[w++] = '.';
	out[w] = '\0';
	return out;
}

char *
kiln_path_join(const char *a, const char *b)
{
	if (!*a)
		return kiln_path_clean(b);
	if (!*b)
		return kiln_path_clean(a);
	_cleanup_free_ char *j = kiln_xasprintf("%s/%s", a, b);
	return kiln_path_clean(j);
}

static int
openat2_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd;
	do
		fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN);
	return fd < 0 ? -errno : (int)fd;
}

#define MAX_SYMLINKS 40

/*
 * The component walk. `todo` holds what is left to resolve; `cur` is an O_PATH fd of the
 * directory reached so far and `depth` how many components below the root it is, so ".."
 * at the root stays at the root.
 */
static int
walk(int rootfd, const char *path, int flags, mode_t mode, mode_t mkdir_mode)
{
	_cleanup_free_ char *todo = kiln_xstrdup(path);
	_cleanup_close_ int cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct kiln_strv stack = KILN_STRV_INIT; /* names of the components reached */
	int links = 0, r;
	if (cur < 0)
		return -errno;

	char *p = todo;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p) {
			/* Path ends in the directory we hold ("/", "a/..", "dir/"). */
			r = openat(cur, ".", (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC);
			r = r < 0 ? -errno : r;
			goto out;
		}
		char *end = strchrnul(p, '/');
		bool last = true;
		for (char *q = end; *q; q++)
			if (*q != '/') {
				last = false;
				break;
			}
		_cleanup_free_ char *name = kiln_xstrndup(p, (size_t)(end - p));
		p = end;

		if (kiln_str_eq(name, "."))
			continue;
		if (kiln_str_eq(name, "..")) {
			if (stack.n == 0)
				continue;
			free(stack.v[--stack.n]);
			stack.v[stack.n] = NULL;
			/* Re-walk from the root: every component on the stack is a directory we
			 * already checked is not a symlink. */
			int fd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
			for (size_t i = 0; fd >= 0 && i < stack.n; i++) {
				int next = openat(fd, stack.v[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				close(fd);
				fd = next;
			}
			if (fd < 0) {
				r = -errno;
				goto out;
			}
			close(cur);
			cur = fd;
			continue;
		}

		int child = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (child < 0 && errno == ENOENT && mkdir_mode) {
			if (mkdirat(cur, name, mkdir_mode) < 0 && errno != EEXIST) {
				r = -errno;
				goto out;
			}
			child = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		}
		if (child < 0) {
			if (errno == ENOENT && last && (flags & O_CREAT)) {
				r = openat(cur, name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
				r = r < 0 ? -errno : r;
				goto out;
			}
			r = -errno;
			goto out;
		}
		struct stat st;
		if (fstat(child, &st) < 0) {
			r = -errno;
			close(child);
			goto out;
		}
		if (S_ISLNK(st.st_mode) && !(last && (flags & O_NOFOLLOW))) {
			char target[PATH_MAX];
			ssize_t tn = readlinkat(child, "", target, sizeof(target) - 1);
			close(child);
			if (tn < 0) {
				r = -errno;
				goto out;
			}
			target[tn] = '\0';
			if (++links > MAX_SYMLINKS) {
				r = -ELOOP;
				goto out;
			}
			char *rest = kiln_xasprintf("%s/%s", target, p);
			free(todo);
			todo = rest;
			p = todo;
			if (target[0] == '/') {
				kiln_strv_release(&stack);
				close(cur);
				cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
				if (cur < 0) {
					r = -errno;
					goto out;
				}
			}
			continue;
		}
		if (last) {
			close(child);
			if (S_ISLNK(st.st_mode) && (flags & O_PATH))
				r = openat(cur, name, flags | O_NOFOLLOW | O_CLOEXEC);
			else
				r = openat(cur, name, (flags & ~O_CREAT) | O_NOFOLLOW | O_CLOEXEC);
			r = r < 0 ? -errno : r;
			goto out;
		}
		if (!S_ISDIR(st.st_mode)) {
			close(child);
			r = -ENOTDIR;
			goto out;
		}
		close(cur);
		cur = child;
		kiln_strv_push(&stack, name);
	}
out:
	kiln_strv_release(&stack);
	return r;
}

int
kiln_path_openat_in_root(int rootfd, const char *path, int flags, mode_t mode, struct kiln_err *err)
{
	int fd = openat2_in_root(rootfd, path, flags, mode);
	if (fd == -ENOSYS || fd == -EPERM || fd == -E2BIG)
		fd = kiln_path_walk_in_root(rootfd, path, flags, mode);
	if (fd < 0)
		return kiln_err_set(err, -fd, "open `%s` inside root", path);
	return fd;
}

int
kiln_path_walk_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
	return walk(rootfd, path, flags, mode, 0);
}

int
kiln_path_mkdirat_in_root(int rootfd, const char *path, mode_t mode, struct kiln_err *err)
{
	/* The walk creates each missing component in the directory it has already resolved,
	 * following symlinks (dangling ones too) inside the root, as mkdir -p would. */
	int fd = walk(rootfd, path, O_RDONLY | O_DIRECTORY, 0, mode ? mode : 0755);
	if (fd < 0)
		return kiln_err_set(err, -fd, "mkdir `%s` inside root", path);
	return fd;
}
