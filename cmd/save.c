/* kiln save REF -o FILE [--format oci|docker]: an image as a tar archive. */
#include "cmd.h"
#include "registry/reg.h"

int
cmd_save(int argc, char **argv)
{
	const char *ref = NULL, *out = NULL, *format = "oci";
	for (int i = 1; i < argc; i++) {
		if ((kiln_str_eq(argv[i], "-o") || kiln_str_eq(argv[i], "--output")) &&
		    i + 1 < argc) {
			out = argv[++i];
		} else if (kiln_str_eq(argv[i], "--format") && i + 1 < argc) {
			format = argv[++i];
		} else if (kiln_str_has_prefix(argv[i], "--format=")) {
			format = argv[i] + 9;
		} else if (kiln_str_eq(argv[i], "--help") || kiln_str_eq(argv[i], "-h")) {
			printf("Usage: kiln save REF -o FILE [--format oci|docker]\n\noci: an OCI "
			       "image "
			       "layout as a tar; docker: a `docker save` archive "
			       "(manifest.json).\n");
			return 0;
		} else if (argv[i][0] != '-' && !ref) {
			ref = argv[i];
		} else {
			fprintf(stderr, "kiln save: unexpected argument %s\n", argv[i]);
			return KILN_EXIT_USAGE;
		}
	}
	enum reg_archive_format fmt;
	if (kiln_str_eq(format, "oci"))
		fmt = REG_ARCHIVE_OCI;
	else if (kiln_str_eq(format, "docker"))
		fmt = REG_ARCHIVE_DOCKER;
	else {
		fprintf(stderr, "kiln save: unknown format `%s` (oci or docker)\n", format);
		return KILN_EXIT_USAGE;
	}
	if (!ref || !out) {
		fprintf(stderr, "Usage: kiln save REF -o FILE [--format oci|docker]\n");
		return KILN_EXIT_USAGE;
	}
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_store *st = NULL;
	int rc = 0;
	if (reg_store_open(cmd_root(), &st, &err) < 0 ||
	    reg_archive_save(st, ref, fmt, out, &err) < 0) {
		cmd_print_err(&err);
		rc = KILN_EXIT_FAIL;
	}
	reg_store_free(st);
	return rc;
}
