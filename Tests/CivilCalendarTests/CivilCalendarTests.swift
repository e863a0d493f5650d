import Testing
import CivilCalendar

@Test(arguments: [
    (Int64(1970), Int64(1), Int64(1), Int64(0)),
    (2000, 3, 1, 11_017),
    (1969, 12, 31, -1),
    (2024, 2, 29, 19_782),
    (0, 1, 1, -719_528),
    (9999, 12, 31, 2_932_896),
])
func knownDatesHaveTheirDayCounts(_ y: Int64, _ m: Int64, _ d: Int64, _ days: Int64) {
    #expect(CivilCalendar.days(year: y, month: m, day: d) == days)
    let c = CivilCalendar.date(days: days)
    #expect(c.year == y && c.month == m && c.day == d)
}

@Test func everyDayOfTwoMillionRoundTripsAndDatesAreConsecutive() {
    var previous = CivilCalendar.date(days: -1_000_001)
    for days in Int64(-1_000_000)...1_000_000 {
        let c = CivilCalendar.date(days: days)
        #expect(CivilCalendar.days(year: c.year, month: c.month, day: c.day) == days)
        let next = previous.day < CivilCalendar.daysInMonth(year: previous.year, month: previous.month)
            ? (previous.year, previous.month, previous.day + 1)
            : (previous.month == 12 ? (previous.year + 1, 1, 1) : (previous.year, previous.month + 1, 1))
        if next != (c.year, c.month, c.day) { Issue.record("day \(days): \(c) does not follow \(previous)"); return }
        previous = c
    }
}

@Test(arguments: [(Int64(2024), true), (2023, false), (1900, false), (2000, true)])
func leapYearsFollowTheGregorianRule(_ y: Int64, _ leap: Bool) {
    #expect(CivilCalendar.isLeapYear(y) == leap)
    #expect(CivilCalendar.daysInMonth(year: y, month: 2) == (leap ? 29 : 28))
}
