-- test_model.lua - icl.model, icl.load and every model method: fields,
-- printing, parameter views (writes reach the model, views outlive a dropped
-- model, raise after m:close), forward, the probes of a mambaformer, init,
-- save/load, and every error path.
local T = dofile("tests/lua/testlib.lua")
local seed = T.seed

-- small sizes: every test runs in well under a second
local SMALL = { d_model = 16, n_layer = 2, n_head = 2, d_state = 4, seed = seed }
local function small(extra)
  local o = {}
  for k, v in pairs(SMALL) do o[k] = v end
  for k, v in pairs(extra) do o[k] = v end
  return icl.model(o)
end

local task = icl.task{ "linear_regression", n_dims = 3, n_points = 6 }

local function max_abs_diff(a, b)
  local worst = 0
  local fa, fb = a:copy(), b:copy()
  local n = fa:numel()
  local sa, sb = fa:shape(), fb:shape()
  -- flatten through totable of 1-D copies
  local function flat(t)
    local out, tab = {}, t:totable()
    local function walk(x) if type(x) == "table" then for _, y in ipairs(x) do walk(y) end else out[#out + 1] = x end end
    walk(tab)
    return out
  end
  local xa, xb = flat(fa), flat(fb)
  if #xa ~= #xb then return math.huge end
  for i = 1, n do worst = math.max(worst, math.abs(xa[i] - xb[i])) end
  for i = 1, #sa do if sa[i] ~= sb[i] then return math.huge end end
  return worst
end

T.test("every architecture builds; fields agree with the spec and the parameter table", function()
  for _, arch in ipairs{ "transformer", "mamba", "s4mamba", "hybrid", "mambaformer" } do
    local m = small{ arch = arch, task = task }
    T.check(m.arch == arch, arch .. ": m.arch")
    T.check(m.d_model == 16 and m.n_layer == 2, arch .. ": d_model, n_layer")
    T.check(m.n_dims == 3 and m.n_out == 1, arch .. ": n_dims and n_out from the task")
    local total = 0
    for _, name in ipairs(m:param_names()) do total = total + m:param(name):numel() end
    T.check(total == m.n_params, arch .. ": parameter views cover n_params (" .. total .. " vs " .. m.n_params .. ")")
    local blocks, sum = m:blocks(), 0
    T.check(#blocks == m.n_blocks, arch .. ": #m:blocks() == n_blocks")
    for _, b in ipairs(blocks) do sum = sum + b.params end
    T.check(sum < m.n_params and sum > 0, arch .. ": block parameters are most of the model")
    T.check(#m:grad_norms() == m.n_blocks + 1, arch .. ": grad_norms has n_blocks + 1 entries")
    local s = m.spec
    T.check(s.arch == arch and s.d_model == 16 and #s.blocks == m.n_blocks, arch .. ": m.spec")
  end
  local mf = small{ arch = "mambaformer", task = task }
  local kinds, layers = {}, {}
  for i, b in ipairs(mf:blocks()) do kinds[i] = b.kind; layers[i] = b.layer end
  T.check(table.concat(kinds, ",") == "mamba,attn,mamba", "mambaformer blocks: " .. table.concat(kinds, ","))
  T.check(table.concat(layers, ",") == "1,1,2", "per-kind layer numbers: " .. table.concat(layers, ","))
  local c = small{ arch = "custom", blocks = { "mamba", "attn", "mlp", "s4mamba" }, task = task }
  T.check(c.arch == "custom" and c.n_blocks == 4 and c:blocks()[3].kind == "mlp", "custom block list")
  local c2 = small{ blocks = { "mlp" }, task = task }
  T.check(c2.arch == "custom" and c2.n_blocks == 1, "blocks without arch means custom")
end)

T.test("task = t sets widths, vocabulary and enough positions", function()
  local long = icl.task{ "linear_regression", n_dims = 4, n_points = 200 } -- T_max 400 > 256 default rows
  local tr = small{ arch = "transformer", task = long }
  T.check(tr.n_positions >= long.T_max, "transformer positions cover T_max (" .. tr.n_positions .. ")")
  T.check(tr.n_dims == 4, "n_dims from the task")
  local mq = icl.task{ "token_mqar", vocab = 64, seq_len = 16, kappa = 2 }
  local tm = small{ arch = "mamba", task = mq }
  T.check(tm.vocab == 64 and tm.n_out == 64, "token task sets vocab and n_out")
  local vm = icl.task{ "vector_mqar", n_dims = 4, kappa = 3, queries = 2 }
  T.check(small{ arch = "hybrid", task = vm }.n_out == 4, "vector_mqar predicts d numbers")
  local m = small{ arch = "mamba", task = task }
  T.check(m.n_positions == 0, "mamba has no positions")
end)

T.test("print(m) shows the arch, the blocks with parameter counts and the total", function()
  local m = small{ arch = "mambaformer", task = task }
  local s = tostring(m)
  T.check(s:find("mambaformer", 1, true), "arch")
  T.check(s:find(tostring(m.n_params), 1, true), "total parameters " .. m.n_params)
  for _, b in ipairs(m:blocks()) do
    T.check(s:find(b.kind, 1, true) and s:find(tostring(b.params), 1, true), "block " .. b.kind .. " " .. b.params)
  end
  T.check(s:find("d_model 16", 1, true) and s:find("n_head 2", 1, true), "sizes: " .. s)
  T.check(s:find("\n", 1, true), "one line per block")
end)

T.test("m.spec rebuilds the same model", function()
  local m = small{ arch = "hybrid", task = task }
  local m2 = icl.model(m.spec)
  T.check(m2.n_params == m.n_params, "same parameter count")
  local worst = 0
  for _, name in ipairs(m:param_names()) do worst = math.max(worst, max_abs_diff(m:param(name), m2:param(name))) end
  T.check(worst == 0, "same seed, same parameters (worst " .. worst .. ")")
end)

T.test("constructor errors name the field", function()
  T.check_error(function() icl.model("mamba") end, "table expected", "not a table")
  T.check_error(function() local m = small{ arch = "mamba" }; m.d_model = 8 end, "icl.model: fields are read-only (m.d_model", "assignment")
  T.check_error(function() icl.model{ arch = "mamba", d_modle = 8 } end, "icl.model: unknown field 'd_modle'", "typo")
  T.check_error(function() icl.model{ arch = "mamba", d_model = -1 } end,
    "icl.model: d_model must be an integer in [1, 8192] (got -1)", "negative d_model")
  T.check_error(function() icl.model{ arch = "mamba", d_model = 8.5 } end, "d_model must be an integer", "fraction")
  T.check_error(function() icl.model{ arch = "mamba", d_model = "big" } end, "d_model must be a number (got string)", "string")
  T.check_error(function() icl.model{ arch = "mamba", d_modle = "big" } end, "unknown field 'd_modle'", "typo with a string")
  T.check_error(function() icl.model{ arch = "lstm" } end, "unknown architecture 'lstm'", "arch")
  T.check_error(function() icl.model{ d_model = 8 } end, "arch is required", "no arch")
  T.check_error(function() icl.model{ arch = 3 } end, "arch must be a string (got number)", "arch type")
  T.check_error(function() icl.model{ "mamba", arch = "hybrid" } end, "give the architecture once", "two archs")
  T.check_error(function() icl.model{ arch = "transformer", n_layer = 3 } end, "must be even (got 3)", "odd n_layer")
  T.check_error(function() icl.model{ arch = "custom" } end, "needs blocks", "custom without blocks")
  T.check_error(function() icl.model{ arch = "custom", blocks = { "mamba", "rnn" } } end,
    "blocks[2] must be one of attn, mlp, mamba, s4mamba (got rnn)", "bad block")
  T.check_error(function() icl.model{ arch = "custom", blocks = "mamba" } end, "blocks must be a list", "blocks type")
  T.check_error(function() icl.model{ arch = "custom", blocks = {} } end, "blocks must list 1 to", "empty blocks")
  T.check_error(function() icl.model{ arch = "mamba", blocks = { "attn" } } end, "does not match arch 'mamba'", "mismatch")
  T.check_error(function() icl.model{ arch = "transformer", d_model = 10, n_head = 3 } end, "divisible by n_head", "heads")
  T.check_error(function() icl.model{ arch = "mamba", task = task, n_dims = 7 } end,
    "n_dims = 7 but the task's tokens have width 3", "task mismatch")
  T.check_error(function() icl.model{ arch = "mamba", task = task, n_out = 2 } end, "n_out = 2 but the task predicts 1",
    "n_out mismatch")
  T.check_error(function() icl.model{ arch = "transformer", task = task, n_positions = 4 } end,
    "n_positions = 4 is fewer than the task's longest prompt (12 tokens)", "positions")
  T.check_error(function() icl.model{ arch = "mamba", task = "t" } end, "icl.model: task must be an icl.task (got string)", "task type")
  T.check_error(function() icl.model{ "mamba", 16 } end, "unexpected positional value", "positional")
  T.check_error(function() icl.model{ arch = "mamba", init = "xavier" } end, "init must be \"gpt2\" or \"mixer\"", "init")
  T.check_error(function() icl.model{ arch = "mamba", seed = -3 } end, "seed must be a non-negative integer", "seed")
  local ok = pcall(icl.model, { arch = "mamba", d_model = 8, blocks = { "mamba", "mamba", "mamba", "mamba" } })
  T.check(ok, "a named arch with its own block list is accepted")
end)

T.test("parameter views write into the model: the forward output changes", function()
  local m = small{ arch = "mambaformer", task = task }
  local b = task:sample(2, { seed = seed })
  local y0 = m:forward(b)
  local bias = m:param("read_out.bias")
  T.check(bias.is_view and bias:numel() == 1, "read_out.bias is a 1-element view")
  local before = bias[1]
  bias[1] = before + 5
  T.near(m:param("read_out.bias")[1], before + 5, 1e-6, "a fresh view sees the write")
  local y1 = m:forward(b)
  -- the read-out bias adds to every prediction: y1 = y0 + 5 exactly up to float rounding
  local worst = 0
  for i = 1, 2 do for t = 1, b.T do worst = math.max(worst, math.abs(y1:at(i, t, 1) - y0:at(i, t, 1) - 5)) end end
  T.check(worst < 1e-5, "forward moved by exactly the bias change (worst " .. worst .. ")")
  -- a write deep inside (a Mamba weight) changes the output too
  local w = m:param("blocks.0.mamba.in_proj.weight")
  w:set(1, 1, w:at(1, 1) + 1.0)
  local y2 = m:forward(b)
  T.check(max_abs_diff(y1, y2) > 1e-6, "changing an in_proj weight changes the forward")
  local g = m:grad("blocks.0.mamba.in_proj.weight")
  local gs, ws = g:shape(), w:shape()
  T.check(gs[1] == ws[1] and gs[2] == ws[2] and g:norm() == 0, "gradient view: same shape, zero before training")
end)

T.test("forward: shapes, determinism, tensor input and errors", function()
  local m = small{ arch = "mamba", task = task }
  local b = task:sample(3, { seed = seed + 1 })
  local y = m:forward(b)
  local s = y:shape()
  T.check(s[1] == 3 and s[2] == b.T and s[3] == 1, "output (B, T, O)")
  T.check(max_abs_diff(y, m:forward(b.x)) == 0, "a bare x tensor gives the same output")
  T.check(max_abs_diff(y, m:forward(b)) == 0, "forward is deterministic")
  local big = task:sample(5, { seed = seed + 2 })
  T.check(m:forward(big):shape()[1] == 5, "a larger batch reserves more activations")
  T.check_error(function() m:forward(5) end, "m:forward: expects a batch from t:sample() or a tensor (got number)", "type")
  T.check_error(function() m:forward{} end, "the batch has no x", "empty batch")
  T.check_error(function() m:forward{ x = 3 } end, "batch.x must be a tensor (got number)", "x type")
  T.check_error(function() m:forward(icl.zeros(2, 4, 7)) end, "x has token width 7 but the model reads n_dims = 3", "width")
  T.check_error(function() m:forward(icl.zeros(2, 4)) end, "x must be a (B, T, d) tensor", "dims")
  local tr = small{ arch = "transformer", task = task, n_positions = 12 }
  T.check_error(function() tr:forward(icl.zeros(1, 13, 3)) end, "13 tokens per prompt exceed the model's 12 learned positions", "positions")
  local mq = icl.task{ "token_mqar", vocab = 32, seq_len = 8, kappa = 2 }
  local tm = small{ arch = "mamba", task = mq }
  local tb = mq:sample(2, { seed = seed })
  T.check(tb.tok ~= nil and tb.x == nil, "token batch has tok")
  local ty = tm:forward(tb)
  T.check(ty:shape()[3] == 32, "token model outputs vocab logits")
  T.check_error(function() tm:forward(b) end, "the batch has no tok", "continuous batch to a token model")
  local bad = icl.zeros(1, 4)
  bad:set(1, 2, 32)
  T.check_error(function() tm:forward(bad) end, "token id 32.0 at position 2 is not an integer in [0, 32)", "token range")
end)

T.test("probes of a mambaformer: attention rows sum to 1, ssm_state (T, E, N), delta > 0", function()
  local m = small{ arch = "mambaformer", n_layer = 4, task = task }
  T.check_error(function() m:attention(1, 1) end, "m:attention: no forward pass yet", "probe before forward")
  local b = task:sample(2, { seed = seed + 3 })
  m:forward(b)
  local Tn = b.T
  for layer = 1, 2 do
    for head = 1, 2 do
      local a = m:attention(layer, head, 2)
      local s = a:shape()
      T.check(s[1] == Tn and s[2] == Tn, "attention (T, T)")
      local worst, upper = 0, 0
      for i = 1, Tn do
        local row = 0
        for j = 1, Tn do
          local p = a:at(i, j)
          row = row + p
          if j > i then upper = math.max(upper, math.abs(p)) end
        end
        worst = math.max(worst, math.abs(row - 1))
      end
      T.check(worst < 1e-5, string.format("layer %d head %d rows sum to 1 (worst %.2g)", layer, head, worst))
      T.check(upper == 0, "causal: nothing above the diagonal")
    end
  end
  local E, N = 2 * 16, 4
  for layer = 1, 3 do
    local st = m:ssm_state(layer)
    local s = st:shape()
    T.check(s[1] == Tn and s[2] == E and s[3] == N, string.format("ssm_state(%d) is (T, E, N) = (%d, %d, %d)", layer, s[1], s[2], s[3]))
    T.check(st:norm() > 0, "states are not all zero")
    local p = m:ssm_params(layer, 1)
    local ds, bs, cs = p.delta:shape(), p.B:shape(), p.C:shape()
    T.check(ds[1] == Tn and ds[2] == E and bs[1] == Tn and bs[2] == N and cs[2] == N, "delta (T, E), B and C (T, N)")
    T.check(p.delta:min() > 0, "delta > 0 (softplus), min " .. p.delta:min())
  end
  T.check(max_abs_diff(m:ssm_state(1, 1), m:ssm_state(1, 2)) > 0, "prompt 2 has other states than prompt 1")
  T.check_error(function() m:attention(3, 1) end, "m:attention: layer 3 out of range (this model has 2 attention layers)", "layer")
  T.check_error(function() m:attention(0, 1) end, "layer 0 out of range", "layer 0")
  T.check_error(function() m:attention(1, 3) end, "m:attention: head 3 out of range (this model has 2 heads)", "head")
  T.check_error(function() m:attention(1) end, "m:attention: head is required", "no head")
  T.check_error(function() m:attention() end, "m:attention: layer is required", "no layer")
  T.check_error(function() m:attention(1, 1, 3) end, "prompt 3 out of range (the last forward had 2 prompts)", "prompt")
  T.check_error(function() m:attention(1.5, 1) end, "layer must be an integer (got 1.5)", "fractional layer")
  T.check_error(function() m:ssm_state(4) end, "m:ssm_state: layer 4 out of range (this model has 3 mamba layers)", "ssm layer")
  T.check_error(function() m:ssm_params(1, 0) end, "m:ssm_params: prompt 0 out of range", "ssm prompt")
  local tr = small{ arch = "transformer", task = task }
  tr:forward(b)
  T.check_error(function() tr:ssm_state(1) end, "this model has 0 mamba layers", "no mamba layers")
  local mb = small{ arch = "mamba", task = task }
  mb:forward(b)
  T.check_error(function() mb:attention(1, 1) end, "this model has 0 attention layers", "no attention layers")
end)

T.test("init re-draws the parameters from a seed", function()
  local m = small{ arch = "mamba", task = task }
  local w0 = m:param("read_in.weight"):copy()
  T.check(not m.dirty, "a new model is clean")
  m:init(seed + 7)
  T.check(m.dirty, "init marks the model dirty")
  T.check(max_abs_diff(w0, m:param("read_in.weight")) > 0, "a new seed gives new parameters")
  m:init(seed)
  T.check(max_abs_diff(w0, m:param("read_in.weight")) == 0, "the old seed gives the old parameters")
  m:init()
  T.check(max_abs_diff(w0, m:param("read_in.weight")) == 0, "init() reuses the model's seed")
  T.check_error(function() m:init(-1) end, "m:init: seed must be a non-negative integer", "bad seed")
end)

T.test("save and icl.load round-trip the weights", function()
  local m = small{ arch = "hybrid", task = task }
  m:param("read_out.bias")[1] = 0.25
  local path = os.tmpname()
  m:save(path)
  T.check(not m.dirty, "save clears dirty")
  local m2 = icl.load(path)
  os.remove(path)
  T.check(m2.arch == "hybrid" and m2.n_params == m.n_params, "same arch and size")
  T.check(m2:param("read_out.bias")[1] == 0.25, "the edited weight came back")
  local b = task:sample(2, { seed = seed })
  T.check(max_abs_diff(m:forward(b), m2:forward(b)) == 0, "same predictions")
  T.check_error(function() icl.load("/nonexistent/dir/x.safetensors") end, "icl.load: ", "missing file")
  T.check_error(function() icl.load() end, "string expected", "no path")
  T.check_error(function() m:save("/nonexistent/dir/x.safetensors") end, "m:save: ", "unwritable path")
  local junk = os.tmpname()
  local f = io.open(junk, "w"); f:write("not a checkpoint"); f:close()
  T.check_error(function() icl.load(junk) end, "icl.load: ", "not a checkpoint")
  os.remove(junk)
end)

T.test("close: later use raises 'model was closed', views raise instead of reading freed memory", function()
  local m = small{ arch = "mamba", task = task }
  local v = m:param("read_in.weight")
  local g = m:grad("read_in.bias")
  local row = v[1]
  m:close()
  T.check_error(function() m:forward(task:sample(1)) end, "model was closed", "forward")
  T.check_error(function() return m.arch end, "model was closed", "field")
  T.check_error(function() m:param("read_in.weight") end, "model was closed", "param")
  T.check_error(function() m:attention(1, 1) end, "model was closed", "probe")
  T.check_error(function() m:save("never-written.safetensors") end, "model was closed", "save")
  T.check_error(function() return v[1] end, "closed", "reading a view")
  T.check_error(function() return v:sum() end, "closed", "sum of a view")
  T.check_error(function() v:set(1, 1, 0) end, "closed", "writing a view")
  T.check_error(function() g[1] = 0 end, "closed", "writing a gradient view")
  T.check_error(function() return row[1] end, "closed", "a row of a view")
  T.check_error(function() return v:copy() end, "closed", "copying a view")
  T.check(tostring(v):find("closed", 1, true), "printing a dead view says so and does not crash")
  T.check(tostring(m):find("closed", 1, true), "printing a closed model")
  m:close() -- idempotent
  T.check(#v == v:shape()[1] and v:numel() == 16 * 3, "shape queries still work on a dead view")
  do
    local m2 <close> = small{ arch = "mamba", task = task }
    v = m2:param("read_in.bias")
  end
  T.check_error(function() return v[1] end, "closed", "a <close> variable closes the model")
  T.check_error(function() small{ arch = "mamba", task = task }.forward(task) end, "icl.model expected", "wrong self")
end)

T.test("a view keeps a dropped model alive across collectgarbage", function()
  local expect, expect_g
  -- read_in.weight starts the parameter block: if the block were freed, the
  -- allocator's own bookkeeping and the same-sized models below would overwrite it
  local v, g = (function()
    local m = small{ arch = "mambaformer", task = task }
    expect = m:param("read_in.weight"):copy()
    expect_g = m:param("blocks.1.attn.qkv.weight"):copy()
    return m:param("read_in.weight"), m:param("blocks.1.attn.qkv.weight")
  end)()
  collectgarbage(); collectgarbage()
  local junk = {}
  for i = 1, 20 do junk[i] = small{ arch = "mambaformer", task = task, seed = seed + i } end
  T.check(max_abs_diff(v, expect) == 0, "view values intact after the model was dropped and collected")
  T.check(max_abs_diff(g, expect_g) == 0, "a view deep inside the block too")
  v:set(1, 1, 3.5)
  T.check(v:at(1, 1) == 3.5, "the view is still writable")
  junk = nil
  collectgarbage()
end)

T.finish()
