--[[
Custos placement for Slurm: job_submit/lua (docs/schedulers.md, "Slurm").

At submission, one `place` call over the JSON-RPC Unix socket of `custos serve` decides on
which nodes of the job's partitions the job may run. The job is then kept off the others
(`exc_nodes`), or refused with the reasons, which sbatch prints. slurmctld runs this script
under its locks, one submission at a time, so the call is bounded: one connection, one request,
one answer line, `CUSTOS_TIMEOUT` seconds for all of it, and never one call per node. Whatever
goes wrong (Custos stopped, too slow, an error, a malformed answer) the submission is refused:
nothing runs that Custos did not place.

Install: copy to the directory of slurm.conf as job_submit.lua, set JobSubmitPlugins=lua, and
install lua-socket and lua-cjson (Debian: apt-get install lua-socket lua-cjson). Settings come
from slurmctld's environment (systemd: Environment= in a drop-in), else the defaults below.

The job, as place reads it:
  job.principal  User::"<submitting user>"       (slurmctld knows the uid from munge)
  job.study      the account (--account, else the user's default account)
  job.purpose    key purpose= of --comment (else of --extra)
  job.datasets   key datasets= of --comment (else of --extra), comma-separated ids
  job.gxp        true when the QOS (--qos, else the association's default) is CUSTOS_GXP_QOS
                 (default gxp), compared without case
  job.image      --container, else key image= of --comment/--extra (both: they must agree)
  A key given twice, or in --comment and --extra with different values, refuses the job.
  nodes          every node of the job's partitions (the default partition when none is
                 given), by name: the node inventory (custos slurm-node-sync) describes them
  e.g. sbatch -A ONC-301 --comment "purpose=primary_research datasets=onc301-de-clinical" job.sh
]]

local CONFIG = {
  socket = os.getenv("CUSTOS_SOCKET") or "/run/custos/custos.sock",
  timeout = tonumber(os.getenv("CUSTOS_TIMEOUT") or "") or 1.0,
  gxp_qos = os.getenv("CUSTOS_GXP_QOS") or "gxp",
  -- At most this many reasons are shown to the user when a job is refused.
  max_reasons = 8,
}

local have_socket, socket = pcall(require, "socket")
local have_unix, unix = pcall(require, "socket.unix")
local have_cjson, cjson = pcall(require, "cjson.safe")

-- JSON text is written by hand: lua-cjson encodes an empty table as {} (an object), and
-- `place` needs [] for a job without datasets; every array here is written as an array.
local function jstr(s)
  s = tostring(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function jarr(list)
  local parts = {}
  for i = 1, #list do parts[i] = jstr(list[i]) end
  return "[" .. table.concat(parts, ",") .. "]"
end

-- Expands a Slurm hostlist ("gpu-fra-[01-03,07],gpu-pdx-1") into names, zero padding kept.
local function expand(hostlist, out)
  out = out or {}
  if not hostlist or hostlist == "" or hostlist == "(null)" then return out end
  local depth, start = 0, 1
  local items = {}
  for i = 1, #hostlist do
    local c = hostlist:sub(i, i)
    if c == "[" then depth = depth + 1 elseif c == "]" then depth = depth - 1
    elseif c == "," and depth == 0 then items[#items + 1] = hostlist:sub(start, i - 1); start = i + 1 end
  end
  items[#items + 1] = hostlist:sub(start)
  for _, item in ipairs(items) do
    local pre, ranges, post = item:match("^([^%[]*)%[([^%]]*)%](.*)$")
    if not pre then
      if item ~= "" then out[#out + 1] = item end
    else
      for r in ranges:gmatch("[^,]+") do
        local a, b = r:match("^(%d+)-(%d+)$")
        if not a then a, b = r, r end
        local width = #a
        for n = tonumber(a), tonumber(b) do
          expand(pre .. string.format("%0" .. width .. "d", n) .. post, out)
        end
      end
    end
  end
  return out
end

-- key=value pairs of a --comment or --extra ("purpose=x datasets=a,b", or ";"-separated);
-- nil and why when a key is given twice: the job would be decided on one of its values.
local function keys(text, where)
  local out = {}
  if not text then return out end
  for pair in tostring(text):gmatch("[^;%s]+") do
    local k, v = pair:match("^([%w_%.%-]+)=(.*)$")
    if k then
      if out[k] ~= nil then return nil, k .. "= is given twice in " .. (where or "the text") end
      out[k] = v
    end
  end
  return out
end

local function split_commas(text)
  local out = {}
  for id in (text or ""):gmatch("[^,%s]+") do out[#out + 1] = id end
  return out
end

local function set(v) return v ~= nil and v ~= "" and v ~= "(null)" end

-- The nodes of the partitions the job asks for, or of the default partition.
local function partition_nodes(job_desc, part_list)
  local wanted = {}
  if set(job_desc.partition) then
    for p in job_desc.partition:gmatch("[^,]+") do wanted[p] = true end
  end
  local names, seen = {}, {}
  for name, part in pairs(part_list) do
    local pname = part.name or name
    local default = part.flag_default == 1 or part.flag_default == true
    if (next(wanted) and wanted[pname]) or (not next(wanted) and default) then
      for _, n in ipairs(expand(part.nodes)) do
        if not seen[n] then seen[n] = true; names[#names + 1] = n end
      end
    end
  end
  return names
end

-- One JSON-RPC call; returns the result table, or nil and why not.
local function call(method, params_json)
  if not (have_socket and have_unix) then return nil, "lua-socket (socket.unix) is not installed" end
  if not have_cjson then return nil, "lua-cjson is not installed" end
  local deadline = socket.gettime() + CONFIG.timeout
  local function left() return math.max(0, deadline - socket.gettime()) end
  local s = unix.stream and unix.stream() or unix()
  if not s then return nil, "cannot create a Unix socket" end
  s:settimeout(left())
  local ok, err = s:connect(CONFIG.socket)
  if not ok then s:close(); return nil, "cannot connect to " .. CONFIG.socket .. ": " .. tostring(err) end
  local request = '{"jsonrpc":"2.0","id":1,"method":' .. jstr(method) .. ',"params":' .. params_json .. "}\n"
  local sent = 0
  while sent < #request do
    s:settimeout(left())
    local n, e, partial = s:send(request, sent + 1)
    if not n then
      if e == "timeout" and partial and partial > sent and left() > 0 then sent = partial
      else s:close(); return nil, "sending to Custos failed: " .. tostring(e) end
    else sent = n end
  end
  local parts = {}
  while true do
    s:settimeout(left())
    local line, e, partial = s:receive("*l")
    if line then parts[#parts + 1] = line; break end
    if partial and partial ~= "" then parts[#parts + 1] = partial end
    if e ~= "timeout" or left() <= 0 then
      s:close()
      return nil, (e == "timeout" and ("no answer from Custos within " .. CONFIG.timeout .. " s") or ("reading from Custos failed: " .. tostring(e)))
    end
  end
  s:close()
  local reply = cjson.decode(table.concat(parts))
  if type(reply) ~= "table" then return nil, "Custos answered something that is not JSON" end
  if type(reply.error) == "table" then
    return nil, "Custos error " .. tostring(reply.error.code) .. ": " .. tostring(reply.error.message)
  end
  if type(reply.result) ~= "table" then return nil, "Custos answered without a result" end
  return reply.result
end

-- The job's place params, or nil and why not.
local function place_params(job_desc, part_list, submit_uid)
  local user = job_desc.user_name
  if not set(user) then return nil, "the submitting user (uid " .. tostring(submit_uid) .. ") has no name" end
  local comment, why = keys(job_desc.comment, "--comment")
  if not comment then return nil, why end
  local extra, why2 = keys(job_desc.extra, "--extra")
  if not extra then return nil, why2 end
  -- Given in both, a key must say the same: which one counts is not for the job to pick.
  for k, v in pairs(comment) do
    if extra[k] ~= nil and extra[k] ~= v then return nil, k .. "= differs between --comment and --extra" end
  end
  local function key(k) return comment[k] or extra[k] end
  -- "datasets=a, b" would be read as a alone: every declared dataset must reach the check.
  local datasets = key("datasets")
  if datasets and (datasets:find(",$") or datasets:find(",,") or datasets:find("^,")) then
    return nil, "datasets=" .. datasets .. " has an empty id; write the ids comma-separated without spaces (datasets=a,b)"
  end
  local fields = {
    '"id":' .. jstr(user .. "/" .. (set(job_desc.name) and job_desc.name or "job")),
    '"principal":' .. jstr('User::"' .. user .. '"'),
    '"datasets":' .. jarr(split_commas(key("datasets"))),
  }
  local account = set(job_desc.account) and job_desc.account or (set(job_desc.default_account) and job_desc.default_account or nil)
  if account then fields[#fields + 1] = '"study":' .. jstr(account) end
  if set(key("purpose")) then fields[#fields + 1] = '"purpose":' .. jstr(key("purpose")) end
  -- Without --qos the job runs in the association's default QOS, which Slurm applies after
  -- this script: read it here, or a GxP default would run unchecked. QOS names are compared
  -- without case, as Slurm matches them.
  local qos = set(job_desc.qos) and job_desc.qos or job_desc.default_qos
  if set(qos) and tostring(qos):lower() == tostring(CONFIG.gxp_qos):lower() then fields[#fields + 1] = '"gxp":true' end
  -- --container is what runs: an image= that names something else is refused, not preferred.
  if set(key("image")) and set(job_desc.container) and key("image") ~= job_desc.container then
    return nil, "image= (" .. key("image") .. ") is not the job's --container (" .. job_desc.container .. ")"
  end
  local image = key("image") or (set(job_desc.container) and job_desc.container or nil)
  if set(image) then fields[#fields + 1] = '"image":' .. jstr(image) end
  local nodes = partition_nodes(job_desc, part_list)
  if #nodes == 0 then return nil, "no partition of this job has nodes (partition " .. tostring(job_desc.partition) .. ")" end
  return '{"job":{' .. table.concat(fields, ",") .. '},"nodes":' .. jarr(nodes) .. "}", nodes
end

-- "node: code: message" lines, the same reasons once with the nodes they apply to.
local function reasons_text(rejected)
  local order, by = {}, {}
  for node, list in pairs(rejected) do
    local text = {}
    for _, r in ipairs(list) do text[#text + 1] = tostring(r.code) .. ": " .. tostring(r.message) end
    local t = table.concat(text, "; ")
    if not by[t] then by[t] = {}; order[#order + 1] = t end
    table.insert(by[t], node)
  end
  table.sort(order)
  local lines = {}
  for i, t in ipairs(order) do
    if i > CONFIG.max_reasons then lines[#lines + 1] = "  (" .. (#order - CONFIG.max_reasons) .. " more)"; break end
    table.sort(by[t])
    lines[#lines + 1] = "  " .. table.concat(by[t], ",") .. ": " .. t
  end
  return table.concat(lines, "\n")
end

function slurm_job_submit(job_desc, part_list, submit_uid)
  local params, nodes = place_params(job_desc, part_list, submit_uid)
  if not params then
    slurm.log_user("%s", "custos: cannot place this job: " .. nodes)
    return slurm.ESLURM_ACCESS_DENIED
  end
  local result, why = call("place", params)
  if not result then
    -- Fail closed: a job Custos could not place does not run.
    slurm.log_error("custos: place failed for uid %s: %s", tostring(submit_uid), why)
    slurm.log_user("%s", "custos: job refused, Custos could not decide where it may run: " .. why)
    return slurm.ERROR
  end
  local allowed, rejected = {}, {}
  if type(result.allowed) == "table" then for _, n in ipairs(result.allowed) do allowed[n] = true end end
  if type(result.rejected) == "table" then rejected = result.rejected end
  local excluded = {}
  for _, n in ipairs(nodes) do if not allowed[n] then excluded[#excluded + 1] = n end end
  if #excluded == #nodes then
    slurm.log_user("%s", "custos: job refused on every node of its partitions (decision " .. tostring(result.decision_id) .. "):\n"
                   .. reasons_text(rejected))
    return slurm.ESLURM_ACCESS_DENIED
  end
  -- Nodes the user asked for by name (-w) that Custos rejects: refused with why, rather than
  -- Slurm's bare "Invalid node name specified" once they are excluded.
  if set(job_desc.req_nodes) then
    local asked = {}
    for _, n in ipairs(expand(job_desc.req_nodes)) do
      if not allowed[n] then asked[n] = rejected[n] or { { code = "placement.unknown_node", message = "not a node of the job's partitions" } } end
    end
    if next(asked) then
      slurm.log_user("%s", "custos: job refused on the nodes it asks for (decision " .. tostring(result.decision_id) .. "):\n" .. reasons_text(asked))
      return slurm.ESLURM_ACCESS_DENIED
    end
  end
  if #excluded > 0 then
    if set(job_desc.exc_nodes) then table.insert(excluded, 1, job_desc.exc_nodes) end
    job_desc.exc_nodes = table.concat(excluded, ",")
  end
  job_desc.admin_comment = "custos decision_id=" .. tostring(result.decision_id)
  slurm.log_info("custos: job of uid %s placed on %d of %d nodes, decision %s", tostring(submit_uid),
                 #nodes - #excluded, #nodes, tostring(result.decision_id))
  return slurm.SUCCESS
end

-- Changing what the placement was decided on would bypass it: refused; cancel and resubmit.
local PLACEMENT_FIELDS = { "partition", "account", "comment", "extra", "qos", "exc_nodes", "req_nodes", "features", "container" }

function slurm_job_modify(job_desc, job_rec, part_list, modify_uid)
  for _, f in ipairs(PLACEMENT_FIELDS) do
    if set(job_desc[f]) then
      slurm.log_user("%s", "custos: " .. f .. " cannot be changed after submission (Custos placed the job on it); cancel and resubmit")
      return slurm.ESLURM_ACCESS_DENIED
    end
  end
  return slurm.SUCCESS
end

-- For tests (contrib/slurm/test_job_submit.lua): the pure parts.
custos_placement = { expand = expand, keys = keys, jarr = jarr, jstr = jstr, place_params = place_params, config = CONFIG }

return slurm.SUCCESS
