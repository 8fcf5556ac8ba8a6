/// What a frame carries. The values are on the wire: never renumber one.
public enum FrameType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Opens a connection: the sender's peer id and protocol features.
    case hello = 1
    /// Asks for the receiver's inventory.
    case inventoryRequest = 2
    /// Which files the sender has, and which of their chunks.
    case inventory = 3
    /// Asks for the manifest of a file id.
    case manifestRequest = 4
    /// A manifest, answering a request or announcing a push.
    case manifest = 5
    /// Asks for one chunk; the chunk number is in the frame header.
    case chunkRequest = 6
    /// One chunk's bytes; the chunk number is in the frame header.
    case chunkData = 7
    /// A chunk sent unasked by distribution; the chunk number is in the frame header.
    case pushedChunk = 8
    /// The request cannot be answered (unknown file, chunk not held, ...).
    case failure = 9

    public var description: String {
        switch self {
        case .hello: "hello"
        case .inventoryRequest: "inventory-request"
        case .inventory: "inventory"
        case .manifestRequest: "manifest-request"
        case .manifest: "manifest"
        case .chunkRequest: "chunk-request"
        case .chunkData: "chunk-data"
        case .pushedChunk: "pushed-chunk"
        case .failure: "failure"
        }
    }
}
