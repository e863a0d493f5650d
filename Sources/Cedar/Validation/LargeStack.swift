#if canImport(Glibc)
import Glibc
#endif

/// Type checking recurses once per expression level (about 2 KiB of stack each), and the
/// parser admits expressions 1,000 levels deep, more than a 512 KiB worker-thread stack
/// holds. Deep conditions are therefore checked on a thread of their own with a stack that
/// fits the parser's bound many times over; shallow ones (nearly all) stay on the caller's.
enum LargeStack {
    /// Conditions up to this depth are checked on the calling thread.
    static let callerDepth = 128
    static let stackBytes = 32 << 20

    static func run<T>(_ body: () -> T) -> T {
        withoutActuallyEscaping(body) { escapable in
            let box = LargeStackBox(escapable)
            var attr = pthread_attr_t()
            pthread_attr_init(&attr)
            defer { pthread_attr_destroy(&attr) }
            pthread_attr_setstacksize(&attr, stackBytes)
            var tid = pthread_t()
            let unmanaged = Unmanaged.passRetained(box as LargeStackRunner)
            let rc = pthread_create(&tid, &attr, { raw in
                Unmanaged<LargeStackRunner>.fromOpaque(raw!).takeRetainedValue().run()
                return nil
            }, unmanaged.toOpaque())
            guard rc == 0 else {
                // No thread to be had: check here rather than not at all.
                unmanaged.release()
                return escapable()
            }
            pthread_join(tid, nil)
            return box.result!
        }
    }

    /// The depth of an expression tree, without recursion.
    static func depth(_ e: Expr) -> Int {
        var deepest = 0
        var stack: [(Expr, Int)] = [(e, 1)]
        while let (x, d) = stack.popLast() {
            deepest = max(deepest, d)
            switch x.kind {
            case .bool, .long, .string, .entity, .variable, .slot: break
            case .ifThenElse(let a, let b, let c): stack += [(a, d + 1), (b, d + 1), (c, d + 1)]
            case .and(let a, let b), .or(let a, let b), .binary(_, let a, let b): stack += [(a, d + 1), (b, d + 1)]
            case .isTypeIn(let a, _, let b): stack += [(a, d + 2), (b, d + 2)]
            case .not(let a), .negate(let a), .isEmpty(let a), .getAttr(let a, _), .hasAttr(let a, _),
                 .like(let a, _), .isType(let a, _):
                stack.append((a, d + 1))
            case .set(let xs), .call(_, let xs): for x in xs { stack.append((x, d + 1)) }
            case .record(let es): for en in es { stack.append((en.value, d + 1)) }
            }
        }
        return deepest
    }
}

/// The body and result of one `LargeStack.run`, handed to one thread and read after it is
/// joined (so unchecked `Sendable` is sound).
private class LargeStackRunner: @unchecked Sendable {
    func run() {}
}

private final class LargeStackBox<T>: LargeStackRunner, @unchecked Sendable {
    let body: () -> T
    var result: T?
    init(_ body: @escaping () -> T) { self.body = body }
    override func run() { result = body() }
}
