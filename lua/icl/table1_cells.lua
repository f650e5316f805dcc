-- table1_cells.lua - the saved cells of lua/experiments/table1.lua, which
-- make a run of many hours resumable across sessions: every finished
-- (row, architecture, seed) is written to
--
--   <out>/table1/cells/<row>_<arch>_s<seed>.json
--
-- holding everything the report needs (the statistic and its single-seed
-- interval, the per-prompt scores the bootstrap resamples, the per-position
-- curve, the learning curve, steps, wall and training time, the row's task
-- facts and baselines), plus the settings it was made with. A rerun loads a
-- cell only when its settings equal the run's (compared as canonical JSON):
-- budget, curve schedule, evaluation prompts and seeds, task, model and
-- trainer settings. Cells made with other settings are never mixed in.
--
-- The engine version is recorded but not compared: a version bump must not
-- throw away hours of cells; the report lists the versions it pooled.
-- Not here: running a cell (table1_run.lua), the report (table1_report.lua).
local J = require("icl.table1_json")
local U = require("icl.table1_util")

local C = {}

C.FORMAT = 1
-- Bump when the definition of the statistic changes (window, scorer): the
-- cells saved before then no longer match.
C.STATISTIC = "window-of-last-quarter v1"

function C.dir(out) return out .. "/table1/cells" end

function C.path(out, row_key, arch, seed)
  return string.format("%s/%s_%s_s%d.json", C.dir(out), row_key, arch, seed)
end

-- The settings a cell of row R must have been made with, for this run.
-- plan: { budget, eval_every, final_prompts, curve_prompts, final_seed,
-- curve_seed, model, trainer, quick }.
function C.settings(R, plan)
  return {
    statistic = C.STATISTIC,
    row = R.key,
    task = U.copy(R.task),
    model = U.copy(plan.model),
    trainer = U.copy(plan.trainer),
    budget = plan.budget,
    eval_every = plan.eval_every,
    final_prompts = plan.final_prompts, final_seed = plan.final_seed,
    curve_prompts = plan.curve_prompts, curve_seed = plan.curve_seed,
    quick = plan.quick,
  }
end

-- "budget: 4900 here, 20 in the file; ..." for the keys that differ.
local function diff(want, got)
  local keys, seen = {}, {}
  for k in pairs(want) do keys[#keys + 1], seen[k] = k, true end
  for k in pairs(got) do if not seen[k] then keys[#keys + 1] = k end end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    local a = want[k] == nil and "none" or J.encode(want[k])
    local b = got[k] == nil and "none" or J.encode(got[k])
    if a ~= b then out[#out + 1] = string.format("%s: %s here, %s in the file", k, a, b) end
  end
  return table.concat(out, "; ")
end

-- Loads the cell of (row, arch, seed). Returns
--   cell, "ok"               settings equal `want`
--   nil, "missing"
--   nil, "mismatch", text    saved with other settings (text says which)
--   nil, "bad", text         unreadable
function C.load(out, row_key, arch, seed, want)
  local path = C.path(out, row_key, arch, seed)
  local text = U.read_file(path)
  if not text then return nil, "missing" end
  local cell, err = J.decode(text)
  if not cell then return nil, "bad", path .. ": " .. err end
  if type(cell) ~= "table" or cell.format ~= C.FORMAT or type(cell.settings) ~= "table" or cell.status ~= "done"
    or type(cell.sums) ~= "table" or type(cell.counts) ~= "table" or #cell.sums ~= #cell.counts then
    return nil, "bad", path .. ": not a finished table1 cell of format " .. C.FORMAT
  end
  if J.encode(cell.settings) ~= J.encode(want) then return nil, "mismatch", diff(want, cell.settings) end
  return cell, "ok"
end

-- The fields of a run that make a saved cell (see the top of the file).
local SAVED = { "row", "arch", "seed", "settings", "engine", "date", "host", "threads", "status", "steps", "wall_s",
                "train_s", "loss", "stat", "lo", "hi", "check", "sums", "counts", "curve", "curve_pts", "info",
                "baselines" }

-- Writes a finished run as its cell file (atomically).
function C.save(out, run)
  local t = { format = C.FORMAT }
  for _, k in ipairs(SAVED) do t[k] = run[k] end
  U.write_file(C.path(out, run.row, run.arch, run.seed), J.encode(t, true) .. "\n")
end

-- Deletes the saved cell of (row, arch, seed), if any; true when one was.
function C.remove(out, row_key, arch, seed)
  return os.remove(C.path(out, row_key, arch, seed)) ~= nil
end

return C
