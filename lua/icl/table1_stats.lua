-- table1_stats.lua - the statistic of a Table 1 cell and its verdict
-- (lua/experiments/table1.lua): which positions are scored, the per-prompt
-- scores (computed in Lua from a forward pass, on exactly icl.eval's
-- prompts), the percentile bootstrap over prompts and seeds, and the
-- verdict rules.
--
-- The statistic: the task's main metric (normalised squared error, 1 = the
-- zero predictor; sign accuracy for parity, chance 0.5; nearest-value
-- accuracy for vector MQAR, chance 1/16) averaged over every scored (prompt,
-- position) pair in the row's window: the last quarter of the in-context
-- positions (e.g. positions 15-19 of 20), or all the queries for vector
-- MQAR. For outlier rows only clean positions count (the task's metric mask).
-- Per-prompt sums and counts are kept, because they are what the bootstrap
-- resamples and what a saved cell needs to be pooled with other seeds later.
-- Not here: training, saving, charts.
local icl = require("icl")
local U = require("icl.table1_util")

local S = {}

-- The trivial level of sparse parity: the best sign accuracy of a predictor
-- that ignores the in-context examples. It sees only x_query (uniform on
-- {-1, +1}^d) and knows that y is the product of k coordinates chosen
-- uniformly. With m coordinates at -1, a fraction f(m) = sum over even j of
-- C(m, j) C(d - m, k - j) / C(d, k) of the subsets give y = +1; the majority
-- sign scores max(f, 1 - f). Averaged over m ~ Binomial(d, 1/2) this is
-- 38/64 = 0.594 for d 6, k 2 and 0.555 for d 10, k 2, not 0.5: every
-- architecture of the d 6 row sat at 0.59-0.60 from step 390, before any
-- learnt from the examples (a verdict against 0.5 called that plateau ▲).
function S.parity_blind_accuracy(d, k)
  local function C(n, r)
    if r < 0 or r > n then return 0 end
    local c = 1
    for i = 1, r do c = c * (n - r + i) / i end
    return c
  end
  local acc, subsets = 0, C(d, k)
  for m = 0, d do
    local even = 0
    for j = 0, k, 2 do even = even + C(m, j) * C(d - m, k - j) end
    local f = even / subsets
    acc = acc + C(d, m) / 2 ^ d * math.max(f, 1 - f)
  end
  return acc
end

S.RULES = {
  "**✗** at the trivial level: progress < 0.10, where progress is 1 − error for errors (the zero predictor "
    .. "scores 1) and (accuracy − trivial) / (1 − trivial) for accuracies; a cell worse than trivial is ✗ too. "
    .. "The trivial level is the best score without the in-context examples: the zero predictor for errors, "
    .. "chance (1/16) for vector MQAR, and for sparse parity the best guess from x_query alone (the majority "
    .. string.format("sign over the possible subsets: %.3f for d 6, %.3f for d 10, k 2), not 0.5.",
      S.parity_blind_accuracy(6, 2), S.parity_blind_accuracy(10, 2)),
  "**✓** not ✗, and its 90% interval overlaps the interval of the row's best cell (highest progress), or its "
    .. "progress is within 0.02 of the best's.",
  "**▲** neither: clearly worse than the row's best.",
}
local TRIVIAL_PROGRESS = 0.10
local TIE_PROGRESS = 0.02
local BOOT_SEED = 0xB007

-- What scoring a row needs to know about its task (plain data: it is saved
-- in every cell, so a report can be rebuilt without building the task).
function S.task_info(R, t)
  local kind = t.metric
  local P = t.examples
  local lo = R.task.name == "vector_mqar" and 0 or P - math.ceil(P / 4)
  return {
    kind = kind, norm = t.norm, out = t.out, kappa = t:options().kappa or 0,
    metric_out = R.task.name == "cot_io" and 1 or t.out, -- CoT-I/O is scored on y (coordinate 0)
    positions = P, lo = lo, hi = P - 1,
    accuracy = kind ~= "sqerr",
    -- the trivial level, the best score that ignores the examples: the zero
    -- predictor (1) for errors, chance for vector MQAR, the x-only vote for parity
    ref = kind == "sign_acc" and S.parity_blind_accuracy(t:options().n_dims, t:options().k)
      or kind == "nearest_acc" and 1 / t:options().kappa or 1,
    ref_name = kind == "sign_acc" and "example-blind" or kind == "nearest_acc" and "chance" or "zero predictor",
  }
end

function S.window_text(info, R)
  if R.task.name == "vector_mqar" then return string.format("queries 1-%d", info.positions) end
  return string.format("positions %d-%d", info.lo, info.hi)
end

function S.metric_name(info)
  local k = info.kind
  if k == "sqerr" then return "normalised squared error" end
  if k == "sign_acc" then return "sign accuracy" end
  return "nearest-value accuracy"
end

-- The score of one scored slot: prediction p and target y (tables of the
-- output coordinates), X the prompt's inputs (vector MQAR only).
function S.slot_score(info, p, y, X)
  if info.kind == "sqerr" then
    local e = 0
    for o = 1, info.metric_out do e = e + (p[o] - y[o]) ^ 2 end
    return e / info.norm
  elseif info.kind == "sign_acc" then
    return ((p[1] > 0) == (y[1] > 0.5)) and 1 or 0
  end
  -- nearest_acc: the prompt's value (slot 2j+1) nearest to the prediction is the target's
  local best_p, best_y, top_p, top_y = 0, 0, -math.huge, -math.huge
  for j = 0, info.kappa - 1 do
    local val = X[2 * j + 2]
    local ip, iy = 0, 0
    for c = 1, #val do
      ip = ip + p[c] * val[c]
      iy = iy + y[c] * val[c]
    end
    if ip > top_p then top_p, best_p = ip, j end
    if iy > top_y then top_y, best_y = iy, j end
  end
  return best_p == best_y and 1 or 0
end

-- Scores prompts 1..n_prompts of `seed` as icl.eval does (the same prompts:
-- batches of 64 from stream 64*i; task_score in src/tasks/task.c). Returns
-- per-prompt sums of scores and counts of scored slots inside the window.
function S.score_prompts(info, m, t, seed, n_prompts)
  local sums, counts = {}, {}
  local B = 64
  for start = 0, n_prompts - 1, B do
    local n = math.min(B, n_prompts - start)
    local b = t:sample(n, { seed = seed, stream = start })
    local P = m:forward(b):totable()
    local Y, M, E = b.y:totable(), b.metric:totable(), b.example:totable()
    local X = info.kind == "nearest_acc" and b.x:totable() or nil
    for i = 1, n do
      local s, c = 0, 0
      for tt = 1, b.T do
        local ex = E[i][tt]
        if M[i][tt] ~= 0 and ex >= info.lo and ex <= info.hi then
          s, c = s + S.slot_score(info, P[i][tt], Y[i][tt], X and X[i]), c + 1
        end
      end
      sums[start + i], counts[start + i] = s, c
    end
  end
  return sums, counts
end

local function ratio(sums, counts)
  local s, c = 0, 0
  for i = 1, #sums do s, c = s + sums[i], c + counts[i] end
  return c > 0 and s / c or U.NAN
end

-- The window statistic from a per-position curve (count-weighted mean):
-- icl.eval's view of the same number, kept as a check of the Lua scorer.
function S.curve_window(curve, info)
  local s, n = 0, 0
  for p = info.lo, info.hi do
    local k, v = curve.count[p + 1], curve.mean[p + 1]
    if k and k > 0 and not U.isnan(v) then s, n = s + v * k, n + k end
  end
  return n > 0 and s / n or U.NAN
end

-- Estimate and 90% percentile-bootstrap interval. runs: list of { sums,
-- counts } (one per seed). The estimate is the mean over seeds of each
-- seed's ratio; a resample draws seeds with replacement, then prompts with
-- replacement inside each drawn seed.
function S.bootstrap(runs, resamples)
  local n_seeds = #runs
  local est = 0
  for _, r in ipairs(runs) do est = est + ratio(r.sums, r.counts) end
  est = est / n_seeds
  local rng = icl.rng(BOOT_SEED, 0)
  local draws = {}
  for _ = 1, resamples do
    local acc, ok = 0, true
    for _ = 1, n_seeds do
      local r = n_seeds > 1 and runs[rng:below(n_seeds) + 1] or runs[1]
      local n, s, c = #r.sums, 0, 0
      for _ = 1, n do
        local j = rng:below(n) + 1
        s, c = s + r.sums[j], c + r.counts[j]
      end
      if c == 0 then ok = false break end
      acc = acc + s / c
    end
    if ok then draws[#draws + 1] = acc / n_seeds end
  end
  table.sort(draws)
  if #draws == 0 then return est, U.NAN, U.NAN end
  local function q(p) return draws[math.floor(p * (#draws - 1) + 0.5) + 1] end
  return est, q(0.05), q(0.95)
end

-- "Progress" puts the trivial level at 0 and perfection at 1.
local function progress(v, info)
  if info.accuracy then return (v - info.ref) / (1 - info.ref) end
  return (info.ref - v) / info.ref
end

-- Fills cell.verdict, cell.prog, cell.prog_lo/hi for every cell of the row
-- that has a statistic (rules in S.RULES).
function S.judge(cells, info)
  local best
  for _, cell in pairs(cells) do
    cell.verdict, cell.prog = nil, nil
    if cell.stat and not U.isnan(cell.stat) then
      local a, b = progress(cell.lo, info), progress(cell.hi, info)
      cell.prog = progress(cell.stat, info)
      cell.prog_lo, cell.prog_hi = math.min(a, b), math.max(a, b)
      if not best or cell.prog > best.prog then best = cell end
    end
  end
  for _, cell in pairs(cells) do
    if cell.prog then
      if cell.prog < TRIVIAL_PROGRESS then cell.verdict = "✗"
      elseif cell.prog_hi >= best.prog_lo or best.prog - cell.prog <= TIE_PROGRESS then cell.verdict = "✓"
      else cell.verdict = "▲" end
    end
  end
end

S.VERDICT_WORD = { ["✓"] = "check", ["▲"] = "triangle", ["✗"] = "cross" }

return S
