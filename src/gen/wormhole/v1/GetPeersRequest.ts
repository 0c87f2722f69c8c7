// Original file: proto/wormhole/v1/registry.proto


export interface GetPeersRequest {
}

export interface GetPeersRequest__Output {
}
