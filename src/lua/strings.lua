-- string.find, match, gmatch (and its old name gfind), gsub and rep on the
-- bounded matcher of src/lua/pattern.rs. Same arguments, results and errors
-- as Lua 5.1's lstrlib.c; what differs is that a match that would run past
-- the call's budget fails instead of hanging the worker.
--
-- search(s, p, init, mode, plain) does the matching, in Rust. init is
-- 0-based; mode is FIND, MATCH, GMATCH or RAW (for gsub). It returns nil
-- when nothing matches, false and a message for an error, else:
--   FIND:   start, end (1-based, inclusive), then the captures;
--   MATCH:  the captures, or the whole match when there are none;
--   GMATCH: where the next search starts, then as MATCH;
--   RAW:    start, end (0-based, end exclusive), then one value per capture:
--           a string, a position, or false for a capture never closed.
local search, plain_find, repeat_string = ...
local FIND, MATCH, GMATCH, RAW = 0, 1, 2, 3
local type, tostring, tonumber, select, error, unpack = type, tostring, tonumber, select, error, unpack
local floor, ceil = math.floor, math.ceil
local sub, concat = string.sub, table.concat

-- Raised with level 3: the caller of the function that called fail, which
-- every entry point below reaches by tail calls only.
local function fail(message)
  error(message, 3)
end

local function argument_error(n, name, expected, value, given)
  local got = n > given and 'no value' or type(value)
  return "bad argument #" .. n .. " to '" .. name .. "' (" .. expected .. " expected, got " .. got .. ")"
end

-- luaL_checklstring: strings, and numbers as tostring writes them.
local function to_string(value)
  local kind = type(value)
  if kind == 'string' then return value end
  if kind == 'number' then return tostring(value) end
  return nil
end

-- luaL_checkinteger / luaL_optinteger: numbers and numeric strings, truncated.
local function to_integer(value)
  local number = tonumber(value)
  if number == nil then return nil end
  if number >= 0 then return floor(number) end
  return ceil(number)
end

local function relative(position, length)
  if position < 0 then position = position + length + 1 end
  if position >= 0 then return position end
  return 0
end

local function checked(first, ...)
  if first == false then fail((...)) end
  return first, ...
end

local function find_or_match(mode, name, given, s, p, init, plain)
  if type(s) == 'string' and type(p) == 'string' and init == nil then
    return checked(search(s, p, 0, mode, plain))
  end
  local subject, pattern = to_string(s), to_string(p)
  if subject == nil then fail(argument_error(1, name, 'string', s, given)) end
  if pattern == nil then fail(argument_error(2, name, 'string', p, given)) end
  local length = #subject
  local start = 1
  if init ~= nil then
    start = to_integer(init)
    if start == nil then fail(argument_error(3, name, 'number', init, given)) end
  end
  start = relative(start, length) - 1
  if start < 0 then start = 0 elseif start > length then start = length end
  return checked(search(subject, pattern, start, mode, plain))
end

function string.find(...)
  return find_or_match(FIND, 'find', select('#', ...), ...)
end

function string.match(...)
  return find_or_match(MATCH, 'match', select('#', ...), ...)
end

local function gmatch(...)
  local given = select('#', ...)
  local s, p = ...
  local subject, pattern = to_string(s), to_string(p)
  if subject == nil then fail(argument_error(1, 'gmatch', 'string', s, given)) end
  if pattern == nil then fail(argument_error(2, 'gmatch', 'string', p, given)) end
  local position = 0
  local function step(next, ...)
    if next == false then fail((...)) end
    if next == nil then return nil end
    position = next
    return ...
  end
  -- A leading '^' is a plain character here, as in Lua 5.1.
  return function()
    if position > #subject then return nil end
    return step(search(subject, pattern, position, GMATCH))
  end
end
string.gmatch = gmatch
string.gfind = gmatch

local function count_and_pack(...)
  return select('#', ...), { ... }
end

-- Capture i (from 0) of a match, or the whole match when there are none.
local function capture(found, level, i, subject)
  if i >= level then
    if i == 0 then return sub(subject, found[1] + 1, found[2]) end
    fail("invalid capture index")
  end
  local value = found[3 + i]
  if value == false then fail("unfinished capture") end
  return value
end

-- The replacement string with %0-%9 and %x expanded (add_s).
local function expand(replacement, found, level, subject, out)
  local from = 0
  while true do
    local at = plain_find(replacement, '%', from)
    if at == nil then
      out[#out + 1] = sub(replacement, from + 1)
      return
    end
    out[#out + 1] = sub(replacement, from + 1, at)
    local escaped = sub(replacement, at + 2, at + 2)
    if escaped == '' then
      -- Lua 5.1 reads the string's terminating zero here.
      out[#out + 1] = '\0'
    elseif escaped == '0' then
      out[#out + 1] = sub(subject, found[1] + 1, found[2])
    elseif escaped >= '1' and escaped <= '9' then
      out[#out + 1] = capture(found, level, escaped:byte() - 49, subject)
    else
      out[#out + 1] = escaped
    end
    from = at + 2
  end
end

local function all_captures(found, level, count, subject)
  if level == 0 then return sub(subject, found[1] + 1, found[2]) end
  for i = 3, count do
    if found[i] == false then fail("unfinished capture") end
  end
  return unpack(found, 3, count)
end

function string.gsub(...)
  local given = select('#', ...)
  local s, p, replacement, most = ...
  local subject, pattern = to_string(s), to_string(p)
  if subject == nil then fail(argument_error(1, 'gsub', 'string', s, given)) end
  if pattern == nil then fail(argument_error(2, 'gsub', 'string', p, given)) end
  local kind = type(replacement)
  local length = #subject
  local limit = length + 1
  if most ~= nil then
    limit = to_integer(most)
    if limit == nil then fail(argument_error(4, 'gsub', 'number', most, given)) end
  end
  if kind ~= 'number' and kind ~= 'string' and kind ~= 'function' and kind ~= 'table' then
    fail("bad argument #3 to 'gsub' (string/function/table expected)")
  end
  if kind == 'number' then replacement = tostring(replacement) end
  local anchored = sub(pattern, 1, 1) == '^'
  local out, done, at = {}, 0, 0
  while done < limit do
    local count, found = count_and_pack(search(subject, pattern, at, RAW))
    local start, finish = found[1], found[2]
    if start == false then fail(finish) end
    if start == nil then break end
    local level = count - 2
    out[#out + 1] = sub(subject, at + 1, start)
    done = done + 1
    if kind == 'string' or kind == 'number' then
      expand(replacement, found, level, subject, out)
    else
      local value
      if kind == 'function' then
        value = replacement(all_captures(found, level, count, subject))
      else
        value = replacement[capture(found, level, 0, subject)]
      end
      if not value then
        out[#out + 1] = sub(subject, start + 1, finish)
      elseif type(value) == 'string' or type(value) == 'number' then
        out[#out + 1] = value
      else
        fail("invalid replacement value (a " .. type(value) .. ")")
      end
    end
    if finish > start then
      at = finish
    elseif start < length then
      out[#out + 1] = sub(subject, start + 1, start + 1)
      at = start + 1
    else
      at = start
      break
    end
    if anchored then break end
  end
  out[#out + 1] = sub(subject, at + 1)
  return concat(out), done
end

function string.rep(...)
  local given = select('#', ...)
  local s, n = ...
  local subject = to_string(s)
  if subject == nil then fail(argument_error(1, 'rep', 'string', s, given)) end
  local times = to_integer(n)
  if times == nil then fail(argument_error(2, 'rep', 'number', n, given)) end
  local result, problem = repeat_string(subject, times)
  if result == nil then fail(problem) end
  return result
end
