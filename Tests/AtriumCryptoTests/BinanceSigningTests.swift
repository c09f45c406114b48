import Testing

@testable import AtriumCrypto

/// Binance's own example of a SIGNED request (binance-spot-api-docs, "SIGNED endpoint
/// examples for POST /api/v3/order"): the same key, query and signature.
@Suite struct BinanceSigningTests {
    @Test func signsTheQueryStringAsTheDocsExampleDoes() {
        let secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
        let query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
        #expect(BinanceSpot.signature(of: query, secret: secret) == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71")
    }
}
