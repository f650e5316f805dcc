-- test_task.lua - icl.task for every built-in task and for custom Lua tasks:
-- fields, printing, options, curriculum, t:sample (shapes, layout,
-- determinism, streams), the per-prompt rng, custom fills that work and fills
-- that fail in every way, close, and every error path.
local T = dofile("tests/lua/testlib.lua")
local seed = T.seed

local function same(a, b)
  if a == nil or b == nil then return a == b end
  local sa, sb = a:shape(), b:shape()
  if #sa ~= #sb then return false end
  for i = 1, #sa do if sa[i] ~= sb[i] then return false end end
  local ca, cb = a:copy(), b:copy()
  -- compare through sums of squares of differences (exact for equal data)
  local ta, tb = ca:totable(), cb:totable()
  local function eq(x, y)
    if type(x) == "table" then
      for i = 1, #x do if not eq(x[i], y[i]) then return false end end
      return true
    end
    return x == y
  end
  return eq(ta, tb)
end

-- small versions of every built-in task, with the metric each must report
local BUILTIN = {
  { "linear_regression", { n_dims = 4, n_points = 6 }, "sqerr" },
  { "sparse_linear_regression", { n_dims = 6, n_points = 6, k = 2 }, "sqerr" },
  { "relu2nn_regression", { n_dims = 4, n_points = 6, hidden = 8 }, "sqerr" },
  { "decision_tree", { n_dims = 4, n_points = 6, depth = 2 }, "sqerr" },
  { "ortho_outlier_regression", { n_dims = 4, n_points = 6, p = 0.5 }, "sqerr" },
  { "many_outlier_regression", { n_dims = 4, n_points = 6, p = 0.5 }, "sqerr" },
  { "sparse_parity", { n_dims = 6, n_points = 8, k = 2 }, "sign_acc" },
  { "cot_io", { n_dims = 5, n_points = 4, hidden = 3 }, "sqerr" },
  { "vector_mqar", { n_dims = 4, kappa = 4, queries = 3 }, "nearest_acc" },
  { "token_mqar", { vocab = 64, seq_len = 16, kappa = 2 }, "token_acc" },
}

local function make(entry)
  local o = { entry[1] }
  for k, v in pairs(entry[2]) do o[k] = v end
  return icl.task(o)
end

T.test("every built-in task: fields, sample shapes, determinism", function()
  for _, e in ipairs(BUILTIN) do
    local name = e[1]
    local t = make(e)
    T.check(t.name == name, name .. ": t.name")
    T.check(t.metric == e[3], name .. ": metric " .. tostring(t.metric))
    T.check(t.T >= 1 and t.T_max >= t.T, name .. ": T <= T_max")
    T.check(t.examples >= 1 and t.norm > 0, name .. ": examples and norm")
    T.check(t.custom == false, name .. ": not custom")
    local b = t:sample(3, { seed = seed })
    T.check(b.B == 3 and b.T == t.T and b.task == t, name .. ": B, T, task")
    if name == "token_mqar" then
      T.check(b.x == nil and b.tok ~= nil and b.ycls ~= nil, "token task has tok and ycls")
      local s = b.tok:shape()
      T.check(s[1] == 3 and s[2] == t.T, "tok (n, T)")
      T.check(t.vocab == 64 and t.out == 64 and t.n_dims == 0 and t.loss == "ce", "token geometry")
      T.check(b.tok:min() >= 0 and b.tok:max() < 64, "ids in [0, vocab)")
    else
      local s = b.x:shape()
      T.check(s[1] == 3 and s[2] == t.T and s[3] == t.n_dims, name .. ": x (n, T, d)")
      local ys = b.y:shape()
      T.check(ys[1] == 3 and ys[2] == t.T and ys[3] == t.out, name .. ": y (n, T, O)")
      T.check(b.x:norm() > 0, name .. ": x is filled")
    end
    for _, f in ipairs{ "mask", "metric", "example" } do
      local s = b[f]:shape()
      T.check(s[1] == 3 and s[2] == t.T, name .. ": " .. f .. " (n, T)")
    end
    T.check(b.metric:sum() > 0, name .. ": some metric slots")
    local b2 = t:sample(3, { seed = seed })
    T.check(same(b.x, b2.x) and same(b.y, b2.y) and same(b.tok, b2.tok) and same(b.mask, b2.mask)
      and same(b.example, b2.example), name .. ": same seed, same batch")
    local b3 = t:sample(3, { seed = seed + 1 })
    T.check(not (same(b.x, b3.x) and same(b.tok, b3.tok)), name .. ": another seed, another batch")
    T.check(tostring(t):find(name, 1, true), name .. ": print shows the name")
  end
end)

T.test("linear regression layout: x at even slots, y at odd slots and in y, mask at even slots", function()
  local t = icl.task{ "linear_regression", n_dims = 3, n_points = 5 }
  local b = t:sample(2, { seed = seed })
  T.check(b.mask:sum() == 2 * 5, "mask has n * n_points ones")
  for i = 1, 2 do
    for j = 0, 4 do
      local xs, ys = 2 * j + 1, 2 * j + 2 -- 1-based slots of x_j and of its y token
      T.check(b.mask:at(i, xs) == 1 and b.mask:at(i, ys) == 0, "mask at x slots")
      T.check(b.example:at(i, xs) == j and b.example:at(i, ys) == -1, "example counts")
      T.check(b.x:at(i, ys, 1) == b.y:at(i, xs, 1), "y token carries the target")
      T.check(b.x:at(i, ys, 2) == 0, "y token has zeros after coordinate 1")
    end
  end
end)

T.test("streams: prompt i of a call is prompt 1 of the call that starts at stream i - 1", function()
  local t = icl.task{ "linear_regression", n_dims = 3, n_points = 4 }
  local b = t:sample(4, { seed = seed, stream = 10 })
  local one = t:sample(1, { seed = seed, stream = 12 })
  T.check(same(b.x[3], one.x[1]), "prompt 3 from stream 12")
  T.check(not same(b.x[2], one.x[1]), "prompt 2 differs")
  local d = t:sample()
  T.check(d.B == 1 and d.seed == 0 and d.stream == 0, "defaults n = 1, seed = 0, stream = 0")
end)

T.test("options, curriculum and print", function()
  local t = icl.task{ "linear_regression", n_dims = 8, n_points = 10, noise = 0.5, ood = "skewed",
                      curriculum = { dims = { 4, 8, 1, 100 }, points = { start = 3, ["end"] = 10, inc = 2, interval = 50 } } }
  local o = t:options()
  T.check(o.name == "linear_regression" and o.n_dims == 8 and o.n_points == 10, "options n_dims, n_points")
  T.check(o.noise == 0.5 and o.ood == 1, "options noise and ood")
  T.check(o.dims_start == 4 and o.points_interval == 50, "curriculum options")
  local c = t:curriculum()
  T.check(c.dims == 4 and c.points == 3 and c.step == 0, "curriculum starts at its start")
  T.check(c.schedule.points[1] == 3 and c.schedule.points[2] == 10 and c.schedule.points[3] == 2
    and c.schedule.points[4] == 50, "schedule points {3, 10, 2, 50}")
  T.check(c.schedule.dims[1] == 4 and c.schedule.dims[2] == 8, "schedule dims")
  T.check(t.T == 6 and t.T_max == 20, "T follows the curriculum, T_max its end")
  T.check(t.d_cur == 4 and t.n_cur == 3 and t.step == 0, "d_cur, n_cur, step fields")
  local b = t:sample(2, { seed = seed })
  T.check(b.T == 6 and b.x:shape()[3] == 8, "sample at the current stage (T = 6, d = 8)")
  local zero_tail = 0
  for i = 1, 2 do for s = 1, 6, 2 do for k = 5, 8 do zero_tail = math.max(zero_tail, math.abs(b.x:at(i, s, k))) end end end
  T.check(zero_tail == 0, "coordinates >= d_cur are zero")
  local s = tostring(t)
  T.check(s:find("noise=0.5", 1, true) and s:find("ood=skewed", 1, true) and s:find("curriculum", 1, true),
    "print shows options and curriculum: " .. s)
end)

T.test("constructor errors name the option", function()
  T.check_error(function() icl.task("linear_regression") end, "table expected", "not a table")
  T.check_error(function() local t = icl.task{ "linear_regression" }; t.n_dims = 3 end, "icl.task: fields are read-only (t.n_dims", "assignment")
  T.check_error(function() icl.task{ "nope" } end, "icl.task: unknown task 'nope'", "unknown task")
  T.check_error(function() icl.task{ n_dims = 3 } end, "the task name is required", "no name")
  T.check_error(function() icl.task{ "linear_regression", name = "cot_io" } end, "give the task name once", "two names")
  T.check_error(function() icl.task{ "linear_regression", bogus = 1 } end, "unknown option 'bogus'", "unknown key")
  T.check_error(function() icl.task{ "linear_regression", bogus = "x" } end, "unknown option 'bogus'", "unknown key, string")
  T.check_error(function() icl.task{ "linear_regression", k = 2 } end, "linear_regression has no option 'k'", "inapplicable")
  T.check_error(function() icl.task{ "linear_regression", n_dims = 0 } end, "n_dims must be an integer in [1, 65536] (got 0)", "range")
  T.check_error(function() icl.task{ "linear_regression", n_dims = 2.5 } end, "n_dims must be an integer", "fraction")
  T.check_error(function() icl.task{ "linear_regression", noise = "loud" } end, "noise must be a number (got string)", "type")
  T.check_error(function() icl.task{ "linear_regression", ood = "sideways" } end, "ood must be", "ood name")
  T.check_error(function() icl.task{ "sparse_linear_regression", n_dims = 3, k = 5 } end, "k (5) must be <= n_dims (3)", "cross-field")
  T.check_error(function() icl.task{ "linear_regression", curriculum = 3 } end, "curriculum must be a table", "curriculum type")
  T.check_error(function() icl.task{ "linear_regression", curriculum = { size = { 1, 2 } } } end,
    "curriculum has unknown key size", "curriculum key")
  T.check_error(function() icl.task{ "linear_regression", curriculum = { dims = { 1, 2, 3, 4, 5 } } } end,
    "curriculum.dims has unknown entry 5", "curriculum entry")
  T.check_error(function() icl.task{ "linear_regression", curriculum = { dims = { "a" } } } end,
    "curriculum.dims.start must be a number", "curriculum value")
  T.check_error(function() icl.task{ "linear_regression", n_dims = 5, curriculum = { dims = { 3, 9, 1, 10 } } } end,
    "dims_end (9) must be <= n_dims (5)", "curriculum range")
  T.check_error(function() icl.task{ "linear_regression", fill = print } end, "fill is only for custom tasks", "fill")
  T.check_error(function() icl.task{ "custom", n_dims = 2 } end, "custom needs fill = function(p)", "custom without fill")
  T.check_error(function() icl.task{ "custom", fill = 3 } end, "custom needs fill = function(p)", "fill type")
  T.check_error(function() icl.task{ "custom", fill = print, norm = 0 } end, "norm must be in [1e-12", "custom norm")
  T.check_error(function() icl.task{ "linear_regression", 5, 6 } end, "unexpected positional value", "positional")
end)

T.test("sample errors and closed tasks", function()
  local t = icl.task{ "linear_regression", n_dims = 3, n_points = 4 }
  T.check_error(function() t:sample(0) end, "t:sample: n must be an integer in [1, 65536] (got 0)", "n = 0")
  T.check_error(function() t:sample(1.5) end, "n must be an integer", "n = 1.5")
  T.check_error(function() t:sample("a") end, "n must be an integer", "n = 'a'")
  T.check_error(function() t:sample(1, { sed = 1 }) end, "t:sample: unknown option sed (options: seed, stream)", "typo")
  T.check_error(function() t:sample(1, { seed = -1 }) end, "seed must be a non-negative integer (got -1)", "seed")
  T.check_error(function() t:sample(1, { stream = 0.5 }) end, "stream must be a non-negative integer", "stream")
  T.check_error(function() t:sample(1, { stream = 1 << 62 }) end, "below 2^62", "stream range")
  T.check_error(function() t:sample(1, 3) end, "table expected", "opts type")
  T.check_error(function() t.sample(5) end, "icl.task expected", "wrong self")
  t:close()
  T.check_error(function() t:sample() end, "task was closed", "sample after close")
  T.check_error(function() return t.T end, "task was closed", "field after close")
  T.check_error(function() t:options() end, "task was closed", "options after close")
  T.check_error(function() icl.model{ arch = "mamba", task = t } end, "task was closed", "model from a closed task")
  T.check(tostring(t):find("closed", 1, true), "print of a closed task")
  t:close() -- idempotent
  local u
  do
    local t2 <close> = icl.task{ "linear_regression", n_dims = 3, n_points = 4 }
    u = t2
  end
  T.check_error(function() u:sample() end, "task was closed", "<close> closes the task")
end)

T.test("icl.rng: ranges, determinism, printing", function()
  local a, b = icl.rng(seed, 3), icl.rng(seed, 3)
  local c = icl.rng(seed, 4)
  local differs = false
  for _ = 1, 50 do
    local x = a:normal()
    T.check(x == b:normal(), "same seed and stream, same draws")
    differs = differs or x ~= c:normal()
    local u = a:uniform(2, 5); b:uniform(2, 5)
    T.check(u >= 2 and u < 5, "uniform in [lo, hi)")
    local k = a:below(7); b:below(7)
    T.check(math.type(k) == "integer" and k >= 0 and k < 7, "below in [0, n)")
  end
  T.check(differs, "another stream gives other draws")
  T.check(tostring(a):find("icl.rng", 1, true) and tostring(a):find("live", 1, true), "tostring: " .. tostring(a))
  T.check_error(function() a:below(0) end, "rng:below: n must be in [1,", "below(0)")
  T.check_error(function() a:uniform(3, 1) end, "hi (1.0) must be >= lo (3.0)", "uniform range")
  T.check_error(function() icl.rng(-1) end, "seed must be >= 0", "negative seed")
  T.check_error(function() icl.rng() end, "number expected", "no seed")
end)

-- a custom task: y = w . x with w drawn per prompt from the prompt's rng
local seen = {}
local function linear_fill(p)
  seen[#seen + 1] = { n = p.n_points, d = p.d, d_cur = p.d_cur, index = p.index }
  local w = {}
  for k = 1, p.d do w[k] = p.rng:normal() end
  local x, y = {}, {}
  for i = 1, p.n_points do
    x[i] = {}
    local s = 0
    for k = 1, p.d do x[i][k] = p.rng:normal(); s = s + w[k] * x[i][k] end
    y[i] = s
  end
  return x, y
end

T.test("a custom Lua task: p fields, layout, same seed gives the same batch, rng streams", function()
  seen = {}
  local t = icl.task{ "custom", n_dims = 3, n_points = 5, norm = 3, fill = linear_fill }
  T.check(t.custom and t.name == "custom" and t.n_dims == 3 and t.T == 10 and t.norm == 3, "fields")
  local b1 = t:sample(4, { seed = seed })
  T.check(#seen == 4, "fill called once per prompt")
  for i, s in ipairs(seen) do
    T.check(s.n == 5 and s.d == 3 and s.d_cur == 3 and s.index == i, "p fields of prompt " .. i)
  end
  local b2 = t:sample(4, { seed = seed })
  T.check(same(b1.x, b2.x) and same(b1.y, b2.y), "same seed, identical batch")
  local b3 = t:sample(4, { seed = seed + 1 })
  T.check(not same(b1.x, b3.x), "another seed, another batch")
  -- prompt 2 of stream 0 draws from icl.rng(seed, 1): its first x is draws 4..6
  local r = icl.rng(seed, 1)
  for _ = 1, 3 do r:normal() end
  local worst = 0
  for k = 1, 3 do worst = math.max(worst, math.abs(b1.x:at(2, 1, k) - r:normal())) end
  T.check(worst < 1e-6, "p.rng is rng_make(seed, stream + index - 1) (worst " .. worst .. ")")
  T.check(b1.mask:sum() == 4 * 5 and b1.x:at(1, 2, 1) == b1.y:at(1, 1, 1), "interleaved layout")
  -- a model trains on it like on a built-in task
  local m = icl.model{ arch = "mamba", task = t, d_model = 8, n_layer = 1, d_state = 4, seed = seed }
  T.check(m:forward(b1):shape()[2] == 10, "a model runs on the custom batch")
  -- the core adds noise after fill's draws, from the same generator: still deterministic
  local tn = icl.task{ "custom", n_dims = 3, n_points = 5, noise = 0.5, fill = linear_fill }
  local n1, n2 = tn:sample(2, { seed = seed }), tn:sample(2, { seed = seed })
  local clean = t:sample(2, { seed = seed })
  T.check(same(n1.y, n2.y), "a noisy custom task is deterministic")
  T.check(same(n1.x[1][1], clean.x[1][1]) and not same(n1.y, clean.y), "noise changes y, not x")
end)

T.test("custom fill: tensors, short rows up to d_cur, coroutines", function()
  local t = icl.task{ "custom", n_dims = 2, n_points = 3, fill = function(p)
    local x = icl.zeros(p.n_points, p.d)
    local y = icl.zeros(p.n_points)
    for i = 1, p.n_points do x:set(i, 1, i); x:set(i, 2, p.index); y[i] = 10 * i end
    return x, y
  end }
  local b = t:sample(2)
  T.check(b.x:at(2, 3, 1) == 2 and b.x:at(2, 3, 2) == 2 and b.y:at(2, 5, 1) == 30, "tensor x and y are accepted")
  local tc = icl.task{ "custom", n_dims = 4, n_points = 2, curriculum = { dims = { 2, 4, 1, 10 } },
    fill = function(p) return { { 1, 2 }, { 3, 4 } }, { 1, 2 } end }
  local bc = tc:sample(1)
  T.check(bc.x:at(1, 3, 1) == 3 and bc.x:at(1, 3, 3) == 0, "rows of d_cur numbers are padded with zeros")
  local co = coroutine.wrap(function() return tc:sample(2).x:sum() end)
  T.check(co() == 2 * (1 + 2 + 3 + 4 + 1 + 2), "sampling a custom task inside a coroutine")
end)

T.test("custom fill errors: raised, short, non-number, non-finite, missing y, kept rng", function()
  local mode = "ok"
  local kept, t_self
  local t = icl.task{ "custom", n_dims = 2, n_points = 3, fill = function(p)
    local x = { { 1, 2 }, { 3, 4 }, { 5, 6 } }
    local y = { 1, 2, 3 }
    kept = p.rng
    if mode == "error" then error("my fill broke") end
    if mode == "short" and p.index == 2 then x[3] = nil end
    if mode == "short_y" then y[3] = nil end
    if mode == "word" then y[2] = "two" end
    if mode == "nan" then x[2][2] = 0 / 0 end
    if mode == "row" then x[1] = { 1 } end
    if mode == "rowtype" then x[1] = 7 end
    if mode == "nothing" then return end
    if mode == "no_y" then return x end
    if mode == "close" then p.rng = nil; t_self:close() end
    return x, y
  end }
  t_self = t
  local function fails(m, pattern, what)
    mode = m
    T.check_error(function() t:sample(3, { seed = seed }) end, pattern, what)
  end
  fails("error", "t:sample: task fill: ", "an error in fill")
  mode = "error"
  local _, err = pcall(t.sample, t, 2)
  T.check(err:find("my fill broke", 1, true) and err:find("stack traceback", 1, true), "message and traceback: " .. err)
  fails("short", "prompt 2: x has 2 rows, expected n_points = 3", "too few rows, named by prompt")
  fails("short_y", "prompt 1: y has 2 numbers, expected n_points = 3", "too few y")
  fails("word", "prompt 1: y[2] is a string, not a number", "non-number y")
  fails("nan", "prompt 1: x[2][2] is", "NaN x")
  fails("row", "prompt 1: x[1] has 1 numbers, expected d = 2", "short row")
  fails("rowtype", "prompt 1: x[1] is a number, expected a table of 2 numbers", "row type")
  fails("nothing", "prompt 1: fill returned nothing", "no return")
  fails("no_y", "prompt 1: fill returned no y", "no y")
  fails("close", "t:close: the task is sampling", "closing the task inside its own fill")
  mode = "ok"
  local b = t:sample(2, { seed = seed })
  T.check(b.x:at(1, 1, 1) == 1, "the task works again after failed fills")
  T.check_error(function() kept:normal() end, "fill call that has returned", "p.rng kept past the call")
  T.check(tostring(kept):find("expired", 1, true), "an expired rng prints as expired")
  local m = icl.model{ arch = "mamba", task = t, d_model = 8, n_layer = 1, d_state = 4 }
  mode = "error"
  T.check_error(function() m:forward(t:sample(1)) end, "my fill broke", "the error reaches a caller that samples")
  mode = "ok"
end)

T.finish()
