-- table1_report.lua - the outputs of lua/experiments/table1.lua, written
-- from its state alone (cells run now or loaded from saved cells alike):
--
--   <out>/table1.md                 the table, how to read it, settings, budgets
--   <out>/table1/<row>_steps.svg    the statistic against training steps
--   <out>/table1/<row>_examples.svg the metric against in-context examples,
--                                   with the baselines
--   <out>/table1/<row>_steps.csv, <row>_examples.csv   the same numbers
--   <out>/table1/cells.csv          one line per cell; runs.csv one per seed
--
-- Every file is written through a temporary file and a rename.
-- Not here: running or saving cells, the statistic (table1_stats.lua), the
-- SVG drawing (table1_svg.lua).
local icl = require("icl")
local ROWS = require("icl.table1_rows")
local S = require("icl.table1_stats")
local U = require("icl.table1_util")
local svg = require("icl.table1_svg")
local MEASURE = require("icl.table1_measure")

local R_ = {}

local CELL_LIMIT_S = 15 * 60 -- the issue's cap per cell

local ARCH_COLOR = { transformer = "#0072B2", mamba = "#D55E00", mambaformer = "#009E73", s4mamba = "#CC79A7",
                     hybrid = "#E69F00" }
-- Baselines: the two Okabe-Ito colours the architectures leave (black, sky
-- blue) in three dash patterns; the trivial level is a thin grey line.
local BASELINE_STYLE = { { "#000000", "7,4" }, { "#56B4E9", "7,4" }, { "#000000", "2,3" }, { "#56B4E9", "2,3" },
                         { "#000000", "9,3,2,3" }, { "#56B4E9", "9,3,2,3" } }

local fmt, thousands, minutes, csvnum = U.fmt, U.thousands, U.minutes, U.csvnum

-- The pooled statistic of a cell (bootstrap over its finished seeds),
-- recomputed only when the set of finished seeds changed: the bootstrap
-- is the slow part of writing the report.
function R_.summarise(cell, resamples)
  local done, key = {}, {}
  for _, run in ipairs(cell.runs) do
    if run.status == "done" then
      done[#done + 1] = run
      key[#key + 1] = run.seed
    end
  end
  key = table.concat(key, ",")
  cell.done = #done
  if cell.key == key then return end
  cell.key = key
  cell.stat, cell.lo, cell.hi = nil, nil, nil
  if #done > 0 then cell.stat, cell.lo, cell.hi = S.bootstrap(done, resamples) end
end

local function y_range(info, values)
  if info.accuracy then return false, 0, 1.04 end -- a little room above 1, where solved curves run
  local lo = 1
  for _, v in ipairs(values) do
    if not U.isnan(v) and v > 0 and v < lo then lo = v end
  end
  return true, math.max(1e-3, 10 ^ math.floor(math.log(lo, 10))), 10
end

local function row_charts(state, rs, dir)
  local R, info = rs.row, rs.info
  local level = { info.ref, info.ref_name }
  local series, values, xmax = {}, {}, math.max(1, rs.plan.budget)
  for _, arch in ipairs(R.archs) do
    for _, run in ipairs(rs.cells[arch].runs) do
      local pts = {}
      for _, p in ipairs(run.curve_pts) do
        pts[#pts + 1] = { p.step, p.metric }
        values[#values + 1] = p.metric
        if p.step > xmax then xmax = p.step end
      end
      series[#series + 1] = { label = ROWS.arch_name(arch), color = ARCH_COLOR[arch], points = pts }
    end
  end
  local ylog, ymin, ymax = y_range(info, values)
  local tag = info.accuracy and "accuracy" or "error"
  U.write_file(dir .. "/" .. R.key .. "_steps.svg", svg.chart{
    title = string.format("%s (%s): %s, %s", R.title, R.setting, tag, S.window_text(info, R)),
    xlabel = "training step", ylabel = S.metric_name(info) .. (ylog and " (log)" or ""),
    xmax = xmax, ylog = ylog, ymin = ymin, ymax = ymax, series = series, level = level,
  })
  series, values = {}, {}
  for k, name in ipairs(rs.baselines.names) do
    local st = BASELINE_STYLE[(k - 1) % #BASELINE_STYLE + 1]
    local cv, pts = rs.baselines.curves[name], {}
    for p = 1, #cv.mean do
      pts[#pts + 1] = { p - 1, cv.mean[p] }
      values[#values + 1] = cv.mean[p]
    end
    series[#series + 1] = { label = name, color = st[1], dash = st[2], width = 1.5, points = pts }
  end
  for _, arch in ipairs(R.archs) do
    for _, run in ipairs(rs.cells[arch].runs) do
      if run.status == "done" then
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
  ylog, ymin, ymax = y_range(info, values)
  U.write_file(dir .. "/" .. R.key .. "_examples.svg", svg.chart{
    title = string.format("%s (%s) after %s steps, %d held-out prompts", R.title, R.setting,
      thousands(rs.plan.budget), rs.plan.final_prompts),
    xlabel = R.task.name == "vector_mqar" and "query (0-based)"
      or R.task.name:find("outlier") and "in-context pairs (outliers included)" or "in-context examples",
    ylabel = S.metric_name(info) .. (ylog and " (log)" or ""),
    xmax = math.max(1, info.positions - 1), ylog = ylog, ymin = ymin, ymax = ymax, series = series,
    level = level, span = info.lo > 0 and { info.lo, info.hi, "scored window" } or nil,
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
  U.write_file(dir .. "/" .. R.key .. "_steps.csv", table.concat(lines, "\n") .. "\n")
  lines = { "curve,seed,position,mean,lo,hi,count" }
  local function add(name, seed, cv)
    for p = 1, #cv.mean do
      lines[#lines + 1] = string.format("%s,%d,%d,%s,%s,%s,%d", name, seed, p - 1, csvnum(cv.mean[p]),
        csvnum(cv.lo[p]), csvnum(cv.hi[p]), cv.count[p] or 0)
    end
  end
  for _, arch in ipairs(R.archs) do
    for _, run in ipairs(rs.cells[arch].runs) do
      if run.status == "done" then add(arch, run.seed, run.curve) end
    end
  end
  for _, name in ipairs(rs.baselines.names) do add(name, 0, rs.baselines.curves[name]) end
  U.write_file(dir .. "/" .. R.key .. "_examples.csv", table.concat(lines, "\n") .. "\n")
end

local function cell_text(rs, arch)
  local cell = rs.cells[arch]
  local paper = rs.row.paper[arch] or "?"
  local head
  local pending -- the first run that is not done, if any
  for _, run in ipairs(cell.runs) do
    if run.status ~= "done" then pending = pending or run end
  end
  if cell.stat then
    head = string.format("%s [%s, %s] %s · paper %s", fmt(cell.stat), fmt(cell.lo), fmt(cell.hi),
      cell.verdict or "", paper)
  elseif pending and pending.status == "interrupted" then
    head = string.format("interrupted at step %s · paper %s", thousands(pending.steps), paper)
  elseif pending and pending.status == "running" then
    head = string.format("in progress (step %s) · paper %s", thousands(pending.steps), paper)
  elseif pending and pending.status == "failed" then
    head = string.format("failed at step %s (see below) · paper %s", thousands(pending.steps), paper)
  else
    head = "not run · paper " .. paper
  end
  local steps, wall = 0, 0
  for _, r in ipairs(cell.runs) do steps, wall = math.max(steps, r.steps), wall + r.wall_s end
  if steps == 0 and not cell.stat then return head end
  local seeds = ""
  if #cell.runs > 1 then
    seeds = cell.done < #cell.runs and string.format(" (%d of %d seeds done)", cell.done, #cell.runs)
      or string.format(" (%d seeds)", #cell.runs)
  end
  local extra = ""
  if cell.stat and pending and pending.status == "interrupted" then
    extra = string.format("; seed %d interrupted at step %s", pending.seed, thousands(pending.steps))
  end
  return string.format("%s<br>%s steps · %s%s%s", head, thousands(steps), minutes(wall), seeds, extra)
end

-- What the markdown says about the step budgets (rows' committed numbers).
local function budget_lines(state, add)
  add("## Budgets")
  add()
  add("Fixed step budgets per row, committed in lua/icl/table1_rows.lua (derived with `--measure-budgets`: the "
    .. "steps the slowest architecture of the row fits in " .. math.floor(MEASURE.SAFETY * 100 + 0.5)
    .. "% of 15 minutes with its evaluations, measured on this 2-core machine; the margin is for the machine's "
    .. "drifting speed; see the notes there). Speeds are training steps per second over the cells' training "
    .. "time, from this run's and the saved cells' own timings.")
  add()
  add("| row | budget | curve every | training steps/s | longest cell |")
  add("|---|---|---|---|---|")
  for _, rs in ipairs(state.rows) do
    local r, longest = {}, nil
    for _, arch in ipairs(rs.row.archs) do
      local steps, secs = 0, 0
      for _, run in ipairs(rs.cells[arch].runs) do
        steps, secs = steps + run.steps, secs + run.train_s
        if run.status ~= "waiting" and (not longest or run.wall_s > longest) then longest = run.wall_s end
      end
      if secs > 0 then r[#r + 1] = string.format("%s %.1f", ROWS.arch_name(arch), steps / secs) end
    end
    add(string.format("| %s | %s | %s | %s | %s |", rs.row.key, thousands(rs.plan.budget),
      thousands(rs.plan.eval_every), #r > 0 and table.concat(r, ", ") or "n/a", minutes(longest)))
  end
end

local function row_details(state, rs, add)
  local R, info = rs.row, rs.info
  add()
  add(string.format("### %s (%s)", R.title, R.setting))
  add()
  add(string.format("Task `%s`; statistic: %s, %s. This run: %s steps per cell%s.", R.task.name,
    S.metric_name(info), S.window_text(info, R), thousands(rs.plan.budget),
    rs.plan.budget_note and (" (" .. rs.plan.budget_note .. ")") or ""))
  if R.reference then add() add("Reference runs (issue 8): " .. R.reference) end
  if R.note then add() add("Note: " .. R.note) end
  add()
  add(string.format("Budget: the row's committed budget is %s steps per cell, from %s; %s", thousands(R.budget),
    ROWS.budget_source, R.budget_note or ""))
  add()
  add(string.format("![%s: statistic against training steps](table1/%s_steps.svg)", R.title, R.key))
  add(string.format("![%s: metric against in-context examples](table1/%s_examples.svg)", R.title, R.key))
  add()
  add("| arch | seed | status | steps | wall | train steps/s | final loss | statistic [90%] | "
    .. "check (from the curve) | made |")
  add("|---|---|---|---|---|---|---|---|---|---|")
  for _, arch in ipairs(R.archs) do
    for _, run in ipairs(rs.cells[arch].runs) do
      local status = run.status == "failed" and ("failed: " .. tostring(run.error):gsub("[\n|]", " "))
        or run.status == "interrupted" and ("interrupted at step " .. thousands(run.steps)) or run.status
      add(string.format("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |", ROWS.arch_name(arch), run.seed,
        status, thousands(run.steps), minutes(run.wall_s),
        run.train_s > 0 and string.format("%.1f", run.steps / run.train_s) or "n/a",
        run.loss and string.format("%.4g", run.loss) or "n/a",
        run.stat and string.format("%s [%s, %s]", fmt(run.stat), fmt(run.lo), fmt(run.hi)) or "n/a",
        run.check and fmt(run.check) or "n/a",
        run.status ~= "done" and "" or (run.saved and ("saved " .. tostring(run.date)) or "this run")))
    end
  end
  if #rs.baselines.names > 0 then
    local b = {}
    for _, name in ipairs(rs.baselines.names) do
      b[#b + 1] = string.format("%s %s", name, fmt(rs.baselines.stat[name]))
    end
    add()
    add("Baselines, same statistic: " .. table.concat(b, ", ") .. ".")
  end
  for _, arch in ipairs(R.archs) do
    for _, run in ipairs(rs.cells[arch].runs) do
      if run.wall_s > CELL_LIMIT_S then
        add()
        add(string.format("Over the 15-minute cap: %s seed %d took %s (a loaded machine, or a budget too high).",
          ROWS.arch_name(arch), run.seed, minutes(run.wall_s)))
      end
    end
  end
end

local function markdown(state)
  local o = {}
  local function add(s) o[#o + 1] = s or "" end
  add("# Table 1 of \"Can Mamba Learn How to Learn?\" on this machine")
  add()
  if state.quick then
    add("**`--quick`: every cell trained only a few steps (batch " .. state.quick_batch .. ") and was scored on a "
      .. "few prompts. This checks the pipeline; it is not a result.**")
    add()
  end
  add(string.format("Status: **%s**. Generated by `%s` on %s, host `%s`.", state.status, state.command,
    state.date, state.host))
  add()
  add("Each cell: the statistic with its 90% interval, the verdict by the rules below, the paper's symbol "
    .. "(SPEC.md 5.1); then the steps trained and the cell's wall time (training and evaluations).")
  add()
  local head = { "task", "setting", "statistic" }
  for _, c in ipairs(ROWS.columns) do head[#head + 1] = c.name end
  add("| " .. table.concat(head, " | ") .. " |")
  add("|" .. string.rep("---|", #head))
  for _, rs in ipairs(state.rows) do
    if rs.info then
      local R = rs.row
      local cells = { R.title, R.setting, string.format("%s, %s", rs.info.accuracy and "accuracy ↑" or "error ↓",
        S.window_text(rs.info, R)) }
      for _, c in ipairs(ROWS.columns) do cells[#cells + 1] = rs.cells[c.arch] and cell_text(rs, c.arch) or "—" end
      add("| " .. table.concat(cells, " | ") .. " |")
    end
  end
  add()
  add("## How to read it")
  add()
  add("**Statistic.** The task's main metric averaged over every scored (prompt, position) pair in a window: the "
    .. "last quarter of the in-context positions (position p = p examples seen before the query), or all four "
    .. "queries for vector MQAR; on " .. thousands(state.final_prompts) .. " held-out prompts (seed 0xE7A1, never "
    .. "trained on). Errors are squared errors normalised so that the zero predictor scores 1 (÷ d for linear, "
    .. "2NN and the outlier rows, ÷ k for sparse, ÷ 1 for the tree and CoT-I/O); for the outlier rows only clean "
    .. "positions count. Accuracies: sign accuracy for parity (chance 0.5, but x_query alone gives more: see "
    .. "the verdicts), nearest-value accuracy for vector MQAR (chance 1/16). The 90% interval is a percentile "
    .. "bootstrap over prompts (" .. state.boot_resamples
    .. " resamples; with several seeds, seeds are resampled too and the value is the mean over seeds).")
  add()
  add("**Verdicts** (the same rules are written at the top of lua/experiments/table1.lua):")
  add()
  for _, r in ipairs(S.RULES) do add("- " .. r) end
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
  add("- Training: batch 64" .. (state.quick and (" (this run: --quick, batch " .. state.quick_batch .. ")") or "")
    .. ", Adam (0.9, 0.999, eps 1e-8, no weight decay), constant lr 1e-3, gradient-norm clipping "
    .. "10, fresh prompts every step, no curriculum; training seed = seed index (1.." .. state.seeds .. "); all "
    .. "architectures of a row see the same training prompts.")
  add("- Learning curves: the same statistic on " .. state.curve_prompts .. " other held-out prompts (seed 0xC0DE) "
    .. "at step 0 and every \"curve every\" steps (below).")
  add("- Baselines (in-context curves): the task's default baselines of icl.eval on the same prompts as the models.")
  add("- Resumable: every finished cell is saved in `table1/cells/`; a rerun with the same settings reuses them "
    .. "(the \"made\" column of the row tables says which cells came from an earlier session).")
  add()
  budget_lines(state, add)
  add()
  add("## Rows")
  for _, rs in ipairs(state.rows) do
    if rs.info then row_details(state, rs, add) end
  end
  add()
  add("## Run")
  add()
  local versions, seen = {}, {}
  for _, rs in ipairs(state.rows) do
    for _, cell in pairs(rs.cells) do
      for _, run in ipairs(cell.runs) do
        if run.engine and not seen[run.engine] then versions[#versions + 1], seen[run.engine] = run.engine, true end
      end
    end
  end
  table.sort(versions)
  add("- Command: `" .. state.command .. "`")
  add("- Date: " .. state.date .. (state.total_s and (", this session's wall time " .. minutes(state.total_s)) or "")
    .. (state.cells_total_s and (", cells' total wall time " .. minutes(state.cells_total_s)) or ""))
  add("- Machine: `" .. state.uname .. "`, " .. state.nproc .. " cores (" .. state.cpu .. "), "
    .. state.threads .. " threads, iclplay " .. icl.version .. (#versions > 0 and ("; cells made with iclplay "
    .. table.concat(versions, ", ")) or ""))
  add("- Files: `table1/<row>_steps.svg|csv` (statistic against steps), `table1/<row>_examples.svg|csv` (metric "
    .. "against in-context examples, with baselines), `table1/cells.csv` (one line per cell), `table1/runs.csv` "
    .. "(one line per seed), `table1/cells/*.json` (the saved cells).")
  return table.concat(o, "\n") .. "\n"
end

local function paper_word(s) return ((s or "?"):gsub("✓", "check"):gsub("▲", "triangle"):gsub("✗", "cross")) end

local function cells_csv(state)
  local cl = { "row,arch,seeds,steps,wall_s,statistic,lo,hi,progress,verdict,paper" }
  local rl = { "row,arch,seed,status,steps,budget,wall_s,train_s,train_steps_per_s,final_loss,statistic,lo,hi,"
    .. "curve_check,made" }
  for _, rs in ipairs(state.rows) do
    for _, arch in ipairs(rs.row.archs) do
      local cell = rs.cells[arch]
      local steps, wall = 0, 0
      for _, run in ipairs(cell.runs) do
        steps, wall = math.max(steps, run.steps), wall + run.wall_s
        rl[#rl + 1] = string.format("%s,%s,%d,%s,%d,%d,%s,%s,%s,%s,%s,%s,%s,%s,%s", rs.row.key, arch, run.seed,
          run.status, run.steps, rs.plan.budget, csvnum(run.wall_s), csvnum(run.train_s),
          csvnum(run.train_s > 0 and run.steps / run.train_s or nil), csvnum(run.loss), csvnum(run.stat),
          csvnum(run.lo), csvnum(run.hi), csvnum(run.check), run.saved and "saved" or "this run")
      end
      cl[#cl + 1] = string.format("%s,%s,%d,%d,%s,%s,%s,%s,%s,%s,%s", rs.row.key, arch, #cell.runs, steps,
        csvnum(wall), csvnum(cell.stat), csvnum(cell.lo), csvnum(cell.hi), csvnum(cell.prog),
        S.VERDICT_WORD[cell.verdict] or "", paper_word(rs.row.paper[arch]))
    end
  end
  return table.concat(cl, "\n") .. "\n", table.concat(rl, "\n") .. "\n"
end

-- Rewrites the outputs from state. rows_changed: a set of row states whose
-- charts and CSVs to redraw (nil: every row).
function R_.write(state, rows_changed)
  local dir = state.out .. "/table1"
  local total = 0
  for _, rs in ipairs(state.rows) do
    if rs.info then
      for _, arch in ipairs(rs.row.archs) do
        R_.summarise(rs.cells[arch], state.boot_resamples)
        for _, run in ipairs(rs.cells[arch].runs) do total = total + run.wall_s end
      end
      S.judge(rs.cells, rs.info)
      if not rows_changed or rows_changed[rs] then
        row_charts(state, rs, dir)
        row_csvs(rs, dir)
      end
    end
  end
  state.cells_total_s = total
  local c, r = cells_csv(state)
  U.write_file(dir .. "/cells.csv", c)
  U.write_file(dir .. "/runs.csv", r)
  U.write_file(state.out .. "/table1.md", markdown(state))
end

return R_
