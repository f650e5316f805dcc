-- table1.lua - the paper's Table 1 (SPEC.md 5.1) reproduced on this machine:
-- every row trains Transformer, Mamba and MambaFormer (sparse parity also
-- S4-Mamba and the Standard Hybrid) for the same number of steps, scores
-- each on held-out prompts and writes a markdown table with verdicts next
-- to the paper's symbols, learning curves, in-context curves and CSVs.
--
--   iclplay run lua/experiments/table1.lua [--quick] [--seeds N] [--only KEYS]
--       [--out DIR] [--steps-scale X] [--steps N] [--threads N]
--
--   --quick          every cell trains 20 steps and is scored on 64 prompts: a
--                    check of the whole pipeline (minutes), not a result
--   --seeds N        N training seeds per cell (default 1)
--   --only KEYS      comma-separated row keys or prefixes (linear, sparse_linear,
--                    relu2nn, decision_tree, ortho_outlier, many_outlier,
--                    parity_d6, parity_d10, cot_io, vector_mqar; "parity" = both)
--   --out DIR        output folder (default results): DIR/table1.md, DIR/table1/
--   --steps-scale X  multiply every row's step budget by X
--   --steps N        a fixed budget of N steps per cell instead of the measured
--                    one (--steps-scale does not apply to it)
--   --threads N      icl.threads(N) before anything runs
--
-- The settings (issue 8, in lua/icl/table1_rows.lua): d_model 64, n_layer 4
-- in the paper's counting, 4 heads, batch 64, Adam at a constant lr 1e-3,
-- clipping 10, no curriculum; per row the task settings of the issue.
--
-- Step budget. Per row, before training, every architecture is timed (2
-- warm-up steps, then 20 timed ones; they count as training steps) and one
-- learning-curve evaluation is timed; the budget is the number of steps the
-- SLOWEST architecture fits in 85% of 15 minutes after its evaluations,
-- rounded down to two significant digits, so every cell of the row trains the
-- same number of steps and none takes more than about 15 minutes.
--
-- The statistic of a cell. The task's main metric (normalised squared error,
-- 1 = the zero predictor; sign accuracy for parity, chance 0.5; nearest-value
-- accuracy for vector MQAR, chance 1/16) averaged over every scored (prompt,
-- position) pair in the row's window: the last quarter of the in-context
-- positions (e.g. positions 15-19 of 20: 15 to 19 examples seen), or all four
-- queries for vector MQAR, on 1,280 held-out prompts (64 with --quick; seed
-- 0xE7A1, never used in training). For outlier rows only clean positions
-- count. The 90% interval is a percentile bootstrap over prompts (1,000
-- resamples; with several seeds, seeds are resampled too and the estimate is
-- the mean over seeds). The same number is recomputed from icl.eval's
-- per-position curve as a check. Learning curves use the same statistic on
-- 256 other held-out prompts (seed 0xC0DE) every 1/30 of the budget.
--
-- Verdicts (RULES below, also written at the top of table1.md). "Progress"
-- puts the trivial level at 0 and perfection at 1: 1 - error for errors,
-- (accuracy - chance) / (1 - chance) for accuracies.
--   ✗  at the trivial level: progress below 0.10 (or worse than trivial);
--   ✓  otherwise, when its interval overlaps the interval of the row's best
--      cell or its progress is within 0.02 of the best's;
--   ▲  otherwise: clearly worse than the row's best.
--
-- Ctrl-C stops at the next step boundary; what has been measured so far is
-- written (the cell in progress as "interrupted at step N"), and the outputs
-- are also rewritten after every finished cell. Not here: the row settings
-- (lua/icl/table1_rows.lua), the engine and the tasks (C).

local icl = require("icl")
local ROWS = require("icl.table1_rows")

local RULES = {
  "**✗** at the trivial level: progress < 0.10, where progress is 1 − error for errors (the zero predictor "
    .. "scores 1) and (accuracy − chance) / (1 − chance) for accuracies; a cell worse than trivial is ✗ too.",
  "**✓** not ✗, and its 90% interval overlaps the interval of the row's best cell (highest progress), or its "
    .. "progress is within 0.02 of the best's.",
  "**▲** neither: clearly worse than the row's best.",
}
local TRIVIAL_PROGRESS = 0.10
local TIE_PROGRESS = 0.02

local CELL_LIMIT_S = 15 * 60 -- the issue's cap per cell
local SAFETY = 0.85          -- share of the cap the budget plans for (load varies)
local N_CURVE_EVALS = 30     -- learning-curve points per cell (plus step 0)
local FINAL_SEED = 0xE7A1    -- held-out prompts of the final score (icl.eval's default)
local CURVE_SEED = 0xC0DE    -- held-out prompts of the learning curves
local BOOT_SEED = 0xB007
local BOOT_RESAMPLES = 1000

------------------------------------------------------------------------------
-- options
------------------------------------------------------------------------------

local USAGE = "usage: iclplay run lua/experiments/table1.lua [--quick] [--seeds N] [--only KEYS] [--out DIR]\n"
  .. "       [--steps-scale X] [--steps N] [--threads N]"

local function parse_args(argv)
  local o = { quick = false, seeds = 1, out = "results", scale = 1.0 }
  local i = 1
  local function value(name)
    i = i + 1
    if argv[i] == nil then error(name .. " needs a value\n" .. USAGE, 0) end
    return argv[i]
  end
  local function number(name, integer, min)
    local s = value(name)
    local v = tonumber(s)
    if not v or (integer and math.type(v) ~= "integer") or v < min then
      error(string.format("%s must be %s >= %s (got %s)", name, integer and "an integer" or "a number", min, s), 0)
    end
    return v
  end
  while i <= #argv do
    local a = argv[i]
    if a == "--quick" then o.quick = true
    elseif a == "--seeds" then o.seeds = number(a, true, 1)
    elseif a == "--only" then o.only = value(a)
    elseif a == "--out" then o.out = value(a)
    elseif a == "--steps-scale" then o.scale = number(a, false, 0)
    elseif a == "--steps" then o.steps = number(a, true, 1)
    elseif a == "--threads" then o.threads = number(a, true, 1)
    elseif a == "--help" or a == "-h" then print(USAGE) os.exit(0)
    else error("unknown option '" .. tostring(a) .. "'\n" .. USAGE, 0) end
    i = i + 1
  end
  if o.scale <= 0 then error("--steps-scale must be > 0", 0) end
  return o
end

local function select_rows(only)
  if not only then return ROWS.list end
  local picked, seen = {}, {}
  for want in only:gmatch("[^,%s]+") do
    local hit = false
    for _, r in ipairs(ROWS.list) do
      if r.key == want or r.key:sub(1, #want) == want or r.task.name == want then
        hit = true
        if not seen[r] then picked[#picked + 1], seen[r] = r, true end
      end
    end
    if not hit then
      local keys = {}
      for _, r in ipairs(ROWS.list) do keys[#keys + 1] = r.key end
      error(string.format("--only: no row '%s' (rows: %s)", want, table.concat(keys, ", ")), 0)
    end
  end
  table.sort(picked, function(a, b)
    local ia, ib
    for k, r in ipairs(ROWS.list) do
      if r == a then ia = k end
      if r == b then ib = k end
    end
    return ia < ib
  end)
  return picked
end

------------------------------------------------------------------------------
-- small helpers
------------------------------------------------------------------------------

local NAN = 0 / 0
local function isnan(v) return v ~= v end

-- Wall-clock seconds (os.clock is CPU time summed over threads).
local function now()
  local f = io.popen("date +%s.%N 2>/dev/null")
  local s = f and f:read("l")
  if f then f:close() end
  return tonumber(s) or os.time()
end

local function shell(cmd)
  local f = io.popen(cmd .. " 2>/dev/null")
  if not f then return "" end
  local s = f:read("a") or ""
  f:close()
  return (s:gsub("%s+$", ""))
end

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Writes text to path through a temporary file and a rename, so a reader
-- (or an interruption) never sees half a file.
local function write_file(path, text)
  local tmp = path .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  f:write(text)
  f:close()
  assert(os.rename(tmp, path))
end

local function fmt(v)
  if v == nil or isnan(v) then return "n/a" end
  if v ~= 0 and math.abs(v) < 0.001 then return string.format("%.1e", v) end
  return string.format("%.3f", v)
end

local function csvnum(v)
  if v == nil or isnan(v) then return "" end
  return string.format("%.6g", v)
end

local function thousands(n)
  local s = tostring(math.floor(n))
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

local function minutes(s)
  if not s then return "n/a" end
  if s < 60 then return string.format("%.0f s", s) end
  return string.format("%.1f min", s / 60)
end

-- Rounds down to two significant digits: 12,345 -> 12,000; 987 -> 980.
local function round2(n)
  if n < 100 then return math.max(1, math.floor(n)) end
  local mag = 10 ^ (math.floor(math.log(n, 10)) - 1)
  return math.floor(math.floor(n / mag) * mag + 0.5)
end

local function is_interrupt(err) return tostring(err):find("interrupted", 1, true) ~= nil end

------------------------------------------------------------------------------
-- the statistic: a window of positions, scored per prompt in Lua
------------------------------------------------------------------------------

-- What scoring a row needs to know about its task.
local function task_info(R, t)
  local kind = t.metric
  local opts = t:options()
  local P = t.examples
  local lo = R.task.name == "vector_mqar" and 0 or P - math.ceil(P / 4)
  return {
    kind = kind, norm = t.norm, out = t.out, kappa = opts.kappa,
    metric_out = R.task.name == "cot_io" and 1 or t.out, -- CoT-I/O is scored on y (coordinate 0)
    positions = P, lo = lo, hi = P - 1,
    accuracy = kind ~= "sqerr",
  }
end

local function window_text(info, R)
  if R.task.name == "vector_mqar" then return string.format("queries 1-%d", info.positions) end
  return string.format("positions %d-%d", info.lo, info.hi)
end

-- Scores prompts 1..n_prompts of `seed` exactly as icl.eval does (the same
-- prompts: batches of 64 from stream 0; task_score in src/tasks/task.c), and
-- stores each prompt's sum of scores and count of scored slots inside the
-- window, the unit the bootstrap resamples.
local function score_prompts(info, m, t, seed, n_prompts, sums, counts)
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
          local p, y = P[i][tt], Y[i][tt]
          local v
          if info.kind == "sqerr" then
            local e = 0
            for o = 1, info.metric_out do e = e + (p[o] - y[o]) ^ 2 end
            v = e / info.norm
          elseif info.kind == "sign_acc" then
            v = ((p[1] > 0) == (y[1] > 0.5)) and 1 or 0
          else -- nearest_acc: the prompt's value (slot 2j+1) nearest to the prediction is the target's
            local best_p, best_y, top_p, top_y = 0, 0, -math.huge, -math.huge
            for j = 0, info.kappa - 1 do
              local val = X[i][2 * j + 2]
              local ip, iy = 0, 0
              for cc = 1, #val do
                ip = ip + p[cc] * val[cc]
                iy = iy + y[cc] * val[cc]
              end
              if ip > top_p then top_p, best_p = ip, j end
              if iy > top_y then top_y, best_y = iy, j end
            end
            v = best_p == best_y and 1 or 0
          end
          s, c = s + v, c + 1
        end
      end
      sums[start + i], counts[start + i] = s, c
    end
  end
end

local function ratio(sums, counts)
  local s, c = 0, 0
  for i = 1, #sums do s, c = s + sums[i], c + counts[i] end
  return c > 0 and s / c or NAN
end

-- The window statistic from a per-position curve (count-weighted mean).
local function curve_window(curve, info)
  local s, n = 0, 0
  for p = info.lo, info.hi do
    local k, v = curve.count[p + 1], curve.mean[p + 1]
    if k and k > 0 and not isnan(v) then s, n = s + v * k, n + k end
  end
  return n > 0 and s / n or NAN
end

-- Estimate and 90% percentile-bootstrap interval over prompts (and seeds).
local function bootstrap(runs)
  local S = #runs
  local est = 0
  for _, r in ipairs(runs) do est = est + ratio(r.sums, r.counts) end
  est = est / S
  local rng = icl.rng(BOOT_SEED, 0)
  local draws = {}
  for _ = 1, BOOT_RESAMPLES do
    local acc, ok = 0, true
    for _ = 1, S do
      local r = S > 1 and runs[rng:below(S) + 1] or runs[1]
      local n, s, c = #r.sums, 0, 0
      for _ = 1, n do
        local j = rng:below(n) + 1
        s, c = s + r.sums[j], c + r.counts[j]
      end
      if c == 0 then ok = false break end
      acc = acc + s / c
    end
    if ok then draws[#draws + 1] = acc / S end
  end
  table.sort(draws)
  if #draws == 0 then return est, NAN, NAN end
  local function q(p) return draws[math.floor(p * (#draws - 1) + 0.5) + 1] end
  return est, q(0.05), q(0.95)
end

------------------------------------------------------------------------------
-- verdicts
------------------------------------------------------------------------------

local function progress(v, info, ref)
  if info.accuracy then return (v - ref) / (1 - ref) end
  return (ref - v) / ref
end

-- Fills cell.verdict for every finished cell of a row (rules at the top).
local function judge(rs)
  local best
  for _, cell in pairs(rs.cells) do
    if cell.stat and not isnan(cell.stat) then
      local a, b = progress(cell.lo, rs.info, rs.ref), progress(cell.hi, rs.info, rs.ref)
      cell.prog = progress(cell.stat, rs.info, rs.ref)
      cell.prog_lo, cell.prog_hi = math.min(a, b), math.max(a, b)
      if not best or cell.prog > best.prog then best = cell end
    end
  end
  for _, cell in pairs(rs.cells) do
    cell.verdict = nil
    if cell.prog then
      if cell.prog < TRIVIAL_PROGRESS then cell.verdict = "✗"
      elseif cell.prog_hi >= best.prog_lo or best.prog - cell.prog <= TIE_PROGRESS then cell.verdict = "✓"
      else cell.verdict = "▲" end
    end
  end
end

local VERDICT_WORD = { ["✓"] = "check", ["▲"] = "triangle", ["✗"] = "cross" }

------------------------------------------------------------------------------
-- SVG line charts (Okabe-Ito colours)
------------------------------------------------------------------------------

local ARCH_COLOR = { transformer = "#0072B2", mamba = "#D55E00", mambaformer = "#009E73", s4mamba = "#CC79A7",
                     hybrid = "#E69F00" }
-- Baselines: the two Okabe-Ito colours the architectures leave (black, sky
-- blue) in three dash patterns; the trivial level is a thin grey line.
local BASELINE_STYLE = { { "#000000", "7,4" }, { "#56B4E9", "7,4" }, { "#000000", "2,3" }, { "#56B4E9", "2,3" },
                         { "#000000", "9,3,2,3" }, { "#56B4E9", "9,3,2,3" } }
local LEVEL_COLOR = "#999999"
local SPAN_COLOR = "#f0f0f0"

local svg = require("icl.table1_svg")
local chart, esc = svg.chart, svg.esc

-- The y range of a row's charts: accuracies on [0, 1], errors on a log axis
-- from the decade below the smallest value to 10.
local function y_range(rs, values)
  if rs.info.accuracy then return false, 0, 1.04 end -- a little room above 1, where solved curves run
  local lo = 1
  for _, v in ipairs(values) do
    if not isnan(v) and v > 0 and v < lo then lo = v end
  end
  return true, math.max(1e-3, 10 ^ math.floor(math.log(lo, 10))), 10
end

------------------------------------------------------------------------------
-- state and output
------------------------------------------------------------------------------

local state = { rows = {}, status = "running" }

local function metric_name(rs)
  local k = rs.info.kind
  if k == "sqerr" then return "normalised squared error" end
  if k == "sign_acc" then return "sign accuracy" end
  return "nearest-value accuracy"
end

local function row_charts(rs, dir)
  local R = rs.row
  local level = { rs.ref, rs.info.accuracy and "chance" or "zero predictor" }
  -- the statistic against training steps
  local series, values, xmax = {}, {}, 1
  for _, arch in ipairs(R.archs) do
    local cell = rs.cells[arch]
    for _, run in ipairs(cell.runs) do
      local pts = {}
      for _, p in ipairs(run.curve_pts) do
        pts[#pts + 1] = { p.step, p.metric }
        values[#values + 1] = p.metric
        if p.step > xmax then xmax = p.step end
      end
      series[#series + 1] = { label = ROWS.arch_name(arch), color = ARCH_COLOR[arch], points = pts }
    end
  end
  local ylog, ymin, ymax = y_range(rs, values)
  local tag = rs.info.accuracy and "accuracy" or "error"
  write_file(dir .. "/" .. R.key .. "_steps.svg", chart{
    title = string.format("%s (%s): %s, %s", R.title, R.setting, tag, window_text(rs.info, R)),
    xlabel = "training step", ylabel = metric_name(rs) .. (ylog and " (log)" or ""),
    xmax = math.max(xmax, rs.budget or 1), ylog = ylog, ymin = ymin, ymax = ymax, series = series, level = level,
  })
  -- the metric against the number of in-context examples, with the baselines
  series, values = {}, {}
  local k = 0
  for _, name in ipairs(rs.baseline_names or {}) do
    k = k + 1
    local st = BASELINE_STYLE[(k - 1) % #BASELINE_STYLE + 1]
    local cv, pts = rs.baselines[name], {}
    for p = 1, #cv.mean do
      pts[#pts + 1] = { p - 1, cv.mean[p] }
      values[#values + 1] = cv.mean[p]
    end
    series[#series + 1] = { label = name, color = st[1], dash = st[2], width = 1.5, points = pts }
  end
  for _, arch in ipairs(R.archs) do
    for _, run in ipairs(rs.cells[arch].runs) do
      if run.curve then
        local pts, band = {}, {}
        for p = 1, #run.curve.mean do
          pts[#pts + 1] = { p - 1, run.curve.mean[p] }
          band[#band + 1] = { p - 1, run.curve.lo[p], run.curve.hi[p] }
          values[#values + 1] = run.curve.mean[p]
        end
        series[#series + 1] = { label = ROWS.arch_name(arch), color = ARCH_COLOR[arch], points = pts, band = band,
                                width = 2.2 }
      end
    end
  end
  ylog, ymin, ymax = y_range(rs, values)
  write_file(dir .. "/" .. R.key .. "_examples.svg", chart{
    title = string.format("%s (%s) after %s steps, %d held-out prompts", R.title, R.setting,
      rs.budget and thousands(rs.budget) or "?", state.final_prompts),
    xlabel = R.task.name == "vector_mqar" and "query (0-based)"
      or R.task.name:find("outlier") and "in-context pairs (outliers included)" or "in-context examples",
    ylabel = metric_name(rs) .. (ylog and " (log)" or ""),
    xmax = math.max(1, rs.info.positions - 1), ylog = ylog, ymin = ymin, ymax = ymax, series = series,
    level = level, span = rs.info.lo > 0 and { rs.info.lo, rs.info.hi, "scored window" } or nil,
  })
end

local function row_csvs(rs, dir)
  local R = rs.row
  local lines = { "arch,seed,step,metric,train_loss,wall_s" }
  for _, arch in ipairs(R.archs) do
    for _, run in ipairs(rs.cells[arch].runs) do
      for _, p in ipairs(run.curve_pts) do
        lines[#lines + 1] = string.format("%s,%d,%d,%s,%s,%s", arch, run.seed, p.step, csvnum(p.metric),
          csvnum(p.loss), csvnum(p.wall))
      end
    end
  end
  write_file(dir .. "/" .. R.key .. "_steps.csv", table.concat(lines, "\n") .. "\n")
  lines = { "curve,seed,position,mean,lo,hi,count" }
  local function add(name, seed, cv)
    for p = 1, #cv.mean do
      lines[#lines + 1] = string.format("%s,%d,%d,%s,%s,%s,%d", name, seed, p - 1, csvnum(cv.mean[p]),
        csvnum(cv.lo[p]), csvnum(cv.hi[p]), cv.count[p] or 0)
    end
  end
  for _, arch in ipairs(R.archs) do
    for _, run in ipairs(rs.cells[arch].runs) do
      if run.curve then add(arch, run.seed, run.curve) end
    end
  end
  for _, name in ipairs(rs.baseline_names or {}) do add(name, 0, rs.baselines[name]) end
  write_file(dir .. "/" .. R.key .. "_examples.csv", table.concat(lines, "\n") .. "\n")
end

local function cell_text(rs, arch)
  local cell = rs.cells[arch]
  local paper = rs.row.paper[arch] or "?"
  if not cell then return "—" end
  local run = cell.runs[#cell.runs]
  local head
  if cell.stat then
    head = string.format("%s [%s, %s] %s · paper %s", fmt(cell.stat), fmt(cell.lo), fmt(cell.hi),
      cell.verdict or "", paper)
  elseif run and run.status == "interrupted" then
    head = string.format("interrupted at step %s · paper %s", thousands(run.steps), paper)
  elseif run and run.status == "running" then
    head = string.format("in progress (step %s) · paper %s", thousands(run.steps), paper)
  elseif run and run.status == "failed" then
    head = string.format("failed at step %s (see below) · paper %s", thousands(run.steps), paper)
  else
    head = "not run · paper " .. paper
  end
  local steps, wall = 0, 0
  for _, r in ipairs(cell.runs) do steps, wall = math.max(steps, r.steps), wall + r.wall_s end
  if #cell.runs == 0 then return head end
  local seeds = ""
  if cell.done and cell.done < #cell.runs and #cell.runs > 1 then
    seeds = string.format(" (%d of %d seeds done)", cell.done, #cell.runs)
  elseif #cell.runs > 1 then seeds = string.format(" (%d seeds)", #cell.runs) end
  return string.format("%s<br>%s steps · %s%s", head, thousands(steps), minutes(wall), seeds)
end

local function markdown()
  local o = {}
  local function add(s) o[#o + 1] = s or "" end
  add("# Table 1 of \"Can Mamba Learn How to Learn?\" on this machine")
  add()
  if state.quick then
    add("**`--quick`: every cell trained only a few dozen steps on 64 evaluation prompts. This checks the pipeline; "
      .. "it is not a result.**")
    add()
  end
  add(string.format("Status: **%s**. Generated by `%s` on %s, host `%s`.", state.status, state.command,
    state.date, state.host))
  add()
  add("Each cell: the statistic with its 90% interval, the verdict by the rules below, the paper's symbol "
    .. "(SPEC.md 5.1); then the steps trained and the cell's wall time (training, speed measurement and evaluations).")
  add()
  local cols = {}
  for _, c in ipairs(ROWS.columns) do cols[#cols + 1] = c end
  local head = { "task", "setting", "statistic" }
  for _, c in ipairs(cols) do head[#head + 1] = c.name end
  add("| " .. table.concat(head, " | ") .. " |")
  add("|" .. string.rep("---|", #head))
  for _, rs in ipairs(state.rows) do
    local R = rs.row
    if not rs.info then goto next_row end
    local stat = string.format("%s, %s", rs.info.accuracy and "accuracy ↑" or "error ↓", window_text(rs.info, R))
    local cells = { R.title, R.setting, stat }
    for _, c in ipairs(cols) do
      local used = false
      for _, a in ipairs(R.archs) do used = used or a == c.arch end
      cells[#cells + 1] = used and cell_text(rs, c.arch) or "—"
    end
    add("| " .. table.concat(cells, " | ") .. " |")
    ::next_row::
  end
  add()
  add("## How to read it")
  add()
  add("**Statistic.** The task's main metric averaged over every scored (prompt, position) pair in a window: the "
    .. "last quarter of the in-context positions (position p = p examples seen before the query), or all four "
    .. "queries for vector MQAR; on " .. thousands(state.final_prompts) .. " held-out prompts (seed 0xE7A1, never "
    .. "trained on). Errors are squared errors normalised so that the zero predictor scores 1 (÷ d for linear, "
    .. "2NN and the outlier rows, ÷ k for sparse, ÷ 1 for the tree and CoT-I/O); for the outlier rows only clean "
    .. "positions count. Accuracies: sign accuracy for parity (chance 0.5), nearest-value accuracy for vector "
    .. "MQAR (chance 1/16). The 90% interval is a percentile bootstrap over prompts (" .. BOOT_RESAMPLES
    .. " resamples; with several seeds, seeds are resampled too and the value is the mean over seeds).")
  add()
  add("**Verdicts** (the same rules are written at the top of lua/experiments/table1.lua):")
  add()
  for _, r in ipairs(RULES) do add("- " .. r) end
  add()
  add("**Paper symbols** (SPEC.md 5.1): ✓ on par with the baselines, ▲ a gap to the others, ✗ fails to learn. "
    .. "The Transformer and Mamba cells of the paper are [R?] in the spec (read from summaries). For sparse parity, "
    .. "S4-Mamba's result is unknown (?) and the Standard Hybrid's failure is a low-confidence reading (✗?). "
    .. "The d 6 parity row is not in the paper; its paper symbols are those of the d 10 row.")
  add()
  add("## Settings")
  add()
  add("- Models: d_model 64, n_layer 4 in the paper's counting (Transformer = attn, mlp, attn, mlp; Mamba = 4 Mamba "
    .. "blocks; MambaFormer = mamba, attn, mamba, attn, mamba; S4-Mamba = 4 S4-Mamba blocks; Standard Hybrid = attn, "
    .. "mamba, attn, mamba with learned positions), 4 attention heads; built from icl.presets with the issue's "
    .. "settings (lua/icl/table1_rows.lua).")
  add("- Training: batch 64, Adam (0.9, 0.999, eps 1e-8, no weight decay), constant lr 1e-3, gradient-norm clipping "
    .. "10, fresh prompts every step, no curriculum; training seed = seed index (1.." .. state.seeds .. "); all "
    .. "architectures of a row see the same training prompts.")
  add("- Budget: per row, each architecture is timed on its first steps (they count as training), and the budget "
    .. "is what the slowest one fits in " .. math.floor(SAFETY * 100) .. "% of 15 minutes after its evaluations, "
    .. "rounded down to two significant digits" .. (state.fixed_steps and (" (this run: fixed at --steps "
    .. state.fixed_steps .. ")") or "") .. (state.scale ~= 1 and (", times --steps-scale " .. state.scale) or "")
    .. (state.quick and " (this run: --quick, 20 steps)" or "") .. ".")
  add("- Learning curves: the same statistic on " .. state.curve_prompts .. " other held-out prompts (seed 0xC0DE) "
    .. "at step 0 and every 1/" .. N_CURVE_EVALS .. " of the budget.")
  add("- Baselines (in-context curves): the task's default baselines of icl.eval on the same prompts as the models.")
  add()
  add("## Budgets and measured speeds")
  add()
  add("Training steps per second measured at the start of each row (steps timed after warm-up), the budget "
    .. "chosen, and the speed over the whole run.")
  add()
  add("| row | measured steps/s | run steps/s | one curve eval | budget | curve every |")
  add("|---|---|---|---|---|---|")
  for _, rs in ipairs(state.rows) do
    local m, r = {}, {}
    for _, arch in ipairs(rs.row.archs) do
      if rs.speeds[arch] then m[#m + 1] = string.format("%s %.1f", ROWS.arch_name(arch), rs.speeds[arch]) end
      local steps, secs = 0, 0
      for _, run in ipairs(rs.cells[arch].runs) do steps, secs = steps + run.steps, secs + run.train_s end
      if secs > 0 then r[#r + 1] = string.format("%s %.1f", ROWS.arch_name(arch), steps / secs) end
    end
    add(string.format("| %s | %s | %s | %s | %s | %s |", rs.row.key, table.concat(m, ", "), table.concat(r, ", "),
      rs.eval_s and string.format("%.2f s", rs.eval_s) or "n/a", rs.budget and thousands(rs.budget) or "n/a",
      rs.eval_every and thousands(rs.eval_every) or "n/a"))
  end
  add()
  add("## Rows")
  for _, rs in ipairs(state.rows) do
    local R = rs.row
    if not rs.info then goto next_detail end
    add()
    add(string.format("### %s (%s)", R.title, R.setting))
    add()
    add(string.format("Task `%s`; statistic: %s, %s. Budget %s steps%s.", R.task.name, metric_name(rs),
      window_text(rs.info, R), rs.budget and thousands(rs.budget) or "n/a",
      rs.budget_note and (" (" .. rs.budget_note .. ")") or ""))
    if R.reference then add() add("Reference runs (issue 8): " .. R.reference) end
    if R.note then add() add("Note: " .. R.note) end
    add()
    add(string.format("![%s: statistic against training steps](table1/%s_steps.svg)", R.title, R.key))
    add(string.format("![%s: metric against in-context examples](table1/%s_examples.svg)", R.title, R.key))
    add()
    add("| arch | seed | status | steps | wall | train steps/s | final loss | statistic [90%] | "
      .. "check (from the curve) |")
    add("|---|---|---|---|---|---|---|---|---|")
    for _, arch in ipairs(R.archs) do
      for _, run in ipairs(rs.cells[arch].runs) do
        add(string.format("| %s | %d | %s | %s | %s | %s | %s | %s | %s |", ROWS.arch_name(arch), run.seed,
          run.status == "failed" and ("failed: " .. tostring(run.error):gsub("[\n|]", " ")) or run.status,
          thousands(run.steps), minutes(run.wall_s),
          run.train_s > 0 and string.format("%.1f", run.steps / run.train_s) or "n/a",
          run.loss and string.format("%.4g", run.loss) or "n/a",
          run.stat and string.format("%s [%s, %s]", fmt(run.stat), fmt(run.lo), fmt(run.hi)) or "n/a",
          run.check and fmt(run.check) or "n/a"))
      end
    end
    if rs.baseline_names and #rs.baseline_names > 0 then
      local b = {}
      for _, name in ipairs(rs.baseline_names) do
        b[#b + 1] = string.format("%s %s", name, fmt(rs.baseline_stat[name]))
      end
      add()
      add("Baselines, same statistic: " .. table.concat(b, ", ") .. ".")
    end
    for _, arch in ipairs(R.archs) do
      local cell = rs.cells[arch]
      if cell.wall_s and cell.wall_s > CELL_LIMIT_S then
        add()
        add(string.format("Over the 15-minute cap: %s took %s (the machine ran slower than measured).",
          ROWS.arch_name(arch), minutes(cell.wall_s)))
      end
    end
    ::next_detail::
  end
  add()
  add("## Run")
  add()
  add("- Command: `" .. state.command .. "`")
  add("- Date: " .. state.date .. (state.total_s and (", total wall time " .. minutes(state.total_s)) or ""))
  add("- Machine: `" .. state.uname .. "`, " .. state.nproc .. " cores (" .. state.cpu .. "), "
    .. state.threads .. " threads, iclplay " .. icl.version)
  add("- Files: `table1/<row>_steps.svg|csv` (statistic against steps), `table1/<row>_examples.svg|csv` (metric "
    .. "against in-context examples, with baselines), `table1/cells.csv` (one line per cell), `table1/runs.csv` "
    .. "(one line per seed).")
  return table.concat(o, "\n") .. "\n"
end

local function cells_csv()
  local cl = { "row,arch,seeds,steps,wall_s,statistic,lo,hi,progress,verdict,paper" }
  local rl = { "row,arch,seed,status,steps,budget,wall_s,train_s,measured_steps_per_s,final_loss,statistic,lo,hi,"
    .. "curve_check" }
  for _, rs in ipairs(state.rows) do
    for _, arch in ipairs(rs.row.archs) do
      local cell = rs.cells[arch]
      local steps, wall = 0, 0
      for _, run in ipairs(cell.runs) do
        steps, wall = math.max(steps, run.steps), wall + run.wall_s
        rl[#rl + 1] = string.format("%s,%s,%d,%s,%d,%s,%s,%s,%s,%s,%s,%s,%s,%s", rs.row.key, arch, run.seed,
          run.status, run.steps, rs.budget or "", csvnum(run.wall_s), csvnum(run.train_s), csvnum(rs.speeds[arch]),
          csvnum(run.loss), csvnum(run.stat), csvnum(run.lo), csvnum(run.hi), csvnum(run.check))
      end
      cl[#cl + 1] = string.format("%s,%s,%d,%d,%s,%s,%s,%s,%s,%s,%s", rs.row.key, arch, #cell.runs, steps,
        csvnum(wall), csvnum(cell.stat), csvnum(cell.lo), csvnum(cell.hi), csvnum(cell.prog),
        VERDICT_WORD[cell.verdict] or "", (((rs.row.paper[arch] or "?"):gsub("✓", "check"):gsub("▲", "triangle")
        :gsub("✗", "cross"))))
    end
  end
  return table.concat(cl, "\n") .. "\n", table.concat(rl, "\n") .. "\n"
end

-- Rewrites every output from the current state.
local function write_all()
  local dir = state.out .. "/table1"
  for _, rs in ipairs(state.rows) do
    if rs.info then
      judge(rs)
      row_charts(rs, dir)
      row_csvs(rs, dir)
    end
  end
  local c, r = cells_csv()
  write_file(dir .. "/cells.csv", c)
  write_file(dir .. "/runs.csv", r)
  write_file(state.out .. "/table1.md", markdown())
end

------------------------------------------------------------------------------
-- training and scoring one row
------------------------------------------------------------------------------

-- A model, task and trainer for (row, arch, seed), from the row's preset with
-- the issue's settings on top.
local function build(R, arch, seed)
  local p = icl.presets[R.preset]{ arch = arch, seed = seed, task = R.task, model = ROWS.model,
                                   trainer = ROWS.trainer }
  p.task = {}
  for k, v in pairs(R.task) do p.task[k] = v end -- the issue's task exactly, nothing left from the preset
  local m, t, tr = icl.build(p)
  assert(m.d_model == 64 and m.n_layer == 4 and tr.batch == 64 and tr.clip == 10 and math.abs(tr.lr - 1e-3) < 1e-9,
    "table1: the preset did not take the issue's settings")
  return m, t, tr
end

-- Wall time of a run is counted in segments: begin() ... finish() (an
-- interruption in between is counted by guarded()). Returns the segment's time.
local function begin(run) run.active = now() end
local function finish(run)
  local dt = now() - run.active
  run.wall_s, run.active = run.wall_s + dt, nil
  return dt
end

-- One learning-curve point: the statistic on the curve prompts.
local function curve_point(rs, run, loss)
  begin(run)
  local e = icl.eval(run.m, run.t, { prompts = state.curve_prompts, seed = CURVE_SEED, baselines = {} })
  local v = curve_window(e:curve("model"), rs.info)
  rs.ref = e.reference -- the zero predictor (1) or chance
  local dt = finish(run)
  run.curve_pts[#run.curve_pts + 1] = { step = run.tr.steps, metric = v, loss = loss, wall = run.wall_s }
  return v, dt
end

-- Trains run.tr with a timed run of n steps; returns the run summary.
local function train(run, n)
  begin(run)
  local s = run.tr:run{ max_steps = n, progress = false }
  finish(run)
  run.train_s = run.train_s + s.time_s
  run.steps = run.tr.steps
  run.loss = s.mean_loss
  return s
end

local function final_score(rs, run)
  begin(run)
  local e = icl.eval(run.m, run.t, { prompts = state.final_prompts, seed = FINAL_SEED, baselines = {} })
  local c = e:curve("model")
  run.curve = { mean = c.mean, lo = c.lo, hi = c.hi, count = c.count }
  run.sums, run.counts = {}, {}
  score_prompts(rs.info, run.m, run.t, FINAL_SEED, state.final_prompts, run.sums, run.counts)
  run.stat, run.lo, run.hi = bootstrap({ run })
  run.check = curve_window(c, rs.info)
  if math.abs(run.stat - run.check) > 1e-4 * math.max(1, math.abs(run.check)) then
    io.stderr:write(string.format("table1: warning: %s %s: the statistic %.6g differs from the curve's %.6g\n",
      rs.row.key, run.arch, run.stat, run.check))
  end
  finish(run)
end

local function close_run(run)
  if run.tr then run.tr:close() end
  if run.m then run.m:close() end
  if run.t then run.t:close() end
  run.tr, run.m, run.t = nil, nil, nil
end

local function summarise_cell(rs, arch)
  local cell = rs.cells[arch]
  local done, wall = {}, 0
  for _, run in ipairs(cell.runs) do
    wall = wall + run.wall_s
    if run.status == "done" then done[#done + 1] = run end
  end
  cell.wall_s, cell.done = wall, #done
  cell.stat, cell.lo, cell.hi = nil, nil, nil
  if #done > 0 then cell.stat, cell.lo, cell.hi = bootstrap(done) end
end

local last_write = 0
local function maybe_write(force)
  if force or now() - last_write > 30 then
    write_all()
    last_write = now()
  end
end

-- Trains a prepared run to the row's budget, logging curve points; then scores it.
local function finish_run(rs, run)
  local R = rs.row
  local E = rs.eval_every
  print(string.format("[%s] %-12s seed %d  training from step %d to %s", R.key, run.arch, run.seed, run.tr.steps,
    thousands(rs.budget)))
  while run.tr.steps < rs.budget do
    local target = math.min(rs.budget, (run.tr.steps // E + 1) * E)
    local s = train(run, target - run.tr.steps)
    local v = curve_point(rs, run, s.mean_loss)
    local rate = run.steps / math.max(run.train_s, 1e-9)
    print(string.format("[%s] %-12s seed %d  step %6d/%d  loss %.4f  %s %s  %.1f steps/s  ETA %s", R.key, run.arch,
      run.seed, run.steps, rs.budget, s.mean_loss, rs.info.accuracy and "acc" or "err", fmt(v), rate,
      minutes((rs.budget - run.steps) / rate)))
    maybe_write(false)
  end
  final_score(rs, run)
  run.status = "done"
  print(string.format("[%s] %-12s seed %d  done: %s [%s, %s] on %d prompts, %s steps, %s", R.key, run.arch, run.seed,
    fmt(run.stat), fmt(run.lo), fmt(run.hi), state.final_prompts, thousands(run.steps), minutes(run.wall_s)))
end

-- Runs fn(run) with the run marked failed (and the experiment going on) on a
-- real error, and re-raises an interruption after marking the run.
local function guarded(rs, run, fn)
  local ok, err = pcall(fn, run)
  if ok then return end
  if run.active then finish(run) end
  if run.tr and not run.tr.closed then run.steps = run.tr.steps end
  if is_interrupt(err) then
    run.status = "interrupted"
    error(err, 0)
  end
  run.status, run.error = "failed", tostring(err)
  io.stderr:write(string.format("table1: %s %s seed %d failed: %s\n", rs.row.key, run.arch, run.seed, run.error))
end

local function new_run(rs, arch, seed)
  local run = { arch = arch, seed = seed, status = "running", steps = 0, wall_s = 0, train_s = 0, curve_pts = {} }
  local t0 = now()
  run.m, run.t, run.tr = build(rs.row, arch, seed)
  run.wall_s = now() - t0
  local cell = rs.cells[arch]
  cell.runs[#cell.runs + 1] = run
  return run
end

local function run_row(R)
  local rs = { row = R, cells = {}, speeds = {}, baselines = {}, baseline_names = {}, baseline_stat = {} }
  for _, arch in ipairs(R.archs) do rs.cells[arch] = { runs = {} } end
  state.rows[#state.rows + 1] = rs
  print(string.format("== %s (%s)", R.title, R.setting))

  -- seed 1 of every architecture: step-0 curve point, then the speed measurement
  local first = {}
  local eval_s = 0
  for _, arch in ipairs(R.archs) do
    local run = new_run(rs, arch, 1)
    first[#first + 1] = run
    rs.info = rs.info or task_info(R, run.t)
    rs.ref = rs.ref or (rs.info.kind == "sign_acc" and 0.5 or rs.info.kind == "nearest_acc" and 1 / rs.info.kappa or 1)
    guarded(rs, run, function(r)
      local _, dt = curve_point(rs, r, NAN)
      eval_s = math.max(eval_s, dt)
    end)
  end
  rs.eval_s = eval_s
  local warm, timed = state.quick and 1 or 2, state.quick and 3 or 20
  local slowest = math.huge
  for _, run in ipairs(first) do
    if run.status == "running" then
      guarded(rs, run, function(r)
        train(r, warm)
        local s = train(r, timed)
        rs.speeds[r.arch] = s.steps_per_s
        slowest = math.min(slowest, s.steps_per_s)
      end)
    end
  end
  local parts = {}
  for _, arch in ipairs(R.archs) do
    if rs.speeds[arch] then parts[#parts + 1] = string.format("%s %.1f", arch, rs.speeds[arch]) end
  end
  print(string.format("[%s] measured steps/s (%d timed after %d warm-up): %s; one curve eval %.2f s", R.key, timed,
    warm, table.concat(parts, ", "), eval_s))

  -- the budget
  local t_final = eval_s * (1280 / state.curve_prompts) * 2.5
  local avail = CELL_LIMIT_S * SAFETY - N_CURVE_EVALS * eval_s - t_final
  local measured = slowest < math.huge and round2(slowest * avail * state.scale) or nil
  if state.fixed_steps then
    rs.budget, rs.budget_note = state.fixed_steps, "fixed by --steps"
  elseif state.quick then
    rs.budget = math.max(warm + timed, math.floor(20 * state.scale + 0.5))
    rs.budget_note = string.format("--quick; a full run would choose about %s", measured and thousands(measured) or "?")
  else
    rs.budget = math.max(warm + timed, measured or 0)
    rs.budget_note = string.format("slowest %.1f steps/s x %.0f s%s", slowest, avail,
      state.scale ~= 1 and (" x " .. state.scale) or "")
  end
  rs.eval_every = state.quick and 10 or math.max(10, math.ceil(rs.budget / N_CURVE_EVALS / 10) * 10)
  print(string.format("[%s] budget %s steps per cell (%s), curve every %s steps", R.key, thousands(rs.budget),
    rs.budget_note, thousands(rs.eval_every)))

  -- the baselines on the final prompts (a row-level reference, not a cell)
  local spec = {}
  for k, v in pairs(R.task) do spec[k] = v end
  local bt = icl.task(spec)
  local ok, e = pcall(icl.eval, nil, bt, { prompts = state.final_prompts, seed = FINAL_SEED, baselines = R.baselines })
  bt:close()
  if ok then
    for _, name in ipairs(e.names) do
      if name ~= "chance" then
        local c = e:curve(name)
        rs.baselines[name] = { mean = c.mean, lo = c.lo, hi = c.hi, count = c.count }
        rs.baseline_names[#rs.baseline_names + 1] = name
        rs.baseline_stat[name] = curve_window(c, rs.info)
      end
    end
  elseif is_interrupt(e) then
    error(e, 0)
  end
  maybe_write(true)

  -- train every cell to the budget, seed 1 first, then the other seeds
  for _, run in ipairs(first) do
    if run.status == "running" then guarded(rs, run, function(r) finish_run(rs, r) end) end
    close_run(run)
    summarise_cell(rs, run.arch)
    maybe_write(true)
  end
  for seed = 2, state.seeds do
    for _, arch in ipairs(R.archs) do
      local run = new_run(rs, arch, seed)
      guarded(rs, run, function(r)
        curve_point(rs, r, NAN)
        finish_run(rs, r)
      end)
      close_run(run)
      summarise_cell(rs, arch)
      maybe_write(true)
    end
  end
end

------------------------------------------------------------------------------
-- main
------------------------------------------------------------------------------

local opts = parse_args(arg)
if opts.threads then icl.threads(opts.threads) end
io.stdout:setvbuf("line")

local argv = {}
for i = 1, #arg do argv[#argv + 1] = arg[i]:find("[%s'\"]") and quote(arg[i]) or arg[i] end
state.command = "iclplay run " .. tostring(arg[0]) .. (#argv > 0 and (" " .. table.concat(argv, " ")) or "")
state.out, state.quick, state.seeds = opts.out, opts.quick, opts.seeds
state.scale, state.fixed_steps = opts.scale, opts.steps
state.final_prompts = opts.quick and 64 or 1280
state.curve_prompts = opts.quick and 64 or 256
state.date = os.date("!%Y-%m-%d %H:%M UTC")
state.uname = shell("uname -srvmo")
state.host = shell("uname -n")
state.nproc = shell("nproc")
state.cpu = shell("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'")
if state.cpu == "" then state.cpu = "unknown CPU" end
state.threads = icl.threads()

local rows = select_rows(opts.only)
assert(os.execute("mkdir -p " .. quote(state.out .. "/table1")), "table1: cannot create " .. state.out .. "/table1")
print(string.format("table1: %d rows, %d seed(s), %s; output in %s/table1.md", #rows, state.seeds,
  state.quick and "--quick" or "full budgets", state.out))

local t_start = now()
local ok, err = pcall(function()
  for _, R in ipairs(rows) do run_row(R) end
end)
state.total_s = now() - t_start
if not ok and not is_interrupt(err) then io.stderr:write("table1: " .. tostring(err) .. "\n") end
if ok then
  state.status = "complete"
elseif is_interrupt(err) then
  state.status = "interrupted by Ctrl-C; the cells below are what had finished"
  -- the run that was in progress keeps its steps and curve; its trainer is freed here
  for _, rs in ipairs(state.rows) do
    for _, arch in ipairs(rs.row.archs) do
      for _, run in ipairs(rs.cells[arch].runs) do
        if run.status == "running" then run.status = "interrupted" end
        if run.tr then
          if not run.tr.closed then run.steps = run.tr.steps end
          close_run(run)
        end
      end
      summarise_cell(rs, arch)
    end
  end
else
  state.status = "stopped by an error: " .. tostring(err):gsub("\n.*", "")
end
-- A Ctrl-C that lands while Lua code runs (not inside a training step) is
-- raised by the REPL's hook at the next instruction, possibly in the middle
-- of these writes. The hook disarms itself when it fires, so write once more:
-- an interrupted run still leaves its partial table.
local wok, werr = pcall(write_all)
if not wok then
  if not is_interrupt(werr) then error(werr, 0) end
  if ok then ok, err, state.status = false, werr, "interrupted by Ctrl-C; the cells below are what had finished" end
  write_all()
end
print(string.format("table1: %s; wrote %s/table1.md (%s)", state.status, state.out, minutes(state.total_s)))
if not ok then
  os.exit(is_interrupt(err) and 130 or 1)
end
