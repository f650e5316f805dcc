-- table1_util.lua - small helpers shared by the modules of
-- lua/experiments/table1.lua: number formatting, atomic file writes, the
-- wall clock, and recognising a Ctrl-C among Lua errors.
-- Not here: anything that knows about rows, cells or the report.
local U = {}

U.NAN = 0 / 0
function U.isnan(v) return v ~= v end

-- Wall-clock seconds, whole. os.time and not `date` through io.popen: a
-- cell's wall time is minutes, and a pipe read is one more place where a
-- Ctrl-C lands (read returns EINTR; a terminal's Ctrl-C also kills `date`).
-- Sub-second timing comes from tr:run's time_s.
function U.now() return os.time() end

-- Output of a shell command, trailing blanks removed ("" when it fails).
-- Only for start-up facts (uname, nproc): never call it while cells run.
function U.shell(cmd)
  local f = io.popen(cmd .. " 2>/dev/null")
  if not f then return "" end
  local s = f:read("a") or ""
  f:close()
  return (s:gsub("%s+$", ""))
end

function U.quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Writes text to path through a temporary file and a rename, so a reader
-- (or an interruption, which can raise between any two Lua instructions)
-- sees either the old file or the new one, never half of one. The temporary
-- name is random (Lua 5.4 seeds math.random per process), so two runs
-- writing the same output folder cannot truncate each other's file.
function U.write_file(path, text)
  local tmp = string.format("%s.tmp.%08x", path, math.random(0, 0x7fffffff))
  local f, err = io.open(tmp, "w")
  if not f then error("table1: cannot write " .. tmp .. ": " .. tostring(err), 0) end
  local ok, werr = f:write(text)
  f:close()
  if not ok then error("table1: cannot write " .. tmp .. ": " .. tostring(werr), 0) end
  local rok, rerr = os.rename(tmp, path)
  if not rok then error("table1: cannot rename " .. tmp .. ": " .. tostring(rerr), 0) end
end

function U.read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function U.fmt(v)
  if v == nil or U.isnan(v) then return "n/a" end
  if v ~= 0 and math.abs(v) < 0.001 then return string.format("%.1e", v) end
  return string.format("%.3f", v)
end

function U.csvnum(v)
  if v == nil or U.isnan(v) then return "" end
  return string.format("%.6g", v)
end

-- 12345 -> "12,345"
function U.thousands(n)
  local s = tostring(math.floor(n))
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

function U.minutes(s)
  if not s then return "n/a" end
  if s < 60 then return string.format("%.0f s", s) end
  if s < 5400 then return string.format("%.1f min", s / 60) end
  return string.format("%.1f h", s / 3600)
end

-- Rounds down to two significant digits: 12,345 -> 12,000; 987 -> 980.
function U.round2(n)
  if n < 100 then return math.max(1, math.floor(n)) end
  local mag = 10 ^ (math.floor(math.log(n, 10)) - 1)
  return math.floor(math.floor(n / mag) * mag + 0.5)
end

-- A Ctrl-C surfaces as a Lua error from three places, all of which say
-- "interrupted": a trainer at a step boundary ("tr:run: interrupted at step
-- N"), an evaluation between batches ("icl.eval: evaluate: interrupted
-- after ..."), and the REPL's hook at any Lua instruction ("interrupted!").
function U.is_interrupt(err) return tostring(err):find("interrupted", 1, true) ~= nil end

function U.copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = U.copy(v) end
  return c
end

return U
