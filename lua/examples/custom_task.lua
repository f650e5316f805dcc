-- custom_task.lua - an in-context task written in Lua, trained and
-- evaluated like a built-in one.
--
-- The task: y = |w . x| for a fresh w per prompt, a function no linear
-- learner fits, so the model has to do better than least squares.
--
--   iclplay run lua/examples/custom_task.lua [steps]
local steps = tonumber(arg[1]) or 300
local d, n = 4, 16

-- fill(p) returns the prompt's x (n_points rows of d numbers) and y (n_points
-- numbers). p.rng is this prompt's own generator: the same seed and stream
-- give the same prompt, so training and evaluation stay reproducible.
local function fill(p)
  local w = {}
  for j = 1, p.d do w[j] = p.rng:normal() end
  local x, y = {}, {}
  for i = 1, p.n_points do
    local xi, dot = {}, 0
    for j = 1, p.d do
      xi[j] = p.rng:normal()
      dot = dot + w[j] * xi[j]
    end
    x[i], y[i] = xi, math.abs(dot)
  end
  return x, y
end

-- norm makes the zero predictor score about 1: E[|w.x|^2] = d.
local t = icl.task{ "custom", n_dims = d, n_points = n, norm = d, fill = fill }
local m = icl.model{ arch = "mambaformer", d_model = 32, n_layer = 2, task = t }
local tr = icl.trainer{ model = m, task = t, lr = 1e-3, batch = 32 }
print(t)
print(m)

local s = tr:run{ max_steps = steps, every = 100,
                  callback = function(tr) print(string.format("step %4d  loss %.4f", tr.steps, tr.loss)) end }
print(string.format("trained %d steps, loss %.4f", s.steps, s.loss))

local e = icl.eval(m, t, { prompts = 128, baselines = { "least_squares", "knn", "averaging" } })
print(e)
