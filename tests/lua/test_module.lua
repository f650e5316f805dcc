-- test_module.lua - the icl module as a whole (lua_icl.c, lua/init.lua,
-- lua/icl/presets.lua): version, threads, the name lists, the help registry
-- and help() texts for every function and method, pretty-printing,
-- completion, and every preset (its SPEC values, its errors, and a few
-- training steps of each at a tiny size).
--
--   iclplay run tests/lua/test_module.lua [--seed N] [--only NAME]
local T = dofile("tests/lua/testlib.lua")

local ARCHS = { "transformer", "mamba", "s4mamba", "hybrid", "mambaformer" }
local PRESETS = { "linear", "sparse_linear", "relu2nn", "decision_tree", "ortho_outlier", "many_outlier", "parity",
                  "cot_io", "vector_mqar", "token_mqar" }

local function contains(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end

T.test("version and threads", function()
  T.check(icl.version == "0.1.0", "icl.version is 0.1.0, got " .. tostring(icl.version))
  T.check(package.loaded.icl == icl, "require('icl') is the global icl")
  local n0 = icl.threads()
  T.check(math.type(n0) == "integer" and n0 >= 1, "icl.threads() returns the thread count")
  T.check(icl.threads(1) == 1, "icl.threads(1) sets one thread")
  T.check(icl.threads() == 1, "and it stays set")
  T.check(icl.threads(n0) == n0, "icl.threads restores")
  T.check_error(function() icl.threads(0) end, "icl.threads: n must be an integer in [1, 1024] (got 0)")
  T.check_error(function() icl.threads(1.5) end, "icl.threads: n must be an integer")
  T.check_error(function() icl.threads("two") end, "(got two)")
end)

T.test("name lists", function()
  local archs, tasks, baselines = icl.archs(), icl.tasks(), icl.baselines()
  for _, a in ipairs(ARCHS) do T.check(contains(archs, a), "icl.archs() has " .. a) end
  for _, t in ipairs({ "linear_regression", "sparse_parity", "token_mqar", "vector_mqar", "cot_io" }) do
    T.check(contains(tasks, t), "icl.tasks() has " .. t)
  end
  T.check(not contains(tasks, "custom"), "icl.tasks() lists the built-ins only")
  for _, b in ipairs({ "least_squares", "knn", "averaging" }) do
    T.check(contains(baselines, b), "icl.baselines() has " .. b)
  end
  T.check(icl.archs() ~= archs, "each call returns a fresh table")
end)

T.test("help registry: icl.doc, icl.docs, icl.setdoc", function()
  local doc, name = icl.doc(icl.threads)
  T.check(name == "icl.threads" and doc:find("icl.threads([n])", 1, true), "icl.doc(fn) finds name and text")
  T.check(icl.doc("icl.threads") == doc, "icl.doc(name) gives the same text")
  T.check(icl.doc("no.such.name") == nil, "unknown names give nil")
  T.check(icl.doc(42) == nil and icl.doc({}) == nil, "undocumented values give nil")
  local f = function() end
  icl.setdoc(f, "test.f", "test.f(): a test function\nmore text")
  T.check(select(2, icl.doc(f)) == "test.f", "icl.setdoc documents a Lua function")
  icl.setdoc(nil, "test.topic", "a topic")
  T.check(icl.doc("test.topic") == "a topic", "icl.setdoc(nil, ...) documents a name")
  local names = icl.docs("test.")
  T.check(#names == 2 and names[1] == "test.f" and names[2] == "test.topic", "icl.docs(prefix) is sorted and filtered")
  T.check(#icl.docs("tasks.") == #icl.tasks() + 1, "a topic entry per task (and custom)")
  T.check(#icl.docs("baselines.") == #icl.baselines(), "a topic entry per baseline")
  T.check(#icl.docs("archs.") == #icl.archs(), "a topic entry per architecture")
  T.check_error(function() icl.setdoc(f, nil, "x") end, "bad argument #2")
end)

T.test("every function of the icl table has help", function()
  local n = 0
  for k, v in pairs(icl) do
    if type(v) == "function" then
      n = n + 1
      T.check(icl.doc(v) or icl.doc("icl." .. k), "icl." .. k .. " has a help text")
    end
  end
  T.check(n >= 10, "icl has its functions (" .. n .. ")")
  for _, p in ipairs(PRESETS) do
    T.check(type(icl.presets[p]) == "function" and icl.doc(icl.presets[p]), "icl.presets." .. p .. " has a help text")
  end
  T.check(icl.doc(help) and icl.doc(icl.build), "help and icl.build have help texts")
end)

-- The methods of a bound type: its __methods table (or __index table).
local function methods_of(mtname)
  local mt = debug.getregistry()[mtname]
  if type(mt) ~= "table" then return nil end
  local m = rawget(mt, "__methods")
  if type(m) ~= "table" then m = type(rawget(mt, "__index")) == "table" and rawget(mt, "__index") or {} end
  return m
end

T.test("every method of every bound type has help", function()
  local types = { "icl.model", "icl.task", "icl.trainer", "icl.tensor", "icl.evalresult" }
  local found = 0
  for _, tn in ipairs(types) do
    local methods = methods_of(tn)
    if methods == nil then
      print("  note: metatable " .. tn .. " not registered (binding missing)")
      T.check(tn == "icl.evalresult", tn .. " is registered")
    else
      found = found + 1
      local n = 0
      for k, v in pairs(methods) do
        if type(v) == "function" then
          n = n + 1
          T.check(icl.doc(tn .. ":" .. k) or icl.doc(v), tn .. ":" .. k .. " has a help text")
        end
      end
      T.check(n > 0, tn .. " has methods")
    end
  end
  T.check(found >= 3, "model, task and trainer are bound")
end)

T.test("help() texts", function()
  local h = icl.help_text
  local top = h()
  for _, topic in ipairs({ "quickstart", "tasks", "archs", "baselines", "presets", "repl" }) do
    T.check(top:find('help("' .. topic .. '")', 1, true), "help() lists " .. topic)
    T.check(#h(topic) > 40, "help(\"" .. topic .. "\") has text")
  end
  local tasks = h("tasks")
  for _, t in ipairs(icl.tasks()) do T.check(tasks:find(t, 1, true), "help('tasks') lists " .. t) end
  T.check(tasks:find("SPEC 2.1", 1, true), "with the task_help lines")
  local archs = h("archs")
  for _, a in ipairs(ARCHS) do T.check(archs:find(a, 1, true), "help('archs') lists " .. a) end
  local presets = h("presets")
  for _, p in ipairs(PRESETS) do T.check(presets:find(p, 1, true), "help('presets') lists " .. p) end
  T.check(h(icl.threads):find("icl.threads([n])", 1, true), "help(function) shows its text")
  T.check(h("icl.threads"):find("get, or set", 1, true), "help(name) shows its text")
  T.check(h("linear_regression"):find("y = w.x", 1, true), "help(task name)")
  T.check(h("least_squares") ~= nil and not h("least_squares"):find("no help", 1, true), "help(baseline name)")
  local ic = h(icl)
  T.check(ic:find("threads", 1, true) and ic:find("presets", 1, true), "help(icl) lists the members")
  T.check(h("zzz_nothing"):find('no help for "zzz_nothing"', 1, true), "unknown topics say so")
  T.check(h(function() end):find("a Lua function defined at", 1, true), "undocumented Lua functions")
  T.check(h(42):find("a number: 42", 1, true), "plain values")
  if icl.model then
    local m = icl.model{ arch = "mamba", d_model = 8, n_layer = 1, n_dims = 2 }
    local hm = h(m)
    T.check(hm:find("methods:", 1, true) and hm:find("m:forward", 1, true), "help(m) lists the methods")
    T.check(hm:find("mamba", 1, true), "help(m) describes the object")
    T.check(h(m.forward) and h(m.forward):find("forward", 1, true), "help(m.forward)")
  end
end)

T.test("icl.pretty", function()
  local p = icl.pretty
  T.check(p(1) == "1" and p("s") == "s" and p(nil) == "nil", "scalars as tostring, strings raw")
  T.check(p({ 1, 2, 3 }) == "{ 1, 2, 3 }", "arrays: " .. p({ 1, 2, 3 }))
  T.check(p({ a = 1, b = "x" }) == '{ a = 1, b = "x" }', "records, sorted, strings quoted: " .. p({ a = 1, b = "x" }))
  T.check(p({ 1, k = { 2, { 3 } } }) == "{ 1, k = { 2, { 3 } } }", "nesting")
  T.check(p({ [1.5] = true, ["a b"] = 1 }):find('["a b"] = 1', 1, true), "non-identifier keys bracketed")
  local deep = { { { { { 1 } } } } }
  T.check(p(deep):find("{...}", 1, true), "depth is limited")
  local cyc = {}
  cyc.self = cyc
  T.check(p(cyc) == "{ self = <cycle> }", "cycles: " .. p(cyc))
  local big = {}
  for i = 1, 100 do big[i] = i end
  T.check(p(big):find("(76 more)", 1, true), "long tables are truncated")
  local wide = {}
  for i = 1, 20 do wide["key" .. i] = string.rep("x", 10) end
  T.check(p(wide):find("\n", 1, true), "wide tables break into lines")
  T.check(p(icl.threads):find("icl.threads", 1, true), "functions show their documented name")
  local obj = setmetatable({}, { __tostring = function() return "OBJ" end })
  T.check(p(obj) == "OBJ" and p({ obj }) == "{ OBJ }", "__tostring is used")
end)

T.test("completion", function()
  local c = icl.complete
  T.check(contains(c("icl.pre"), "icl.presets") and contains(c("icl.pre"), "icl.pretty"), "icl.pre -> icl.presets")
  T.check(contains(c("pri"), "print"), "globals: pri -> print")
  T.check(contains(c("fun"), "function"), "keywords: fun -> function")
  T.check(contains(c("icl.presets.li"), "icl.presets.linear"), "nested tables")
  T.check(#c("nosuch.x") == 0 and #c("icl.zzz") == 0, "nothing to complete")
  T.check(#c("a..b") == 0 and #c("x:y:z") == 0 and #c("") > 10, "odd input does not fail")
  s_for_test = "abc"
  T.check(contains(c("s_for_test:up"), "s_for_test:upper"), "string methods")
  s_for_test = nil
  tbl_for_test = setmetatable({}, { __index = { alpha = 1, beta = function() end } })
  T.check(contains(c("tbl_for_test.al"), "tbl_for_test.alpha"), "fields through __index tables")
  T.check(contains(c("tbl_for_test:"), "tbl_for_test:beta") and not contains(c("tbl_for_test:"), "tbl_for_test:alpha"),
    "after ':' only functions")
  tbl_for_test = nil
  local list = c("icl.t")
  for i = 2, #list do T.check(list[i - 1] < list[i], "sorted") end
  if icl.model and icl.task and icl.trainer then
    m = icl.model{ arch = "mamba", d_model = 8, n_layer = 1, n_dims = 2 }
    tr = icl.trainer{ model = m, task = icl.task{ "linear_regression", n_dims = 2, n_points = 4 }, batch = 2 }
    T.check(contains(c("m:for"), "m:forward"), "m:for -> m:forward")
    T.check(contains(c("m.n_"), "m.n_params"), "m.n_ -> m.n_params (fields)")
    T.check(contains(c("tr.lo"), "tr.loss"), "tr.lo -> tr.loss")
    T.check(contains(c("tr:st"), "tr:step"), "tr:st -> tr:step")
    T.check(contains(c("tr.model:gr"), "tr.model:grad_norms"), "paths through getters")
    m, tr = nil, nil
  end
end)

T.test("init.lua: package.path and the lua folder", function()
  T.check(type(icl.lua_dir) == "string", "icl.lua_dir is set")
  T.check(package.path:find(icl.lua_dir, 1, true), "package.path has the lua folder")
  T.check(require("icl.presets") == icl.presets, "require('icl.presets') is icl.presets")
  T.check(type(help) == "function" and type(icl.build) == "function", "help and icl.build are defined")
end)

T.test("presets: shape and SPEC values", function()
  for _, name in ipairs(PRESETS) do
    for _, arch in ipairs(ARCHS) do
      for _, scale in ipairs({ "playground", "paper" }) do
        local p = icl.presets[name]{ arch = arch, scale = scale }
        local what = name .. "/" .. arch .. "/" .. scale
        T.check(p.name == name and p.arch == arch and p.scale == scale, what .. ": name, arch, scale")
        T.check(type(p.model) == "table" and type(p.task) == "table" and type(p.trainer) == "table" and
          type(p.run) == "table", what .. ": sections")
        T.check(p.trainer.batch == (name == "token_mqar" and scale == "paper" and 512 or 64), what .. ": batch")
        T.check(p.run.max_steps and p.run.max_steps > 0, what .. ": run.max_steps")
        if scale == "playground" then
          T.check(p.model.d_model == 64 and p.trainer.lr == 1e-3, what .. ": playground d_model 64, lr 1e-3")
          T.check(p.run.max_steps <= 5000, what .. ": playground runs are short")
        end
      end
    end
  end
  local lin = icl.presets.linear{ scale = "paper" }
  T.check(lin.trainer.lr == 1e-4 and lin.model.d_model == 128 and lin.model.n_layer == 4,
    "linear paper: 128/4, lr 1e-4")
  T.check(lin.task.n_dims == 20 and lin.task.n_points == 41, "linear paper: d 20, 41 points")
  T.check(lin.task.curriculum.dims[1] == 5 and lin.task.curriculum.points[1] == 11, "linear paper: curriculum")
  T.check(lin.run.max_steps == 500001 and lin.trainer.clip == 10 and lin.trainer.optimizer == "adam",
    "500k steps, Adam")
  local par = icl.presets.parity{ scale = "paper", arch = "mamba" }
  T.check(par.model.d_model == 256 and par.model.n_layer == 24 and par.trainer.lr == 4e-4, "parity paper: 256/24, 4e-4")
  T.check(par.task.n_dims == 10 and par.task.k == 2 and par.task.n_points == 140, "parity paper task")
  local mo = icl.presets.many_outlier{ scale = "paper" }
  T.check(mo.run.max_steps == 1000001 and mo.task.curriculum.points[2] == 512 and mo.task.p == 0.9, "many outlier")
  T.check(icl.presets.decision_tree{ scale = "paper" }.trainer.lr == 4e-4, "decision tree lr 4e-4")
  T.check(icl.presets.vector_mqar{ scale = "paper" }.trainer.clip == 100, "retrieval clip 100")
  local tm = icl.presets.token_mqar{ scale = "paper" }
  T.check(tm.model.arch == "custom" and tm.model.blocks[1] == "attn" and tm.model.n_positions == 64,
    "token MQAR transformer: attention only, positions")
  T.check(tm.trainer.optimizer == "adamw" and tm.trainer.weight_decay == 0.1 and tm.trainer.schedule == "cosine",
    "token MQAR: AdamW, cosine")
  -- overrides
  local o = icl.presets.linear{ arch = "mamba", seed = 7, model = { d_model = 32 }, task = { n_points = 9 },
                                trainer = { lr = 3e-4 }, run = { max_steps = 5 } }
  T.check(o.model.d_model == 32 and o.model.n_layer == 4 and o.task.n_points == 9 and o.task.n_dims == 5,
    "overrides merge into each section")
  T.check(o.trainer.lr == 3e-4 and o.run.max_steps == 5 and o.model.seed == 7 and o.trainer.seed == 7, "seed and run")
  local a, b = icl.presets.linear{}, icl.presets.linear{}
  a.model.d_model = 1
  T.check(b.model.d_model == 64, "each call returns fresh tables")
end)

T.test("presets: errors", function()
  T.check_error(function() icl.presets.linear{ arch = "rnn" } end, "icl.presets.linear: arch must be one of")
  T.check_error(function() icl.presets.linear{ scale = "huge" } end, 'scale must be "playground" or "paper"')
  T.check_error(function() icl.presets.parity{ archh = "mamba" } end, "icl.presets.parity: unknown option 'archh'")
  T.check_error(function() icl.presets.linear(5) end, "options must be a table")
  T.check_error(function() icl.presets.linear{ model = 3 } end, "model must be a table of overrides")
  T.check_error(function() icl.presets.linear{ arch = "custom" } end, "needs model = { blocks")
  T.check_error(function() icl.presets.linear{ seed = 1.5 } end, "seed must be an integer")
  T.check_error(function() icl.build(5) end, "icl.build: p must be a preset")
  T.check_error(function() icl.build{ model = {}, task = {}, trainer = 3 } end, "p.trainer must be a table")
  local _, err = pcall(function() icl.presets.linear{ arch = "rnn" } end)
  T.check(tostring(err):find("test_module.lua", 1, true), "preset errors point at the caller: " .. tostring(err))
end)

-- Tiny sizes for a few steps of every preset.
local TINY_TASK = {
  linear = { n_points = 6 }, sparse_linear = { n_points = 6 }, relu2nn = { n_points = 6, hidden = 8 },
  decision_tree = { n_points = 6 }, ortho_outlier = { n_points = 6 }, many_outlier = { n_points = 8 },
  parity = { n_points = 8 }, cot_io = { n_points = 4 }, vector_mqar = { kappa = 3, queries = 3 },
  token_mqar = { vocab = 40, seq_len = 16, kappa = 2 },
}

T.test("presets build and train a few steps (tiny sizes)", function()
  if not (icl.model and icl.task and icl.trainer) then
    T.check(false, "icl.model, icl.task and icl.trainer exist")
    return
  end
  local function try(name, arch, scale)
    local p = icl.presets[name]{ arch = arch, scale = scale, model = { d_model = 8, n_layer = 2, n_head = 2 },
                                 task = scale == "playground" and TINY_TASK[name] or nil, trainer = { batch = 4 } }
    local ok, err = pcall(function()
      local m, t, tr = icl.build(p)
      local loss = tr:step(3)
      T.check(tr.steps == 3, name .. "/" .. arch .. ": three steps")
      T.check(type(loss) == "number" and loss == loss and loss < math.huge, name .. "/" .. arch .. ": finite loss")
      T.check(m.d_model == 8 and tr.model ~= nil and t ~= nil, name .. "/" .. arch .. ": model as asked")
      m:close()
    end)
    T.check(ok, name .. "/" .. arch .. "/" .. scale .. ": " .. tostring(err))
  end
  for i, name in ipairs(PRESETS) do
    try(name, ARCHS[(i - 1) % #ARCHS + 1], "playground")
    try(name, "mambaformer", "paper") -- the paper's tasks (curricula, lengths) with a tiny model
  end
  for _, arch in ipairs(ARCHS) do try("token_mqar", arch, "playground") end
  for _, arch in ipairs(ARCHS) do try("linear", arch, "playground") end
end)

T.finish()
