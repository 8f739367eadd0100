/* kiln: a daemonless Dockerfile builder. */
#include "cmd.h"

#include <fcntl.h>

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static const struct command commands[] = {
	{"parse", cmd_parse, "Parse a Dockerfile (--dump: BuildKit's tree; --format=json)"},
	{"build", cmd_build, "Build an image from a Dockerfile (-t NAME, --target, --build-arg, ...)"},
	{"du", cmd_du, "Show the build cache records and their sizes"},
	{"prune", cmd_prune, "Remove build cache records and their snapshots (--all, --keep-storage)"},
	{"plan", cmd_plan, "Print the build graph of a Dockerfile (--format json|dot)"},
	{"images", cmd_images, "List the images in the store"},
	{"inspect", cmd_inspect, "Show an image's digests, manifest and config as JSON"},
	{"tag", cmd_tag, "Give an image another name (tag SOURCE TARGET)"},
	{"rmi", cmd_rmi, "Remove image names (content stays until pruned)"},
	{"import", cmd_import, "Make an image from a root filesystem (DIR or TAR) and name it"},
	{"load", cmd_load, "Load an OCI layout or docker-save archive into the store"},
	{"save", cmd_save, "Write an image as an OCI layout or docker-save tar (-o FILE)"},
	{"pull", cmd_pull, "Pull an image from a registry into the store"},
	{"push", cmd_push, "Push an image from the store to a registry (push REF [DEST])"},
	{"login", cmd_login, "Log in to a registry (credentials in ~/.docker/config.json)"},
	{"logout", cmd_logout, "Remove the stored credentials of a registry"},
	{"run", cmd_run, "Run a command in a throwaway container of an image (or --rootfs DIR)"},
	{"lint", cmd_lint, "Check a Dockerfile: BuildKit's rules and kiln's (--list)"},
};

static const char *root_option;
static const char *snapshotter_option;

const char *
cmd_snapshotter(void)
{
	if (snapshotter_option)
		return snapshotter_option;
	const char *env = getenv("KILN_SNAPSHOTTER");
	return env && *env ? env : "auto";
}

const char *
cmd_root(void)
{
	static char *resolved;
	if (resolved)
		return resolved;
	const char *env = getenv("KILN_ROOT");
	if (root_option)
		resolved = kiln_xstrdup(root_option);
	else if (env && *env)
		resolved = kiln_xstrdup(env);
	else if (geteuid() == 0)
		resolved = kiln_xstrdup("/var/lib/kiln");
	else if (getenv("XDG_DATA_HOME") && *getenv("XDG_DATA_HOME"))
		resolved = kiln_xasprintf("%s/kiln", getenv("XDG_DATA_HOME"));
	else
		resolved = kiln_xasprintf("%s/.local/share/kiln", getenv("HOME") ? getenv("HOME") : "/");
	return resolved;
}

static void
usage(FILE *f)
{
	fprintf(f, "Usage: kiln [--root DIR] [--snapshotter auto|overlayfs|native] COMMAND [OPTIONS]\n\nCommands:\n");
	for (size_t i = 0; i < KILN_ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nRun 'kiln COMMAND --help' for a command's options.\n");
}

void
cmd_print_err(struct kiln_err *err)
{
	char *s = kiln_err_format(err);
	if (err->file)
		fprintf(stderr, "%s\n", s);
	else
		fprintf(stderr, "kiln: %s\n", s);
	free(s);
	kiln_err_release(err);
}

int
cmd_read_input(const char *path, struct kiln_buf *out, struct kiln_err *err)
{
	if (kiln_str_eq(path, "-"))
		return kiln_buf_read_fd(out, STDIN_FILENO, err);
	return kiln_buf_read_file(out, path, err);
}

int
main(int argc, char **argv)
{
	/* Global options come before the command, as with buildah. */
	while (argc >= 2 && argv[1][0] == '-' && argv[1][1] == '-' && argv[1][2]) {
		if (kiln_str_eq(argv[1], "--root") && argc >= 3) {
			root_option = argv[2];
			argv += 2, argc -= 2;
		} else if (kiln_str_has_prefix(argv[1], "--root=")) {
			root_option = argv[1] + 7;
			argv++, argc--;
		} else if (kiln_str_eq(argv[1], "--snapshotter") && argc >= 3) {
			snapshotter_option = argv[2];
			argv += 2, argc -= 2;
		} else if (kiln_str_has_prefix(argv[1], "--snapshotter=")) {
			snapshotter_option = argv[1] + 14;
			argv++, argc--;
		} else {
			break;
		}
	}
	if (argc < 2) {
		usage(stderr);
		return KILN_EXIT_USAGE;
	}
	if (kiln_str_eq(argv[1], "--help") || kiln_str_eq(argv[1], "-h") || kiln_str_eq(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (kiln_str_eq(argv[1], "--version") || kiln_str_eq(argv[1], "version")) {
		printf("kiln 0.1.0\n");
		return 0;
	}
	for (size_t i = 0; i < KILN_ARRAY_SIZE(commands); i++)
		if (kiln_str_eq(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "kiln: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return KILN_EXIT_USAGE;
}
