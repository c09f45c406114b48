"""Reads the simulator through pinned ccxt's `binance`, as a real client of Binance would:
ccxt signs the requests itself and parses the answers with its own rules, so what it
accepts is what Binance's documented shape is, as far as Atrium reads it.

Usage: ccxt_conformance.py BASE_URL API_KEY API_SECRET — prints one JSON object.
"""

import json
import sys

import ccxt


def client(base, key, secret):
    """ccxt's binance, spot only, pointed at `base`."""
    exchange = ccxt.binance({
        "apiKey": key, "secret": secret, "enableRateLimit": False,
        "options": {"fetchMarkets": ["spot"], "fetchMargins": False, "fetchCurrencies": False, "adjustForTimeDifference": True},
    })
    for name in ("public", "private"):
        exchange.urls["api"][name] = base + "/api/v3"
    exchange.urls["api"]["sapi"] = base + "/sapi/v1"
    return exchange


def main():
    base, key, secret = sys.argv[1:4]
    exchange = client(base, key, secret)
    out = {}
    out["time"] = exchange.fetch_time()
    markets = exchange.load_markets()
    out["markets"] = sorted(symbol for symbol, market in markets.items() if market["spot"])
    balance = exchange.fetch_balance()
    out["balance"] = {asset: str(balance["total"][asset]) for asset in sorted(balance["total"]) if balance["total"][asset]}
    trades = exchange.fetch_my_trades("BTC/USDT", params={"fromId": 0, "limit": 1000})
    out["trades"] = [{"id": trade["id"], "side": trade["side"], "amount": trade["amount"], "price": trade["price"],
                      "cost": trade["cost"], "fee": trade["fee"]["cost"], "fee_currency": trade["fee"]["currency"]} for trade in trades]
    out["ticker"] = exchange.fetch_last_prices(["ETH/BTC"])["ETH/BTC"]["price"]
    out["restrictions"] = exchange.sapi_get_account_apirestrictions()["enableWithdrawals"]
    midnight = exchange.milliseconds() // 86_400_000 * 86_400_000
    candles = exchange.fetch_ohlcv("ETH/BTC", "1d", since=midnight - 3 * 86_400_000, limit=3)
    out["candles"] = [[candle[0] % 86_400_000, candle[4]] for candle in candles]
    # A window of trades longer than Binance's 24 hours is refused (-1127).
    now = exchange.milliseconds()
    try:
        exchange.private_get_mytrades({"symbol": "BTCUSDT", "startTime": now - 3 * 86_400_000, "endTime": now})
        out["long_window"] = "accepted"
    except ccxt.BaseError as error:
        out["long_window"] = str(error).split(" ", 1)[-1][-120:]
    # Signed with another secret: Binance answers -1022, which ccxt maps to its own error.
    wrong = client(base, key, "x" * 64)
    try:
        wrong.fetch_balance()
        out["wrong_secret"] = "accepted"
    except ccxt.BaseError as error:
        out["wrong_secret"] = type(error).__name__
    print(json.dumps(out))


if __name__ == "__main__":
    main()
