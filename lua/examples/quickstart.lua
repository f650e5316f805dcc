-- quickstart.lua - build a model from a preset, train it 200 steps,
-- evaluate it against the classical baselines, print everything.
--
--   iclplay run lua/examples/quickstart.lua [arch] [steps]
--   e.g. iclplay run lua/examples/quickstart.lua mamba 500
local arch = arg[1] or "mambaformer"
local steps = tonumber(arg[2]) or 200

-- Linear regression (SPEC 2.1) at playground scale: d = 5, 20 examples per
-- prompt, a 64-wide model of 4 layers, Adam at lr 1e-3, batch 64.
local p = icl.presets.linear{ arch = arch }
local m, t, tr = icl.build(p)
print(m)                                   -- the blocks and their parameter counts
print(t)

-- Train; every 50 steps the callback prints the loss. Ctrl-C stops cleanly.
local s = tr:run{
  max_steps = steps,
  every = 50,
  callback = function(tr) print(string.format("step %4d  loss %.4f", tr.steps, tr.loss)) end,
}
print(string.format("%d steps in %.1f s (%.0f steps/s), stopped by %s", s.steps, s.time_s, s.steps_per_s, s.reason))

-- The model and the paper's baselines on the same 256 held-out prompts:
-- squared error / d against the number of in-context examples.
local e = icl.eval(m, t, { prompts = 256 })
print(e)
local model, lsq = e:curve("model"), e:curve("least_squares")
print(string.format("with %d examples: model %.3f, least squares %.3f", #model.mean - 1, model.mean[#model.mean],
  lsq.mean[#lsq.mean]))
