-- table1_measure.lua - `table1.lua --measure-budgets`: times every
-- architecture of the selected rows and prints the step budget the
-- 15-minute rule gives, so that the fixed budgets committed in
-- lua/icl/table1_rows.lua can be re-derived (run it on a quiet machine).
--
-- The rule (the one table1.lua used to apply at run time): per row, each
-- architecture is built with the run's settings, trained 2 warm-up steps
-- and then 20 timed ones (tr:run's own clock), and one learning-curve
-- evaluation (256 prompts) is timed; the final scoring (1,280 prompts,
-- icl.eval plus the Lua scorer and bootstrap) is estimated as 2.5 times the
-- curve evaluation scaled to 1,280 prompts. The budget is the number of
-- steps the SLOWEST architecture fits in 65% of 15 minutes after its 30
-- curve points and final scoring, rounded down to two significant digits.
-- Nothing is written; the output is a table and the lines to paste.
-- Not here: the run itself.
local icl = require("icl")
local RUN = require("icl.table1_run")
local U = require("icl.table1_util")

local M = {}

M.CELL_LIMIT_S = 15 * 60
-- The share of the cap the budget plans for. This VM's speed drifts: within
-- one hour, with nothing else running, the same linear-regression cell ran
-- at 25-39 steps/s (Transformer) and 11-17 (Mamba), i.e. down to 0.7 of
-- what a 20-step measurement can catch; 0.65 keeps such a cell under 15
-- minutes (0.85 did not: a Mamba cell was on course for 17).
M.SAFETY = 0.65
M.N_CURVE = 30
local WARM, TIMED = 2, 20

-- Sub-second wall clock for timing one evaluation. A pipe to `date` is
-- fine here (nothing is saved while measuring; a Ctrl-C just stops).
local function clock()
  local f = io.popen("date +%s.%N 2>/dev/null")
  local s = f and f:read("l")
  if f then f:close() end
  return tonumber(s) or os.time()
end

-- The budget the rule gives for a row from its slowest speed (steps/s) and
-- its slowest curve evaluation (s) on curve_prompts prompts.
function M.rule(speed, eval_s, curve_prompts, final_prompts)
  local final_s = eval_s * (final_prompts / curve_prompts) * 2.5
  local avail = M.CELL_LIMIT_S * M.SAFETY - M.N_CURVE * eval_s - final_s
  return U.round2(math.max(1, speed * avail)), avail
end

-- rows: the selected rows; plan_of(R) -> the run's plan for R (settings,
-- prompts). Prints one line per architecture and one per row.
function M.measure(rows, plan_of)
  local results = {}
  print(string.format("table1 --measure-budgets: %d rows; %d warm-up + %d timed steps per architecture, "
    .. "one curve evaluation; %d threads; load average %s", #rows, WARM, TIMED, icl.threads(),
    U.shell("cut -d' ' -f1-3 /proc/loadavg")))
  for _, R in ipairs(rows) do
    local plan = plan_of(R)
    local slowest, slow_arch, eval_max = math.huge, nil, 0
    for _, arch in ipairs(R.archs) do
      local m, t, tr = RUN.build(R, arch, 1, plan)
      local ok, err = pcall(function()
        tr:run{ max_steps = WARM, progress = false }
        local s = tr:run{ max_steps = TIMED, progress = false }
        local t0 = clock()
        icl.eval(m, t, { prompts = plan.curve_prompts, seed = plan.curve_seed, baselines = {} })
        local eval_s = clock() - t0
        print(string.format("[%s] %-12s %6.2f steps/s  curve eval %.2f s", R.key, arch, s.steps_per_s, eval_s))
        if s.steps_per_s < slowest then slowest, slow_arch = s.steps_per_s, arch end
        eval_max = math.max(eval_max, eval_s)
      end)
      tr:close() m:close() t:close()
      if not ok then error(err, 0) end
    end
    local budget, avail = M.rule(slowest, eval_max, plan.curve_prompts, plan.final_prompts)
    results[#results + 1] = { key = R.key, budget = budget, speed = slowest, arch = slow_arch, eval_s = eval_max }
    print(string.format("[%s] budget %s steps (slowest %s %.2f steps/s x %.0f s left after evaluations)", R.key,
      U.thousands(budget), slow_arch, slowest, avail))
  end
  print()
  print("For lua/icl/table1_rows.lua (measured " .. os.date("!%Y-%m-%d %H:%M UTC") .. ", host "
    .. U.shell("uname -n") .. "):")
  for _, r in ipairs(results) do
    print(string.format("  %-14s budget = %d,  -- slowest %s %.2f steps/s, curve eval %.2f s", r.key, r.budget,
      r.arch, r.speed, r.eval_s))
  end
  return results
end

return M
