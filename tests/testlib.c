#define _GNU_SOURCE
#include "testlib.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>

char *
test_tmpdir_new(void)
{
	const char *base = getenv("TMPDIR");
	char *t = kiln_xasprintf("%s/kiln-test-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(t))
		fail_msg("mkdtemp: %s", strerror(errno));
	return t;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

void
test_tmpdir_remove(char *dir)
{
	if (dir)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

void
test_write_file(const char *dir, const char *rel, const char *content)
{
	char *path = kiln_xasprintf("%s/%s", dir, rel);
	for (char *p = path + strlen(dir) + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	}
	FILE *f = fopen(path, "w");
	if (!f)
		fail_msg("open %s: %s", path, strerror(errno));
	fputs(content, f);
	fclose(f);
	free(path);
}

void
test_assert_err_contains(struct kiln_err *err, const char *needle, const char *file, int line)
{
	char *s = kiln_err_format(err);
	if (!strstr(s, needle)) {
		print_error("%s:%d: error \"%s\" does not contain \"%s\"\n", file, line, s, needle);
		free(s);
		kiln_err_release(err);
		_fail(file, line);
	}
	free(s);
	kiln_err_release(err);
}
