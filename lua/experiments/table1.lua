-- table1.lua - the paper's Table 1 (SPEC.md 5.1) reproduced on this machine:
-- every row trains Transformer, Mamba and MambaFormer (sparse parity also
-- S4-Mamba and the Standard Hybrid) for the same fixed number of steps,
-- scores each on held-out prompts and writes a markdown table with verdicts
-- next to the paper's symbols, learning curves, in-context curves and CSVs.
--
--   iclplay run lua/experiments/table1.lua [--quick] [--seeds N] [--only KEYS]
--       [--out DIR] [--fresh | --resume] [--report-only] [--measure-budgets]
--       [--steps-scale X] [--steps N] [--threads N]
--
--   --quick          a check of the whole pipeline in seconds, not a result:
--                    every cell trains 2 steps at batch 8, curves on 8 prompts,
--                    the final score on 8 prompts, 200 bootstrap resamples;
--                    default output folder results/quick
--   --seeds N        N training seeds per cell (default 1)
--   --only KEYS      comma-separated row keys or prefixes (linear, sparse_linear,
--                    relu2nn, decision_tree, ortho_outlier, many_outlier,
--                    parity_d6, parity_d10, cot_io, vector_mqar; "parity" = both)
--   --out DIR        output folder (default results): DIR/table1.md, DIR/table1/
--   --resume         (the default) reuse the saved cells of DIR/table1/cells/
--                    made with the same settings; run only the missing ones
--   --fresh          discard the saved cells this run would use; start over
--   --report-only    run nothing: rebuild the outputs from the saved cells
--   --measure-budgets  time every architecture of the rows and print the
--                    budgets the 15-minute rule gives (lua/icl/table1_measure.lua)
--   --steps-scale X  multiply every row's step budget by X
--   --steps N        a budget of N steps per cell for every row
--   --threads N      icl.threads(N) before anything runs
--
-- Settings (issue 8; lua/icl/table1_rows.lua): d_model 64, n_layer 4 in the
-- paper's counting, 4 heads, batch 64, Adam at a constant lr 1e-3, clipping
-- 10, no curriculum; per row the task settings of the issue and a FIXED,
-- committed step budget (where it came from is written there). A learning-
-- curve point every 1/30 of the budget on 256 held-out prompts (seed 0xC0DE);
-- the final score on 1,280 others (seed 0xE7A1); the statistic, its
-- bootstrap interval and the verdict rules are in lua/icl/table1_stats.lua
-- and written out at the top of table1.md:
--   ✗  at the trivial level: progress below 0.10 (or worse than trivial);
--      trivial = the best score without the examples (the zero predictor,
--      chance for vector MQAR, the x_query-only vote for parity: 0.594 at d 6);
--   ✓  otherwise, when its interval overlaps the interval of the row's best
--      cell or its progress is within 0.02 of the best's;
--   ▲  otherwise: clearly worse than the row's best.
--
-- Resuming. The full run takes many hours; each finished (row, arch, seed)
-- is saved as DIR/table1/cells/<row>_<arch>_s<seed>.json with its settings
-- (lua/icl/table1_cells.lua), and a rerun of the same command skips it. A
-- saved cell whose settings differ from this run's (budget, prompts, task,
-- model, trainer) is refused with a message before anything runs: rerun with
-- its settings, use --fresh, or pick another --out. The outputs are rebuilt
-- from all cells, saved or new, after every cell.
--
-- Ctrl-C stops at the next step boundary: the outputs are written with the
-- cell in progress shown as "interrupted at step N", and the exit code is
-- 130. How: a Ctrl-C becomes a Lua error (from tr:run between steps, from
-- icl.eval between batches, or from the REPL's hook at any Lua instruction),
-- so the work is split in phases. While cells are planned and loaded
-- nothing is written (a half-loaded state must not overwrite a good
-- table1.md); while they run, every record is kept consistent at every
-- instruction (table1_run.lua) and the error is caught here; the final write
-- is retried, since the hook disarms itself once it fired. Nothing here runs
-- a shell command while cells run: system() ignores SIGINT in the caller
-- while it waits, so a Ctrl-C then would be lost. SIGTERM and SIGHUP stop a
-- script the same way (src/core/interrupt.h); icl.terminating() tells them
-- apart, and the exit code is then 128 + the signal (143, 129).
-- Not here: rows (table1_rows.lua), one cell (table1_run.lua), the report
-- (table1_report.lua), saved cells (table1_cells.lua), the engine (C).

local icl = require("icl")
local ROWS = require("icl.table1_rows")
local C = require("icl.table1_cells")
local RUN = require("icl.table1_run")
local REPORT = require("icl.table1_report")
local STATS = require("icl.table1_stats")
local U = require("icl.table1_util")

local FULL = { final_prompts = 1280, curve_prompts = 256, boot = 1000, n_curve = 30 }
local QUICK = { steps = 2, eval_every = 2, batch = 8, final_prompts = 8, curve_prompts = 8, boot = 200 }
local FINAL_SEED = 0xE7A1    -- held-out prompts of the final score (icl.eval's default)
local CURVE_SEED = 0xC0DE    -- held-out prompts of the learning curves
local WRITE_EVERY_S = 60     -- rewrite the outputs at most this often while a cell trains

-- The exit code of an interrupted run: 130 for Ctrl-C, 128 + SIGTERM/SIGHUP.
local function interrupt_status()
  local sig = icl.terminating()
  return sig and 128 + sig or 130
end

------------------------------------------------------------------------------
-- options
------------------------------------------------------------------------------

local USAGE = "usage: iclplay run lua/experiments/table1.lua [--quick] [--seeds N] [--only KEYS] [--out DIR]\n"
  .. "       [--fresh | --resume] [--report-only] [--measure-budgets] [--steps-scale X] [--steps N] [--threads N]"

local function parse_args(argv)
  local o = { quick = false, seeds = 1, scale = 1.0, resume = true }
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
    elseif a == "--resume" then o.resume = true
    elseif a == "--fresh" then o.resume = false
    elseif a == "--report-only" then o.report_only = true
    elseif a == "--measure-budgets" then o.measure = true
    elseif a == "--steps-scale" then o.scale = number(a, false, 0)
    elseif a == "--steps" then o.steps = number(a, true, 1)
    elseif a == "--threads" then o.threads = number(a, true, 1)
    elseif a == "--help" or a == "-h" then print(USAGE) os.exit(0)
    else error("unknown option '" .. tostring(a) .. "'\n" .. USAGE, 0) end
    i = i + 1
  end
  if o.scale <= 0 then error("--steps-scale must be > 0", 0) end
  if o.report_only and not o.resume then error("--report-only and --fresh contradict each other", 0) end
  o.out = o.out or (o.quick and "results/quick" or "results")
  return o
end

local function select_rows(only)
  if not only then return ROWS.list end
  local want = {}
  for w in only:gmatch("[^,%s]+") do
    local hit = false
    for _, r in ipairs(ROWS.list) do
      if r.key == w or r.key:sub(1, #w) == w or r.task.name == w then hit, want[r] = true, true end
    end
    if not hit then
      local keys = {}
      for _, r in ipairs(ROWS.list) do keys[#keys + 1] = r.key end
      error(string.format("--only: no row '%s' (rows: %s)", w, table.concat(keys, ", ")), 0)
    end
  end
  local picked = {}
  for _, r in ipairs(ROWS.list) do if want[r] then picked[#picked + 1] = r end end -- table order
  return picked
end

-- The plan of row R for this run: budget, curve schedule, prompts and the
-- model and trainer settings (what a saved cell must match).
local function row_plan(R, o, host)
  local p = {
    model = U.copy(ROWS.model), trainer = U.copy(ROWS.trainer), quick = o.quick,
    final_prompts = o.quick and QUICK.final_prompts or FULL.final_prompts,
    curve_prompts = o.quick and QUICK.curve_prompts or FULL.curve_prompts,
    final_seed = FINAL_SEED, curve_seed = CURVE_SEED,
    boot_resamples = o.quick and QUICK.boot or FULL.boot, host = host,
  }
  if o.quick then p.trainer.batch = QUICK.batch end
  local base = o.quick and QUICK.steps or R.budget
  if o.steps then
    p.budget, p.budget_note = o.steps, "fixed by --steps"
  else
    p.budget = math.max(1, math.floor(base * o.scale + 0.5))
    p.budget_note = o.quick and "--quick" or (o.scale ~= 1 and ("the row's " .. U.thousands(R.budget)
      .. " x --steps-scale " .. o.scale) or nil)
  end
  p.eval_every = o.quick and QUICK.eval_every
    or math.max(10, math.ceil(p.budget / FULL.n_curve / 10) * 10)
  return p
end

------------------------------------------------------------------------------
-- phase 1: plan the rows and load the saved cells (nothing is written)
------------------------------------------------------------------------------

local function plan_rows(state, rows, o)
  local problems = {}
  for _, R in ipairs(rows) do
    local plan = row_plan(R, o, state.host)
    local rs = { row = R, plan = plan, cells = {} }
    local t = icl.task(U.copy(R.task))
    rs.info = STATS.task_info(R, t)
    t:close()
    local want = C.settings(R, plan)
    for _, arch in ipairs(R.archs) do
      local cell = { runs = {} }
      rs.cells[arch] = cell
      for seed = 1, o.seeds do
        if not o.resume then C.remove(o.out, R.key, arch, seed) end
        local saved, status, text = C.load(o.out, R.key, arch, seed, want)
        if saved then
          saved.saved = true
          rs.baselines = rs.baselines or saved.baselines
          cell.runs[seed] = saved
        else
          if status ~= "missing" then
            problems[#problems + 1] = string.format("  %s_%s_s%d: %s", R.key, arch, seed,
              status == "mismatch" and ("other settings (" .. text .. ")") or text)
          end
          cell.runs[seed] = RUN.new_run(R, arch, seed)
          cell.runs[seed].settings = want
        end
      end
    end
    rs.baselines = rs.baselines or { names = {}, curves = {}, stat = {}, missing = true }
    state.rows[#state.rows + 1] = rs
  end
  if #problems > 0 then
    error(string.format("table1: %d saved cell(s) in %s cannot be used with this run's settings:\n%s\n"
      .. "Rerun with the settings they were made with, add --fresh to discard them (they are recomputed), or "
      .. "write elsewhere with --out DIR.", #problems, C.dir(o.out), table.concat(problems, "\n")), 0)
  end
end

------------------------------------------------------------------------------
-- phase 2: run the missing cells, seed 1 of every architecture first
------------------------------------------------------------------------------

local function run_cells(state)
  local last_write = U.now()
  for _, rs in ipairs(state.rows) do
    local R = rs.row
    local to_run = 0
    for _, arch in ipairs(R.archs) do
      for _, run in ipairs(rs.cells[arch].runs) do to_run = to_run + (run.status == "done" and 0 or 1) end
    end
    print(string.format("== %s (%s): budget %s steps, %d of %d cells to run", R.title, R.setting,
      U.thousands(rs.plan.budget), to_run, #R.archs * state.seeds))
    if to_run > 0 and rs.baselines.missing then
      rs.info, rs.baselines = RUN.row_facts(R, rs.plan)
    end
    for seed = 1, state.seeds do
      for _, arch in ipairs(R.archs) do
        local run = rs.cells[arch].runs[seed]
        if run.status ~= "done" then
          state.current = run
          local ok, err = pcall(RUN.run_cell, rs, run, rs.plan, function()
            if U.now() - last_write >= WRITE_EVERY_S then
              REPORT.write(state, { [rs] = true })
              last_write = U.now()
            end
          end)
          if not ok then
            run.status = U.is_interrupt(err) and "interrupted" or "failed"
            run.error = tostring(err)
          end
          RUN.close(run) -- after the status: close() reads the trainer's step count
          if run.t0 then run.wall_s = U.now() - run.t0 end
          if not ok and U.is_interrupt(err) then
            -- where it landed: "tr:run: interrupted at step N", "icl.eval: ...", or the hook's "interrupted!"
            io.stderr:write(string.format("table1: %s %s seed %d: %s\n", R.key, arch, seed,
              tostring(err):match("^[^\n]*")))
            error(err, 0)
          end
          state.current = nil
          if ok then
            C.save(state.out, run)
          else
            io.stderr:write(string.format("table1: %s %s seed %d failed: %s\n", R.key, arch, seed, run.error))
          end
          REPORT.write(state, { [rs] = true })
          last_write = U.now()
        end
      end
    end
  end
end

------------------------------------------------------------------------------
-- main
------------------------------------------------------------------------------

local opts = parse_args(arg)
if opts.threads then icl.threads(opts.threads) end
io.stdout:setvbuf("line")

if opts.measure then
  local mok, merr = pcall(function()
    local host = U.shell("uname -n")
    require("icl.table1_measure").measure(select_rows(opts.only), function(R) return row_plan(R, opts, host) end)
  end)
  if mok then os.exit(0) end
  io.stderr:write("table1: " .. tostring(merr) .. "\n")
  os.exit(U.is_interrupt(merr) and interrupt_status() or 1)
end

local rows = select_rows(opts.only)
local state = { rows = {}, status = "running", out = opts.out, quick = opts.quick, seeds = opts.seeds,
                quick_batch = QUICK.batch, boot_resamples = opts.quick and QUICK.boot or FULL.boot,
                final_prompts = opts.quick and QUICK.final_prompts or FULL.final_prompts,
                curve_prompts = opts.quick and QUICK.curve_prompts or FULL.curve_prompts }
local phase = "plan"
local t_start = U.now()

local ok, err = pcall(function()
  local argv = {}
  for i = 1, #arg do argv[#argv + 1] = arg[i]:find("[%s'\"]") and U.quote(arg[i]) or arg[i] end
  state.command = "iclplay run " .. tostring(arg[0]) .. (#argv > 0 and (" " .. table.concat(argv, " ")) or "")
  state.date = os.date("!%Y-%m-%d %H:%M UTC")
  state.uname, state.host, state.nproc = U.shell("uname -srvmo"), U.shell("uname -n"), U.shell("nproc")
  state.cpu = U.shell("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'")
  if state.cpu == "" then state.cpu = "unknown CPU" end
  -- the commit of the source tree this runs from, "+changes" if it has
  -- uncommitted edits (empty outside a git checkout)
  local src = U.quote((tostring(arg[0]):match("^(.*)/[^/]*$") or "."))
  local commit = U.shell("git -C " .. src .. " rev-parse --short HEAD 2>/dev/null")
  if commit ~= "" then
    local dirty = U.shell("git -C " .. src .. " status --porcelain --untracked-files=no 2>/dev/null | head -1")
    RUN.engine = icl.version .. " @" .. commit .. (dirty ~= "" and "+changes" or "")
  end
  state.threads = icl.threads()
  local d = io.open(C.dir(state.out)) -- opening a folder for reading works on Linux: it exists
  if d then d:close()
  else assert(os.execute("mkdir -p " .. U.quote(C.dir(state.out))), "table1: cannot create " .. C.dir(state.out)) end
  plan_rows(state, rows, opts)
  print(string.format("table1: %d rows, %d seed(s), %s; output in %s/table1.md", #rows, state.seeds,
    opts.report_only and "--report-only" or opts.quick and "--quick" or "fixed budgets", state.out))
  phase = "run"
  if not opts.report_only then run_cells(state) end
  phase = "report"
end)

if not ok and phase == "plan" then
  if U.is_interrupt(err) then
    print("table1: interrupted before any cell ran; nothing written")
    os.exit(interrupt_status())
  end
  io.stderr:write(tostring(err) .. "\n")
  os.exit(2)
end

state.total_s = U.now() - t_start
local interrupted = not ok and U.is_interrupt(err)
if ok then
  local done, total = 0, 0
  for _, rs in ipairs(state.rows) do
    for _, cell in pairs(rs.cells) do
      for _, run in ipairs(cell.runs) do done, total = done + (run.status == "done" and 1 or 0), total + 1 end
    end
  end
  state.status = opts.report_only and string.format("rebuilt from saved cells: %d of %d cells", done, total)
    or done == total and "complete" or string.format("finished with %d of %d cells done", done, total)
elseif interrupted then
  state.status = "interrupted by Ctrl-C (or SIGTERM/SIGHUP); the cells below are what had finished"
else
  state.status = "stopped by an error: " .. tostring(err):gsub("\n.*", "")
  io.stderr:write("table1: " .. tostring(err) .. "\n")
end
-- The in-progress cell, if the error came from outside run_cells' pcall.
if state.current and state.current.status == "running" then
  state.current.status = interrupted and "interrupted" or "failed"
  RUN.close(state.current)
end

-- A Ctrl-C during the write (a second one, or the first landing here) raises
-- from the hook; each file is replaced atomically, so writing again is safe.
local written = false
for _ = 1, 3 do
  local wok, werr = pcall(REPORT.write, state)
  if wok then written = true break end
  if not U.is_interrupt(werr) then error(werr, 0) end
  if not interrupted then
    interrupted = true
    state.status = "interrupted by Ctrl-C (or SIGTERM/SIGHUP) while writing; every cell below had finished"
  end
end
print(string.format("table1: %s; %s %s/table1.md (%s)", state.status, written and "wrote" or "could not write",
  state.out, U.minutes(state.total_s)))
if interrupted then os.exit(interrupt_status()) end
if not ok then os.exit(1) end
