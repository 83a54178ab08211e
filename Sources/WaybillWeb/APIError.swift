import Foundation
public import Hummingbird
import Logging
public import WaybillCore

/// An API failure as the client sees it: an HTTP status and a JSON body
/// `{"error": "<sentence for people>", "code": "<stable code for scripts>"}`. Codes are the
/// `WaybillError` codes where the model refused something, otherwise the API's own.
public struct APIError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    /// RFC 6750 §3: a 401 for a Bearer-protected resource says which scheme to use.
    static func unauthorized(_ code: String, _ message: String) -> APIError {
        var error = APIError(.unauthorized, code: code, message)
        error.headers[.wwwAuthenticate] = code == "invalid-token" ? #"Bearer error="invalid_token""# : "Bearer"
        return error
    }

    static func forbidden(_ message: String) -> APIError { APIError(.forbidden, code: "forbidden", message) }

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, code: "bad-request", message) }

    static func notConfigured(_ what: String) -> APIError {
        APIError(.serviceUnavailable, code: "not-configured", "\(what) is not set up in this server")
    }

    /// The status for a model error: what a person typed wrong is 422, what is missing 404, what
    /// cannot happen in the directive's state 409, everything else the server's fault.
    public init(_ error: WaybillError) {
        let status: HTTPResponse.Status
        switch error.code {
        case .unknownDirective, .invalidDirectiveID, .unknownUser, .unknownToken, .unknownMessage, .unknownDelivery, .pageNotFound:
            status = .notFound
        case .directiveInactive, .invalidQuarantineAction, .stillQuarantined, .invalidQueueAction, .messageBusy:
            status = .conflict
        case .invalidDestination, .invalidEmail, .unknownFolderRoot, .pathEscape, .webhookNotAllowed, .invalidExpiry,
            .invalidMaxUses, .invalidDirective, .invalidUser, .invalidPassword:
            status = .unprocessableContent
        // A quarantined scan that cannot be read (often why it is in quarantine): its pages cannot be shown.
        case .unreadableDocument, .encryptedDocument, .unsupportedFormat, .emptyFile, .tooManyPages,
            WaybillError.Code("malformed-message"):
            status = .unprocessableContent
        default: status = .internalServerError
        }
        self.init(status, code: error.code.name, error.message)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try JSONResponse.make(["error": message, "code": code], status: status)
        response.headers.append(contentsOf: headers)
        return response
    }
}

/// Every failure leaves as an `APIError` body, whatever threw it, so clients parse one shape.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as WaybillError {
            let apiError = APIError(error)
            if apiError.status == .internalServerError {
                context.logger.error("\(request.method) \(request.uri.path) failed: \(error.message) [\(error.code)]")
            }
            throw apiError
        } catch let error as any HTTPResponseError {
            let message = (error as? HTTPError)?.body ?? "\(error.status.reasonPhrase)"
            let code = error.status == .notFound ? "not-found" : "http-\(error.status.code)"
            throw APIError(error.status, code: code, message)
        } catch {
            context.logger.error("\(request.method) \(request.uri.path) failed: \(error)")
            throw APIError(.internalServerError, code: "internal-error", "the server failed; its log says why")
        }
    }
}

/// JSON as the CLI prints it (sorted keys, slashes unescaped), so `curl` and `--json` agree.
enum JSONResponse {
    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(value)
        data.append(0x0A)
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
