public import WaybillCore

extension WaybillError.Code {
    /// The spool file is not a message, passes a ``MIMELimits`` bound, or carries nothing usable.
    public static let malformedMessage = WaybillError.Code("malformed-message")
}
