/*
 * baselines_tree.c - the greedy regression tree baseline (CART, as sklearn's
 * DecisionTreeRegressor with its defaults; SPEC.md 1.4 "greedy tree of depth
 * 4" and "of unlimited depth").
 *
 * A node holding samples S is split on the axis-aligned test x[f] <= thr that
 * minimises the children's summed squared error, i.e. maximises
 *     sum_L(y)^2 / n_L + sum_R(y)^2 / n_R
 * (sklearn's "proxy improvement"). Candidate thresholds are the midpoints
 * between consecutive distinct values of x[f] within the node, so the tree
 * searches thresholds even where the generating trees split at 0. A node
 * becomes a leaf (value = mean y) when it is at max_depth (0 = unlimited),
 * has fewer than 2 samples, has zero impurity (sum of squared deviations,
 * computed in two passes so a pure node gives exactly 0), or no feature
 * takes two distinct values. Every split with both children non-empty is
 * allowed, even one that improves nothing (sklearn does the same).
 *
 * Ties: features are scanned in order 0..d-1 and thresholds left to right,
 * and only a strictly better split replaces the best one (sklearn scans
 * features in a random order, so its ties may go another way). Samples with
 * equal feature values are ordered by index, so the result is a pure
 * function of (X, y).
 *
 * Cost: each feature is sorted once per fit (or, in the batch driver, kept
 * sorted across positions by insertion: bl_tree_presort_add); nodes keep
 * every feature's order by stable partitions, so a tree level costs O(d n).
 *
 * Not here: the batch driver (baselines.c). No allocation: nodes, the sample
 * orders, the sort buffer and the work stack live in the scratch slice.
 */
#include "tasks/baselines_impl.h"

#include <stdlib.h>
#include <string.h>

static int pair_cmp(const void *pa, const void *pb) {
    const bl_pair *a = pa, *b = pb;
    if (a->v < b->v) return -1;
    if (a->v > b->v) return 1;
    return (a->i > b->i) - (a->i < b->i);
}

void bl_tree_presort_add(bl_scratch *s, const double *X, int k, int d) {
    for (int f = 0; f < d; f++) {
        int *sf = s->sorted + (size_t)f * s->n_max;
        double v = X[(size_t)k * d + f];
        int j = k;
        /* k is the largest index so far: it goes after every equal value. */
        while (j > 0 && X[(size_t)sf[j - 1] * d + f] > v) {
            sf[j] = sf[j - 1];
            j--;
        }
        sf[j] = k;
    }
}

int bl_tree_fit(bl_scratch *s, const double *X, const double *y, int n, int d, int max_depth, int presorted) {
    bl_node *nodes = s->nodes;
    int n_leaves = 0, top = 0;
    s->n_nodes = 1;
    nodes[0] = (bl_node){.feature = -1, .left = -1, .right = -1, .threshold = 0.0, .value = 0.0};
    if (n == 0) return 1; /* a single leaf predicting 0 */
    /* ord[f][start, end) holds a node's samples sorted by (x[f], index):
     * sorted once here, then kept sorted by stable partitions. */
    for (int f = 0; f < d && presorted; f++)
        memcpy(s->ord + (size_t)f * s->n_max, s->sorted + (size_t)f * s->n_max, (size_t)n * sizeof(int));
    for (int f = 0; f < d && !presorted; f++) {
        bl_pair *pr = s->pairs;
        for (int i = 0; i < n; i++) pr[i] = (bl_pair){.v = X[(size_t)i * d + f], .y = y[i], .i = i};
        qsort(pr, (size_t)n, sizeof *pr, pair_cmp);
        int *of = s->ord + (size_t)f * s->n_max;
        for (int i = 0; i < n; i++) of[i] = pr[i].i;
    }
    s->stack[top++] = (bl_frame){.node = 0, .start = 0, .end = n, .depth = 0};
    while (top > 0) {
        bl_frame fr = s->stack[--top];
        bl_node *nd = &nodes[fr.node];
        const int m = fr.end - fr.start;
        const int *o0 = s->ord + fr.start; /* feature 0's order: any order will do */
        double sum = 0.0;
        for (int j = 0; j < m; j++) sum += y[o0[j]];
        double mean = sum / m, sse = 0.0;
        for (int j = 0; j < m; j++) sse += (y[o0[j]] - mean) * (y[o0[j]] - mean);
        *nd = (bl_node){.feature = -1, .left = -1, .right = -1, .threshold = 0.0, .value = mean};
        if ((max_depth > 0 && fr.depth >= max_depth) || m < 2 || sse <= 0.0) {
            n_leaves++;
            continue;
        }
        /* Best split over features and thresholds. */
        int best_f = -1;
        double best_proxy = -1.0, best_thr = 0.0;
        for (int f = 0; f < d; f++) {
            const int *of = s->ord + (size_t)f * s->n_max + fr.start;
            if (X[(size_t)of[0] * d + f] == X[(size_t)of[m - 1] * d + f]) continue; /* constant here */
            double sl = 0.0;
            for (int j = 0; j < m - 1; j++) {
                double v = X[(size_t)of[j] * d + f], vn = X[(size_t)of[j + 1] * d + f];
                sl += y[of[j]];
                if (v == vn) continue; /* cannot cut between equal values */
                int nl = j + 1, nr = m - nl;
                double sr = sum - sl;
                double proxy = sl * sl / nl + sr * sr / nr;
                if (proxy > best_proxy) {
                    best_proxy = proxy;
                    best_f = f;
                    double thr = 0.5 * (v + vn);
                    /* Rounding can put the midpoint on the upper value; keep
                     * the lower one then, so the split separates the two. */
                    if (thr >= vn) thr = v;
                    best_thr = thr;
                }
            }
        }
        if (best_f < 0) {
            n_leaves++;
            continue;
        }
        /* Stable partition of every feature's segment: left (x[f*] <= thr)
         * first, each side still sorted. */
        const int *ob = s->ord + (size_t)best_f * s->n_max + fr.start;
        for (int j = 0; j < m; j++) s->goes_left[ob[j]] = X[(size_t)ob[j] * d + best_f] <= best_thr;
        int nl = 0;
        for (int f = 0; f < d; f++) {
            int *of = s->ord + (size_t)f * s->n_max + fr.start;
            int l = 0, r = 0;
            for (int j = 0; j < m; j++) {
                int i = of[j];
                if (s->goes_left[i]) of[l++] = i;
                else s->tmp[r++] = i;
            }
            memcpy(of + l, s->tmp, (size_t)r * sizeof(int));
            nl = l;
        }
        int left = s->n_nodes++, right = s->n_nodes++;
        nd->feature = best_f;
        nd->threshold = best_thr;
        nd->left = left;
        nd->right = right;
        /* Each split turns one leaf-to-be into two non-empty ones, so there
         * are at most n leaves, 2n - 1 nodes and n pending frames. */
        s->stack[top++] = (bl_frame){.node = right, .start = fr.start + nl, .end = fr.end, .depth = fr.depth + 1};
        s->stack[top++] = (bl_frame){.node = left, .start = fr.start, .end = fr.start + nl, .depth = fr.depth + 1};
    }
    return n_leaves;
}

double bl_tree_eval(const bl_scratch *s, const double *x) {
    const bl_node *nd = &s->nodes[0];
    while (nd->feature >= 0) nd = &s->nodes[x[nd->feature] <= nd->threshold ? nd->left : nd->right];
    return nd->value;
}
