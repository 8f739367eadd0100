/* Shared libraries loaded on first use (see base.h's "lazily loaded libraries"). */
#include "base.h"

#include <dlfcn.h>

void *
kiln_lazy_open(const char *soname, const char *what)
{
	void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "kiln: cannot load %s (%s): %s\n", soname, what, dlerror());
		abort();
	}
	return lib;
}

void *
kiln_lazy_sym(void *lib, const char *soname, const char *name)
{
	void *sym = dlsym(lib, name);
	if (!sym) {
		fprintf(stderr, "kiln: %s has no %s\n", soname, name);
		abort();
	}
	return sym;
}
