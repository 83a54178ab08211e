public import Foundation

/// Durations and dates as people type them on a command line.
public enum TimeSpec {
    /// `90s`, `45m`, `12h`, `30d`, `2w`, or combinations such as `1d12h`. Returns seconds.
    public static func parseDuration(_ text: String) -> Int? {
        let text = text.trimmingSpaces().lowercased()
        guard !text.isEmpty else { return nil }
        var total = 0
        var number = 0
        var sawDigit = false
        for scalar in text.unicodeScalars {
            if let digit = Int(String(scalar)), scalar.isASCII {
                guard number < 100_000_000 else { return nil }  // no overflow, and nobody means 190 years
                number = number * 10 + digit
                sawDigit = true
                continue
            }
            let unit: Int
            switch scalar {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3_600
            case "d": unit = 86_400
            case "w": unit = 604_800
            default: return nil
            }
            guard sawDigit else { return nil }
            total += number * unit
            guard total <= 100 * 366 * 86_400 else { return nil }
            number = 0
            sawDigit = false
        }
        guard !sawDigit, total > 0 else { return nil }
        return total
    }

    /// An expiry: a date (`2027-03-03`, valid through that day, UTC), an ISO 8601 date-time,
    /// or a duration from now (`30d`).
    public static func parseExpiry(_ text: String, now: Date) -> Date? {
        if let seconds = parseDuration(text) { return now.addingTimeInterval(TimeInterval(seconds)) }
        let text = text.trimmingSpaces()
        if text.count == 10, let day = try? Date(text + "T00:00:00Z", strategy: .iso8601) {
            // The parser rolls 2027-02-30 over into March: accept only dates that exist.
            guard day.formatted(.iso8601.year().month().day()) == text else { return nil }
            return day.addingTimeInterval(86_400)
        }
        return try? Date(text, strategy: .iso8601)
    }
}

/// Dates for people ("3 March 2027") and for machines (ISO 8601, UTC).
public enum HumanDate {
    private static let months = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
        "November", "December",
    ]

    public static func format(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return "\(parts.day!) \(months[parts.month! - 1]) \(parts.year!)"
    }

    public static func formatISO(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
