-- wrk script shared by the benchmarks: every request GETs a path built from an id picked at
-- random from a file of ids, one a line. After "--" on wrk's command line: the file, then the
-- path with %s where the id goes.
--
--   wrk -s random_get.lua http://127.0.0.1:PORT -- ids.txt /v1/users/%s
--
-- The requests are formatted once, in init, so that wrk spends no more per request than a
-- random draw (wrk shares the machine's CPUs with the service and its engine).
local requests = {}

function init(args)
    local path, pattern = args[1], args[2]
    if path == nil or pattern == nil or not pattern:find("%%s") then
        error("random_get.lua: give the file of ids and a path with %s after --")
    end
    local f = assert(io.open(path, "r"))
    for id in f:lines() do
        if id ~= "" then
            requests[#requests + 1] = wrk.format("GET", (pattern:gsub("%%s", id, 1)))
        end
    end
    f:close()
    if #requests == 0 then
        error("random_get.lua: no ids in " .. path)
    end
    -- Each wrk thread draws its own sequence.
    math.randomseed(os.time() + tonumber(tostring(requests):match("0x(%x+)") or "0", 16))
end

function request()
    return requests[math.random(#requests)]
end
