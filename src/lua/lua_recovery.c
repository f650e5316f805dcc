/*
 * lua_recovery.c - the recovery checkpoint: when the process ends on a
 * signal (SIGTERM, SIGHUP, or a Ctrl-C that ends a headless script), every
 * model with unsaved training is written to the recovery folder; the next
 * start says so, and icl.recover() loads them. icl.terminating() tells a
 * script that catches the interruption that the process is ending.
 *
 *   folder   $ICLPLAY_RECOVERY, else $XDG_STATE_HOME/iclplay/recovery, else
 *            $HOME/.local/state/iclplay/recovery (created when needed)
 *   files    model-<k>.safetensors (checkpoint_save: temporary file, then
 *            rename) and index.tsv, written last the same way, one line per
 *            model: file, description, unix time, signal name
 *
 * A recovery that fails (no home, a full disk) is reported on stderr and
 * changes nothing else: the process was ending anyway, and the previous
 * recovery files are only replaced by complete new ones.
 *
 * Not here: the signal handling (core/interrupt.h, repl.c), when it runs
 * (main.c), checkpoints themselves (nn/checkpoint.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "core/interrupt.h"
#include "lua/lbind.h"
#include "nn/checkpoint.h"

#define RECOVERY_INDEX "index.tsv"
#define RECOVERY_MAX 64 /* models written at most (a safety bound, not a real limit) */

/* The recovery folder into buf; 0 if there is no place for one. */
static int recovery_dir(char *buf, size_t n) {
    const char *env = getenv("ICLPLAY_RECOVERY"), *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    int w;
    if (env && *env) w = snprintf(buf, n, "%s", env);
    else if (xdg && *xdg) w = snprintf(buf, n, "%s/iclplay/recovery", xdg);
    else if (home && *home) w = snprintf(buf, n, "%s/.local/state/iclplay/recovery", home);
    else return 0;
    return w > 0 && (size_t)w < n;
}

/* mkdir -p; 0 on success. */
static int make_dirs(const char *path) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static const char *signal_name(int sig) {
    switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    default: return "a signal";
    }
}

typedef struct {
    const char *dir;
    const char *why;
    FILE *report;
    int written, failed;
    char index[RECOVERY_MAX * 160];
    size_t used;
} recovery_ctx;

static int save_one(lbind_model *lm, void *ud) {
    recovery_ctx *c = ud;
    if (c->written >= RECOVERY_MAX) return 1;
    char path[4200];
    int k = c->written + 1;
    snprintf(path, sizeof path, "%s/model-%d.safetensors", c->dir, k);
    const char *keys[] = {"recovered_because"}, *vals[] = {c->why};
    if (checkpoint_save(path, lm->m, NULL, keys, vals, 1) != ICL_OK) {
        fprintf(c->report, "iclplay: recovery: %s\n", icl_error());
        c->failed++;
        return 0;
    }
    const model_spec *s = &lm->m->spec;
    int w = snprintf(c->index + c->used, sizeof c->index - c->used, "model-%d.safetensors\t%s, d_model %d, %d blocks, %zu parameters\t%lld\t%s\n",
                     k, s->arch, s->d_model, s->n_blocks, (size_t)lm->m->n_params, (long long)time(NULL), c->why);
    if (w > 0 && (size_t)w < sizeof c->index - c->used) c->used += (size_t)w;
    c->written++;
    return 0;
}

int lbind_write_recovery(lua_State *L, int sig, FILE *report) {
    char dir[4096];
    lua_gc(L, LUA_GCCOLLECT); /* models nobody can reach cannot be wanted back */
    if (lbind_count_dirty_models(L) == 0) return 0;
    if (!recovery_dir(dir, sizeof dir)) {
        fprintf(report, "iclplay: recovery: no folder for a recovery checkpoint (set ICLPLAY_RECOVERY or HOME); "
                        "unsaved training is lost\n");
        return -1;
    }
    if (make_dirs(dir) != 0) {
        fprintf(report, "iclplay: recovery: cannot create %s: %s; unsaved training is lost\n", dir, strerror(errno));
        return -1;
    }
    recovery_ctx *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->dir = dir;
    c->why = signal_name(sig);
    c->report = report;
    lbind_each_dirty_model(L, save_one, c);
    int n = c->written;
    if (n > 0) { /* the index last, atomically: it names only complete files */
        char idx[4200], tmp[4300];
        snprintf(idx, sizeof idx, "%s/%s", dir, RECOVERY_INDEX);
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", idx, (long)getpid());
        FILE *f = fopen(tmp, "w");
        int ok = f && fwrite(c->index, 1, c->used, f) == c->used;
        ok = f && fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
        if (f && fclose(f) != 0) ok = 0;
        if (!ok || rename(tmp, idx) != 0) {
            fprintf(report, "iclplay: recovery: cannot write %s: %s\n", idx, strerror(errno));
            unlink(tmp);
            n = -1;
        } else {
            fprintf(report, "iclplay: ended by %s: %d model%s with unsaved training saved in %s "
                            "(the next start offers them: icl.recover())\n",
                    c->why, n, n == 1 ? "" : "s", dir);
        }
    }
    free(c);
    return n;
}

/* Reads the index into a malloc'ed string; NULL if there is none. */
static char *read_index(char *dir, size_t n) {
    char path[4200];
    if (!recovery_dir(dir, n)) return NULL;
    snprintf(path, sizeof path, "%s/%s", dir, RECOVERY_INDEX);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = malloc(RECOVERY_MAX * 160 + 1);
    size_t got = buf ? fread(buf, 1, RECOVERY_MAX * 160, f) : 0;
    fclose(f);
    if (!buf || got == 0) {
        free(buf);
        return NULL;
    }
    buf[got] = 0;
    return buf;
}

int lbind_recovery_notice(char *buf, size_t n) {
    char dir[4096];
    char *idx = read_index(dir, sizeof dir);
    if (!idx) return 0;
    int models = 0;
    for (const char *p = idx; *p; p++) models += *p == '\n';
    const char *why = strrchr(idx, '\t');
    char reason[32] = "a signal";
    if (why) sscanf(why + 1, "%31s", reason);
    snprintf(buf, n,
             "recovered: %d model%s with unsaved training from a session ended by %s (%s): "
             "icl.recover() loads %s, icl.recover(\"discard\") deletes %s",
             models, models == 1 ? "" : "s", reason, dir, models == 1 ? "it" : "them", models == 1 ? "it" : "them");
    free(idx);
    return 1;
}

/* Removes the recovery files the index names, then the index. */
static void remove_recovery(const char *dir, char *idx) {
    char path[4200];
    for (char *line = strtok(idx, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');
        if (tab) *tab = 0;
        if (!strncmp(line, "model-", 6) && !strchr(line, '/')) {
            snprintf(path, sizeof path, "%s/%s", dir, line);
            unlink(path);
        }
    }
    snprintf(path, sizeof path, "%s/%s", dir, RECOVERY_INDEX);
    unlink(path);
}

/* icl.recover([what]) -> models: "load" (default) loads every recovered model
 * (icl.load) and then deletes the files; "list" returns their descriptions;
 * "discard" deletes them and returns the descriptions of what it deleted. */
static int l_recover(lua_State *L) {
    static const char *const whats[] = {"load", "list", "discard", NULL};
    int what = luaL_checkoption(L, 1, "load", whats);
    char dir[4096];
    char *idx = read_index(dir, sizeof dir);
    lua_newtable(L);
    if (!idx) return 1;
    int k = 0;
    char *copy = strdup(idx);
    if (!copy) {
        free(idx);
        return luaL_error(L, "icl.recover: out of memory");
    }
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = 0;
        char *desc = tab + 1, *tab2 = strchr(desc, '\t');
        if (tab2) *tab2 = 0;
        if (what != 0) { /* list, discard: what is (was) there */
            lua_pushfstring(L, "%s/%s: %s", dir, line, desc);
        } else {
            lbind_push_icl(L);
            lua_getfield(L, -1, "load");
            lua_pushfstring(L, "%s/%s", dir, line);
            if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
                free(copy);
                free(idx);
                return luaL_error(L, "icl.recover: %s (the files are kept)", lua_tostring(L, -1));
            }
            lua_remove(L, -2); /* icl */
            lbind_model *lm = luaL_testudata(L, -1, LBIND_MODEL_MT);
            if (lm) lm->dirty = 1; /* recovered training is still unsaved */
        }
        lua_rawseti(L, -2, ++k);
    }
    free(copy);
    if (what != 1) remove_recovery(dir, idx);
    free(idx);
    return 1;
}

/* icl.terminating() -> signal number or nil: a SIGTERM or SIGHUP arrived and
 * the process is ending (every step from now on is refused); scripts that
 * catch the interruption exit with 128 + it. */
static int l_terminating(lua_State *L) {
    int sig = icl_terminate_pending();
    if (sig) lua_pushinteger(L, sig);
    else lua_pushnil(L);
    return 1;
}

void lbind_open_recovery(lua_State *L) {
    if (lbind_push_icl(L) == LUA_TTABLE) {
        lua_pushcfunction(L, l_recover);
        lbind_setdoc(L, lua_gettop(L), "icl.recover",
                     "icl.recover([\"load\" | \"list\" | \"discard\"]) -> list: the models a session ended by SIGTERM or\n"
                     "SIGHUP (or a Ctrl-C that ended a script) saved because their training was unsaved. \"load\"\n"
                     "(default) returns them as models and deletes the files, \"list\" describes them, \"discard\" deletes\n"
                     "them and returns the descriptions of what it deleted. Folder: $ICLPLAY_RECOVERY, else $XDG_STATE_HOME/iclplay/recovery, else\n"
                     "~/.local/state/iclplay/recovery.");
        lua_setfield(L, -2, "recover");
        lua_pushcfunction(L, l_terminating);
        lbind_setdoc(L, lua_gettop(L), "icl.terminating",
                     "icl.terminating() -> signal number or nil: a SIGTERM (15) or SIGHUP (1) arrived and the process\n"
                     "is ending; every training step is refused from then on. A script that catches the interruption\n"
                     "should end with exit status 128 + it (143, 129).");
        lua_setfield(L, -2, "terminating");
    }
    lua_pop(L, 1);
}
