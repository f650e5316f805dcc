-- test_faults.lua - faults seen from Lua: a NaN written into each block's
-- weights through m:param (tr:step and tr:run stop, name the step and that
-- block, and change nothing), a huge learning rate, inputs beyond float
-- range from a Lua task, logs that cannot be opened, logs that hold only
-- whole lines, and saves that fail (missing folder, /sys) naming the path
-- and the reason while the trainer goes on.
--   iclplay run tests/lua/test_faults.lua [--seed N] [--only NAME]
-- (Disk-full, read-only and kill-during-save cases need ulimit, mount and
-- signals: tests/lua/test_faults.sh and tests/train/test_faults.c.)
local T = dofile("tests/lua/testlib.lua")
if icl.threads then icl.threads(1) end

local base = os.tmpname()
local made = { base }
local function tmp(suffix)
  local p = base .. suffix
  made[#made + 1] = p
  return p
end

local function tiny_model(arch)
  return icl.model{ arch = arch or "mambaformer", n_dims = 3, d_model = 16, n_layer = 2, n_head = 2, seed = T.seed }
end
local function trainer(opts)
  opts = opts or {}
  opts.model = opts.model or tiny_model(opts.arch)
  opts.arch = nil
  opts.task = opts.task or icl.task{ "linear_regression", n_dims = 3, n_points = 6 }
  opts.batch = opts.batch or 8
  opts.lr = opts.lr or 3e-3
  return icl.trainer(opts)
end

-- Every parameter as a flat list; NaN compares equal to NaN here.
local function snapshot(m)
  local all = {}
  local function flat(v)
    if type(v) == "table" then for _, e in ipairs(v) do flat(e) end else all[#all + 1] = v end
  end
  for _, name in ipairs(m:param_names()) do flat(m:param(name):copy():totable()) end
  return all
end
local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if not (a[i] == b[i] or (a[i] ~= a[i] and b[i] ~= b[i])) then return false end
  end
  return true
end
local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- The LayerNorm weight of each block: { {index, kind, name}, ... }.
local function block_norms(m)
  local out = {}
  for _, name in ipairs(m:param_names()) do
    local i, kind = name:match("^blocks%.(%d+)%.(%w+)%.ln%.weight$")
    if i then out[#out + 1] = { tonumber(i), kind, name } end
  end
  return out
end

T.test("a NaN weight in each block: tr:step and tr:run stop, name the step and the block, change nothing", function()
  for _, arch in ipairs{ "mambaformer", "hybrid" } do
    local norms = block_norms(tiny_model(arch))
    T.check(#norms >= 2, arch .. ": found the blocks' norms")
    for _, bn in ipairs(norms) do
      local i, kind, name = bn[1], bn[2], bn[3]
      local tr = trainer{ arch = arch }
      local m = tr.model
      tr:step(2)
      local w = m:param(name)
      local old = w[1]
      w[1] = 0 / 0
      local snap = snapshot(m)
      local where = string.format("block %d (%s)", i, kind)
      local _, err = T.check_error(function() tr:step() end, "tr:step: step 3: the loss is NaN; nothing was updated")
      T.check(err and err:find(where, 1, true), arch .. ": the message names " .. where .. ": " .. tostring(err))
      T.check(tr.steps == 2 and same(snap, snapshot(m)), arch .. ": nothing changed")
      local log = tmp(string.format(".%s%d.csv", arch, i))
      _, err = T.check_error(function() tr:run{ max_steps = 5, log = log } end, "tr:run: step 3: the loss is NaN")
      T.check(err and err:find(where, 1, true), "tr:run names the block too")
      T.check(tr.steps == 2 and same(snap, snapshot(m)), "tr:run changed nothing")
      T.check(slurp(log) == "step,loss,grad_norm,lr,time_s\n", "the log holds its header only")
      w[1] = old
      local r = tr:run{ max_steps = 2, log = log }
      T.check(r.total == 4 and r.reason == "max_steps", "training goes on once the NaN is gone")
      local s = slurp(log)
      local rows = select(2, s:gsub("\n", "\n"))
      T.check(rows == 3 and s:sub(-1) == "\n", "header and two whole rows: " .. rows)
    end
  end
end)

T.test("a huge learning rate: the first NaN step is refused, the trainer is as before it", function()
  local tr = trainer{ lr = 1e30 }
  local m = tr.model
  local refused
  for _ = 1, 10 do
    local snap, steps = snapshot(m), tr.steps
    local ok, err = pcall(tr.step, tr)
    if not ok then
      refused = err
      print("    lr 1e30: " .. tostring(err))
      T.check(err:find(string.format("tr:step: step %d:", steps + 1), 1, true), "names the step")
      T.check(err:find("nothing was updated", 1, true), "says nothing changed")
      T.check(err:find("block %d+ %(") or err:find("the read%-") or err:find("the final norm")
              or err:find("the update would make"), "says where")
      T.check(tr.steps == steps and same(snap, snapshot(m)), "the refused step changed nothing")
      break
    end
  end
  T.check(refused, "10 steps at lr 1e30 went through")
  -- tr:run stops at the same kind of step and raises the same message
  local tr2 = trainer{ lr = 1e30 }
  local _, err = T.check_error(function() tr2:run{ max_steps = 10 } end, "nothing was updated")
  T.check(err and err:find("tr:run: step " .. (tr2.steps + 1) .. ":", 1, true), "the run names the step: " .. tostring(err))
  -- the model is still in memory: it saves and resumes
  local path = tmp(".huge.safetensors")
  tr2:save(path)
  local tr3 = icl.resume(path)
  T.check(tr3.steps == tr2.steps, "saved and resumed after the refusal")
end)

T.test("inputs beyond float range from a Lua task: refused at the fill or named at the read-in", function()
  -- 8 input dims; "big" prompts put 3e38 * sign(w) in each coordinate, for
  -- the read-in's first row of weights w, so that row's sum overflows float
  -- (sum |w| of 8 weights ~ U(-0.7, 0.7) is far above 1.13 = 3.4e38 / 3e38)
  local mode, w = "normal", nil
  local t = icl.task{ "custom", n_dims = 8, n_points = 6, norm = 1, fill = function(p)
    local x, y = {}, {}
    for i = 1, p.n_points do
      x[i] = {}
      for j = 1, 8 do
        x[i][j] = mode == "normal" and p.rng:normal() or (w[j] >= 0 and 3e38 or -3e38)
      end
      y[i] = 1
    end
    if mode == "inf" then x[2][1] = math.huge end
    return x, y
  end }
  local m = icl.model{ arch = "mambaformer", n_dims = 8, d_model = 16, n_layer = 2, n_head = 2, seed = T.seed }
  local tr = icl.trainer{ model = m, task = t, batch = 4 }
  tr:step()
  w = m:param("read_in.weight"):copy():totable()[1]
  local snap = snapshot(m)
  mode = "inf" -- Inf itself never reaches the model: the fill's result is checked
  T.check_error(function() tr:step() end, "not a finite float")
  mode = "big"
  local _, err = T.check_error(function() tr:step() end, "tr:step: step 2: the loss is ")
  print("    |x| = 3e38: " .. tostring(err))
  T.check(err and err:find("the read-in: its output is", 1, true)
          and err:find("the input reaches |x| = 3e+38", 1, true), "names the read-in, and the input")
  T.check(tr.steps == 1 and same(snap, snapshot(m)), "nothing changed")
  mode = "normal"
  T.check(tr:step() and tr.steps == 2, "goes on with ordinary inputs")
end)

T.test("a log that cannot be opened: an error naming the file and the reason, before any step", function()
  local tr = trainer()
  local missing = base .. ".no-such-folder/run.csv"
  T.check_error(function() tr:run{ max_steps = 3, log = missing } end,
                "tr:run: cannot open the log '" .. missing .. "': No such file or directory")
  local f = io.open("/sys/kernel", "r")
  if f then
    f:close()
    T.check_error(function() tr:run{ max_steps = 3, log = "/sys/iclplay-test.jsonl" } end,
                  "cannot open the log '/sys/iclplay-test.jsonl': Permission denied")
  else
    print("    # note: no /sys here: the unwritable log (EACCES) was not tried")
  end
  T.check(tr.steps == 0, "no step ran")
end)

T.test("logs hold whole lines only (CSV, eval CSV, JSONL)", function()
  local tr = trainer()
  local csv, jsonl = tmp(".whole.csv"), tmp(".whole.jsonl")
  made[#made + 1] = base .. ".whole.eval.csv"
  tr:run{ max_steps = 7, log = csv, eval_every = 3 }
  tr:run{ max_steps = 7, log = jsonl, eval_every = 3 }
  for _, p in ipairs{ csv, base .. ".whole.eval.csv", jsonl } do
    local s = slurp(p)
    T.check(s and #s > 0 and s:sub(-1) == "\n", p .. " ends with a newline")
    local n, bad = 0, 0
    for line in s:gmatch("([^\n]*)\n") do
      n = n + 1
      if p:match("%.jsonl$") then
        if not (line:sub(1, 1) == "{" and line:sub(-1) == "}") then bad = bad + 1 end
      else
        if select(2, line:gsub(",", ",")) ~= 4 then bad = bad + 1 end
      end
    end
    T.check(n > 2 and bad == 0, string.format("%s: %d lines, %d not whole", p, n, bad))
  end
end)

T.test("a failed tr:save names the path and the reason; the trainer goes on", function()
  local tr = trainer()
  tr:step(2)
  local missing = base .. ".no-such-folder/run.safetensors"
  T.check_error(function() tr:save(missing) end, "tr:save: st: cannot write '" .. missing .. "'")
  T.check_error(function() tr:save(missing) end, "No such file or directory")
  local f = io.open("/sys/kernel", "r")
  if f then
    f:close()
    T.check_error(function() tr:save("/sys/iclplay-test.safetensors") end, "Permission denied")
  else
    print("    # note: no /sys here: saving into an unwritable folder (EACCES) was not tried")
  end
  T.check(tostring(tr):find("(unsaved)", 1, true), "the model is still marked unsaved")
  T.check(tr:step() and tr.steps == 3, "the trainer still steps")
  local good = tmp(".good.safetensors")
  tr:save(good)
  T.check(not tostring(tr):find("(unsaved)", 1, true), "a good save clears the mark")
  T.check(icl.resume(good).steps == 3, "and loads")
end)

for _, p in ipairs(made) do os.remove(p) end
T.finish()
