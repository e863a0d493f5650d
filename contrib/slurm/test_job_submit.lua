-- Checks the parts of job_submit.lua that need no Slurm: hostlist expansion, the key=value
-- reading of --comment, and the JSON it writes (an empty array stays an array).
-- Run: lua5.1 contrib/slurm/test_job_submit.lua (Tests/IntegrationTests/SlurmJobSubmitTests.swift runs it).
slurm = { SUCCESS = 0, ERROR = -1, ESLURM_ACCESS_DENIED = 2002 }
local here = arg[0]:match("^(.*)/[^/]*$") or "."
dofile(here .. "/job_submit.lua")
local p = custos_placement
local cjson = require("cjson")

local failures = 0
local function check(name, got, want)
  if got ~= want then
    failures = failures + 1
    io.stderr:write("FAIL " .. name .. ": got " .. tostring(got) .. ", want " .. tostring(want) .. "\n")
  end
end

check("hostlist ranges and padding", table.concat(p.expand("gpu-fra-[01-03,07],gpu-pdx-1"), " "),
      "gpu-fra-01 gpu-fra-02 gpu-fra-03 gpu-fra-07 gpu-pdx-1")
check("hostlist two groups", table.concat(p.expand("r[1-2]n[8-9]"), " "), "r1n8 r1n9 r2n8 r2n9")
check("hostlist empty", #p.expand(""), 0)
check("hostlist null", #p.expand("(null)"), 0)
check("hostlist suffix", table.concat(p.expand("a[9-10]-ib"), " "), "a9-ib a10-ib")

local k = p.keys("purpose=primary_research datasets=a,b;image=reg/x@sha256:1 junk")
check("comment purpose", k.purpose, "primary_research")
check("comment datasets", k.datasets, "a,b")
check("comment image", k.image, "reg/x@sha256:1")

check("empty array", p.jarr({}), "[]")
check("escaped string", p.jstr('a"b\\c\n'), '"a\\"b\\\\c\\u000a"')

local part_list = {
  gpu = { name = "gpu", nodes = "eu-gpu-[01-02],us-gpu-01", flag_default = 1 },
  us = { name = "us", nodes = "us-gpu-01", flag_default = 0 },
}
local params, nodes = p.place_params({ user_name = "alice", name = "seg", account = "ONC-301",
  comment = "purpose=primary_research" }, part_list, 1000)
local doc = cjson.decode(params)
check("no datasets is an empty array", params:find('"datasets":%[%]', 1) ~= nil, true)
check("datasets decode as a table", type(doc.job.datasets), "table")
check("principal", doc.job.principal, 'User::"alice"')
check("study from the account", doc.job.study, "ONC-301")
check("the default partition's nodes", table.concat(doc.nodes, " "), "eu-gpu-01 eu-gpu-02 us-gpu-01")
check("nodes returned", #nodes, 3)
local params2 = p.place_params({ user_name = "alice", partition = "us", extra = "datasets=d1,d2 purpose=x",
  qos = "gxp", container = "/srv/bundles/seg" }, part_list, 1000)
local doc2 = cjson.decode(params2)
check("the asked partition", table.concat(doc2.nodes, " "), "us-gpu-01")
check("datasets from --extra", table.concat(doc2.job.datasets, " "), "d1 d2")
check("gxp from the qos", doc2.job.gxp, true)
check("image from --container", doc2.job.image, "/srv/bundles/seg")
-- What refuses a submission before any call: nothing is guessed.
local function refused(name, job, says)
  job.user_name = job.user_name or "alice"
  local got, why = p.place_params(job, part_list, 1000)
  check(name .. " is refused", got, nil)
  check(name .. " says why", (why or ""):find(says, 1, true) ~= nil, true)
end
refused("a key given twice", { comment = "purpose=primary_research purpose=ml_model_training" }, "purpose= is given twice in --comment")
refused("a key differing between --comment and --extra", { comment = "purpose=a", extra = "purpose=b" }, "purpose= differs")
refused("datasets split by a space", { comment = "datasets=onc301-de-clinical, onc301-fr-genomic" }, "has an empty id")
refused("an image that is not the container", { comment = "image=reg/q@sha256:1", container = "/srv/bundles/other" }, "is not the job's --container")
local same = cjson.decode((p.place_params({ user_name = "alice", comment = "purpose=x", extra = "purpose=x",
  container = "/srv/b", }, part_list, 1000)))
check("the same key in both is read", same.job.purpose, "x")
for _, q in ipairs({ { qos = "GxP" }, { default_qos = "gxp" }, { qos = "", default_qos = "GXP" } }) do
  q.user_name = "alice"
  local d = cjson.decode((p.place_params(q, part_list, 1000)))
  check("gxp from qos " .. tostring(q.qos) .. " default " .. tostring(q.default_qos), d.job.gxp, true)
end
local ordinary = cjson.decode((p.place_params({ user_name = "alice", qos = "normal", default_qos = "gxp" }, part_list, 1000)))
check("an asked QOS beats the default", ordinary.job.gxp, nil)

local none, why = p.place_params({ partition = "gpu" }, part_list, 1000)
check("no user name", none, nil)
check("no user name says why", (why or ""):find("has no name") ~= nil, true)

if failures > 0 then os.exit(1) end
print("ok")
