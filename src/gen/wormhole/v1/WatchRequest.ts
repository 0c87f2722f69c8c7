// Original file: proto/wormhole/v1/registry.proto


export interface WatchRequest {
  'publicKey'?: (string);
  'peerPublicKeys'?: (string)[];
}

export interface WatchRequest__Output {
  'publicKey': (string);
  'peerPublicKeys': (string)[];
}
