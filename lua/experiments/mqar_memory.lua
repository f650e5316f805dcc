-- mqar_memory.lua - how well a fixed associative memory does on vector MQAR,
-- scored exactly as the Table 1 row scores a model: the row's task and its
-- sampler (icl.task, src/tasks/task_mqar.c), the held-out prompts of the
-- final score, and the row's nearest-value accuracy (table1_stats).
--
--   iclplay run lua/experiments/mqar_memory.lua [d] [pairs] [prompts]
--
-- Two memories that need no training, read with the query vector q:
--   linear: p = sum_j v_j (k_j . q), the outer-product memory sum_j v_j k_j^T.
--     A selective SSM's state is one of these: Mamba adds x_t B_t^T to its
--     (E, N) state and reads it with C_t, where B_t and C_t are linear in the
--     current token and x_t mixes in the previous one (conv1d), so one layer
--     can store value-after-key pairs this way.
--   cubic: p = sum_j v_j (k_j . q)^3, the same with sharper (cubic) key
--     features, which stacked layers with nonlinearities can approach.
-- It answers "can a recurrent state get far above chance here at all", which
-- the Table 1 MQAR row needed when Mamba did (see README.md).
local icl = require("icl")
local S = require("icl.table1_stats")
local ROWS = require("icl.table1_rows")

local R = ROWS.find("vector_mqar")
local spec = {}
for k, v in pairs(R.task) do spec[k] = v end
spec.n_dims = tonumber(arg and arg[1]) or spec.n_dims
spec.kappa = tonumber(arg and arg[2]) or spec.kappa
local n = tonumber(arg and arg[3]) or 1280
local t = icl.task(spec)
local info = S.task_info(R, t)
local d, K = spec.n_dims, spec.kappa

-- p = sum_j v_j (k_j . q)^power over the prompt's pairs (X[2j+1], X[2j+2])
local function readout(X, q, power)
  local p = {}
  for c = 1, d do p[c] = 0 end
  for j = 0, K - 1 do
    local key, val, w = X[2 * j + 1], X[2 * j + 2], 0
    for c = 1, d do w = w + key[c] * q[c] end
    w = w ^ power
    for c = 1, d do p[c] = p[c] + val[c] * w end
  end
  return p
end

local hits, slots = { linear = 0, cubic = 0 }, 0
for start = 0, n - 1, 64 do
  local b = t:sample(math.min(64, n - start), { seed = 0xE7A1, stream = start })
  local X, Y, M = b.x:totable(), b.y:totable(), b.metric:totable()
  for i = 1, #X do
    for tt = 1, b.T do
      if M[i][tt] ~= 0 then
        slots = slots + 1
        hits.linear = hits.linear + S.slot_score(info, readout(X[i], X[i][tt], 1), Y[i][tt], X[i])
        hits.cubic = hits.cubic + S.slot_score(info, readout(X[i], X[i][tt], 3), Y[i][tt], X[i])
      end
    end
  end
end
t:close()
print(string.format("vector MQAR, d %d, %d pairs, %d prompts (%d queries): nearest-value accuracy (chance %.3f)",
  d, K, n, slots, 1 / K))
print(string.format("  linear outer-product memory  %.3f", hits.linear / slots))
print(string.format("  cubic-feature memory         %.3f", hits.cubic / slots))
