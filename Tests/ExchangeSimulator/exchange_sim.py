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

A control API under /_sim/ (unsigned; the simulator binds to loopback only) creates
accounts, revokes keys, moves the clock and lists the requests it served.
"""

import argparse
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qsl

from aiohttp import web

API_KEY_LENGTH = 64


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
    }
    return web.json_response({"api_key": key}, status=201)


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
    app.router.add_post("/_sim/accounts", create_account)
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
