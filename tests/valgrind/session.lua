-- session.lua - a short headless training session for `make valgrind`
-- (run by `make test` under valgrind memcheck): every architecture kind is
-- built, trained a few steps, evaluated against its baselines, saved,
-- loaded and resumed, and a custom Lua task is sampled, so memcheck sees
-- the engine, the tasks, the trainer, checkpoints and the Lua binding.
-- Small on purpose: memcheck runs about 50x slower than the CPU.
local icl = require("icl")
local dir = os.getenv("TMPDIR") or "/tmp"
local path = string.format("%s/iclplay-valgrind-%d.safetensors", dir, math.random(1, 1 << 30))

local t = icl.task{ "linear_regression", n_dims = 3, n_points = 6 }
for _, arch in ipairs{ "transformer", "mamba", "s4mamba", "hybrid", "mambaformer" } do
  local m = icl.model{ arch = arch, n_dims = 3, d_model = 16, n_layer = 2, n_head = 2 }
  local tr = icl.trainer{ model = m, task = t, batch = 4, lr = 1e-3 }
  tr:step(2)
  assert(tr.steps == 2 and tr.loss == tr.loss, arch .. ": two finite steps")
end

local m = icl.model{ arch = "mambaformer", n_dims = 3, d_model = 16, n_layer = 2, n_head = 2 }
local tr = icl.trainer{ model = m, task = t, batch = 4 }
tr:run{ max_steps = 3 }
local r = tr:eval{ prompts = 8 }
assert(r, "an evaluation")
local a = m:attention(1, 1, 1)
local s = m:ssm_state(1, 1)
assert(a and s, "probes")
tr:save(path)
local tr2 = icl.resume(path)
tr2:step(1)
assert(tr2.steps == 4, "resumed and stepped")
local loaded = icl.load(path)
assert(loaded.n_params == m.n_params, "loaded the same model")
os.remove(path)

local custom = icl.task{ "custom", n_dims = 2, n_points = 2, fill = function(p)
  return { { 1, 2 }, { 3, p.index } }, { 1, 2 }
end }
assert(custom:sample(2), "a custom task's batch")
print("valgrind session: ok")
