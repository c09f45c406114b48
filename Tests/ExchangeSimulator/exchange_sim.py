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

A control API under /_sim/ (unsigned; the simulator binds to loopback only) creates
accounts, revokes keys, moves the clock and lists the requests it served.
"""

import argparse
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
           "BNBBTC": ("BNB", "BTC"), "SOLUSDT": ("SOL", "USDT"), "XRPUSDT": ("XRP", "USDT")}


class Exchange:
    def __init__(self):
        self.accounts = {}  # api_key -> account
        self.clock_offset_ms = 0
        self.requests = []

    def now_ms(self):
        return int(time.time() * 1000) + self.clock_offset_ms


def error(status, code, message):
    return web.json_response({"code": code, "msg": message}, status=status)


def signed(handler):
    """Checks key, signature and timestamp as Binance does, in that order."""

    async def check(request):
        exchange = request.app["exchange"]
        query = request.query_string
        exchange.requests.append({"method": request.method, "path": request.path, "query": query,
                                  "api_key": request.headers.get("X-MBX-APIKEY")})
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
    exchange.requests.append({"method": request.method, "path": request.path, "query": request.query_string, "api_key": None})
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
    exchange.requests.append({"method": request.method, "path": request.path, "query": request.query_string, "api_key": None})
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
    trades = account["trades"].get(symbol, [])
    if "fromId" in params:
        start = int(params["fromId"])
        page = [trade for trade in trades if trade["id"] >= start][:limit]
    else:
        page = trades[-limit:]
    return web.json_response(page)


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


def application():
    app = web.Application()
    app["exchange"] = Exchange()
    app.router.add_get("/api/v3/time", server_time)
    app.router.add_get("/sapi/v1/account/apiRestrictions", api_restrictions)
    app.router.add_get("/api/v3/account", account_info)
    app.router.add_get("/api/v3/exchangeInfo", exchange_info)
    app.router.add_get("/api/v3/myTrades", my_trades)
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
