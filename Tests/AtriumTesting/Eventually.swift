/// Polls `condition` until it holds or `timeout` has passed: true when it held. Tests wait
/// for a state this way, never with a fixed sleep, and then assert that the state was
/// reached: on a loaded machine a fixed sleep is either too short (a flaky failure) or
/// too long (a slow suite), and a wait that ends without its state proves nothing.
public func eventually(
    timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(20), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
}
