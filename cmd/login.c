/* kiln login / logout: credentials in Docker's config.json, checked against the registry. */
#include "cmd.h"
#include "registry/reg.h"

#include <termios.h>

static const char login_usage[] = "Usage: kiln login [-u USER] [-p PASS | --password-stdin] "
                                  "[--insecure-registry] HOST\n";

/* "https://host/v1/" -> "host", as Docker accepts either. */
static char *
host_of(const char *arg)
{
	if (kiln_str_has_prefix(arg, "https://"))
		arg += 8;
	else if (kiln_str_has_prefix(arg, "http://"))
		arg += 7;
	return kiln_xstrndup(arg, strcspn(arg, "/"));
}

static char *
read_line(FILE *in, bool echo)
{
	struct termios old, quiet;
	bool tty = !echo && isatty(fileno(in)) && tcgetattr(fileno(in), &old) == 0;
	if (tty) {
		quiet = old;
		quiet.c_lflag &= ~ECHO;
		tcsetattr(fileno(in), TCSAFLUSH, &quiet);
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, in);
	if (tty) {
		tcsetattr(fileno(in), TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (n < 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

int
cmd_login(int argc, char **argv)
{
	const char *user = NULL, *pass = NULL, *host_arg = NULL;
	bool pass_stdin = false, insecure = false;
	for (int i = 1; i < argc; i++) {
		if ((kiln_str_eq(argv[i], "-u") || kiln_str_eq(argv[i], "--username")) &&
		    i + 1 < argc) {
			user = argv[++i];
		} else if ((kiln_str_eq(argv[i], "-p") || kiln_str_eq(argv[i], "--password")) &&
		           i + 1 < argc) {
			pass = argv[++i];
		} else if (kiln_str_eq(argv[i], "--password-stdin")) {
			pass_stdin = true;
		} else if (kiln_str_eq(argv[i], "--insecure-registry")) {
			insecure = true;
		} else if (kiln_str_eq(argv[i], "--help") || kiln_str_eq(argv[i], "-h")) {
			printf("%s\nCheck the credentials against the registry and store them in "
			       "$DOCKER_CONFIG/config.json (default ~/.docker/config.json).\n",
			       login_usage);
			return 0;
		} else if (argv[i][0] == '-' || host_arg) {
			fprintf(stderr, "kiln login: unexpected argument %s\n%s", argv[i],
			        login_usage);
			return KILN_EXIT_USAGE;
		} else {
			host_arg = argv[i];
		}
	}
	if (!host_arg || (pass && pass_stdin)) {
		fprintf(stderr, "%s", login_usage);
		return KILN_EXIT_USAGE;
	}
	_cleanup_free_ char *host = host_of(host_arg);
	_cleanup_free_ char *user_owned = NULL, *pass_owned = NULL;
	if (!user) {
		if (pass_stdin) {
			fprintf(stderr, "kiln login: --password-stdin needs -u USER\n");
			return KILN_EXIT_USAGE;
		}
		fprintf(stderr, "Username: ");
		user = user_owned = read_line(stdin, true);
	}
	if (user && !pass) {
		if (!pass_stdin)
			fprintf(stderr, "Password: ");
		pass = pass_owned = read_line(stdin, pass_stdin);
	}
	if (!user || !*user || !pass) {
		fprintf(stderr, "kiln login: a username and a password are needed\n");
		return KILN_EXIT_USAGE;
	}

	struct kiln_err err = KILN_ERR_INIT;
	struct reg_client *c = NULL;
	_cleanup_free_ char *cfg = reg_dockercfg_default_path();
	struct reg_client_opts o = REG_CLIENT_OPTS_INIT;
	o.certs_d = getenv("KILN_CERTS_D");
	o.insecure = insecure;
	o.username = user;
	o.password = pass;
	int rc = KILN_EXIT_FAIL;
	if (reg_client_new(host, &o, &c, &err) < 0 || reg_client_ping(c, &err) < 0 ||
	    reg_dockercfg_set(cfg, host, user, pass, &err) < 0) {
		cmd_print_err(&err);
	} else {
		printf("Login Succeeded\n");
		rc = 0;
	}
	reg_client_free(c);
	if (pass_owned)
		explicit_bzero(pass_owned, strlen(pass_owned));
	return rc;
}

int
cmd_logout(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		if (argc == 2 && (kiln_str_eq(argv[1], "--help") || kiln_str_eq(argv[1], "-h"))) {
			printf("Usage: kiln logout HOST\n\nRemove the credentials of HOST.\n");
			return 0;
		}
		fprintf(stderr, "Usage: kiln logout HOST\n");
		return KILN_EXIT_USAGE;
	}
	_cleanup_free_ char *host = host_of(argv[1]);
	_cleanup_free_ char *cfg = reg_dockercfg_default_path();
	struct kiln_err err = KILN_ERR_INIT;
	if (reg_dockercfg_remove(cfg, host, &err) < 0) {
		cmd_print_err(&err);
		return KILN_EXIT_FAIL;
	}
	printf("Removing login credentials for %s\n", host);
	return 0;
}
