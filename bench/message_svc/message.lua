-- wrk script for GET /v1/messages/{id}: every request reads a message picked at random from a
-- file of message ids, one a line, given after "--" on wrk's command line:
--
--   wrk -s message.lua http://127.0.0.1:PORT -- message-ids.txt
--
-- The requests are formatted once, in init, so that wrk spends no more per request than a
-- random draw (as inbox.lua does; mongo_load.c draws from the same file on the engine's side).
local requests = {}

function init(args)
    local path = args[1]
    if path == nil then
        error("message.lua: give the file of message ids after --")
    end
    local f = assert(io.open(path, "r"))
    for id in f:lines() do
        if id ~= "" then
            requests[#requests + 1] = wrk.format("GET", "/v1/messages/" .. id)
        end
    end
    f:close()
    if #requests == 0 then
        error("message.lua: no ids in " .. path)
    end
    -- Each wrk thread draws its own sequence.
    math.randomseed(os.time() + tonumber(tostring(requests):match("0x(%x+)") or "0", 16))
end

function request()
    return requests[math.random(#requests)]
end
