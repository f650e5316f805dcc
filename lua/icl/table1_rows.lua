-- table1_rows.lua - the rows of the paper's Table 1 (SPEC.md 5.1) at the
-- playground settings of issue 8, for lua/experiments/table1.lua.
--
--   local rows = require("icl.table1_rows")
--   for _, r in ipairs(rows.list) do print(r.key, r.title, r.setting) end
--
-- A row is { key, budget, budget_note, title, preset, task, setting, archs,
-- paper, baselines, reference, note }: `budget` is the fixed number of
-- training steps of every cell of the row (see Budgets below), `preset`
-- names the icl.presets entry whose model and trainer settings the row
-- starts from, `task` is what icl.task takes (the issue's
-- settings, which override the preset's task), `paper` the symbol SPEC.md
-- 5.1 gives each architecture, `baselines` the icl.eval baselines when not the
-- task's defaults, `reference` what independent reference runs
-- of the same setting showed (issue 8), to check the engine against, and
-- `budget_note` what the budget allows of it.
--
-- Budgets. Issue 8: every cell must finish within 15 minutes on this 2-core
-- machine. They are fixed numbers (not measured at run time, which made
-- them depend on the load of a shared machine), derived once with
--   iclplay run lua/experiments/table1.lua --measure-budgets
-- (lua/icl/table1_measure.lua: per row, the steps the slowest architecture
-- fits in 65% of 15 minutes after 30 curve evaluations and the final
-- scoring, rounded down to two significant digits). Measured 2026-11-29
-- 08:34 UTC on host vm (2 cores, 2 threads) on a quiet machine (nothing
-- else running), with the engine of commit 87ecf06 (channel-major scan,
-- transposed-head attention), with the 65% of M.SAFETY (the speeds of
-- that measurement, the budgets recomputed when 85% proved too little for
-- this VM's drifting speed). The whole table then takes about 4.5 hours at
-- one seed at the measured speeds, up to 6.5 when the VM is slow. A loaded machine is slower: rerun the measurement there
-- rather than let cells pass 15 minutes. Some rows stay below the steps at
-- which the reference runs showed their behaviour; the budget notes say so
-- rather than exceeding 15 minutes.
-- Not here: training, evaluation, verdicts and output (table1.lua).

local rows = {}

-- Where the budgets below came from (written into table1.md).
rows.budget_source = "--measure-budgets on 2026-11-29 08:34 UTC, host vm, 2 threads, quiet machine, engine of "
  .. "commit 87ecf06, planned at 65% of the 15-minute cap"

-- The columns, in table order, with the names the paper uses.
rows.columns = {
  { arch = "transformer", name = "Transformer" },
  { arch = "mamba", name = "Mamba" },
  { arch = "mambaformer", name = "MambaFormer" },
  { arch = "s4mamba", name = "S4-Mamba" },
  { arch = "hybrid", name = "Standard Hybrid" },
}

-- The shared model and optimiser settings of every cell (issue 8): d_model
-- 64, n_layer 4 in the paper's counting (SPEC.md 3.2; the Transformer is 2
-- GPT-2 layers = attn, mlp, attn, mlp), batch 64, Adam at a constant 1e-3,
-- gradient-norm clipping 10. Heads: 4 (the playground presets' choice; the
-- issue does not say). No curriculum: every prompt has the full d and N.
rows.model = { d_model = 64, n_layer = 4, n_head = 4 }
rows.trainer = { lr = 1e-3, batch = 64, clip = 10, optimizer = "adam", schedule = "constant" }

local MAIN = { "transformer", "mamba", "mambaformer" }
local PARITY = { "transformer", "mamba", "mambaformer", "s4mamba", "hybrid" }

-- SPEC.md 5.1: Transformer, Mamba, MambaFormer. For sparse parity, SPEC.md
-- 5.2 says S4-Mamba's behaviour is unknown and reads (low confidence) that
-- the Standard Hybrid fails: "?" and "✗?" say so.
local function paper(t, m, mf)
  return { transformer = t, mamba = m, mambaformer = mf }
end
local PARITY_PAPER = { transformer = "✗", mamba = "✓", mambaformer = "✓", s4mamba = "?", hybrid = "✗?" }

rows.list = {
  {
    key = "linear", budget = 9100,
    budget_note = "slowest Mamba 15.72 steps/s. Enough to see Mamba reach 0.1 (about 1,000 steps in the reference) and "
      .. "the Transformer leave its plateau (about 2,500) and reach its 0.14 (by 6,000).",
    title = "Linear regression", preset = "linear",
    task = { name = "linear_regression", n_dims = 5, n_points = 20 },
    setting = "d 5, 20 points",
    archs = MAIN, paper = paper("✓", "✓", "✓"),
    reference = "Mamba reaches normalised error 0.1 within about 1,000 steps; the Transformer sits on a plateau "
      .. "near 1 until about 2,500 steps and reaches 0.14 by 6,000.",
  },
  {
    key = "sparse_linear", budget = 9800,
    budget_note = "slowest MambaFormer 17.00 steps/s.",
    title = "Sparse linear regression", preset = "sparse_linear",
    task = { name = "sparse_linear_regression", n_dims = 10, n_points = 20, k = 3 },
    setting = "d 10, k 3, 20 points",
    archs = MAIN, paper = paper("✓", "✓", "✓"),
  },
  {
    key = "relu2nn", budget = 4700,
    budget_note = "slowest MambaFormer 8.16 steps/s.",
    title = "2NN regression", preset = "relu2nn",
    task = { name = "relu2nn_regression", n_dims = 5, n_points = 40, hidden = 100 },
    setting = "d 5, hidden 100, 40 points",
    archs = MAIN, paper = paper("✓", "✓", "✓"),
    -- SPEC.md 1.4: the paper's 2NN baselines include gradient descent on a 2-layer net
    baselines = { "least_squares", "knn", "averaging", "gd_2nn" },
  },
  {
    key = "decision_tree", budget = 4300,
    budget_note = "slowest Mamba 7.60 steps/s.",
    title = "Decision tree", preset = "decision_tree",
    task = { name = "decision_tree", n_dims = 5, n_points = 40, depth = 3 },
    setting = "d 5, depth 3, 40 points",
    archs = MAIN, paper = paper("✓", "▲", "✓"),
  },
  {
    key = "ortho_outlier", budget = 4700,
    budget_note = "slowest MambaFormer 8.21 steps/s.",
    title = "Orthogonal-outlier regression", preset = "ortho_outlier",
    task = { name = "ortho_outlier_regression", n_dims = 5, n_points = 40, p = 0.5 },
    setting = "d 5, 40 points, p 0.5",
    archs = MAIN, paper = paper("✓", "▲", "✓"),
  },
  {
    key = "many_outlier", budget = 1300,
    budget_note = "slowest MambaFormer 2.48 steps/s at 200 tokens per prompt: about a thousand steps, so this row "
      .. "mostly shows where learning starts, if at all.",
    title = "Many-outlier regression", preset = "many_outlier",
    task = { name = "many_outlier_regression", n_dims = 5, n_points = 100, p = 0.9 },
    setting = "d 5, 100 points, p 0.9",
    archs = MAIN, paper = paper("▲", "✓", "✓"),
    note = "About 10 clean pairs per prompt; only clean positions are scored (and trained on).",
  },
  {
    key = "parity_d6", budget = 3900,
    budget_note = "slowest MambaFormer 6.95 steps/s. Below the about 6,000 steps at which MambaFormer jumped from "
      .. "chance to 0.9 in the reference runs: the jump shows only if it comes earlier here; otherwise chance (or the "
      .. "~0.71 of copying repeated inputs) is the expected outcome for every column.",
    title = "Sparse parity (d 6)", preset = "parity",
    task = { name = "sparse_parity", n_dims = 6, n_points = 40, k = 2 },
    setting = "d 6, k 2, 40 points",
    archs = PARITY, paper = PARITY_PAPER,
    reference = "MambaFormer jumps from chance to 0.9 accuracy around 6,000 steps while the Transformer stays "
      .. "at chance for 50,000.",
    note = "A smaller parity than the paper's, so that two cores can see it learnt; the paper's symbols are "
      .. "those of its d 10 row. With only 2^6 = 64 possible inputs, inputs repeat within a prompt: copying the "
      .. "label of an input seen before, and guessing otherwise, already scores about 0.71 at positions 30-39 "
      .. "without learning parity; learning parity means accuracy near 1.",
  },
  {
    key = "parity_d10", budget = 830,
    budget_note = "slowest S4-Mamba 1.55 steps/s at 280 tokens per prompt. Far below the 10,000 steps within which "
      .. "no model left chance in the reference runs, so chance everywhere agrees with them but says nothing "
      .. "about the architectures.",
    title = "Sparse parity (d 10)", preset = "parity",
    task = { name = "sparse_parity", n_dims = 10, n_points = 140, k = 2 },
    setting = "d 10, k 2, 140 points (the paper's setting)",
    archs = PARITY, paper = PARITY_PAPER,
    reference = "No model left chance within 10,000 steps.",
    note = "Copying the label of a repeated input (2^10 = 1,024 possible) would score about 0.56 at positions "
      .. "105-139 without learning parity.",
  },
  {
    key = "cot_io", budget = 6500,
    budget_note = "slowest MambaFormer 11.24 steps/s.",
    title = "Chain-of-thought I/O", preset = "cot_io",
    task = { name = "cot_io", n_dims = 5, n_points = 20, hidden = 4 },
    setting = "d 5, hidden 4, 20 examples",
    archs = MAIN, paper = paper("✓", "✓", "✓"),
    note = "Scored on y only (the error of the prediction made at the s_i token; SPEC.md 2.8 and "
      .. "src/tasks/task_cot.c). The paper's symbols for this row are [R?]. No classical baseline.",
  },
  {
    key = "vector_mqar", budget = 10000,
    budget_note = "slowest MambaFormer 18.22 steps/s. Far above the 1,000 steps within which the attention models "
      .. "reached accuracy 1.0 in the reference runs, so that (and Mamba staying under 0.15) can show.",
    title = "Vector-valued MQAR", preset = "vector_mqar",
    task = { name = "vector_mqar", n_dims = 8, kappa = 16, queries = 4 },
    setting = "d 8, 16 pairs, 4 queries",
    archs = MAIN, paper = paper("✓", "✗", "✓"),
    reference = "Attention models reach accuracy 1.0 within 1,000 steps while Mamba stays under 0.15.",
    note = "Positions are the 4 queries; accuracy means the value nearest (by inner product) to the prediction "
      .. "is the queried key's value. Clipping 10 as every row (the preset's 100 is the released code's).",
  },
}

-- The row with this key, or nil.
function rows.find(key)
  for _, r in ipairs(rows.list) do
    if r.key == key then return r end
  end
  return nil
end

-- The display name of an architecture.
function rows.arch_name(arch)
  for _, c in ipairs(rows.columns) do
    if c.arch == arch then return c.name end
  end
  return arch
end

return rows
