-- mqar_memory.lua - how well a fixed associative memory does on vector MQAR,
-- by the metric of the Table 1 row (nearest-value accuracy, chance 1/kappa).
--
--   iclplay run lua/experiments/mqar_memory.lua [d] [pairs] [prompts]
--
-- Keys and values are N(0, I) vectors rescaled to norm sqrt(d), as the
-- vector_mqar sampler draws them (src/tasks/task_mqar.c); the query is a copy
-- of one key. Two memories that need no training:
--   linear: p = sum_j v_j (k_j . q), the outer-product memory sum_j v_j k_j^T
--     read with q. A selective SSM's state is one of these: Mamba adds
--     x_t B_t^T to its (E, N) state and reads it with C_t, where B_t and C_t
--     are linear in the current token and x_t mixes in the previous one
--     (conv1d), so one layer can store value-after-key pairs this way.
--   cubic: p = sum_j v_j (k_j . q)^3, the same with sharper (cubic) key
--     features, which stacked layers with nonlinearities can approach.
-- It answers "can a recurrent state get far above chance here at all", which
-- the Table 1 MQAR row needed when Mamba did (see README.md).
local d = tonumber(arg and arg[1]) or 8
local K = tonumber(arg and arg[2]) or 16
local n = tonumber(arg and arg[3]) or 4000
math.randomseed(7)

local function gauss()
  local u1, u2 = math.random(), math.random()
  return math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2)
end
local function sphere()
  local v, s = {}, 0
  for c = 1, d do v[c] = gauss() s = s + v[c] ^ 2 end
  local f = math.sqrt(d / s)
  for c = 1, d do v[c] = v[c] * f end
  return v
end
local function dot(a, b)
  local s = 0
  for c = 1, d do s = s + a[c] * b[c] end
  return s
end
-- index of the value nearest (largest inner product) to the read-out p
local function nearest(v, p)
  local best, bi = -math.huge, 0
  for j = 1, K do
    local s = dot(v[j], p)
    if s > best then best, bi = s, j end
  end
  return bi
end
local function readout(k, v, q, power)
  local p = {}
  for c = 1, d do p[c] = 0 end
  for j = 1, K do
    local w = dot(k[j], q) ^ power
    for c = 1, d do p[c] = p[c] + v[j][c] * w end
  end
  return p
end

local hits = { linear = 0, cubic = 0 }
for _ = 1, n do
  local k, v = {}, {}
  for j = 1, K do k[j], v[j] = sphere(), sphere() end
  local i = math.random(K)
  if nearest(v, readout(k, v, k[i], 1)) == i then hits.linear = hits.linear + 1 end
  if nearest(v, readout(k, v, k[i], 3)) == i then hits.cubic = hits.cubic + 1 end
end
print(string.format("vector MQAR, d %d, %d pairs, %d prompts: nearest-value accuracy (chance %.3f)", d, K, n, 1 / K))
print(string.format("  linear outer-product memory  %.3f", hits.linear / n))
print(string.format("  cubic-feature memory         %.3f", hits.cubic / n))
