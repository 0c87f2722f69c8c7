// Original file: proto/wormhole/v1/registry.proto


export interface WatchRequest {
  'publicKey'?: (string);
}

export interface WatchRequest__Output {
  'publicKey': (string);
}
