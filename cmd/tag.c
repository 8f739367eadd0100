/* kiln tag SRC DST: another name for an image in the store. */
#include "cmd.h"
#include "registry/reg.h"

int
cmd_tag(int argc, char **argv)
{
	if (argc != 3 || argv[1][0] == '-') {
		fprintf(stderr, "Usage: kiln tag SOURCE TARGET\n");
		return argc == 2 && (kiln_str_eq(argv[1], "--help") || kiln_str_eq(argv[1], "-h"))
		               ? 0
		               : KILN_EXIT_USAGE;
	}
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_store *st = NULL;
	struct reg_image img = REG_IMAGE_INIT;
	struct reg_ref dst = REG_REF_INIT;
	_cleanup_free_ char *name = NULL;
	int rc = KILN_EXIT_FAIL;
	if (reg_ref_parse_normalized(argv[2], &dst, &err) < 0)
		goto fail;
	if (dst.digest) {
		kiln_err_invalid(&err, "target `%s` must not have a digest", argv[2]);
		goto fail;
	}
	reg_ref_default_tag(&dst);
	name = reg_ref_string(&dst);
	if (reg_store_open(cmd_root(), &st, &err) < 0 ||
	    reg_image_open(st, argv[1], NULL, &img, &err) < 0 ||
	    reg_name_set(st, name, img.top_digest, &err) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	cmd_print_err(&err);
out:
	reg_ref_release(&dst);
	reg_image_release(&img);
	reg_store_free(st);
	return rc;
}
