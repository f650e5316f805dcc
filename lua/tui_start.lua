-- tui_start.lua - the experiment the TUI opens with, so that a new user sees
-- a model learn after one key (F5).
--
-- A MambaFormer (Mamba and attention blocks, d_model 64, n_layer 4) learning
-- linear regression in context (5 dimensions, 20 examples per prompt) at the
-- presets' playground scale. The model, task and trainer become the globals
-- m, t and tr, and tr is the trainer the panels follow. One evaluation at
-- step 0 puts the baselines (least squares, 3-NN, averaging) in the ICL
-- panel before any training, with the untrained model's flat curve above
-- them; F5 training evaluates again every icl.tui.eval_every steps.
--
-- The TUI runs it after lua/init.lua (ICLPLAY_START=path runs another file
-- instead). It is not run by --plain, `run` or -e.

local icl = require("icl")

p = icl.presets.linear{ arch = "mambaformer" }
m, t, tr = icl.build(p)
icl.show(tr)
tr:eval{ prompts = 128 }

-- Four lines of at most 79 columns: all of it fits the output panel at 80x24.
print(string.format([[
Welcome! This MambaFormer (%d parameters) will learn linear regression
in context. Press F5 to train it (F5 again pauses) and watch its ICL error
approach least squares. F1 lists every key; Esc gives the keys to the panels.
m, t, tr are the model, task and trainer: try tr:run{ max_steps = 500 }, help()]],
  m.n_params))
