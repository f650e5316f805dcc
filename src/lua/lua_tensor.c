/*
 * lua_tensor.c - icl.tensor: small float arrays that Lua can index, read and
 * print; either a copy (the floats live inside the userdata, so Lua owns and
 * frees them) or a view into another object's memory (a model's parameters
 * or gradients).
 *
 * A view keeps its owner alive through user value 1, and a view of a view
 * points at the root owner, so one check covers every level: before each use
 * lbind_checktensor asks whether the owner is still open (a model that was
 * m:close()d frees its parameter block, and the view must raise rather than
 * read freed memory) and whether the view still lies inside the owner's
 * parameter or gradient block.
 *
 * Shapes are row-major, 1 to 4 dimensions of at least 1; indices are 1-based.
 * What it is not: a tensor library. There is no arithmetic, broadcasting or
 * strided view; rows of a contiguous tensor are contiguous, which is all the
 * REPL needs to inspect models and probes.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lua/lbind.h"

/* Largest tensor icl.tensor / icl.zeros accept (floats): 2^31 (8 GiB). */
#define TENSOR_MAX_NUMEL ((size_t)1 << 31)

/* ---- construction -------------------------------------------------------- */

static size_t shape_numel(int ndim, const int *shape) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    return n;
}

static void check_shape(lua_State *L, const char *where, int ndim, const int *shape) {
    if (ndim < 1 || ndim > LBIND_TENSOR_MAXDIM)
        luaL_error(L, "%s: a tensor has 1 to %d dimensions (got %d)", where, LBIND_TENSOR_MAXDIM, ndim);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1) luaL_error(L, "%s: dimension %d must be >= 1 (got %d)", where, i + 1, shape[i]);
        n *= (size_t)shape[i];
        if (n > TENSOR_MAX_NUMEL) luaL_error(L, "%s: more than %I elements", where, (lua_Integer)TENSOR_MAX_NUMEL);
    }
}

/* The floats of a copy follow the header inside the same userdata block;
 * Lua never moves a userdata, so the pointer stays valid for its lifetime. */
lbind_tensor *lbind_push_tensor_copy(lua_State *L, const float *data, int ndim, const int *shape) {
    check_shape(L, "icl.tensor", ndim, shape);
    size_t n = shape_numel(ndim, shape);
    size_t head = (sizeof(lbind_tensor) + 15) & ~(size_t)15;
    lbind_tensor *t = lua_newuserdatauv(L, head + n * sizeof(float), 1);
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = n;
    t->data = (float *)((char *)t + head);
    t->owned = 1;
    if (data) memcpy(t->data, data, n * sizeof(float));
    else memset(t->data, 0, n * sizeof(float));
    luaL_setmetatable(L, LBIND_TENSOR_MT);
    return t;
}

lbind_tensor *lbind_push_tensor_view(lua_State *L, int owner_idx, float *data, int ndim, const int *shape) {
    owner_idx = lua_absindex(L, owner_idx);
    check_shape(L, "icl.tensor", ndim, shape);
    lbind_tensor *t = lua_newuserdatauv(L, sizeof(lbind_tensor), 1);
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = shape_numel(ndim, shape);
    t->data = data;
    t->owned = 0;
    /* a view of a view hangs on the root owner, so liveness is one check */
    lbind_tensor *parent = luaL_testudata(L, owner_idx, LBIND_TENSOR_MT);
    if (parent && !parent->owned) lua_getiuservalue(L, owner_idx, 1);
    else lua_pushvalue(L, owner_idx);
    lua_setiuservalue(L, -2, 1);
    luaL_setmetatable(L, LBIND_TENSOR_MT);
    return t;
}

/* NULL if the view at idx may be read, else why not. */
static const char *view_problem(lua_State *L, int idx, const lbind_tensor *t) {
    if (t->owned) return NULL;
    const char *why = NULL;
    lua_getiuservalue(L, idx, 1);
    lbind_model *lm = luaL_testudata(L, -1, LBIND_MODEL_MT);
    lbind_trainer *lt = lm ? NULL : luaL_testudata(L, -1, LBIND_TRAINER_MT);
    if (lm) {
        const model *m = lm->m;
        if (!m) {
            why = "tensor is a view of a model that was closed";
        } else {
            /* the view must lie inside the parameter or the gradient block */
            const float *lo = t->data, *hi = t->data + t->numel;
            int in_p = lo >= m->params && hi <= m->params + m->n_params;
            int in_g = lo >= m->grads && hi <= m->grads + m->n_params;
            if (!in_p && !in_g) why = "tensor is a view of model memory that no longer exists";
        }
    } else if (lt && !lt->live) {
        why = "tensor is a view of a trainer that was closed";
    }
    lua_pop(L, 1);
    return why;
}

lbind_tensor *lbind_checktensor(lua_State *L, int idx) {
    lbind_tensor *t = luaL_checkudata(L, idx, LBIND_TENSOR_MT);
    const char *why = view_problem(L, idx, t);
    if (why) luaL_argerror(L, idx, why);
    return t;
}

/* ---- icl.tensor{...}, icl.zeros(...) ------------------------------------- */

/* Fill dst from the nested table at idx, level `dim` of the shape; raises on
 * ragged rows or non-numbers (the tensor being filled is Lua-owned). */
static float *fill_from_table(lua_State *L, int idx, const lbind_tensor *t, int dim, float *dst, char *path,
                              size_t path_len) {
    idx = lua_absindex(L, idx);
    lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
    if (len != t->shape[dim])
        luaL_error(L, "icl.tensor: row %s has %d entries, expected %d (rows must all have the same length)",
                   path[0] ? path : "(top)", (int)len, t->shape[dim]);
    size_t used = strlen(path);
    for (int i = 1; i <= t->shape[dim]; i++) {
        snprintf(path + used, path_len - used, "[%d]", i);
        lua_rawgeti(L, idx, i);
        /* ndim <= MAXDIM always; the second bound is for -O3, whose
         * -Warray-bounds cannot see it through the inlined recursion */
        if (dim + 1 < t->ndim && dim + 1 < LBIND_TENSOR_MAXDIM) {
            if (!lua_istable(L, -1))
                luaL_error(L, "icl.tensor: element %s is a %s, expected a table (a row of %d)", path,
                           luaL_typename(L, -1), t->shape[dim + 1]);
            dst = fill_from_table(L, -1, t, dim + 1, dst, path, path_len);
        } else {
            int isnum = 0;
            lua_Number v = lua_tonumberx(L, -1, &isnum);
            if (!isnum || lua_type(L, -1) != LUA_TNUMBER)
                luaL_error(L, "icl.tensor: element %s is a %s, expected a number", path, luaL_typename(L, -1));
            *dst++ = (float)v;
        }
        lua_pop(L, 1);
        path[used] = 0;
    }
    return dst;
}

static int l_tensor_new(lua_State *L) {
    if (luaL_testudata(L, 1, LBIND_TENSOR_MT)) { /* icl.tensor(t): a copy */
        lbind_tensor *src = lbind_checktensor(L, 1);
        lbind_push_tensor_copy(L, src->data, src->ndim, src->shape);
        return 1;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    int shape[LBIND_TENSOR_MAXDIM], ndim = 0;
    /* the shape comes from following the first element down */
    lua_pushvalue(L, 1);
    while (lua_istable(L, -1)) {
        if (ndim == LBIND_TENSOR_MAXDIM)
            return luaL_error(L, "icl.tensor: more than %d nested levels", LBIND_TENSOR_MAXDIM);
        size_t len = lua_rawlen(L, -1);
        if (len < 1) return luaL_error(L, "icl.tensor: empty table at level %d (dimensions must be >= 1)", ndim + 1);
        if (len > (size_t)TENSOR_MAX_NUMEL) return luaL_error(L, "icl.tensor: table too long");
        shape[ndim++] = (int)len;
        lua_rawgeti(L, -1, 1);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    lbind_tensor *t = lbind_push_tensor_copy(L, NULL, ndim, shape);
    char path[64] = "";
    fill_from_table(L, 1, t, 0, t->data, path, sizeof path);
    return 1;
}

static int l_zeros(lua_State *L) {
    int n = lua_gettop(L), shape[LBIND_TENSOR_MAXDIM];
    if (n < 1 || n > LBIND_TENSOR_MAXDIM)
        return luaL_error(L, "icl.zeros: give 1 to %d dimensions (got %d)", LBIND_TENSOR_MAXDIM, n);
    for (int i = 0; i < n; i++) {
        int isint = 0;
        lua_Integer v = lua_tointegerx(L, i + 1, &isint);
        if (!isint || lua_type(L, i + 1) != LUA_TNUMBER || v < 1 || v > INT32_MAX)
            return luaL_error(L, "icl.zeros: dimension %d must be an integer >= 1 (got %s)", i + 1,
                              luaL_tolstring(L, i + 1, NULL));
        shape[i] = (int)v;
    }
    check_shape(L, "icl.zeros", n, shape);
    lbind_push_tensor_copy(L, NULL, n, shape);
    return 1;
}

/* ---- indexing -------------------------------------------------------------- */

/* The 1-based index at arg, checked against dimension `dim` of t. */
static size_t check_index(lua_State *L, const char *where, int arg, const lbind_tensor *t, int dim) {
    int isint = 0;
    lua_Integer i = lua_tointegerx(L, arg, &isint);
    if (!isint || lua_type(L, arg) != LUA_TNUMBER)
        luaL_error(L, "%s: index %d must be an integer (got %s)", where, dim + 1, luaL_tolstring(L, arg, NULL));
    if (i < 1 || i > t->shape[dim])
        luaL_error(L, "%s: index %d is %I, out of range [1, %d]", where, dim + 1, i, t->shape[dim]);
    return (size_t)(i - 1);
}

static size_t row_size(const lbind_tensor *t) { return t->numel / (size_t)t->shape[0]; }

/* t[i]: a number (1-D) or a view of row i that keeps the root owner alive. */
static int index_row(lua_State *L, lbind_tensor *t) {
    size_t i = check_index(L, "icl.tensor", 2, t, 0);
    if (t->ndim == 1) {
        lua_pushnumber(L, t->data[i]);
        return 1;
    }
    lbind_push_tensor_view(L, 1, t->data + i * row_size(t), t->ndim - 1, t->shape + 1);
    return 1;
}

static int l_index(lua_State *L) {
    lbind_tensor *t = luaL_checkudata(L, 1, LBIND_TENSOR_MT);
    if (lua_type(L, 2) == LUA_TNUMBER) {
        const char *why = view_problem(L, 1, t);
        if (why) return luaL_error(L, "icl.tensor: %s", why);
        return index_row(L, t);
    }
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *k = lua_tostring(L, 2);
        if (!strcmp(k, "ndim")) {
            lua_pushinteger(L, t->ndim);
            return 1;
        }
        if (!strcmp(k, "is_view")) {
            lua_pushboolean(L, !t->owned);
            return 1;
        }
        lua_pushvalue(L, 2);
        lua_rawget(L, lua_upvalueindex(1)); /* the methods */
        return 1;
    }
    return luaL_error(L, "icl.tensor: index with an integer (got a %s)", luaL_typename(L, 2));
}

static int l_newindex(lua_State *L) {
    lbind_tensor *t = luaL_checkudata(L, 1, LBIND_TENSOR_MT);
    const char *why = view_problem(L, 1, t);
    if (why) return luaL_error(L, "icl.tensor: %s", why);
    if (lua_type(L, 2) != LUA_TNUMBER)
        return luaL_error(L, "icl.tensor: cannot set field %s (only t[i] = v on a 1-D tensor)",
                          luaL_tolstring(L, 2, NULL));
    if (t->ndim != 1)
        return luaL_error(L,
                          "icl.tensor: t[i] = v needs a 1-D tensor (this one has %d dimensions; use "
                          "t:set(i, j, ..., v))",
                          t->ndim);
    size_t i = check_index(L, "icl.tensor", 2, t, 0);
    if (lua_type(L, 3) != LUA_TNUMBER)
        return luaL_error(L, "icl.tensor: value must be a number (got %s)", luaL_typename(L, 3));
    t->data[i] = (float)lua_tonumber(L, 3);
    return 0;
}

static int l_len(lua_State *L) {
    lbind_tensor *t = luaL_checkudata(L, 1, LBIND_TENSOR_MT);
    lua_pushinteger(L, t->shape[0]);
    return 1;
}

/* Flat offset of the ndim indices starting at argument `arg`. */
static size_t flat_offset(lua_State *L, const char *where, const lbind_tensor *t, int arg) {
    size_t off = 0;
    for (int k = 0; k < t->ndim; k++) off = off * (size_t)t->shape[k] + check_index(L, where, arg + k, t, k);
    return off;
}

static int l_at(lua_State *L) {
    lbind_tensor *t = lbind_checktensor(L, 1);
    int n = lua_gettop(L) - 1;
    if (n != t->ndim) return luaL_error(L, "t:at: needs %d indices for a %d-D tensor (got %d)", t->ndim, t->ndim, n);
    lua_pushnumber(L, t->data[flat_offset(L, "t:at", t, 2)]);
    return 1;
}

static int l_set(lua_State *L) {
    lbind_tensor *t = lbind_checktensor(L, 1);
    int n = lua_gettop(L) - 2;
    if (n != t->ndim)
        return luaL_error(L, "t:set: needs %d indices and a value for a %d-D tensor (got %d arguments)", t->ndim,
                          t->ndim, n + 1);
    size_t off = flat_offset(L, "t:set", t, 2);
    if (lua_type(L, n + 2) != LUA_TNUMBER)
        return luaL_error(L, "t:set: value must be a number (got %s)", luaL_typename(L, n + 2));
    t->data[off] = (float)lua_tonumber(L, n + 2);
    return 0;
}

/* ---- whole-tensor methods ------------------------------------------------------ */

static int l_shape(lua_State *L) {
    lbind_tensor *t = luaL_checkudata(L, 1, LBIND_TENSOR_MT);
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) {
        lua_pushinteger(L, t->shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_numel(lua_State *L) {
    lbind_tensor *t = luaL_checkudata(L, 1, LBIND_TENSOR_MT);
    lua_pushinteger(L, (lua_Integer)t->numel);
    return 1;
}

static const float *push_nested(lua_State *L, const lbind_tensor *t, int dim, const float *src) {
    lua_createtable(L, t->shape[dim], 0);
    for (int i = 1; i <= t->shape[dim]; i++) {
        if (dim + 1 < t->ndim && dim + 1 < LBIND_TENSOR_MAXDIM) /* the bound: see fill_from_table */
            src = push_nested(L, t, dim + 1, src);
        else lua_pushnumber(L, *src++);
        lua_rawseti(L, -2, i);
    }
    return src;
}

static int l_totable(lua_State *L) {
    lbind_tensor *t = lbind_checktensor(L, 1);
    luaL_checkstack(L, t->ndim + 4, "t:totable");
    push_nested(L, t, 0, t->data);
    return 1;
}

static int l_copy(lua_State *L) {
    lbind_tensor *t = lbind_checktensor(L, 1);
    lbind_push_tensor_copy(L, t->data, t->ndim, t->shape);
    return 1;
}

/* Reductions in double, in index order (deterministic). */
enum { RED_SUM, RED_MEAN, RED_MIN, RED_MAX, RED_NORM };

static int reduce(lua_State *L, int op) {
    lbind_tensor *t = lbind_checktensor(L, 1);
    double acc = op == RED_MIN ? INFINITY : op == RED_MAX ? -INFINITY : 0.0;
    for (size_t i = 0; i < t->numel; i++) {
        double v = t->data[i];
        switch (op) {
        case RED_MIN: if (v < acc || isnan(v)) acc = v; break;
        case RED_MAX: if (v > acc || isnan(v)) acc = v; break;
        case RED_NORM: acc += v * v; break;
        default: acc += v; break;
        }
    }
    if (op == RED_MEAN) acc /= (double)t->numel;
    if (op == RED_NORM) acc = sqrt(acc);
    lua_pushnumber(L, acc);
    return 1;
}

static int l_sum(lua_State *L) { return reduce(L, RED_SUM); }
static int l_mean(lua_State *L) { return reduce(L, RED_MEAN); }
static int l_min(lua_State *L) { return reduce(L, RED_MIN); }
static int l_max(lua_State *L) { return reduce(L, RED_MAX); }
static int l_norm(lua_State *L) { return reduce(L, RED_NORM); }

/* ---- printing ------------------------------------------------------------------- */

/* At most 8 columns (first 6, "...", last 1), 6 rows (first 4, "...", last 1)
 * and 2 slices of each outer dimension (first, "...", last). */
static int shown(int n, int level_from_end, int i) {
    int keep_head = level_from_end == 0 ? 6 : level_from_end == 1 ? 4 : 1;
    int limit = level_from_end == 0 ? 8 : level_from_end == 1 ? 6 : 2;
    if (n <= limit) return 1;
    if (i < keep_head || i == n - 1) return 1;
    return i == keep_head ? -1 : 0; /* -1: print the ellipsis here */
}

static void add_nested(luaL_Buffer *b, const lbind_tensor *t, int dim, const float *src, int indent) {
    char num[32];
    int n = t->shape[dim], last = dim == t->ndim - 1;
    size_t stride = 1;
    for (int k = dim + 1; k < t->ndim; k++) stride *= (size_t)t->shape[k];
    luaL_addchar(b, '[');
    int first = 1;
    for (int i = 0; i < n; i++) {
        int s = shown(n, t->ndim - 1 - dim, i);
        if (s == 0) continue;
        if (!first) {
            luaL_addchar(b, ',');
            if (last) luaL_addchar(b, ' ');
            else {
                luaL_addchar(b, '\n');
                for (int k = 0; k <= indent; k++) luaL_addchar(b, ' ');
            }
        }
        first = 0;
        if (s < 0) {
            luaL_addstring(b, "...");
            continue;
        }
        if (last) {
            snprintf(num, sizeof num, "%.4g", (double)src[i]);
            luaL_addstring(b, num);
        } else {
            add_nested(b, t, dim + 1, src + (size_t)i * stride, indent + 1);
        }
    }
    luaL_addchar(b, ']');
}

static int l_tostring(lua_State *L) {
    lbind_tensor *t = luaL_checkudata(L, 1, LBIND_TENSOR_MT);
    const char *why = view_problem(L, 1, t);
    luaL_Buffer b;
    char head[96];
    int k = snprintf(head, sizeof head, "tensor(");
    for (int i = 0; i < t->ndim; i++)
        k += snprintf(head + k, sizeof head - (size_t)k, "%s%d", i ? ", " : "", t->shape[i]);
    snprintf(head + k, sizeof head - (size_t)k, ")%s", t->owned ? "" : " view");
    luaL_buffinit(L, &b);
    luaL_addstring(&b, head);
    if (why) {
        luaL_addstring(&b, " <");
        luaL_addstring(&b, why);
        luaL_addstring(&b, ">");
    } else {
        luaL_addchar(&b, '\n');
        add_nested(&b, t, 0, t->data, 0);
    }
    luaL_pushresult(&b);
    return 1;
}

/* ---- registration ---------------------------------------------------------------- */

typedef struct {
    const char *name;
    lua_CFunction fn;
    const char *doc;
} doc_reg;

static const doc_reg methods[] = {
    {"shape", l_shape, "t:shape() -> {d1, d2, ...}: the dimensions of the tensor."},
    {"numel", l_numel, "t:numel() -> number of elements (product of the dimensions)."},
    {"at", l_at, "t:at(i, j, ...) -> the number at 1-based indices (one per dimension)."},
    {"set", l_set,
     "t:set(i, j, ..., v): write v at 1-based indices. On a view of a model parameter this changes the model."},
    {"totable", l_totable, "t:totable() -> nested Lua tables of numbers with the tensor's shape."},
    {"sum", l_sum, "t:sum() -> sum of all elements (accumulated in double)."},
    {"mean", l_mean, "t:mean() -> mean of all elements."},
    {"min", l_min, "t:min() -> smallest element."},
    {"max", l_max, "t:max() -> largest element."},
    {"norm", l_norm, "t:norm() -> Euclidean (Frobenius) norm of all elements."},
    {"copy", l_copy, "t:copy() -> a new tensor owning a copy of the data (a view's copy no longer follows the model)."},
    {NULL, NULL, NULL},
};

void lbind_open_tensor(lua_State *L) {
    int icl = lua_gettop(L);
    luaL_newmetatable(L, LBIND_TENSOR_MT);
    int mt = lua_gettop(L);
    lua_newtable(L); /* methods */
    int meth = lua_gettop(L);
    char name[64];
    for (const doc_reg *r = methods; r->name; r++) {
        lua_pushcfunction(L, r->fn);
        snprintf(name, sizeof name, "icl.tensor:%s", r->name);
        lbind_setdoc(L, lua_gettop(L), name, r->doc);
        lua_setfield(L, meth, r->name);
    }
    lua_pushvalue(L, meth);
    lua_setfield(L, mt, "__methods"); /* for completion and help */
    lua_pushvalue(L, meth);
    lua_pushcclosure(L, l_index, 1);
    lua_setfield(L, mt, "__index");
    lua_pushcfunction(L, l_newindex);
    lua_setfield(L, mt, "__newindex");
    lua_pushcfunction(L, l_len);
    lua_setfield(L, mt, "__len");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, mt, "__tostring");
    lua_createtable(L, 2, 0);
    lua_pushstring(L, "ndim");
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, "is_view");
    lua_rawseti(L, -2, 2);
    lua_setfield(L, mt, "__fields");
    lua_settop(L, icl);

    lua_pushcfunction(L, l_tensor_new);
    lbind_setdoc(L, lua_gettop(L), "icl.tensor",
                 "icl.tensor{ {1, 2}, {3, 4} } -> a tensor copied from nested tables (1 to 4 dimensions).\n"
                 "Fields t.ndim, t.is_view; t[i] is a number (1-D) or a view of row i; #t is the first dimension.");
    lua_setfield(L, icl, "tensor");
    lua_pushcfunction(L, l_zeros);
    lbind_setdoc(L, lua_gettop(L), "icl.zeros",
                 "icl.zeros(d1, d2, ...) -> a tensor of zeros with that shape (1 to 4 dims).");
    lua_setfield(L, icl, "zeros");
}
