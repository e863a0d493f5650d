import Dispatch
import ReadMostly
import Synchronization
import Testing

/// Readers see whole values while a writer replaces and updates them.
@Suite struct ReadMostlyTests {
    struct Pair: Sendable, Equatable {
        var a: [Int]
        var b: [Int]
    }

    @Test func readersNeverSeeAHalfWrittenValue() {
        let cell = ReadMostly(Pair(a: [0], b: [0]))
        let torn = Atomic<Int>(0)
        let reads = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            if worker == 0 {
                for i in 1...2000 {
                    if i % 2 == 0 {
                        cell.replace(Pair(a: [i, i], b: [i, i]))
                    } else {
                        cell.update { p in
                            p.a = [i]
                            p.b = [i]
                        }
                    }
                }
            } else {
                for _ in 0..<5000 {
                    let p = cell.read()
                    if p.a != p.b { torn.add(1, ordering: .relaxed) }
                    reads.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(torn.load(ordering: .relaxed) == 0)
        #expect(reads.load(ordering: .relaxed) == 15000)
        #expect(cell.read() == Pair(a: [2000, 2000], b: [2000, 2000]))
    }

    @Test func updateReturnsTheBodysResultAndRethrowsItsError() {
        struct Refused: Error {}
        let cell = ReadMostly(1)
        let doubled = cell.update { v -> Int in
            v *= 2
            return v
        }
        #expect(doubled == 2)
        #expect(throws: Refused.self) {
            try cell.update { (_: inout Int) throws(Refused) in throw Refused() }
        }
        #expect(cell.read() == 2)
    }
}
