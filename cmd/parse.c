#include "cmd.h"

int
cmd_parse(int argc, char **argv)
{
	fprintf(stderr, "kiln parse: not built yet\n");
	return KILN_EXIT_FAIL;
}
