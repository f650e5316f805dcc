-- test_limits.lua - the robustness promises about memory and object lifetimes
-- (issue 7, "Lua" and "Resource limits"):
--   * a runaway table (or string) hits the Lua memory limit and raises "not
--     enough memory"; the state, its globals and objects stay intact, and
--     the plain REPL goes on even while a global still holds the memory;
--   * the limit is configurable: icl.memory_limit, ICLPLAY_LUA_MEM,
--     --lua-mem, with a default of min(2 GiB, physical memory / 4);
--   * fault injection: every constructor and method run under a limit just
--     above what Lua uses, raised 32 bytes at a time, either succeeds or
--     raises a clean error, and nothing half-built survives (the objects made
--     before still work, a full collection runs every finalizer);
--   * the memory budget refuses an oversized model, trainer batch, task and
--     t:sample before allocating, with the estimate in the message (the
--     refusals take no time and VmRSS does not move);
--   * every object kind used after :close(), or reached again after it was
--     collected (resurrected by a finalizer), raises a clear error and leaves
--     the others intact.
-- Child processes (the REPL, the environment variables and flags) run the
-- same executable (arg[-2] under `iclplay run`, else $EXE).
local T = dofile("tests/lua/testlib.lua")

local MiB = 1024 * 1024
local EXE = (arg and arg[-1] == "run" and arg[-2]) or os.getenv("EXE") or "./iclplay"

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs EXE with `args` (already quoted) and stdin `input`, environment
-- prefix `env` (the memory variables are cleared first). Returns the exit
-- code and stdout + stderr.
local function run_child(env, args, input)
  local inf, outf = os.tmpname(), os.tmpname()
  local f = assert(io.open(inf, "w"))
  f:write(input or "")
  f:close()
  local cmd = string.format("env -u ICLPLAY_LUA_MEM -u ICLPLAY_BUDGET %s %s %s < %s > %s 2>&1", env or "",
    sh_quote(EXE), args, sh_quote(inf), sh_quote(outf))
  local _, _, code = os.execute(cmd)
  f = assert(io.open(outf, "r"))
  local out = f:read("a")
  f:close()
  os.remove(inf)
  os.remove(outf)
  return code, out
end

-- Resident memory of this process in KiB.
local function rss_kib()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

local function mem_total_bytes()
  local f = io.open("/proc/meminfo", "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local kb = tonumber(s:match("MemTotal:%s*(%d+)"))
  return kb and kb * 1024
end

local has_limit = pcall(icl.memory_limit)
local start_limit = has_limit and icl.memory_limit() or nil
local start_budget = icl.memory_budget()

local task0 = icl.task{ "linear_regression", n_dims = 3, n_points = 5 }
local function small_model(arch)
  return icl.model{ arch = arch or "mamba", d_model = 8, n_layer = 2, d_state = 4, n_head = 2, task = task0 }
end

-- Runs fn under a Lua limit of (what Lua uses now + extra) bytes and
-- returns pcall's status and error. The limit is lifted before anything else
-- allocates (a table.pack of the results could itself be refused).
local function with_limit(extra, fn)
  collectgarbage()
  collectgarbage()
  local _, used = icl.memory_limit()
  icl.memory_limit(used + extra)
  local ok, err = pcall(fn)
  icl.memory_limit(math.huge)
  return ok, err
end

-- ---- the Lua memory limit ------------------------------------------------------------

T.test("the state was made by iclplay's allocator (icl.memory_limit works)", function()
  T.check(has_limit, "icl.memory_limit raised: " .. select(2, pcall(icl.memory_limit)) ..
    " (main.c must create the state with lalloc_newstate)")
end)

if has_limit then
  T.test("Lua's count is exact: in_use equals collectgarbage('count')", function()
    local _, used = icl.memory_limit()
    local count = collectgarbage("count") * 1024
    T.check(math.abs(used - count) <= 256, string.format("in_use %d vs collectgarbage %d", used, count))
  end)

  T.test("a runaway table raises 'not enough memory'; globals and objects survive", function()
    sentinel_global = "still here"
    local keep = { value = 42 }
    local m = small_model()
    local b = task0:sample(2, { seed = 3 })
    local y0 = m:forward(b):sum()
    collectgarbage()
    local _, before = icl.memory_limit()
    local t0 = os.clock()
    local ok, err = with_limit(32 * MiB, function()
      local t = {}
      for i = 1, 1e9 do t[i] = { i } end
    end)
    T.check(not ok, "the runaway loop was not stopped")
    T.check(err == "not enough memory", "error: " .. tostring(err))
    T.check(os.clock() - t0 < 10, "stopping took " .. (os.clock() - t0) .. " s")
    collectgarbage()
    collectgarbage()
    local _, after = icl.memory_limit()
    T.check(after < before + 2 * MiB, string.format("memory came back: %d -> %d bytes", before, after))
    T.check(sentinel_global == "still here" and keep.value == 42, "globals and locals intact")
    T.check(m:forward(b):sum() == y0, "the model still computes the same output")
    T.check(small_model().n_params == m.n_params, "a new model can be built")
    -- a string doubling (one large request) and a huge tensor (a userdata)
    ok, err = with_limit(32 * MiB, function() local s = "x" while true do s = s .. s end end)
    T.check(not ok and err == "not enough memory", "string doubling: " .. tostring(err))
    ok, err = with_limit(32 * MiB, function() return icl.zeros(1e9) end)
    T.check(not ok and err == "not enough memory", "icl.zeros(1e9): " .. tostring(err))
  end)

  T.test("the limit is configurable: icl.memory_limit, its argument checks", function()
    local lim, used = icl.memory_limit("64M")
    T.check(lim == 64 * MiB and used > 0, "64M -> " .. tostring(lim))
    T.check(icl.memory_limit(100 * MiB) == 100 * MiB, "a number of bytes")
    T.check(icl.memory_limit("off") == math.huge, "\"off\" lifts it")
    T.check(icl.memory_limit(math.huge) == math.huge, "math.huge lifts it")
    T.check_error(function() icl.memory_limit("lots") end, "icl.memory_limit: size 'lots' is not a number")
    T.check_error(function() icl.memory_limit("12Q") end, "unknown unit")
    T.check_error(function() icl.memory_limit(0) end, "icl.memory_limit")
    T.check_error(function() icl.memory_limit({}) end, "expects a number of bytes")
    T.check_error(function() icl.memory_limit(1000) end, "is below the")
    icl.memory_limit(start_limit)
    T.check(icl.memory_limit() == start_limit, "restored")
    local doc = icl.doc(icl.memory_limit) or ""
    T.check(doc:find("allocated in C", 1, true), "help says the C core's memory is not counted")
  end)

  T.test("the default limit, ICLPLAY_LUA_MEM and --lua-mem", function()
    local code, out = run_child("", "-e 'print(icl.memory_limit())'")
    local lim = tonumber(out:match("^(%d+)"))
    local total = mem_total_bytes()
    T.check(code == 0 and lim, "default: " .. out)
    if lim and total then
      local want = math.min(2 ^ 31, total // 4)
      T.check(math.abs(lim - want) <= 64 * 1024, string.format("default %d, expected min(2 GiB, %d / 4)", lim, total))
    end
    code, out = run_child("ICLPLAY_LUA_MEM=96M", "-e 'print(icl.memory_limit())'")
    T.check(code == 0 and out:match("^100663296"), "ICLPLAY_LUA_MEM=96M: " .. out)
    code, out = run_child("ICLPLAY_LUA_MEM=96M", "--lua-mem 80M -e 'print(icl.memory_limit())'")
    T.check(code == 0 and out:match("^83886080"), "--lua-mem 80M wins over the environment: " .. out)
    code, out = run_child("", "--lua-mem=off -e 'print(icl.memory_limit())'")
    T.check(code == 0 and out:match("^inf"), "--lua-mem=off: " .. out)
    code, out = run_child("ICLPLAY_LUA_MEM=plenty", "-e 'print(1)'")
    T.check(code == 2 and out:find("ICLPLAY_LUA_MEM", 1, true), "a bad ICLPLAY_LUA_MEM stops with a message: " .. out)
    code, out = run_child("", "--lua-mem 1M -e 'print(1)'")
    T.check(code == 2 and out:find("too little", 1, true), "too small a limit: " .. out)
    code, out = run_child("", "--lua-mem")
    T.check(code == 2 and out:find("needs a size", 1, true), "missing size: " .. out)
  end)

  T.test("the REPL survives a Lua memory full of a global table", function()
    local input = table.concat({
      "keep = 42",
      "icl.memory_limit(\"24M\")",
      "hog = {} for i = 1, 1e9 do hog[i] = (\"x\"):rep(64) .. i end",
      "print(\"after\", keep, #hog > 1000)",
      "m = icl.model{ arch = \"mamba\", d_model = 8, n_layer = 2 }",
      "print(\"model\", m.n_params > 0)",
      "hog = nil collectgarbage()",
      "print(\"freed\", keep, select(2, icl.memory_limit()) < 8 * 1024 * 1024)",
      "",
    }, "\n")
    local code, out = run_child("", "--plain", input)
    T.check(code == 0, "exit code " .. tostring(code))
    T.check(out:find("not enough memory", 1, true), "the error is reported")
    T.check(out:find("after\t42\ttrue", 1, true), "the next line runs while the table is still held")
    T.check(out:find("model\ttrue", 1, true), "a model can be built right after")
    T.check(out:find("freed\t42\ttrue", 1, true), "memory comes back after hog = nil")
    if code ~= 0 or not out:find("freed", 1, true) then print("  | " .. out:gsub("\n", "\n  | ")) end
  end)

  -- ---- fault injection -----------------------------------------------------------------

  T.test("fault injection: every constructor and method fails cleanly under a tight limit", function()
    local m0 = small_model("mambaformer") -- never trained below: its output must not change
    local mt = small_model()                -- the trainers' model
    local b0 = task0:sample(3, { seed = 1 })
    local y0 = m0:forward(b0):sum()
    local tc = icl.task{ "custom", n_dims = 3, n_points = 3, fill = function(p)
      local x, y = {}, {}
      for i = 1, p.n_points do x[i] = { p.rng:normal(), p.rng:normal(), 0 } y[i] = x[i][1] end
      return x, y
    end }
    local tr0 = icl.trainer{ model = mt, task = task0, batch = 4 }
    tr0:step(1)
    tr0:eval{ prompts = 8, baselines = {} }
    local path = os.tmpname()
    local ops = {
      { "icl.model", true, function() return icl.model{ arch = "mamba", d_model = 8, n_layer = 2, task = task0 } end },
      { "icl.task", true, function() return icl.task{ "linear_regression", n_dims = 3, n_points = 5 } end },
      { "icl.task custom", true, function()
        return icl.task{ "custom", n_dims = 2, n_points = 3, fill = function() return { { 1, 2 } }, { 1 } end }
      end },
      { "t:sample", true, function() return task0:sample(3) end },
      { "t:sample custom", true, function() return tc:sample(2) end },
      { "m:forward", true, function() return m0:forward(b0) end },
      { "m:param view", true, function() return m0:param("read_out.weight"):sum() end },
      { "icl.trainer + step", true, function()
        local tr = icl.trainer{ model = mt, task = task0, batch = 4 }
        tr:step(1)
        tr:close()
      end },
      { "trainer on a custom task", true, function()
        local tr = icl.trainer{ model = mt, task = tc, batch = 2 }
        tr:step(1)
        tr:close()
      end },
      { "icl.eval", true, function()
        return icl.eval(m0, task0, { prompts = 8, batch = 8, baselines = { "least_squares" } })
      end },
      { "print and fields", true, function()
        return tostring(m0), m0.spec, m0:blocks(), tostring(task0), task0:options()
      end },
      { "trainer fields", true, function() return tostring(tr0), tr0:history(), tr0.last_eval end },
      { "icl.tensor", true, function() return icl.tensor{ { 1, 2 }, { 3, 4 } }:totable() end },
      { "icl.complete", true, function() return icl.complete("icl.mem") end },
      { "save and load", true, function() m0:save(path) return icl.load(path) end },
    }
    local unclean = {}
    for _, op in ipairs(ops) do
      local name, must_fail, fn = op[1], op[2], op[3]
      -- every 32 bytes up to 2 KiB above the current use, then in steps of
      -- 1/32 of the distance (so a sweep stays short for ops that need more)
      local fails, ok_at, extra = 0, nil, 0
      while extra <= 1024 * 1024 do
        local ok, err = with_limit(extra, fn)
        if ok then ok_at = extra break end
        fails = fails + 1
        local clean = type(err) == "string" and
          (err:find("not enough memory", 1, true) or err:find("stack overflow", 1, true))
        if not clean then unclean[#unclean + 1] = name .. ": " .. tostring(err) end
        extra = extra + (extra < 2048 and 32 or extra // 32)
      end
      T.check(ok_at, name .. ": never succeeded up to +1 MiB")
      if must_fail then T.check(fails > 0, name .. ": never refused, so the sweep tested nothing") end
      print(string.format("#   %-26s %4d refusals, succeeds from +%d bytes", name, fails, ok_at or -1))
    end
    os.remove(path)
    T.check(#unclean == 0, "errors other than 'not enough memory':\n    " ..
      table.concat(unclean, "\n    ", 1, math.min(#unclean, 5)))
    collectgarbage() -- every half-built object's finalizer runs here
    collectgarbage()
    T.check(m0:forward(b0):sum() == y0, "the model made before still computes the same output")
    T.check(#tc:sample(2).x == 2, "the custom task still samples")
    T.check(tr0:step(1) == tr0.loss and tr0.steps == 2, "the trainer made before still trains")
  end)
end

-- ---- the memory budget ---------------------------------------------------------------------

T.test("the budget refuses an oversized model before allocating, with the estimate", function()
  icl.memory_budget("1G")
  T.check(icl.memory_budget() == 1024 * MiB, "budget set to 1G")
  local rss0, t0 = rss_kib(), os.clock()
  local ok, err = T.check_error(function()
    return icl.model{ arch = "mambaformer", d_model = 4096, n_layer = 48, n_head = 32 }
  end, "icl.model: mambaformer with d_model 4096 and 49 blocks")
  print("# " .. tostring(err))
  T.check(ok and err:find("needs about %d+%.%d GiB for weights, gradients and Adam state, over the budget of " ..
    "1%.0 GiB %(icl%.memory_budget or ICLPLAY_BUDGET%)"), "the estimate and the budget are in the message")
  -- a model that fits, trained at a batch whose activations do not
  local m = icl.model{ arch = "mamba", d_model = 64, n_layer = 4, n_dims = 8 }
  local t = icl.task{ "linear_regression", n_dims = 8, n_points = 1000 }
  ok, err = T.check_error(function() return icl.trainer{ model = m, task = t, batch = 65536 } end,
    "icl.trainer: model: mamba (d_model 64, 4 blocks) at batch 65536 x 2000 tokens needs about")
  T.check(ok and err:find("and activations (", 1, true) and err:find("over the budget of 1.0 GiB", 1, true),
    "the trainer's message: " .. tostring(err))
  T.check(os.clock() - t0 < 0.5, string.format("refusals took %.3f s of CPU", os.clock() - t0))
  local rss1 = rss_kib()
  if rss0 and rss1 then
    T.check(rss1 - rss0 < 32 * 1024, string.format("VmRSS %d -> %d KiB", rss0, rss1))
  end
  -- both are fine at a sane batch
  local tr = icl.trainer{ model = m, task = t, batch = 2 }
  T.check(tr.batch == 2, "a trainer at batch 2 fits")
  tr:close()
  icl.memory_budget("default")
  T.check(icl.memory_budget() == start_budget, "\"default\" restores the start value")
end)

T.test("the budget refuses an oversized task and t:sample before allocating", function()
  icl.memory_budget("64M")
  local rss0 = rss_kib()
  local ok, err = T.check_error(function()
    return icl.task{ "linear_regression", n_dims = 256, n_points = 1000 }
  end, "icl.task: linear_regression: a batch of 64 prompts (T = 2000 tokens, d = 256, O = 1) needs about")
  T.check(ok and err:find("over the budget of 64.0 MiB (icl.memory_budget or ICLPLAY_BUDGET)", 1, true),
    "task message: " .. tostring(err))
  local t = icl.task{ "linear_regression", n_dims = 8, n_points = 1000 }
  ok, err = T.check_error(function() return t:sample(65536) end, "t:sample: 65536 prompts x 2000 tokens needs about")
  T.check(ok and err:find("over the budget of 64.0 MiB", 1, true), "t:sample message: " .. tostring(err))
  T.check(#t:sample(2).x == 2, "a small sample still works")
  local rss1 = rss_kib()
  if rss0 and rss1 then T.check(rss1 - rss0 < 32 * 1024, string.format("VmRSS %d -> %d KiB", rss0, rss1)) end
  T.check(icl.memory_budget("off") == math.huge, "\"off\" lifts the budget")
  T.check_error(function() icl.memory_budget("much") end, "icl.memory_budget: size 'much'")
  T.check_error(function() icl.memory_budget(-5) end, "icl.memory_budget: bytes must be >= 1")
  icl.memory_budget("default")
end)

T.test("ICLPLAY_BUDGET and --budget set the budget at start", function()
  local code, out = run_child("ICLPLAY_BUDGET=2G", "-e 'print(icl.memory_budget())'")
  T.check(code == 0 and out:match("^2147483648"), "ICLPLAY_BUDGET=2G: " .. out)
  code, out = run_child("ICLPLAY_BUDGET=2G", "--budget 3G -e 'print(icl.memory_budget())'")
  T.check(code == 0 and out:match("^3221225472"), "--budget 3G: " .. out)
  code, out = run_child("ICLPLAY_BUDGET=x", "-e 'print(1)'")
  T.check(code == 2 and out:find("ICLPLAY_BUDGET", 1, true), "a bad ICLPLAY_BUDGET: " .. out)
  code, out = run_child("", "--budget 1G -e 'icl.model{arch=\"mamba\", d_model=4096, n_layer=64}'")
  T.check(code ~= 0 and out:find("over the budget of 1.0 GiB", 1, true), "--budget applies to models: " .. out)
end)

-- ---- use after close ------------------------------------------------------------------------

T.test("a closed model raises on every use; the others are intact", function()
  local m, other = small_model(), small_model()
  local b = task0:sample(2)
  local y = other:forward(b):sum()
  local v = m:param("read_out.weight")
  local row = m:param("blocks.0.mamba.A_log")[1]
  m:close()
  T.check_error(function() m:forward(b) end, "model was closed")
  T.check_error(function() return m.d_model end, "model was closed")
  T.check_error(function() m:param("read_out.weight") end, "model was closed")
  T.check_error(function() m:attention(1, 1) end, "model was closed")
  T.check_error(function() m:save(os.tmpname()) end, "model was closed")
  T.check_error(function() return v:sum() end, "view of a model that was closed")
  T.check_error(function() return v[1] end, "view of a model that was closed")
  T.check_error(function() return row:totable() end, "view of a model that was closed")
  T.check_error(function() v[1] = 1 end, "view of a model that was closed")
  T.check_error(function() icl.trainer{ model = m, task = task0 } end, "icl.trainer: model was closed")
  T.check_error(function() icl.eval(m, task0) end, "icl.eval: model was closed")
  T.check(tostring(m) == "icl.model (closed)", "tostring: " .. tostring(m))
  T.check(tostring(v):find("closed", 1, true), "tostring of the view says why")
  m:close() -- twice is fine
  T.check(other:forward(b):sum() == y, "another model is intact")
end)

T.test("a closed task raises on every use; its model and trainer say so", function()
  local t = icl.task{ "linear_regression", n_dims = 3, n_points = 5 }
  local m = small_model()
  local tr = icl.trainer{ model = m, task = t, batch = 2 }
  tr:step(1)
  t:close()
  T.check_error(function() t:sample(1) end, "task was closed")
  T.check_error(function() return t.T end, "task was closed")
  T.check_error(function() t:options() end, "task was closed")
  T.check_error(function() icl.model{ arch = "mamba", task = t } end, "icl.model: task was closed")
  T.check_error(function() icl.trainer{ model = m, task = t } end, "icl.trainer: task was closed")
  T.check_error(function() icl.eval(nil, t) end, "icl.eval: task was closed")
  T.check_error(function() tr:step(1) end, "the trainer's task was closed")
  T.check_error(function() return tr.loss end, "the trainer's task was closed")
  T.check(tostring(t) == "icl.task (closed)", "tostring: " .. tostring(t))
  T.check(m:forward(task0:sample(2)):numel() == 2 * task0.T, "the model is intact")
end)

T.test("a closed trainer raises on every use; its model and task are intact", function()
  local m = small_model()
  local tr = icl.trainer{ model = m, task = task0, batch = 2 }
  tr:step(2)
  tr:close()
  T.check_error(function() tr:step(1) end, "trainer was closed")
  T.check_error(function() tr:run{ max_steps = 1 } end, "trainer was closed")
  T.check_error(function() tr:eval{ prompts = 8 } end, "trainer was closed")
  T.check_error(function() tr:save(os.tmpname()) end, "trainer was closed")
  T.check_error(function() tr:history() end, "trainer was closed")
  T.check_error(function() return tr.loss end, "trainer was closed")
  T.check_error(function() tr.lr = 1e-3 end, "trainer was closed")
  T.check(tr.closed == true and tostring(tr) == "icl.trainer (closed)", "closed flag and tostring")
  tr:close()
  local tr2 = icl.trainer{ model = m, task = task0, batch = 2 }
  T.check(tr2:step(1) > 0, "model and task train on in a new trainer")
  -- the model closed under a live trainer
  m:close()
  T.check_error(function() tr2:step(1) end, "the trainer's model was closed")
  T.check(tostring(tr2):find("model closed", 1, true), "tostring: " .. tostring(tr2))
end)

T.test("objects closed by a to-be-closed variable raise afterwards", function()
  local keep
  do
    local m <close> = small_model()
    local t <close> = icl.task{ "linear_regression", n_dims = 3, n_points = 5 }
    keep = { m = m, t = t }
  end
  T.check_error(function() keep.m:forward(task0:sample(1)) end, "model was closed")
  T.check_error(function() keep.t:sample(1) end, "task was closed")
end)

T.test("objects reached again after collection (resurrected by a finalizer) raise, never crash", function()
  local z = {}
  do
    local m = small_model()
    local t = icl.task{ "custom", n_dims = 3, n_points = 3, fill = function()
      return { { 1, 2, 3 }, { 3, 4, 5 }, { 5, 6, 7 } }, { 1, 2, 3 }
    end }
    local tr = icl.trainer{ model = m, task = t, batch = 2 }
    tr:step(1)
    local v = m:param("read_out.weight")
    local e = icl.eval(m, task0, { prompts = 8, batch = 8, baselines = {} })
    local rng
    t:sample(1) -- nothing kept
    local t2 = icl.task{ "custom", n_dims = 1, n_points = 1, fill = function(p)
      rng = p.rng
      return { { 1 } }, { 1 }
    end }
    t2:sample(1)
    z.rng = rng
    setmetatable({}, { __gc = function() z.m, z.t, z.tr, z.v, z.e = m, t, tr, v, e end })
  end
  -- the panels follow the last trainer made (a strong reference): another one
  -- takes its place, so the one above can be collected
  local follow = icl.trainer{ model = small_model(), task = task0, batch = 2 }
  collectgarbage()
  collectgarbage()
  T.check(z.m and z.t and z.tr and z.v and z.e, "the finalizer resurrected the objects")
  if not z.m then return end
  T.check_error(function() z.m:forward(task0:sample(1)) end, "model was closed")
  T.check_error(function() z.t:sample(1) end, "task was closed")
  T.check_error(function() z.tr:step(1) end, "trainer was closed")
  T.check_error(function() return z.v:sum() end, "view of a model that was closed")
  T.check_error(function() z.e:curve("model") end, "was freed")
  T.check(tostring(z.e) == "icl.evalresult (freed)", "tostring of a freed result: " .. tostring(z.e))
  T.check_error(function() z.rng:normal() end, "fill call that has returned")
  z = nil
  collectgarbage()
  local m = small_model()
  T.check(m:forward(task0:sample(1)):numel() > 0, "everything else is intact")
  T.check(follow:step(1) > 0, "the trainer made after trains")
end)

-- ---- leave the state as found -----------------------------------------------------------------

if has_limit then icl.memory_limit(start_limit) end
icl.memory_budget("default")
T.finish()
