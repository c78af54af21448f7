import AsyncHTTPClient
import Core
import Foundation
import NIOHTTP1

/// An Entra access token for ARM.
public struct AccessToken: Sendable, Equatable {
    /// The bearer token. Secret.
    public var token: String
    /// When it expires.
    public var expiresAt: Date

    /// Creates a token.
    public init(token: String, expiresAt: Date) {
        self.token = token
        self.expiresAt = expiresAt
    }
}

/// A way to get an ARM token.
public protocol AzureCredential: Sendable {
    /// A human name for logs and errors.
    var kind: String { get }
    /// Fetches a new token (callers cache it through `CachedCredential`).
    func fetchToken() async throws -> AccessToken
}

/// Client credentials with a secret (`PODID_AZURE_CLIENT_SECRET` or `…_SECRET_FILE`, read on every
/// fetch so that a rotated file takes effect).
public struct ClientSecretCredential: AzureCredential {
    let transport: HTTPTransport
    let authorityHost: String
    let tenantId: String
    let clientId: String
    let secret: Secret

    /// Where the secret comes from.
    public enum Secret: Sendable {
        case value(String)
        case file(String)
    }

    public var kind: String { "client secret" }

    /// Creates the credential.
    public init(client: HTTPClient, authorityHost: String, tenantId: String, clientId: String, secret: Secret) {
        self.transport = HTTPTransport(client: client, service: .entra)
        self.authorityHost = authorityHost
        self.tenantId = tenantId
        self.clientId = clientId
        self.secret = secret
    }

    public func fetchToken() async throws -> AccessToken {
        let value: String
        switch secret {
        case .value(let secret): value = secret
        case .file(let path):
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw UpstreamError(service: .entra, status: nil, code: "SecretFileUnreadable",
                                    message: "cannot read the client secret file \(path) (PODID_AZURE_CLIENT_SECRET_FILE)", retryable: false)
            }
            value = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return try await EntraTokenRequest.post(
            transport, authorityHost: authorityHost, tenantId: tenantId,
            form: ["client_id": clientId, "client_secret": value, "grant_type": "client_credentials"])
    }
}

/// Workload identity: a federated assertion from `AZURE_FEDERATED_TOKEN_FILE`, re-read on every
/// token request because the kubelet rotates it.
public struct WorkloadIdentityCredential: AzureCredential {
    let transport: HTTPTransport
    let authorityHost: String
    let tenantId: String
    let clientId: String
    let tokenFile: String

    public var kind: String { "workload identity" }

    /// Creates the credential.
    public init(client: HTTPClient, authorityHost: String, tenantId: String, clientId: String, tokenFile: String) {
        self.transport = HTTPTransport(client: client, service: .entra)
        self.authorityHost = authorityHost
        self.tenantId = tenantId
        self.clientId = clientId
        self.tokenFile = tokenFile
    }

    public func fetchToken() async throws -> AccessToken {
        guard let assertion = try? String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
              !assertion.isEmpty
        else {
            throw UpstreamError(service: .entra, status: nil, code: "FederatedTokenUnreadable",
                                message: "cannot read the federated token file \(tokenFile) (AZURE_FEDERATED_TOKEN_FILE)", retryable: true)
        }
        return try await EntraTokenRequest.post(
            transport, authorityHost: authorityHost, tenantId: tenantId,
            form: [
                "client_id": clientId, "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion": assertion,
            ])
    }
}

/// The instance metadata service of the VM podid runs on (`PODID_AZURE_IMDS_ENDPOINT`).
public struct ManagedIdentityCredential: AzureCredential {
    let transport: HTTPTransport
    let endpoint: String
    let clientId: String?

    public var kind: String { "managed identity (IMDS)" }

    /// Creates the credential; `clientId` selects a user-assigned identity.
    public init(client: HTTPClient, endpoint: String, clientId: String?) {
        var transport = HTTPTransport(client: client, service: .entra)
        transport.timeout = .seconds(10)
        self.transport = transport
        self.endpoint = endpoint
        self.clientId = clientId
    }

    public func fetchToken() async throws -> AccessToken {
        var url = "\(endpoint)/metadata/identity/oauth2/token?api-version=2018-02-01&resource=\(formEncode(ARMClient.resource))"
        if let clientId { url += "&client_id=\(formEncode(clientId))" }
        let answer = try await transport.send(.GET, url, headers: [("Metadata", "true")])
        guard answer.status == 200, let json = answer.json, let token = json.at("access_token")?.stringValue else {
            let description = answer.json?.at("error_description")?.stringValue ?? answer.text
            // IMDS asks for retries on 404 (updating), 410 (restarting), 429 and 5xx.
            let retryable = [404, 410, 429].contains(answer.status) || answer.status >= 500
            throw UpstreamError(service: .entra, status: answer.status, code: answer.json?.at("error")?.stringValue ?? "IMDSError",
                                message: "IMDS token request failed: \(description)", retryable: retryable,
                                retryAfter: HTTPTransport.retryAfter(answer.header("Retry-After")))
        }
        // IMDS answers every value as a string.
        let expiresOn = json.at("expires_on")?.stringValue.flatMap(Double.init)
        let expiresIn = json.at("expires_in")?.stringValue.flatMap(Double.init) ?? 3600
        return AccessToken(token: token, expiresAt: expiresOn.map { Date(timeIntervalSince1970: $0) } ?? Date().addingTimeInterval(expiresIn))
    }
}

/// The Entra v2 token endpoint.
enum EntraTokenRequest {
    static func post(_ transport: HTTPTransport, authorityHost: String, tenantId: String, form: [String: String]) async throws -> AccessToken {
        var fields = form
        fields["scope"] = ARMClient.resource + ".default"
        let body = fields.sorted { $0.key < $1.key }.map { "\($0.key)=\(formEncode($0.value))" }.joined(separator: "&")
        let host = authorityHost.hasSuffix("/") ? String(authorityHost.dropLast()) : authorityHost
        let answer = try await transport.send(
            .POST, "\(host)/\(tenantId)/oauth2/v2.0/token",
            headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")], body: Array(body.utf8))
        guard answer.status == 200, let json = answer.json, let token = json.at("access_token")?.stringValue else {
            let description = answer.json?.at("error_description")?.stringValue ?? answer.text
            let firstLine = description.split(separator: "\r\n").first.map(String.init) ?? description
            // AADSTS 4xx errors are configuration problems; only 429 and 5xx are worth retrying.
            throw UpstreamError(service: .entra, status: answer.status, code: answer.json?.at("error")?.stringValue ?? "TokenRequestFailed",
                                message: "Entra refused podid's token request: \(firstLine)",
                                retryable: answer.status == 429 || answer.status >= 500,
                                retryAfter: HTTPTransport.retryAfter(answer.header("Retry-After")),
                                correlationId: answer.json?.at("correlation_id")?.stringValue)
        }
        let expiresIn: Double
        switch json.at("expires_in") {
        case .number(let value)?: expiresIn = value
        case .string(let text)?: expiresIn = Double(text) ?? 3600
        default: expiresIn = 3600
        }
        return AccessToken(token: token, expiresAt: Date().addingTimeInterval(expiresIn))
    }
}

/// Caches a credential's token and refreshes it five minutes before expiry; concurrent callers
/// share one refresh.
public actor CachedCredential {
    let credential: any AzureCredential
    let refreshMargin: TimeInterval
    var cached: AccessToken?
    var refreshing: Task<AccessToken, any Error>?

    /// Wraps a credential.
    public init(_ credential: any AzureCredential, refreshMargin: TimeInterval = 300) {
        self.credential = credential
        self.refreshMargin = refreshMargin
    }

    /// What kind of credential this is.
    public nonisolated var kind: String { credential.kind }

    /// A token valid for at least the refresh margin.
    public func token() async throws -> String {
        if let cached, cached.expiresAt.timeIntervalSinceNow > refreshMargin { return cached.token }
        if let refreshing { return try await refreshing.value.token }
        let task = Task { try await credential.fetchToken() }
        refreshing = task
        defer { refreshing = nil }
        let token = try await task.value
        cached = token
        return token.token
    }

    /// Forgets the cached token (after a 401).
    public func invalidate() {
        cached = nil
    }
}

/// Picks the credential the configuration names, in the documented order: a client secret when
/// one is set, else a federated token file when present, else IMDS.
public enum CredentialChain {
    /// What to build from.
    public struct Settings: Sendable {
        public var tenantId: String?
        public var clientId: String?
        public var clientSecret: String?
        public var clientSecretFile: String?
        public var federatedTokenFile: String?
        public var authorityHost: String
        public var imdsEndpoint: String

        /// Creates settings.
        public init(tenantId: String?, clientId: String?, clientSecret: String?, clientSecretFile: String?,
                    federatedTokenFile: String?, authorityHost: String, imdsEndpoint: String) {
            self.tenantId = tenantId
            self.clientId = clientId
            self.clientSecret = clientSecret
            self.clientSecretFile = clientSecretFile
            self.federatedTokenFile = federatedTokenFile
            self.authorityHost = authorityHost
            self.imdsEndpoint = imdsEndpoint
        }
    }

    /// The first configured credential, or an error naming what is missing.
    public static func credential(_ settings: Settings, client: HTTPClient) throws -> any AzureCredential {
        let secret: ClientSecretCredential.Secret? =
            settings.clientSecret.map { .value($0) } ?? settings.clientSecretFile.map { .file($0) }
        if let secret {
            guard let tenant = settings.tenantId, let clientId = settings.clientId else {
                throw UpstreamError(service: .entra, status: nil, code: "IncompleteConfiguration",
                                    message: "a client secret is set but PODID_AZURE_TENANT_ID or PODID_AZURE_CLIENT_ID is not", retryable: false)
            }
            return ClientSecretCredential(client: client, authorityHost: settings.authorityHost, tenantId: tenant, clientId: clientId, secret: secret)
        }
        if let file = settings.federatedTokenFile, FileManager.default.fileExists(atPath: file) {
            guard let tenant = settings.tenantId, let clientId = settings.clientId else {
                throw UpstreamError(service: .entra, status: nil, code: "IncompleteConfiguration",
                                    message: "AZURE_FEDERATED_TOKEN_FILE is set but the tenant or client id is not (AZURE_TENANT_ID, AZURE_CLIENT_ID)", retryable: false)
            }
            return WorkloadIdentityCredential(client: client, authorityHost: settings.authorityHost, tenantId: tenant, clientId: clientId, tokenFile: file)
        }
        return ManagedIdentityCredential(client: client, endpoint: settings.imdsEndpoint, clientId: settings.clientId)
    }
}
