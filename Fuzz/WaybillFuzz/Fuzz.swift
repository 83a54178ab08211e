import Foundation
import WaybillCore
import WaybillScan

/// Fuzz target for the decoder's entry points: whatever bytes arrive are sniffed and fed to the
/// reader that claims them: Waybill's own PDF structure reader, poppler (open, page 0 at 18 dpi),
/// TurboJPEG, libpng and libtiff. A crash, a trap or a hang is a bug; errors are fine.
///
/// Build and run with libFuzzer (see README, "Fuzzing"):
///     swift build -c release --scratch-path .build-fuzz --product WaybillFuzz \
///         -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -use-ld=lld
///     .build-fuzz/release/WaybillFuzz Fuzz/corpus -max_total_time=300
/// Without -DFUZZING it is a replayer: `WaybillFuzz FILE…` runs each file through the same code,
/// which is how crashes found once stay fixed (Tests run Fuzz/regressions through it).
enum FuzzTarget {
    static func run(_ data: Data) {
        guard let format = ScanFormat(sniffing: data.prefix(1024)) else { return }
        switch format {
        case .pdf:
            _ = PDFScanLayout.imagePages(in: data, expectedPageCount: 1)
            if let document = try? PDFDocument(data: data), document.pageCount > 0 {
                _ = try? document.render(page: 0, dpi: 18)
            }
        case .jpeg:
            _ = try? ImageReaders.jpeg(data, maximumSide: 256)
        case .png:
            _ = try? ImageReaders.png(data)
        case .tiff:
            let path = NSTemporaryDirectory() + "waybill-fuzz-\(getpid()).tif"
            guard (try? data.write(to: URL(fileURLWithPath: path))) != nil else { return }
            defer { unlink(path) }
            if let document = try? TIFFDocument(path: path), document.pageCount > 0 {
                _ = try? document.page(0)
            }
        }
    }
}

/// libFuzzer's driver, for programs that keep their own `main` (SwiftPM names every executable's
/// entry point itself, so libFuzzer's `main` cannot be used).
#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
#endif

@main
struct Main {
    static func main() {
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { bytes, count in
            FuzzTarget.run(bytes.map { Data(bytes: $0, count: count) } ?? Data())
            return 0
        })
        #else
        let files = CommandLine.arguments.dropFirst()
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                FileHandle.standardError.write(Data("cannot read \(file)\n".utf8))
                exit(2)
            }
            FuzzTarget.run(data)
        }
        print("replayed \(files.count) input\(files.count == 1 ? "" : "s")")
        #endif
    }
}
