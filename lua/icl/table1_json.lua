-- table1_json.lua - the JSON of table1's saved cells: encode(v) and
-- decode(s) for the subset they use (objects with string keys, arrays,
-- numbers, strings, booleans).
--
-- Choices, so that files are stable and comparable:
--   * object keys are written sorted, so equal tables give equal text (the
--     settings of a cell are compared by their encoding);
--   * a table whose keys are exactly 1..n is an array, an empty table is [];
--   * NaN and infinities have no JSON spelling: they are written as null,
--     and null reads back as NaN (the cells use NaN for "no value", e.g. the
--     loss at step 0);
--   * numbers are written with 17 significant digits, which reads back to
--     the same double.
-- Not here: what a cell holds (table1_cells.lua).
local J = {}

local function is_array(t)
  local n = #t
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function enc_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return ESC[c] or string.format("\\u%04x", c:byte()) end) .. '"'
end

local function enc(v, out, indent)
  local ty = type(v)
  if ty == "number" then
    if v ~= v or v == math.huge or v == -math.huge then out[#out + 1] = "null"
    elseif math.type(v) == "integer" then out[#out + 1] = string.format("%d", v)
    else out[#out + 1] = string.format("%.17g", v) end
  elseif ty == "string" then out[#out + 1] = enc_string(v)
  elseif ty == "boolean" then out[#out + 1] = tostring(v)
  elseif ty == "table" then
    local pad = indent and ("\n" .. string.rep("  ", indent + 1)) or ""
    local close = indent and ("\n" .. string.rep("  ", indent)) or ""
    local deeper = indent and indent + 1
    if is_array(v) then
      -- arrays of numbers stay on one line: they are the bulk of a cell
      local flat = true
      for _, x in ipairs(v) do if type(x) == "table" then flat = false break end end
      out[#out + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        if not flat then out[#out + 1] = pad end
        enc(x, out, deeper)
      end
      out[#out + 1] = (flat or #v == 0) and "]" or (close .. "]")
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then error("table1_json: object keys must be strings (got " .. type(k) .. ")", 0) end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = pad
        out[#out + 1] = enc_string(k)
        out[#out + 1] = indent and ": " or ":"
        enc(v[k], out, deeper)
      end
      out[#out + 1] = #keys > 0 and (close .. "}") or "}"
    end
  else
    error("table1_json: cannot encode a " .. ty, 0)
  end
end

-- encode(v [, pretty]) -> text; pretty indents objects (arrays of numbers
-- stay on one line).
function J.encode(v, pretty)
  local out = {}
  enc(v, out, pretty and 0 or nil)
  return table.concat(out)
end

local NAN = 0 / 0

-- decode(s) -> value, or nil and a message saying where the text is bad.
function J.decode(s)
  local pos = 1
  local function fail(what) error({ msg = string.format("%s at character %d", what, pos) }, 0) end
  local function skip() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end
  local value
  local function str()
    local out = {}
    pos = pos + 1
    while true do
      local a, b = s:find('["\\]', pos)
      if not a then fail("unterminated string") end
      out[#out + 1] = s:sub(pos, a - 1)
      if s:sub(a, a) == '"' then pos = b + 1 break end
      local c = s:sub(a + 1, a + 1)
      local simple = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", n = "\n", r = "\r", t = "\t", b = "\b", f = "\f" }
      if simple[c] then out[#out + 1], pos = simple[c], a + 2
      elseif c == "u" then
        local hex = s:sub(a + 2, a + 5)
        if not hex:match("^%x%x%x%x$") then fail("bad \\u escape") end
        out[#out + 1], pos = utf8.char(tonumber(hex, 16)), a + 6
      else fail("bad escape") end
    end
    return table.concat(out)
  end
  function value()
    skip()
    local c = s:sub(pos, pos)
    if c == "{" then
      local t = {}
      pos = pos + 1
      skip()
      if s:sub(pos, pos) == "}" then pos = pos + 1 return t end
      while true do
        skip()
        if s:sub(pos, pos) ~= '"' then fail("expected a key") end
        local k = str()
        skip()
        if s:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        t[k] = value()
        skip()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return t end
        if d ~= "," then fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      local t = {}
      pos = pos + 1
      skip()
      if s:sub(pos, pos) == "]" then pos = pos + 1 return t end
      while true do
        t[#t + 1] = value()
        skip()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return t end
        if d ~= "," then fail("expected ',' or ']'") end
      end
    elseif c == '"' then return str()
    elseif s:sub(pos, pos + 3) == "null" then pos = pos + 4 return NAN
    elseif s:sub(pos, pos + 3) == "true" then pos = pos + 4 return true
    elseif s:sub(pos, pos + 4) == "false" then pos = pos + 5 return false
    else
      local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      local v = num and tonumber(num)
      if not v then fail("unexpected '" .. c .. "'") end
      pos = pos + #num
      return v
    end
  end
  local ok, v = pcall(function()
    local r = value()
    skip()
    if pos <= #s then fail("text after the value") end
    return r
  end)
  if ok then return v end
  if type(v) == "table" then return nil, v.msg end
  error(v, 0) -- not a syntax error (e.g. an interruption): pass it on
end

return J
