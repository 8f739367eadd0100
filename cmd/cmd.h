/* Internal to cmd/: one function per subcommand. Only cmd/ prints or exits. */
#ifndef KILN_CMD_H
#define KILN_CMD_H

#include "base/base.h"

/* Exit codes: 0 success, 1 build/parse failure, 2 usage error. */
#define KILN_EXIT_FAIL  1
#define KILN_EXIT_USAGE 2

int cmd_parse(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_tag(int argc, char **argv);
int cmd_rmi(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_save(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_login(int argc, char **argv);
int cmd_logout(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_lint(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_du(int argc, char **argv);
int cmd_prune(int argc, char **argv);

/* The store root: global `--root DIR`, else $KILN_ROOT, else /var/lib/kiln for root and
 * $XDG_DATA_HOME/kiln (or ~/.local/share/kiln) otherwise. Never NULL. */
const char *cmd_root(void);
/* The snapshotter: global `--snapshotter`, else $KILN_SNAPSHOTTER, else "auto". */
const char *cmd_snapshotter(void);

/* Print "kiln: <error>" (or "FILE:LINE: msg") to stderr and release the error. */
void cmd_print_err(struct kiln_err *err);
/* Read a whole file, or standard input for "-". */
int cmd_read_input(const char *path, struct kiln_buf *out, struct kiln_err *err);

/* Secrets given with --secret (kiln run, later kiln build): id and content. */
struct cmd_secret {
	char *id;
	struct kiln_buf data;
};
struct cmd_secrets {
	struct cmd_secret *v;
	size_t n, alloc;
};
int cmd_secrets_add(struct cmd_secrets *s, const char *spec, struct kiln_err *err);
const struct cmd_secret *cmd_secrets_find(const struct cmd_secrets *s, const char *id);
void cmd_secrets_release(struct cmd_secrets *s);

/* --build-context NAME=oci-layout://DIR[:TAG|@DIGEST]: the layout directory and the digest
 * of the image it names in index.json (without TAG or DIGEST: the only image, else the
 * one tagged "latest", as buildx). Both malloc'd; untouched on failure. */
int cmd_oci_layout_pick(const char *spec, char **ret_dir, char **ret_digest, struct kiln_err *err);
/* The config document (new reference) of image `digest` (a manifest, or an index: the
 * host's manifest) in layout `dir`, read in place; NULL with err set on failure. */
json_t *cmd_oci_layout_config(const char *dir, const char *digest, struct kiln_err *err);

#endif
