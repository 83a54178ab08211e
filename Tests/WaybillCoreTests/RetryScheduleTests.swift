import Foundation
import Testing
import WaybillCore

@Suite struct RetryScheduleTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func delaysDoubleFromTheFirstUpToTheCap() {
        let schedule = RetrySchedule(firstDelay: .seconds(300), maximumDelay: .seconds(3600), giveUp: .seconds(4 * 86400))
        #expect(schedule.baseDelay(afterFailures: 1) == .seconds(300))
        #expect(schedule.baseDelay(afterFailures: 2) == .seconds(600))
        #expect(schedule.baseDelay(afterFailures: 3) == .seconds(1200))
        #expect(schedule.baseDelay(afterFailures: 4) == .seconds(2400))
        #expect(schedule.baseDelay(afterFailures: 5) == .seconds(3600))
        #expect(schedule.baseDelay(afterFailures: 500) == .seconds(3600))
    }

    @Test func jitterStaysWithinTwentyPercent() {
        let schedule = RetrySchedule(firstDelay: .seconds(300))
        for _ in 0..<200 {
            let next = schedule.nextAttempt(afterFailures: 1, since: start, now: start)!
            let delay = next.timeIntervalSince(start)
            #expect(delay >= 240 && delay <= 360)
        }
        let low = schedule.nextAttempt(afterFailures: 1, since: start, now: start, jitter: 0.8)!
        let high = schedule.nextAttempt(afterFailures: 1, since: start, now: start, jitter: 1.2)!
        #expect(low.timeIntervalSince(start) == 240)
        #expect(high.timeIntervalSince(start) == 360)
    }

    @Test func oneLastAttemptAtTheGiveUpTimeThenNone() {
        let schedule = RetrySchedule(firstDelay: .seconds(300), maximumDelay: .seconds(4 * 3600), giveUp: .seconds(86400))
        // Near the end, the next attempt is clipped to the give-up time itself…
        let late = start.addingTimeInterval(86400 - 60)
        #expect(schedule.nextAttempt(afterFailures: 10, since: start, now: late, jitter: 1) == start.addingTimeInterval(86400))
        // …and a failure at or after it is final.
        #expect(schedule.nextAttempt(afterFailures: 11, since: start, now: start.addingTimeInterval(86400)) == nil)
    }

    @Test func theDefaultsAreRFC5321Like() {
        let schedule = RetrySchedule()
        #expect(schedule.firstDelay == .seconds(300))
        #expect(schedule.giveUp == .seconds(4 * 86400))
    }
}
