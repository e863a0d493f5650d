/// Calls into the extension types (decimal, ipaddr, datetime, duration). Arguments are all
/// evaluated first, then checked, as Cedar does.
extension Evaluator {
    func callExtension(_ fn: ExtensionFunction, _ argNodes: [IR]) throws(EvalError) -> Value {
        var args: [Value] = []
        args.reserveCapacity(argNodes.count)
        for a in argNodes { args.append(try eval(a)) }
        return try ExtensionFunction.apply(fn, args)
    }
}

extension ExtensionFunction {
    /// Applies the function to evaluated arguments (arity already checked at compile time).
    static func apply(_ fn: ExtensionFunction, _ args: [Value]) throws(EvalError) -> Value {
        func wrap<T>(_ body: () throws(ExtensionError) -> T) throws(EvalError) -> T {
            do { return try body() } catch {
                switch error {
                case .invalidLiteral(let m): throw .extensionFailure(m)
                case .overflow(let m): throw .overflow(m)
                }
            }
        }
        func string(_ i: Int) throws(EvalError) -> String {
            guard case .string(let s) = args[i] else { throw .typeMismatch(expected: "string", got: args[i].typeName) }
            return s
        }
        func decimal(_ i: Int) throws(EvalError) -> CedarDecimal {
            guard case .decimal(let d) = args[i] else { throw .typeMismatch(expected: "decimal", got: args[i].typeName) }
            return d
        }
        func ipaddr(_ i: Int) throws(EvalError) -> CedarIPAddr {
            guard case .ipaddr(let d) = args[i] else { throw .typeMismatch(expected: "ipaddr", got: args[i].typeName) }
            return d
        }
        func datetime(_ i: Int) throws(EvalError) -> CedarDatetime {
            guard case .datetime(let d) = args[i] else { throw .typeMismatch(expected: "datetime", got: args[i].typeName) }
            return d
        }
        func duration(_ i: Int) throws(EvalError) -> CedarDuration {
            guard case .duration(let d) = args[i] else { throw .typeMismatch(expected: "duration", got: args[i].typeName) }
            return d
        }

        switch fn {
        case .decimal:
            let s = try string(0)
            return .decimal(try wrap { () throws(ExtensionError) in try CedarDecimal.parse(s) })
        case .ip:
            let s = try string(0)
            return .ipaddr(try wrap { () throws(ExtensionError) in try CedarIPAddr.parse(s) })
        case .datetime:
            let s = try string(0)
            return .datetime(try wrap { () throws(ExtensionError) in try CedarDatetime.parse(s) })
        case .duration:
            let s = try string(0)
            return .duration(try wrap { () throws(ExtensionError) in try CedarDuration.parse(s) })

        case .lessThan: return .bool(try decimal(0) < decimal(1))
        case .lessThanOrEqual: return .bool(try decimal(0) <= decimal(1))
        case .greaterThan: return .bool(try decimal(0) > decimal(1))
        case .greaterThanOrEqual: return .bool(try decimal(0) >= decimal(1))

        case .isIpv4: return .bool(try ipaddr(0).isIPv4)
        case .isIpv6: return .bool(try ipaddr(0).isIPv6)
        case .isLoopback: return .bool(try ipaddr(0).isLoopback)
        case .isMulticast: return .bool(try ipaddr(0).isMulticast)
        case .isInRange: return .bool(try ipaddr(0).isInRange(ipaddr(1)))

        case .offset:
            let d = try datetime(0), by = try duration(1)
            return .datetime(try wrap { () throws(ExtensionError) in try d.offset(by) })
        case .durationSince:
            let a = try datetime(0), b = try datetime(1)
            return .duration(try wrap { () throws(ExtensionError) in try a.durationSince(b) })
        case .toDate:
            let d = try datetime(0)
            return .datetime(try wrap { () throws(ExtensionError) in try d.toDate() })
        case .toTime: return .duration(try datetime(0).toTime())

        case .toMilliseconds: return .long(try duration(0).toMilliseconds)
        case .toSeconds: return .long(try duration(0).toSeconds)
        case .toMinutes: return .long(try duration(0).toMinutes)
        case .toHours: return .long(try duration(0).toHours)
        case .toDays: return .long(try duration(0).toDays)
        }
    }
}
