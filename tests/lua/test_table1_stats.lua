-- test_table1_stats.lua - the Table 1 verdict machinery (lua/icl/table1_stats.lua):
-- the trivial level of sparse parity against a brute-force count, and the
-- verdict rules on hand-made cells.
local T = dofile("tests/lua/testlib.lua")
local S = require("icl.table1_stats")

-- Every x in {-1, +1}^d and every k-subset: the example-blind predictor
-- (majority sign over the subsets for this x; a tie scores 1/2 either way).
local function blind_brute(d, k)
  local subsets = {}
  local function gen(start, chosen)
    if #chosen == k then subsets[#subsets + 1] = { table.unpack(chosen) } return end
    for c = start, d do
      chosen[#chosen + 1] = c
      gen(c + 1, chosen)
      chosen[#chosen] = nil
    end
  end
  gen(1, {})
  local total = 0
  for bits = 0, 2 ^ d - 1 do
    local x = {}
    for c = 1, d do x[c] = (bits >> (c - 1)) & 1 == 1 and 1 or -1 end
    local plus = 0
    for _, sub in ipairs(subsets) do
      local y = 1
      for _, c in ipairs(sub) do y = y * x[c] end
      if y > 0 then plus = plus + 1 end
    end
    total = total + math.max(plus, #subsets - plus) / #subsets
  end
  return total / 2 ^ d
end

T.test("parity's trivial level is the example-blind vote, not 0.5", function()
  for _, dk in ipairs({ { 6, 2 }, { 10, 2 }, { 5, 1 }, { 7, 3 }, { 4, 4 }, { 8, 2 } }) do
    local d, k = dk[1], dk[2]
    local got, want = S.parity_blind_accuracy(d, k), blind_brute(d, k)
    T.check(math.abs(got - want) < 1e-12, string.format("d %d k %d: %.15g, brute force %.15g", d, k, got, want))
  end
  T.check(math.abs(S.parity_blind_accuracy(6, 2) - 38 / 64) < 1e-12, "d 6, k 2 is 38/64")
end)

T.test("verdicts: trivial, tie with the best, clearly worse", function()
  local info = { accuracy = true, ref = S.parity_blind_accuracy(6, 2) }
  local cells = {
    best = { stat = 1.0, lo = 0.9996, hi = 1.0 },
    tie = { stat = 0.999, lo = 0.998, hi = 0.9999 }, -- intervals apart, progress within 0.02
    blind = { stat = 0.589, lo = 0.582, hi = 0.597 }, -- the d 6 Transformer: above 0.5, at the blind level
    mid = { stat = 0.8, lo = 0.78, hi = 0.82 },
  }
  S.judge(cells, info)
  T.check(cells.best.verdict == "✓", "best " .. tostring(cells.best.verdict))
  T.check(cells.tie.verdict == "✓", "tie " .. tostring(cells.tie.verdict))
  T.check(cells.blind.verdict == "✗", "blind " .. tostring(cells.blind.verdict))
  T.check(cells.mid.verdict == "▲", "mid " .. tostring(cells.mid.verdict))
  local err = { accuracy = false, ref = 1 }
  local ecells = { a = { stat = 0.05, lo = 0.04, hi = 0.06 }, b = { stat = 0.95, lo = 0.9, hi = 1.0 },
    c = { stat = 1.2, lo = 1.1, hi = 1.3 } }
  S.judge(ecells, err)
  T.check(ecells.a.verdict == "✓" and ecells.b.verdict == "✗" and ecells.c.verdict == "✗",
    "errors: " .. tostring(ecells.a.verdict) .. tostring(ecells.b.verdict) .. tostring(ecells.c.verdict))
end)

T.finish()
