-- presets.lua - the experiments of the paper (SPEC.md section 2) as plain
-- tables of settings, at the paper's scale and at a playground scale that
-- trains on two cores in minutes; and icl.build, which turns one into a
-- model, a task and a trainer.
--
--   local p = icl.presets.parity{ arch = "mamba" }         -- playground scale
--   local q = icl.presets.linear{ arch = "transformer", scale = "paper" }
--   local m, t, tr = icl.build(p)
--   tr:run(p.run)
--
-- A preset is { name, arch, scale, description, model = {...}, task =
-- {...}, trainer = {...}, run = {...} }: `model` is what icl.model takes
-- (icl.build adds task = t, which fills n_dims, n_out, vocab, positions),
-- `task` what icl.task takes, `trainer` what icl.trainer takes (without
-- model and task), `run` the recommended tr:run{} arguments. Every section
-- can be overridden: icl.presets.linear{ model = { d_model = 32 } }.
--
-- Paper scale follows SPEC.md sections 2-4 (model sizes of the released
-- configs, Adam without weight decay, constant lr, batch 64, clipping 10,
-- the curricula, 500k steps); where the paper is silent ([R?] in the spec:
-- CoT-I/O, vector MQAR) the choices are stated next to the preset. The
-- layer count is the paper's: a Transformer of L GPT-2 layers is n_layer
-- 2L (attention and MLP blocks), and the Mamba-style models get the same
-- n_layer, which roughly matches parameters (SPEC.md 3.6).
-- Playground scale: d_model 64, n_layer 4, 4 heads, batch 64, lr 1e-3, a
-- few thousand steps, small tasks without a curriculum.
-- Not here: training loops and sweeps (lua/examples/), the C bindings.

local icl = require("icl")

local presets = {}

local SCALES = { playground = true, paper = true }
local OPTIONS = { arch = true, scale = true, seed = true, model = true, task = true, trainer = true, run = true }

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = type(v) == "table" and copy(v) or v end
  return c
end

local function merge(base, over)
  local out = copy(base)
  for k, v in pairs(over or {}) do out[k] = type(v) == "table" and copy(v) or v end
  return out
end

local function known_archs()
  local set, list = {}, icl.archs()
  for _, a in ipairs(list) do set[a] = true end
  return set, table.concat(list, ", ")
end

-- Checks the options table of preset `name`; returns arch, scale.
local function check_options(name, o)
  local where = "icl.presets." .. name
  if o ~= nil and type(o) ~= "table" then
    error(string.format("%s: options must be a table { arch =, scale = } (got %s)", where, type(o)), 3)
  end
  o = o or {}
  for k in pairs(o) do
    if not OPTIONS[k] then
      error(string.format("%s: unknown option '%s' (options: arch, scale, seed, model, task, trainer, run)",
        where, tostring(k)), 3)
    end
  end
  for _, k in ipairs({ "model", "task", "trainer", "run" }) do
    if o[k] ~= nil and type(o[k]) ~= "table" then
      error(string.format("%s: %s must be a table of overrides (got %s)", where, k, type(o[k])), 3)
    end
  end
  local arch = o.arch or "transformer"
  local set, list = known_archs()
  if type(arch) ~= "string" or not set[arch] then
    error(string.format("%s: arch must be one of %s (got %s)", where, list, tostring(arch)), 3)
  end
  if arch == "custom" and not (o.model and o.model.blocks) then
    error(string.format("%s: arch = \"custom\" needs model = { blocks = { ... } }", where), 3)
  end
  local scale = o.scale or "playground"
  if not SCALES[scale] then
    error(string.format("%s: scale must be \"playground\" or \"paper\" (got %s)", where, tostring(scale)), 3)
  end
  if o.seed ~= nil and math.type(o.seed) ~= "integer" then
    error(string.format("%s: seed must be an integer (got %s)", where, tostring(o.seed)), 3)
  end
  return arch, scale, o
end

-- The default model of a scale: the paper's width and layers per task.
local function model_for(arch, scale, paper)
  if scale == "paper" then
    return { arch = arch, d_model = paper.d_model, n_layer = paper.n_layer, n_head = paper.n_head or 8, seed = 1 }
  end
  return { arch = arch, d_model = 64, n_layer = 4, n_head = 4, seed = 1 }
end

-- Builds one preset function. `def` holds, per scale, the task, the
-- trainer settings, the run and the paper's model size.
local function define(name, description, def)
  local function preset(o)
    local arch, scale, opts = check_options(name, o)
    local d = def[scale]
    local task = merge(d.task, opts.task)
    local model = model_for(arch, scale, def.paper_model)
    if def.model then model = def.model(arch, scale, model, task) end
    local trainer = merge({ lr = 1e-3, batch = 64, seed = 1, clip = 10, optimizer = "adam" }, d.trainer)
    if opts.seed then
      model.seed = opts.seed
      trainer.seed = opts.seed
    end
    return {
      name = name,
      arch = arch,
      scale = scale,
      description = description,
      model = merge(model, opts.model),
      task = task,
      trainer = merge(trainer, opts.trainer),
      run = merge(d.run, opts.run),
    }
  end
  presets[name] = preset
  icl.setdoc(preset, "icl.presets." .. name,
    string.format("icl.presets.%s{ arch =, scale = } -> preset: %s\n"
      .. "arch: transformer (default), mamba, s4mamba, hybrid, mambaformer; scale: \"playground\" (default)\n"
      .. "or \"paper\". Returns { model =, task =, trainer =, run = }; icl.build(p) -> m, t, tr; tr:run(p.run).\n"
      .. "Override any section: icl.presets.%s{ arch = \"mamba\", model = { d_model = 32 }, trainer = { lr = 3e-4 } }.",
      name, description, name))
  return preset
end

-- Garg et al.'s curricula (SPEC 1.3): dims 5 -> 20 (+1 / 2000 steps).
local DIMS = { 5, 20, 1, 2000 }
local PAPER_STEPS = 500001
local PAPER_MODEL = { d_model = 128, n_layer = 4, n_head = 8 } -- [MF] configs: 128 wide, 2 GPT-2 layers / 4 blocks
local PAPER_RUN = { max_steps = PAPER_STEPS, eval_every = 10000 }

define("linear", "linear regression, y = w.x (SPEC 2.1)", {
  paper_model = PAPER_MODEL,
  paper = {
    task = { name = "linear_regression", n_dims = 20, n_points = 41,
             curriculum = { dims = DIMS, points = { 11, 41, 2, 2000 } } },
    trainer = { lr = 1e-4 },
    run = PAPER_RUN,
  },
  playground = {
    task = { name = "linear_regression", n_dims = 5, n_points = 20 },
    run = { max_steps = 2000 },
  },
})

define("sparse_linear", "sparse linear regression, k = 3 non-zero weights (SPEC 2.2)", {
  paper_model = PAPER_MODEL,
  paper = {
    task = { name = "sparse_linear_regression", n_dims = 20, n_points = 41, k = 3,
             curriculum = { dims = DIMS, points = { 11, 41, 2, 2000 } } },
    trainer = { lr = 1e-4 },
    run = PAPER_RUN,
  },
  playground = {
    task = { name = "sparse_linear_regression", n_dims = 10, n_points = 20, k = 3 },
    run = { max_steps = 2000 },
  },
})

define("relu2nn", "two-layer ReLU network regression, hidden width 100 (SPEC 2.3)", {
  paper_model = PAPER_MODEL,
  paper = {
    task = { name = "relu2nn_regression", n_dims = 20, n_points = 101, hidden = 100,
             curriculum = { dims = DIMS, points = { 26, 101, 5, 2000 } } },
    trainer = { lr = 1e-4 },
    run = PAPER_RUN,
  },
  playground = {
    task = { name = "relu2nn_regression", n_dims = 5, n_points = 30, hidden = 100 },
    run = { max_steps = 2000 },
  },
})

define("decision_tree", "regression on random decision trees (SPEC 2.4)", {
  paper_model = PAPER_MODEL,
  paper = {
    task = { name = "decision_tree", n_dims = 20, n_points = 101, depth = 4,
             curriculum = { dims = DIMS, points = { 26, 101, 5, 2000 } } },
    trainer = { lr = 4e-4 },
    run = PAPER_RUN,
  },
  playground = {
    -- a shallower tree on fewer coordinates: learnable from 40 examples
    task = { name = "decision_tree", n_dims = 5, n_points = 40, depth = 3 },
    run = { max_steps = 2000 },
  },
})

define("ortho_outlier", "linear regression with orthogonal outliers, p = 0.5 (SPEC 2.5)", {
  paper_model = PAPER_MODEL,
  paper = {
    task = { name = "ortho_outlier_regression", n_dims = 20, n_points = 101, p = 0.5,
             curriculum = { dims = DIMS, points = { 26, 101, 5, 2000 } } },
    trainer = { lr = 1e-4 },
    run = PAPER_RUN,
  },
  playground = {
    task = { name = "ortho_outlier_regression", n_dims = 5, n_points = 30, p = 0.5 },
    run = { max_steps = 2000 },
  },
})

define("many_outlier", "linear regression with 90% all-ones outliers (SPEC 2.6)", {
  paper_model = PAPER_MODEL,
  paper = {
    task = { name = "many_outlier_regression", n_dims = 20, n_points = 512, p = 0.9,
             curriculum = { dims = { 4, 20, 1, 2000 }, points = { 12, 512, 2, 200 } } },
    trainer = { lr = 1e-4 },
    run = { max_steps = 1000001, eval_every = 10000 },
  },
  playground = {
    -- 60 pairs leave about 6 clean examples per prompt
    task = { name = "many_outlier_regression", n_dims = 5, n_points = 60, p = 0.9 },
    run = { max_steps = 2000 },
  },
})

define("parity", "sparse parity of a hidden subset of k = 2 bits (SPEC 2.7)", {
  -- Transformer 256 wide, 12 GPT-2 layers = n_layer 24; Mamba 256 / 24 blocks (SPEC 3.6)
  paper_model = { d_model = 256, n_layer = 24, n_head = 8 },
  paper = {
    task = { name = "sparse_parity", n_dims = 10, n_points = 140, k = 2 },
    trainer = { lr = 4e-4 },
    run = PAPER_RUN,
  },
  playground = {
    task = { name = "sparse_parity", n_dims = 6, n_points = 40, k = 2 },
    run = { max_steps = 3000 },
  },
})

define("cot_io", "chain-of-thought I/O: x, ReLU(W1 x), y tokens (SPEC 2.8)", {
  -- [R?] d = 10, hidden 8, 40 examples (task defaults); model and lr as the regression configs
  paper_model = PAPER_MODEL,
  paper = {
    task = { name = "cot_io", n_dims = 10, n_points = 40, hidden = 8 },
    trainer = { lr = 1e-4 },
    run = PAPER_RUN,
  },
  playground = {
    task = { name = "cot_io", n_dims = 5, n_points = 20, hidden = 4 },
    run = { max_steps = 2000 },
  },
})

define("vector_mqar", "vector-valued multi-query associative recall (SPEC 2.9)", {
  -- [R?] counts: d = 20 as the released retrieval task, 16 pairs, 16 queries; 128 wide, lr 2e-4, clip 100
  paper_model = PAPER_MODEL,
  paper = {
    task = { name = "vector_mqar", n_dims = 20, kappa = 16, queries = 16 },
    trainer = { lr = 2e-4, clip = 100 },
    run = PAPER_RUN,
  },
  playground = {
    task = { name = "vector_mqar", n_dims = 8, kappa = 8, queries = 8 },
    trainer = { clip = 100 },
    run = { max_steps = 2000 },
  },
})

define("token_mqar", "Zoology's token multi-query associative recall (SPEC 2.10)", {
  -- Zoology Figure 2, smallest setting: L = 64, 4 pairs, two sequence-mixer layers (no MLP),
  -- one attention head, AdamW wd 0.1 with cosine decay; lr is one of Zoology's grid values
  -- (logspace(-4, -2, 4)); 100k sequences x 64 epochs / batch 512 = 12,500 steps, but fresh
  -- prompts every step here.
  paper_model = { d_model = 128, n_layer = 2, n_head = 1 },
  model = function(arch, scale, m, task)
    m.n_layer = 2
    if arch == "transformer" then
      -- attention only, with learned positions, as Zoology's attention baseline
      m.arch = "custom"
      m.blocks = { "attn", "attn" }
      m.n_positions = task.seq_len
      m.pos_std = 0.02
    end
    if scale == "paper" then m.n_head = 1 end
    return m
  end,
  paper = {
    task = { name = "token_mqar", vocab = 8192, seq_len = 64, kappa = 4 },
    trainer = { lr = 2.15e-3, batch = 512, optimizer = "adamw", weight_decay = 0.1, schedule = "cosine",
                total = 12500, clip = 10 },
    run = { max_steps = 12500, eval_every = 1000 },
  },
  playground = {
    task = { name = "token_mqar", vocab = 128, seq_len = 32, kappa = 4 },
    run = { max_steps = 2000 },
  },
})

-- icl.build(p) -> m, t, tr
local function build(p)
  if type(p) ~= "table" or type(p.model) ~= "table" or type(p.task) ~= "table" then
    error("icl.build: p must be a preset { model = {...}, task = {...}, trainer = {...} } (got "
      .. type(p) .. "); e.g. icl.build(icl.presets.linear{ arch = \"mamba\" })", 2)
  end
  if p.trainer ~= nil and type(p.trainer) ~= "table" then
    error("icl.build: p.trainer must be a table (got " .. type(p.trainer) .. ")", 2)
  end
  local t = icl.task(copy(p.task))
  local ms = copy(p.model)
  ms.task = t
  local m = icl.model(ms)
  local ts = copy(p.trainer or {})
  ts.model, ts.task = m, t
  local tr = icl.trainer(ts)
  return m, t, tr
end

icl.presets = presets
icl.build = build
icl.setdoc(presets, "icl.presets",
  "icl.presets: the paper's experiments (SPEC 2) as settings at \"playground\" or \"paper\" scale\n"
  .. "p = icl.presets.<name>{ arch = \"mamba\", scale = \"playground\" }; m, t, tr = icl.build(p); tr:run(p.run)")
icl.setdoc(build, "icl.build",
  "icl.build(p) -> m, t, tr: the model, task and trainer of preset p (icl.presets.*)\n"
  .. "The model gets task = t (n_dims, n_out, vocab and positions from the task).")

return presets
