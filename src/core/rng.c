/*
 * rng.c - the counter-based generator behind every random number in iclplay.
 *
 * Draw number c of generator (seed, stream) is
 *     rng_u64 = H_key(c),   key = K(seed, stream),
 * where H_key is a keyed bijection of the 64-bit counter made of two rounds
 * of strong 64-bit finalisers (the splitmix64 / Stafford "Mix13" mixer, then
 * MurmurHash3's fmix64), with the key injected before each round:
 *     x = c * GOLDEN + key          (bijective in c: GOLDEN is odd)
 *     x = mix13(x)
 *     x = fmix64(x ^ rotl(key, 32))
 * Round one alone is exactly splitmix64 started at `key`, which passes
 * BigCrush; round two makes different keys give unrelated sequences rather
 * than shifted copies of one splitmix cycle. Because each step is a
 * bijection, one stream never repeats within 2^64 draws.
 *
 * It is "Philox-style" in the sense rng.h means (a keyed bijective hash of a
 * counter, state = key + counter), not literally Philox-2x64: that needs a
 * 64x64->128 multiply, which ISO C lacks. Everything is integer arithmetic,
 * and the only floating point is IEEE double with correctly rounded sqrt and
 * glibc's log/cos, so the same (seed, stream, counter) gives the same numbers
 * on every machine and thread count.
 *
 * What it is not: cryptographic, or a source of entropy (seeds come from the
 * user, so runs can be replayed).
 */
#include "rng.h"

#include <math.h>

#define RNG_GOLDEN 0x9E3779B97F4A7C15ull /* 2^64 / phi, odd */

/* splitmix64's finaliser (Stafford's Mix13): a bijection of 64-bit words. */
static uint64_t mix13(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* MurmurHash3's fmix64: another bijection with different constants. */
static uint64_t fmix64(uint64_t z) {
    z = (z ^ (z >> 33)) * 0xFF51AFD7ED558CCDull;
    z = (z ^ (z >> 33)) * 0xC4CEB9FE1A85EC53ull;
    return z ^ (z >> 33);
}

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* ------------------------------------------------------------------------ */
/* core                                                                     */
/* ------------------------------------------------------------------------ */

rng_t rng_make(uint64_t seed, uint64_t stream) {
    /* Hash seed and stream separately before combining, so that nearby pairs
     * (seed, seed+1, stream, stream+1) land on unrelated keys, and (s, t)
     * is not confused with (t, s). */
    uint64_t hs = mix13(seed ^ 0x6A09E667F3BCC908ull);
    uint64_t ht = fmix64(stream * RNG_GOLDEN + 0xBB67AE8584CAA73Bull);
    rng_t r;
    r.key = mix13(hs + rotl64(ht, 17));
    r.counter = 0;
    return r;
}

uint64_t rng_u64(rng_t *r) {
    uint64_t x = r->counter * RNG_GOLDEN + r->key;
    r->counter++;
    x = mix13(x);
    return fmix64(x ^ rotl64(r->key, 32));
}

/* ------------------------------------------------------------------------ */
/* distributions                                                            */
/* ------------------------------------------------------------------------ */

float rng_uniform(rng_t *r) {
    /* the top 24 bits: every value k * 2^-24 is an exact float in [0, 1) */
    return (float)(rng_u64(r) >> 40) * 0x1.0p-24f;
}

float rng_uniform_range(rng_t *r, float lo, float hi) {
    float x = lo + (hi - lo) * rng_uniform(r);
    /* lo + (hi-lo)*u can round up to hi when u is near 1; keep [lo, hi). */
    if (hi > lo && x >= hi) x = nextafterf(hi, lo);
    return x;
}

float rng_normal(rng_t *r) {
    /* Box-Muller from two 53-bit uniforms. u1 is in (0, 1] so log(u1) is
     * finite (the largest |z| is sqrt(2 * 53 ln 2) ~ 8.6); only the cosine
     * branch is used so the state stays two words (no cached spare). */
    double u1 = (double)((rng_u64(r) >> 11) + 1) * 0x1.0p-53;
    double u2 = (double)(rng_u64(r) >> 11) * 0x1.0p-53;
    double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    return (float)z;
}

uint32_t rng_below(rng_t *r, uint32_t n) {
    if (n <= 1) return 0;
    /* Lemire's multiply-shift with rejection: m = x * n; the high word is the
     * result; low words below 2^32 mod n are rejected so each result has
     * exactly floor(2^32 / n) preimages (no modulo bias). */
    uint32_t x = (uint32_t)(rng_u64(r) >> 32);
    uint64_t m = (uint64_t)x * (uint64_t)n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n; /* 2^32 mod n */
        while (low < threshold) {
            x = (uint32_t)(rng_u64(r) >> 32);
            m = (uint64_t)x * (uint64_t)n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

void rng_fill_normal(rng_t *r, float *x, size_t n, float mean, float std) {
    for (size_t i = 0; i < n; i++) x[i] = mean + std * rng_normal(r);
}

void rng_fill_uniform(rng_t *r, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = rng_uniform_range(r, lo, hi);
}
