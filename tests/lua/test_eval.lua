-- test_eval.lua - icl.eval and its result object: a briefly trained tiny
-- model beats the zero predictor next to least squares on the same prompts;
-- fields, curves, printing, CSV and SVG output; baselines-only evaluation;
-- every option error and mismatch raises a message naming it.
--   iclplay run tests/lua/test_eval.lua [--seed N] [--only NAME]
local T = dofile("tests/lua/testlib.lua")
if icl.threads then icl.threads(1) end -- tiny models: one thread is fastest and never oversubscribed

local base = os.tmpname()
local made = { base }
local function tmp(suffix)
  local p = base .. suffix
  made[#made + 1] = p
  return p
end
local function read_all(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
local function mean_of(list, from)
  local s, n = 0, 0
  for i = from or 1, #list do
    if list[i] == list[i] then s, n = s + list[i], n + 1 end
  end
  return s / n
end

-- Linear regression with d = 2 and 6 examples. 300 Adam steps (lr 3e-3,
-- batch 16) bring a d_model 16 MambaFormer to a mean normalised error of
-- about 0.6 (measured: 0.64 at 300 steps, 0.56 at 600); the zero predictor
-- scores 1 (e.reference).
local m = icl.model{ arch = "mambaformer", n_dims = 2, d_model = 16, n_layer = 2, n_head = 2, seed = T.seed }
local t = icl.task{ "linear_regression", n_dims = 2, n_points = 6 }
local tr = icl.trainer{ model = m, task = t, batch = 16, lr = 3e-3, seed = T.seed }
tr:run{ max_steps = 300 }

T.test("a trained tiny model beats the zero predictor; least squares is there", function()
  local e = icl.eval(m, t, { prompts = 512 })
  T.check(e.names[1] == "model", "curve 1 is the model")
  local has = {}
  for _, n in ipairs(e.names) do has[n] = true end
  T.check(has.least_squares and has.knn and has.averaging, "the task's default baselines")
  T.check(e.metric == "sqerr" and e.reference == 1 and e.n_prompts == 512 and e.positions == 6, "fields")
  local model = mean_of(e:curve("model").mean)
  local ls = e:curve("least_squares").mean
  print(string.format("    mean error over positions: model %.3f (zero predictor 1), least squares at k >= 2: %.2g",
                      model, mean_of(ls, 3)))
  T.check(model < 0.8 * e.reference, string.format("the model (%.3f) beats the zero predictor", model))
  T.check(mean_of(ls, 3) < 1e-3, "least squares solves d = 2 from 2 examples on")
  T.check(ls[1] > 0.5, "nobody can predict the first example")
end)

T.test("curves: mean, std, band and counts per position", function()
  local e = icl.eval(m, t, { prompts = 128, baselines = { "least_squares", "averaging" }, seed = 3 })
  T.check(#e.names == 3 and e.names[2] == "least_squares" and e.names[3] == "averaging", "names in order")
  local c = e:curve("model")
  T.check(#c.mean == 6 and #c.std == 6 and #c.lo == 6 and #c.hi == 6 and #c.count == 6, "one value per position")
  for p = 1, 6 do
    T.check(c.lo[p] <= c.mean[p] and c.mean[p] <= c.hi[p], "the band contains the mean at " .. p)
    T.check(c.std[p] > 0 and c.count[p] == 128, "std and count at " .. p)
  end
  T.check(e:curve().mean[1] == c.mean[1], "e:curve() is the model's")
  T.check_error(function() e:curve("lasso") end, "e:curve: no curve 'lasso' (curves: model, least_squares, averaging)")
  -- the same seed gives the same numbers; another seed other prompts
  local again = icl.eval(m, t, { prompts = 128, baselines = { "least_squares", "averaging" }, seed = 3 })
  T.check(again:curve().mean[4] == c.mean[4] and again:curve().hi[4] == c.hi[4], "reproducible")
  local other = icl.eval(m, t, { prompts = 128, baselines = {}, seed = 4 })
  T.check(other:curve().mean[4] ~= c.mean[4] and #other.names == 1, "another seed, no baselines")
end)

T.test("print(e) shows a per-position table of every curve", function()
  local e = icl.eval(m, t, { prompts = 64 })
  local s = tostring(e)
  T.check(s:find("icl.evalresult", 1, true) and s:find("64 prompts", 1, true) and s:find("sqerr", 1, true), s)
  T.check(s:find("linear_regression", 1, true), "names the task")
  local header = s:match("\n([^\n]*least_squares[^\n]*)\n")
  T.check(header and header:find("model", 1, true) and header:find("knn", 1, true), "a header row with every curve")
  local rows = 0
  for line in s:gmatch("\n%s+%d+%s[^\n]*") do rows = rows + 1 end
  T.check(rows == 6, "one row per position, got " .. rows)
  local long = icl.task{ "linear_regression", n_dims = 2, n_points = 30 }
  local s2 = tostring(icl.eval(nil, long, { prompts = 64, baselines = { "averaging" } }))
  T.check(s2:find("...", 1, true) and s2:find("\n%s+29%s"), "a long curve is cut in the middle: " .. s2)
end)

T.test("e:csv and e:svg write files", function()
  local e = icl.eval(m, t, { prompts = 64, baselines = { "least_squares" } })
  local csv = tmp(".csv")
  T.check(e:csv(csv) == csv, "e:csv returns the path")
  local text = read_all(csv) or ""
  local lines = {}
  for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
  T.check(lines[1] and lines[1]:find("^position,model_mean,model_std,model_lo,model_hi,least_squares_mean"), lines[1])
  T.check(#lines == 7, "header + 6 positions, got " .. #lines)
  local first = {}
  for f in (lines[2] .. ","):gmatch("([^,]*),") do first[#first + 1] = f end
  T.check(tonumber(first[1]) == 0 and math.abs(tonumber(first[2]) - e:curve().mean[1]) < 1e-6, "row of position 0")
  local svg = tmp(".svg")
  T.check(e:svg(svg, "tiny model") == svg, "e:svg returns the path")
  local pic = read_all(svg) or ""
  T.check(pic:find("<svg", 1, true) and pic:find("</svg>", 1, true), "an SVG document")
  T.check(pic:find("tiny model", 1, true) and pic:find("least_squares", 1, true), "title and legend")
  local svg2 = tmp(".default.svg")
  e:svg(svg2)
  T.check((read_all(svg2) or ""):find("linear_regression", 1, true), "the default title names the task")
  T.check_error(function() e:csv("/nonexistent-dir/e.csv") end, "/nonexistent-dir/e.csv")
  T.check_error(function() e:svg("/nonexistent-dir/e.svg") end, "/nonexistent-dir/e.svg")
  T.check_error(function() e:csv() end, "bad argument")
end)

T.test("baselines only (m = nil)", function()
  local e = icl.eval(nil, t, { prompts = 64, baselines = { "least_squares", "knn" } })
  T.check(#e.names == 2 and e.names[1] == "least_squares", "no model curve")
  T.check_error(function() icl.eval(nil, t, { baselines = {} }) end, "nothing to evaluate")
  local parity = icl.task{ "sparse_parity", n_dims = 6, k = 2, n_points = 10 }
  local ep = icl.eval(nil, parity, { prompts = 64 })
  T.check(ep.names[1] == "chance" and ep.metric == "sign_acc" and ep.reference == 0.5, "parity: chance, sign accuracy")
end)

T.test("option errors and mismatches name the problem", function()
  local cases = {
    { function() icl.eval(m, t, { prompts = 0 }) end, "icl.eval: prompts must be an integer in [1, 10000000] (got 0)" },
    { function() icl.eval(m, t, { prompts = "many" }) end, "icl.eval: prompts must be an integer" },
    { function() icl.eval(m, t, { prompt = 10 }) end, "icl.eval: unknown field 'prompt'" },
    { function() icl.eval(m, t, { seed = -1 }) end, "icl.eval: seed must be an integer >= 0" },
    { function() icl.eval(m, t, { batch = 0 }) end, "icl.eval: batch must be" },
    { function() icl.eval(m, t, { baselines = "knn" }) end, "icl.eval: baselines must be a list of names" },
    { function() icl.eval(m, t, { baselines = { 3 } }) end, "icl.eval: baselines[1] must be a name (got number)" },
    { function() icl.eval(m, t, { baselines = { "oracle" } }) end, "oracle" },
    { function() icl.eval(m, t, { baselines = { "knn", "knn" } }) end, "listed twice" },
    { function() icl.eval(m, t, { metric = "bogus" }) end, "icl.eval: metric must be one of sqerr, sign_acc" },
    { function() icl.eval(m, t, { metric = "sign_acc" }) end, "does not apply" },
    { function() icl.eval(m, t, 5) end, "icl.eval: options must be a table (got number)" },
    { function() icl.eval(t, t) end, "icl.eval: argument 1 must be an icl.model or nil (got icl.task)" },
    { function() icl.eval(m, m) end, "icl.eval: argument 2 must be an icl.task (got icl.model)" },
    { function() icl.eval(m) end, "icl.eval: argument 2 must be an icl.task (got no value)" },
  }
  for i, c in ipairs(cases) do T.check_error(c[1], c[2], "case " .. i) end
  local wide = icl.task{ "linear_regression", n_dims = 4, n_points = 6 }
  local _, err = T.check_error(function() icl.eval(m, wide, { prompts = 64 }) end, "icl.eval: ")
  T.check(err and err:find("width 4", 1, true) and err:find("n_dims is 2", 1, true),
          "a model/task mismatch names both: " .. tostring(err))
  local m2 = icl.model{ arch = "mamba", n_dims = 2, d_model = 16, n_layer = 2 }
  m2:close()
  T.check_error(function() icl.eval(m2, t) end, "icl.eval: model was closed")
  local t2 = icl.task{ "linear_regression", n_dims = 2, n_points = 6 }
  t2:close()
  T.check_error(function() icl.eval(m, t2) end, "icl.eval: task was closed")
  icl.interrupt()
  T.check_error(function() icl.eval(m, t, { prompts = 256 }) end, "interrupted")
  T.check(icl.eval(m, t, { prompts = 64 }).n_prompts == 64, "the interrupt flag was cleared")
end)

T.test("results are freed by the collector", function()
  for _ = 1, 20 do icl.eval(nil, t, { prompts = 32, baselines = { "averaging" } }) end
  collectgarbage()
  collectgarbage()
  T.check(true, "no crash")
end)

for _, p in ipairs(made) do os.remove(p) end
T.finish()
