-- table1_svg.lua - the line charts of lua/experiments/table1.lua: plain SVG 1.1
-- text (axes with ticks, series, bands, level lines, legend), Okabe-Ito
-- colours chosen by the caller. chart(c) returns the document as a string.
-- Split from table1.lua to keep each file to one job.
local U = require("icl.table1_util")

local M = {}

local LEVEL_COLOR = "#999999"
local SPAN_COLOR = "#f0f0f0"
local function isnan(v) return v ~= v end

-- Tick labels of 1,000 and more. (When this file was split from table1.lua
-- it called an undefined global here, which crashed every chart whose axis
-- reached 1,000 steps: every full run, and the Ctrl-C test's 100,000-step run.)
local thousands = U.thousands

local function esc(s) return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;")) end

local function linear_ticks(lo, hi, integer)
  local raw = (hi - lo) / 6
  if raw <= 0 then return { lo } end
  local mag = 10 ^ math.floor(math.log(raw, 10))
  if integer and mag < 1 then mag = 1 end
  local step = mag
  for _, k in ipairs({ 1, 2, 5, 10 }) do
    if k * mag >= raw then step = k * mag break end
  end
  local ticks = {}
  for v = math.ceil(lo / step) * step, hi + step * 1e-9, step do ticks[#ticks + 1] = v end
  return ticks
end

local function tick_label(v)
  if v == 0 then return "0" end
  if math.abs(v) >= 1000 then return thousands(v) end
  if math.abs(v) < 0.01 then return string.format("%g", v) end
  return (string.format("%.2f", v):gsub("0+$", ""):gsub("%.$", ""))
end

-- chart{ title, xlabel, ylabel, xmax, ylog, ymin, ymax, series = { { label, color,
-- dash, width, points = { {x, y}, ... }, band = { {x, lo, hi}, ... } } },
-- level = { y, label } } -> SVG text.
local function chart(c)
  local W, H, L, Rm, T, Bm = 860, 460, 70, 200, 44, 52
  local pw, ph = W - L - Rm, H - T - Bm
  local ylo, yhi = c.ymin, c.ymax
  local function fy(v)
    if c.ylog then v = math.log(math.max(v, ylo * 1e-3), 10) end
    local a, b = c.ylog and math.log(ylo, 10) or ylo, c.ylog and math.log(yhi, 10) or yhi
    return T + ph - (v - a) / (b - a) * ph
  end
  local function fx(v) return L + (c.xmax > 0 and v / c.xmax or 0) * pw end
  local out = {
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
    string.format('<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" '
      .. 'viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">', W, H, W, H),
    "<title>" .. esc(c.title) .. "</title>",
    string.format('<defs><clipPath id="area"><rect x="%d" y="%d" width="%d" height="%d"/></clipPath></defs>',
      L, T, pw, ph),
    string.format('<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>', W, H),
    string.format('<text x="%d" y="26" text-anchor="middle" font-size="14" font-weight="bold">%s</text>',
      W // 2, esc(c.title)),
  }
  local function add(s) out[#out + 1] = s end
  -- grid and tick labels
  local yt = {}
  if c.ylog then
    for k = math.floor(math.log(ylo, 10) + 0.5), math.floor(math.log(yhi, 10) + 0.5) do yt[#yt + 1] = 10 ^ k end
  else
    yt = linear_ticks(ylo, yhi)
  end
  if c.span then -- the scored window, under the grid
    local x0, x1 = math.max(L, fx(c.span[1] - 0.5)), math.min(L + pw, fx(c.span[2] + 0.5))
    add(string.format('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>', x0, T, x1 - x0, ph, SPAN_COLOR))
  end
  add('<g stroke="#e6e6e6" stroke-width="1">')
  for _, v in ipairs(yt) do
    add(string.format('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>', L, fy(v), L + pw, fy(v)))
  end
  local xt = linear_ticks(0, c.xmax, true)
  for _, v in ipairs(xt) do
    add(string.format('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>', fx(v), T, fx(v), T + ph))
  end
  add("</g>")
  add('<g fill="#333333">')
  for _, v in ipairs(yt) do
    add(string.format('<text x="%d" y="%.1f" text-anchor="end">%s</text>', L - 6, fy(v) + 4, tick_label(v)))
  end
  for _, v in ipairs(xt) do
    add(string.format('<text x="%.1f" y="%d" text-anchor="middle">%s</text>', fx(v), T + ph + 16, tick_label(v)))
  end
  add(string.format('<text x="%d" y="%d" text-anchor="middle">%s</text>', L + pw // 2, H - 10, esc(c.xlabel)))
  add(string.format('<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">%s</text>',
    T + ph // 2, T + ph // 2, esc(c.ylabel)))
  add("</g>")
  -- data, clipped to the plot area
  add('<g clip-path="url(#area)">')
  for _, s in ipairs(c.series) do
    if s.band and #s.band > 1 then
      local up, down = {}, {}
      for _, p in ipairs(s.band) do
        if not isnan(p[2]) and not isnan(p[3]) then
          up[#up + 1] = string.format("%.1f,%.1f", fx(p[1]), fy(p[3]))
          table.insert(down, 1, string.format("%.1f,%.1f", fx(p[1]), fy(p[2])))
        end
      end
      if #up > 1 then
        add(string.format('<polygon fill="%s" fill-opacity="0.15" stroke="none" points="%s %s"/>', s.color,
          table.concat(up, " "), table.concat(down, " ")))
      end
    end
  end
  if c.level then
    add(string.format('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="1.5"/>', L,
      fy(c.level[1]), L + pw, fy(c.level[1]), LEVEL_COLOR))
  end
  for _, s in ipairs(c.series) do
    local seg = {}
    local function flush()
      if #seg > 1 then
        add(string.format('<polyline fill="none" stroke="%s" stroke-width="%.1f"%s stroke-linejoin="round" '
          .. 'points="%s"/>', s.color, s.width or 2, s.dash and (' stroke-dasharray="' .. s.dash .. '"') or "",
          table.concat(seg, " ")))
      elseif #seg == 1 then
        local x, y = seg[1]:match("([^,]+),([^,]+)")
        add(string.format('<circle cx="%s" cy="%s" r="2.5" fill="%s"/>', x, y, s.color))
      end
      seg = {}
    end
    for _, p in ipairs(s.points) do
      if isnan(p[2]) then flush() else seg[#seg + 1] = string.format("%.1f,%.1f", fx(p[1]), fy(p[2])) end
    end
    flush()
  end
  add("</g>")
  add(string.format('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333333"/>', L, T, pw, ph))
  -- legend
  local y = T + 8
  local seen = {}
  local entries = {}
  for _, s in ipairs(c.series) do
    if s.label and not seen[s.label] then
      seen[s.label] = true
      entries[#entries + 1] = s
    end
  end
  if c.level then entries[#entries + 1] = { label = c.level[2], color = LEVEL_COLOR, width = 1.5 } end
  if c.span then entries[#entries + 1] = { label = c.span[3], swatch = true } end
  for _, s in ipairs(entries) do
    if s.swatch then
      add(string.format('<rect x="%d" y="%d" width="28" height="10" fill="%s"/>', L + pw + 14, y - 5, SPAN_COLOR))
    else
      add(string.format('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="%.1f"%s/>', L + pw + 14, y,
        L + pw + 42, y, s.color, s.width or 2, s.dash and (' stroke-dasharray="' .. s.dash .. '"') or ""))
    end
    add(string.format('<text x="%d" y="%d" fill="#333333">%s</text>', L + pw + 48, y + 4, esc(s.label)))
    y = y + 18
  end
  add("</svg>")
  return table.concat(out, "\n") .. "\n"
end


M.chart = chart
M.esc = esc
return M
