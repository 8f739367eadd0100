#include "cmd.h"

int
cmd_plan(int argc, char **argv)
{
	fprintf(stderr, "kiln plan: not built yet\n");
	return KILN_EXIT_FAIL;
}
