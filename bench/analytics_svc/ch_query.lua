-- wrk script of bench/analytics_svc: POSTs SQL to ClickHouse's HTTP interface as analytics-svc's
-- store does (the statement as the body, the credentials in the X-ClickHouse-User and
-- X-ClickHouse-Key headers, taken from the environment: CH_USER, CH_KEY, never a command line).
-- After "--": files of one statement each; the requests go through them in turn, so with k
-- files one request of the service is k requests here.
--
--   CH_USER=... CH_KEY=... wrk -s ch_query.lua 'http://127.0.0.1:PORT/?database=analytics' -- q1.sql
local requests = {}
local next_one = 1

function init(args)
    local user, key = os.getenv("CH_USER"), os.getenv("CH_KEY")
    if user == nil or key == nil then
        error("ch_query.lua: CH_USER and CH_KEY must be set")
    end
    local headers = {
        ["X-ClickHouse-User"] = user,
        ["X-ClickHouse-Key"] = key,
        ["Content-Type"] = "text/plain; charset=utf-8",
    }
    for _, path in ipairs(args) do
        local f = assert(io.open(path, "r"))
        local sql = f:read("*a")
        f:close()
        requests[#requests + 1] = wrk.format("POST", nil, headers, sql)
    end
    if #requests == 0 then
        error("ch_query.lua: give the files of statements after --")
    end
end

function request()
    local r = requests[next_one]
    next_one = next_one % #requests + 1
    return r
end
