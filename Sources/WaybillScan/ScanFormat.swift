import Foundation

/// What a file is, by its first bytes: scanners name files badly and mail clients label PDFs
/// `application/octet-stream`, so the extension and the MIME type are never trusted.
public enum ScanFormat: String, Sendable {
    case pdf
    case tiff
    case jpeg
    case png

    public init?(sniffing bytes: some Collection<UInt8>) {
        let head = Array(bytes.prefix(1024))
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            self = .png
        } else if head.starts(with: [0xFF, 0xD8, 0xFF]) {
            self = .jpeg
        } else if head.starts(with: [0x49, 0x49, 0x2A, 0x00]) || head.starts(with: [0x4D, 0x4D, 0x00, 0x2A]) {
            self = .tiff
        } else if Self.containsPDFHeader(head) {
            self = .pdf
        } else {
            return nil
        }
    }

    /// Sniffs a file's first kilobyte; nil when unreadable or not a scan format.
    public init?(path: String) {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 1024) else { return nil }
        self.init(sniffing: head)
    }

    /// `%PDF-` within the first kilobyte, as readers accept it (some scanners prepend junk).
    static func containsPDFHeader(_ head: [UInt8]) -> Bool {
        let marker = Array("%PDF-".utf8)
        guard head.count >= marker.count else { return false }
        return (0...(head.count - marker.count)).contains { head[$0..<$0 + marker.count].elementsEqual(marker) }
    }
}
