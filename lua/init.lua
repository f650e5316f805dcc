-- init.lua - the start-up script every mode of iclplay runs (REPL, TUI,
-- `run`, `-e`) right after the C module `icl` is loaded.
--
-- It receives the lua/ folder it lives in (found by main.c next to the
-- executable, or $ICLPLAY_LUA) and:
--   * puts that folder on package.path, so require("icl.presets") works;
--   * defines help() on top of the help registry of the C bindings
--     (icl.doc / icl.docs): help() lists topics, help(icl.model) explains a
--     function, help(m) an object and its methods, help("tasks") a topic;
--   * defines icl.pretty(v), the way the REPL shows results (tables
--     pretty-printed, nested and truncated);
--   * loads the presets (icl.presets.*, icl.build).
-- It is not a place for user settings: those go in your own scripts.

local dir = ...
local icl = require("icl")

if type(dir) == "string" and dir ~= "" then
  icl.lua_dir = dir
  package.path = dir .. "/?.lua;" .. dir .. "/?/init.lua;" .. package.path
end

local function first_line(s)
  return (tostring(s):match("^[^\n]*"))
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end

------------------------------------------------------------------------------
-- pretty-printing of REPL results
------------------------------------------------------------------------------

local PRETTY_DEPTH = 3      -- nested tables shown below the top one
local PRETTY_ITEMS = 24     -- entries shown per table
local PRETTY_WIDTH = 100    -- a table that fits in this many columns stays on one line

local function is_ident(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil and not ({
    ["and"] = 1, ["break"] = 1, ["do"] = 1, ["else"] = 1, ["elseif"] = 1, ["end"] = 1, ["false"] = 1,
    ["for"] = 1, ["function"] = 1, ["goto"] = 1, ["if"] = 1, ["in"] = 1, ["local"] = 1, ["nil"] = 1,
    ["not"] = 1, ["or"] = 1, ["repeat"] = 1, ["return"] = 1, ["then"] = 1, ["true"] = 1, ["until"] = 1,
    ["while"] = 1 })[s]
end

local function has_tostring(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__tostring ~= nil
end

-- A value inside a table: one line.
local function atom(v)
  local tv = type(v)
  if tv == "string" then return (string.format("%q", v):gsub("\\\n", "\\n")) end
  if tv == "function" then
    local _, name = icl.doc(v)
    return name and ("function " .. name) or tostring(v)
  end
  local s = tostring(v)
  local line = first_line(s)
  if line ~= s then line = line .. " ..." end
  return line
end

local function pretty_table(t, depth, indent, seen)
  if seen[t] then return "<cycle>" end
  if depth > PRETTY_DEPTH then return "{...}" end
  seen[t] = true
  local parts, n, shown = {}, #t, 0
  local function add(s)
    shown = shown + 1
    parts[#parts + 1] = s
  end
  local total = 0
  for _ in pairs(t) do total = total + 1 end
  local function value(v)
    if type(v) == "table" and not has_tostring(v) then
      return pretty_table(v, depth + 1, indent .. "  ", seen)
    end
    return atom(v)
  end
  for i = 1, n do
    if shown >= PRETTY_ITEMS then break end
    add(value(t[i]))
  end
  for _, k in ipairs(sorted_keys(t)) do
    if shown >= PRETTY_ITEMS then break end
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then
      local key = is_ident(k) and k or ("[" .. atom(k) .. "]")
      add(key .. " = " .. value(t[k]))
    end
  end
  seen[t] = nil
  if total > shown then parts[#parts + 1] = string.format("... (%d more)", total - shown) end
  if #parts == 0 then return "{}" end
  local one = "{ " .. table.concat(parts, ", ") .. " }"
  if #one + #indent <= PRETTY_WIDTH and not one:find("\n", 1, true) then return one end
  local inner = indent .. "  "
  return "{\n" .. inner .. table.concat(parts, ",\n" .. inner) .. "\n" .. indent .. "}"
end

function icl.pretty(v)
  if type(v) == "table" and not has_tostring(v) then return pretty_table(v, 1, "", {}) end
  if type(v) == "function" then
    local _, name = icl.doc(v)
    if name then return tostring(v) .. " (" .. name .. "; help(" .. name .. ") explains it)" end
  end
  return tostring(v)
end
icl.setdoc(icl.pretty, "icl.pretty",
  "icl.pretty(v) -> string: how the REPL shows a result (tables nested and truncated, objects via tostring)")

------------------------------------------------------------------------------
-- help()
------------------------------------------------------------------------------

local topics = {}
local topic_order = {}
local function topic(name, line, body)
  topics[name] = { line = line, body = body }
  topic_order[#topic_order + 1] = name
end

local function list_docs(prefix, strip)
  local out = {}
  for _, name in ipairs(icl.docs(prefix)) do
    local doc = icl.doc(name)
    local key = strip and name:sub(#prefix + 1) or name
    out[#out + 1] = string.format("  %-26s %s", key, first_line(doc))
  end
  return table.concat(out, "\n")
end

topic("quickstart", "build, train and evaluate a model in a few lines", function()
  return [[
local p = icl.presets.linear{ arch = "mamba" }   -- SPEC 2.1 at playground scale
local m, t, tr = icl.build(p)                    -- model, task, trainer
tr:run{ max_steps = 500 }                        -- Ctrl-C stops at a step boundary
print(tr.loss)
local e = icl.eval(m, t, { prompts = 256 })      -- model vs least squares, 3-NN, averaging
print(e)
-- the same by hand:
m  = icl.model{ arch = "mambaformer", d_model = 64, n_layer = 4, n_dims = 5 }
t  = icl.task{ "linear_regression", n_dims = 5, n_points = 20 }
tr = icl.trainer{ model = m, task = t, lr = 1e-3, batch = 64 }
tr:step(100)
More: lua/examples/ (quickstart.lua, sweep.lua, custom_task.lua), help(icl), help(m).]]
end)

topic("tasks", "the in-context tasks (SPEC section 2)", function()
  return "icl.task{ name, n_dims = .., n_points = .., ... }; t:options() lists a task's options.\n"
    .. list_docs("tasks.", true)
end)

topic("archs", "the architectures icl.model{ arch = ... } builds", function()
  return "n_layer counts attention and mixer blocks as the paper does.\n" .. list_docs("archs.", true)
end)

topic("baselines", "the classical learners icl.eval compares with", function()
  return "icl.eval(m, t, { baselines = { ... } }); by default the ones the paper uses for the task.\n"
    .. list_docs("baselines.", true)
end)

topic("presets", "the paper's experiments: icl.presets.<name>{ arch =, scale = }", function()
  local lines = {
    "p = icl.presets.<name>{ arch = \"mamba\", scale = \"playground\" | \"paper\", model = {..}, task = {..},",
    "                        trainer = {..}, run = {..} }   (the last four override the preset's settings)",
    "m, t, tr = icl.build(p); tr:run(p.run)",
  }
  if type(icl.presets) == "table" then
    for _, name in ipairs(sorted_keys(icl.presets)) do
      local ok, p = pcall(icl.presets[name])
      lines[#lines + 1] = string.format("  %-16s %s", name, ok and p.description or "")
    end
  else
    lines[#lines + 1] = "  (the presets did not load: see the warning printed at start-up)"
  end
  return table.concat(lines, "\n")
end)

topic("repl", "the REPL: printing, multi-line input, Tab, Ctrl-C, history", function()
  return [[
An expression prints its value (`=expr` too); several values print separated by tabs.
An incomplete statement continues on the next line (prompt ">>"); Ctrl-C at the prompt drops it.
Tab completes globals, fields and methods: icl.pre<Tab>, m:for<Tab>, tr.lo<Tab>.
Ctrl-C while a command runs stops it (training stops at the next step boundary, intact).
Errors print with a traceback and never end the session. `local` variables die with their line:
use globals at the prompt. History is kept in ~/.iclplay_history. Ctrl-D quits.]]
end)

local function help_topics()
  local lines = { "iclplay " .. icl.version .. " - help topics:" }
  for _, name in ipairs(topic_order) do
    lines[#lines + 1] = string.format("  %-20s %s", string.format("help(%q)", name), topics[name].line)
  end
  lines[#lines + 1] = string.format("  %-20s %s", "help(icl)", "every function of the module")
  lines[#lines + 1] = string.format("  %-20s %s", "help(x)",
    "any function or object: help(icl.model), help(m), help(tr.run)")
  return table.concat(lines, "\n")
end

-- The members of a documented table (icl, icl.presets), one line each.
local function help_members(t, prefix)
  local lines = {}
  for _, k in ipairs(sorted_keys(t)) do
    local v = t[k]
    local doc = icl.doc(v)
    if not doc and type(k) == "string" then doc = icl.doc(prefix .. k) end
    if type(k) == "string" then
      local what = doc and first_line(doc) or (type(v) == "table" and "(table)" or tostring(v))
      lines[#lines + 1] = string.format("  %-14s %s", k, what)
    end
  end
  return table.concat(lines, "\n")
end

local function help_object(x)
  local mt = getmetatable(x)
  local tname = type(mt) == "table" and rawget(mt, "__name") or nil
  if type(tname) ~= "string" then return nil end
  local lines = { first_line(tostring(x)) }
  local doc = icl.doc(tname)
  if doc then lines[#lines + 1] = doc end
  local methods = icl.docs(tname .. ":")
  if #methods > 0 then
    lines[#lines + 1] = "methods:"
    for _, name in ipairs(methods) do
      lines[#lines + 1] = "  " .. first_line(icl.doc(name))
    end
  end
  local fields = rawget(mt, "__fields")
  if type(fields) == "table" and #fields > 0 then
    lines[#lines + 1] = "fields: " .. table.concat(fields, ", ")
  end
  return table.concat(lines, "\n")
end

-- "name: doc", unless the doc's synopsis already names it ("tr:run{ ... }").
local function named(name, doc)
  local short = name:match("[^.:]+$") or name
  if first_line(doc):find(short, 1, true) then return doc end
  return name .. ": " .. doc
end

local function help_text(x)
  if x == nil then return help_topics() end
  local tx = type(x)
  if tx == "string" then
    if topics[x] then return topics[x].body() end
    local doc, name = icl.doc(x)
    if doc then return named(name, doc) end
    for _, group in ipairs({ "tasks.", "archs.", "baselines.", "icl.", "icl.presets." }) do
      doc = icl.doc(group .. x)
      if doc then return named(group .. x, doc) end
    end
    if type(icl.presets) == "table" and type(icl.presets[x]) == "function" then
      return named("icl.presets." .. x, icl.doc(icl.presets[x]) or "")
    end
    local related = {}
    for _, n in ipairs(icl.docs()) do
      if n:find(x, 1, true) then related[#related + 1] = n end
    end
    if #related > 0 then
      return string.format("no help for %q; related: %s", x, table.concat(related, ", ", 1, math.min(#related, 12)))
    end
    return string.format("no help for %q; help() lists the topics", x)
  end
  local doc, name = icl.doc(x)
  if tx == "table" then
    local mt = getmetatable(x)
    if not doc and not (type(mt) == "table" and rawget(mt, "__name")) then
      return "a table with " .. #x .. " array entries:\n" .. help_members(x, "")
    end
    if doc then
      local members = help_members(x, name .. ".")
      return named(name, doc) .. (members ~= "" and ("\n" .. members) or "")
    end
  end
  if doc then return named(name, doc) end
  if tx == "userdata" or tx == "table" then
    local text = help_object(x)
    if text then return text end
  end
  if tx == "function" then
    local info = debug.getinfo(x, "S")
    if info.what == "Lua" then
      return string.format("a Lua function defined at %s:%d (no help text; icl.setdoc documents it)",
        info.short_src, info.linedefined)
    end
    return "a C function without help text"
  end
  return string.format("a %s: %s", tx, tostring(x))
end

function help(x)
  print(help_text(x))
end
icl.setdoc(help, "help",
  "help([x]): help() lists the topics; help(f) explains a function, help(obj) an object and its\n"
  .. "methods, help(\"tasks\") a topic, help(\"icl.model:forward\") a name.")
icl.setdoc(nil, "icl.lua_dir", "icl.lua_dir: the lua/ folder the start-up script and presets were loaded from")
icl.help_text = help_text
icl.setdoc(icl.help_text, "icl.help_text", "icl.help_text([x]) -> string: what help(x) prints")

------------------------------------------------------------------------------
-- presets
------------------------------------------------------------------------------

local ok, err = pcall(require, "icl.presets")
if not ok then
  io.stderr:write("iclplay: warning: the presets did not load: ", tostring(err), "\n")
end
