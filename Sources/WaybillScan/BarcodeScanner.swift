import CZBar
public import WaybillCore

public struct DecodedBarcode: Sendable, Hashable {
    /// zbar's name: `QR-Code`, `CODE-128`, `CODE-39`, …
    public let symbology: String
    public let text: String

    public init(symbology: String, text: String) {
        self.symbology = symbology
        self.text = text
    }
}

/// zbar's image scanner. One per task: zbar scanners keep state and are not thread-safe.
public final class BarcodeScanner {
    private let scanner: OpaquePointer

    public init() throws(WaybillError) {
        guard let scanner = zbar_image_scanner_create() else {
            throw WaybillError(.renderFailed, "zbar could not create a scanner")
        }
        self.scanner = scanner
        // Only the symbologies scans carry: Waybill's two, PATCH T's Code 39, and the common
        // retail and logistics codes for `--all-barcodes`. Fewer decoders is faster, and zbar's
        // DataBar decoder prints assertion noise on ordinary text.
        zbar_image_scanner_set_config(scanner, ZBAR_NONE, ZBAR_CFG_ENABLE, 0)
        for symbology in [ZBAR_QRCODE, ZBAR_CODE128, ZBAR_CODE39, ZBAR_CODE93, ZBAR_EAN13, ZBAR_EAN8, ZBAR_UPCA, ZBAR_UPCE, ZBAR_I25] {
            zbar_image_scanner_set_config(scanner, symbology, ZBAR_CFG_ENABLE, 1)
        }
        // Every second row and column: at 150 dpi a sheet's codes are dozens of lines tall, and
        // it halves zbar's time (7 → 12 pages/s on the decode benchmark, every fixture still read).
        zbar_image_scanner_set_config(scanner, ZBAR_NONE, ZBAR_CFG_X_DENSITY, 2)
        zbar_image_scanner_set_config(scanner, ZBAR_NONE, ZBAR_CFG_Y_DENSITY, 2)
    }

    deinit { zbar_image_scanner_destroy(scanner) }

    public func scan(_ image: GrayImage) -> [DecodedBarcode] {
        guard let zimage = zbar_image_create() else { return [] }
        defer { zbar_image_destroy(zimage) }
        zbar_image_set_format(zimage, waybill_zbar_y800())
        zbar_image_set_size(zimage, UInt32(image.width), UInt32(image.height))
        return image.pixels.withUnsafeBufferPointer { buffer in
            // No cleanup handler: the buffer is ours and outlives the scan.
            zbar_image_set_data(zimage, buffer.baseAddress, UInt(buffer.count), nil)
            guard zbar_scan_image(scanner, zimage) > 0 else { return [] }
            var found: [DecodedBarcode] = []
            var symbol = zbar_image_first_symbol(zimage)
            while let current = symbol {
                let type = zbar_symbol_get_type(current)
                let name = String(cString: zbar_get_symbol_name(type))
                let length = Int(zbar_symbol_get_data_length(current))
                let text = zbar_symbol_get_data(current).map {
                    String(decoding: UnsafeRawBufferPointer(start: $0, count: length), as: UTF8.self)
                } ?? ""
                found.append(DecodedBarcode(symbology: name, text: text))
                symbol = zbar_symbol_next(current)
            }
            return found
        }
    }
}
