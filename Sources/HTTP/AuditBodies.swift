import API
import Core
import Foundation
import OpenAPIRuntime
import ServiceLifecycle

/// An export body: the records as NDJSON or CSV lines, pulled from the database as the client
/// reads, in chunks of about 64 KiB.
struct AuditExportBody: AsyncSequence, Sendable {
    typealias Element = HTTPBody.ByteChunk
    enum Format: Sendable { case ndjson, csv }

    let records: AuditRecords
    let format: Format

    struct AsyncIterator: AsyncIteratorProtocol {
        var records: AuditRecords.AsyncIterator
        let format: Format
        var headerSent = false
        var finished = false

        mutating func next() async throws -> HTTPBody.ByteChunk? {
            guard !finished else { return nil }
            var chunk: [UInt8] = []
            if format == .csv && !headerSent {
                chunk += Array((AuditRecord.csvHeader.joined(separator: ",") + "\r\n").utf8)
                headerSent = true
            }
            while chunk.count < 64 * 1024 {
                guard let record = try await records.next() else {
                    finished = true
                    break
                }
                switch format {
                case .ndjson: chunk += Array((record.json.canonicalText + "\n").utf8)
                case .csv: chunk += Array((record.csvLine + "\r\n").utf8)
                }
            }
            return chunk.isEmpty ? nil : ArraySlice(chunk)
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(records: records.makeAsyncIterator(), format: format)
    }
}

/// The live stream: sealed events after a chain position, as server-sent events, polled every half
/// second, with a keep-alive comment every 15 seconds; it ends when podid shuts down.
struct AuditStreamBody: AsyncSequence, Sendable {
    typealias Element = HTTPBody.ByteChunk
    let log: any AuditLog
    let filter: AuditFilter
    let after: Int64
    /// The stream's slot (`AuditService.streams`), given back when the stream ends or is dropped.
    let slot: StreamSlot

    struct AsyncIterator: AsyncIteratorProtocol {
        let log: any AuditLog
        let filter: AuditFilter
        var after: Int64
        let slot: StreamSlot
        var quietSince = ContinuousClock.now
        var opened = false

        mutating func next() async throws -> HTTPBody.ByteChunk? {
            if !opened {
                opened = true
                // Tells EventSource clients how soon to reconnect, and flushes the headers at once.
                return ArraySlice(Array("retry: 2000\n: podid audit stream from position \(after)\n\n".utf8))
            }
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let head = try await log.lastPosition()
                let records = try await log.sealed(filter, after: after, upTo: head, limit: 500)
                // A full batch resumes after its last event; otherwise everything up to the head
                // was read (a filter may have skipped most of it).
                after = records.count == 500 ? (records.last?.position ?? head) : head
                if !records.isEmpty {
                    quietSince = ContinuousClock.now
                    var text = ""
                    for record in records {
                        text += "id: \(record.position ?? 0)\nevent: audit\ndata: \(record.json.canonicalText)\n\n"
                    }
                    return ArraySlice(Array(text.utf8))
                }
                if ContinuousClock.now - quietSince >= .seconds(15) {
                    quietSince = ContinuousClock.now
                    return ArraySlice(Array(": keep-alive\n\n".utf8))
                }
                try? await Task.sleep(for: .milliseconds(500))
            }
            slot.release()
            return nil
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(log: log, filter: filter, after: after, slot: slot)
    }
}
