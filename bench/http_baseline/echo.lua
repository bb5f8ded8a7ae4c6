-- wrk script for POST /v1/echo: the same small JSON document on every request, sent to
-- echo-svc (which parses it and renders it back) and to nginx (which answers a fixed 200).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"order":"o-1042","customer":{"id":"c-7","tier":"gold"},'
    .. '"items":[{"sku":"A-1","qty":2,"price":9.5},{"sku":"B-22","qty":1,"price":120}],'
    .. '"gift":false,"note":"leave at the door"}'
