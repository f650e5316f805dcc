-- test_checkpoint.lua - trainer checkpoints through Lua: tr:save at step 25
-- and icl.resume continue bit for bit (the losses of steps 26-50 and the
-- final parameters equal those of an uninterrupted run), for built-in tasks
-- with a curriculum and for a custom Lua task passed back in; every refused
-- file or argument raises a message naming it.
--   iclplay run tests/lua/test_checkpoint.lua [--seed N] [--only NAME]
local T = dofile("tests/lua/testlib.lua")
if icl.threads then icl.threads(1) end -- tiny models: one thread is fastest and never oversubscribed

local base = os.tmpname()
local made = { base }
local function tmp(suffix)
  local p = base .. suffix
  made[#made + 1] = p
  return p
end

local function snapshot(m)
  local all = {}
  local function flat(v)
    if type(v) == "table" then for _, e in ipairs(v) do flat(e) end else all[#all + 1] = v end
  end
  for _, name in ipairs(m:param_names()) do flat(m:param(name):totable()) end
  return all
end
local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- Linear regression with a curriculum (dims 2 -> 3 and points 4 -> 8, every
-- 10 steps), so a resumed run must also find its place in the curriculum.
local function curriculum_task()
  return icl.task{ "linear_regression", n_dims = 3, n_points = 8, dims_start = 2, dims_end = 3, dims_interval = 10,
                   points_start = 4, points_end = 8, points_inc = 2, points_interval = 10 }
end
local function fresh(arch, task)
  local m = icl.model{ arch = arch, n_dims = 3, d_model = 16, n_layer = 2, n_head = 2, seed = 11 }
  return icl.trainer{ model = m, task = task or curriculum_task(), batch = 16, lr = 3e-3, seed = 9,
                      optimizer = "adamw", weight_decay = 0.01, schedule = "cosine", warmup = 5, total = 60 }
end

local function losses(tr, n)
  local out = {}
  for i = 1, n do out[i] = tr:step() end
  return out
end

for _, arch in ipairs({ "mambaformer", "transformer" }) do
  T.test("save at 25, resume, steps 26-50 bit for bit: " .. arch, function()
    local ref = fresh(arch)
    local ref_losses = losses(ref, 50)
    local ref_params = snapshot(ref.model)

    local tr = fresh(arch)
    local first = losses(tr, 25)
    T.check(same_list(first, { table.unpack(ref_losses, 1, 25) }), "the same seeds give the same first 25 steps")
    T.check(tr.model.dirty == true, "the model has unsaved changes")
    local path = tmp("." .. arch .. ".safetensors")
    T.check(tr:save(path) == path, "tr:save returns the path")
    T.check(tr.model.dirty == false, "saving clears the unsaved mark")

    local tr2 = icl.resume(path)
    T.check(rawequal(icl.show(), tr2), "the resumed trainer is the one the panels follow")
    T.check(tr2.steps == 25 and tr2.seed == 9 and tr2.batch == 16, "step, seed, batch restored")
    T.check(tr2.loss == first[25], "the last loss is restored")
    T.check(tr2.optimizer == "adamw" and tr2.schedule == "cosine", "optimizer config restored")
    T.near(tr2.lr, 3e-3, 1e-9, "lr restored")
    T.check(not rawequal(tr2.model, tr.model) and tr2.model.dirty == false, "a new, clean model")
    T.check(tr2.task.name == "linear_regression" and tr2.task.n_dims == 3, "the task was rebuilt")
    local cur, ref_cur = tr2.task:curriculum(), tr.task:curriculum()
    T.check(cur.step == 25 and cur.dims == ref_cur.dims and cur.points == ref_cur.points,
            "the curriculum is at step 25")
    local rest = losses(tr2, 25)
    local same, first_diff = true, nil
    for i = 1, 25 do
      if rest[i] ~= ref_losses[25 + i] then
        same = false
        first_diff = first_diff or string.format("step %d: %.17g vs %.17g", 25 + i, rest[i], ref_losses[25 + i])
      end
    end
    T.check(same, "resumed steps 26-50 equal the uninterrupted run: " .. tostring(first_diff))
    T.check(same_list(snapshot(tr2.model), ref_params), "final parameters equal")
    print(string.format("    %-12s loss at 25 %.6f, at 50 %.6f; 26-50 identical: %s", arch, first[25], rest[25],
                        tostring(same)))

    -- the checkpoint also loads as a plain model (weights)
    local m = icl.load(path)
    T.check(same_list(snapshot(m), snapshot(tr.model)), "icl.load reads the weights of a trainer checkpoint")
  end)
end

-- A custom task: its fill is Lua code, so the file cannot rebuild it.
local function custom(n_points)
  return icl.task{ "custom", n_dims = 3, n_points = n_points or 6, norm = 3, fill = function(p)
    local w = { p.rng:normal(), p.rng:normal(), p.rng:normal() }
    local x, y = {}, {}
    for i = 1, p.n_points do
      local xi = { p.rng:normal(), p.rng:normal(), p.rng:normal() }
      x[i] = xi
      y[i] = w[1] * xi[1] + w[2] * xi[2] + w[3] * xi[3]
    end
    return x, y
  end }
end

T.test("custom Lua task: refused from the file alone, bit for bit when passed back", function()
  local ref = fresh("mamba", custom())
  local ref_losses = losses(ref, 30)
  local tr = fresh("mamba", custom())
  losses(tr, 15)
  local path = tmp(".custom.safetensors")
  tr:save(path)
  local _, err = T.check_error(function() icl.resume(path) end, "icl.resume: ")
  T.check(err and err:find("custom task", 1, true) and err:find("icl.resume(path, task)", 1, true)
          and err:find(path, 1, true), "the message says why and what to do: " .. tostring(err))
  T.check_error(function() icl.resume(path, custom(7)) end, "n_points", "a task with other options is refused")
  T.check_error(function() icl.resume(path, icl.task{ "linear_regression", n_dims = 3 }) end, "custom",
                "a task of another kind is refused")
  local t = custom()
  local tr2 = icl.resume(path, t)
  T.check(rawequal(tr2.task, t) and tr2.steps == 15, "the task given is used")
  local rest = losses(tr2, 15)
  T.check(same_list(rest, { table.unpack(ref_losses, 16, 30) }), "resumed steps 16-30 equal the uninterrupted run")
end)

T.test("refused files and arguments", function()
  local tr = fresh("mamba")
  tr:step(2)
  local weights = tmp(".weights.safetensors")
  tr.model:save(weights)
  T.check_error(function() icl.resume(weights) end, "not a trainer checkpoint")
  T.check_error(function() icl.resume(tmp(".missing.safetensors")) end, ".missing.safetensors")
  local junk = tmp(".junk.safetensors")
  local f = assert(io.open(junk, "wb"))
  f:write("this is not a safetensors file at all")
  f:close()
  T.check_error(function() icl.resume(junk) end, "icl.resume: ")
  T.check_error(function() icl.resume(42) end, "icl.resume: path must be a string (got number)")
  T.check_error(function() icl.resume(weights, "task") end, "icl.resume: argument 2 must be an icl.task or nil")
  tr:step() -- m:save cleared the unsaved mark; make it dirty again
  T.check_error(function() tr:save("/nonexistent-dir/x.safetensors") end, "/nonexistent-dir/x.safetensors")
  T.check_error(function() tr:save(5) end, "tr:save: path must be a string (got number)")
  T.check(tr.model.dirty == true, "a failed save leaves the unsaved mark")
  -- a trainer checkpoint of a task the file names in full is rebuilt even after the original is gone
  local path = tmp(".gone.safetensors")
  tr:save(path)
  tr.task:close()
  local tr2 = icl.resume(path)
  T.check(tr2.steps == 3 and tr2:step() > 0, "resumed and stepping")
end)

for _, p in ipairs(made) do os.remove(p) end
T.finish()
