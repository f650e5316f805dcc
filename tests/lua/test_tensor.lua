-- test_tensor.lua - icl.tensor, icl.zeros and the tensor methods: shapes,
-- indexing, row views, reductions, printing and every error path.
-- Views into models are tested in test_model.lua.
local T = dofile("tests/lua/testlib.lua")
math.randomseed(T.seed)

local function rand_matrix(r, c)
  local rows = {}
  for i = 1, r do
    rows[i] = {}
    for j = 1, c do rows[i][j] = math.random() * 4 - 2 end
  end
  return rows
end

-- float32 rounding of a Lua number, for exact comparisons
local function f32(x) return string.unpack("f", string.pack("f", x)) end

T.test("icl.tensor from nested tables: shape, ndim, numel, #, at, totable", function()
  local rows = rand_matrix(3, 5)
  local t = icl.tensor(rows)
  T.check(t.ndim == 2, "ndim 2")
  local s = t:shape()
  T.check(#s == 2 and s[1] == 3 and s[2] == 5, "shape {3, 5}")
  T.check(t:numel() == 15, "numel 15")
  T.check(#t == 3, "#t is the first dimension")
  T.check(t.is_view == false, "a copy is not a view")
  local back = t:totable()
  local worst = 0
  for i = 1, 3 do
    for j = 1, 5 do
      worst = math.max(worst, math.abs(back[i][j] - f32(rows[i][j])))
      T.check(t:at(i, j) == f32(rows[i][j]), string.format("at(%d, %d)", i, j))
      T.check(t[i][j] == f32(rows[i][j]), string.format("t[%d][%d]", i, j))
    end
  end
  T.check(worst == 0, "totable round trip exact in float32, worst " .. worst)
  local v = icl.tensor{ 1, 2, 3 }
  T.check(v.ndim == 1 and #v == 3 and v[2] == 2, "1-D tensor indexes to numbers")
  local t4 = icl.tensor{ { { { 1, 2 } }, { { 3, 4 } } } }
  local s4 = t4:shape()
  T.check(t4.ndim == 4 and s4[1] == 1 and s4[2] == 2 and s4[3] == 1 and s4[4] == 2, "4-D shape (1, 2, 1, 2)")
  T.check(t4:at(1, 2, 1, 2) == 4, "4-D at")
end)

T.test("icl.zeros, set and at in every dimension count", function()
  for nd = 1, 4 do
    local dims = {}
    for k = 1, nd do dims[k] = k + 1 end
    local z = icl.zeros(table.unpack(dims))
    T.check(z.ndim == nd, "ndim " .. nd)
    T.check(z:numel() == ({ 2, 6, 24, 120 })[nd], "numel of zeros(" .. table.concat(dims, ", ") .. ")")
    T.check(z:sum() == 0 and z:norm() == 0, "all zero")
    local idx = {}
    for k = 1, nd do idx[k] = dims[k] end -- the last element
    local args = { table.unpack(idx) }
    args[#args + 1] = 7.5
    z:set(table.unpack(args))
    T.check(z:at(table.unpack(idx)) == 7.5, "set then at, " .. nd .. "-D")
    T.check(z:sum() == 7.5, "set touched exactly one element")
  end
end)

T.test("t[i] = v on 1-D writes; rows of n-D tensors are views that write through", function()
  local v = icl.zeros(4)
  v[3] = 2.5
  T.check(v[3] == 2.5 and v:sum() == 2.5, "t[i] = v")
  local t = icl.tensor(rand_matrix(4, 3))
  local r = t[2]
  T.check(r.is_view and r.ndim == 1 and #r == 3, "row view shape")
  r[1] = 9
  T.check(t:at(2, 1) == 9, "writing a row view changes the tensor")
  local c = t:copy()
  c:set(1, 1, -5)
  T.check(t:at(1, 1) ~= -5, "copy is independent")
  T.check(not c.is_view, "copy is not a view")
  local c2 = icl.tensor(r)
  r[2] = 11
  T.check(not c2.is_view and c2:numel() == 3 and c2[2] ~= 11 and c2[1] == 9, "icl.tensor(t) copies a tensor")
  -- a view of a view of a 3-D tensor
  local z = icl.zeros(2, 3, 4)
  z[2][3][4] = 1
  T.check(z:at(2, 3, 4) == 1, "view of a view writes through")
end)

T.test("a row view keeps its tensor alive after the tensor is dropped", function()
  local rows = rand_matrix(5, 6)
  local r = (function() return icl.tensor(rows)[4] end)()
  collectgarbage(); collectgarbage()
  local worst = 0
  for j = 1, 6 do worst = math.max(worst, math.abs(r[j] - f32(rows[4][j]))) end
  T.check(worst == 0, "row values intact after collectgarbage, worst " .. worst)
  -- allocate to reuse any freed memory, then read again
  local junk = {}
  for i = 1, 200 do junk[i] = icl.zeros(5, 6) end -- the same size as the dropped tensor
  T.check(r[6] == f32(rows[4][6]), "row still intact after new allocations")
end)

T.test("reductions agree with a plain Lua loop", function()
  local rows = rand_matrix(7, 9)
  local t = icl.tensor(rows)
  local s, mn, mx, ss = 0, math.huge, -math.huge, 0
  for i = 1, 7 do
    for j = 1, 9 do
      local x = f32(rows[i][j])
      s = s + x; ss = ss + x * x
      mn = math.min(mn, x); mx = math.max(mx, x)
    end
  end
  T.near(t:sum(), s, 1e-9, "sum")
  T.near(t:mean(), s / 63, 1e-10, "mean")
  T.check(t:min() == mn, "min")
  T.check(t:max() == mx, "max")
  T.near(t:norm(), math.sqrt(ss), 1e-9, "norm")
end)

T.test("printing: shape header, values, truncation", function()
  local t = icl.tensor{ { 1, 2, 3 }, { 4, 5, 6 } }
  local s = tostring(t)
  T.check(s:find("tensor(2, 3)", 1, true), "header shows the shape: " .. s)
  T.check(s:find("[[1, 2, 3],", 1, true) and s:find("[4, 5, 6]]", 1, true), "all values shown: " .. s)
  local big = icl.zeros(100, 200)
  big:set(100, 200, 42)
  big:set(50, 50, 17) -- hidden by the truncation
  local bs = tostring(big)
  T.check(bs:find("tensor(100, 200)", 1, true), "big header")
  T.check(bs:find("...", 1, true), "big tensor is truncated with ...")
  T.check(bs:find("42", 1, true), "the last element is shown")
  T.check(not bs:find("17", 1, true), "a middle element is not shown")
  T.check(#bs < 600, "truncated print is short (" .. #bs .. " chars)")
  local _, rows = bs:gsub("\n", "")
  T.check(rows <= 7, "at most ~6 rows printed (got " .. rows .. " lines)")
  local cube = tostring(icl.zeros(5, 5, 5))
  T.check(cube:find("tensor(5, 5, 5)", 1, true) and #cube < 800, "3-D print is bounded")
  T.check(tostring(t[1]):find("view", 1, true), "a view says so")
end)

T.test("construction errors name the problem", function()
  T.check_error(function() icl.tensor("x") end, "table expected", "non-table")
  T.check_error(function() icl.tensor{} end, "empty table", "empty")
  T.check_error(function() icl.tensor{ { 1, 2 }, { 3 } } end, "row [2] has 1 entries, expected 2", "ragged")
  T.check_error(function() icl.tensor{ { 1, 2 }, 3 } end, "element [2] is a number, expected a table", "mixed depth")
  T.check_error(function() icl.tensor{ 1, "a" } end, "element [2] is a string, expected a number", "non-number")
  T.check_error(function() icl.tensor{ { { { { 1 } } } } } end, "more than 4 nested levels", "5 levels")
  T.check_error(function() icl.zeros() end, "icl.zeros: give 1 to 4 dimensions (got 0)", "no dims")
  T.check_error(function() icl.zeros(1, 2, 3, 4, 5) end, "give 1 to 4 dimensions (got 5)", "5 dims")
  T.check_error(function() icl.zeros(0) end, "dimension 1 must be an integer >= 1 (got 0)", "zero dim")
  T.check_error(function() icl.zeros(2, 1.5) end, "dimension 2 must be an integer >= 1 (got 1.5)", "fractional dim")
  T.check_error(function() icl.zeros("3") end, "dimension 1 must be an integer", "string dim")
  T.check_error(function() icl.zeros(100000, 100000) end, "more than", "too many elements")
end)

T.test("indexing errors: out of range, wrong count, wrong types", function()
  local t = icl.tensor{ { 1, 2, 3 }, { 4, 5, 6 } }
  local v = icl.tensor{ 1, 2 }
  T.check_error(function() return t[0] end, "index 1 is 0, out of range [1, 2]", "t[0]")
  T.check_error(function() return t[3] end, "index 1 is 3, out of range [1, 2]", "t[3]")
  T.check_error(function() return v[-1] end, "out of range [1, 2]", "v[-1]")
  T.check_error(function() return t[1.5] end, "index 1 must be an integer (got 1.5)", "t[1.5]")
  T.check_error(function() return t[true] end, "index with an integer (got a boolean)", "t[true]")
  T.check(t.nosuchfield == nil, "unknown string keys are nil")
  T.check_error(function() return t:at(1) end, "t:at: needs 2 indices for a 2-D tensor (got 1)", "at count")
  T.check_error(function() return t:at(1, 4) end, "t:at: index 2 is 4, out of range [1, 3]", "at range")
  T.check_error(function() t:set(1, 1) end, "t:set: needs 2 indices and a value", "set count")
  T.check_error(function() t:set(1, 1, "x") end, "t:set: value must be a number (got string)", "set type")
  T.check_error(function() t:set(3, 1, 0) end, "t:set: index 1 is 3, out of range [1, 2]", "set range")
  T.check_error(function() t[1] = 5 end, "t[i] = v needs a 1-D tensor", "row assignment")
  T.check_error(function() v[3] = 5 end, "out of range [1, 2]", "v[3] = 5")
  T.check_error(function() v[1] = "a" end, "value must be a number (got string)", "v[1] = 'a'")
  T.check_error(function() t.foo = 1 end, "cannot set field foo", "t.foo = 1")
  T.check_error(function() t.sum(nil) end, "icl.tensor expected", "method on a non-tensor")
  T.check_error(function() t.sum({}) end, "icl.tensor expected", "method on a table")
end)

T.finish()
