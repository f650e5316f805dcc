/* parallel.c - the work threshold of parallel loops (see parallel.h). */
#include "parallel.h"

size_t par_min_work = (size_t)1 << 16;

void par_set_min_work(size_t n) { par_min_work = n; }
