-- wrk script of bench/product_svc: every request is drawn at random from a file of lines, as
-- bench/random_get.lua draws ids, in one of two modes (after "--" on wrk's command line):
--
--   wrk -s requests.lua URL -- get FILE PATTERN   GET PATTERN with its %s replaced by a line
--                                                 (a product id, or a query string)
--   wrk -s requests.lua URL -- post FILE PATH     POST PATH with a line as its JSON body
--
-- BENCH_AUTHORIZATION in the environment, when set, is sent as the Authorization header (the
-- engine's basic auth): a password never sits on a command line. The requests are formatted
-- once, in init, so that wrk spends no more per request than a random draw.
local requests = {}

function init(args)
    local mode, path, pattern = args[1], args[2], args[3]
    if (mode ~= "get" and mode ~= "post") or path == nil or pattern == nil then
        error("requests.lua: give get|post, the file and the path after --")
    end
    if mode == "get" and not pattern:find("%s", 1, true) then
        error("requests.lua: the path of get needs a %s where the line goes")
    end
    local headers = {}
    local auth = os.getenv("BENCH_AUTHORIZATION")
    if auth ~= nil and auth ~= "" then
        headers["Authorization"] = auth
    end
    if mode == "post" then
        headers["Content-Type"] = "application/json"
    end
    local f = assert(io.open(path, "r"))
    for line in f:lines() do
        if line ~= "" then
            if mode == "get" then
                local at = pattern:find("%s", 1, true)
                -- Plain concatenation: a line may hold '%', which gsub would read as a capture.
                local p = pattern:sub(1, at - 1) .. line .. pattern:sub(at + 2)
                requests[#requests + 1] = wrk.format("GET", p, headers)
            else
                requests[#requests + 1] = wrk.format("POST", pattern, headers, line)
            end
        end
    end
    f:close()
    if #requests == 0 then
        error("requests.lua: no lines in " .. path)
    end
    -- Each wrk thread draws its own sequence.
    math.randomseed(os.time() + tonumber(tostring(requests):match("0x(%x+)") or "0", 16))
end

function request()
    return requests[math.random(#requests)]
end
