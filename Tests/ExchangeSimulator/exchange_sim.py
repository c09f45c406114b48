"""A Binance spot REST simulator for Atrium's crypto tests (and by hand: scripts/exchange-sim).

It speaks the subset of the API that Atrium's Binance adapter calls, as
binance-spot-api-docs describes it: SIGNED requests carry X-MBX-APIKEY and a query
string ending in `signature`, the hex HMAC-SHA256 of everything before it under the
account's secret; `timestamp` must fall within `recvWindow` (default 5000 ms, at most
60000) of the server's clock. Errors answer with the real HTTP statuses and codes:

  -2014  API-key format invalid                      (401)
  -2015  Invalid API-key, IP, or permissions          (401; also a revoked key)
  -1022  Signature for this request is not valid      (400)
  -1021  Timestamp outside of the recvWindow          (400)
  -1102  Mandatory parameter was not sent             (400)
  -1100  Illegal characters or value in a parameter   (400)
  -1121  Invalid symbol                               (400)
  -1127  More than 24 hours between startTime and endTime (400)
  -1003  Too much request weight used                 (429, then 418 when called again too soon)

Request weight is counted per client address and minute, as Binance does, and every
answer carries X-MBX-USED-WEIGHT-1M; past the limit (6000, settable) the answer is 429
with Retry-After, and a client that calls again before then is banned: 418.

A control API under /_sim/ (unsigned; the simulator binds to loopback only) creates
accounts, revokes keys, moves the clock, sets prices and the weight limit, injects
faults per path (a status with Retry-After, a delay, a garbled body, for the next
`count` calls) and lists the requests it served.
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import random
import time
from decimal import Decimal
from urllib.parse import parse_qsl

from aiohttp import web

API_KEY_LENGTH = 64
# The markets exchangeInfo lists (base, quote); seeded trades add theirs.
MARKETS = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT"), "ETHBTC": ("ETH", "BTC"), "BNBUSDT": ("BNB", "USDT"),
           "BNBBTC": ("BNB", "BTC"), "SOLUSDT": ("SOL", "USDT"), "XRPUSDT": ("XRP", "USDT"), "LINKBTC": ("LINK", "BTC")}


# Weight of each endpoint (binance-spot-api-docs, current values).
WEIGHTS = {"/api/v3/time": 1, "/api/v3/exchangeInfo": 20, "/api/v3/account": 20, "/api/v3/myTrades": 20,
           "/api/v3/ticker/price": 4, "/api/v3/klines": 2, "/sapi/v1/account/apiRestrictions": 1}
# Last prices of the listed markets (ticker/price), settable through /_sim/prices.
PRICES = {"BTCUSDT": "60000.00000000", "ETHUSDT": "3000.00000000", "ETHBTC": "0.05000000", "BNBUSDT": "600.00000000",
          "BNBBTC": "0.01000000", "SOLUSDT": "150.00000000", "XRPUSDT": "0.50000000", "LINKBTC": "0.00050000"}


class Exchange:
    def __init__(self):
        self.accounts = {}  # api_key -> account
        self.clock_offset_ms = 0
        self.requests = []
        self.faults = []
        self.prices = dict(PRICES)
        self.closes = {}  # symbol -> {UTC day start in ms: close}
        self.weight_limit = 6000
        self.weight_used = {}  # (address, minute) -> weight
        self.blocked_until = {}  # address -> (seconds since 1970, status)

    def now_ms(self):
        return int(time.time() * 1000) + self.clock_offset_ms


@web.middleware
async def exchange_rules(request, handler):
    """Logs every API request, applies injected faults, then counts weight per address."""
    exchange = request.app["exchange"]
    if request.path.startswith("/_sim/"):
        return await handler(request)
    exchange.requests.append({"method": request.method, "path": request.path, "query": request.query_string,
                              "api_key": request.headers.get("X-MBX-APIKEY"), "time_ms": int(time.time() * 1000)})
    fault = next((f for f in exchange.faults if f["path"] == request.path and f["count"] > 0), None)
    if fault is not None:
        fault["count"] -= 1
        if fault.get("delay_ms"):
            await asyncio.sleep(fault["delay_ms"] / 1000)
        if fault.get("status"):
            headers = {"Retry-After": str(fault["retry_after"])} if fault.get("retry_after") is not None else {}
            return web.json_response({"code": -1003 if fault["status"] in (418, 429) else -1000, "msg": "Injected fault."},
                                     status=fault["status"], headers=headers)
    address = request.remote or "unknown"
    now = time.time()
    blocked = exchange.blocked_until.get(address)
    if blocked is not None and now < blocked[0]:
        # Called again while told to wait: banned (418), as Binance does.
        until = max(blocked[0], now + 120) if blocked[1] == 429 else blocked[0]
        exchange.blocked_until[address] = (until, 418)
        return web.json_response({"code": -1003, "msg": "Way too many requests; IP banned."}, status=418,
                                 headers={"Retry-After": str(int(until - now) + 1)})
    minute = int(now // 60)
    used = exchange.weight_used.get((address, minute), 0) + WEIGHTS.get(request.path, 1)
    exchange.weight_used[(address, minute)] = used
    if used > exchange.weight_limit:
        retry = (minute + 1) * 60 - now
        exchange.blocked_until[address] = (now + retry, 429)
        return web.json_response({"code": -1003, "msg": "Too much request weight used."}, status=429,
                                 headers={"Retry-After": str(int(retry) + 1), "X-MBX-USED-WEIGHT-1M": str(used)})
    response = await handler(request)
    response.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
    if fault is not None and fault.get("garbled"):
        body = response.body if isinstance(response.body, bytes) else b"{}"
        return web.Response(body=body[: max(1, len(body) // 2)], status=200, content_type="application/json",
                            headers={"X-MBX-USED-WEIGHT-1M": str(used)})
    return response


def error(status, code, message):
    return web.json_response({"code": code, "msg": message}, status=status)


def signed(handler):
    """Checks key, signature and timestamp as Binance does, in that order."""

    async def check(request):
        exchange = request.app["exchange"]
        query = request.query_string
        key = request.headers.get("X-MBX-APIKEY")
        if key is None or len(key) != API_KEY_LENGTH or not key.isalnum():
            return error(401, -2014, "API-key format invalid.")
        account = exchange.accounts.get(key)
        if account is None or account["revoked"]:
            return error(401, -2015, "Invalid API-key, IP, or permissions for action.")
        if "&signature=" not in "&" + query:
            return error(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        payload, _, signature = query.rpartition("signature=")
        payload = payload[:-1] if payload.endswith("&") else payload
        expected = hmac.new(account["api_secret"].encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            return error(400, -1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(payload))
        if "timestamp" not in params:
            return error(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        window = int(params.get("recvWindow", "5000"))
        if window > 60000:
            return error(400, -1131, "recvWindow must be less than 60000")
        timestamp = int(params["timestamp"])
        now = exchange.now_ms()
        if timestamp >= now + 1000 or now - timestamp > window:
            return error(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return await handler(request, account, params)

    return check


async def server_time(request):
    exchange = request.app["exchange"]
    return web.json_response({"serverTime": exchange.now_ms()})


@signed
async def api_restrictions(request, account, params):
    permissions = account["permissions"]
    return web.json_response({
        "ipRestrict": False,
        "createTime": 1698645219000,
        "enableReading": True,
        "enableSpotAndMarginTrading": "spot" in permissions,
        "enableWithdrawals": "withdrawals" in permissions,
        "enableInternalTransfer": False,
        "enableMargin": False,
        "enableFutures": False,
        "permitsUniversalTransfer": False,
        "enableVanillaOptions": False,
        "enableFixApiTrade": False,
        "enableFixReadOnly": False,
        "enablePortfolioMarginTrading": False,
    })


@signed
async def account_info(request, account, params):
    balances = [{"asset": asset, "free": free, "locked": "0.00000000"} for asset, free in sorted(account["balances"].items())]
    return web.json_response({
        "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
        "canTrade": "spot" in account["permissions"], "canWithdraw": "withdrawals" in account["permissions"], "canDeposit": True,
        "updateTime": request.app["exchange"].now_ms(), "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"],
        "uid": account["uid"],
    })


async def exchange_info(request):
    exchange = request.app["exchange"]
    symbols = [{"symbol": symbol, "status": "TRADING", "baseAsset": base, "quoteAsset": quote, "isSpotTradingAllowed": True}
               for symbol, (base, quote) in sorted(MARKETS.items())]
    return web.json_response({"timezone": "UTC", "serverTime": exchange.now_ms(), "rateLimits": [], "symbols": symbols})


@signed
async def my_trades(request, account, params):
    """Trades of one symbol; with fromId, those with an id at or above it, in id order."""
    symbol = params.get("symbol")
    if not symbol:
        return error(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    if symbol not in MARKETS:
        return error(400, -1121, "Invalid symbol.")
    limit = int(params.get("limit", "500"))
    if not 1 <= limit <= 1000:
        return error(400, -1100, "Illegal characters found in parameter 'limit'; legal range is '1 - 1000'.")
    if "startTime" in params and "endTime" in params and int(params["endTime"]) - int(params["startTime"]) > 86_400_000:
        return error(400, -1127, "More than 24 hours between startTime and endTime.")
    trades = account["trades"].get(symbol, [])
    if "startTime" in params:
        trades = [trade for trade in trades if trade["time"] >= int(params["startTime"])]
    if "endTime" in params:
        trades = [trade for trade in trades if trade["time"] <= int(params["endTime"])]
    if "fromId" in params:
        start = int(params["fromId"])
        page = [trade for trade in trades if trade["id"] >= start][:limit]
    else:
        page = trades[-limit:]
    return web.json_response(page)


async def ticker_price(request):
    """Last prices: one symbol's object with `symbol`, else every listed market's."""
    prices = request.app["exchange"].prices
    symbol = request.query.get("symbol")
    if symbol is not None:
        if symbol not in prices:
            return error(400, -1121, "Invalid symbol.")
        return web.json_response({"symbol": symbol, "price": prices[symbol]})
    return web.json_response([{"symbol": name, "price": price} for name, price in sorted(prices.items())])


async def klines(request):
    """Daily candles of a market; a day's close is the one set through /_sim/closes, else
    the market's current price."""
    exchange = request.app["exchange"]
    symbol = request.query.get("symbol")
    if not symbol:
        return error(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    if symbol not in exchange.prices:
        return error(400, -1121, "Invalid symbol.")
    if request.query.get("interval") != "1d":
        return error(400, -1120, "Invalid interval.")
    day = 86_400_000
    end = int(request.query.get("endTime", exchange.now_ms()))
    start = int(request.query.get("startTime", end - 499 * day))
    limit = min(int(request.query.get("limit", "500")), 1000)
    candles = []
    opened = start - start % day
    while opened <= end and len(candles) < limit:
        price = exchange.closes.get(symbol, {}).get(opened, exchange.prices[symbol])
        candles.append([opened, price, price, price, price, "1.00000000", opened + day - 1, price, 1, "0", "0", "0"])
        opened += day
    return web.json_response(candles)


async def create_account(request):
    body = await request.json()
    exchange = request.app["exchange"]
    key = body["api_key"]
    exchange.accounts[key] = {
        "api_secret": body["api_secret"],
        "balances": {asset: str(amount) for asset, amount in body.get("balances", {}).items()},
        "permissions": set(body.get("permissions", ["reading", "spot"])),
        "revoked": False,
        "uid": len(exchange.accounts) + 1,
        "trades": {},
    }
    return web.json_response({"api_key": key}, status=201)


async def seed_trades(request):
    """`count` trades spread over `symbols`, the same ones for the same `seed`, each moving
    the account's balances as a fill would (commission in the asset received)."""
    exchange = request.app["exchange"]
    account = exchange.accounts.get(request.match_info["api_key"])
    if account is None:
        return web.json_response({"error": "no such account"}, status=404)
    body = await request.json()
    if "trades" in body:
        return explicit_trades(exchange, account, body["trades"])
    generator = random.Random(body.get("seed", 1))
    symbols = body["symbols"]
    clock = exchange.now_ms() - 86_400_000
    for index in range(int(body["count"])):
        symbol = symbols[index % len(symbols)]
        base, quote = MARKETS[symbol]
        trades = account["trades"].setdefault(symbol, [])
        trade_id = (trades[-1]["id"] + 1) if trades else 1000
        price = (Decimal(generator.randint(100, 100000)) / 100).quantize(Decimal("0.01"))
        quantity = (Decimal(generator.randint(1, 5000)) / 1000).quantize(Decimal("0.001"))
        is_buyer = generator.random() < 0.6
        commission = (quantity / 1000).quantize(Decimal("0.00000001")) if is_buyer else (price * quantity / 1000).quantize(Decimal("0.00000001"))
        clock += generator.randint(1, 30_000)
        trades.append({
            "symbol": symbol, "id": trade_id, "orderId": 10_000 + trade_id, "orderListId": -1, "price": f"{price:.8f}",
            "qty": f"{quantity:.8f}", "quoteQty": f"{price * quantity:.8f}", "commission": f"{commission:.8f}",
            "commissionAsset": base if is_buyer else quote, "time": clock, "isBuyer": is_buyer, "isMaker": generator.random() < 0.5,
            "isBestMatch": True,
        })
        balances = account["balances"]
        def move(asset, amount):
            balances[asset] = f"{Decimal(balances.get(asset, '0')) + amount:.8f}"
        if is_buyer:
            move(base, quantity - commission)
            move(quote, -price * quantity)
        else:
            move(base, -quantity)
            move(quote, price * quantity - commission)
    return web.json_response({"trades": sum(len(trades) for trades in account["trades"].values())}, status=201)


def explicit_trades(exchange, account, trades):
    """Trades as given (`symbol`, `price`, `qty`, `is_buyer`, `commission`,
    `commission_asset`, `days_ago`), each moving the balances as the fill would."""
    balances = account["balances"]

    def move(asset, amount):
        balances[asset] = f"{Decimal(balances.get(asset, '0')) + amount:.8f}"

    for given in trades:
        symbol = given["symbol"]
        base, quote = MARKETS[symbol]
        listed = account["trades"].setdefault(symbol, [])
        trade_id = (listed[-1]["id"] + 1) if listed else 1000
        price, quantity, commission = Decimal(given["price"]), Decimal(given["qty"]), Decimal(given.get("commission", "0"))
        fee_asset = given.get("commission_asset", base)
        is_buyer = bool(given["is_buyer"])
        quote_quantity = price * quantity
        listed.append({
            "symbol": symbol, "id": trade_id, "orderId": 10_000 + trade_id, "orderListId": -1, "price": f"{price:.8f}",
            "qty": f"{quantity:.8f}", "quoteQty": f"{quote_quantity:.8f}", "commission": f"{commission:.8f}",
            "commissionAsset": fee_asset, "time": exchange.now_ms() - int(given.get("days_ago", 0) * 86_400_000),
            "isBuyer": is_buyer, "isMaker": False, "isBestMatch": True,
        })
        move(base, quantity if is_buyer else -quantity)
        move(quote, -quote_quantity if is_buyer else quote_quantity)
        move(fee_asset, -commission)
    return web.json_response({"trades": sum(len(listed) for listed in account["trades"].values())}, status=201)


async def revoke(request):
    exchange = request.app["exchange"]
    account = exchange.accounts.get(request.match_info["api_key"])
    if account is None:
        return web.json_response({"error": "no such account"}, status=404)
    account["revoked"] = True
    return web.json_response({"revoked": True})


async def set_clock(request):
    body = await request.json()
    request.app["exchange"].clock_offset_ms = int(body["offset_ms"])
    return web.json_response({"offset_ms": request.app["exchange"].clock_offset_ms})


async def list_requests(request):
    return web.json_response(request.app["exchange"].requests)


async def add_fault(request):
    """`{"path", "status"?, "retry_after"?, "count", "delay_ms"?, "garbled"?}`: the next
    `count` calls of `path` fail so (faults of a path apply in the order added)."""
    body = await request.json()
    fault = {"path": body["path"], "status": body.get("status"), "retry_after": body.get("retry_after"),
             "count": int(body.get("count", 1)), "delay_ms": body.get("delay_ms"), "garbled": bool(body.get("garbled", False))}
    request.app["exchange"].faults.append(fault)
    return web.json_response(fault, status=201)


async def set_prices(request):
    body = await request.json()
    exchange = request.app["exchange"]
    for symbol, price in body.items():
        exchange.prices[symbol] = f"{Decimal(str(price)):.8f}"
    return web.json_response(exchange.prices)


async def add_markets(request):
    """`{"ADAUSDT": {"base": "ADA", "quote": "USDT", "price": "0.40"}}`: markets listed from now on."""
    body = await request.json()
    exchange = request.app["exchange"]
    for symbol, market in body.items():
        MARKETS[symbol] = (market["base"], market["quote"])
        exchange.prices[symbol] = f"{Decimal(str(market.get('price', '1'))):.8f}"
    return web.json_response({"markets": len(MARKETS)}, status=201)


async def set_closes(request):
    """`{"BTCUSDT": {"1": "40000"}}`: the market's close on the UTC day that many days ago."""
    body = await request.json()
    exchange = request.app["exchange"]
    day = 86_400_000
    today = exchange.now_ms() // day * day
    for symbol, closes in body.items():
        for days_ago, close in closes.items():
            exchange.closes.setdefault(symbol, {})[today - int(days_ago) * day] = f"{Decimal(str(close)):.8f}"
    return web.json_response({"symbols": sorted(exchange.closes)})


async def set_weight(request):
    """`{"limit"?: N, "used"?: N}`: the per-minute weight limit, and weight already used
    by this minute's callers (another client on the same address)."""
    body = await request.json()
    exchange = request.app["exchange"]
    if "limit" in body:
        exchange.weight_limit = int(body["limit"])
    if "used" in body:
        exchange.weight_used[("127.0.0.1", int(time.time() // 60))] = int(body["used"])
    return web.json_response({"limit": exchange.weight_limit})


def application():
    app = web.Application(middlewares=[exchange_rules])
    app["exchange"] = Exchange()
    app.router.add_get("/api/v3/time", server_time)
    app.router.add_get("/sapi/v1/account/apiRestrictions", api_restrictions)
    app.router.add_get("/api/v3/account", account_info)
    app.router.add_get("/api/v3/exchangeInfo", exchange_info)
    app.router.add_get("/api/v3/myTrades", my_trades)
    app.router.add_get("/api/v3/ticker/price", ticker_price)
    app.router.add_get("/api/v3/klines", klines)
    app.router.add_post("/_sim/faults", add_fault)
    app.router.add_put("/_sim/prices", set_prices)
    app.router.add_put("/_sim/weight", set_weight)
    app.router.add_put("/_sim/closes", set_closes)
    app.router.add_post("/_sim/markets", add_markets)
    app.router.add_post("/_sim/accounts", create_account)
    app.router.add_post("/_sim/accounts/{api_key}/trades", seed_trades)
    app.router.add_post("/_sim/accounts/{api_key}/revoke", revoke)
    app.router.add_put("/_sim/clock", set_clock)
    app.router.add_get("/_sim/requests", list_requests)
    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    arguments = parser.parse_args()
    print(json.dumps({"listening": arguments.port}), flush=True)
    web.run_app(application(), host="127.0.0.1", port=arguments.port, print=None)


if __name__ == "__main__":
    main()
