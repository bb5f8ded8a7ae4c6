#!/usr/bin/env bash
# The platform's first event flow, visibly (`make demo` runs it after `stack.sh status`):
# registers three users through user-svc's API, then polls message-svc until each one's welcome
# message is there, and prints it with the time from registration to visibility.
#
#   register (POST /v1/users, user-svc) -> outbox -> Kafka user-events -> message-svc consumer
#   -> MongoDB (FerretDB) -> GET /v1/users/{id}/messages (message-svc)
#
# Then, when product-svc is ready, the catalog: seeds the deterministic catalog (tools/seed.sh,
# through POST /v1/products:import; a second demo finds every product there already) and shows
# one full-text search with its facets: the top hits, the category counts and the price ranges.
#
# Then, when cart-svc is ready, a purchase: the first user's wallet credited (user-svc), the
# first hit of the search with stock put in their cart, checkout, the saga's steps as the order
# shows them, and the order confirmation message that order.placed puts into their inbox.
#
#   PUT cart line (cart-svc) -> POST checkout -> reserve (product-svc) -> charge (user-svc)
#   -> commit -> order.placed on cart-events -> message-svc -> GET .../messages
#
# Then, when analytics-svc is ready, the read model: the order waited for in its /v1/events (at
# most DEMO_DEADLINE_S), the summary of the last hour (signups, orders, revenue, conversion) and
# the freshness verdict, per topic.
#
# Environment: DEMO_DEADLINE_S (how long to wait for each message, default 20), DEMO_PRODUCTS
# (catalog size, default 10000), DEMO_SEED (the catalog's seed, default 42), DEMO_QUERY (the
# search, default "steel").
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DEADLINE_S=${DEMO_DEADLINE_S:-20}

die() {
    printf 'demo: %s\n' "$*" >&2
    exit 1
}

# A service's HTTP port, from its env file (what the stack started it with).
port_of() {
    local file="$STATE/env/$1.env" port
    [[ -r $file ]] || die "no settings for $1 ($file is missing): run 'make up' first"
    port=$(sed -n 's/^HTTP_PORT=//p' "$file")
    [[ -n $port ]] || die "no HTTP_PORT in $file"
    printf '%s\n' "$port"
}

require_ready() {
    local name=$1 port=$2 body
    if ! body=$(curl -sS --max-time 3 "http://127.0.0.1:$port/readyz" 2>&1); then
        die "$name is not answering on 127.0.0.1:$port ($body); start it with 'make up'" \
            "(log: $STATE/logs/$name.log)"
    fi
    if ! jq -e '.status == "ready"' >/dev/null 2>&1 <<<"$body"; then
        die "$name on 127.0.0.1:$port is not ready: $body (log: $STATE/logs/$name.log)"
    fi
}

now_ms() { date +%s%3N; }

apt_install jq
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
USER_PORT=$(port_of user-svc)
MSG_PORT=$(port_of message-svc)
require_ready user-svc "$USER_PORT"
require_ready message-svc "$MSG_PORT"

NAMES=("Ada Lovelace" "Grace Hopper" "Alan Turing")
run=$(date +%s)-$$
ids=()
started=()

echo "==> registering ${#NAMES[@]} users through user-svc (127.0.0.1:$USER_PORT)"
for i in "${!NAMES[@]}"; do
    name=${NAMES[$i]}
    email="demo-$run-$i@example.com"
    body=$(jq -cn --arg email "$email" --arg name "$name" '{email: $email, name: $name}')
    t0=$(now_ms)
    resp=$(curl -sS --max-time 10 -w '\n%{http_code}' -X POST \
        -H 'Content-Type: application/json' --data "$body" \
        "http://127.0.0.1:$USER_PORT/v1/users") || die "user-svc stopped answering"
    code=${resp##*$'\n'}
    resp=${resp%$'\n'*}
    [[ $code == 201 ]] || die "registering '$name' failed with HTTP $code: $resp"
    id=$(jq -r .id <<<"$resp")
    ids+=("$id")
    started+=("$t0")
    printf '    %-14s %s  <%s>\n' "$name" "$id" "$email"
done

echo "==> waiting for each welcome message in message-svc (127.0.0.1:$MSG_PORT)"
failed=0
for i in "${!ids[@]}"; do
    id=${ids[$i]}
    t0=${started[$i]}
    deadline=$((t0 + DEADLINE_S * 1000))
    found=""
    last=""
    while :; do
        resp=$(curl -sS --max-time 3 -w '\n%{http_code}' \
            "http://127.0.0.1:$MSG_PORT/v1/users/$id/messages?limit=10" 2>&1) || resp=$'\n000'
        code=${resp##*$'\n'}
        resp=${resp%$'\n'*}
        if [[ $code == 200 ]]; then
            found=$(jq -c 'first(.items[] | select(.sender == "system"))' <<<"$resp" 2>/dev/null ||
                true)
            [[ -n $found ]] && break
        fi
        last="HTTP $code: $resp"
        (($(now_ms) < deadline)) || break
        sleep 0.05
    done
    if [[ -z $found ]]; then
        printf '    %-14s no welcome message after %s s (last answer %s)\n' "${NAMES[$i]}" \
            "$DEADLINE_S" "$last"
        failed=1
        continue
    fi
    elapsed=$(($(now_ms) - t0))
    printf '    %-14s %5d ms  from %s: "%s"\n' "${NAMES[$i]}" "$elapsed" \
        "$(jq -r '.sender_name // .sender' <<<"$found")" "$(jq -r .subject <<<"$found")"
    printf '    %-14s           %s\n' "" "$(jq -r .body <<<"$found")"
done

if ((failed)); then
    die "some welcome messages did not arrive: is message-svc consuming? see" \
        "$STATE/logs/message-svc.log and its /metrics (kafka_consumer_lag)"
fi
echo "==> every welcome message arrived: register -> user-events -> message-svc works"

# ---- the catalog: product-svc on OpenSearch ------------------------------------------------

PRODUCTS=${DEMO_PRODUCTS:-10000}
QUERY=${DEMO_QUERY:-steel}
[[ $PRODUCTS =~ ^[0-9]{1,7}$ ]] || die "DEMO_PRODUCTS must be a number of products, not '$PRODUCTS'"
PRODUCT_PORT=$(sed -n 's/^HTTP_PORT=//p' "$STATE/env/product-svc.env" 2>/dev/null || true)
if [[ -z $PRODUCT_PORT ]] ||
    ! curl -fsS --max-time 3 "http://127.0.0.1:$PRODUCT_PORT/readyz" 2>/dev/null |
    jq -e '.status == "ready"' >/dev/null 2>&1; then
    echo "==> product-svc is not ready: the catalog part of the demo is skipped" \
        "(log: $STATE/logs/product-svc.log)"
    exit 0
fi
PRODUCT_URL=http://127.0.0.1:$PRODUCT_PORT

echo
echo "==> seeding the catalog: $PRODUCTS products of seed ${DEMO_SEED:-42} into product-svc" \
    "(127.0.0.1:$PRODUCT_PORT, POST /v1/products:import)"
SEED=${DEMO_SEED:-42} COUNT=$PRODUCTS "$ROOT/tools/seed.sh" | sed 's/^/    /'

# search: the answer of GET /v1/products?QS on stdout; dies on anything but 200.
qs="q=$(jq -rn --arg q "$QUERY" '$q | @uri')&sort=relevance&limit=5"
search() {
    local resp code
    resp=$(curl -sS --max-time 10 -w '\n%{http_code}' "$PRODUCT_URL/v1/products?$qs") ||
        die "product-svc stopped answering"
    code=${resp##*$'\n'}
    resp=${resp%$'\n'*}
    [[ $code == 200 ]] || die "GET /v1/products?$qs failed with HTTP $code: $resp"
    printf '%s\n' "$resp"
}
# New products become searchable at the engine's next refresh (every second): read until the
# total stops moving.
last=-1
for _ in 1 2 3 4 5; do
    t0=$(now_ms)
    result=$(search)
    took=$(($(now_ms) - t0))
    total=$(jq -r .total <<<"$result")
    [[ $total == "$last" && $total != 0 ]] && break
    last=$total
    sleep 1
done

echo "==> searching the catalog: GET /v1/products?$qs"
jq -r --arg q "$QUERY" --arg took "$took" '
    def money: (.price_cents / 100 | floor | tostring) + "."
        + (.price_cents % 100 | tostring | if length < 2 then "0" + . else . end);
    def units: (. / 100 | floor | tostring);
    def plain: gsub("<em>"; "[") | gsub("</em>"; "]") | gsub("&#39;"; "\u0027")
        | gsub("&quot;"; "\"") | gsub("&lt;"; "<") | gsub("&gt;"; ">") | gsub("&amp;"; "&");
    "    \(.total) products match \"\($q)\" (\($took) ms); the best \(.items | length):",
    (.items | to_entries[] |
        "      \(.key + 1). \(.value.highlight.name // .value.name | plain)",
        "         \(.value | money) \(.value.currency), "
        + (if .value.available > 0 then "\(.value.available) available" else "out of stock" end)
        + ", \(.value.category), \(.value.sku)",
        (.value.highlight.description // empty | "         \u2026" + plain + "\u2026")),
    "    by category: " + ([.facets.category[] | "\(.value) \(.count)"] | join(", ")),
    "    by price:    " + ([.facets.price[]
        | "\(.from // 0 | units)\(if .to then "-" + (.to | units) else "+" end): \(.count)"]
        | join(", ")) + "  (whole currency units)",
    "    by tag:      " + ([.facets.tag[:8][] | "\(.value) \(.count)"] | join(", "))
        + (if (.facets.tag | length) > 8 then ", ..." else "" end)
' <<<"$result"
echo "==> the catalog is searchable: import -> OpenSearch -> full-text search with facets works"

# ---- a purchase: cart-svc's checkout saga across product-svc and user-svc --------------------

CART_PORT=$(sed -n 's/^HTTP_PORT=//p' "$STATE/env/cart-svc.env" 2>/dev/null || true)
if [[ -z $CART_PORT ]] ||
    ! curl -fsS --max-time 3 "http://127.0.0.1:$CART_PORT/readyz" 2>/dev/null |
    jq -e '.status == "ready"' >/dev/null 2>&1; then
    echo "==> cart-svc is not ready: the purchase part of the demo is skipped" \
        "(log: $STATE/logs/cart-svc.log)"
    exit 0
fi
CART_URL=http://127.0.0.1:$CART_PORT
USER_URL=http://127.0.0.1:$USER_PORT

# req METHOD URL [BODY] [HEADER]: sets $code and $body (not in a subshell, so both survive).
req() {
    local resp
    resp=$(curl -sS --max-time 10 -w '\n%{http_code}' -X "$1" \
        ${3:+-H 'Content-Type: application/json' --data "$3"} ${4:+-H "$4"} "$2") ||
        die "no answer from $2"
    code=${resp##*$'\n'}
    body=${resp%$'\n'*}
}
money() {
    jq -rn --argjson c "$1" \
        '"\($c / 100 | floor).\($c % 100 | tostring | if length < 2 then "0" + . else . end)"'
}

buyer=${ids[0]}
buyer_name=${NAMES[0]}
item=$(jq -c 'first(.items[] | select(.available > 0))' <<<"$result")
[[ -n $item && $item != null ]] || die "no product of the search has stock left to buy"
item_id=$(jq -r .id <<<"$item")
item_name=$(jq -r .name <<<"$item")
price=$(jq -r .price_cents <<<"$item")
currency=$(jq -r .currency <<<"$item")

echo
echo "==> $buyer_name buys one \"$item_name\" ($(money "$price") $currency)"
credit=$((price + 1000))
req POST "$USER_URL/v1/users/$buyer/wallet/credits" \
    "$(jq -cn --arg id "$(cat /proc/sys/kernel/random/uuid)" --argjson c "$credit" \
        '{credit_id: $id, amount_cents: $c}')"
wallet=$body
[[ $code == 201 ]] || die "crediting the wallet failed with HTTP $code: $wallet"
echo "    wallet credited with $(money "$credit") (user-svc, POST /v1/users/{id}/wallet/credits)"

# cart-svc knows a user once it has consumed their user.registered: a 404 user-not-known is
# waited out.
deadline=$(($(now_ms) + DEADLINE_S * 1000))
while :; do
    req PUT "$CART_URL/v1/carts/$buyer/items/$item_id" '{"quantity":1}'
    cart=$body
    [[ $code == 200 ]] && break
    [[ $code == 404 && $cart == *user-not-known* ]] ||
        die "adding to the cart failed with HTTP $code: $cart"
    (($(now_ms) < deadline)) || die "cart-svc did not hear of $buyer_name in $DEADLINE_S s: $cart"
    sleep 0.1
done
echo "    in the cart (cart-svc, PUT /v1/carts/{id}/items/{product}): total" \
    "$(money "$(jq -r .total_cents <<<"$cart")") $currency"

# On a fresh stack cart-events appears with cart-svc's first event, after message-svc
# subscribed: lib's consumers look for new topics every second, so it is picked up at once.
confirm_s=$DEADLINE_S

t0=$(now_ms)
req POST "$CART_URL/v1/carts/$buyer/checkout" "" \
    "Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)"
order=$body
[[ $code == 202 ]] || die "checkout failed with HTTP $code: $order"
order_id=$(jq -r .id <<<"$order")
echo "    checkout: order $order_id accepted (202), the saga runs: reserve -> charge -> commit"
deadline=$((t0 + DEADLINE_S * 1000))
while :; do
    req GET "$CART_URL/v1/orders/$order_id"
    order=$body
    status=$(jq -r .status <<<"$order" 2>/dev/null || echo "?")
    [[ $status == placed || $status == failed ]] && break
    (($(now_ms) < deadline)) || die "order $order_id still '$status' after $DEADLINE_S s"
    sleep 0.05
done
printf '    order %s after %d ms; its steps:\n' "$status" "$(($(now_ms) - t0))"
jq -r '.steps[]? | "      \(.at)  \(.step) \(.state)"
    + (if .detail then ": " + .detail else "" end)' <<<"$order"
[[ $status == placed ]] || die "the order failed at $(jq -r .failed_step <<<"$order"):" \
    "$(jq -r .reason <<<"$order")"

deadline=$((t0 + confirm_s * 1000))
while :; do
    req GET "http://127.0.0.1:$MSG_PORT/v1/users/$buyer/messages?limit=10"
    inbox=$body
    found=$(jq -c 'first(.items[] | select(.subject == "Order placed"))' <<<"$inbox" 2>/dev/null ||
        true)
    [[ -n $found ]] && break
    (($(now_ms) < deadline)) || die "no order confirmation in $buyer_name's inbox after" \
        "$confirm_s s (see $STATE/logs/message-svc.log)"
    sleep 0.05
done
printf '    %5d ms  in the inbox: "%s"\n' "$(($(now_ms) - t0))" "$(jq -r .subject <<<"$found")"
jq -r .body <<<"$found" | sed 's/^/              /'
echo "==> a purchase works: cart -> saga over product-svc and user-svc -> cart-events ->" \
    "message-svc"

# ---- the read model: analytics-svc on ClickHouse ----------------------------------------------

AN_PORT=$(sed -n 's/^HTTP_PORT=//p' "$STATE/env/analytics-svc.env" 2>/dev/null || true)
if [[ -z $AN_PORT ]] ||
    ! curl -fsS --max-time 3 "http://127.0.0.1:$AN_PORT/readyz" 2>/dev/null |
    jq -e '.status == "ready"' >/dev/null 2>&1; then
    echo "==> analytics-svc is not ready: the analytics part of the demo is skipped" \
        "(log: $STATE/logs/analytics-svc.log)"
    exit 0
fi
AN_URL=http://127.0.0.1:$AN_PORT

echo
echo "==> the purchase in analytics-svc's read model (127.0.0.1:$AN_PORT, ClickHouse)"
# order.placed's subject is the buyer: the order shows in /v1/events once its batch is in
# ClickHouse, and the summary's aggregates are written by the same insert.
deadline=$((t0 + DEADLINE_S * 1000))
while :; do
    req GET "$AN_URL/v1/events?type=order.placed&subject=$buyer&limit=10"
    seen=$(jq -c --arg o "$order_id" 'first(.events[]? | select(.data.order_id == $o))' \
        <<<"$body" 2>/dev/null || true)
    [[ $code == 200 && -n $seen ]] && break
    if (($(now_ms) >= deadline)); then
        echo "    the order is not in analytics-svc after $DEADLINE_S s: it is behind" \
            "($(curl -sS --max-time 5 "$AN_URL/v1/freshness" | jq -r '.verdict // "no verdict"'))"
        break
    fi
    sleep 0.05
done
if [[ -n $seen ]]; then
    printf '    %5d ms  order.placed in GET /v1/events (event time %s, ingested %s)\n' \
        "$(($(now_ms) - t0))" "$(jq -r .time <<<"$seen")" "$(jq -r .ingested_at <<<"$seen")"
fi
# The last hour, to the minute (the aggregates' grain): from an hour before the next minute.
to=$(date -u -d "@$(((($(date +%s) / 60) + 1) * 60))" +%Y-%m-%dT%H:%M:%SZ)
from=$(date -u -d "@$(((($(date +%s) / 60) + 1) * 60 - 3600))" +%Y-%m-%dT%H:%M:%SZ)
req GET "$AN_URL/v1/summary?from=$from&to=$to"
[[ $code == 200 ]] || die "GET /v1/summary failed with HTTP $code: $body"
summary=$body
echo "    the last hour, GET /v1/summary?from=$from&to=$to:"
jq -r '
    def money: if . == null then "-" else (. / 100 | floor | tostring) + "."
        + (. % 100 | tostring | if length < 2 then "0" + . else . end) end;
    def pct: if . == null then "- (no checkout)" else (. * 1000 | round / 10 | tostring) + " %" end;
    "      signups            \(.signups)",
    "      active users       \(.active_users)",
    "      checkouts started  \(.checkouts)",
    "      orders placed      \(.orders_placed) (\(.orders_failed) failed)",
    "      revenue            \(.revenue_cents | money) (totals of the orders placed, currencies added)",
    "      conversion         \(.conversion | pct) (placed / checkouts started)",
    "      average order      \(.average_order_cents | money)"' <<<"$summary"
req GET "$AN_URL/v1/freshness"
[[ $code == 200 ]] || die "GET /v1/freshness failed with HTTP $code: $body"
jq -r '"    freshness: \(.state): \(.verdict)",
    (.topics[] | "      \(.topic): \(.state), lag \(.lag // "unknown") records, event -> ingest"
        + " p50 \(.latency.p50_ms) ms, p99 \(.latency.p99_ms) ms over \(.latency.events) events")
' <<<"$body"
[[ -n $seen ]] || die "the purchase did not reach analytics-svc in $DEADLINE_S s: see" \
    "$STATE/logs/analytics-svc.log and GET $AN_URL/v1/freshness"
echo "==> the read model works: cart-events -> analytics-svc -> ClickHouse -> GET /v1/summary"
