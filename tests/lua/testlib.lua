-- testlib.lua - the harness of the Lua test scripts (run headless with
-- `iclplay run tests/lua/test_x.lua [--seed N] [--only NAME]`).
--
--   local T = dofile("tests/lua/testlib.lua")
--   T.test("model prints its blocks", function()
--     T.check(tostring(m):find("mamba"), "print shows the block kinds")
--     T.check_error(function() icl.model{ d_model = -1 } end, "d_model")
--   end)
--   T.finish()   -- prints "N passed, N failed" and exits non-zero on failure
--
-- A failing check records file:line and goes on; T.seed is the run's seed
-- (from --seed or ICL_TEST_SEED, default 1234), printed first for replay.
local T = { passed = 0, failed = 0, seed = 1234, only = nil }
local fails_in_test = 0
local argv = arg or {}
for i = 1, #argv do
  if argv[i] == "--seed" then T.seed = tonumber(argv[i + 1]) end
  if argv[i] == "--only" then T.only = argv[i + 1] end
end
if os.getenv("ICL_TEST_SEED") then T.seed = tonumber(os.getenv("ICL_TEST_SEED")) end
print(string.format("# %s seed=%d (replay with --seed %d)", argv[0] or "lua test", T.seed, T.seed))

local function where(level)
  local info = debug.getinfo(level, "Sl")
  return string.format("%s:%d", info.short_src, info.currentline or 0)
end

function T.check(cond, msg)
  if not cond then
    fails_in_test = fails_in_test + 1
    print(string.format("  FAIL %s: %s", where(3), tostring(msg)))
  end
  return cond
end

-- fn must raise an error whose message contains `pattern` (plain text).
function T.check_error(fn, pattern, msg)
  local ok, err = pcall(fn)
  if ok then
    fails_in_test = fails_in_test + 1
    print(string.format("  FAIL %s: %s: expected an error containing %q, got none", where(3), msg or "", pattern))
    return false
  end
  err = tostring(err)
  if pattern and not err:find(pattern, 1, true) then
    fails_in_test = fails_in_test + 1
    print(string.format("  FAIL %s: %s: error %q does not contain %q", where(3), msg or "", err, pattern))
    return false
  end
  return true, err
end

function T.near(a, b, tol, msg)
  return T.check(math.abs(a - b) <= tol, string.format("%s: %.9g vs %.9g (tol %g)", msg or "near", a, b, tol))
end

function T.test(name, fn)
  if T.only and not name:find(T.only, 1, true) then return end
  fails_in_test = 0
  local ok, err = xpcall(fn, debug.traceback)
  if not ok then
    fails_in_test = fails_in_test + 1
    print("  ERROR " .. tostring(err))
  end
  if fails_in_test > 0 then
    T.failed = T.failed + 1
    print("not ok  " .. name)
  else
    T.passed = T.passed + 1
    print("ok      " .. name)
  end
  io.stdout:flush()
end

function T.finish()
  print(string.format("%d passed, %d failed", T.passed, T.failed))
  if T.failed > 0 then os.exit(1) end
end

return T
