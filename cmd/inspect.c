/* kiln inspect REF: the image's digests, manifest and config as one JSON document. */
#include "cmd.h"
#include "registry/reg.h"

int
cmd_inspect(int argc, char **argv)
{
	const char *ref = NULL, *platform = NULL;
	for (int i = 1; i < argc; i++) {
		if (kiln_str_eq(argv[i], "--platform") && i + 1 < argc) {
			platform = argv[++i];
		} else if (kiln_str_eq(argv[i], "--help") || kiln_str_eq(argv[i], "-h")) {
			printf("Usage: kiln inspect [--platform os/arch[/variant]] REF\n");
			return 0;
		} else if (!ref && argv[i][0] != '-') {
			ref = argv[i];
		} else {
			fprintf(stderr, "kiln inspect: unexpected argument %s\n", argv[i]);
			return KILN_EXIT_USAGE;
		}
	}
	if (!ref) {
		fprintf(stderr, "Usage: kiln inspect [--platform P] REF\n");
		return KILN_EXIT_USAGE;
	}
	struct kiln_err err = KILN_ERR_INIT;
	struct reg_store *st = NULL;
	struct reg_platform pl = REG_PLATFORM_INIT;
	struct reg_image img = REG_IMAGE_INIT;
	int rc = KILN_EXIT_FAIL;
	if ((platform && reg_platform_parse(platform, &pl, &err) < 0) ||
	    reg_store_open(cmd_root(), &st, &err) < 0 ||
	    reg_image_open(st, ref, platform ? &pl : NULL, &img, &err) < 0) {
		cmd_print_err(&err);
		goto out;
	}
	json_t *man = json_loadb(img.manifest_raw.buf, img.manifest_raw.len, 0, NULL);
	json_t *cfg = json_loadb(img.config_raw.buf, img.config_raw.len, 0, NULL);
	json_t *o = json_object();
	if (img.name)
		json_object_set_new(o, "Name", json_string(img.name));
	json_object_set_new(o, "Digest", json_string(img.top_digest));
	json_object_set_new(o, "ManifestDigest", json_string(img.manifest_digest));
	json_object_set_new(o, "ConfigDigest", json_string(img.manifest.config.digest));
	json_object_set_new(o, "Manifest", man ? man : json_null());
	json_object_set_new(o, "Config", cfg ? cfg : json_null());
	char *s = json_dumps(o, JSON_INDENT(2));
	printf("%s\n", s);
	free(s);
	json_decref(o);
	rc = 0;
out:
	reg_image_release(&img);
	reg_platform_release(&pl);
	reg_store_free(st);
	return rc;
}
