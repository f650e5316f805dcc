-- table1_run.lua - runs one cell of lua/experiments/table1.lua: builds the
-- model, task and trainer of (row, architecture, seed), trains it to the
-- row's fixed budget with a learning-curve point every eval_every steps,
-- scores it on the held-out prompts and fills the run record that
-- table1_cells.lua saves. Also the row-level facts every cell carries (task
-- info, baselines).
--
-- Interruption: a Ctrl-C raises a Lua error from wherever it lands (a step
-- boundary inside tr:run, a batch boundary inside icl.eval, or any Lua
-- instruction through the REPL's hook). Every field below is assigned in
-- one statement from values already computed, and run.status becomes
-- "done" last, so whatever the error interrupts, the record says how far
-- the cell got (steps, curve points) and never claims a statistic it lacks.
-- The caller marks the run and writes the outputs.
-- Not here: the order of cells, saving, the report.
local icl = require("icl")
local ROWS = require("icl.table1_rows")
local S = require("icl.table1_stats")
local U = require("icl.table1_util")

local M = {}

-- A model, task and trainer for (row, arch, seed), from the row's preset with
-- the run's settings on top (plan.model, plan.trainer: issue 8's).
function M.build(R, arch, seed, plan)
  local p = icl.presets[R.preset]{ arch = arch, seed = seed, task = R.task, model = plan.model,
                                   trainer = plan.trainer }
  p.task = U.copy(R.task) -- the issue's task exactly, nothing left from the preset
  local m, t, tr = icl.build(p)
  if not (m.d_model == plan.model.d_model and m.n_layer == plan.model.n_layer and tr.batch == plan.trainer.batch
      and tr.clip == plan.trainer.clip and math.abs(tr.lr - plan.trainer.lr) < 1e-6 * plan.trainer.lr) then
    tr:close() m:close() t:close()
    error("table1: the preset " .. R.preset .. " did not take the run's settings", 0)
  end
  return m, t, tr
end

-- The row facts every cell saves: task info (window, metric, trivial level)
-- and the baselines on the final prompts (a row-level reference line, not
-- a cell). Builds only a task, no model.
function M.row_facts(R, plan)
  local t = icl.task(U.copy(R.task))
  local info = S.task_info(R, t)
  local base = { names = {}, curves = {}, stat = {} }
  local want = R.baselines
  local ok, e = true, nil
  -- a task with no classical baseline (CoT-I/O) has only "chance": skip it
  if want == nil then
    ok, e = pcall(icl.eval, nil, t, { prompts = plan.final_prompts, seed = plan.final_seed })
  else
    ok, e = pcall(icl.eval, nil, t, { prompts = plan.final_prompts, seed = plan.final_seed, baselines = want })
  end
  t:close()
  if ok then
    for _, name in ipairs(e.names) do
      if name ~= "chance" then
        local c = e:curve(name)
        base.names[#base.names + 1] = name
        base.curves[name] = { mean = c.mean, lo = c.lo, hi = c.hi, count = c.count }
        base.stat[name] = S.curve_window(c, info)
      end
    end
  elseif U.is_interrupt(e) then
    error(e, 0)
  elseif not tostring(e):find("nothing to evaluate", 1, true) then
    io.stderr:write("table1: " .. R.key .. ": baselines failed: " .. tostring(e) .. "\n")
  end
  return info, base
end

-- One learning-curve point: the statistic on the curve prompts.
local function curve_point(run, plan, loss)
  local e = icl.eval(run.m, run.t, { prompts = plan.curve_prompts, seed = plan.curve_seed, baselines = {} })
  local v = S.curve_window(e:curve("model"), run.info)
  run.wall_s = U.now() - run.t0
  run.curve_pts[#run.curve_pts + 1] = { step = run.tr.steps, metric = v, loss = loss, wall = run.wall_s }
  return v
end

-- The final score: icl.eval's per-position curve (for the chart) and the
-- per-prompt window scores (for the bootstrap), which must agree.
local function final_score(run, plan)
  local e = icl.eval(run.m, run.t, { prompts = plan.final_prompts, seed = plan.final_seed, baselines = {} })
  local c = e:curve("model")
  local curve = { mean = c.mean, lo = c.lo, hi = c.hi, count = c.count }
  local sums, counts = S.score_prompts(run.info, run.m, run.t, plan.final_seed, plan.final_prompts)
  local stat, lo, hi = S.bootstrap({ { sums = sums, counts = counts } }, plan.boot_resamples)
  local check = S.curve_window(c, run.info)
  if math.abs(stat - check) > 1e-4 * math.max(1, math.abs(check)) then
    io.stderr:write(string.format("table1: warning: %s %s: the statistic %.6g differs from the curve's %.6g\n",
      run.row, run.arch, stat, check))
  end
  run.curve, run.sums, run.counts = curve, sums, counts
  run.stat, run.lo, run.hi, run.check = stat, lo, hi, check
end

-- A new run record of (row, arch, seed); nothing is built yet.
function M.new_run(R, arch, seed)
  return { row = R.key, arch = arch, seed = seed, status = "waiting", steps = 0, wall_s = 0, train_s = 0,
           curve_pts = {} }
end

-- The engine a cell records (M.engine, set by table1.lua to the version and
-- the source commit when known; icl.version otherwise). Recorded, not compared.
M.engine = nil

-- Trains and scores run (from M.new_run) to plan.budget; rs holds the
-- row's info and baselines. on_point() is called after every curve point
-- (the caller rewrites its outputs there now and then).
function M.run_cell(rs, run, plan, on_point)
  local R = rs.row
  run.t0 = U.now()
  run.status = "running"
  run.info, run.baselines = rs.info, rs.baselines
  run.engine, run.threads = M.engine or icl.version, icl.threads()
  run.date, run.host = os.date("!%Y-%m-%d %H:%M UTC"), plan.host
  run.m, run.t, run.tr = M.build(R, run.arch, run.seed, plan)
  curve_point(run, plan, U.NAN)
  print(string.format("[%s] %-12s seed %d  training to %s steps", R.key, run.arch, run.seed,
    U.thousands(plan.budget)))
  local E = plan.eval_every
  while run.tr.steps < plan.budget do
    local target = math.min(plan.budget, (run.tr.steps // E + 1) * E)
    local s = run.tr:run{ max_steps = target - run.tr.steps, progress = false }
    run.train_s = run.train_s + s.time_s
    run.steps, run.loss = run.tr.steps, s.mean_loss
    local v = curve_point(run, plan, s.mean_loss)
    local rate = run.steps / math.max(run.train_s, 1e-9)
    print(string.format("[%s] %-12s seed %d  step %6d/%d  loss %.4f  %s %s  %.1f steps/s  ETA %s", R.key,
      run.arch, run.seed, run.steps, plan.budget, s.mean_loss, run.info.accuracy and "acc" or "err", U.fmt(v), rate,
      U.minutes((plan.budget - run.steps) / rate)))
    if on_point then on_point() end
  end
  final_score(run, plan)
  run.wall_s = U.now() - run.t0
  run.status = "done"
  print(string.format("[%s] %-12s seed %d  done: %s [%s, %s] on %d prompts, %s steps, %s", R.key, run.arch,
    run.seed, U.fmt(run.stat), U.fmt(run.lo), U.fmt(run.hi), plan.final_prompts, U.thousands(run.steps),
    U.minutes(run.wall_s)))
end

-- Frees the run's C objects (safe to call twice, and after an error).
function M.close(run)
  if run.tr then
    if not run.tr.closed then run.steps = run.tr.steps end
    run.tr:close()
  end
  if run.m then run.m:close() end
  if run.t then run.t:close() end
  run.tr, run.m, run.t = nil, nil, nil
end

-- Not a cell: the name shown for an architecture.
M.arch_name = ROWS.arch_name

return M
