-- sweep.lua - a sweep is a plain Lua loop: train every architecture on the
-- same preset and compare their in-context error.
--
--   iclplay run lua/examples/sweep.lua [preset] [steps]
--   e.g. iclplay run lua/examples/sweep.lua parity 1000
local name = arg[1] or "linear"
local steps = tonumber(arg[2]) or 300
local archs = { "transformer", "mamba", "s4mamba", "hybrid", "mambaformer" }

local rows = {}
for _, arch in ipairs(archs) do
  local p = icl.presets[name]{ arch = arch, seed = 1 }
  local m, t, tr = icl.build(p)
  local s = tr:run{ max_steps = steps }
  local e = icl.eval(m, t, { prompts = 256 })
  local c = e:curve("model")
  rows[#rows + 1] = { arch = arch, params = m.n_params, loss = s.loss, last = c.mean[#c.mean], rate = s.steps_per_s,
                      metric = e.metric }
  e:csv(string.format("sweep-%s-%s.csv", name, arch)) -- one curve file per architecture
  m:close()
end

print(string.format("%s, %d steps each; metric (%s) at the last position", name, steps, rows[1].metric))
print(string.format("%-12s %9s %9s %9s %9s", "arch", "params", "loss", "metric", "steps/s"))
for _, r in ipairs(rows) do
  print(string.format("%-12s %9d %9.4f %9.4f %9.1f", r.arch, r.params, r.loss, r.last, r.rate))
end
