/// The decision daemon: loads a policies folder, answers JSON-RPC methods (see docs/protocol.md).
public enum CustosDaemonInfo {
    public static let protocolVersion = 1
}
