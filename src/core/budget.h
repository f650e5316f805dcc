/*
 * budget.h - the memory budget: the largest amount of memory one model or
 * one task batch may need, checked BEFORE anything is allocated, and the
 * byte-size helpers the budget and the Lua memory limit share.
 *
 * Why: on Linux a malloc of 40 GiB "succeeds" (memory is overcommitted) and
 * the process dies later, when the pages are touched, by the OOM killer; a
 * class loses every unsaved model. So the constructors estimate what they
 * will allocate and refuse with the estimate in the message:
 *
 *   model: mambaformer with d_model 4096 and 49 blocks (1.2e+10 parameters)
 *   needs about 37.2 GiB for weights, gradients and Adam state, over the
 *   budget of 8.0 GiB (icl.memory_budget or ICLPLAY_BUDGET)
 *
 * The checks live with what they protect: model_create and model_reserve
 * (nn/model.c), task_create and task_batch_alloc (tasks/task.c), t:sample
 * (lua/lua_task.c). The budget applies to each request on its own; it is not
 * a running total over every live object.
 *
 * The budget is one process-wide setting (like the BLAS thread count): the
 * value given to icl_budget_set, else $ICLPLAY_BUDGET, else half of the
 * physical memory. Set it from the main thread only.
 *
 * Not here: the limit on Lua's own memory (lua/lalloc.h).
 */
#ifndef ICL_BUDGET_H
#define ICL_BUDGET_H

#include <stddef.h>

#include "core/status.h"

/* Physical memory in bytes (sysconf), 0 if unknown. */
size_t icl_phys_bytes(void);
/* Half of the physical memory (4 GiB when it is unknown). */
size_t icl_budget_default(void);
/* The budget in force: the icl_budget_set value, else a valid $ICLPLAY_BUDGET,
 * else icl_budget_default(). SIZE_MAX means no budget. */
size_t icl_budget_get(void);
/* Set the budget (SIZE_MAX: none; 0: back to $ICLPLAY_BUDGET or the default). */
void icl_budget_set(size_t bytes);
/* ICL_OK if `need` bytes fit the budget; else ICL_ERR_NOMEM with the message
 * "<who> needs about <need> for <what>, over the budget of <budget>
 * (icl.memory_budget or ICLPLAY_BUDGET)". */
icl_status icl_budget_check(size_t need, const char *who, const char *what);

/* "512 B", "3.0 KiB", "37.2 GiB" (binary units, one decimal): [out] buf.
 * snprintf semantics; SIZE_MAX prints as "unlimited". */
int icl_format_bytes(char *buf, size_t n, size_t bytes);
/* Parse a size: a non-negative number with an optional unit K, M, G or T
 * (powers of 1024; "KB", "KiB", "k" are the same) or B, e.g. "512M", "1.5G",
 * "1048576", "2 GiB"; "off", "none" and "unlimited" give SIZE_MAX.
 * [out] *bytes. ICL_ERR_ARG with a message naming the text otherwise. */
icl_status icl_parse_bytes(const char *text, size_t *bytes);

#endif
