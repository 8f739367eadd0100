/* Lookups in the generated Unicode tables (unicode_print.c), by binary search. */
#include "unicode_print.h"

bool
fe_is_print(uint32_t r)
{
	if (r < 0x80)
		return r >= 0x20 && r < 0x7F;
	size_t lo = 0, hi = fe_print_nranges;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r < fe_print_ranges[mid].lo)
			hi = mid;
		else if (r > fe_print_ranges[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

uint32_t
fe_to_lower(uint32_t r)
{
	if (r < 0x80)
		return (r >= 'A' && r <= 'Z') ? r + ('a' - 'A') : r;
	size_t lo = 0, hi = fe_lower_npairs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r < fe_lower_pairs[mid].from)
			hi = mid;
		else if (r > fe_lower_pairs[mid].from)
			lo = mid + 1;
		else
			return fe_lower_pairs[mid].to;
	}
	return r;
}
