/* kiln rmi REF...: remove names. The blobs stay in the store until a later prune. */
#include "cmd.h"
#include "registry/reg.h"

int
cmd_rmi(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr,
		        "Usage: kiln rmi REF...\n\nRemoves image names; the content stays in "
		        "the store until it is pruned.\n");
		return argc == 2 && (kiln_str_eq(argv[1], "--help") || kiln_str_eq(argv[1], "-h"))
		               ? 0
		               : KILN_EXIT_USAGE;
	}
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_store *st = NULL;
	if (reg_store_open(cmd_root(), &st, &err) < 0) {
		cmd_print_err(&err);
		return KILN_EXIT_FAIL;
	}
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		struct reg_ref ref = REG_REF_INIT;
		if (reg_ref_parse_normalized(argv[i], &ref, &err) < 0) {
			cmd_print_err(&err);
			rc = KILN_EXIT_FAIL;
			continue;
		}
		reg_ref_default_tag(&ref);
		_cleanup_free_ char *name = reg_ref_string(&ref);
		_cleanup_free_ char *fam = reg_ref_familiar(&ref);
		reg_ref_release(&ref);
		if (reg_name_remove(st, name, &err) < 0) {
			cmd_print_err(&err);
			rc = KILN_EXIT_FAIL;
			continue;
		}
		printf("Untagged: %s\n", fam);
	}
	reg_store_free(st);
	return rc;
}
