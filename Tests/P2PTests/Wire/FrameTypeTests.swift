import P2P
import Testing

@Suite("FrameType")
struct FrameTypeTests {
    @Test("the wire values stay as published")
    func wireValues() {
        let expected: [(FrameType, UInt8, String)] = [
            (.hello, 1, "hello"),
            (.inventoryRequest, 2, "inventory-request"),
            (.inventory, 3, "inventory"),
            (.manifestRequest, 4, "manifest-request"),
            (.manifest, 5, "manifest"),
            (.chunkRequest, 6, "chunk-request"),
            (.chunkData, 7, "chunk-data"),
            (.pushedChunk, 8, "pushed-chunk"),
            (.failure, 9, "failure"),
            (.relayRequest, 10, "relay-request"),
            (.workRequest, 11, "work-request"),
            (.assignedChunk, 12, "assigned-chunk"),
            (.unrelayed, 13, "unrelayed"),
            (.assignedPiece, 14, "assigned-piece"),
            (.relayedPiece, 15, "relayed-piece"),
            (.relayAbort, 16, "relay-abort"),
            (.connectBackRequest, 17, "connect-back-request"),
            (.connectBackResult, 18, "connect-back-result"),
            (.deliveryOffer, 19, "delivery-offer"),
            (.deliveryAnswer, 20, "delivery-answer"),
            (.deliveryProgress, 21, "delivery-progress"),
            (.deliveryReceipt, 22, "delivery-receipt"),
            (.collectionListRequest, 24, "collection-list-request"),
            (.collectionList, 25, "collection-list"),
            (.collectionManifestRequest, 26, "collection-manifest-request"),
            (.collectionManifest, 27, "collection-manifest"),
            (.fileInventoryRequest, 28, "file-inventory-request"),
        ]
        #expect(FrameType.allCases.count == expected.count)
        for (type, value, name) in expected {
            #expect(type.rawValue == value)
            #expect(FrameType(rawValue: value) == type)
            #expect(type.description == name)
        }
        #expect(FrameType(rawValue: 0) == nil)
        #expect(FrameType(rawValue: 23) == nil)
        #expect(FrameType(rawValue: 29) == nil)
    }
}
